/*
 * ptrace, the part the shadow-stack ABI uses (issue 5; SPEC.md §9, §4 step 3, §16 test 9).
 *
 * Usage: ptrace GROUP
 *   basic     (no shadow stacks; compared with a native run) PTRACE_TRACEME, stop on a
 *             signal, WIFSTOPPED, PEEKDATA/POKEDATA, CONT with and without the signal,
 *             DETACH with a signal
 *   selftest  (shadow stacks) the kernel selftest's test_ptrace, with each errno checked
 *   regset    (shadow stacks) GET/SETREGSET NT_X86_SHSTK errno of §9, PTRACE_ARCH_PRCTL
 *             STATUS/LOCK/UNLOCK/ENABLE/DISABLE, POKE into the tracee's shadow stack, and a
 *             tracee without shadow stacks (ENODEV)
 */
#define _GNU_SOURCE
#include "extra.h"

#include <elf.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>

static long pt(long req, pid_t pid, void *addr, void *data) {
    errno = 0;
    return ptrace((enum __ptrace_request)req, pid, addr, data);
}
#define PT_ERR(req, pid, addr, data) (pt((req), (pid), (addr), (data)) == -1 ? errno : 0)

static long getregset(pid_t pid, uint64_t *val, size_t len) {
    struct iovec iov = {val, len};
    return pt(PTRACE_GETREGSET, pid, (void *)NT_X86_SHSTK_, &iov) == -1 ? -errno
                                                                        : (long)iov.iov_len;
}
static long setregset(pid_t pid, uint64_t val, size_t len) {
    uint64_t buf[2] = {val, 0};
    struct iovec iov = {buf, len};
    return pt(PTRACE_SETREGSET, pid, (void *)NT_X86_SHSTK_, &iov) == -1 ? -errno : 0;
}

/* ======================================================================================
 * basic (no shadow stacks)
 */
static volatile uint64_t target_word = 0x1122334455667788UL;
static volatile int usr1_ran, usr2_ran;
static void h_usr1(int s) { (void)s; usr1_ran++; }
static void h_usr2(int s) { (void)s; usr2_ran++; }

static void group_basic(void) {
    pid_t pid;
    int st;
    long v;

    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        signal(SIGUSR1, h_usr1);
        signal(SIGUSR2, h_usr2);
        if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) != 0)
            _exit(100);
        raise(SIGUSR1); /* stops; the tracer suppresses it */
        raise(SIGUSR2); /* stops; the tracer delivers it */
        _exit((target_word == 0xabcdef ? 1 : 0) | (usr1_ran == 0 ? 2 : 0) |
              (usr2_ran == 1 ? 4 : 0));
    }
    waitpid(pid, &st, 0);
    SAY("first stop: %s", pr_wstatus(st));
    v = pt(PTRACE_PEEKDATA, pid, (void *)&target_word, NULL);
    SAY("PEEKDATA %#lx errno %d", v, errno);
    SAY("POKEDATA %ld", pt(PTRACE_POKEDATA, pid, (void *)&target_word, (void *)0xabcdefL));
    SAY("PEEKDATA after poke %#lx", pt(PTRACE_PEEKDATA, pid, (void *)&target_word, NULL));
    SAY("PEEKDATA unmapped: errno %d", (pt(PTRACE_PEEKDATA, pid, (void *)8, NULL), errno));
    SAY("tracer's own word unchanged %#lx", (unsigned long)target_word);
    SAY("CONT without the signal %ld", pt(PTRACE_CONT, pid, NULL, NULL));
    waitpid(pid, &st, 0);
    SAY("second stop: %s", pr_wstatus(st));
    SAY("CONT with SIGUSR2 %ld", pt(PTRACE_CONT, pid, NULL, (void *)(long)SIGUSR2));
    waitpid(pid, &st, 0);
    SAY("exit: %s (7 = poke seen, SIGUSR1 suppressed, SIGUSR2 delivered)", pr_wstatus(st));
    SAY("PTRACE_CONT on a non-tracee: errno %d", (pt(PTRACE_CONT, getpid(), NULL, NULL), errno));

    /* DETACH with a signal: delivered by the kernel after the detach */
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        ptrace(PTRACE_TRACEME, 0, NULL, NULL);
        raise(SIGSTOP);
        _exit(5);
    }
    waitpid(pid, &st, 0);
    SAY("stopped by SIGSTOP: %s", pr_wstatus(st));
    SAY("DETACH with SIGTERM %ld", pt(PTRACE_DETACH, pid, NULL, (void *)(long)SIGTERM));
    waitpid(pid, &st, 0);
    SAY("after detach: %s", pr_wstatus(st));
}

/* ======================================================================================
 * selftest: test_ptrace of tools/testing/selftests/x86/test_shadow_stack.c (§16 case 9)
 */
static void h_exit0(int s) {
    (void)s;
    _exit(0);
}

