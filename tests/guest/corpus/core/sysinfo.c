/* Identity and system facts: uname, pid/tid/uid family, sched_getaffinity, rlimits,
 * clocks. Prints what is the same natively and emulated; argv[1]=="release" prints the
 * uname release's major version too. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define SHOW(what, call)                                                                  \
    do {                                                                                  \
        errno = 0;                                                                        \
        long r_ = (long)(call);                                                           \
        printf("%s -> %ld%s%s\n", what, r_, r_ < 0 ? " " : "",                             \
               r_ < 0 ? strerrorname_np(errno) : "");                                     \
    } while (0)

int main(int argc, char **argv) {
    struct utsname u;
    printf("uname -> %d sysname=%s machine=%s\n", uname(&u), u.sysname, u.machine);
    if (argc > 1 && !strcmp(argv[1], "release"))
        printf("release=%s\n", u.release);
    printf("pid==tid: %d pid>0: %d ppid>0: %d pgrp>0: %d\n",
           getpid() == (pid_t)syscall(SYS_gettid), getpid() > 0, getppid() > 0, getpgrp() > 0);
    printf("uid=%d euid=%d gid=%d egid=%d\n", getuid(), geteuid(), getgid(), getegid());
    uid_t r, e, s;
    getresuid(&r, &e, &s);
    printf("getresuid consistent: %d\n", r == getuid() && e == geteuid() && s == geteuid());
    cpu_set_t set;
    CPU_ZERO(&set);
    int rc = sched_getaffinity(0, sizeof set, &set);
    printf("sched_getaffinity -> %d count>0: %d\n", rc, CPU_COUNT(&set) > 0);
    printf("nprocs conf>=onln: %d\n", sysconf(_SC_NPROCESSORS_CONF) >= sysconf(_SC_NPROCESSORS_ONLN));
    struct rlimit rl, old;
    getrlimit(RLIMIT_CORE, &old);
    rl.rlim_cur = 0;
    rl.rlim_max = old.rlim_max;
    printf("setrlimit CORE 0 -> %d\n", setrlimit(RLIMIT_CORE, &rl));
    struct rlimit got;
    rc = prlimit(0, RLIMIT_CORE, NULL, &got);
    printf("prlimit get -> %d cur=%lld\n", rc, (long long)got.rlim_cur);
    rl.rlim_cur = 1 << 20;
    rl.rlim_max = 1 << 19;
    SHOW("setrlimit cur>max", setrlimit(RLIMIT_CORE, &rl));
    SHOW("getrlimit bad resource", getrlimit(99, &rl));
    struct timespec ts, mono1, mono2;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    printf("realtime ~ gettimeofday: %d, after 2023: %d\n",
           tv.tv_sec - ts.tv_sec >= 0 && tv.tv_sec - ts.tv_sec <= 1, ts.tv_sec > 1672531200);
    clock_gettime(CLOCK_MONOTONIC, &mono1);
    struct timespec nap = {0, 20 * 1000000};
    printf("nanosleep 20ms -> %d\n", nanosleep(&nap, NULL));
    clock_gettime(CLOCK_MONOTONIC, &mono2);
    long long dt = (mono2.tv_sec - mono1.tv_sec) * 1000000000LL + mono2.tv_nsec - mono1.tv_nsec;
    printf("monotonic advanced >= 20ms: %d\n", dt >= 20 * 1000000);
    SHOW("clock_gettime bad clock", clock_gettime(12345, &ts));
    struct timespec badnap = {0, 1000000000};
    SHOW("nanosleep bad nsec", nanosleep(&badnap, NULL));
    return 0;
}
