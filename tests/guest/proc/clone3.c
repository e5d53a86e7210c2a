/*
 * clone3 and the shadow-stack proposals that never reached mainline (issue 5; SPEC.md §12,
 * §6, §7), with raw clone3 calls and a 96-byte (or larger) struct clone_args of our own.
 *
 * Usage: clone3 GROUP
 *   sizes     (no shadow stacks; compared with a native run) every published size (64, 80,
 *             88) works; a bigger struct works with a zero tail and is E2BIG with a
 *             non-zero one; below 64 is EINVAL; above a page E2BIG
 *   mainline  (shadow stacks, --kernel mainline) the 12th u64 is unknown: E2BIG when set
 *   size      (shadow stacks, --kernel clone3-shadow-stack-size) the v4 size-only form
 *   token     (shadow stacks, --kernel clone3-shstk-token) the v23 token form
 * Children exit with a raw exit system call; CLONE_VM children report through memory and
 * wait on a futex until the parent has looked at their shadow stack.
 */
#define _GNU_SOURCE
#include "extra.h"

#include <sched.h>

/* a page, so that sizes up to PAGE_SIZE read zeros after the struct */
static union {
    struct pr_clone_args a;
    char page[4096];
} argpage __attribute__((aligned(4096)));
#define args (argpage.a)

static void args_reset(uint64_t flags) {
    memset(&argpage, 0, sizeof argpage);
    args.flags = flags;
    args.exit_signal = (flags & CLONE_THREAD) ? 0 : SIGCHLD;
}

/* ---- children ---- */
static __attribute__((noreturn)) void child_exit3(uint64_t ssp, void *arg) {
    (void)ssp;
    (void)arg;
    pr_exit_group(3);
}

/* CLONE_VM children report here, then wait for `release` */
static volatile struct {
    int ready, release;
    uint64_t ssp;
} rep;

static __attribute__((noreturn)) void child_report(uint64_t ssp, void *arg) {
    (void)arg;
    rep.ssp = ssp;
    rep.ready = 1;
    pr_futex(&rep.ready, FUTEX_WAKE_, 1, NULL);
    while (!rep.release)
        pr_futex(&rep.release, FUTEX_WAIT_, 0, NULL);
    pr_exit(0);
}

/* For CLONE_VFORK children: report and exit at once (the parent waits for the exit). */
static __attribute__((noreturn)) void child_report_exit(uint64_t ssp, void *arg) {
    (void)arg;
    rep.ssp = ssp;
    rep.ready = 1;
    pr_exit(0);
}

/* Fork-like children (own mm): check their own shadow stack and exit with a bit mask. */
static volatile uint64_t want_size, want_ssp, parent_ssp;
static __attribute__((noreturn)) void child_check(uint64_t ssp, void *arg) {
    uint64_t s = 0, e = 0;
    int bad = 0;
    (void)arg;
    if (want_ssp) {
        bad |= ssp != want_ssp ? 1 : 0;
    } else {
        bad |= !proc_mapping_of(ssp - 8, &s, &e) ? 2 : 0;
        bad |= e != ssp ? 4 : 0; /* SSP = the top of a new stack */
        bad |= e - s != want_size ? 8 : 0;
        bad |= pr_is_ss(s) != 1 ? 16 : 0;
    }
    bad |= ssp == parent_ssp ? 32 : 0;
    pr_exit_group(bad);
}

/* inline: the child's SSP is then the SSP of the function that calls this */
SS_INLINE long do_clone3(size_t size, pr_child_fn fn) {
    return pr_clone_raw(SYS_clone3, (long)&args, (long)size, 0, 0, 0, fn, NULL);
}

static int wait_status(long pid) {
    int st = -1;
    if (pid <= 0)
        return -1;
    if (waitpid((pid_t)pid, &st, __WALL) != pid)
        return -2;
    return st;
}

static char *child_stack(void) {
    static char *stack;
    if (!stack)
        stack = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return stack;
}

static void use_stack(void) {
    args.stack = (uint64_t)child_stack();
    args.stack_size = 1 << 20;
}

/* ======================================================================================
 * sizes
 */
