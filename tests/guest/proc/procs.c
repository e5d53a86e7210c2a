/*
 * Processes (issue 5, "Processes"; SPEC.md §4.5, §6, §11.3, §11.4, §15.2, §16 test 4).
 *
 * Usage: procs GROUP [ARGS]
 * Groups without shadow stacks print lines that tests/test_processes.py compares with a
 * native run:
 *   wait      wait4/waitid status encoding, WNOHANG, WNOWAIT, ECHILD, getppid
 *   pgrp      process groups and sessions: setpgid, getpgid, kill(-pgrp), waitpid(-pgrp)
 *   pipes     pipe, pipe2(O_CLOEXEC), dup2 onto stdout of an exec'd child, SIGPIPE/EPIPE
 *   sigchld   SIGCHLD siginfo (exited, killed, stopped), SA_NOCLDSTOP, SIG_IGN, SA_NOCLDWAIT
 * Shadow-stack groups (print "ok PART"; --shstk off, both engines):
 *   fork        the child keeps the parent's SSP; COW of shadow-stack pages (§11.3)
 *   clone-novm  clone without CLONE_VM (and with CLONE_VFORK only): same as fork
 *   vfork-raw   an inline vfork: the child runs on the parent's shadow stack (§6 rule 2)
 *               until it exits or execs
 *   exec        execve resets features, locks and shadow stacks (§4.5), also from a
 *               process with a second thread
 *   gup         /proc/self/mem reads and writes of shadow stacks (§11.4, §16 test 4)
 *   vfork-glibc Debian's vfork(): the parent dies of #CP (§15.2), exit status 139
 *   fork-4g     20 forks of a process with a 4 GiB shadow stack (lazy copy)
 *   exec-into PATH  enable (unless the loader did), lock, exec PATH exec-report
 * Internal: exec-after, exec-report, echo, fdcheck N, vfork-exec-child.
 */
#define _GNU_SOURCE
#include "extra.h"

#include <pthread.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>

static char self_path[4096];

static void msleep(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int exec_self(const char *group, const char *arg) {
    char *argv[] = {self_path, (char *)group, (char *)arg, NULL};
    return execv(self_path, argv);
}

/* A child that waits for one byte on fd, then exits with code. */
static pid_t child_waiting(int fd, int code) {
    pid_t pid;
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        char c;
        read(fd, &c, 1);
        _exit(code);
    }
    return pid;
}

/* ======================================================================================
 * wait
 */
static void group_wait(void) {
    pid_t pid, p2, me = getpid();
    int st, go[2];
    siginfo_t si;
    struct rusage ru;
    static const int codes[] = {0, 3, 255, 256, 1};

    for (unsigned i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        fflush(stdout);
        pid = fork();
        if (pid == 0)
            _exit(codes[i]);
        waitpid(pid, &st, 0);
        SAY("exit %d: %s", codes[i], pr_wstatus(st));
    }
    fflush(stdout);
    pid = fork();
    if (pid == 0)
        _exit(getppid() == me ? 0 : 1);
    waitpid(pid, &st, 0);
    SAY("child's getppid is the parent: %s", pr_wstatus(st));

    pipe(go);
    pid = child_waiting(go[0], 4);
    SAY("WNOHANG while running %s", RE(waitpid(pid, &st, WNOHANG)));
    memset(&si, 0, sizeof si);
    si.si_pid = 12345;
    SAY("waitid WNOHANG while running %s", RE(waitid(P_PID, pid, &si, WEXITED | WNOHANG)));
    SAY("  si_pid %d", si.si_pid);
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    SAY("SIGKILL: %s", pr_wstatus(st));

    /* waitid: the siginfo of an exited and of a killed child; WNOWAIT leaves it */
    pid = child_waiting(go[0], 3);
    write(go[1], "x", 1);
    memset(&si, 0, sizeof si);
    SAY("waitid WNOWAIT %s", RE(waitid(P_ALL, 0, &si, WEXITED | WNOWAIT)));
    SAY("  signo %d code %d status %d pid-ok %d uid-ok %d", si.si_signo, si.si_code,
        si.si_status, si.si_pid == pid, si.si_uid == getuid());
    memset(&si, 0, sizeof si);
    SAY("waitid P_PID %s", RE(waitid(P_PID, pid, &si, WEXITED)));
    SAY("  signo %d code %d status %d pid-ok %d", si.si_signo, si.si_code, si.si_status,
        si.si_pid == pid);
    pid = child_waiting(go[0], 0);
    kill(pid, SIGTERM);
    memset(&si, 0, sizeof si);
    SAY("waitid killed %s", RE(waitid(P_PID, pid, &si, WEXITED)));
    SAY("  code %d status %d", si.si_code, si.si_status);
    SAY("waitid no options %s", RE(waitid(P_ALL, 0, &si, 0)));
    SAY("waitid bad idtype %s", RE(waitid(7, 0, &si, WEXITED)));

    /* waiting for one child among two; wait4 fills rusage */
    pid = child_waiting(go[0], 1);
    p2 = child_waiting(go[0], 2);
    write(go[1], "xx", 2);
    SAY("wait4 second child %d", wait4(p2, &st, 0, &ru) == p2);
    SAY("  %s", pr_wstatus(st));
    SAY("wait4 any %d", wait4(-1, &st, 0, NULL) == pid);
    SAY("  %s", pr_wstatus(st));
    SAY("no children: %s", RE(waitpid(-1, &st, 0)));
    SAY("not a child (pid 1): %s", RE(waitpid(1, &st, 0)));
    SAY("wait4 bad options %s", RE(wait4(-1, &st, 0x100, NULL)));
    close(go[0]);
    close(go[1]);
}

