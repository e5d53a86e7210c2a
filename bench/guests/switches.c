/* Shadow-stack switches: N round trips between two shadow stacks (RSTORSSP +
 * SAVEPREVSSP each way), the way glibc's swapcontext switches them. */
#include <stdio.h>
#include <stdlib.h>
#include "shstk_guest.h"
#define SIZE 0x10000
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000;
    if (ss_enable()) { printf("no shadow stacks\n"); return 1; }
    uint64_t *ss = (uint64_t *)ss_map(0, SIZE, SHADOW_STACK_SET_TOKEN);
    uint64_t other = (uint64_t)ss + SIZE - 8;   /* the token of the new stack */
    for (long i = 0; i < n; i++) {
        uint64_t here = ss_get_ssp();
        ss_pivot((void *)other);                /* to the new stack ... */
        other = ss_get_ssp() - 8;               /* ... whose token is now below SSP */
        ss_pivot((void *)(here - 8));           /* and back */
    }
    ss_disable();
    printf("%ld\n", n);
    return 0;
}