static void group_sizes(void) {
    static const size_t sizes[] = {64, 80, 88, 96, 128, 4096};
    long r;
    for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        args_reset(0);
        r = do_clone3(sizes[i], child_exit3);
        if (r > 0)
            SAY("size %zu: child %s", sizes[i], pr_wstatus(wait_status(r)));
        else
            SAY("size %zu: %ld", sizes[i], r);
    }
    args_reset(0);
    args.tail[0] = 1; /* byte 96 */
    r = do_clone3(104, child_exit3);
    SAY("size 104, non-zero tail: %ld", r);
    args_reset(0);
    args.extra = 1 << 20;
    r = do_clone3(88, child_exit3);
    SAY("size 88 ignores the 12th field: %s", r > 0 ? pr_wstatus(wait_status(r)) : "failed");
    args_reset(0);
    SAY("size 56: %ld", do_clone3(56, child_exit3));
    SAY("size 0: %ld", do_clone3(0, child_exit3));
    SAY("size 4097: %ld", do_clone3(4097, child_exit3));
    args_reset(0);
    args.exit_signal = 65;
    SAY("exit_signal 65: %ld", do_clone3(88, child_exit3));
    args_reset(0);
    args.stack = 0x1000;
    SAY("stack without stack_size: %ld", do_clone3(88, child_exit3));
    args_reset(CLONE_THREAD);
    SAY("CLONE_THREAD without CLONE_SIGHAND: %ld", do_clone3(88, child_exit3));
    args_reset(CLONE_SIGHAND);
    SAY("CLONE_SIGHAND without CLONE_VM: %ld", do_clone3(88, child_exit3));
}

/* ======================================================================================
 * mainline with shadow stacks: the proposed field is unknown
 */
static void group_mainline(void) {
    long r;
    pr_begin();
    args_reset(0);
    args.extra = 0x4000;
    CHECK_EQ(do_clone3(96, child_exit3), -E2BIG, "96-byte struct, 12th field set (mainline)");
    args_reset(CLONE_VM);
    use_stack();
    args.extra = 0x4000;
    CHECK_EQ(do_clone3(96, child_report), -E2BIG, "CLONE_VM, 12th field set (mainline)");
    args_reset(0);
    r = do_clone3(96, child_exit3);
    CHECK(r > 0 && WEXITSTATUS(wait_status(r)) == 3, "96 bytes, zero tail: %ld", r);
    pr_ok("mainline-unknown-field");
}

/* ======================================================================================
 * size: the v4 series (shadow_stack_size)
 */
static void vm_child_case(const char *what, uint64_t flags, uint64_t size, uint64_t want) {
    uint64_t s = 0, e = 0, ssp_before = ss_get_ssp();
    long r;
    int st;
    memset((void *)&rep, 0, sizeof rep);
    args_reset(flags);
    use_stack();
    args.extra = size;
    r = do_clone3(96, flags & CLONE_VFORK ? child_report_exit : child_report);
    CHECK(r > 0, "%s: clone3 %ld", what, r);
    if (r <= 0)
        return;
    while (!rep.ready)
        pr_futex(&rep.ready, FUTEX_WAIT_, 0, NULL);
    if (!(flags & CLONE_VFORK)) {
        CHECK(proc_mapping_of(rep.ssp - 8, &s, &e), "%s: child SSP %#lx mapped", what,
              (unsigned long)rep.ssp);
        CHECK(e == rep.ssp, "%s: child SSP %#lx is the top of %#lx-%#lx", what,
              (unsigned long)rep.ssp, (unsigned long)s, (unsigned long)e);
        CHECK(e - s == want, "%s: size %#lx, want %#lx", what, (unsigned long)(e - s),
              (unsigned long)want);
        CHECK(pr_is_ss(s) == 1, "%s: a shadow stack", what);
        rep.release = 1;
        pr_futex(&rep.release, FUTEX_WAKE_, 1, NULL);
    }
    CHECK(rep.ssp != ssp_before && rep.ssp % PAGE == 0, "%s: child SSP %#lx is on a new "
          "stack, not the parent's (%#lx)", what, (unsigned long)rep.ssp,
          (unsigned long)ssp_before);
    st = wait_status(r);
    CHECK(st == 0, "%s: child %s", what, pr_wstatus(st));
    CHECK(!proc_mapping_of(rep.ssp - 8, &s, &e), "%s: freed when the child exited", what);
    CHECK(ss_get_ssp() == ssp_before, "%s: parent SSP", what);
}