/* ======================================================================================
 * pgrp
 */
static void group_pgrp(void) {
    pid_t me = getpid(), a, b, c, c2;
    int st, go[2], go2[2];
    (void)me;

    SAY("getpgrp is getpgid(0) %d", getpgrp() == getpgid(0));
    SAY("getsid(0) is getsid(self) %d", getsid(0) == getsid(me));
    pipe(go);
    pipe(go2);
    a = child_waiting(go[0], 1);
    setpgid(a, a);
    b = child_waiting(go[0], 2);
    setpgid(b, a);
    c = child_waiting(go2[0], 3); /* stays in our group */
    SAY("a leads a new group %d; b joined it %d; c in ours %d", getpgid(a) == a,
        getpgid(b) == a, getpgid(c) == getpgrp());
    SAY("setpgid(non-child 1) %s", RE(setpgid(1, 1)));
    SAY("setpgid(self, -1) %s", RE(setpgid(0, -1)));
    kill(-a, SIGTERM);
    c2 = waitpid(-a, &st, 0);
    SAY("waitpid(-pgrp) reaps a member %d", c2 == a || c2 == b);
    SAY("  %s", pr_wstatus(st));
    waitpid(-a, &st, 0);
    SAY("second of the group %s", pr_wstatus(st));
    SAY("group empty now %s", RE(waitpid(-a, &st, WNOHANG)));
    write(go2[1], "x", 1);
    SAY("waitpid(0) reaps c %d", waitpid(0, &st, 0) == c);
    SAY("  %s", pr_wstatus(st));
    /* a child that makes its own session */
    fflush(stdout);
    a = fork();
    if (a == 0) {
        pid_t s = setsid();
        _exit(s == getpid() && getpgrp() == getpid() && getsid(0) == getpid() ? 0 : 1);
    }
    waitpid(a, &st, 0);
    SAY("setsid in a child %s", pr_wstatus(st));
    /* a group leader cannot make a session */
    fflush(stdout);
    a = fork();
    if (a == 0) {
        setpgid(0, 0);
        _exit(setsid() == -1 && errno == EPERM ? 0 : 1);
    }
    waitpid(a, &st, 0);
    SAY("setsid as a group leader fails with EPERM: %s", pr_wstatus(st));
}

/* ======================================================================================
 * pipes
 */
