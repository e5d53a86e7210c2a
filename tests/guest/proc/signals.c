/*
 * Signals (issue 5, "Signals"; SPEC.md §8, §11.6, §16 test 3).
 *
 * Usage: signals GROUP
 * Groups without shadow stacks print "key value" lines that tests/test_signals.py
 * compares with a native run of the same program (Linux-identical behaviour):
 *   info      siginfo of kill/tgkill/sigqueue, rt_sigaction errors and SA_RESTORER
 *   flags     SA_NODEFER, sa_mask, SIG_IGN; resethand: SA_RESETHAND
 *   mask      rt_sigprocmask, pending sets, unblock delivers at once
 *   altstack  sigaltstack and SA_ONSTACK
 *   suspend   rt_sigsuspend with the signal already pending; suspend-later: sent later
 *   alarm     alarm, pause, ITIMER_REAL (run with --virtual-time)
 *   restart   SA_RESTART vs EINTR for a read blocked in the kernel
 *   default   default actions: terminate, core, ignore, stop/continue
 *   frame     fault frames (REG_TRAPNO, REG_ERR, cr2, si_code), handlers that edit the
 *             context (RIP, RAX, XMM0 in the fpstate, the signal mask)
 *   threads   per-thread pending and blocked sets
 * Shadow-stack groups (print "ok PART"; run with --shstk off, both engines):
 *   ss-frame     the §8.1 frame: [SSP] = restorer, [SSP+8] = oldSSP|1<<63, SSP restored
 *   ss-altstack  a handler on an alternate stack runs on the same shadow stack
 *   ss-deep      a handler during deep recursion, on an alternate stack, and timer signals
 *   ss-cp        #CP: SEGV_CPERR, trapno 21, err 1; the handler repairs with WRSS (§16 3)
 *   ss-thread    a handler in a thread runs on the thread's shadow stack
 *   ss-forge     rt_sigreturn does not check that the token names P+8 (§8.2)
 * Fatal shadow-stack groups (the process must die with SIGSEGV, exit status 139):
 *   ss-bad-nobit, ss-bad-unaligned, ss-bad-high, ss-no-restorer, ss-push-fault (the
 *   shadow stack is full: the frame cannot be pushed), ss-bad-vma (mainline:
 *   dies; 6.6: survives, SSP not page-aligned), ss-bad-vma-page (both die).
 */
#define _GNU_SOURCE
#include "extra.h"

#include <pthread.h>
#include <sys/time.h>
#include <time.h>

#define SIGSETSIZE 8

struct ksigaction {
    void *handler;
    unsigned long flags;
    void *restorer;
    uint64_t mask;
};
#define SA_RESTORER_ 0x04000000UL

static long raw_sigaction(int sig, const struct ksigaction *act, struct ksigaction *old,
                          long size) {
    return pr_sys4(SYS_rt_sigaction, sig, act, old, size);
}

static int install(int sig, void (*fn)(int, siginfo_t *, void *), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fn;
    sa.sa_flags = SA_SIGINFO | flags;
    sigemptyset(&sa.sa_mask);
    return sigaction(sig, &sa, NULL);
}

static uint64_t mask_now(void) {
    sigset_t s;
    sigprocmask(SIG_SETMASK, NULL, &s);
    return *(uint64_t *)&s;
}

static uint64_t pending_now(void) {
    sigset_t s;
    sigpending(&s);
    return *(uint64_t *)&s;
}

static pid_t gettid_(void) { return (pid_t)syscall(SYS_gettid); }

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void msleep(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- a generic recording handler ----------------------------------------------------- */
static volatile int h_count, h_sig, h_code, h_pid, h_uid, h_value, h_tid, h_depth, h_maxdepth;
static volatile uint64_t h_mask;
static volatile int h_reraise;

static void h_record(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    h_depth++;
    if (h_depth > h_maxdepth)
        h_maxdepth = h_depth;
    h_count++;
    h_sig = sig;
    h_code = si->si_code;
    h_pid = si->si_pid;
    h_uid = si->si_uid;
    h_value = si->si_value.sival_int;
    h_tid = gettid_();
    h_mask = mask_now();
    (void)uc;
    if (h_reraise > 0) {
        h_reraise--;
        raise(sig);
    }
    h_depth--;
}

static void h_reset(void) {
    h_count = h_sig = h_code = h_pid = h_uid = h_value = h_tid = h_depth = h_maxdepth = 0;
    h_mask = 0;
    h_reraise = 0;
}

/* ======================================================================================
 * info
 */
static void no_restorer_child(void) {
    struct ksigaction ka = {(void *)h_record, SA_SIGINFO, NULL, 0};
    long r = raw_sigaction(SIGUSR1, &ka, NULL, SIGSETSIZE);
    if (r != 0)
        _exit(50);
    kill(getpid(), SIGUSR1);
    _exit(51); /* not reached: the frame cannot be built (no SA_RESTORER) */
}

static void group_info(void) {
    struct ksigaction ka, old;
    union sigval v;

    h_reset();
    install(SIGUSR1, h_record, 0);
    kill(getpid(), SIGUSR1);
    SAY("kill count %d sig %d code %d pid-is-self %d uid-is-self %d tid-is-main %d", h_count,
        h_sig, h_code, h_pid == getpid(), h_uid == (int)getuid(), h_tid == getpid());
    h_reset();
    syscall(SYS_tgkill, getpid(), gettid_(), SIGUSR1);
    SAY("tgkill count %d code %d pid-is-self %d", h_count, h_code, h_pid == getpid());
    h_reset();
    v.sival_int = 4242;
    sigqueue(getpid(), SIGUSR1, v);
    SAY("sigqueue count %d code %d value %d", h_count, h_code, h_value);
    h_reset();
    raise(SIGUSR1);
    SAY("raise count %d code %d", h_count, h_code);

    /* the kernel's view of the action: glibc always adds SA_RESTORER */
    memset(&old, 0, sizeof old);
    raw_sigaction(SIGUSR1, NULL, &old, SIGSETSIZE);
    SAY("query handler-is-ours %d flags %#lx restorer-set %d", old.handler == (void *)h_record,
        old.flags, old.restorer != NULL);
    memset(&ka, 0, sizeof ka);
    ka.handler = SIG_DFL;
    SAY("rt_sigaction SIGKILL set %ld", raw_sigaction(SIGKILL, &ka, NULL, SIGSETSIZE));
    SAY("rt_sigaction SIGSTOP set %ld", raw_sigaction(SIGSTOP, &ka, NULL, SIGSETSIZE));
    SAY("rt_sigaction SIGKILL query %ld", raw_sigaction(SIGKILL, NULL, &old, SIGSETSIZE));
    SAY("rt_sigaction 0 %ld", raw_sigaction(0, NULL, &old, SIGSETSIZE));
    SAY("rt_sigaction 65 %ld", raw_sigaction(65, NULL, &old, SIGSETSIZE));
    SAY("rt_sigaction 64 %ld", raw_sigaction(64, NULL, &old, SIGSETSIZE));
    SAY("rt_sigaction sigsetsize 4 %ld", raw_sigaction(SIGUSR1, NULL, &old, 4));
    SAY("rt_sigaction bad act pointer %ld",
        raw_sigaction(SIGUSR1, (struct ksigaction *)8, NULL, SIGSETSIZE));
    /* a handler without SA_RESTORER: x86-64 cannot build the frame -> SIGSEGV */
    SAY("no SA_RESTORER child %s", pr_wstatus(pr_in_child(no_restorer_child)));
    SAY("kill sig 0 self %d", kill(getpid(), 0));
    SAY("kill sig 65 %s", RE(kill(getpid(), 65)));
}

/* ======================================================================================
 * flags
 */
static void group_flags(void) {
    struct sigaction sa;

    /* without SA_NODEFER: a re-raise inside the handler waits for the handler to return */
    h_reset();
    install(SIGUSR1, h_record, 0);
    h_reraise = 1;
    raise(SIGUSR1);
    SAY("defer count %d maxdepth %d mask-has-self %d", h_count, h_maxdepth,
        !!(h_mask & (1UL << (SIGUSR1 - 1))));
    /* SA_NODEFER: nested at once */
    h_reset();
    install(SIGUSR1, h_record, SA_NODEFER);
    h_reraise = 2;
    raise(SIGUSR1);
    SAY("nodefer count %d maxdepth %d mask-has-self %d", h_count, h_maxdepth,
        !!(h_mask & (1UL << (SIGUSR1 - 1))));
    /* sa_mask is added while the handler runs, and removed after */
    h_reset();
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = h_record;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGUSR2);
    sigaddset(&sa.sa_mask, SIGRTMIN + 3);
    sigaction(SIGUSR1, &sa, NULL);
    raise(SIGUSR1);
    SAY("sa_mask in-handler %#lx after %#lx", (unsigned long)h_mask,
        (unsigned long)mask_now());
    /* SIG_IGN drops the signal even when sent */
    signal(SIGUSR2, SIG_IGN);
    raise(SIGUSR2);
    SAY("ignored survived 1 pending %#lx", (unsigned long)pending_now());
}

