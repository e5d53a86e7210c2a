/*
 * Just enough to print, read a file and exit without libc.
 *
 * Debian's libc.so.6 carries no SHSTK property, so every program that links it is
 * "blocked" by it. The programs that need a closure that is *fully* marked (the
 * executable, its own shared libraries, and the dynamic loader, which glibc exempts)
 * are built with -nostdlib and use these helpers instead: raw system calls only.
 *
 * The entry point is written in assembly: ld.so jumps to _start with RSP pointing at
 * argc (16-byte aligned, no return address), and nothing may ever return from it.
 */
#ifndef DYN_NOLIBC_H
#define DYN_NOLIBC_H

#define NL_ARCH_SHSTK_ENABLE 0x5001
#define NL_ARCH_SHSTK_DISABLE 0x5002
#define NL_ARCH_SHSTK_STATUS 0x5005

__asm__(".text\n"
        ".globl _start\n"
        ".type _start,@function\n"
        "_start:\n"
        "  endbr64\n"
        "  xor %ebp, %ebp\n"
        "  mov %rsp, %rdi\n"
        "  and $-16, %rsp\n"
        "  call nl_main\n"
        "  hlt\n"
        ".size _start, .-_start\n");

static inline long nl_syscall(long n, long a, long b, long c)
{
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c)
                     : "rcx", "r11", "memory");
    return ret;
}

static inline unsigned long nl_strlen(const char *s)
{
    unsigned long n = 0;
    while (s[n])
        n++;
    return n;
}

static inline void nl_write(const char *s, unsigned long n)
{
    nl_syscall(1 /* write */, 1, (long)s, (long)n);
}

static inline void nl_puts(const char *s)
{
    nl_write(s, nl_strlen(s));
}

static inline void nl_putd(long v)
{
    char buf[24];
    int i = sizeof buf;
    int neg = v < 0;
    unsigned long u = neg ? -(unsigned long)v : (unsigned long)v;
    do {
        buf[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (neg)
        buf[--i] = '-';
    nl_write(buf + i, sizeof buf - i);
}

static inline __attribute__((noreturn)) void nl_exit(int status)
{
    for (;;)
        nl_syscall(231 /* exit_group */, status, 0, 0);
}

static inline int nl_streq(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return *a == *b;
}

/* arch_prctl(ARCH_SHSTK_STATUS): the enabled features, or -errno. */
static inline long nl_shstk_status(void)
{
    unsigned long features = 0;
    long ret = nl_syscall(158 /* arch_prctl */, NL_ARCH_SHSTK_STATUS, (long)&features, 0);
    return ret < 0 ? ret : (long)features;
}

/* RDSSP is a NOP while shadow stacks are off: pre-zeroed, it reads 0 then. */
static inline unsigned long nl_rdssp(void)
{
    unsigned long ssp = 0;
    __asm__ volatile("rdsspq %0" : "+r"(ssp));
    return ssp;
}

/* Print the lines of /proc/self/status that start with `prefix`. */
static inline void nl_status_lines(const char *prefix)
{
    static char buf[8192];
    long fd = nl_syscall(257 /* openat */, -100, (long)"/proc/self/status", 0);
    long n = 0, r;
    if (fd < 0) {
        nl_puts("cannot open /proc/self/status\n");
        return;
    }
    while (n < (long)sizeof buf - 1 &&
           (r = nl_syscall(0 /* read */, fd, (long)(buf + n), (long)sizeof buf - 1 - n)) > 0)
        n += r;
    nl_syscall(3 /* close */, fd, 0, 0);
    buf[n] = 0;
    unsigned long plen = nl_strlen(prefix);
    for (char *line = buf; *line;) {
        char *end = line;
        while (*end && *end != '\n')
            end++;
        unsigned long i = 0;
        while (i < plen && line[i] == prefix[i])
            i++;
        if (i == plen)
            nl_write(line, (unsigned long)(end - line) + (*end == '\n'));
        line = *end ? end + 1 : end;
    }
}

#endif