static void group_pipes(void) {
    int p[2], st;
    pid_t pid;
    char buf[256];
    ssize_t n, total;
    long sum, want;

    /* dup2 a pipe onto the child's stdout, exec: the parent reads the output */
    pipe(p);
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        close(p[0]);
        dup2(p[1], 1);
        close(p[1]);
        exec_self("echo", NULL);
        _exit(127);
    }
    close(p[1]);
    total = 0;
    while ((n = read(p[0], buf + total, sizeof buf - 1 - total)) > 0)
        total += n;
    buf[total] = 0;
    close(p[0]);
    waitpid(pid, &st, 0);
    SAY("child wrote %zd bytes: [%s] %s", total, strtok(buf, "\n"), pr_wstatus(st));

    /* pipe2(O_CLOEXEC): the descriptor is gone in the exec'd child */
    pipe2(p, O_CLOEXEC);
    SAY("O_CLOEXEC set %d", (fcntl(p[0], F_GETFD) & FD_CLOEXEC) != 0);
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        char num[16];
        snprintf(num, sizeof num, "%d", p[0]);
        exec_self("fdcheck", num);
        _exit(127);
    }
    waitpid(pid, &st, 0);
    SAY("fdcheck child %s", pr_wstatus(st));
    close(p[0]);
    close(p[1]);

    /* more than the pipe's capacity through it */
    pipe(p);
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        static unsigned char big[200000];
        close(p[0]);
        for (unsigned i = 0; i < sizeof big; i++)
            big[i] = (unsigned char)(i * 7);
        for (size_t off = 0; off < sizeof big;) {
            ssize_t w = write(p[1], big + off, sizeof big - off);
            if (w <= 0)
                _exit(3);
            off += (size_t)w;
        }
        _exit(0);
    }
    close(p[1]);
    total = 0;
    sum = 0;
    want = 0;
    for (unsigned i = 0; i < 200000; i++)
        want += (unsigned char)(i * 7);
    while ((n = read(p[0], buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++)
            sum += (unsigned char)buf[i];
        total += n;
    }
    waitpid(pid, &st, 0);
    SAY("200000 bytes through a pipe: got %zd sum-ok %d EOF %zd %s", total, sum == want, n,
        pr_wstatus(st));
    close(p[0]);

    /* no reader: SIGPIPE kills; ignored: EPIPE */
    pipe(p);
    close(p[0]);
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        write(p[1], "x", 1);
        _exit(0);
    }
    waitpid(pid, &st, 0);
    SAY("write without a reader: %s", pr_wstatus(st));
    signal(SIGPIPE, SIG_IGN);
    SAY("write without a reader, SIGPIPE ignored: %s", RE(write(p[1], "x", 1)));
    signal(SIGPIPE, SIG_DFL);
    close(p[1]);

    pipe(p);
    close(p[1]);
    SAY("read without a writer: %s", RE(read(p[0], buf, 1)));
    close(p[0]);
    pipe2(p, O_NONBLOCK);
    SAY("read of an empty O_NONBLOCK pipe: %s", RE(read(p[0], buf, 1)));
    SAY("dup2 onto itself %d", dup2(p[0], p[0]) == p[0]);
    SAY("dup2 from a bad fd %s", RE(dup2(999, 50)));
    SAY("dup3 onto itself %s", RE(dup3(p[0], p[0], 0)));
    close(p[0]);
    close(p[1]);
}

/* ======================================================================================
 * sigchld
 */
static volatile int chld_count, chld_code, chld_status, chld_pid;
static void h_chld(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    chld_count++;
    chld_code = si->si_code;
    chld_status = si->si_status;
    chld_pid = si->si_pid;
}

/* Wait (at most 2 s) for the n-th SIGCHLD: a missing one is a wrong line, not a hang. */
static void wait_chld(int n) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGCHLD);
    for (int i = 0; i < 200 && chld_count < n; i++) {
        sigprocmask(SIG_UNBLOCK, &s, NULL);
        msleep(10);
        sigprocmask(SIG_BLOCK, &s, NULL);
    }
    if (chld_count < n)
        SAY("no SIGCHLD number %d within 2 s", n);
}

static void group_sigchld(void) {
    struct sigaction sa;
    sigset_t blk;
    pid_t pid;
    int st, go[2];

    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = h_chld;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGCHLD, &sa, NULL);
    sigemptyset(&blk);
    sigaddset(&blk, SIGCHLD);
    sigprocmask(SIG_BLOCK, &blk, NULL);
    pipe(go);

    pid = child_waiting(go[0], 7);
    write(go[1], "x", 1);
    wait_chld(1);
    SAY("exited: code %d status %d pid-ok %d", chld_code, chld_status, chld_pid == pid);
    waitpid(pid, &st, 0);

    pid = child_waiting(go[0], 0);
    kill(pid, SIGTERM);
    wait_chld(2);
    SAY("killed: code %d status %d pid-ok %d", chld_code, chld_status, chld_pid == pid);
    waitpid(pid, &st, 0);

    pid = child_waiting(go[0], 0);
    kill(pid, SIGSTOP);
    wait_chld(3);
    SAY("stopped: code %d status %d pid-ok %d", chld_code, chld_status, chld_pid == pid);
    kill(pid, SIGCONT);
    wait_chld(4);
    SAY("continued: code %d status %d pid-ok %d", chld_code, chld_status, chld_pid == pid);
    kill(pid, SIGKILL);
    wait_chld(5);
    waitpid(pid, &st, 0);

    /* SA_NOCLDSTOP: no SIGCHLD for a stop */
    sa.sa_flags = SA_SIGINFO | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
    chld_count = 0;
    pid = child_waiting(go[0], 0);
    kill(pid, SIGSTOP);
    waitpid(pid, &st, WUNTRACED);
    sigprocmask(SIG_UNBLOCK, &blk, NULL);
    sigprocmask(SIG_BLOCK, &blk, NULL);
    SAY("SA_NOCLDSTOP: SIGCHLD count after a stop %d", chld_count);
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    sigprocmask(SIG_UNBLOCK, &blk, NULL);

    /* SIG_IGN and SA_NOCLDWAIT: children are reaped by the kernel */
    signal(SIGCHLD, SIG_IGN);
    pid = child_waiting(go[0], 5);
    write(go[1], "x", 1);
    SAY("SIG_IGN: waitpid %s", RE(waitpid(pid, &st, 0)));
    sa.sa_flags = SA_SIGINFO | SA_NOCLDWAIT;
    sigaction(SIGCHLD, &sa, NULL);
    chld_count = 0;
    pid = child_waiting(go[0], 5);
    write(go[1], "x", 1);
    SAY("SA_NOCLDWAIT: waitpid %s", RE(waitpid(pid, &st, 0)));
    SAY("SA_NOCLDWAIT: SIGCHLD still sent %d", chld_count);
    signal(SIGCHLD, SIG_DFL);
}