/* SA_RESETHAND: the first delivery resets the handler (only the handler) to SIG_DFL */
static void group_resethand(void) {
    struct sigaction old;
    h_reset();
    install(SIGUSR2, h_record, SA_RESETHAND);
    raise(SIGUSR2);
    sigaction(SIGUSR2, NULL, &old);
    SAY("resethand count %d now-default %d flags-after %#x mask-has-self %d", h_count,
        old.sa_handler == SIG_DFL, (unsigned)(old.sa_flags & ~SA_RESTORER_),
        !!(h_mask & (1UL << (SIGUSR2 - 1))));
}

/* ======================================================================================
 * mask
 */
static void group_mask(void) {
    sigset_t s, old;
    uint64_t raw_old = 0, raw_set;
    long r;

    h_reset();
    install(SIGUSR1, h_record, 0);
    install(SIGRTMIN + 1, h_record, 0);
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    sigaddset(&s, SIGKILL);
    sigaddset(&s, SIGSTOP);
    sigaddset(&s, SIGRTMIN + 1);
    sigprocmask(SIG_BLOCK, &s, &old);
    SAY("blocked %#lx (SIGKILL and SIGSTOP silently dropped)", (unsigned long)mask_now());
    raise(SIGUSR1);
    raise(SIGUSR1);
    raise(SIGRTMIN + 1);
    raise(SIGRTMIN + 1);
    SAY("while blocked count %d pending %#lx", h_count, (unsigned long)pending_now());
    sigprocmask(SIG_UNBLOCK, &s, NULL);
    /* delivered before sigprocmask returns: standard signals once, RT signals queued */
    SAY("after unblock count %d pending %#lx", h_count, (unsigned long)pending_now());
    raw_set = 1UL << (SIGUSR2 - 1);
    r = pr_sys4(SYS_rt_sigprocmask, SIG_SETMASK, &raw_set, &raw_old, SIGSETSIZE);
    SAY("setmask %ld old %#lx now %#lx", r, (unsigned long)raw_old, (unsigned long)mask_now());
    SAY("how 3 %ld", pr_sys4(SYS_rt_sigprocmask, 3, &raw_set, NULL, SIGSETSIZE));
    SAY("how 3 no set %ld", pr_sys4(SYS_rt_sigprocmask, 3, NULL, &raw_old, SIGSETSIZE));
    SAY("sigsetsize 16 %ld", pr_sys4(SYS_rt_sigprocmask, SIG_BLOCK, &raw_set, NULL, 16));
    SAY("bad set pointer %ld", pr_sys4(SYS_rt_sigprocmask, SIG_BLOCK, 8, NULL, SIGSETSIZE));
    raw_set = 0;
    pr_sys4(SYS_rt_sigprocmask, SIG_SETMASK, &raw_set, NULL, SIGSETSIZE);
    /* sigpending through the raw call, size checked */
    SAY("rt_sigpending size 4 %ld", pr_sys2(SYS_rt_sigpending, &raw_set, 4));
}

/* ======================================================================================
 * altstack
 */
static volatile uint64_t alt_rsp;
static volatile int alt_onstack_flag;
static void h_alt(int sig, siginfo_t *si, void *ucv) {
    stack_t cur;
    ucontext_t *uc = ucv;
    alt_rsp = (uint64_t)__builtin_frame_address(0);
    sigaltstack(NULL, &cur);
    alt_onstack_flag = cur.ss_flags;
    (void)sig;
    (void)si;
    (void)uc;
}

static void group_altstack(void) {
    static char altmem[65536] __attribute__((aligned(16)));
    stack_t ss, old;
    uint64_t lo = (uint64_t)altmem, hi = lo + sizeof altmem;
    int r;

    memset(&old, 0, sizeof old);
    r = sigaltstack(NULL, &old);
    SAY("initial %d flags %d size %zu sp-null %d", r, old.ss_flags, old.ss_size, old.ss_sp == NULL);
    ss.ss_sp = altmem;
    ss.ss_size = 1024;
    ss.ss_flags = 0;
    SAY("too small %s", RE(sigaltstack(&ss, NULL)));
    ss.ss_size = sizeof altmem;
    ss.ss_flags = 5;
    SAY("bad flags %s", RE(sigaltstack(&ss, NULL)));
    ss.ss_flags = 0;
    SAY("set %d", sigaltstack(&ss, NULL));
    sigaltstack(NULL, &old);
    SAY("query flags %d size-ok %d sp-ok %d", old.ss_flags, old.ss_size == sizeof altmem,
        old.ss_sp == altmem);
    install(SIGUSR1, h_alt, SA_ONSTACK);
    raise(SIGUSR1);
    SAY("onstack handler on altstack %d flags-in-handler %d", alt_rsp >= lo && alt_rsp < hi,
        alt_onstack_flag);
    install(SIGUSR1, h_alt, 0);
    raise(SIGUSR1);
    SAY("no SA_ONSTACK handler on altstack %d flags-in-handler %d",
        alt_rsp >= lo && alt_rsp < hi, alt_onstack_flag);
    ss.ss_flags = SS_DISABLE;
    SAY("disable %d", sigaltstack(&ss, NULL));
    sigaltstack(NULL, &old);
    SAY("after disable flags %d", old.ss_flags);
    install(SIGUSR1, h_alt, SA_ONSTACK);
    raise(SIGUSR1);
    SAY("disabled: on altstack %d", alt_rsp >= lo && alt_rsp < hi);
}

/* ======================================================================================
 * suspend, suspend-later, alarm (alarm: run with --virtual-time, or it takes a second)
 */
