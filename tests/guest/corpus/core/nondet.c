/* Everything that usually differs between runs: clocks, random bytes, AT_RANDOM, the stack
 * and heap addresses, pids. With --virtual-time --seed N two runs print the same. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int main(void) {
    struct timespec rt, mono;
    clock_gettime(CLOCK_REALTIME, &rt);
    clock_gettime(CLOCK_MONOTONIC, &mono);
    printf("realtime=%lld.%09ld monotonic=%lld.%09ld\n", (long long)rt.tv_sec, rt.tv_nsec,
           (long long)mono.tv_sec, mono.tv_nsec);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    printf("gettimeofday=%lld.%06ld time=%lld\n", (long long)tv.tv_sec, (long)tv.tv_usec,
           (long long)time(NULL));
    unsigned char r[16];
    getrandom(r, sizeof r, 0);
    printf("getrandom=");
    for (int i = 0; i < 16; i++)
        printf("%02x", r[i]);
    const unsigned char *at = (const unsigned char *)getauxval(AT_RANDOM);
    printf("\nAT_RANDOM=");
    for (int i = 0; i < 16; i++)
        printf("%02x", at[i]);
    printf("\n");
    srand((unsigned)(rt.tv_nsec ^ r[0]));
    printf("rand=%d\n", rand());
    void *m = malloc(100), *big = malloc(1 << 20);
    void *mm = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int local;
    printf("addresses: stack=%p heap=%p mmap=%p bigmalloc=%p\n", (void *)&local, m, mm, big);
    printf("pid=%d\n", getpid());
    struct timespec nap = {0, 5000000};
    nanosleep(&nap, NULL);
    clock_gettime(CLOCK_MONOTONIC, &mono);
    printf("monotonic after sleep=%lld.%09ld\n", (long long)mono.tv_sec, mono.tv_nsec);
    clock_t c = clock();
    printf("clock=%ld\n", (long)c);
    return 0;
}