/* ======================================================================================
 * shadow-stack groups
 */
/* a SIGSEGV catcher: records, then resumes at pr_resume */
static volatile int sg_count, sg_code;
static volatile uint64_t sg_addr, sg_err, pr_resume;
static void h_segv(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    (void)sig;
    sg_count++;
    sg_code = si->si_code;
    sg_addr = (uint64_t)si->si_addr;
    sg_err = (uint64_t)uc->uc_mcontext.gregs[REG_ERR];
    if (!pr_resume || sg_count > 10)
        _exit(99);
    uc->uc_mcontext.gregs[REG_RIP] = (greg_t)pr_resume;
    pr_resume = 0;
}

static void catch_segv(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = h_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
}

/* one instruction that may fault, resumed after by h_segv */
#define TRY(insn, ...)                                                                    \
    do {                                                                                  \
        sg_count = 0;                                                                     \
        asm volatile("leaq 1f(%%rip), %%r11\n\t"                                          \
                     "movq %%r11, pr_resume(%%rip)\n\t" insn "\n1:\n\t"                   \
                     "movq $0, pr_resume(%%rip)" ::__VA_ARGS__                            \
                     : "r11", "memory", "cc");                                            \
    } while (0)

static int is_ss_at(uint64_t addr) {
    uint64_t s, e;
    return proc_mapping_of(addr, &s, &e) && pr_is_ss(s) == 1;
}

__attribute__((noinline)) static long depth_work(long n) {
    long r;
    if (n == 0)
        return 1;
    r = depth_work(n - 1);
    return (r * 5 + n) % 10007;
}

/* ---- fork ---- */
static uint64_t *fs_stack; /* a map_shadow_stack area, 2 pages */
static volatile uint64_t fork_pre, fork_after;
static int fork_go[2];

/* forks; both sides return from here through the (now copy-on-write) shadow stack */
__attribute__((noinline)) static long do_fork(void) {
    uint64_t after;
    long pid;
    fork_pre = ss_get_ssp();
    pid = pr_fork_ssp(&after);
    fork_after = after;
    return pid;
}

static volatile uint64_t other_thread_ssp;
static volatile int other_release;
static void *other_thread(void *arg) {
    (void)arg;
    other_thread_ssp = ss_get_ssp();
    while (!other_release)
        pr_relax();
    return NULL;
}

