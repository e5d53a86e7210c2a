/* Hand-written coroutine switching (as many green-thread libraries do) that swaps the
 * stack pointer but not the shadow stack: the first switch returns into the other
 * coroutine with a RET the shadow stack never saw a CALL for. Dies with SEGV_CPERR. */
#include <stdint.h>
#include <stdlib.h>
#include "common.h"

/* switch_to(&save_sp, new_sp): push callee-saved registers, swap RSP, pop, RET */
extern void switch_to(void **save, void *next);
asm(".text\n.globl switch_to\nswitch_to:\n"
    " push %rbp\n push %rbx\n push %r12\n push %r13\n push %r14\n push %r15\n"
    " mov %rsp, (%rdi)\n mov %rsi, %rsp\n"
    " pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %rbx\n pop %rbp\n ret\n");

static void *main_sp, *co_sp;

static void coroutine(void) {
    printf("in the coroutine\n");
    switch_to(&co_sp, main_sp);
}

int main(void) {
    uintptr_t *stack = (uintptr_t *)((char *)malloc(65536) + 65536);
    *--stack = 0;                      /* alignment */
    *--stack = (uintptr_t)coroutine;   /* what switch_to's RET jumps to */
    for (int i = 0; i < 6; i++) *--stack = 0; /* callee-saved registers */
    co_sp = stack;
    printf("switching, status %lu\n", cet_status());
    fflush(stdout);
    switch_to(&main_sp, co_sp);
    printf("back in main\n");
    return 0;
}
