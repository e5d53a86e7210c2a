/*
 * More helpers for the shadow-stack guest programs under tests/guest/shstk/ (the shared
 * tests/guest/include/shstk_guest.h is owned by others; this file adds to it).
 *
 * - A SIGSEGV/SIGILL catcher that records what the kernel reported (signal, si_code,
 *   si_addr, and from the signal frame REG_TRAPNO, REG_ERR, REG_RIP, cr2), the SSP the
 *   handler runs with and the two shadow-stack slots above it (the signal frame of SPEC
 *   §8.1), then either resumes after the faulting instruction (SS_TRY) or calls a fixup
 *   and returns, so that the faulting instruction is retried (a fault, SPEC §11.6).
 * - SS_TRY(insn, inputs...): run one instruction with a resume label after it.
 * - Small readers for /proc files, and an "ok" line printer.
 *
 * Every program includes _GNU_SOURCE before this header.
 */
#ifndef SHSTK_EXTRA_H
#define SHSTK_EXTRA_H

#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "proc_read.h"
#include "shstk_guest.h"

#ifndef SEGV_ACCERR
#define SEGV_ACCERR 2
#endif
#ifndef SI_KERNEL
#define SI_KERNEL 0x80
#endif
#define X86_TRAP_UD 6
#define X86_TRAP_GP 13
#define X86_TRAP_PF 14
#define X86_TRAP_CP 21
#define X86_PF_WRITE (1UL << 1)
#define X86_PF_USER (1UL << 2)
#define X86_PF_SHSTK (1UL << 6)
#define CP_NEAR_RET 1
#define CP_RSTORSSP 4
#define FOUR_GIB 0x100000000UL
#define PAGE 4096UL
#define ANY (-1L) /* "do not check this field" for ss_check_sig */

/* ---- what the last signal looked like ------------------------------------------------ */
struct ss_sig {
    int count;
    int signo;
    int code;
    uint64_t addr;
    uint64_t trapno;
    uint64_t err;
    uint64_t rip;
    uint64_t cr2;
    uint64_t rsp;
    uint64_t rsp_word;      /* [REG_RSP] */
    uint64_t handler_ssp;   /* SSP inside the handler (0: shadow stack off) */
    uint64_t frame[2];      /* [SSP], [SSP+8] inside the handler */
};
static volatile struct ss_sig ss_sig;

/* Written by SS_TRY: where the instruction is, and where to resume after it. */
volatile uint64_t ss_try_insn __attribute__((used));
volatile uint64_t ss_try_resume __attribute__((used));

/* Called (when set) by the handler instead of resuming; returning retries the insn. */
static void (*volatile ss_fixup)(ucontext_t *uc);

static __attribute__((unused)) void ss_on_signal(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    greg_t *g = uc->uc_mcontext.gregs;
    uint64_t ssp;

    ss_sig.count++;
    ss_sig.signo = sig;
    ss_sig.code = si->si_code;
    ss_sig.addr = (uint64_t)si->si_addr;
    ss_sig.trapno = (uint64_t)g[REG_TRAPNO];
    ss_sig.err = (uint64_t)g[REG_ERR];
    ss_sig.rip = (uint64_t)g[REG_RIP];
    ss_sig.cr2 = (uint64_t)uc->uc_mcontext.gregs[REG_CR2];
    ss_sig.rsp = (uint64_t)g[REG_RSP];
    ss_sig.rsp_word = *(uint64_t *)g[REG_RSP];
    ssp = ss_get_ssp();
    ss_sig.handler_ssp = ssp;
    if (ssp) {
        ss_sig.frame[0] = ((uint64_t *)ssp)[0];
        ss_sig.frame[1] = ((uint64_t *)ssp)[1];
    }
    if (ss_sig.count > 20) {
        static const char msg[] = "FAIL: signal loop (the faulting instruction keeps faulting)\n";
        write(1, msg, sizeof msg - 1);
        _exit(97);
    }
    if (ss_fixup) {
        ss_fixup(uc);
        return;
    }
    if (ss_try_resume) {
        g[REG_RIP] = (greg_t)ss_try_resume;
        ss_try_resume = 0;
        return;
    }
    {
        static const char msg[] = "FAIL: unexpected signal outside SS_TRY\n";
        write(1, msg, sizeof msg - 1);
        _exit(96);
    }
}

static __attribute__((unused)) int ss_catch(int sig) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = ss_on_signal;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    return sigaction(sig, &sa, NULL);
}

static __attribute__((unused)) void ss_reset_sig(void) {
    memset((void *)&ss_sig, 0, sizeof ss_sig);
    ss_fixup = 0;
}

/*
 * Run one instruction (asm text `insn`, operands %0.. from the inputs) so that a signal
 * it raises resumes right after it: the handler sets RIP to the label after it.
 * ss_try_insn records the instruction's address for REG_RIP checks.
 */
#define SS_TRY(insn, ...)                                                               \
    asm volatile("leaq 2f(%%rip), %%r11\n\t"                                            \
                 "movq %%r11, ss_try_insn(%%rip)\n\t"                                   \
                 "leaq 1f(%%rip), %%r11\n\t"                                            \
                 "movq %%r11, ss_try_resume(%%rip)\n"                                   \
                 "2:\n\t" insn "\n1:\n\t"                                               \
                 "movq $0, ss_try_resume(%%rip)\n" ::__VA_ARGS__                        \
                 : "r11", "memory", "cc")