static void group_selftest(void) {
    pid_t pid;
    int st = -1;
    uint64_t ssp = 0;
    long r;

    pr_begin();
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = h_exit0;
        sigaction(SIGSEGV, &sa, NULL);
        if (ptrace(PTRACE_TRACEME, 0, NULL, NULL))
            _exit(10);
        raise(SIGTRAP);
        _exit(1); /* only if the SSP change had no effect */
    }
    waitpid(pid, &st, 0);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGTRAP, "tracee stop: %s", pr_wstatus(st));
    r = getregset(pid, &ssp, 8);
    CHECK(r == 8 && ssp != 0, "GETREGSET NT_X86_SHSTK: %ld, ssp %#lx", r, (unsigned long)ssp);
    CHECK_EQ(setregset(pid, ssp, 0), -EINVAL, "SETREGSET iov_len 0");
    CHECK_EQ(setregset(pid, ssp, 9), -EINVAL, "SETREGSET iov_len 9");
    /* as in the selftest, still with iov_len 9: rejected by the size check */
    CHECK_EQ(setregset(pid, ssp + 1, 9), -EINVAL, "SETREGSET SSP+1 (len 9)");
    CHECK_EQ(setregset(pid, 0xFFFFFFFFFFFF0000UL, 9), -EINVAL, "SETREGSET kernel address (len 9)");
    CHECK_EQ(setregset(pid, ssp + 8, 8), 0, "SETREGSET SSP+8");
    CHECK_EQ(pt(PTRACE_DETACH, pid, NULL, NULL), 0, "DETACH");
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "the tracee's next RET mismatched (#CP -> its SIGSEGV handler exits 0): %s",
          pr_wstatus(st));
    pr_ok("selftest-ptrace");
}

/* ======================================================================================
 * regset and PTRACE_ARCH_PRCTL
 */
static void tracee_main(int pipefd, int disable) {
    uint64_t pre;
    int st = 0;
    if (disable)
        ss_disable(); /* the caller exits without returning */
    pre = ss_get_ssp();
    write(pipefd, &pre, sizeof pre);
    if (ptrace(PTRACE_TRACEME, 0, NULL, NULL))
        exit(10);
    raise(SIGTRAP);
    /* the tracer poked a value below our SSP; the page is still a shadow stack */
    if (!disable) {
        uint64_t *slot = (uint64_t *)(pre - 256);
        st |= *slot == 0x5a5a5a5aUL ? 0 : 1;
    }
    exit(st);
}

