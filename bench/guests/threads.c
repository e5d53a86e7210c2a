/* pthreads: N threads, each doing call-heavy work; also the "threads" growth curve. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
static long depth;
__attribute__((noinline)) static long fib(long n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
static void *work(void *arg) { return (void *)fib(depth); }
int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 4;
    depth = argc > 2 ? atol(argv[2]) : 20;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setstacksize(&at, 64 * 1024);
    pthread_t *t = calloc(n, sizeof *t);
    for (int i = 0; i < n; i++) pthread_create(&t[i], &at, work, NULL);
    long sum = 0;
    for (int i = 0; i < n; i++) { void *r; pthread_join(t[i], &r); sum += (long)r; }
    printf("%ld\n", sum);
    return 0;
}