static void group_suspend(void) {
    sigset_t blk, empty;
    int r, e;

    h_reset();
    install(SIGUSR1, h_record, 0);
    sigemptyset(&blk);
    sigaddset(&blk, SIGUSR1);
    sigprocmask(SIG_BLOCK, &blk, NULL);
    raise(SIGUSR1);
    sigemptyset(&empty);
    sigaddset(&empty, SIGUSR2);
    errno = 0;
    r = sigsuspend(&empty);
    e = errno;
    SAY("sigsuspend %d errno %d count %d mask-in-handler %#lx mask-after %#lx", r, e, h_count,
        (unsigned long)h_mask, (unsigned long)mask_now());
    sigprocmask(SIG_UNBLOCK, &blk, NULL);
}

/* a signal that arrives while rt_sigsuspend sleeps (sent by a thread) */
static pid_t ss_main_tid;
static void *sus_thread(void *arg) {
    (void)arg;
    msleep(20);
    syscall(SYS_tgkill, getpid(), ss_main_tid, SIGUSR1);
    return NULL;
}

static void group_suspend_later(void) {
    sigset_t blk, empty;
    pthread_t th;
    int r, e;

    h_reset();
    install(SIGUSR1, h_record, 0);
    sigemptyset(&blk);
    sigaddset(&blk, SIGUSR1);
    sigprocmask(SIG_BLOCK, &blk, NULL);
    ss_main_tid = gettid_();
    pthread_create(&th, NULL, sus_thread, NULL);
    sigemptyset(&empty);
    errno = 0;
    r = sigsuspend(&empty);
    e = errno;
    SAY("sigsuspend (signal sent later) %d errno %d count %d mask-after %#lx", r, e, h_count,
        (unsigned long)mask_now());
    pthread_join(th, NULL);
    sigprocmask(SIG_UNBLOCK, &blk, NULL);
}

static void group_alarm(void) {
    double t0, dt;
    int r, e;
    unsigned a;

    h_reset();
    install(SIGALRM, h_record, 0);
    SAY("alarm first %u", alarm(5));
    a = alarm(0);
    SAY("alarm cancel returns %u", a);
    t0 = now_s();
    alarm(1);
    errno = 0;
    r = pause();
    e = errno;
    dt = now_s() - t0;
    SAY("pause %d errno %d count %d sig %d code %d elapsed-about-1s %d", r, e, h_count, h_sig,
        h_code, dt >= 0.99 && dt < 1.9);
    /* ITIMER_REAL: SIGALRM every 10 ms, three times */
    {
        struct itimerval it = {{0, 10000}, {0, 10000}}, cur;
        h_reset();
        t0 = now_s();
        setitimer(ITIMER_REAL, &it, NULL);
        while (h_count < 3)
            pause();
        getitimer(ITIMER_REAL, &cur);
        memset(&it, 0, sizeof it);
        setitimer(ITIMER_REAL, &it, NULL);
        dt = now_s() - t0;
        SAY("itimer count %d interval-us %ld elapsed-at-least-30ms %d", h_count,
            (long)cur.it_interval.tv_usec, dt >= 0.029);
    }
}

/* ======================================================================================
 * restart
 */
static int rs_pipe[2];
static pid_t rs_main_tid;
static void *rs_thread(void *arg) {
    (void)arg;
    msleep(50);
    syscall(SYS_tgkill, getpid(), rs_main_tid, SIGUSR1);
    msleep(50);
    write(rs_pipe[1], "x", 1);
    return NULL;
}

static void restart_case(int flags, const char *what) {
    pthread_t th;
    char c = 0;
    ssize_t n;
    int e;
    h_reset();
    install(SIGUSR1, h_record, flags);
    pipe(rs_pipe);
    rs_main_tid = gettid_();
    pthread_create(&th, NULL, rs_thread, NULL);
    errno = 0;
    n = read(rs_pipe[0], &c, 1);
    e = errno;
    SAY("%s read %zd errno %d count %d", what, n, e, h_count);
    pthread_join(th, NULL);
    close(rs_pipe[0]);
    close(rs_pipe[1]);
}

static void group_restart(void) {
    restart_case(SA_RESTART, "SA_RESTART");
    restart_case(0, "no SA_RESTART");
}

/* ======================================================================================
 * default
 */
static void child_raise_term(void) { raise(SIGTERM); _exit(1); }
static void child_raise_usr1(void) { raise(SIGUSR1); _exit(1); }
static void child_raise_quit(void) {
    struct rlimit rl = {0, 0};
    setrlimit(RLIMIT_CORE, &rl);
    raise(SIGQUIT);
    _exit(1);
}
static void child_abort(void) {
    struct rlimit rl = {0, 0};
    setrlimit(RLIMIT_CORE, &rl);
    abort();
}
static void child_ignored(void) {
    raise(SIGCHLD);
    raise(SIGURG);
    raise(SIGWINCH);
    signal(SIGTERM, SIG_IGN);
    raise(SIGTERM);
    _exit(5);
}
static void child_kill_blocked(void) {
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, NULL);
    raise(SIGKILL);
    _exit(1);
}
static volatile int *volatile bad_ptr = (volatile int *)16;
static void child_segv(void) {
    *bad_ptr = 1;
    _exit(1);
}
static void child_segv_blocked(void) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGSEGV);
    sigprocmask(SIG_BLOCK, &s, NULL);
    install(SIGSEGV, h_record, 0); /* blocked fault signal: forced to the default */
    *bad_ptr = 1;
    _exit(1);
}

static volatile int *cont_seen;
static void h_cont(int sig) {
    (void)sig;
    *cont_seen = 1;
}

static void group_default(void) {
    volatile long *counter;
    pid_t pid;
    int st;
    siginfo_t si;
    long c1, c2;
    int r;

    SAY("SIGTERM %s", pr_wstatus(pr_in_child(child_raise_term)));
    SAY("SIGUSR1 %s", pr_wstatus(pr_in_child(child_raise_usr1)));
    SAY("SIGQUIT %s", pr_wstatus(pr_in_child(child_raise_quit)));
    SAY("abort %s", pr_wstatus(pr_in_child(child_abort)));
    SAY("ignored %s", pr_wstatus(pr_in_child(child_ignored)));
    SAY("SIGKILL blocked %s", pr_wstatus(pr_in_child(child_kill_blocked)));
    SAY("SIGSEGV %s", pr_wstatus(pr_in_child(child_segv)));
    SAY("SIGSEGV blocked %s", pr_wstatus(pr_in_child(child_segv_blocked)));

    /* stop / continue: a stopped child does not run; SIGCONT resumes it and runs its
     * SIGCONT handler.
     * The child first moves to a process group of its own. Linux discards SIGTSTP,
     * SIGTTIN and SIGTTOU with the default action in an orphaned process group (no
     * member has a parent in another group of the same session), so the SIGTSTP below
     * depends on how this program was started: run under setsid, or by a process whose
     * group is orphaned (a CI job, a shell without job control), the child keeps spinning
     * and waitid(WSTOPPED) never returns. Its own group, whose parent (this process) is
     * in another group of the same session, is never orphaned while we wait. The counter
     * starts only after setpgid, and every signal is sent after the counter moved. */
    counter = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cont_seen = (volatile int *)(counter + 8);
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        signal(SIGCONT, h_cont);
        for (;;)
            (*counter)++;
    }
    while (*counter < 1000)
        pr_relax();
    SAY("child in its own process group %d", getpgid(pid) == pid);
    kill(pid, SIGSTOP);
    r = waitpid(pid, &st, WUNTRACED);
    SAY("stop waitpid %d %s", r == pid, pr_wstatus(st));
    c1 = *counter;
    msleep(30);
    c2 = *counter;
    SAY("stopped child did not run %d", c1 == c2);
    r = waitpid(pid, &st, WNOHANG | WUNTRACED);
    SAY("WNOHANG while stopped (reported once) %d", r);
    kill(pid, SIGCONT);
    r = waitpid(pid, &st, WCONTINUED);
    SAY("continue waitpid %d %s", r == pid, pr_wstatus(st));
    while (*counter == c2 || !*cont_seen)
        pr_relax();
    SAY("runs again and SIGCONT handler ran %d", *cont_seen);
    kill(pid, SIGTSTP);
    memset(&si, 0, sizeof si);
    r = waitid(P_PID, pid, &si, WSTOPPED);
    SAY("waitid WSTOPPED %d code %d status %d pid-ok %d", r, si.si_code, si.si_status,
        si.si_pid == pid);
    kill(pid, SIGCONT);
    memset(&si, 0, sizeof si);
    r = waitid(P_PID, pid, &si, WCONTINUED);
    SAY("waitid WCONTINUED %d code %d status %d", r, si.si_code, si.si_status);
    kill(pid, SIGKILL);
    r = waitpid(pid, &st, 0);
    SAY("killed waitpid %d %s", r == pid, pr_wstatus(st));
    SAY("kill reaped pid %s", RE(kill(pid, 0)));
}

