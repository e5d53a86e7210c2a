/* Live threads: N threads that all exist at once (each waits until the last one has
 * started), then all exit; the main thread joins them. The "threads" scaling curve. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
static pthread_barrier_t all;
static void *work(void *arg) {
    pthread_barrier_wait(&all);
    return arg;
}
int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 4;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setstacksize(&at, 16 * 1024);
    pthread_barrier_init(&all, NULL, (unsigned)n + 1);
    pthread_t *t = calloc(n, sizeof *t);
    for (int i = 0; i < n; i++)
        if (pthread_create(&t[i], &at, work, (void *)(long)i)) { printf("create %d failed\n", i); return 1; }
    pthread_barrier_wait(&all);
    long sum = 0;
    for (int i = 0; i < n; i++) { void *r; pthread_join(t[i], &r); sum += (long)r; }
    printf("%ld\n", sum);
    return 0;
}
