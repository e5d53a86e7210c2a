/*
 * Shadow-stack memory (SPEC.md §11.2, §11.5) and guard gaps (§3.4).
 *
 * Usage: memory GROUP
 *   store        normal stores into shadow-stack memory: SIGSEGV/SEGV_ACCERR at the address
 *   wrss         shadow-stack writes to memory that is not a writable shadow stack
 *   mprotect     PROT_READ makes WRSS fault; PROT_READ|PROT_WRITE makes it work again
 *   madvise      MADV_DONTNEED zeroes a shadow stack; it stays a shadow stack
 *   munmap       partial munmap splits a shadow stack; both parts stay shadow stacks
 *   incssp-guard INCSSP reads the first and last popped slots, faulting past the top
 *   guard-gap    the one-page start gap below shadow stacks, both directions
 *   overflow [h] CALLs past the bottom of a shadow stack: fatal SIGSEGV (with a handler
 *                installed when a second argument is given)
 * Run with --shstk off. Exits 1 if a check failed.
 */
#define _GNU_SOURCE
#include "../shstk/extra.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN SHADOW_STACK_SET_TOKEN
#define SS_SIZE 0x200000UL

static int mapped(uint64_t addr) {
    uint64_t s, e;
    return proc_mapping_of(addr, &s, &e);
}

static char perms_of(uint64_t start, int i) {
    char l[256], perms[8] = "????";
    if (ss_maps_line(start, l, sizeof l))
        sscanf(l, "%*x-%*x %7s", perms);
    return perms[i];
}

/* A normal 8-byte store at p, expected to fault with SEGV_ACCERR. */
#define EXPECT_STORE_FAULT(what, p, v)                                                  \
    do {                                                                                \
        ss_reset_sig();                                                                 \
        SS_TRY("movq %0, (%1)", "r"((uint64_t)(v)), "r"(p));                            \
        ss_check_sig(what, SIGSEGV, SEGV_ACCERR, (uint64_t)(p), X86_TRAP_PF, ANY);      \
        CHECK(ss_sig.cr2 == (uint64_t)(p), "%s: cr2 %#lx", what, (unsigned long)ss_sig.cr2); \
        CHECK(ss_sig.err & X86_PF_WRITE, "%s: REG_ERR %#lx lacks X86_PF_WRITE", what,    \
              (unsigned long)ss_sig.err);                                               \
        CHECK(!(ss_sig.err & X86_PF_SHSTK), "%s: REG_ERR %#lx has X86_PF_SHSTK for a "   \
              "normal store", what, (unsigned long)ss_sig.err);                         \
        CHECK(ss_sig.rip == ss_try_insn, "%s: REG_RIP %#lx, want the store at %#lx", what, \
              (unsigned long)ss_sig.rip, (unsigned long)ss_try_insn);                   \
    } while (0)

#define EXPECT_WRSS_FAULT(what, p, code)                                                \
    do {                                                                                \
        ss_reset_sig();                                                                 \
        SS_TRY("wrssq %0, (%1)", "r"(0x5aUL), "r"(p));                                  \
        ss_check_ss_pf(what, code, (uint64_t)(p));                                      \
        CHECK(ss_sig.rip == ss_try_insn, "%s: REG_RIP %#lx, want the wrss at %#lx", what, \
              (unsigned long)ss_sig.rip, (unsigned long)ss_try_insn);                   \
    } while (0)

