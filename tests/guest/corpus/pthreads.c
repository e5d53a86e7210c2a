/* pthreads: threads summing with a mutex, a condition variable handshake, thread-local
 * storage, join return values, pthread_once, a barrier. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#define NT 4
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static long total;
static int ready;
static __thread int tls = 5;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int once_count;
static pthread_barrier_t barrier;

static void init_once(void) { once_count++; }

static void *worker(void *arg) {
    long id = (long)(intptr_t)arg;
    pthread_once(&once, init_once);
    tls += (int)id;
    for (int i = 0; i < 10000; i++) {
        pthread_mutex_lock(&mu);
        total += id + 1;
        pthread_mutex_unlock(&mu);
    }
    pthread_barrier_wait(&barrier);
    return (void *)(intptr_t)(tls * 10);
}

static void *waiter(void *arg) {
    (void)arg;
    pthread_mutex_lock(&mu);
    while (!ready)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    return (void *)(intptr_t)42;
}

int main(void) {
    pthread_t th[NT], w;
    pthread_barrier_init(&barrier, NULL, NT);
    pthread_create(&w, NULL, waiter, NULL);
    for (long i = 0; i < NT; i++)
        pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i);
    for (int i = 0; i < NT; i++) {
        void *ret;
        pthread_join(th[i], &ret);
        printf("thread %d returned %ld\n", i, (long)(intptr_t)ret);
    }
    pthread_mutex_lock(&mu);
    ready = 1;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
    void *wret;
    pthread_join(w, &wret);
    printf("waiter returned %ld\n", (long)(intptr_t)wret);
    printf("total=%ld once=%d main tls=%d\n", total, once_count, tls);
    return 0;
}