/* ======================================================================================
 * frame
 */
static volatile struct {
    int count, sig, code;
    uint64_t addr, trapno, err, rip, cr2;
    int fp_nonnull, fp_aligned, fp_in_frame;
    unsigned mxcsr, cwd;
} fr;
static volatile uint64_t fr_resume, fr_set_rax, fr_set_xmm0;
static volatile int fr_add_usr2;

static void h_frame(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    greg_t *g = uc->uc_mcontext.gregs;
    struct _libc_fpstate *fp = uc->uc_mcontext.fpregs;
    fr.count++;
    fr.sig = sig;
    fr.code = si->si_code;
    fr.addr = (uint64_t)si->si_addr;
    fr.trapno = (uint64_t)g[REG_TRAPNO];
    fr.err = (uint64_t)g[REG_ERR];
    fr.rip = (uint64_t)g[REG_RIP];
    fr.cr2 = (uint64_t)g[REG_CR2];
    fr.fp_nonnull = fp != NULL;
    fr.fp_aligned = ((uint64_t)fp % 16) == 0;
    fr.fp_in_frame = (uint64_t)fp > (uint64_t)uc && (uint64_t)fp < (uint64_t)uc + 8192;
    if (fp) {
        fr.mxcsr = fp->mxcsr;
        fr.cwd = fp->cwd;
    }
    if (fr_resume) {
        g[REG_RIP] = (greg_t)fr_resume;
        fr_resume = 0;
    }
    if (fr_set_rax)
        g[REG_RAX] = (greg_t)fr_set_rax;
    if (fr_set_xmm0 && fp)
        memcpy(&fp->_xmm[0], (const void *)&fr_set_xmm0, 8);
    if (fr_add_usr2)
        sigaddset(&uc->uc_sigmask, SIGUSR2);
}

/* cr2 is printed for page faults only: Linux leaves the previous fault's address in
 * thread.cr2 for the others (a quirk nobody relies on). */
#define FRAME_SAY(what)                                                                   \
    SAY("%s count %d sig %d code %d trapno %lu err %#lx rip-ok %d", what, fr.count, fr.sig,  \
        fr.code, (unsigned long)fr.trapno, (unsigned long)fr.err, fr.rip == insn)

static void group_frame(void) {
    uint64_t insn, rax, xmm;
    char *ro;

    install(SIGSEGV, h_frame, 0);
    install(SIGFPE, h_frame, 0);
    install(SIGILL, h_frame, 0);
    install(SIGTRAP, h_frame, 0);
    install(SIGUSR1, h_frame, 0);

    /* store to an unmapped address: SEGV_MAPERR, trapno 14, err = user|write */
    memset((void *)&fr, 0, sizeof fr);
    asm volatile("leaq 1f(%%rip), %0\n\t"
                 "leaq 2f(%%rip), %%r11\n\t"
                 "movq %%r11, fr_resume(%%rip)\n"
                 "1:\tmovq $1, 0x10\n"
                 "2:"
                 : "=&r"(insn)::"r11", "memory");
    FRAME_SAY("store-unmapped");
    SAY("store-unmapped si_addr %#lx cr2 %#lx", (unsigned long)fr.addr, (unsigned long)fr.cr2);
    SAY("fpstate nonnull %d aligned %d in-frame %d mxcsr %#x cwd %#x", fr.fp_nonnull,
        fr.fp_aligned, fr.fp_in_frame, fr.mxcsr & 0xffbf, fr.cwd);

    /* store to a read-only page: SEGV_ACCERR, err = user|write|present */
    ro = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    (void)*(volatile char *)ro;
    memset((void *)&fr, 0, sizeof fr);
    asm volatile("leaq 1f(%%rip), %0\n\t"
                 "leaq 2f(%%rip), %%r11\n\t"
                 "movq %%r11, fr_resume(%%rip)\n"
                 "1:\tmovb $1, 5(%1)\n"
                 "2:"
                 : "=&r"(insn)
                 : "r"(ro)
                 : "r11", "memory");
    FRAME_SAY("store-readonly");
    SAY("store-readonly si_addr-is-page+5 %d cr2-is-page+5 %d", fr.addr == (uint64_t)ro + 5,
        fr.cr2 == (uint64_t)ro + 5);
    /* read of an unmapped address */
    memset((void *)&fr, 0, sizeof fr);
    asm volatile("leaq 1f(%%rip), %0\n\t"
                 "leaq 2f(%%rip), %%r11\n\t"
                 "movq %%r11, fr_resume(%%rip)\n"
                 "1:\tmovq 0x18, %%r11\n"
                 "2:"
                 : "=&r"(insn)::"r11", "memory");
    FRAME_SAY("load-unmapped");
    SAY("load-unmapped si_addr %#lx cr2 %#lx", (unsigned long)fr.addr, (unsigned long)fr.cr2);

    /* integer divide by zero: FPE_INTDIV, trapno 0 */
    memset((void *)&fr, 0, sizeof fr);
    asm volatile("leaq 1f(%%rip), %0\n\t"
                 "leaq 2f(%%rip), %%r11\n\t"
                 "movq %%r11, fr_resume(%%rip)\n\t"
                 "xor %%edx, %%edx\n\tmov $7, %%eax\n\txor %%ecx, %%ecx\n"
                 "1:\tdivl %%ecx\n"
                 "2:"
                 : "=&r"(insn)::"r11", "rax", "rcx", "rdx", "memory");
    FRAME_SAY("divide");
    SAY("divide si_addr-is-insn %d", fr.addr == insn);

    /* ud2: ILL_ILLOPN, trapno 6 */
    memset((void *)&fr, 0, sizeof fr);
    asm volatile("leaq 1f(%%rip), %0\n\t"
                 "leaq 2f(%%rip), %%r11\n\t"
                 "movq %%r11, fr_resume(%%rip)\n"
                 "1:\tud2\n"
                 "2:"
                 : "=&r"(insn)::"r11", "memory");
    FRAME_SAY("ud2");
    SAY("ud2 si_addr-is-insn %d", fr.addr == insn);

    /* int3: a trap, REG_RIP after it; the handler sets RAX */
    memset((void *)&fr, 0, sizeof fr);
    fr_set_rax = 0x1234;
    asm volatile("leaq 1f(%%rip), %0\n\t"
                 "xor %%eax, %%eax\n\t"
                 "int3\n"
                 "1:\tmov %%rax, %1"
                 : "=&r"(insn), "=r"(rax)::"rax", "memory");
    fr_set_rax = 0;
    FRAME_SAY("int3");
    SAY("int3 si_addr %#lx", (unsigned long)fr.addr);
    SAY("int3 handler-set rax %#lx", (unsigned long)rax);

    /* the handler edits XMM0 in the fpstate: restored by rt_sigreturn */
    memset((void *)&fr, 0, sizeof fr);
    fr_set_xmm0 = 0x1122334455667788UL;
    asm volatile("pxor %%xmm0, %%xmm0\n\t"
                 "int3\n\t"
                 "movq %%xmm0, %0"
                 : "=r"(xmm)::"xmm0", "memory");
    fr_set_xmm0 = 0;
    SAY("xmm0 after handler edit %#lx", (unsigned long)xmm);
    /* the FPU control state survives a handler (rt_sigreturn reloads it from the fpstate) */
    {
        uint32_t mxcsr = 0;
        uint16_t cw = 0;
        volatile double zero = 0.0, one = 1.0, q;
        raise(SIGUSR1);
        asm volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(mxcsr), "=m"(cw));
        SAY("after a handler: mxcsr %#x fpu cw %#x", mxcsr & 0xffbf, cw);
        memset((void *)&fr, 0, sizeof fr);
        q = one / zero;
        SAY("1.0/0.0 after a handler: SIGFPE count %d result-is-inf %d", fr.count,
            q > 1e308);
    }

    /* the handler edits uc_sigmask: SIGUSR2 stays blocked after rt_sigreturn */
    fr_add_usr2 = 1;
    raise(SIGUSR1);
    fr_add_usr2 = 0;
    SAY("mask after handler edit %#lx", (unsigned long)mask_now());
}

