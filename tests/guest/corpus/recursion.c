/* Deep recursion: 100000 frames of a non-tail-recursive function (about 10 MB of stack
 * would be too much; each frame here is small), plus mutual recursion and Ackermann. */
#include <stdio.h>

__attribute__((noinline)) static unsigned long deep(unsigned long n, volatile char *prev) {
    volatile char local[16];
    local[0] = (char)n;
    if (n == 0)
        return (unsigned long)(unsigned char)prev[0];
    unsigned long r = deep(n - 1, local);
    return r + (unsigned long)(unsigned char)local[0] + 1;
}

__attribute__((noinline)) static int is_odd(unsigned n);
__attribute__((noinline)) static int is_even(unsigned n) { return n == 0 ? 1 : is_odd(n - 1); }
__attribute__((noinline)) static int is_odd(unsigned n) { return n == 0 ? 0 : is_even(n - 1); }

static int ack(int m, int n) {
    if (m == 0)
        return n + 1;
    if (n == 0)
        return ack(m - 1, 1);
    return ack(m - 1, ack(m, n - 1));
}

static long fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

int main(void) {
    char top = 1;
    printf("deep(100000)=%lu\n", deep(100000, &top));
    printf("is_even(50001)=%d\n", is_even(50001));
    printf("ack(2,300)=%d ack(3,5)=%d\n", ack(2, 300), ack(3, 5));
    printf("fib(24)=%ld\n", fib(24));
    return 0;
}