static void group_store(void) {
    uint64_t S, top;
    volatile uint64_t *p;

    ss_begin();
    ss_catch(SIGSEGV);
    S = (uint64_t)ss_map(0, 2 * PAGE, TOKEN);
    CHECK(S >= FOUR_GIB, "map_shadow_stack %#lx", (unsigned long)S);
    p = (volatile uint64_t *)S;
    CHECK_EQ(p[0], 0, "a normal read of a shadow stack works");
    CHECK_EQ(p[(2 * PAGE - 8) / 8], (S + 2 * PAGE) | 1, "a normal read sees the token");
    /* shadow stacks are off for this thread: the memory is still shadow stack */
    EXPECT_STORE_FAULT("normal store into a shadow stack (SHSTK off)", S, 1);
    EXPECT_STORE_FAULT("normal store into a shadow stack at +0x1238", S + 0x1238, 1);
    EXPECT_STORE_FAULT("normal store over the token", S + 2 * PAGE - 8, 0);
    CHECK_EQ(p[0], 0, "the stores wrote nothing");
    CHECK_EQ(p[(2 * PAGE - 8) / 8], (S + 2 * PAGE) | 1, "the token is intact");
    ss_reset_sig();
    SS_TRY("movb $1, (%0)", "r"(S + 3));
    ss_check_sig("a one-byte store", SIGSEGV, SEGV_ACCERR, S + 3, X86_TRAP_PF, ANY);
    ss_reset_sig();
    SS_TRY("lock incq (%0)", "r"(S + 16));
    ss_check_sig("a locked read-modify-write", SIGSEGV, SEGV_ACCERR, S + 16, X86_TRAP_PF, ANY);
    ss_ok("store-map-shadow-stack");

    /* the kernel-allocated stack of this thread, with shadow stacks on */
    CHECK_EQ(ss_enable(), 0, "ENABLE");
    top = ss_get_ssp();
    ss_push_dummy();
    CHECK(*(volatile uint64_t *)(top - 8) != 0, "a normal read of the live shadow stack works");
    EXPECT_STORE_FAULT("normal store into the thread's shadow stack", top - 8, 0);
    EXPECT_STORE_FAULT("normal store deep in the thread's shadow stack", top - 0x3000, 0);
    ss_incssp(1);
    CHECK_EQ(ss_disable(), 0, "DISABLE");
    munmap((void *)S, 2 * PAGE);
    signal(SIGSEGV, SIG_DFL);
    ss_ok("store-thread-shadow-stack");
}