/* Check the recorded signal; ANY skips a field. */
#define ss_check_sig(what, want_signo, want_code, want_addr, want_trapno, want_err)      \
    do {                                                                                \
        CHECK(ss_sig.count == 1, "%s: %d signals, want 1", what, ss_sig.count);         \
        CHECK_EQ(ss_sig.signo, want_signo, what);                                       \
        if ((long)(want_code) != ANY)                                                   \
            CHECK(ss_sig.code == (int)(want_code), "%s: si_code %d, want %d", what,     \
                  ss_sig.code, (int)(want_code));                                       \
        if ((long)(want_addr) != ANY)                                                   \
            CHECK(ss_sig.addr == (uint64_t)(want_addr), "%s: si_addr %#lx, want %#lx",  \
                  what, (unsigned long)ss_sig.addr, (unsigned long)(want_addr));        \
        if ((long)(want_trapno) != ANY)                                                 \
            CHECK(ss_sig.trapno == (uint64_t)(want_trapno),                             \
                  "%s: REG_TRAPNO %lu, want %lu", what, (unsigned long)ss_sig.trapno,   \
                  (unsigned long)(want_trapno));                                        \
        if ((long)(want_err) != ANY)                                                    \
            CHECK(ss_sig.err == (uint64_t)(want_err), "%s: REG_ERR %#lx, want %#lx",    \
                  what, (unsigned long)ss_sig.err, (unsigned long)(want_err));          \
    } while (0)

/* A page fault from a shadow-stack access (SPEC §11.2): SIGSEGV with `code`, si_addr and
 * cr2 = the address, trapno 14 and X86_PF_SHSTK in the error code. */
#define ss_check_ss_pf(what, want_code, want_addr)                                     \
    do {                                                                                \
        ss_check_sig(what, SIGSEGV, want_code, want_addr, X86_TRAP_PF, ANY);            \
        CHECK(ss_sig.err & X86_PF_SHSTK, "%s: REG_ERR %#lx lacks X86_PF_SHSTK", what,    \
              (unsigned long)ss_sig.err);                                               \
        CHECK(ss_sig.cr2 == (uint64_t)(want_addr), "%s: cr2 %#lx, want %#lx", what,      \
              (unsigned long)ss_sig.cr2, (unsigned long)(want_addr));                   \
    } while (0)

/* #UD: SIGILL, ILL_ILLOPN, si_addr = the instruction, trapno 6. */
#define ss_check_ud(what)                                                               \
    do {                                                                                \
        ss_check_sig(what, SIGILL, ILL_ILLOPN, ss_try_insn, X86_TRAP_UD, 0);            \
        CHECK(ss_sig.rip == ss_try_insn, "%s: REG_RIP %#lx, want %#lx", what,            \
              (unsigned long)ss_sig.rip, (unsigned long)ss_try_insn);                   \
    } while (0)

/* #GP(0) from user mode: SIGSEGV, SI_KERNEL, si_addr 0, trapno 13, err 0
 * (SPEC §14 marks the si_code [UNVERIFIED]; Linux's exc_general_protection ->
 * gp_user_force_sig_segv -> force_sig(SIGSEGV) gives SI_KERNEL). */
#define ss_check_gp(what)                                                               \
    do {                                                                                \
        ss_check_sig(what, SIGSEGV, SI_KERNEL, 0, X86_TRAP_GP, 0);                      \
        CHECK(ss_sig.rip == ss_try_insn, "%s: REG_RIP %#lx, want %#lx", what,            \
              (unsigned long)ss_sig.rip, (unsigned long)ss_try_insn);                   \
    } while (0)

/* ---- results ------------------------------------------------------------------------ */
static int ss_fail_mark;
static __attribute__((unused)) void ss_begin(void) { ss_fail_mark = ss_failures; }
static __attribute__((unused)) void ss_ok(const char *what) {
    if (ss_failures == ss_fail_mark)
        printf("ok %s\n", what);
    else
        printf("not ok %s\n", what);
    fflush(stdout);
    ss_fail_mark = ss_failures;
}

/* ---- /proc helpers (plain libc calls are fine: they return normally) ----------------- */
/* The /proc/self/maps line whose range starts at `start` (copied to `out`), or 0. */
static __attribute__((unused)) int ss_maps_line(uint64_t start, char *out, size_t outsz) {
    const char *p = proc_read_file("/proc/self/maps");
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        unsigned long s = strtoul(p, NULL, 16);
        if (s == start) {
            if (len >= outsz)
                len = outsz - 1;
            memcpy(out, p, len);
            out[len] = 0;
            return 1;
        }
        p += len + (eol ? 1 : 0);
    }
    return 0;
}

/* A page-sized hole: map `pages` pages anywhere above 4 GiB, unmap them, return the base. */
static __attribute__((unused)) uint64_t ss_find_hole(unsigned long pages) {
    void *p = mmap(NULL, pages * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return 0;
    munmap(p, pages * PAGE);
    return (uint64_t)p;
}

/* Push one entry on the shadow stack only (CALL pushes both; the normal-stack copy is
 * dropped at once, and the red zone is stepped over): a slot for INCSSP tests. */
SS_INLINE void ss_push_dummy(void) {
    asm volatile("leaq -128(%%rsp), %%rsp\n\tcall 1f\n1:\n\tleaq 136(%%rsp), %%rsp"
                 ::: "memory");
}

#endif
