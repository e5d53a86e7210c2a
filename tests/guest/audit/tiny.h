/* Programs without libc: the dependency closure is exactly what the test links.
   (Debian's libc.so.6 carries no SHSTK property, so any program linking it is
   blocked; these let a test build a program that is ready.) */
#ifndef TINY_H
#define TINY_H

static inline long tiny_syscall3(long n, long a, long b, long c)
{
    long ret;
    __asm__ volatile ("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c)
                      : "rcx", "r11", "memory");
    return ret;
}

static inline unsigned long tiny_strlen(const char *s)
{
    unsigned long n = 0;
    while (s[n])
        n++;
    return n;
}

static inline void tiny_puts(const char *s)
{
    tiny_syscall3(1 /* write */, 1, (long)s, (long)tiny_strlen(s));
}

static inline __attribute__((noreturn)) void tiny_exit(int status)
{
    for (;;)
        tiny_syscall3(231 /* exit_group */, status, 0, 0);
}

#endif
