/* The FPU state a Linux process starts with (x87 control word 0x37F, MXCSR 0x1F80: all
 * exceptions masked, round to nearest), fegetround, and rounding-mode changes. */
#include <fenv.h>
#include <stdio.h>

int main(void) {
    unsigned short cw;
    unsigned int mxcsr;
    __asm__ volatile("fnstcw %0" : "=m"(cw));
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    printf("initial fcw=%#x mxcsr=%#x\n", cw, mxcsr);
    printf("fegetround nearest=%d\n", fegetround() == FE_TONEAREST);
    printf("fetestexcept at start=%#x\n", fetestexcept(FE_ALL_EXCEPT));
    fesetround(FE_DOWNWARD);
    __asm__ volatile("fnstcw %0" : "=m"(cw));
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    volatile double one = 1.0, three = 3.0;
    printf("downward: fcw=%#x mxcsr=%#x 1/3=%.17g -1/3=%.17g\n", cw, mxcsr & ~0x3fu,
           one / three, -one / three);
    fesetround(FE_TONEAREST);
    fenv_t env;
    fegetenv(&env);
    printf("fegetenv mxcsr=%#x cw=%#x\n", env.__mxcsr & ~0x3fu, env.__control_word);
    return 0;
}
