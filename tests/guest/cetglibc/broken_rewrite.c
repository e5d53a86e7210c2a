/* A function that rewrites its own return address (a "trampoline" trick): with shadow
 * stacks the RET to the rewritten address is #CP. */
#include <stdint.h>
#include <stdlib.h>
#include "common.h"

__attribute__((noinline)) static void landing(void) {
    printf("landed without the shadow stack noticing\n");
    exit(5);
}

__attribute__((noinline)) static void rewrite(void) {
    /* volatile: the compiler would drop a store into a frame that is about to die */
    volatile uintptr_t *ret = (uintptr_t *)__builtin_frame_address(0) + 1;
    *ret = (uintptr_t)landing;
}

int main(void) {
    printf("status %lu\n", cet_status());
    fflush(stdout);
    rewrite();
    printf("returned normally\n");
    return 0;
}