/* ======================================================================================
 * threads: pending and blocked sets are per thread
 */
static volatile int th_stage;
static volatile uint64_t th_pending_seen, th_mask_at_start;
static volatile int th_tid;
static volatile int th_got;

static void h_thr(int sig, siginfo_t *si, void *uc) {
    (void)si;
    (void)uc;
    h_tid = gettid_();
    h_sig = sig;
    h_count++;
    if (h_tid == th_tid)
        th_got++;
}

static void *th_fn(void *arg) {
    sigset_t s;
    (void)arg;
    th_tid = gettid_();
    th_mask_at_start = mask_now();
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    sigaddset(&s, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    th_stage = 1;
    while (th_stage != 2)
        pr_relax();
    th_pending_seen = pending_now();
    th_stage = 3;
    while (th_stage != 4)
        pr_relax();
    th_pending_seen = pending_now();
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &s, NULL); /* its own SIGUSR1 is delivered here */
    th_stage = 5;
    while (th_stage != 6)
        pr_relax();
    return NULL;
}

static void group_threads(void) {
    pthread_t th;
    sigset_t s;

    h_reset();
    install(SIGUSR1, h_thr, 0);
    install(SIGUSR2, h_thr, 0);
    install(SIGTERM, h_thr, 0);
    sigemptyset(&s);
    sigaddset(&s, SIGTERM);
    sigprocmask(SIG_BLOCK, &s, NULL); /* inherited by the new thread */
    pthread_create(&th, NULL, th_fn, NULL);
    while (th_stage != 1)
        pr_relax();
    SAY("thread inherits the mask %d", !!(th_mask_at_start & (1UL << (SIGTERM - 1))));
    /* thread-directed, blocked in the target: pending there only */
    pthread_kill(th, SIGUSR1);
    SAY("main pending %#lx", (unsigned long)pending_now());
    th_stage = 2;
    while (th_stage != 3)
        pr_relax();
    SAY("thread pending %#lx count %d", (unsigned long)th_pending_seen, h_count);
    /* process-directed SIGUSR2: the thread blocks it, main does not -> main takes it */
    kill(getpid(), SIGUSR2);
    SAY("kill SIGUSR2 count %d in-main %d", h_count, h_tid == getpid());
    /* process-directed SIGTERM while main blocks it and the thread does not (the thread
     * inherited the block: so nobody takes it, it stays in the shared set) */
    kill(getpid(), SIGTERM);
    SAY("shared pending seen by main %#lx", (unsigned long)pending_now());
    th_stage = 4;
    while (th_stage != 5)
        pr_relax();
    SAY("thread pending before unblock %#lx thread-got %d", (unsigned long)th_pending_seen,
        th_got);
    sigprocmask(SIG_UNBLOCK, &s, NULL);
    SAY("after main unblocks SIGTERM count %d in-main %d", h_count, h_tid == getpid());
    th_stage = 6;
    pthread_join(th, NULL);
    SAY("tgkill wrong tgid %s", RE(syscall(SYS_tgkill, getpid() + 1000, gettid_(), 0)));
    SAY("tgkill probe %s", RE(syscall(SYS_tgkill, getpid(), gettid_(), 0)));
    SAY("tgkill bad tid %s", RE(syscall(SYS_tgkill, getpid(), -5, 0)));
}

/* ======================================================================================
 * shadow-stack groups
 */
static volatile uint64_t sh_ssp, sh_slot0, sh_slot1, sh_rsp, sh_restorer;
static volatile int sh_count;
static volatile uint64_t sh2_ssp, sh2_slot1;

static void h_ss(int sig, siginfo_t *si, void *uc) {
    uint64_t ssp = ss_get_ssp();
    sh_ssp = ssp;
    if (ssp) {
        sh_slot0 = ((uint64_t *)ssp)[0];
        sh_slot1 = ((uint64_t *)ssp)[1];
    }
    sh_rsp = (uint64_t)__builtin_frame_address(0);
    sh_count++;
    (void)sig;
    (void)si;
    (void)uc;
}

static void h_ss_inner(int sig, siginfo_t *si, void *uc) {
    uint64_t ssp = ss_get_ssp();
    sh2_ssp = ssp;
    sh2_slot1 = ((uint64_t *)ssp)[1];
    (void)sig;
    (void)si;
    (void)uc;
}

static void h_ss_outer(int sig, siginfo_t *si, void *uc) {
    uint64_t ssp = ss_get_ssp();
    sh_ssp = ssp;
    sh_slot0 = ((uint64_t *)ssp)[0];
    sh_slot1 = ((uint64_t *)ssp)[1];
    sh_count++;
    pr_sys3(SYS_tgkill, getpid(), gettid_(), SIGUSR2);
    (void)sig;
    (void)si;
    (void)uc;
}

static void *restorer_of(int sig) {
    struct ksigaction old;
    memset(&old, 0, sizeof old);
    raw_sigaction(sig, NULL, &old, SIGSETSIZE);
    return old.restorer;
}

