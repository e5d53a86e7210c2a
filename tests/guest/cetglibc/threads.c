/* pthreads: every thread gets its own shadow stack from the kernel, sized from the
 * clone3 stack size glibc passes (SPEC.md §6). Each thread reports its size. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include "common.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

__attribute__((noinline)) static long work(long n) { return n ? work(n - 1) + 1 : 0; }

static void *thread(void *arg) {
    unsigned long ss = mapping_size(ss_get_ssp() - 8);
    long depth = work(2000);
    pthread_mutex_lock(&mu);
    printf("thread stack %lu: shadow stack %lu bytes, depth %ld\n", (unsigned long)arg, ss,
           depth);
    pthread_mutex_unlock(&mu);
    return NULL;
}

int main(void) {
    unsigned long sizes[] = {0, 256 * 1024, 1024 * 1024};
    for (int i = 0; i < 3; i++) {
        pthread_attr_t at;
        pthread_attr_init(&at);
        if (sizes[i]) pthread_attr_setstacksize(&at, sizes[i]);
        pthread_t t;
        pthread_create(&t, &at, thread, (void *)sizes[i]);
        pthread_join(t, NULL);
    }
    printf("shadow stacks left: %d\n", count_shadow_stacks());
    return 0;
}