static void group_fork(void) {
    long pid;
    int st;
    uint64_t top = ss_get_ssp();
    char c;
    pthread_t th;

    /* a second thread: its shadow stack is part of the mm the child copies */
    pthread_create(&th, NULL, other_thread, NULL);
    while (!other_thread_ssp)
        pr_relax();

    catch_segv();
    fs_stack = (uint64_t *)ss_map(0, 2 * PAGE, SHADOW_STACK_SET_TOKEN);
    ss_wrss(&fs_stack[0], 0xAAAA);
    pipe(fork_go);
    fflush(stdout);
    pid = do_fork();
    if (pid == 0) {
        /* we returned from do_fork through a copied shadow-stack page */
        pr_begin();
        CHECK(fork_after == fork_pre, "child SSP after fork %#lx, parent's %#lx",
              (unsigned long)fork_after, (unsigned long)fork_pre);
        CHECK(ss_get_ssp() == top, "child SSP back in the caller");
        CHECK(pr_ss_status() == (long)(ARCH_SHSTK_SHSTK | ARCH_SHSTK_WRSS),
              "child inherits SHSTK|WRSS: %#lx", pr_ss_status());
        pr_ok("fork-child-keeps-ssp");
        CHECK(is_ss_at((uint64_t)fs_stack), "map_shadow_stack area is a shadow stack in the "
              "child");
        CHECK(is_ss_at(top - 8), "the thread's shadow stack is one in the child");
        CHECK(is_ss_at(other_thread_ssp), "the other thread's shadow stack is copied too "
              "(nothing frees it in the child)");
        CHECK(fs_stack[0] == 0xAAAA, "child sees the pre-fork contents");
        ss_wrss(&fs_stack[0], 0xBBBB);
        CHECK(fs_stack[0] == 0xBBBB, "child's WRSS landed in its copy");
        TRY("movq $1, (%0)", "r"(&fs_stack[1]));
        CHECK(sg_count == 1 && sg_code == SEGV_ACCERR && sg_addr == (uint64_t)&fs_stack[1],
              "normal store into the child's copy: SEGV_ACCERR (count %d code %d)", sg_count,
              sg_code);
        read(fork_go[0], &c, 1); /* the parent has written its copy */
        CHECK(fs_stack[1] == 0, "the parent's later WRSS is not seen: %#lx",
              (unsigned long)fs_stack[1]);
        pr_ok("fork-cow-shadow-stack");
        CHECK(depth_work(3000) == depth_work(3000), "calls and returns in the child");
        pr_ok("fork-child-returns");
        exit(ss_failures ? 1 : 0);
    }
    pr_begin();
    CHECK(fork_after == fork_pre, "parent SSP unchanged by fork");
    CHECK(ss_get_ssp() == top, "parent SSP back in the caller");
    ss_wrss(&fs_stack[1], 0xCCCC);
    CHECK(fs_stack[1] == 0xCCCC, "parent's WRSS after fork");
    write(fork_go[1], "x", 1);
    CHECK(waitpid((pid_t)pid, &st, 0) == pid && st == 0, "child: %s", pr_wstatus(st));
    CHECK(fs_stack[0] == 0xAAAA, "the child's WRSS did not reach the parent: %#lx",
          (unsigned long)fs_stack[0]);
    CHECK(is_ss_at((uint64_t)fs_stack) && is_ss_at(top - 8), "still shadow stacks");
    CHECK(depth_work(3000) == depth_work(3000), "calls and returns in the parent");
    other_release = 1;
    pthread_join(th, NULL);
    pr_ok("fork-parent-after");
}

/* ---- clone without CLONE_VM ---- */
static volatile uint64_t cn_parent_ssp;
static __attribute__((noreturn)) void cn_child(uint64_t ssp, void *arg) {
    (void)arg;
    /* a copy of the parent's memory: cn_parent_ssp holds the parent's SSP */
    pr_exit_group(ssp == cn_parent_ssp && ss_get_ssp() < ssp ? 0 : 1);
}

static void group_clone_novm(void) {
    static const long flag_sets[] = {SIGCHLD, CLONE_VFORK | SIGCHLD};
    static const char *names[] = {"clone(SIGCHLD)", "clone(CLONE_VFORK|SIGCHLD)"};
    pr_begin();
    for (int i = 0; i < 2; i++) {
        int st = -1;
        long pid;
        int before = pr_count_ss();
        cn_parent_ssp = ss_get_ssp();
        pid = pr_clone_raw(SYS_clone, flag_sets[i], 0, 0, 0, 0, cn_child, NULL);
        CHECK(pid > 0, "%s: %ld", names[i], pid);
        CHECK(waitpid((pid_t)pid, &st, 0) == pid && st == 0,
              "%s child: SSP not the parent's? %s", names[i], pr_wstatus(st));
        CHECK(ss_get_ssp() == cn_parent_ssp, "%s: parent SSP", names[i]);
        CHECK(pr_count_ss() == before, "%s: no new shadow stack in the parent", names[i]);
    }
    pr_ok("clone-novm-child-keeps-ssp");
}

/* ---- vfork, inline ---- */
static volatile uint64_t vf_child_ssp, vf_child_ssp2;
static __attribute__((noreturn)) void vf_child_exit(uint64_t ssp, void *arg) {
    (void)arg;
    vf_child_ssp = ssp;
    pr_exit(7);
}

__attribute__((noinline)) static uint64_t vf_callee(uint64_t x) {
    return ss_get_ssp() + x;
}

static __attribute__((noreturn)) void vf_child_call(uint64_t ssp, void *arg) {
    (void)arg;
    vf_child_ssp = ssp;
    vf_child_ssp2 = vf_callee(0); /* CALL/RET on the parent's shadow stack, below its SSP */
    pr_exit(8);
}

