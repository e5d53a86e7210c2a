/*
 * Green threads with a hand-written context switch, as small coroutine libraries do:
 * it swaps the stack pointer but not the shadow stack, so the first switch RETurns into
 * the other thread with an address the shadow stack never saw a CALL for. Under shadow
 * stacks this is #CP: the program is not ready, whatever its markings say.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* switch_to(&save_sp, next_sp): save callee-saved registers, swap RSP, restore, RET */
extern void switch_to(void **save, void *next);
asm(".text\n.globl switch_to\nswitch_to:\n"
    " push %rbp\n push %rbx\n push %r12\n push %r13\n push %r14\n push %r15\n"
    " mov %rsp, (%rdi)\n mov %rsi, %rsp\n"
    " pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %rbx\n pop %rbp\n ret\n");

static void *main_sp, *thread_sp;

static void green_thread(void) {
    printf("in the green thread\n");
    switch_to(&thread_sp, main_sp);
}

int main(void) {
    uintptr_t *stack = (uintptr_t *)((char *)malloc(65536) + 65536);
    *--stack = 0;                        /* keep the stack aligned */
    *--stack = (uintptr_t)green_thread;  /* where switch_to's RET goes */
    for (int i = 0; i < 6; i++) *--stack = 0;  /* the callee-saved registers */
    thread_sp = stack;
    switch_to(&main_sp, thread_sp);
    printf("back in main\n");
    return 0;
}