static void group_size(void) {
    struct rlimit rl;
    long r;
    int st;

    pr_begin();
    getrlimit(RLIMIT_STACK, &rl);
    args_reset(CLONE_VM);
    use_stack();
    args.extra = 4;
    CHECK_EQ(do_clone3(96, child_report), -EINVAL, "shadow_stack_size 4 (< 8)");
    args.extra = rl.rlim_cur + 8;
    CHECK_EQ(do_clone3(96, child_report), -EINVAL, "shadow_stack_size above RLIMIT_STACK");
    args_reset(0);
    args.tail[0] = 1;
    CHECK_EQ(do_clone3(104, child_report), -E2BIG, "104 bytes, non-zero tail");
    pr_ok("size-validation");

    vm_child_case("CLONE_VM, size 0x3001", CLONE_VM, 0x3001, 0x4000);
    vm_child_case("CLONE_VM|CLONE_VFORK, size 0x6000", CLONE_VM | CLONE_VFORK, 0x6000, 0x6000);
    vm_child_case("CLONE_VM, size = RLIMIT_STACK", CLONE_VM, rl.rlim_cur,
                  (rl.rlim_cur + PAGE - 1) & ~(PAGE - 1));
    /* size 0: §6 unchanged (a CLONE_VM child gets PAGE_ALIGN(stack_size)) */
    vm_child_case("CLONE_VM, size 0", CLONE_VM, 0, 1 << 20);
    pr_ok("size-clone-vm");

    /* a fork-like child gets a new stack too, in its own mm */
    args_reset(0);
    args.extra = 0x5000;
    want_size = 0x5000;
    want_ssp = 0;
    parent_ssp = ss_get_ssp();
    r = do_clone3(96, child_check);
    st = wait_status(r);
    CHECK(r > 0 && st == 0, "fork-like child with size 0x5000: %ld %s", r, pr_wstatus(st));
    /* size 0: the fork child keeps the parent's SSP */
    args_reset(0);
    want_ssp = parent_ssp;
    parent_ssp = 0;
    r = do_clone3(96, child_check);
    st = wait_status(r);
    CHECK(r > 0 && st == 0, "fork-like child with size 0 keeps the SSP: %s", pr_wstatus(st));
    pr_ok("size-fork");
}

static void group_size_noshstk(void) {
    long r;
    pr_begin();
    args_reset(CLONE_VM);
    use_stack();
    args.extra = 0x4000;
    CHECK_EQ(do_clone3(96, child_report), -EINVAL, "size without SHSTK enabled");
    args_reset(0);
    r = do_clone3(96, child_exit3);
    CHECK(r > 0 && WEXITSTATUS(wait_status(r)) == 3, "size 0 without SHSTK: %ld", r);
    pr_ok("size-parent-without-shstk");
}

/* ======================================================================================
 * token: the v23 series (shstk_token)
 */
static uint64_t new_token(void) {
    uint64_t base = (uint64_t)ss_map(0, PAGE, SHADOW_STACK_SET_TOKEN);
    return base + PAGE - 8;
}