/* Enable SHSTK (+WRSS) inline; the caller never returns (it exits). */
static void group_ss_frame(void) {
    uint64_t before, after, restorer;
    pid_t pid = getpid(), tid = gettid_();

    pr_begin();
    install(SIGUSR1, h_ss, 0);
    restorer = (uint64_t)restorer_of(SIGUSR1);
    CHECK(restorer != 0, "glibc set a restorer");
    before = ss_get_ssp();
    CHECK(before != 0, "shadow stacks on");
    pr_sys3(SYS_tgkill, pid, tid, SIGUSR1);
    after = ss_get_ssp();
    CHECK_EQ(sh_count, 1, "handler ran");
    CHECK(sh_ssp == before - 16, "handler SSP %#lx, want oldSSP-16 = %#lx",
          (unsigned long)sh_ssp, (unsigned long)(before - 16));
    CHECK(sh_slot0 == restorer, "[SSP] = %#lx, want the restorer %#lx",
          (unsigned long)sh_slot0, (unsigned long)restorer);
    CHECK(sh_slot1 == (before | DATA_BIT), "[SSP+8] = %#lx, want oldSSP|1<<63 = %#lx",
          (unsigned long)sh_slot1, (unsigned long)(before | DATA_BIT));
    CHECK(after == before, "SSP after rt_sigreturn %#lx, want %#lx", (unsigned long)after,
          (unsigned long)before);
    /* the slots stay in memory below SSP after the return */
    CHECK(((uint64_t *)before)[-1] == (before | DATA_BIT), "token left below SSP");
    pr_ok("ss-frame-delivery");

    /* nested: the inner frame is pushed below the outer handler's SSP */
    sh_count = 0;
    install(SIGUSR1, h_ss_outer, 0);
    install(SIGUSR2, h_ss_inner, 0);
    before = ss_get_ssp();
    pr_sys3(SYS_tgkill, pid, tid, SIGUSR1);
    CHECK_EQ(sh_count, 1, "outer handler ran");
    CHECK(sh_ssp == before - 16, "outer SSP %#lx want %#lx", (unsigned long)sh_ssp,
          (unsigned long)(before - 16));
    CHECK(sh2_ssp == sh_ssp - 16, "inner SSP %#lx, want outer SSP-16 = %#lx",
          (unsigned long)sh2_ssp, (unsigned long)(sh_ssp - 16));
    CHECK(sh2_slot1 == (sh_ssp | DATA_BIT), "inner token %#lx, want outer SSP|1<<63",
          (unsigned long)sh2_slot1);
    CHECK(ss_get_ssp() == before, "SSP restored after nesting");
    pr_ok("ss-frame-nested");

}

/* The fault part needs a handler that resumes: kept separate for clarity. */
static volatile uint64_t sf_resume;
static void h_ss_resume(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    uint64_t ssp = ss_get_ssp();
    sh_ssp = ssp;
    sh_slot0 = ((uint64_t *)ssp)[0];
    sh_slot1 = ((uint64_t *)ssp)[1];
    sh_count++;
    uc->uc_mcontext.gregs[REG_RIP] = (greg_t)sf_resume;
    (void)sig;
    (void)si;
}

static void group_ss_fault(void) {
    uint64_t before, restorer;
    pr_begin();
    install(SIGSEGV, h_ss_resume, 0);
    restorer = (uint64_t)restorer_of(SIGSEGV);
    sh_count = 0;
    before = ss_get_ssp();
    asm volatile("leaq 2f(%%rip), %%r11\n\t"
                 "movq %%r11, sf_resume(%%rip)\n"
                 "1:\tmovq $1, 0x10\n"
                 "2:" ::: "r11", "memory");
    CHECK_EQ(sh_count, 1, "SIGSEGV handler ran");
    CHECK(sh_ssp == before - 16, "handler SSP %#lx want %#lx", (unsigned long)sh_ssp,
          (unsigned long)(before - 16));
    CHECK(sh_slot0 == restorer && sh_slot1 == (before | DATA_BIT),
          "fault frame [SSP]=%#lx [SSP+8]=%#lx", (unsigned long)sh_slot0,
          (unsigned long)sh_slot1);
    CHECK(ss_get_ssp() == before, "SSP restored");
    pr_ok("ss-frame-fault");
}

/* ---- alternate stack ---- */
static void group_ss_altstack(void) {
    static char alt[65536] __attribute__((aligned(16)));
    stack_t ss = {.ss_sp = alt, .ss_size = sizeof alt, .ss_flags = 0};
    uint64_t before, s, e, hs, he;

    pr_begin();
    sigaltstack(&ss, NULL);
    install(SIGUSR1, h_ss, SA_ONSTACK);
    before = ss_get_ssp();
    sh_count = 0;
    pr_sys3(SYS_tgkill, getpid(), gettid_(), SIGUSR1);
    CHECK_EQ(sh_count, 1, "handler ran");
    CHECK(sh_rsp >= (uint64_t)alt && sh_rsp < (uint64_t)alt + sizeof alt,
          "handler RSP %#lx on the alternate stack", (unsigned long)sh_rsp);
    CHECK(sh_ssp == before - 16, "handler SSP %#lx, want %#lx (same shadow stack)",
          (unsigned long)sh_ssp, (unsigned long)(before - 16));
    CHECK(proc_mapping_of(before - 8, &s, &e) && proc_mapping_of(sh_ssp, &hs, &he) && s == hs,
          "handler's SSP in the thread's shadow stack mapping");
    CHECK(pr_is_ss(hs) == 1, "that mapping is a shadow stack");
    CHECK(sh_slot1 == (before | DATA_BIT), "token");
    CHECK(ss_get_ssp() == before, "SSP restored");
    pr_ok("ss-altstack");
}

/* ---- deep recursion ---- */
static volatile long deep_sink;
static volatile int deep_signal_at;
static volatile uint64_t deep_bottom_ssp;

__attribute__((noinline)) static long deep(long n) {
    long r;
    if (n == 0) {
        if (deep_signal_at) {
            deep_bottom_ssp = ss_get_ssp();
            raise(SIGUSR1);
        }
        return 1;
    }
    r = deep(n - 1);
    deep_sink += r;
    return (r * 3 + n) % 1000003;
}

static long deep_ref(long n) {
    long r = 1;
    for (long i = 1; i <= n; i++)
        r = (r * 3 + i) % 1000003;
    return r;
}

static volatile uint64_t dh_rsp, dh_ssp;
static volatile long dh_result;
static volatile int dh_count, tick_count;

static void h_deep(int sig, siginfo_t *si, void *uc) {
    dh_rsp = (uint64_t)__builtin_frame_address(0);
    dh_ssp = ss_get_ssp();
    deep_signal_at = 0;
    dh_result = deep(300); /* recursion inside the handler, on the alternate stack */
    dh_count++;
    (void)sig;
    (void)si;
    (void)uc;
}

static void h_tick(int sig) {
    tick_count++;
    (void)sig;
}