static void group_wrss(void) {
    uint64_t *rw, *ro, *none, hole;

    ss_begin();
    ss_catch(SIGSEGV);
    CHECK_EQ(ss_enable(), 0, "ENABLE");
    CHECK_EQ(ss_arch_prctl(ARCH_SHSTK_ENABLE, ARCH_SHSTK_WRSS), 0, "ENABLE WRSS");
    rw = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ro = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    none = mmap(NULL, PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    rw[1] = 7;
    EXPECT_WRSS_FAULT("wrss to read-write memory (present)", rw + 1, SEGV_ACCERR);
    EXPECT_WRSS_FAULT("wrss to read-write memory (never touched)", rw + 100, SEGV_ACCERR);
    CHECK_EQ(rw[1], 7, "nothing written");
    EXPECT_WRSS_FAULT("wrss to read-only memory", ro + 2, SEGV_ACCERR);
    EXPECT_WRSS_FAULT("wrss to PROT_NONE memory", none + 3, SEGV_ACCERR);
    hole = ss_find_hole(1);
    EXPECT_WRSS_FAULT("wrss to unmapped memory", hole + 8, SEGV_MAPERR);
    {
        uint64_t on_stack = 0;
        EXPECT_WRSS_FAULT("wrss to the normal stack", &on_stack, SEGV_ACCERR);
    }
    munmap(rw, PAGE);
    munmap(ro, PAGE);
    munmap(none, PAGE);
    CHECK_EQ(ss_disable(), 0, "DISABLE");
    signal(SIGSEGV, SIG_DFL);
    ss_ok("wrss-non-shadow-memory");
}

static void group_mprotect(void) {
    uint64_t S;
    volatile uint64_t *p;
    char vmflags[256];

    ss_begin();
    ss_catch(SIGSEGV);
    CHECK_EQ(ss_enable(), 0, "ENABLE");
    CHECK_EQ(ss_arch_prctl(ARCH_SHSTK_ENABLE, ARCH_SHSTK_WRSS), 0, "ENABLE WRSS");
    S = (uint64_t)ss_map(0, SS_SIZE, TOKEN);
    p = (volatile uint64_t *)S;
    ss_wrss((uint64_t *)S, 11);
    CHECK_EQ(p[0], 11, "wrss works before mprotect");
    CHECK_EQ(mprotect((void *)S, SS_SIZE, PROT_READ), 0, "mprotect(PROT_READ)");
    CHECK(perms_of(S, 1) == '-', "maps shows no w after mprotect(PROT_READ)");
    CHECK(proc_smaps_vmflags(S, vmflags, sizeof vmflags) && proc_has_word(vmflags, "ss"),
          "still a shadow stack (ss in VmFlags): \"%s\"", vmflags);
    EXPECT_WRSS_FAULT("wrss to a PROT_READ shadow stack", S + 8, SEGV_ACCERR);
    EXPECT_WRSS_FAULT("wrss to a PROT_READ shadow stack (written page)", S, SEGV_ACCERR);
    CHECK_EQ(p[0], 11, "normal reads still work");
    CHECK_EQ(p[SS_SIZE / 8 - 1], (S + SS_SIZE) | 1, "the token is still there");
    ss_ok("mprotect-read-only");

    CHECK_EQ(mprotect((void *)S, SS_SIZE, PROT_READ | PROT_WRITE), 0,
             "mprotect(PROT_READ|PROT_WRITE)");
    CHECK(perms_of(S, 1) == 'w', "maps shows w again");
    ss_reset_sig();
    ss_wrss((uint64_t *)(S + 8), 12);
    ss_wrss((uint64_t *)S, 13);
    CHECK_EQ(ss_sig.count, 0, "no signal");
    CHECK_EQ(p[1], 12, "wrss works again");
    CHECK_EQ(p[0], 13, "wrss works again on the written page");
    EXPECT_STORE_FAULT("normal store after mprotect(RW) still faults", S + 16, 1);
    ss_ok("mprotect-writable-again");

    /* part of it: only that part refuses shadow-stack writes */
    CHECK_EQ(mprotect((void *)(S + PAGE), PAGE, PROT_READ), 0, "mprotect one page");
    EXPECT_WRSS_FAULT("wrss to the read-only page", S + PAGE + 8, SEGV_ACCERR);
    ss_reset_sig();
    ss_wrss((uint64_t *)(S + 2 * PAGE), 14);
    CHECK_EQ(ss_sig.count, 0, "the page above is still writable");
    CHECK_EQ(p[2 * PAGE / 8], 14, "written");
    ss_ok("mprotect-part");

    /* RSTORSSP's token read is a shadow-stack access too: a valid token in a read-only
     * shadow stack faults (SEGV_ACCERR at the token) instead of pivoting */
    {
        uint64_t T = (uint64_t)ss_map(0, PAGE, TOKEN), before = ss_get_ssp();
        CHECK_EQ(mprotect((void *)T, PAGE, PROT_READ), 0, "mprotect the token's page");
        ss_reset_sig();
        SS_TRY("rstorssp (%0)", "r"(T + PAGE - 8));
        ss_check_ss_pf("rstorssp of a token in a PROT_READ shadow stack", SEGV_ACCERR,
                       T + PAGE - 8);
        CHECK_EQ(ss_get_ssp(), before, "SSP unchanged");
        CHECK_EQ(*(volatile uint64_t *)(T + PAGE - 8), (T + PAGE) | 1, "token unchanged");
        CHECK_EQ(mprotect((void *)T, PAGE, PROT_NONE), 0, "mprotect(PROT_NONE)");
        EXPECT_WRSS_FAULT("wrss to a PROT_NONE shadow stack", T, SEGV_ACCERR);
        munmap((void *)T, PAGE);
    }
    ss_ok("mprotect-rstorssp-prot-none");

    /* [UNVERIFIED in SPEC §11.5] x86 has no refusal of PROT_EXEC on a shadow stack */
    CHECK_EQ(mprotect((void *)S, SS_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC), 0,
             "mprotect(PROT_READ|PROT_WRITE|PROT_EXEC) of a shadow stack");
    CHECK(proc_smaps_vmflags(S, vmflags, sizeof vmflags) && proc_has_word(vmflags, "ss"),
          "still a shadow stack after PROT_EXEC: \"%s\"", vmflags);
    ss_ok("mprotect-exec-allowed");

    munmap((void *)S, SS_SIZE);
    CHECK_EQ(ss_disable(), 0, "DISABLE");
    signal(SIGSEGV, SIG_DFL);
}

static void group_madvise(void) {
    uint64_t S;
    volatile uint64_t *p;
    char vmflags[256];

    ss_begin();
    ss_catch(SIGSEGV);
    CHECK_EQ(ss_enable(), 0, "ENABLE");
    CHECK_EQ(ss_arch_prctl(ARCH_SHSTK_ENABLE, ARCH_SHSTK_WRSS), 0, "ENABLE WRSS");
    S = (uint64_t)ss_map(0, SS_SIZE, TOKEN);
    p = (volatile uint64_t *)S;
    /* selftest test_shstk_faults: read, wrss, read back, DONTNEED, wrss, read back */
    CHECK_EQ(p[0], 0, "zero at first");
    ss_wrss((uint64_t *)S, 1);
    CHECK_EQ(p[0], 1, "wrss then read");
    ss_wrss((uint64_t *)(S + 0x100000), 2);
    CHECK_EQ(madvise((void *)S, SS_SIZE, MADV_DONTNEED), 0, "madvise(MADV_DONTNEED)");
    CHECK_EQ(p[0], 0, "zeroed by MADV_DONTNEED");
    CHECK_EQ(p[0x100000 / 8], 0, "zeroed by MADV_DONTNEED (middle)");
    CHECK_EQ(p[SS_SIZE / 8 - 1], 0, "the token is gone too");
    ss_reset_sig();
    ss_wrss((uint64_t *)S, 1); /* after a normal read of the zeroed page */
    ss_wrss((uint64_t *)(S + 0x180000), 3); /* a page not read since */
    CHECK_EQ(ss_sig.count, 0, "wrss works after MADV_DONTNEED");
    CHECK_EQ(p[0], 1, "read back");
    CHECK_EQ(p[0x180000 / 8], 3, "read back");
    CHECK(proc_smaps_vmflags(S, vmflags, sizeof vmflags) && proc_has_word(vmflags, "ss"),
          "still a shadow stack: \"%s\"", vmflags);
    EXPECT_STORE_FAULT("normal store after MADV_DONTNEED still faults", S + 8, 1);
    munmap((void *)S, SS_SIZE);
    CHECK_EQ(ss_disable(), 0, "DISABLE");
    signal(SIGSEGV, SIG_DFL);
    ss_ok("madvise-dontneed-zeroes");
}

static void group_munmap(void) {
    uint64_t S;
    char vmflags[256];

    ss_begin();
    ss_catch(SIGSEGV);
    CHECK_EQ(ss_enable(), 0, "ENABLE");
    CHECK_EQ(ss_arch_prctl(ARCH_SHSTK_ENABLE, ARCH_SHSTK_WRSS), 0, "ENABLE WRSS");
    S = (uint64_t)ss_map(0, 4 * PAGE, TOKEN);
    CHECK_EQ(munmap((void *)(S + PAGE), PAGE), 0, "munmap the second page");
    CHECK(mapped(S) && !mapped(S + PAGE) && mapped(S + 2 * PAGE), "split in two");
    CHECK(proc_smaps_vmflags(S, vmflags, sizeof vmflags) && proc_has_word(vmflags, "ss"),
          "lower part is a shadow stack: \"%s\"", vmflags);
    CHECK(proc_smaps_vmflags(S + 2 * PAGE, vmflags, sizeof vmflags) &&
              proc_has_word(vmflags, "ss"),
          "upper part is a shadow stack: \"%s\"", vmflags);
    ss_reset_sig();
    ss_wrss((uint64_t *)S, 1);
    ss_wrss((uint64_t *)(S + 2 * PAGE), 2);
    CHECK_EQ(ss_sig.count, 0, "both parts take wrss");
    EXPECT_WRSS_FAULT("wrss into the unmapped page", S + PAGE, SEGV_MAPERR);
    CHECK_EQ(*(uint64_t *)(S + 4 * PAGE - 8), (S + 4 * PAGE) | 1, "token kept");
    munmap((void *)S, 4 * PAGE);
    CHECK(!mapped(S) && !mapped(S + 3 * PAGE), "all gone");
    CHECK_EQ(ss_disable(), 0, "DISABLE");
    signal(SIGSEGV, SIG_DFL);
    ss_ok("munmap-partial");
}

/* INCSSP reads the first and the last popped slot (SPEC §14, §3.4). */
static void group_incssp_guard(void) {
    uint64_t H, S, top, old, N;

    ss_begin();
    ss_catch(SIGSEGV);
    CHECK_EQ(ss_enable(), 0, "ENABLE");
    H = ss_find_hole(4);
    S = (uint64_t)ss_map(H + PAGE, PAGE, TOKEN);
    CHECK_EQ(S, H + PAGE, "shadow stack at an explicit address");
    top = S + PAGE;
    old = ss_get_ssp();
    ss_pivot((void *)(top - 8));
    CHECK_EQ(ss_get_ssp(), top, "pivoted: SSP = top of the new stack");

    ss_reset_sig();
    SS_TRY("incsspq %0", "r"(1UL));
    ss_check_ss_pf("incssp 1 at the top (nothing mapped above)", SEGV_MAPERR, top);
    CHECK_EQ(ss_get_ssp(), top, "SSP unchanged by the fault");
    ss_reset_sig();
    SS_TRY("incsspq %0", "r"(0UL));
    ss_check_ss_pf("incssp 0 at the top still reads [SSP]", SEGV_MAPERR, top);
    ss_reset_sig();
    SS_TRY("incsspq %0", "r"(0x100UL));
    ss_check_ss_pf("incssp 0x100 (n = 0) at the top still reads [SSP]", SEGV_MAPERR, top);
    CHECK_EQ(ss_get_ssp(), top, "SSP unchanged by the faults");

    ss_push_dummy();
    ss_reset_sig();
    SS_TRY("incsspq %0", "r"(2UL));
    ss_check_ss_pf("incssp 2 with one entry: the last popped slot is read", SEGV_MAPERR, top);
    CHECK_EQ(ss_get_ssp(), top - 8, "SSP unchanged by the fault");
    ss_incssp(1);
    CHECK_EQ(ss_get_ssp(), top, "incssp 1 popped the entry");

    N = (uint64_t)mmap((void *)top, PAGE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    CHECK_EQ(N, top, "normal page right above the shadow stack");
    *(volatile uint64_t *)N = 1;
    ss_reset_sig();
    SS_TRY("incsspq %0", "r"(1UL));
    ss_check_ss_pf("incssp 1 into ordinary memory", SEGV_ACCERR, top);
    CHECK_EQ(ss_get_ssp(), top, "SSP unchanged by the fault");

    ss_pivot((void *)(old - 8));
    CHECK_EQ(ss_get_ssp(), old, "back on the thread's stack");
    munmap((void *)N, PAGE);
    munmap((void *)S, PAGE);
    CHECK_EQ(ss_disable(), 0, "DISABLE");
    signal(SIGSEGV, SIG_DFL);
    ss_ok("incssp-guard-reads");
}

/* A shadow stack that overflows: CALLs on a one-page stack (512 slots) 1000 deep. The
 * push below the bottom lands in the guard gap: #PF, SEGV_MAPERR at base-8 (§3.4, §11.2).
 * With a SIGSEGV handler the kernel cannot push the signal's shadow-stack frame either
 * (§8.1), so SIGSEGV is forced and the process dies without running the handler.
 * Fatal by design: the test checks the exit status. */
static void overflow_handler(int sig) {
    static const char msg[] = "FAIL the SIGSEGV handler ran on a full shadow stack\n";
    (void)sig;
    write(1, msg, sizeof msg - 1);
    _exit(3);
}

__attribute__((noipa)) static int deep(int n) {
    int r;
    if (!n)
        return 0;
    r = deep(n - 1);
    asm volatile("" : "+r"(r));
    return r + 1;
}

static void group_overflow(int with_handler) {
    uint64_t S, old;

    if (with_handler)
        signal(SIGSEGV, overflow_handler);
    CHECK_EQ(ss_enable(), 0, "ENABLE");
    S = (uint64_t)ss_map(0, PAGE, TOKEN);
    printf("shadow stack %#lx-%#lx\n", (unsigned long)S, (unsigned long)(S + PAGE));
    fflush(stdout);
    old = ss_get_ssp();
    ss_pivot((void *)(S + PAGE - 8));
    deep(1000);
    ss_pivot((void *)(old - 8));
    printf("FAIL survived a shadow-stack overflow\n");
    exit(1);
}

struct node {
    struct node *next;
    uint64_t addr;
};

static void group_guard_gap(void) {
    uint64_t H, S, r;

    ss_begin();
    /* a hint in the page right below a shadow stack is not honoured (its start gap) */
    H = ss_find_hole(8);
    S = (uint64_t)ss_map(H + 4 * PAGE, PAGE, 0);
    CHECK_EQ(S, H + 4 * PAGE, "shadow stack at an explicit address");
    r = (uint64_t)mmap((void *)(S - PAGE), PAGE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(r != S - PAGE, "an mmap hint in the guard page is not honoured (got %#lx)",
          (unsigned long)r);
    munmap((void *)r, PAGE);
    r = (uint64_t)mmap((void *)(S - 2 * PAGE), PAGE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(r == S - 2 * PAGE, "an mmap hint two pages below is honoured (got %#lx)",
          (unsigned long)r);
    munmap((void *)r, PAGE);
    r = (uint64_t)mmap((void *)(S + PAGE), PAGE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(r == S + PAGE, "no end gap: a hint right above is honoured (got %#lx)",
          (unsigned long)r);
    munmap((void *)r, PAGE);
    r = (uint64_t)mmap((void *)(S - PAGE), PAGE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    CHECK(r == S - PAGE, "MAP_FIXED may use the guard page (got %#lx)", (unsigned long)r);
    munmap((void *)r, PAGE);
    munmap((void *)S, PAGE);
    ss_ok("guard-gap-hint");

    /* [UNVERIFIED in SPEC §3.4] an explicit address right above a mapping is allowed */
    H = ss_find_hole(4);
    r = (uint64_t)mmap((void *)H, PAGE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    S = (uint64_t)ss_map(H + PAGE, PAGE, 0);
    CHECK_EQ(S, H + PAGE, "map_shadow_stack at an explicit address right above a mapping");
    munmap((void *)S, PAGE);
    munmap((void *)r, PAGE);
    ss_ok("guard-gap-explicit-address");

    /* selftest test_guard_gap_other_gaps, checked strictly: filling the address space
     * top-down with pages, the first page that lands below the shadow stack leaves
     * exactly one free page */
    {
        uint64_t area = ss_find_hole(3 * SS_SIZE / PAGE), first_below = 0;
        struct node *head = NULL, *n;
        int count = 0;
        S = (uint64_t)ss_map(area + SS_SIZE, SS_SIZE, TOKEN);
        CHECK_EQ(S, area + SS_SIZE, "shadow stack in the middle of the area");
        while (count < 100000) {
            uint64_t m = (uint64_t)mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
                                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (m == (uint64_t)MAP_FAILED)
                break;
            n = malloc(sizeof *n);
            n->addr = m;
            n->next = head;
            head = n;
            count++;
            CHECK(!(m >= S - PAGE && m < S + SS_SIZE), "a page at %#lx, in the guard gap",
                  (unsigned long)m);
            if (m < S) {
                first_below = m;
                break;
            }
        }
        CHECK_EQ(first_below, S - 2 * PAGE, "the first page below the shadow stack");
        while (head) {
            n = head;
            head = n->next;
            munmap((void *)n->addr, PAGE);
            free(n);
        }
        munmap((void *)S, SS_SIZE);
    }
    ss_ok("guard-gap-other-mappings");

    /* selftest test_guard_gap_new_mappings_gaps: a new shadow stack never sits directly
     * on top of another mapping */
    {
        uint64_t area = ss_find_hole(4), first;
        struct node *head = NULL, *n;
        int count = 0;
        first = (uint64_t)mmap((void *)area, PAGE, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        CHECK_EQ(first, area, "the hint is honoured");
        for (;;) {
            long m = ss_map(0, PAGE, 0);
            CHECK(m > 0, "map_shadow_stack: %ld", m);
            if (m <= 0 || ++count > 100000)
                break;
            n = malloc(sizeof *n);
            n->addr = (uint64_t)m;
            n->next = head;
            head = n;
            CHECK((uint64_t)m != first + PAGE,
                  "a new shadow stack at %#lx, directly above a mapping", (unsigned long)m);
            if ((uint64_t)m <= first)
                break;
        }
        while (head) {
            n = head;
            head = n->next;
            munmap((void *)n->addr, PAGE);
            free(n);
        }
        munmap((void *)first, PAGE);
    }
    ss_ok("guard-gap-placement");
}

int main(int argc, char **argv) {
    const char *g = argc > 1 ? argv[1] : "";
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!strcmp(g, "store"))
        group_store();
    else if (!strcmp(g, "wrss"))
        group_wrss();
    else if (!strcmp(g, "mprotect"))
        group_mprotect();
    else if (!strcmp(g, "madvise"))
        group_madvise();
    else if (!strcmp(g, "munmap"))
        group_munmap();
    else if (!strcmp(g, "incssp-guard"))
        group_incssp_guard();
    else if (!strcmp(g, "guard-gap"))
        group_guard_gap();
    else if (!strcmp(g, "overflow"))
        group_overflow(argc > 2);
    else {
        printf("usage: memory GROUP\n");
        return 2;
    }
    printf("%s: %d failure(s)\n", g, ss_failures);
    return ss_failures ? 1 : 0;
}
