/*
 * A classic stack smash: vulnerable() copies more than its buffer holds and the copy
 * overwrites its return address with the address of win().
 *
 * Natively (no CET hardware) and under `shstk run --shstk off`, the RET jumps to win()
 * and the program exits with status 42: the hijack works. Under `shstk run` (the program
 * is marked SHSTK, so the loader policy turns shadow stacks on), the RET's return address
 * no longer matches the shadow stack: #CP, SIGSEGV (SEGV_CPERR), and a report.
 *
 * Build: gcc -static -O0 -fno-stack-protector -fcf-protection=full \
 *            -Wl,-z,shstk -Wl,-z,ibt -o rop rop.c
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) void win(void) {
    printf("hijacked: win() reached\n");
    fflush(stdout);
    exit(42);
}

__attribute__((noinline)) void vulnerable(const char *input, size_t n) {
    char buf[16];
    memcpy(buf, input, n); /* no bounds check */
    asm volatile("" ::: "memory");
}

int main(void) {
    char payload[64];
    memset(payload, 'A', sizeof payload);
    /* buf[16], then the saved frame pointer (8 bytes), then the return address */
    uintptr_t target = (uintptr_t)win;
    memcpy(payload + 24, &target, sizeof target);
    vulnerable(payload, 32);
    printf("returned normally\n");
    return 0;
}
