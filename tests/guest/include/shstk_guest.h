/*
 * Helpers for guest test programs that use shadow stacks themselves.
 *
 * Debian's glibc has no CET support, so programs enable shadow stacks with an *inline*
 * arch_prctl system call (no function may return across the enable or the disable: the
 * return address would not be on the new shadow stack), exactly as the kernel selftest
 * tools/testing/selftests/x86/test_shadow_stack.c does. Everything here is
 * always_inline for that reason.
 */
#ifndef SHSTK_GUEST_H
#define SHSTK_GUEST_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define ARCH_SHSTK_ENABLE 0x5001
#define ARCH_SHSTK_DISABLE 0x5002
#define ARCH_SHSTK_LOCK 0x5003
#define ARCH_SHSTK_UNLOCK 0x5004
#define ARCH_SHSTK_STATUS 0x5005
#define ARCH_SHSTK_SHSTK (1UL << 0)
#define ARCH_SHSTK_WRSS (1UL << 1)

#ifndef __NR_map_shadow_stack
#define __NR_map_shadow_stack 453
#endif
#define SHADOW_STACK_SET_TOKEN (1ULL << 0)
#define SHADOW_STACK_SET_MARKER (1ULL << 1)
#define SEGV_CPERR 10

#define SS_INLINE static inline __attribute__((always_inline))

/* A raw system call that returns -errno (never touches errno, never calls). */
SS_INLINE long ss_syscall6(long nr, long a1, long a2, long a3, long a4, long a5, long a6) {
    long ret;
    register long r10 asm("r10") = a4;
    register long r8 asm("r8") = a5;
    register long r9 asm("r9") = a6;
    asm volatile("syscall"
                 : "=a"(ret)
                 : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
                 : "rcx", "r11", "memory");
    return ret;
}

SS_INLINE long ss_arch_prctl(long option, unsigned long arg2) {
    return ss_syscall6(158, option, (long)arg2, 0, 0, 0, 0);
}

SS_INLINE long ss_enable(void) { return ss_arch_prctl(ARCH_SHSTK_ENABLE, ARCH_SHSTK_SHSTK); }
SS_INLINE long ss_disable(void) { return ss_arch_prctl(ARCH_SHSTK_DISABLE, ARCH_SHSTK_SHSTK); }

SS_INLINE long ss_map(unsigned long addr, unsigned long size, unsigned int flags) {
    return ss_syscall6(__NR_map_shadow_stack, (long)addr, (long)size, (long)flags, 0, 0, 0);
}

/* RDSSPQ is a NOP when shadow stacks are off: pre-zero to read 0 then. */
SS_INLINE uint64_t ss_get_ssp(void) {
    uint64_t ssp = 0;
    asm volatile("rdsspq %0" : "+r"(ssp));
    return ssp;
}

SS_INLINE void ss_wrss(uint64_t *addr, uint64_t value) {
    asm volatile("wrssq %[v], (%[a])" ::[a] "r"(addr), [v] "r"(value) : "memory");
}

SS_INLINE void ss_incssp(uint64_t n) { asm volatile("incsspq %0" ::"r"(n)); }

SS_INLINE void ss_rstorssp(void *token_addr) {
    asm volatile("rstorssp (%0)" ::"r"(token_addr) : "memory");
}

SS_INLINE void ss_saveprevssp(void) { asm volatile("saveprevssp" ::: "memory"); }

/* Switch to the shadow stack whose restore token sits at `token` and leave a restore
 * token on the old one (the canonical pivot of the selftest and glibc). */
SS_INLINE void ss_pivot(void *token) {
    ss_rstorssp(token);
    ss_saveprevssp();
}

/* Results: print one line per check so a failing test says what failed. */
static int ss_failures;
#define CHECK(cond, ...)                                                            \
    do {                                                                            \
        if (!(cond)) {                                                              \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                            \
            printf(__VA_ARGS__);                                                    \
            printf("\n");                                                           \
            ss_failures++;                                                          \
        }                                                                           \
    } while (0)
#define CHECK_EQ(got, want, what)                                                   \
    CHECK((long)(got) == (long)(want), "%s: got %ld, want %ld", what, (long)(got),  \
          (long)(want))

#endif
