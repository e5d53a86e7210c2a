/* The vDSO shstk maps into every process (as Linux's linux-vdso.so.1): the four
 * functions glibc looks up (LINUX_2.6), each making the real system call, so the
 * emulated clock (--virtual-time included) answers. Built by setup.py with
 * gcc -nostdlib -shared -fPIC; no relocations, no data. */
struct timespec;
struct timeval;
struct timezone;
struct getcpu_cache;

static inline long sys2(long nr, long a, long b) {
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b) : "rcx", "r11", "memory");
    return ret;
}

static inline long sys3(long nr, long a, long b, long c) {
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c)
                     : "rcx", "r11", "memory");
    return ret;
}

int __vdso_clock_gettime(int clock, struct timespec *ts) { return (int)sys2(228, clock, (long)ts); }
int __vdso_gettimeofday(struct timeval *tv, struct timezone *tz) { return (int)sys2(96, (long)tv, (long)tz); }
long __vdso_time(long *t) { return sys2(201, (long)t, 0); }
int __vdso_getcpu(unsigned *cpu, unsigned *node, struct getcpu_cache *c) {
    return (int)sys3(309, (long)cpu, (long)node, (long)c);
}
int __vdso_clock_getres(int clock, struct timespec *ts) { return (int)sys2(229, clock, (long)ts); }

int clock_gettime(int, struct timespec *) __attribute__((weak, alias("__vdso_clock_gettime")));
int gettimeofday(struct timeval *, struct timezone *) __attribute__((weak, alias("__vdso_gettimeofday")));
long time(long *) __attribute__((weak, alias("__vdso_time")));
int getcpu(unsigned *, unsigned *, struct getcpu_cache *) __attribute__((weak, alias("__vdso_getcpu")));
int clock_getres(int, struct timespec *) __attribute__((weak, alias("__vdso_clock_getres")));