static void group_regset(void) {
    pid_t pid;
    int st = -1, p[2];
    uint64_t pre = 0, ssp = 0, ssp2 = 0, tracer_word = 0;
    char path[64], line[64];

    pr_begin();
    pipe(p);
    fflush(stdout);
    pid = fork();
    if (pid == 0)
        tracee_main(p[1], 0);
    read(p[0], &pre, sizeof pre);
    waitpid(pid, &st, 0);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGTRAP, "tracee stop: %s", pr_wstatus(st));

    CHECK_EQ(getregset(pid, &ssp, 8), 8, "GET iov_len 8");
    CHECK(ssp < pre && pre - ssp < 512, "the tracee's SSP %#lx just below its main's %#lx",
          (unsigned long)ssp, (unsigned long)pre);
    CHECK_EQ(getregset(pid, &ssp2, 16), 8, "GET iov_len 16: clamped, iov_len set to 8");
    CHECK(ssp2 == ssp, "same SSP");
    CHECK_EQ(getregset(pid, &ssp2, 12), -EINVAL, "GET iov_len 12 (not a multiple of 8)");
    CHECK_EQ(getregset(pid, &ssp2, 4), -EINVAL, "GET iov_len 4");
    pr_ok("regset-get");

    CHECK_EQ(setregset(pid, ssp, 0), -EINVAL, "SET iov_len 0");
    CHECK_EQ(setregset(pid, ssp, 12), -EINVAL, "SET iov_len 12");
    CHECK_EQ(setregset(pid, ssp + 4, 8), -EINVAL, "SET unaligned");
    CHECK_EQ(setregset(pid, TASK_SIZE_MAX, 8), -EINVAL, "SET TASK_SIZE_MAX");
    CHECK_EQ(setregset(pid, 0xFFFFFFFFFFFF0000UL, 8), -EINVAL, "SET kernel address");
    CHECK_EQ(setregset(pid, 0x10000, 8), 0, "SET into unmapped memory (no VMA check)");
    CHECK(getregset(pid, &ssp2, 8) == 8 && ssp2 == 0x10000, "GET after SET: %#lx",
          (unsigned long)ssp2);
    CHECK_EQ(setregset(pid, ssp, 16), 0, "SET back (iov_len 16 clamped to 8)");
    CHECK(getregset(pid, &ssp2, 8) == 8 && ssp2 == ssp, "restored");
    pr_ok("regset-set");

    CHECK_EQ(pt(PTRACE_ARCH_PRCTL_, pid, &tracer_word, (void *)ARCH_SHSTK_STATUS), 0,
             "ARCH_PRCTL STATUS");
    CHECK_EQ(tracer_word, ARCH_SHSTK_SHSTK | ARCH_SHSTK_WRSS,
             "STATUS written into the tracer's memory");
    CHECK_EQ(PT_ERR(PTRACE_ARCH_PRCTL_, pid, (void *)8, (void *)ARCH_SHSTK_STATUS), EFAULT,
             "STATUS to a bad tracer address");
    CHECK_EQ(pt(PTRACE_ARCH_PRCTL_, pid, (void *)ARCH_SHSTK_WRSS, (void *)ARCH_SHSTK_LOCK), 0,
             "ARCH_PRCTL LOCK(WRSS)");
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    pr_status_line(path, "x86_Thread_features_locked", line, sizeof line);
    CHECK(!strcmp(line, "\twrss "), "tracee locked after LOCK: \"%s\"", line);
    CHECK_EQ(pt(PTRACE_ARCH_PRCTL_, pid, (void *)ARCH_SHSTK_WRSS, (void *)ARCH_SHSTK_UNLOCK), 0,
             "ARCH_PRCTL UNLOCK(WRSS) (CRIU)");
    pr_status_line(path, "x86_Thread_features_locked", line, sizeof line);
    CHECK(!strcmp(line, "\t"), "tracee locked after UNLOCK: \"%s\"", line);
    CHECK_EQ(PT_ERR(PTRACE_ARCH_PRCTL_, pid, (void *)ARCH_SHSTK_WRSS, (void *)ARCH_SHSTK_DISABLE),
             EINVAL, "ARCH_PRCTL DISABLE via ptrace");
    CHECK_EQ(PT_ERR(PTRACE_ARCH_PRCTL_, pid, (void *)ARCH_SHSTK_SHSTK, (void *)ARCH_SHSTK_ENABLE),
             EINVAL, "ARCH_PRCTL ENABLE via ptrace");
    pr_status_line(path, "x86_Thread_features", line, sizeof line);
    CHECK(!strcmp(line, "\tshstk wrss "), "tracee features unchanged: \"%s\"", line);
    pr_ok("ptrace-arch-prctl");

    /* POKE below the tracee's SSP, into its shadow stack (FOLL_FORCE); the tracee reads
     * it back after it continues */
    CHECK(ssp > pre - 256, "the slot the tracee checks is below its SSP");
    CHECK_EQ(pt(PTRACE_POKEDATA, pid, (void *)(pre - 256), (void *)0x5a5a5a5aL), 0,
             "POKEDATA into the shadow stack");
    CHECK_EQ(pt(PTRACE_PEEKDATA, pid, (void *)(pre - 256), NULL), 0x5a5a5a5a, "PEEKDATA");
    CHECK_EQ(pt(PTRACE_PEEKDATA, pid, (void *)ssp, NULL) == 0, 0,
             "PEEKDATA of [SSP] is a return address");
    CHECK_EQ(pt(PTRACE_CONT, pid, NULL, NULL), 0, "CONT");
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "tracee returned normally and saw the poked "
          "value: %s", pr_wstatus(st));
    pr_ok("ptrace-poke-shadow-stack");

    /* a tracee without shadow stacks */
    fflush(stdout);
    pid = fork();
    if (pid == 0)
        tracee_main(p[1], 1);
    read(p[0], &pre, sizeof pre);
    waitpid(pid, &st, 0);
    CHECK(WIFSTOPPED(st), "second tracee stopped: %s", pr_wstatus(st));
    CHECK_EQ(getregset(pid, &ssp, 8), -ENODEV, "GET, tracee without SHSTK");
    CHECK_EQ(setregset(pid, 0x1000, 8), -ENODEV, "SET, tracee without SHSTK");
    tracer_word = 77;
    CHECK_EQ(pt(PTRACE_ARCH_PRCTL_, pid, &tracer_word, (void *)ARCH_SHSTK_STATUS), 0, "STATUS");
    CHECK_EQ(tracer_word, 0, "STATUS of a tracee without SHSTK");
    pt(PTRACE_CONT, pid, NULL, NULL);
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "second tracee: %s", pr_wstatus(st));
    pr_ok("regset-enodev");
}

int main(int argc, char **argv) {
    const char *g = argc > 1 ? argv[1] : "";
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!strcmp(g, "basic")) {
        group_basic();
        return 0;
    }
    SS_ON_OR_DIE(1);
    if (!strcmp(g, "selftest"))
        group_selftest();
    else if (!strcmp(g, "regset"))
        group_regset();
    else
        SAY("unknown group %s", g);
    fflush(stdout);
    exit(ss_failures ? 1 : 0);
}
