/* sysconf/getpagesize/getrlimit: values that are the same natively and emulated on this
 * machine (page size, limits the test does not change, the clock tick). */
#include <limits.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

int main(void) {
    printf("getpagesize=%d\n", getpagesize());
    printf("_SC_PAGESIZE=%ld\n", sysconf(_SC_PAGESIZE));
    printf("_SC_CLK_TCK=%ld\n", sysconf(_SC_CLK_TCK));
    printf("_SC_ARG_MAX=%ld\n", sysconf(_SC_ARG_MAX));
    printf("_SC_NPROCESSORS_ONLN>0: %d\n", sysconf(_SC_NPROCESSORS_ONLN) > 0);
    printf("_SC_LINE_MAX=%ld _SC_HOST_NAME_MAX=%ld\n", sysconf(_SC_LINE_MAX),
           sysconf(_SC_HOST_NAME_MAX));
    struct rlimit rl;
    getrlimit(RLIMIT_STACK, &rl);
    printf("RLIMIT_STACK cur=%lld\n", (long long)rl.rlim_cur);
    /* The starting RLIMIT_NOFILE is the caller's (ulimit -n), not printed: set it first. */
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = 100;
    printf("setrlimit NOFILE 100 -> %d\n", setrlimit(RLIMIT_NOFILE, &rl));
    getrlimit(RLIMIT_NOFILE, &rl);
    printf("now cur=%lld, _SC_OPEN_MAX=%ld\n", (long long)rl.rlim_cur, sysconf(_SC_OPEN_MAX));
    printf("PATH_MAX=%d\n", PATH_MAX);
    return 0;
}
