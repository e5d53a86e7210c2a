/*
 * The CET CPU model (SPEC.md §14, §11.6): CALL/RET on the shadow stack, the #CP
 * near-ret fault and its signal, and each shadow-stack instruction.
 *
 * Usage: cpu GROUP   (off | callret | violation | fatal | incssp | rstorssp |
 *                     saveprevssp | wrss | enable-return | ctl | smc | async)
 * Prints "ok GROUP-part" per part, "FAIL ..." per failed check; exits 1 on failure.
 * Shadow stacks are enabled inline (the program is run with --shstk off) and disabled
 * before main returns; no function returns across either.
 */
#define _GNU_SOURCE
#include "../shstk/extra.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

/* ---- helpers that really are functions (CALL/RET under test) -------------------------- */

/* What a callee sees: its SSP, the slot at SSP and its return address. */
struct probe {
    uint64_t ssp, slot, ret;
};

__attribute__((noipa)) static void probe(struct probe *p) {
    uint64_t ssp = ss_get_ssp();
    p->ssp = ssp;
    p->slot = ssp ? *(uint64_t *)ssp : 0;
    p->ret = (uint64_t)__builtin_return_address(0);
    asm volatile("" ::: "memory");
}

__attribute__((noipa)) static uint64_t nested(int depth, uint64_t *deepest) {
    uint64_t here = ss_get_ssp(), r;
    if (depth == 0) {
        *deepest = here;
        return here;
    }
    r = nested(depth - 1, deepest);
    asm volatile("" ::: "memory");
    return r + 0 * here;
}

/* The violation: the return address on the shadow stack is changed with WRSS, so the
 * function's own RET raises #CP(near ret). */
volatile uint64_t v_ssp, v_saved;

__attribute__((noipa)) static int victim(uint64_t xor_mask) {
    uint64_t ssp = ss_get_ssp();
    v_ssp = ssp;
    v_saved = *(uint64_t *)ssp;
    ss_wrss((uint64_t *)ssp, v_saved ^ xor_mask);
    asm volatile("" ::: "memory");
    return 7;
}

/* The same with RET imm16 (`ret $8`): the caller pushes one word of arguments. */
asm(".text\n"
    ".type victim_imm, @function\n"
    "victim_imm:\n"
    "    rdsspq %rax\n"
    "    movq %rax, v_ssp(%rip)\n"
    "    movq (%rax), %rcx\n"
    "    movq %rcx, v_saved(%rip)\n"
    "    xorq %rdi, %rcx\n"
    "    wrssq %rcx, (%rax)\n"
    "    movl $7, %eax\n"
    "    ret $8\n"
    ".size victim_imm, .-victim_imm\n");

SS_INLINE long call_victim_imm(uint64_t xor_mask) {
    long r;
    asm volatile("leaq -128(%%rsp), %%rsp\n\t"
                 "pushq $0\n\t"
                 "call victim_imm\n\t"
                 "leaq 128(%%rsp), %%rsp"
                 : "=a"(r), "+D"(xor_mask)
                 :
                 : "rcx", "rdx", "rsi", "r8", "r9", "r10", "r11", "memory", "cc");
    return r;
}

/* RET spelled with prefixes (repz ret, bnd ret) is still a near RET: same check. */
asm(".text\n"
    ".type victim_rep, @function\n"
    "victim_rep:\n"
    "    rdsspq %rax\n"
    "    movq %rax, v_ssp(%rip)\n"
    "    movq (%rax), %rcx\n"
    "    movq %rcx, v_saved(%rip)\n"
    "    xorq %rdi, %rcx\n"
    "    wrssq %rcx, (%rax)\n"
    "    movl $3, %eax\n"
    ".globl victim_rep_ret\n"
    "victim_rep_ret:\n"
    "    repz ret\n"
    ".size victim_rep, .-victim_rep\n"
    ".type victim_bnd, @function\n"
    "victim_bnd:\n"
    "    rdsspq %rax\n"
    "    movq %rax, v_ssp(%rip)\n"
    "    movq (%rax), %rcx\n"
    "    movq %rcx, v_saved(%rip)\n"
    "    xorq %rdi, %rcx\n"
    "    wrssq %rcx, (%rax)\n"
    "    movl $4, %eax\n"
    ".globl victim_bnd_ret\n"
    "victim_bnd_ret:\n"
    "    bnd ret\n"
    ".size victim_bnd, .-victim_bnd\n"
    /* a function whose very first instruction faults (a store through %rdi) */
    ".type store_first, @function\n"
    "store_first:\n"
    "    movq $1, (%rdi)\n"
    "    movl $6, %eax\n"
    "    ret\n"
    ".size store_first, .-store_first\n"
    ".type plain_ret, @function\n"
    "plain_ret:\n"
    "    ret\n"
    ".size plain_ret, .-plain_ret\n");
int victim_rep(uint64_t), victim_bnd(uint64_t), store_first(uint64_t *);
void plain_ret(void);
extern char victim_rep_ret[], victim_bnd_ret[];

/* Fixup run by the SIGSEGV handler for a #CP near-ret: record what the frame says, then
 * repair the slot with WRSS; returning from the handler retries the RET. */
static volatile uint64_t f_rip_byte, f_rsp_word;

static void repair(ucontext_t *uc) {
    f_rip_byte = *(uint8_t *)uc->uc_mcontext.gregs[REG_RIP];
    f_rsp_word = *(uint64_t *)uc->uc_mcontext.gregs[REG_RSP];
    ss_wrss((uint64_t *)v_ssp, v_saved);
}

static uint64_t restorer_of(int sig) {
    struct sigaction old;
    memset(&old, 0, sizeof old);
    sigaction(sig, NULL, &old);
    return (uint64_t)old.sa_restorer;
}

/* Enabling in a function that then returns: the RET's shadow-stack read is at SSP = the
 * top of the new stack, i.e. outside it (SPEC §4.1: "returning from the function that
 * made the syscall triggers" a fault; §14: RET reads 8 bytes at SSP; §11.2: a
 * shadow-stack access outside a shadow-stack VMA is #PF -> SEGV_ACCERR, or SEGV_MAPERR
 * when nothing is mapped there). */
