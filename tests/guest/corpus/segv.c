/* A NULL-pointer write: the process dies of SIGSEGV (status 139). */
#include <stdio.h>

int main(void) {
    printf("about to crash\n");
    fflush(stdout);
    volatile int *volatile p = (int *)0x10;
    *p = 1;
    printf("not reached\n");
    return 0;
}