static void group_ss_deep(void) {
    static char alt[1 << 20] __attribute__((aligned(16)));
    stack_t ss = {.ss_sp = alt, .ss_size = sizeof alt, .ss_flags = 0};
    const long N = 20000;
    uint64_t top = ss_get_ssp();
    long r, want = deep_ref(N);
    struct sigaction sa;
    struct itimerval it = {{0, 200}, {0, 200}};
    int rounds = 0;

    pr_begin();
    sigaltstack(&ss, NULL);
    install(SIGUSR1, h_deep, SA_ONSTACK);
    deep_signal_at = 1;
    r = deep(N);
    CHECK(r == want, "deep(%ld) = %ld, want %ld", N, r, want);
    CHECK_EQ(dh_count, 1, "the handler ran at the bottom");
    CHECK(dh_result == deep_ref(300), "recursion in the handler = %ld", dh_result);
    CHECK(dh_rsp >= (uint64_t)alt && dh_rsp < (uint64_t)alt + sizeof alt,
          "handler on the alternate stack (RSP %#lx)", (unsigned long)dh_rsp);
    CHECK(top - deep_bottom_ssp >= (uint64_t)N * 8,
          "the recursion really recursed: SSP went down by %lu bytes",
          (unsigned long)(top - deep_bottom_ssp));
    CHECK(dh_ssp < deep_bottom_ssp && deep_bottom_ssp - dh_ssp < 256, "handler SSP %#lx just below the bottom %#lx",
          (unsigned long)dh_ssp, (unsigned long)deep_bottom_ssp);
    CHECK(ss_get_ssp() == top, "SSP back at the top");
    pr_ok("ss-deep-handler-at-bottom");

    /* timer signals at arbitrary points of the recursion (on the alternate stack) */
    deep_signal_at = 0;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h_tick;
    sa.sa_flags = SA_ONSTACK | SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    setitimer(ITIMER_REAL, &it, NULL);
    while (tick_count < 5 && rounds < 500) {
        r = deep(N);
        CHECK(r == want, "round %d: deep = %ld", rounds, r);
        rounds++;
    }
    memset(&it, 0, sizeof it);
    setitimer(ITIMER_REAL, &it, NULL);
    CHECK(tick_count >= 5, "timer ticks %d in %d rounds", tick_count, rounds);
    CHECK(ss_get_ssp() == top, "SSP back at the top");
    pr_ok("ss-deep-timer");
}

/* ---- #CP repaired by the handler (§16 test 3) ---- */
static volatile uint64_t *cp_slot;
static volatile uint64_t cp_saved, cp_rip;
static volatile struct {
    int count, code;
    uint64_t addr, trapno, err, rip, ssp, slot1;
    uint8_t insn;
} cp;

static void h_cp(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    uint64_t ssp = ss_get_ssp();
    cp.count++;
    cp.code = si->si_code;
    cp.addr = (uint64_t)si->si_addr;
    cp.trapno = (uint64_t)uc->uc_mcontext.gregs[REG_TRAPNO];
    cp.err = (uint64_t)uc->uc_mcontext.gregs[REG_ERR];
    cp.rip = (uint64_t)uc->uc_mcontext.gregs[REG_RIP];
    cp.insn = *(uint8_t *)cp.rip;
    cp.ssp = ssp;
    cp.slot1 = ((uint64_t *)ssp)[1];
    if (cp.count > 3)
        _exit(97);
    ss_wrss((uint64_t *)cp_slot, cp_saved); /* repair; the RET is retried */
    (void)sig;
}

__attribute__((noinline)) static int cp_victim(int x) {
    uint64_t *ssp = (uint64_t *)ss_get_ssp();
    cp_slot = ssp;
    cp_saved = *ssp;
    ss_wrss(ssp, 0);
    return x + 1;
}

static void group_ss_cp(void) {
    int r;
    uint64_t before = ss_get_ssp();
    pr_begin();
    install(SIGSEGV, h_cp, 0);
    r = cp_victim(41);
    CHECK_EQ(r, 42, "the retried RET returned the value");
    CHECK_EQ(cp.count, 1, "one #CP");
    CHECK_EQ(cp.code, SEGV_CPERR, "si_code");
    CHECK_EQ(cp.addr, 0, "si_addr");
    CHECK_EQ(cp.trapno, X86_TRAP_CP, "REG_TRAPNO");
    CHECK_EQ(cp.err, CP_NEAR_RET, "REG_ERR");
    CHECK(cp.insn == 0xc3, "REG_RIP %#lx points at a RET (byte %#x)", (unsigned long)cp.rip,
          cp.insn);
    CHECK(cp.ssp == (uint64_t)cp_slot - 16, "handler SSP %#lx, want faulting SSP-16 %#lx",
          (unsigned long)cp.ssp, (unsigned long)((uint64_t)cp_slot - 16));
    CHECK(cp.slot1 == ((uint64_t)cp_slot | DATA_BIT), "token names the faulting SSP");
    CHECK(ss_get_ssp() == before, "SSP after the repaired return");
    pr_ok("ss-cp-repaired");
}

/* ---- a handler in a thread ---- */
static volatile uint64_t st_thread_ssp, st_handler_ssp, st_slot1;
static volatile int st_handler_tid, st_thread_tid, st_ready, st_done, st_release;

static void h_st(int sig, siginfo_t *si, void *uc) {
    st_handler_ssp = ss_get_ssp();
    st_slot1 = ((uint64_t *)st_handler_ssp)[1];
    st_handler_tid = gettid_();
    st_done = 1;
    (void)sig;
    (void)si;
    (void)uc;
}

static void *st_fn(void *arg) {
    (void)arg;
    st_thread_ssp = ss_get_ssp();
    st_thread_tid = gettid_();
    st_ready = 1;
    while (!st_release)
        pr_relax();
    return NULL;
}

static void group_ss_thread(void) {
    pthread_t th;
    uint64_t ms, me, ts, te, hs, he;
    pr_begin();
    install(SIGUSR1, h_st, 0);
    pthread_create(&th, NULL, st_fn, NULL);
    while (!st_ready)
        pr_relax();
    pthread_kill(th, SIGUSR1);
    while (!st_done)
        pr_relax();
    CHECK(st_handler_tid == st_thread_tid, "the handler ran in the thread");
    CHECK(proc_mapping_of(ss_get_ssp() - 8, &ms, &me), "main's shadow stack");
    CHECK(proc_mapping_of(st_thread_ssp, &ts, &te), "thread's shadow stack");
    CHECK(proc_mapping_of(st_handler_ssp, &hs, &he), "handler's shadow stack");
    CHECK(hs == ts && hs != ms, "handler on the thread's shadow stack (%#lx), not main's "
          "(%#lx)", (unsigned long)hs, (unsigned long)ms);
    CHECK(st_handler_ssp < st_thread_ssp, "handler SSP below the thread's");
    CHECK((st_slot1 & DATA_BIT) && (st_slot1 & ~DATA_BIT) - st_handler_ssp == 16,
          "token %#lx names handler SSP + 16", (unsigned long)st_slot1);
    st_release = 1;
    pthread_join(th, NULL);
    pr_ok("ss-thread-handler");
}

/* ---- forged tokens ---- */
static volatile int forge_mode;
static volatile uint64_t forge_value;
static uint64_t fake[1024] __attribute__((aligned(4096)));
static ucontext_t uc2 __attribute__((aligned(64)));
static uint8_t fp2[8192] __attribute__((aligned(64)));
void pr_second_sigreturn(void);
asm(".text\n"
    ".globl pr_second_sigreturn\n"
    "pr_second_sigreturn:\n\t"
    "mov $15, %eax\n\t"
    "syscall\n\t"
    "ud2\n");

enum { FORGE_VALUE = 1, FORGE_TWO_STEP = 2 };

