/* Floating-point exception flags raised by SSE arithmetic (double) and by x87 arithmetic
 * (long double): division by zero, invalid, overflow, underflow, inexact. */
#include <fenv.h>
#include <stdio.h>

static void show(const char *what) {
    int f = fetestexcept(FE_ALL_EXCEPT);
    printf("%-14s divbyzero=%d invalid=%d overflow=%d underflow=%d inexact=%d\n", what,
           !!(f & FE_DIVBYZERO), !!(f & FE_INVALID), !!(f & FE_OVERFLOW), !!(f & FE_UNDERFLOW),
           !!(f & FE_INEXACT));
    feclearexcept(FE_ALL_EXCEPT);
}

int main(void) {
    volatile double z = 0.0, one = 1.0, big = 1e308, tiny = 1e-308, three = 3.0;
    volatile double r;
    feclearexcept(FE_ALL_EXCEPT);
    r = one / z;
    show("double 1/0");
    r = z / z;
    show("double 0/0");
    r = big * big;
    show("double ovf");
    r = tiny * tiny;
    show("double unf");
    r = one / three;
    show("double 1/3");
    r = one + one;
    show("double 1+1");
    volatile long double lz = 0.0L, lone = 1.0L;
    volatile long double lr = lone / lz;
    show("x87 1/0");
    lr = lz / lz;
    show("x87 0/0");
    (void)r;
    (void)lr;
    return 0;
}