static volatile uint64_t er_top;
static volatile int er_above_mapped;

__attribute__((noipa)) static int enable_and_return(void) {
    uint64_t s, e;
    if (ss_enable() != 0)
        return -1;
    er_top = ss_get_ssp();
    er_above_mapped = proc_mapping_of(er_top, &s, &e);
    return 5;
}

static void disable_in_handler(ucontext_t *uc) {
    (void)uc;
    ss_disable();
}

/* Fixups for the control-flow group. */
static volatile uint64_t fx_page, fx_slot_addr, fx_slot;

static void make_writable(ucontext_t *uc) {
    (void)uc;
    mprotect((void *)fx_page, PAGE, PROT_READ | PROT_WRITE);
}

/* map a page holding `ret` where the CALL went; record the shadow-stack slot first */
static void map_ret_page(ucontext_t *uc) {
    void *p;
    (void)uc;
    fx_slot = *(volatile uint64_t *)fx_slot_addr;
    p = mmap((void *)fx_page, PAGE, PROT_READ | PROT_WRITE | PROT_EXEC,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (p != MAP_FAILED)
        *(volatile uint8_t *)p = 0xc3;
}

/* push TARGET; ret -- a RET used as a jump. Resumes at 3: (drops the pushed word). */
#define PUSH_RET(target)                                                                \
    asm volatile("leaq -128(%%rsp), %%rsp\n\t"                                           \
                 "leaq 2f(%%rip), %%r11\n\t"                                            \
                 "movq %%r11, ss_try_insn(%%rip)\n\t"                                   \
                 "leaq 3f(%%rip), %%r11\n\t"                                            \
                 "movq %%r11, ss_try_resume(%%rip)\n\t"                                 \
                 "pushq %0\n"                                                            \
                 "2:\tret\n"                                                             \
                 "3:\taddq $8, %%rsp\n"                                                  \
                 "1:\tleaq 128(%%rsp), %%rsp\n\t"                                        \
                 "movq $0, ss_try_resume(%%rip)"                                         \
                 ::"r"((uint64_t)(target))                                               \
                 : "r11", "memory", "cc")

static int (*volatile fp_victim)(uint64_t) = victim;

/* PUSH_RET inside a function, so that [SSP] holds a real return address (its own). */
static volatile uint64_t pr_ssp, pr_target;

__attribute__((noipa)) static void do_push_ret(uint64_t target) {
    pr_ssp = ss_get_ssp();
    PUSH_RET(target);
}

__attribute__((noipa)) static void do_push_ret_here(void) {
    uint64_t target;
    asm volatile("leaq 9f(%%rip), %0" : "=r"(target));
    pr_target = target;
    pr_ssp = ss_get_ssp();
    PUSH_RET(target);
    asm volatile("9:");
    asm volatile("" ::: "memory");
}

/* ---- groups --------------------------------------------------------------------------- */

static void group_enable_return(void) {
    int r;

    ss_begin();
    CHECK_EQ(ss_catch(SIGSEGV), 0, "sigaction(SIGSEGV)");
    ss_reset_sig();
    ss_fixup = disable_in_handler;
    r = enable_and_return();
    ss_fixup = 0;
    CHECK_EQ(r, 5, "the RET, retried after the handler disabled shadow stacks, returned");
    CHECK_EQ(ss_get_ssp(), 0, "shadow stacks are off again");
    CHECK(ss_sig.count == 1, "one signal, got %d", ss_sig.count);
    CHECK_EQ(ss_sig.signo, SIGSEGV, "signal");
    CHECK(ss_sig.code == (er_above_mapped ? SEGV_ACCERR : SEGV_MAPERR),
          "si_code %d, want %s (shadow-stack read of the slot above the new stack, which is "
          "%s)", ss_sig.code, er_above_mapped ? "SEGV_ACCERR" : "SEGV_MAPERR",
          er_above_mapped ? "ordinary memory" : "unmapped");
    CHECK(ss_sig.addr == er_top, "si_addr %#lx, want the top of the new stack %#lx",
          (unsigned long)ss_sig.addr, (unsigned long)er_top);
    CHECK_EQ(ss_sig.trapno, X86_TRAP_PF, "REG_TRAPNO");
    CHECK(ss_sig.err & X86_PF_SHSTK, "REG_ERR %#lx has X86_PF_SHSTK", (unsigned long)ss_sig.err);
    signal(SIGSEGV, SIG_DFL);
    ss_ok("enable-return-faults");
}

/* Control flow beyond plain CALL/RET: prefixed RETs, indirect CALLs, RET used as a jump
 * (also to an unmapped address: #CP comes before the fetch), a CALL whose target is not
 * mapped (the CALL completes, then the fetch faults), and faults on the first
 * instruction after a CALL or a RET (the deferred push/check happens exactly once). */
static void group_ctl(void) {
    uint64_t s0, hole;
    char what[64];

    ss_begin();
    CHECK_EQ(ss_catch(SIGSEGV), 0, "sigaction(SIGSEGV)");
    CHECK_EQ(ss_enable(), 0, "ENABLE SHSTK");
    CHECK_EQ(ss_arch_prctl(ARCH_SHSTK_ENABLE, ARCH_SHSTK_WRSS), 0, "ENABLE WRSS");

    /* repz ret / bnd ret */
    {
        static int (*const fns[2])(uint64_t) = {victim_rep, victim_bnd};
        static const int want[2] = {3, 4};
        char *rets[2] = {victim_rep_ret, victim_bnd_ret};
        int i;
        for (i = 0; i < 2; i++) {
            int r;
            snprintf(what, sizeof what, "%s mismatch", i ? "bnd ret" : "repz ret");
            ss_reset_sig();
            CHECK_EQ(fns[i](0), want[i], "no mismatch: returns");
            CHECK_EQ(ss_sig.count, 0, "no signal without a mismatch");
            ss_reset_sig();
            ss_fixup = repair;
            r = fns[i](0x20);
            ss_fixup = 0;
            CHECK_EQ(r, want[i], what);
            ss_check_sig(what, SIGSEGV, SEGV_CPERR, 0, X86_TRAP_CP, CP_NEAR_RET);
            CHECK(ss_sig.rip == (uint64_t)rets[i], "%s: REG_RIP %#lx, want the prefixed ret %#lx",
                  what, (unsigned long)ss_sig.rip, (unsigned long)rets[i]);
        }
    }
    ss_ok("ctl-prefixed-ret");

    /* an indirect call (through memory) pushes too */
    ss_reset_sig();
    ss_fixup = repair;
    CHECK_EQ(fp_victim(0x8), 7, "indirect call, mismatching ret repaired");
    ss_fixup = 0;
    ss_check_sig("indirect call", SIGSEGV, SEGV_CPERR, 0, X86_TRAP_CP, CP_NEAR_RET);
    ss_ok("ctl-indirect-call");

    /* push; ret used as a jump: the shadow stack says otherwise */
    s0 = ss_get_ssp();
    ss_reset_sig();
    do_push_ret_here();
    ss_check_sig("push; ret", SIGSEGV, SEGV_CPERR, 0, X86_TRAP_CP, CP_NEAR_RET);
    CHECK(ss_sig.rip == ss_try_insn, "push; ret: REG_RIP %#lx, want the ret %#lx",
          (unsigned long)ss_sig.rip, (unsigned long)ss_try_insn);
    CHECK(ss_sig.rsp_word == pr_target,
          "push; ret: [REG_RSP] %#lx, want the pushed %#lx (a fault: nothing popped)",
          (unsigned long)ss_sig.rsp_word, (unsigned long)pr_target);
    CHECK(ss_sig.frame[1] == (pr_ssp | (1UL << 63)), "push; ret: SSP at the fault %#lx, want %#lx",
          (unsigned long)(ss_sig.frame[1] & ~(1UL << 63)), (unsigned long)pr_ssp);
    CHECK_EQ(ss_get_ssp(), s0, "SSP balanced afterwards");
    hole = ss_find_hole(1);
    ss_reset_sig();
    do_push_ret(hole);
    ss_check_sig("push unmapped; ret: #CP before the fetch", SIGSEGV, SEGV_CPERR, 0,
                 X86_TRAP_CP, CP_NEAR_RET);
    CHECK(ss_sig.rip == ss_try_insn, "push unmapped; ret: REG_RIP %#lx, want the ret %#lx",
          (unsigned long)ss_sig.rip, (unsigned long)ss_try_insn);
    CHECK(ss_sig.rsp_word == hole, "push unmapped; ret: [REG_RSP] %#lx, want %#lx",
          (unsigned long)ss_sig.rsp_word, (unsigned long)hole);
    CHECK_EQ(ss_get_ssp(), s0, "SSP balanced afterwards");
    ss_ok("ctl-push-ret");

    /* CALL to an unmapped address: the CALL completes (both pushes), the fetch faults at
     * the target; a handler that maps a `ret` there makes everything return normally */
    {
        uint64_t ret_addr;
        fx_page = hole;
        fx_slot_addr = s0 - 8;
        ss_reset_sig();
        ss_fixup = map_ret_page;
        asm volatile("leaq -128(%%rsp), %%rsp\n\t"
                     "call *%1\n"
                     "1:\tleaq 128(%%rsp), %%rsp\n\t"
                     "leaq 1b(%%rip), %0"
                     : "=r"(ret_addr)
                     : "r"(hole)
                     : "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "memory",
                       "cc");
        ss_fixup = 0;
        ss_check_sig("call to an unmapped page", SIGSEGV, SEGV_MAPERR, hole, X86_TRAP_PF, ANY);
        CHECK(ss_sig.rip == hole, "REG_RIP %#lx, want the call target %#lx",
              (unsigned long)ss_sig.rip, (unsigned long)hole);
        CHECK(ss_sig.rsp_word == ret_addr, "[REG_RSP] %#lx, want the return address %#lx",
              (unsigned long)ss_sig.rsp_word, (unsigned long)ret_addr);
        CHECK(fx_slot == ret_addr, "the shadow stack holds the return address: %#lx, want %#lx",
              (unsigned long)fx_slot, (unsigned long)ret_addr);
        CHECK(ss_sig.frame[1] == ((s0 - 8) | (1UL << 63)),
              "SSP at the fault was %#lx, want one entry pushed (%#lx)",
              (unsigned long)(ss_sig.frame[1] & ~(1UL << 63)), (unsigned long)(s0 - 8));
        CHECK_EQ(ss_get_ssp(), s0, "after the retried fetch and its ret, SSP is back");
        munmap((void *)hole, PAGE);
    }
    ss_ok("ctl-call-unmapped");

    /* the first instruction of a callee faults: the CALL's push happened exactly once */
    {
        uint64_t *ro = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        int r;
        fx_page = (uint64_t)ro;
        ss_reset_sig();
        ss_fixup = make_writable;
        r = store_first(ro);
        ss_fixup = 0;
        CHECK_EQ(r, 6, "store_first returned after the retried store");
        ss_check_sig("fault on a callee's first instruction", SIGSEGV, SEGV_ACCERR,
                     (uint64_t)ro, X86_TRAP_PF, ANY);
        CHECK(ss_sig.rip == (uint64_t)store_first, "REG_RIP %#lx, want store_first %#lx",
              (unsigned long)ss_sig.rip, (unsigned long)store_first);
        CHECK(ss_sig.frame[1] == ((s0 - 8) | (1UL << 63)),
              "SSP at the fault %#lx, want %#lx", (unsigned long)(ss_sig.frame[1] & ~(1UL << 63)),
              (unsigned long)(s0 - 8));
        CHECK_EQ(ss_get_ssp(), s0, "SSP back after the return");
        CHECK_EQ(ro[0], 1, "the store was done");

        /* the first instruction after a RET faults: the RET's pop happened exactly once */
        mprotect(ro, PAGE, PROT_READ);
        ss_reset_sig();
        ss_fixup = make_writable;
        asm volatile("leaq -128(%%rsp), %%rsp\n\t"
                     "call plain_ret\n\t"
                     "movq $2, (%0)\n\t"
                     "leaq 128(%%rsp), %%rsp"
                     ::"r"(ro)
                     : "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "memory",
                       "cc");
        ss_fixup = 0;
        ss_check_sig("fault right after a ret", SIGSEGV, SEGV_ACCERR, (uint64_t)ro,
                     X86_TRAP_PF, ANY);
        CHECK(ss_sig.frame[1] == (s0 | (1UL << 63)), "SSP at the fault %#lx, want %#lx",
              (unsigned long)(ss_sig.frame[1] & ~(1UL << 63)), (unsigned long)s0);
        CHECK_EQ(ss_get_ssp(), s0, "SSP");
        CHECK_EQ(ro[0], 2, "the store was done");
        munmap(ro, PAGE);
    }
    ss_ok("ctl-fault-after-call-and-ret");

    CHECK_EQ(ss_disable(), 0, "DISABLE SHSTK");
    signal(SIGSEGV, SIG_DFL);
}

/* Asynchronous signals land between any two blocks, including between a CALL or RET and
 * the block it goes to: the shadow stack must stay exact (SPEC §8.1 frames, §14). */
static volatile int alarms;
static volatile uint64_t alarm_bad;

__attribute__((noipa)) static int rec(int n) {
    int r;
    if (!n)
        return 0;
    r = rec(n - 1);
    asm volatile("" : "+r"(r)); /* a real call chain, not a loop */
    return r + 1;
}

static void on_alarm(int sig) {
    uint64_t ssp = ss_get_ssp();
    (void)sig;
    /* [SSP] = the restorer, [SSP+8] = the sigframe token: interrupted SSP | 1<<63 */
    if (!(((uint64_t *)ssp)[1] >> 63))
        alarm_bad++;
    if (rec(5) != 5)
        alarm_bad++;
    alarms++;
}

static void group_async(void) {
    struct itimerval it = {{0, 10000}, {0, 10000}};
    uint64_t s0;
    long iters = 0, bad = 0;

    ss_begin();
    signal(SIGALRM, on_alarm);
    CHECK_EQ(ss_enable(), 0, "ENABLE SHSTK");
    s0 = ss_get_ssp();
    setitimer(ITIMER_REAL, &it, NULL);
    while (alarms < 30 && iters < 20000000) {
        if (rec(12) != 12 || ss_get_ssp() != s0)
            bad++;
        iters++;
    }
    memset(&it, 0, sizeof it);
    setitimer(ITIMER_REAL, &it, NULL);
    CHECK(alarms >= 30, "%d SIGALRMs in %ld iterations", alarms, iters);
    CHECK_EQ(bad, 0, "calls interrupted by signals returned wrong results or SSP");
    CHECK_EQ(alarm_bad, 0, "handler saw a bad frame or its own calls failed");
    CHECK_EQ(ss_get_ssp(), s0, "SSP");
    CHECK_EQ(ss_disable(), 0, "DISABLE SHSTK");
    signal(SIGALRM, SIG_DFL);
    ss_ok("async-signals-between-blocks");
}

/* Code rewritten after it ran: the CPU must see the new instructions (CALL/RET
 * bookkeeping included), whether rewritten in place, remapped, or re-protected. */
static void group_smc(void) {
    static const uint8_t v_ret[] = {0xb8, 1, 0, 0, 0, 0xc3};             /* mov $n,%eax; ret */
    static const uint8_t v_jmp[] = {0xb8, 2, 0, 0, 0, 0x59, 0xff, 0xe1}; /* pop %rcx; jmp *%rcx */
    uint8_t *P;
    uint64_t s0, s;
    int (*f)(void);
    int r, round;

    ss_begin();
    CHECK_EQ(ss_enable(), 0, "ENABLE SHSTK");
    P = mmap(NULL, PAGE, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    f = (int (*)(void))P;
    for (round = 0; round < 3; round++) {
        /* 0: rewrite in place; 1: munmap + mmap; 2: write with PROT_WRITE, run with PROT_EXEC */
        int i;
        for (i = 0; i < 4; i++) {
            int jmp = i % 2;
            const uint8_t *c = jmp ? v_jmp : v_ret;
            size_t n = jmp ? sizeof v_jmp : sizeof v_ret;
            if (round == 1) {
                munmap(P, PAGE);
                P = mmap(P, PAGE, PROT_READ | PROT_WRITE | PROT_EXEC,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
            } else if (round == 2) {
                mprotect(P, PAGE, PROT_READ | PROT_WRITE);
            }
            memcpy(P, c, n);
            P[1] = (uint8_t)(10 * round + i);
            if (round == 2)
                mprotect(P, PAGE, PROT_READ | PROT_EXEC);
            s0 = ss_get_ssp();
            r = f();
            s = ss_get_ssp();
            if (jmp)
                ss_incssp(1); /* the pop+jmp left its entry on the shadow stack */
            CHECK(r == 10 * round + i, "round %d step %d: the new code ran (%d)", round, i, r);
            CHECK(s == (jmp ? s0 - 8 : s0),
                  "round %d step %d (%s): SSP after the call %#lx, want %#lx", round, i,
                  jmp ? "pop; jmp" : "ret", (unsigned long)s,
                  (unsigned long)(jmp ? s0 - 8 : s0));
            CHECK_EQ(ss_get_ssp(), s0, "balanced again");
        }
    }
    munmap(P, PAGE);
    CHECK_EQ(ss_disable(), 0, "DISABLE SHSTK");
    ss_ok("smc-call-ret-bookkeeping");
}

/* Shadow stacks off: RDSSP is a NOP, the others #UD (WRUSS: #GP). */
static void group_off(void) {
    uint64_t r;
    uint64_t slot[2] = {0, 0};

    ss_begin();
    r = 0x1234;
    asm volatile("rdsspq %0" : "+r"(r));
    CHECK_EQ(r, 0x1234, "rdsspq with shadow stacks off leaves the register unchanged");
    CHECK_EQ(ss_get_ssp(), 0, "rdsspq after zeroing reads 0 with shadow stacks off");
    r = 0xffffffff00001234UL;
    asm volatile("rdsspd %k0" : "+r"(r));
    CHECK(r == 0xffffffff00001234UL,
          "rdsspd with shadow stacks off is a NOP (register unchanged): got %#lx",
          (unsigned long)r);
    ss_ok("off-rdssp-nop");

    ss_catch(SIGILL);
    ss_catch(SIGSEGV);

    ss_reset_sig();
    SS_TRY("incsspq %0", "r"(1UL));
    ss_check_ud("incsspq off");
    ss_ok("off-incssp-sigill");

    ss_reset_sig();
    SS_TRY("rstorssp (%0)", "r"(slot));
    ss_check_ud("rstorssp off");
    ss_ok("off-rstorssp-sigill");

    ss_reset_sig();
    SS_TRY("saveprevssp");
    ss_check_ud("saveprevssp off");
    ss_ok("off-saveprevssp-sigill");

    ss_reset_sig();
    SS_TRY("wrssq %0, (%1)", "r"(5UL), "r"(slot));
    ss_check_ud("wrssq off");
    CHECK_EQ(slot[0], 0, "wrssq off wrote nothing");
    ss_ok("off-wrss-sigill");

    /* CR4.CET is set whenever the kernel supports user shadow stacks; at CPL 3 WRUSS
     * is then #GP (SDM; SPEC §14). */
    ss_reset_sig();
    SS_TRY("wrussq %0, (%1)", "r"(5UL), "r"(slot));
    ss_check_gp("wrussq off");
    ss_ok("off-wruss-sigsegv");

    /* SETSSBSY/CLRSSBSY need supervisor shadow stacks, which Linux never enables: #UD */
    ss_reset_sig();
    SS_TRY("setssbsy");
    ss_check_ud("setssbsy");
    ss_reset_sig();
    SS_TRY("clrssbsy (%0)", "r"(slot));
    ss_check_ud("clrssbsy");
    ss_ok("off-setssbsy-clrssbsy-sigill");

    r = 0x5555;
    asm volatile("endbr64" : "+a"(r));
    CHECK_EQ(r, 0x5555, "endbr64 is a NOP");
    ss_ok("off-endbr64-nop");
    signal(SIGILL, SIG_DFL);
    signal(SIGSEGV, SIG_DFL);
}

/* CALL pushes the return address on the shadow stack, RET pops and compares. */
static void group_callret(void) {
    struct probe p;
    uint64_t ssp0, ssp1, deepest = 0, top;

    ss_begin();
    CHECK_EQ(ss_enable(), 0, "ENABLE SHSTK");
    ssp0 = ss_get_ssp();
    top = ssp0;
    /* before any CALL: SSP is the top of a fresh stack, without a token (SPEC §4.1) */
    {
        uint64_t first = ssp0 ? *(volatile uint64_t *)(ssp0 - 8) : 1;
        CHECK_EQ(first, 0, "no token at the top of the new shadow stack");
    }
    CHECK(ssp0 != 0 && ssp0 % 8 == 0, "SSP after enable: %#lx", (unsigned long)ssp0);
    probe(&p);
    CHECK_EQ(p.ssp, ssp0 - 8, "SSP inside a callee is the caller's SSP - 8");
    CHECK(p.slot == p.ret && p.ret != 0, "the shadow-stack slot %#lx holds the return address %#lx",
          (unsigned long)p.slot, (unsigned long)p.ret);
    ssp1 = ss_get_ssp();
    CHECK_EQ(ssp1, ssp0, "RET popped the entry: SSP back to the caller's");
    nested(10, &deepest);
    CHECK_EQ(deepest, ssp0 - 8 * 11, "11 nested calls: SSP 11 slots down");
    CHECK_EQ(ss_get_ssp(), ssp0, "all 11 returns popped their entries");
    {
        uint64_t s, e;
        CHECK(proc_mapping_of(top - 8, &s, &e) && e == top,
              "SSP after enable (%#lx) is the top of a mapping", (unsigned long)top);
    }
    CHECK_EQ(ss_disable(), 0, "DISABLE SHSTK");
    ss_ok("callret-push-pop");
}

/* RET compares all 64 bits: #CP(1) -> SIGSEGV/SEGV_CPERR, si_addr 0, trapno 21, err 1;
 * a handler that repairs the slot and returns makes the RET succeed (a fault). */
static void group_violation(void) {
    static const uint64_t masks[] = {0xdeadUL, 1UL, 1UL << 32, 1UL << 47, 1UL << 63};
    char what[96];
    uint64_t restorer;
    unsigned i;

    ss_begin();
    CHECK_EQ(ss_catch(SIGSEGV), 0, "sigaction(SIGSEGV)");
    restorer = restorer_of(SIGSEGV);
    CHECK(restorer != 0, "glibc installs an sa_restorer");
    CHECK_EQ(ss_enable(), 0, "ENABLE SHSTK");
    CHECK_EQ(ss_arch_prctl(ARCH_SHSTK_ENABLE, ARCH_SHSTK_WRSS), 0, "ENABLE WRSS");
    for (i = 0; i < sizeof masks / sizeof masks[0]; i++) {
        int r;
        snprintf(what, sizeof what, "ret with the slot xor %#lx", (unsigned long)masks[i]);
        ss_reset_sig();
        ss_fixup = repair;
        f_rip_byte = f_rsp_word = 0;
        r = victim(masks[i]);
        ss_fixup = 0;
        CHECK_EQ(r, 7, what);
        ss_check_sig(what, SIGSEGV, SEGV_CPERR, 0, X86_TRAP_CP, CP_NEAR_RET);
        CHECK(f_rip_byte == 0xc3, "%s: REG_RIP points at byte %#lx, want the RET (0xc3)", what,
              (unsigned long)f_rip_byte);
        CHECK(f_rsp_word == v_saved, "%s: [REG_RSP] = %#lx, want the return address %#lx "
              "(nothing popped: a fault)", what, (unsigned long)f_rsp_word,
              (unsigned long)v_saved);
        /* the signal's shadow-stack frame (SPEC §8.1): restorer, then SSP|1<<63 */
        CHECK(ss_sig.handler_ssp == v_ssp - 16, "%s: SSP in the handler %#lx, want %#lx",
              what, (unsigned long)ss_sig.handler_ssp, (unsigned long)(v_ssp - 16));
        CHECK(ss_sig.frame[0] == restorer, "%s: [SSP] in the handler %#lx, want the restorer %#lx",
              what, (unsigned long)ss_sig.frame[0], (unsigned long)restorer);
        CHECK(ss_sig.frame[1] == (v_ssp | (1UL << 63)),
              "%s: [SSP+8] in the handler %#lx, want the sigframe token %#lx", what,
              (unsigned long)ss_sig.frame[1], (unsigned long)(v_ssp | (1UL << 63)));
        CHECK_EQ(ss_get_ssp(), v_ssp + 8, "after the retried RET, SSP is past the slot");
    }
    ss_ok("violation-near-ret-repaired");

    ss_reset_sig();
    ss_fixup = repair;
    f_rip_byte = 0;
    {
        long r = call_victim_imm(0x40);
        ss_fixup = 0;
        CHECK_EQ(r, 7, "ret $8 retried");
    }
    ss_check_sig("ret $8 mismatch", SIGSEGV, SEGV_CPERR, 0, X86_TRAP_CP, CP_NEAR_RET);
    CHECK(f_rip_byte == 0xc2, "ret $8: REG_RIP points at byte %#lx, want 0xc2",
          (unsigned long)f_rip_byte);
    ss_ok("violation-ret-imm16");

    /* an intact RET imm16 works */
    ss_reset_sig();
    CHECK_EQ(call_victim_imm(0), 7, "ret $8 without mismatch");
    CHECK_EQ(ss_sig.count, 0, "no signal for a matching ret $8");
    ss_ok("violation-ret-imm16-match");

    CHECK_EQ(ss_disable(), 0, "DISABLE SHSTK");
    signal(SIGSEGV, SIG_DFL);
    ss_ok("violation-disable");
}

/* No handler: the #CP kills the process with SIGSEGV (the test checks the status). */
static void group_fatal(void) {
    CHECK_EQ(ss_enable(), 0, "ENABLE SHSTK");
    CHECK_EQ(ss_arch_prctl(ARCH_SHSTK_ENABLE, ARCH_SHSTK_WRSS), 0, "ENABLE WRSS");
    printf("about to return through a corrupted shadow stack\n");
    fflush(stdout);
    victim(0x10);
    printf("FAIL survived the #CP\n");
    fflush(stdout);
    exit(1);
}

/* INCSSP pops n = r[7:0] entries (q: 8 bytes each, d: 4 bytes each). */
static void group_incssp(void) {
    uint64_t s0, s;

    ss_begin();
    CHECK_EQ(ss_enable(), 0, "ENABLE SHSTK");
    s0 = ss_get_ssp();
    ss_push_dummy();
    ss_push_dummy();
    ss_push_dummy();
    s = ss_get_ssp();
    CHECK_EQ(s, s0 - 24, "three CALLs pushed three entries");
    ss_incssp(2);
    CHECK_EQ(ss_get_ssp(), s0 - 8, "incsspq 2 popped two entries");
    ss_incssp(0);
    CHECK_EQ(ss_get_ssp(), s0 - 8, "incsspq 0 pops nothing");
    ss_push_dummy();
    ss_incssp(0x102);
    CHECK_EQ(ss_get_ssp(), s0, "incsspq 0x102 pops 2 (only bits 7:0 count)");
    ss_push_dummy();
    ss_push_dummy();
    asm volatile("incsspd %0" ::"r"(2U));
    CHECK_EQ(ss_get_ssp(), s0 - 8, "incsspd 2 pops 8 bytes");
    asm volatile("incsspd %0" ::"r"(2U));
    CHECK_EQ(ss_get_ssp(), s0, "incsspd 2 again: back to the start");
    {
        uint64_t r = 0;
        asm volatile("rdsspd %k0" : "+r"(r));
        CHECK_EQ(r, s0 & 0xffffffffUL, "rdsspd reads the low 32 bits, zero-extended");
    }
    {
        uint64_t r = 0x7777;
        asm volatile("endbr64" : "+a"(r));
        CHECK_EQ(r, 0x7777, "endbr64 is a NOP with shadow stacks on");
    }
    CHECK_EQ(ss_disable(), 0, "DISABLE SHSTK");
    ss_ok("incssp-pops");
}

/* RSTORSSP / SAVEPREVSSP: the pivot and every token check. */
static void group_rstorssp(void) {
    uint64_t S, top, old, s, hole;
    uint64_t *normal;
    unsigned char cf = 0;

    ss_begin();
    CHECK_EQ(ss_catch(SIGSEGV), 0, "sigaction(SIGSEGV)");
    CHECK_EQ(ss_enable(), 0, "ENABLE SHSTK");
    CHECK_EQ(ss_arch_prctl(ARCH_SHSTK_ENABLE, ARCH_SHSTK_WRSS), 0, "ENABLE WRSS");
    S = (uint64_t)ss_map(0, 0x2000, SHADOW_STACK_SET_TOKEN);
    CHECK(S >= FOUR_GIB && S % PAGE == 0, "map_shadow_stack: %#lx", (unsigned long)S);
    top = S + 0x2000;
    CHECK_EQ(*(uint64_t *)(top - 8), top | 1, "restore token at top-8");

    /* the canonical pivot (SPEC §14) */
    old = ss_get_ssp();
    ss_rstorssp((void *)(top - 8));
    s = ss_get_ssp();
    CHECK_EQ(s, top - 8, "after rstorssp SSP = the token address");
    CHECK_EQ(*(uint64_t *)(top - 8), old | 3, "rstorssp left a previous-SSP token old|mode|2");
    ss_saveprevssp();
    CHECK_EQ(ss_get_ssp(), top, "after saveprevssp SSP = top");
    CHECK_EQ(*(uint64_t *)(old - 8), old | 1, "saveprevssp left a restore token on the old stack");
    {
        struct probe p;
        probe(&p);
        CHECK_EQ(p.ssp, top - 8, "a CALL on the new stack pushes below its top");
        CHECK(p.slot == p.ret, "the new stack holds the return address");
    }
    /* a consumed token cannot be used twice: at top-8 there is now the value the CALL
     * above left; put a previous-SSP token there and try it */
    ss_wrss((uint64_t *)(top - 8), old | 3);
    ss_reset_sig();
    SS_TRY("rstorssp (%0)", "r"(top - 8));
    ss_check_sig("rstorssp of a previous-SSP token", SIGSEGV, SEGV_CPERR, 0, X86_TRAP_CP,
                 CP_RSTORSSP);
    CHECK_EQ(ss_get_ssp(), top, "SSP unchanged by the #CP");
    /* back to the original stack */
    ss_rstorssp((void *)(old - 8));
    CHECK_EQ(ss_get_ssp(), old - 8, "rstorssp back: SSP = old-8");
    CHECK_EQ(*(uint64_t *)(old - 8), top | 3, "previous-SSP token names the new stack's top");
    ss_saveprevssp();
    CHECK_EQ(ss_get_ssp(), old, "saveprevssp back: SSP = old");
    CHECK_EQ(*(uint64_t *)(top - 8), top | 1, "a fresh restore token at top-8 of the new stack");
    ss_ok("rstorssp-pivot");

    /* bad tokens: #CP(4), SEGV_CPERR, si_addr 0, trapno 21, err 4; nothing changes */
    {
        static const char *const what[] = {
            "rstorssp of a zero slot",
            "rstorssp of a token naming slot+16",
            "rstorssp of a token without the mode bit",
            "rstorssp of a previous-SSP token (bits 0 and 1)",
            "rstorssp of a token naming the slot itself",
        };
        unsigned i;
        for (i = 0; i < 5; i++) {
            uint64_t slot = S + 0x100 * (i + 1), before = ss_get_ssp();
            uint64_t v = i == 0 ? 0 : i == 1 ? (slot + 16) | 1 : i == 2 ? slot + 8
                       : i == 3 ? (slot + 8) | 3 : slot | 1;
            ss_wrss((uint64_t *)slot, v);
            ss_reset_sig();
            SS_TRY("rstorssp (%0)", "r"(slot));
            ss_check_sig(what[i], SIGSEGV, SEGV_CPERR, 0, X86_TRAP_CP, CP_RSTORSSP);
            CHECK(ss_sig.rip == ss_try_insn, "%s: REG_RIP %#lx, want the rstorssp %#lx",
                  what[i], (unsigned long)ss_sig.rip, (unsigned long)ss_try_insn);
            CHECK_EQ(ss_get_ssp(), before, "SSP unchanged by the #CP");
            CHECK_EQ(*(uint64_t *)slot, v, "the slot is unchanged by the #CP");
        }
    }
    ss_ok("rstorssp-bad-token-cp4");

    /* unaligned operand: #GP -> SIGSEGV */
    ss_reset_sig();
    SS_TRY("rstorssp (%0)", "r"(top - 12));
    ss_check_gp("rstorssp of an unaligned address");
    ss_ok("rstorssp-unaligned-gp");

    /* a token in ordinary memory: shadow-stack access to a normal page, SEGV_ACCERR */
    normal = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(normal != MAP_FAILED, "mmap");
    normal[0] = ((uint64_t)&normal[1]) | 1;
    ss_reset_sig();
    SS_TRY("rstorssp (%0)", "r"(normal));
    ss_check_ss_pf("rstorssp of a token in normal memory", SEGV_ACCERR, (uint64_t)normal);
    munmap(normal, PAGE);
    hole = ss_find_hole(1);
    ss_reset_sig();
    SS_TRY("rstorssp (%0)", "r"(hole + 8));
    ss_check_ss_pf("rstorssp of unmapped memory", SEGV_MAPERR, hole + 8);
    ss_ok("rstorssp-non-shadow-memory");

    /* token bit 2 (4-byte alignment hole) is accepted and sets CF; SAVEPREVSSP then #GPs */
    {
        uint64_t slot = S + 0x800;
        old = ss_get_ssp();
        ss_wrss((uint64_t *)slot, (slot + 8) | 1 | 4);
        ss_reset_sig();
        asm volatile("leaq 2f(%%rip), %%r11\n\t"
                     "movq %%r11, ss_try_insn(%%rip)\n\t"
                     "leaq 1f(%%rip), %%r11\n\t"
                     "movq %%r11, ss_try_resume(%%rip)\n\t"
                     "rstorssp (%1)\n\t"
                     "setc %0\n"
                     "2:\n\tsaveprevssp\n1:\n\t"
                     "movq $0, ss_try_resume(%%rip)"
                     : "=&r"(cf)
                     : "r"(slot)
                     : "r11", "memory", "cc");
        CHECK_EQ(cf, 1, "rstorssp of a token with bit 2 sets CF");
        CHECK_EQ(ss_get_ssp(), slot, "rstorssp with bit 2 moved SSP to the token");
        ss_check_gp("saveprevssp with CF=1");
        asm volatile("clc\n\tsaveprevssp" ::: "memory", "cc");
        CHECK_EQ(ss_get_ssp(), slot + 8, "saveprevssp with CF=0 pops the previous-SSP token");
        CHECK_EQ(*(uint64_t *)(old - 8), old | 1, "restore token on the old stack");
        ss_rstorssp((void *)(old - 8));
        ss_saveprevssp();
        CHECK_EQ(ss_get_ssp(), old, "back on the original stack");
    }
    ss_ok("rstorssp-alignment-hole-cf");

    munmap((void *)S, 0x2000);
    CHECK_EQ(ss_disable(), 0, "DISABLE SHSTK");
    signal(SIGSEGV, SIG_DFL);
    ss_ok("rstorssp-done");
}

/* SAVEPREVSSP needs a previous-SSP token (bit 1) at SSP: #GP otherwise. */
static void group_saveprevssp(void) {
    uint64_t s0;

    ss_begin();
    CHECK_EQ(ss_catch(SIGSEGV), 0, "sigaction(SIGSEGV)");
    CHECK_EQ(ss_enable(), 0, "ENABLE SHSTK");
    CHECK_EQ(ss_arch_prctl(ARCH_SHSTK_ENABLE, ARCH_SHSTK_WRSS), 0, "ENABLE WRSS");
    s0 = ss_get_ssp();
    ss_push_dummy();
    ss_wrss((uint64_t *)(s0 - 8), 0x100001UL); /* bit 1 clear: not a previous-SSP token */
    ss_reset_sig();
    SS_TRY("saveprevssp");
    ss_check_gp("saveprevssp without a previous-SSP token");
    CHECK_EQ(ss_get_ssp(), s0 - 8, "SSP unchanged by the #GP");
    ss_incssp(1);
    CHECK_EQ(ss_get_ssp(), s0, "incssp 1 dropped the dummy");
    CHECK_EQ(ss_disable(), 0, "DISABLE SHSTK");
    signal(SIGSEGV, SIG_DFL);
    ss_ok("saveprevssp-no-token-gp");
}

/* WRSS needs SHSTK_EN and WRSS_EN (#UD), an aligned operand (#GP) and shadow-stack memory
 * (#PF); WRUSS is #GP at CPL 3; SETSSBSY/CLRSSBSY #UD. */
static void group_wrss(void) {
    uint64_t S;
    uint64_t *normal;
    volatile uint64_t *p;

    ss_begin();
    ss_catch(SIGILL);
    ss_catch(SIGSEGV);
    CHECK_EQ(ss_enable(), 0, "ENABLE SHSTK");
    S = (uint64_t)ss_map(0, PAGE, 0);
    CHECK(S >= FOUR_GIB, "map_shadow_stack: %#lx", (unsigned long)S);
    ss_reset_sig();
    SS_TRY("wrssq %0, (%1)", "r"(9UL), "r"(S));
    ss_check_ud("wrssq with SHSTK on but WRSS off");
    CHECK_EQ(*(uint64_t *)S, 0, "nothing written");
    ss_ok("wrss-needs-wrss-enabled");

    CHECK_EQ(ss_arch_prctl(ARCH_SHSTK_ENABLE, ARCH_SHSTK_WRSS), 0, "ENABLE WRSS");
    p = (volatile uint64_t *)S;
    ss_wrss((uint64_t *)S, 0x1122334455667788UL);
    CHECK_EQ(p[0], 0x1122334455667788UL, "a normal read sees what wrssq wrote");
    asm volatile("wrssd %k0, (%1)" ::"r"(0xaabbccddU), "r"(S + 8) : "memory");
    CHECK_EQ(p[1], 0xaabbccddUL, "wrssd writes 4 bytes");
    asm volatile("wrssd %k0, (%1)" ::"r"(0x99U), "r"(S + 12) : "memory");
    CHECK_EQ(p[1], 0x00000099aabbccddUL, "wrssd at +4 writes the upper half");
    ss_ok("wrss-writes");

    /* A fault after an emulated CET instruction reports the faulting instruction (the
     * frame's RIP is where a returning handler resumes): a store to a read-only page. */
    {
        uint64_t *ro = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        ss_wrss((uint64_t *)(S + 16), 1);
        ss_reset_sig();
        SS_TRY("movq %0, (%1)", "r"(2UL), "r"(ro));
        ss_check_sig("store to a read-only page after a wrss", SIGSEGV, SEGV_ACCERR,
                     (uint64_t)ro, X86_TRAP_PF, ANY);
        CHECK(ss_sig.rip == ss_try_insn,
              "store to a read-only page after a wrss: REG_RIP %#lx, want the store at %#lx",
              (unsigned long)ss_sig.rip, (unsigned long)ss_try_insn);
        munmap(ro, PAGE);
    }
    ss_ok("wrss-then-fault-rip");

    ss_reset_sig();
    SS_TRY("wrssq %0, (%1)", "r"(1UL), "r"(S + 20));
    ss_check_gp("wrssq to an address that is not 8-aligned");
    ss_reset_sig();
    SS_TRY("wrssd %k0, (%1)", "r"(1U), "r"(S + 18));
    ss_check_gp("wrssd to an address that is not 4-aligned");
    ss_ok("wrss-unaligned-gp");

    normal = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    normal[0] = 3;
    ss_reset_sig();
    SS_TRY("wrssq %0, (%1)", "r"(1UL), "r"(normal + 1));
    ss_check_ss_pf("wrssq to ordinary memory", SEGV_ACCERR, (uint64_t)(normal + 1));
    CHECK(ss_sig.err & X86_PF_WRITE, "wrssq fault: REG_ERR %#lx lacks X86_PF_WRITE",
          (unsigned long)ss_sig.err);
    CHECK_EQ(normal[1], 0, "nothing written to ordinary memory");
    munmap(normal, PAGE);
    ss_ok("wrss-normal-memory-segv");

    ss_reset_sig();
    SS_TRY("wrussq %0, (%1)", "r"(1UL), "r"(S));
    ss_check_gp("wrussq at CPL 3");
    CHECK_EQ(p[0], 0x1122334455667788UL, "wrussq wrote nothing");
    ss_reset_sig();
    SS_TRY("setssbsy");
    ss_check_ud("setssbsy with shadow stacks on");
    ss_reset_sig();
    SS_TRY("clrssbsy (%0)", "r"(S));
    ss_check_ud("clrssbsy with shadow stacks on");
    ss_ok("wrss-supervisor-insns");

    munmap((void *)S, PAGE);
    CHECK_EQ(ss_disable(), 0, "DISABLE SHSTK");
    signal(SIGILL, SIG_DFL);
    signal(SIGSEGV, SIG_DFL);
    ss_ok("wrss-done");
}

int main(int argc, char **argv) {
    const char *g = argc > 1 ? argv[1] : "";
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!strcmp(g, "off"))
        group_off();
    else if (!strcmp(g, "callret"))
        group_callret();
    else if (!strcmp(g, "violation"))
        group_violation();
    else if (!strcmp(g, "fatal"))
        group_fatal();
    else if (!strcmp(g, "incssp"))
        group_incssp();
    else if (!strcmp(g, "rstorssp"))
        group_rstorssp();
    else if (!strcmp(g, "saveprevssp"))
        group_saveprevssp();
    else if (!strcmp(g, "wrss"))
        group_wrss();
    else if (!strcmp(g, "ctl"))
        group_ctl();
    else if (!strcmp(g, "async"))
        group_async();
    else if (!strcmp(g, "smc"))
        group_smc();
    else if (!strcmp(g, "enable-return"))
        group_enable_return();
    else {
        printf("usage: cpu GROUP\n");
        return 2;
    }
    printf("%s: %d failure(s)\n", g, ss_failures);
    return ss_failures ? 1 : 0;
}