static void h_forge(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    uint64_t ssp = ss_get_ssp();
    uint64_t *slot = (uint64_t *)(ssp + 8);
    (void)sig;
    (void)si;
    if (forge_mode == FORGE_VALUE) {
        ss_wrss(slot, forge_value);
        return;
    }
    /* two steps: the token sends SSP into ordinary memory (fake[]), where a second,
     * hand-made rt_sigreturn finds a valid-looking token naming the real SSP */
    {
        struct _libc_fpstate *fp = uc->uc_mcontext.fpregs;
        size_t fpsize = 512;
        uint32_t *sw = (uint32_t *)((char *)fp + 464);
        if (sw[0] == 0x46505853U && sw[1] > 512 && sw[1] <= sizeof fp2)
            fpsize = sw[1];
        memcpy(&uc2, uc, sizeof uc2);
        memcpy(fp2, fp, fpsize);
        uc2.uc_mcontext.fpregs = (struct _libc_fpstate *)fp2;
        *(uint64_t *)(forge_value & ~DATA_BIT) = *slot; /* the genuine token: oldSSP|1<<63 */
        ss_wrss(slot, forge_value);
        uc->uc_mcontext.gregs[REG_RIP] = (greg_t)pr_second_sigreturn;
        uc->uc_mcontext.gregs[REG_RSP] = (greg_t)&uc2;
    }
}

static void forge_and_raise(int mode, uint64_t value) {
    uint64_t before = ss_get_ssp();
    forge_mode = mode;
    forge_value = value;
    install(SIGUSR1, h_forge, 0);
    SAY("about to return from a handler with a forged sigframe token %#lx",
        (unsigned long)value);
    pr_sys3(SYS_tgkill, getpid(), gettid_(), SIGUSR1);
    SAY("survived rt_sigreturn; SSP restored %d", ss_get_ssp() == before);
}

static void group_ss_forge(void) {
    uint64_t before = ss_get_ssp(), after = 0;
    pr_begin();
    forge_mode = FORGE_VALUE;
    install(SIGUSR1, h_forge, 0);
    /* T = oldSSP - 16 (the two slots of the frame): accepted, nothing checks T == P + 8 */
    forge_value = (before - 16) | DATA_BIT;
    {
        long ret, pid = getpid(), tid = gettid_();
        asm volatile("syscall\n\t"
                     "rdsspq %1\n\t"
                     "incsspq %6"
                     : "=a"(ret), "+r"(after)
                     : "0"((long)SYS_tgkill), "D"(pid), "S"(tid), "d"((long)SIGUSR1), "r"(2L)
                     : "rcx", "r11", "memory");
        CHECK_EQ(ret, 0, "tgkill");
    }
    CHECK(after == before - 16, "SSP after the forged sigreturn %#lx, want %#lx",
          (unsigned long)after, (unsigned long)(before - 16));
    CHECK(ss_get_ssp() == before, "INCSSP 2 went back");
    pr_ok("ss-forge-other-slot-accepted");
}

/* The sigframe cannot be pushed (the shadow stack is full): SIGSEGV, fatal even with a
 * SIGSEGV handler (its own delivery fails the same way). */
static void ss_push_fault(void) {
    uint64_t base = (uint64_t)ss_map(0, 16, SHADOW_STACK_SET_TOKEN); /* token at base+8 */
    install(SIGUSR1, h_record, 0);
    install(SIGSEGV, h_record, 0);
    SAY("about to signal with a full shadow stack");
    asm volatile("rstorssp (%0)\n\t"
                 "saveprevssp\n\t" /* SSP = base + 16 */
                 "call 1f\n"        /* SSP = base + 8 */
                 "1:\n\t"
                 "syscall\n\t"     /* tgkill: token at base, restorer at base - 8: fault */
                 "ud2"
                 :
                 : "r"(base + 8), "a"((long)SYS_tgkill), "D"((long)getpid()),
                   "S"((long)gettid_()), "d"((long)SIGUSR1)
                 : "memory");
}

static void ss_no_restorer(void) {
    struct ksigaction ka = {(void *)h_record, SA_SIGINFO, NULL, 0};
    CHECK_EQ(raw_sigaction(SIGUSR1, &ka, NULL, SIGSETSIZE), 0, "rt_sigaction without SA_RESTORER");
    SAY("about to deliver without a restorer");
    pr_sys3(SYS_tgkill, getpid(), gettid_(), SIGUSR1);
    SAY("survived");
}

/* ====================================================================================== */
int main(int argc, char **argv) {
    const char *g = argc > 1 ? argv[1] : "";
    uint64_t ssp;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!strcmp(g, "info"))
        group_info();
    else if (!strcmp(g, "flags"))
        group_flags();
    else if (!strcmp(g, "resethand"))
        group_resethand();
    else if (!strcmp(g, "mask"))
        group_mask();
    else if (!strcmp(g, "altstack"))
        group_altstack();
    else if (!strcmp(g, "suspend"))
        group_suspend();
    else if (!strcmp(g, "suspend-later"))
        group_suspend_later();
    else if (!strcmp(g, "alarm"))
        group_alarm();
    else if (!strcmp(g, "restart"))
        group_restart();
    else if (!strcmp(g, "default"))
        group_default();
    else if (!strcmp(g, "frame"))
        group_frame();
    else if (!strcmp(g, "threads"))
        group_threads();
    else if (!strncmp(g, "ss-", 3)) {
        SS_ON_OR_DIE(1);
        if (!strcmp(g, "ss-frame")) {
            group_ss_frame();
            group_ss_fault();
        } else if (!strcmp(g, "ss-fault"))
            group_ss_fault();
        else if (!strcmp(g, "ss-altstack"))
            group_ss_altstack();
        else if (!strcmp(g, "ss-deep"))
            group_ss_deep();
        else if (!strcmp(g, "ss-cp"))
            group_ss_cp();
        else if (!strcmp(g, "ss-thread"))
            group_ss_thread();
        else if (!strcmp(g, "ss-forge"))
            group_ss_forge();
        else if (!strcmp(g, "ss-bad-nobit")) {
            ssp = ss_get_ssp();
            forge_and_raise(FORGE_VALUE, ssp); /* bit 63 clear */
        } else if (!strcmp(g, "ss-bad-unaligned")) {
            ssp = ss_get_ssp();
            forge_and_raise(FORGE_VALUE, (ssp + 4) | DATA_BIT);
        } else if (!strcmp(g, "ss-bad-high")) {
            forge_and_raise(FORGE_VALUE, TASK_SIZE_MAX | DATA_BIT);
        } else if (!strcmp(g, "ss-bad-vma")) {
            forge_and_raise(FORGE_TWO_STEP, (uint64_t)&fake[2] | DATA_BIT);
        } else if (!strcmp(g, "ss-bad-vma-page")) {
            forge_and_raise(FORGE_TWO_STEP, (uint64_t)&fake[512] | DATA_BIT);
        } else if (!strcmp(g, "ss-push-fault")) {
            ss_push_fault();
        } else if (!strcmp(g, "ss-no-restorer")) {
            ss_no_restorer();
        } else {
            SAY("unknown group %s", g);
            exit(2);
        }
        fflush(stdout);
        exit(ss_failures ? 1 : 0); /* exit(): main never returns with shadow stacks on */
    } else {
        SAY("unknown group %s", g);
        return 2;
    }
    return ss_failures ? 1 : 0;
}