static __attribute__((noreturn)) void vf_child_exec(uint64_t ssp, void *arg) {
    static char *argv[] = {self_path, "vfork-exec-child", NULL};
    (void)arg;
    vf_child_ssp = ssp;
    pr_sys3(SYS_execve, self_path, argv, environ);
    pr_exit(126);
}

__attribute__((noinline)) static long vfork_wrapper(pr_child_fn fn, uint64_t *pre) {
    *pre = ss_get_ssp();
    return pr_clone_raw(SYS_vfork, 0, 0, 0, 0, 0, fn, NULL);
}

static void group_vfork_raw(void) {
    uint64_t pre = 0, top = ss_get_ssp(), s, e, s2, e2;
    int st = -1, nss = pr_count_ss();
    long pid;

    pr_begin();
    pid = vfork_wrapper(vf_child_exit, &pre);
    CHECK(pid > 0, "vfork %ld", pid);
    CHECK(vf_child_ssp == pre, "the child ran with the parent's SSP: %#lx vs %#lx",
          (unsigned long)vf_child_ssp, (unsigned long)pre);
    CHECK(waitpid((pid_t)pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 7,
          "child %s", pr_wstatus(st));
    CHECK(ss_get_ssp() == top, "parent returned from the vfork wrapper");
    CHECK(pr_count_ss() == nss, "no shadow stack made for the vfork child");
    pr_ok("vfork-raw-exit");

    vf_child_ssp = 0;
    pid = vfork_wrapper(vf_child_exec, &pre);
    CHECK(vf_child_ssp == pre, "exec child ran with the parent's SSP");
    CHECK(waitpid((pid_t)pid, &st, 0) == pid && st == 0, "exec'd child: %s", pr_wstatus(st));
    CHECK(ss_get_ssp() == top, "parent returned after the child's exec");
    CHECK(proc_mapping_of(top - 8, &s, &e) && pr_is_ss(s) == 1,
          "the parent's shadow stack survives the child's exec");
    CHECK(pr_count_ss() == nss, "shadow stacks unchanged");
    pr_ok("vfork-raw-exec");

    pid = vfork_wrapper(vf_child_call, &pre);
    CHECK(vf_child_ssp == pre, "call child ran with the parent's SSP");
    CHECK(proc_mapping_of(vf_child_ssp2, &s2, &e2) && proc_mapping_of(pre, &s, &e) && s == s2 &&
              vf_child_ssp2 < pre,
          "the child's call used the parent's shadow stack below its SSP (%#lx < %#lx)",
          (unsigned long)vf_child_ssp2, (unsigned long)pre);
    CHECK(waitpid((pid_t)pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 8,
          "child %s", pr_wstatus(st));
    CHECK(ss_get_ssp() == top, "parent returned");
    CHECK(depth_work(100) == depth_work(100), "parent calls and returns");
    pr_ok("vfork-raw-call");
}

static void vfork_exec_child(void) {
    /* a fresh image: no features, no shadow stack */
    int bad = pr_ss_status() != 0 || pr_count_ss() != 0 || ss_get_ssp() != 0;
    exit(bad ? 1 : 0);
}

/* ---- vfork through Debian's glibc ---- */
__attribute__((noinline)) static void glibc_vfork(void) {
    pid_t pid;
    SAY("calling vfork");
    pid = vfork();
    if (pid == 0)
        _exit(0);
    SAY("parent survived vfork (pid %d)", pid);
}

/* ---- exec ---- */
static void *exec_thread(void *arg) {
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

static void group_exec(void) {
    pthread_t th;
    /* WRSS on, WRSS locked; a second thread with its own shadow stack */
    ss_arch_prctl(ARCH_SHSTK_LOCK, ARCH_SHSTK_WRSS);
    pthread_create(&th, NULL, exec_thread, NULL);
    SAY("before exec: status %#lx ss-vmas %d", pr_ss_status(), pr_count_ss());
    exec_self("exec-after", NULL);
    SAY("FAIL execve: %s", strerror(errno));
}

static void group_exec_after(void) {
    char feat[64], locked[64], threads[64];
    long r;
    pr_begin();
    CHECK_EQ(pr_ss_status(), 0, "ARCH_SHSTK_STATUS after exec");
    pr_status_line("/proc/self/status", "x86_Thread_features", feat, sizeof feat);
    pr_status_line("/proc/self/status", "x86_Thread_features_locked", locked, sizeof locked);
    pr_status_line("/proc/self/status", "Threads", threads, sizeof threads);
    CHECK(strcmp(feat, "\t") == 0, "x86_Thread_features after exec: \"%s\"", feat);
    CHECK(strcmp(locked, "\t") == 0, "x86_Thread_features_locked after exec: \"%s\"", locked);
    CHECK(strcmp(threads, "\t1") == 0, "Threads after exec: \"%s\"", threads);
    CHECK_EQ(pr_count_ss(), 0, "shadow-stack VMAs after exec");
    CHECK_EQ(ss_get_ssp(), 0, "SSP after exec");
    /* the lock is gone: WRSS can be enabled (after SHSTK) */
    r = ss_enable();
    CHECK_EQ(r, 0, "ENABLE(SHSTK) after exec");
    CHECK_EQ(ss_arch_prctl(ARCH_SHSTK_ENABLE, ARCH_SHSTK_WRSS), 0, "ENABLE(WRSS) after exec");
    CHECK_EQ(pr_count_ss(), 1, "one new shadow stack");
    pr_ok("exec-reset");
    exit(ss_failures ? 1 : 0);
}

static void group_exec_into(const char *path) {
    char *argv[] = {(char *)path, "exec-report", NULL};
    if (pr_ss_status() == 0) {
        SS_ON_OR_DIE(1);
        ss_arch_prctl(ARCH_SHSTK_LOCK, ARCH_SHSTK_WRSS);
    }
    SAY("before exec status %#lx", pr_ss_status());
    execv(path, argv);
    SAY("FAIL execve: %s", strerror(errno));
    exit(1);
}

static void group_exec_report(void) {
    char locked[64];
    size_t n;
    pr_status_line("/proc/self/status", "x86_Thread_features_locked", locked, sizeof locked);
    n = strlen(locked);
    while (n && (locked[n - 1] == ' ' || locked[n - 1] == '\t'))
        locked[--n] = 0;
    SAY("after-exec status %#lx locked \"%s\" ssp-set %d ss-vmas %d", pr_ss_status(),
        locked[0] == '\t' ? locked + 1 : locked, ss_get_ssp() != 0, pr_count_ss());
    exit(0);
}

/* ---- /proc/self/mem (§11.4, §16 test 4) ---- */
static int mem_fd = -1;
static long gup_read(void *addr, uint64_t *val) {
    return pread(mem_fd, val, 8, (off_t)(uintptr_t)addr);
}
static long gup_write(void *addr, uint64_t val) {
    return pwrite(mem_fd, &val, 8, (off_t)(uintptr_t)addr);
}

static void group_gup(void) {
    uint64_t *S, v = 0;
    long pid;
    int st;
    char *ro;

    catch_segv();
    mem_fd = open("/proc/self/mem", O_RDWR);
    CHECK(mem_fd >= 0, "open /proc/self/mem");

    pr_begin();
    S = (uint64_t *)ss_map(0, 2 * PAGE, SHADOW_STACK_SET_TOKEN);
    CHECK_EQ(gup_read(S, &v), 8, "GUP read of a shadow stack");
    TRY("wrssq %0, (%1)", "r"(1UL), "r"(S));
    CHECK(sg_count == 0, "WRSS after a GUP read: SIGSEGV");
    CHECK(S[0] == 1, "WRSS landed");
    pr_ok("gup-read-wrss");
    CHECK_EQ(gup_write(S, 0x12345678), 8, "GUP write of a shadow stack (FOLL_FORCE)");
    TRY("wrssq %0, (%1)", "r"(2UL), "r"(S + 1));
    CHECK(sg_count == 0, "WRSS after a GUP write: SIGSEGV");
    pr_ok("gup-write-wrss");
    CHECK_EQ(gup_read(S, &v), 8, "GUP read");
    TRY("movq $3, (%0)", "r"(S));
    CHECK(sg_count == 1 && sg_code == SEGV_ACCERR && sg_addr == (uint64_t)S,
          "normal store after a GUP read: SIGSEGV/SEGV_ACCERR (count %d code %d)", sg_count,
          sg_code);
    pr_ok("gup-read-store");
    CHECK_EQ(gup_write(S + 2, 5), 8, "GUP write");
    TRY("movq $3, (%0)", "r"(S + 2));
    CHECK(sg_count == 1 && sg_code == SEGV_ACCERR, "normal store after a GUP write: "
          "SIGSEGV/SEGV_ACCERR (count %d code %d)", sg_count, sg_code);
    CHECK(is_ss_at((uint64_t)S), "still a shadow stack after GUP writes");
    pr_ok("gup-write-store");

    CHECK(S[0] == 0x12345678, "the GUP write is visible to a normal read: %#lx",
          (unsigned long)S[0]);
    CHECK(S[2] == 5, "second GUP write visible");
    CHECK(gup_read(S + 1, &v) == 8 && v == 2, "GUP read sees the WRSS value: %#lx",
          (unsigned long)v);
    {
        /* the thread's own shadow stack: the slot at SSP inside a call */
        uint64_t *ssp = (uint64_t *)ss_get_ssp();
        CHECK(gup_read(ssp - 1, &v) == 8 && v == ssp[-1], "GUP read of the live shadow stack");
    }
    pr_ok("gup-contents");

    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        int fd = open("/proc/self/mem", O_RDWR);
        uint64_t val = 0x12345678, back = 0;
        if (pwrite(fd, &val, 8, (off_t)(uintptr_t)(S + 3)) != 8)
            _exit(2);
        if (pread(fd, &back, 8, (off_t)(uintptr_t)(S + 3)) != 8 || back != val || S[3] != val)
            _exit(3);
        _exit(0);
    }
    CHECK(waitpid((pid_t)pid, &st, 0) == pid && st == 0, "child: %s", pr_wstatus(st));
    CHECK(S[3] != 0x12345678, "the child's GUP write reached the parent");
    pr_ok("gup-fork");

    ro = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK_EQ(gup_write(ro + 8, 77), 8, "GUP write into a read-only private mapping");
    CHECK(*(uint64_t *)(ro + 8) == 77, "visible");
    TRY("movq $3, (%0)", "r"(ro));
    CHECK(sg_count == 1 && sg_code == SEGV_ACCERR, "still read-only for normal stores");
    pr_ok("gup-readonly-normal");
    close(mem_fd);
}

/* ---- fork of a process with a 4 GiB shadow stack ---- */
static void group_fork_4g(void) {
    uint64_t s, e, top = ss_get_ssp();
    struct timespec t0, t1;
    double dt;
    pr_begin();
    CHECK(proc_mapping_of(top - 8, &s, &e), "shadow stack mapped");
    CHECK(e - s == (1UL << 32), "4 GiB shadow stack (RLIMIT_STACK infinity): %#lx",
          (unsigned long)(e - s));
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 20; i++) {
        int st = -1;
        pid_t pid;
        fflush(stdout);
        pid = fork();
        if (pid == 0)
            _exit(depth_work(200) == depth_work(200) ? 0 : 1);
        CHECK(waitpid(pid, &st, 0) == pid && st == 0, "child %d: %s", i, pr_wstatus(st));
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    dt = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    SAY("20 forks with a 4 GiB shadow stack: %.3f s", dt);
    pr_ok("fork-4g");
}

/* ====================================================================================== */
int main(int argc, char **argv) {
    const char *g = argc > 1 ? argv[1] : "";
    ssize_t n = readlink("/proc/self/exe", self_path, sizeof self_path - 1);
    self_path[n > 0 ? n : 0] = 0;

    if (!strcmp(g, "wait"))
        group_wait();
    else if (!strcmp(g, "pgrp"))
        group_pgrp();
    else if (!strcmp(g, "pipes"))
        group_pipes();
    else if (!strcmp(g, "sigchld"))
        group_sigchld();
    else if (!strcmp(g, "echo"))
        SAY("hello from the exec'd child");
    else if (!strcmp(g, "fdcheck"))
        return fcntl(atoi(argv[2]), F_GETFD) == -1 && errno == EBADF ? 0 : 1;
    else if (!strcmp(g, "exec-after"))
        group_exec_after();
    else if (!strcmp(g, "exec-report"))
        group_exec_report();
    else if (!strcmp(g, "vfork-exec-child"))
        vfork_exec_child();
    else if (!strcmp(g, "exec-into"))
        group_exec_into(argv[2]);
    else {
        if (!strcmp(g, "fork-4g")) {
            struct rlimit rl = {RLIM_INFINITY, RLIM_INFINITY};
            setrlimit(RLIMIT_STACK, &rl);
        }
        SS_ON_OR_DIE(1);
        if (!strcmp(g, "fork"))
            group_fork();
        else if (!strcmp(g, "clone-novm"))
            group_clone_novm();
        else if (!strcmp(g, "vfork-raw"))
            group_vfork_raw();
        else if (!strcmp(g, "vfork-glibc"))
            glibc_vfork();
        else if (!strcmp(g, "exec"))
            group_exec();
        else if (!strcmp(g, "gup"))
            group_gup();
        else if (!strcmp(g, "fork-4g"))
            group_fork_4g();
        else
            SAY("unknown group %s", g);
        fflush(stdout);
        exit(ss_failures ? 1 : 0);
    }
    fflush(stdout);
    return ss_failures ? 1 : 0;
}
