/* Just enough to print and exit without libc.
 *
 * Why no libc: Debian's libc.so.6 (like most distributions' today) carries no SHSTK
 * property, so every program linked with it is "blocked" by it. Leaving libc out
 * makes the dependency closure exactly what the demo links: the program, libgreet.so
 * and the dynamic loader (which glibc exempts from the check). */
#ifndef TINY_H
#define TINY_H

static inline long tiny_write(int fd, const char *buf, unsigned long len)
{
    long ret;
    __asm__ volatile ("syscall" : "=a"(ret) : "a"(1L), "D"((long)fd), "S"(buf), "d"(len)
                      : "rcx", "r11", "memory");
    return ret;
}

static inline __attribute__((noreturn)) void tiny_exit(int status)
{
    for (;;)
        __asm__ volatile ("syscall" : : "a"(231L), "D"((long)status) : "rcx", "r11");
}

static inline void tiny_puts(const char *s)
{
    unsigned long n = 0;
    while (s[n])
        n++;
    tiny_write(1, s, n);
}

#endif