static void group_token(void) {
    uint64_t tok, s, e, ssp_before = ss_get_ssp();
    uint64_t *heap;
    long r;
    int st;

    pr_begin();
    /* selftest "Shadow stack on system with shadow stack": flags 0, valid token */
    tok = new_token();
    args_reset(0);
    args.extra = tok;
    want_ssp = tok + 8;
    parent_ssp = ssp_before;
    r = do_clone3(96, child_check);
    st = wait_status(r);
    CHECK(r > 0 && st == 0, "flags 0, valid token: %ld %s (child SSP must be token+8)", r,
          pr_wstatus(st));
    CHECK(*(uint64_t *)tok == ((tok + 8) | 1), "the parent's copy of the token is intact "
          "(consumed in the child's mm): %#lx", (unsigned long)*(uint64_t *)tok);
    pr_ok("token-fork");

    /* the selftest's error cases */
    args_reset(CLONE_VM);
    use_stack();
    args.extra = tok - 1;
    CHECK_EQ(do_clone3(96, child_report), -EINVAL, "misaligned token");
    heap = malloc(64);
    heap[7] = ((uint64_t)&heap[7] + 8) | 1; /* looks like a token, in normal memory */
    args.extra = (uint64_t)&heap[7];
    CHECK_EQ(do_clone3(96, child_report), -EFAULT, "token in normal memory");
    args.extra = (uint64_t)&heap[7] + 4;
    CHECK_EQ(do_clone3(96, child_report), -EINVAL, "misaligned token in normal memory "
             "(alignment is checked first)");
    args.extra = (uint64_t)ss_map(0, PAGE, 0) + PAGE - 8;
    CHECK_EQ(do_clone3(96, child_report), -EINVAL, "shadow stack without a token");
    {
        uint64_t ro = new_token();
        mprotect((void *)(ro & ~(PAGE - 1)), PAGE, PROT_READ);
        args.extra = ro;
        CHECK_EQ(do_clone3(96, child_report), -EFAULT, "token in a read-only shadow stack");
    }
    args.extra = 0x10000; /* unmapped */
    CHECK_EQ(do_clone3(96, child_report), -EFAULT, "unmapped token address");
    args_reset(0);
    args.tail[0] = 1;
    CHECK_EQ(do_clone3(104, child_report), -E2BIG, "104 bytes, non-zero tail");
    pr_ok("token-errors");

    /* CLONE_VM: SSP = token + 8, the token is consumed, the stack is never freed */
    tok = new_token();
    memset((void *)&rep, 0, sizeof rep);
    args_reset(CLONE_VM);
    use_stack();
    args.extra = tok;
    r = do_clone3(96, child_report);
    CHECK(r > 0, "CLONE_VM, valid token: %ld", r);
    if (r > 0) {
        while (!rep.ready)
            pr_futex(&rep.ready, FUTEX_WAIT_, 0, NULL);
        CHECK(rep.ssp == tok + 8, "child SSP %#lx, want token+8 %#lx", (unsigned long)rep.ssp,
              (unsigned long)(tok + 8));
        /* consumed (zeroed), then overwritten by the child's first CALL (SSP = tok + 8) */
        CHECK(*(uint64_t *)tok != ((tok + 8) | 1), "token consumed: %#lx",
              (unsigned long)*(uint64_t *)tok);
        rep.release = 1;
        pr_futex(&rep.release, FUTEX_WAKE_, 1, NULL);
        st = wait_status(r);
        CHECK(st == 0, "child %s", pr_wstatus(st));
        CHECK(proc_mapping_of(tok, &s, &e) && pr_is_ss(s) == 1,
              "a user-made stack is not freed by the kernel");
    }
    args.extra = tok;
    CHECK_EQ(do_clone3(96, child_report), -EINVAL, "the consumed token again");
    pr_ok("token-clone-vm");

    /* CLONE_VM|CLONE_VFORK: the token wins over the vfork rule */
    tok = new_token();
    memset((void *)&rep, 0, sizeof rep);
    args_reset(CLONE_VM | CLONE_VFORK);
    use_stack();
    args.extra = tok;
    r = do_clone3(96, child_report_exit);
    st = wait_status(r);
    CHECK(r > 0 && st == 0, "vfork with a token: %ld %s", r, pr_wstatus(st));
    CHECK(rep.ssp == tok + 8, "vfork child SSP %#lx, want token+8", (unsigned long)rep.ssp);
    CHECK(ss_get_ssp() == ssp_before, "parent SSP");
    pr_ok("token-vfork");
}

static void group_token_noshstk(void) {
    uint64_t tok = new_token();
    long r;
    pr_begin();
    args_reset(CLONE_VM);
    use_stack();
    args.extra = tok;
    CHECK_EQ(do_clone3(96, child_report), -EINVAL, "token without SHSTK enabled");
    args.extra = tok + 1;
    CHECK_EQ(do_clone3(96, child_report), -EINVAL, "misaligned token without SHSTK");
    {
        /* a token-looking word in normal memory: the SHSTK check (EINVAL) comes before
         * the VMA check (EFAULT) */
        static uint64_t fake[2] __attribute__((aligned(16)));
        fake[0] = ((uint64_t)&fake[0] + 8) | 1;
        args.extra = (uint64_t)&fake[0];
        CHECK_EQ(do_clone3(96, child_report), -EINVAL, "token in normal memory without SHSTK");
    }
    args_reset(0);
    r = do_clone3(96, child_exit3);
    CHECK(r > 0 && WEXITSTATUS(wait_status(r)) == 3, "token 0 without SHSTK: %ld", r);
    pr_ok("token-parent-without-shstk");
}

int main(int argc, char **argv) {
    const char *g = argc > 1 ? argv[1] : "";
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!strcmp(g, "sizes")) {
        group_sizes();
        return 0;
    }
    if (!strcmp(g, "size-noshstk")) {
        group_size_noshstk();
        return ss_failures ? 1 : 0;
    }
    if (!strcmp(g, "token-noshstk")) {
        group_token_noshstk();
        return ss_failures ? 1 : 0;
    }
    SS_ON_OR_DIE(0);
    if (!strcmp(g, "mainline"))
        group_mainline();
    else if (!strcmp(g, "size"))
        group_size();
    else if (!strcmp(g, "token"))
        group_token();
    else
        SAY("unknown group %s", g);
    fflush(stdout);
    exit(ss_failures ? 1 : 0);
}
