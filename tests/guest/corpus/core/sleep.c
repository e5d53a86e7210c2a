/* Sleeps argv[1] seconds with nanosleep and prints how long the monotonic clock says it
 * slept (whole seconds). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
    struct timespec a, b, d = {argc > 1 ? atoi(argv[1]) : 1, 0};
    clock_gettime(CLOCK_MONOTONIC, &a);
    int r = nanosleep(&d, NULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("nanosleep -> %d slept %lld s\n", r, (long long)(b.tv_sec - a.tv_sec -
           (b.tv_nsec < a.tv_nsec)));
    return 0;
}
