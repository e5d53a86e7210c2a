/*
 * Threads (issue 5, "Threads"; SPEC.md §3.1, §6, §7, §4.5 inheritance, §10).
 *
 * Usage: threads GROUP
 * Groups without shadow stacks print lines that tests/test_threads.py compares with a
 * native run:
 *   futex   FUTEX_WAIT/WAKE (private and shared), timeouts, bitsets, errors
 *   tid     gettid, set_tid_address, CLONE_CHILD_CLEARTID, set/get_robust_list
 *   robust  a robust mutex whose owner exits (EOWNERDEAD)
 *   exit    exit of one thread vs exit_group; the status of a process whose leader exited
 *   sched   a thread spinning without system calls does not starve the others
 *   yield   a sched_yield() loop waiting for another thread ends
 *   order   prints an interleaving of two threads (the test runs it twice: deterministic)
 * Shadow-stack groups (print "ok PART"; --shstk off, both engines):
 *   clone-thread   legacy clone(CLONE_VM|CLONE_THREAD...): a new shadow stack of
 *                  RLIMIT_STACK (4 GiB for infinity), SSP = its top, features and locks
 *                  inherited, unmapped when the thread exits
 *   clone3-thread  clone3 (sizes 64 and 88): PAGE_ALIGN(stack_size)
 *   pthread        pthread_create: glibc's clone3 stack_size (§6), freed before join returns
 *   many           64 threads recursing deeply (the scale test)
 *   thousand       1000 live threads, each touching its shadow stack (memory bound)
 *   cp-thread      #CP in a second thread kills the process (exit status 139)
 */
#define _GNU_SOURCE
#include "extra.h"

#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>

static pid_t gettid_(void) { return (pid_t)syscall(SYS_gettid); }

static void msleep(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long futex6(volatile int *uaddr, int op, int val, const struct timespec *ts,
                   volatile int *uaddr2, int val3) {
    return syscall(SYS_futex, uaddr, op, val, ts, uaddr2, val3);
}

/* ======================================================================================
 * futex
 */
static volatile int fw_word, fw_waiting, fw_woken, fw_tid[8];
static volatile long fw_result[8];

static void *fw_waiter(void *arg) {
    long i = (long)arg;
    fw_tid[i] = gettid_();
    __atomic_add_fetch(&fw_waiting, 1, __ATOMIC_SEQ_CST);
    fw_result[i] = futex6(&fw_word, FUTEX_WAIT_BITSET_PRIVATE, 0, NULL, NULL, 0x1);
    __atomic_add_fetch(&fw_woken, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static volatile int pw_word, pw_tid;
static volatile long pw_result;
static void *pw_waiter(void *arg) {
    struct timespec ts = {0, 300000000};
    (void)arg;
    errno = 0;
    pw_tid = gettid_();
    pw_result = futex6(&pw_word, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0) == -1 ? -errno : 0;
    return NULL;
}

/* Wait until the thread `*tid` names (set before its last step towards FUTEX_WAIT) is
 * asleep, State S in /proc/self/task/TID/status: from then on it is blocked in the futex
 * and a wake cannot miss it. A fixed sleep is not enough on a loaded machine: a waiter
 * not yet in FUTEX_WAIT when the wake comes is not counted, then sleeps for ever. */
static void wait_asleep(volatile int *tid) {
    char path[64], state[64];
    const char *p;
    for (;;) {
        if (*tid) {
            snprintf(path, sizeof path, "/proc/self/task/%d/status", *tid);
            pr_status_line(path, "State", state, sizeof state);
            for (p = state; *p == ' ' || *p == '\t'; p++) {
            }
            if (*p == 'S' || *p == 0 || *p == 'Z' || *p == 'X')
                return; /* asleep, or gone (the 300 ms waiter may time out first) */
        }
        msleep(1);
    }
}

static void group_futex(void) {
    static int w __attribute__((aligned(8)));
    struct timespec ts = {0, 10000000}, abs;
    double t0, dt;
    pthread_t th[3];
    long r;

    w = 0;
    SAY("WAIT value mismatch %s", RE(futex6(&w, FUTEX_WAIT_PRIVATE, 1, NULL, NULL, 0)));
    t0 = now_s();
    SAY("WAIT 10 ms private %s", RE(futex6(&w, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0)));
    dt = now_s() - t0;
    SAY("  waited at least 10 ms %d", dt >= 0.0099);
    t0 = now_s();
    SAY("WAIT 10 ms shared %s", RE(futex6(&w, FUTEX_WAIT, 0, &ts, NULL, 0)));
    SAY("  waited at least 10 ms %d", now_s() - t0 >= 0.0099);
    clock_gettime(CLOCK_MONOTONIC, &abs);
    abs.tv_nsec += 10000000;
    if (abs.tv_nsec >= 1000000000) {
        abs.tv_sec++;
        abs.tv_nsec -= 1000000000;
    }
    t0 = now_s();
    SAY("WAIT_BITSET absolute deadline %s",
        RE(futex6(&w, FUTEX_WAIT_BITSET_PRIVATE, 0, &abs, NULL, FUTEX_BITSET_MATCH_ANY)));
    SAY("  waited at least 10 ms %d", now_s() - t0 >= 0.0099);
    SAY("WAIT_BITSET deadline in the past %s",
        RE(futex6(&w, FUTEX_WAIT_BITSET_PRIVATE, 0, &abs, NULL, FUTEX_BITSET_MATCH_ANY)));
    SAY("WAIT_BITSET bitset 0 %s", RE(futex6(&w, FUTEX_WAIT_BITSET_PRIVATE, 0, NULL, NULL, 0)));
    SAY("WAKE without waiters %s", RE(futex6(&w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0)));
    SAY("WAKE unaligned %s", RE(futex6((int *)((char *)&w + 1), FUTEX_WAKE_PRIVATE, 1, NULL,
                                       NULL, 0)));
    ts.tv_nsec = 2000000000L;
    SAY("WAIT bad timeout %s", RE(futex6(&w, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0)));
    SAY("WAIT bad address %s", RE(futex6((int *)8, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0)));
    SAY("unknown op %s", RE(futex6(&w, 99, 0, NULL, NULL, 0)));

    /* three waiters (bitset 1): WAKE_BITSET(2) wakes none, WAKE 2 two, WAKE INT_MAX the last */
    for (long i = 0; i < 3; i++)
        pthread_create(&th[i], NULL, fw_waiter, (void *)i);
    while (fw_waiting < 3)
        msleep(1);
    for (int i = 0; i < 3; i++)
        wait_asleep(&fw_tid[i]);
    SAY("WAKE_BITSET with a bitset nobody waits on %s",
        RE(futex6(&fw_word, FUTEX_WAKE_BITSET_PRIVATE, 3, NULL, NULL, 0x2)));
    r = futex6(&fw_word, FUTEX_WAKE_PRIVATE, 2, NULL, NULL, 0);
    SAY("WAKE 2 of 3 woke %ld", r);
    while (fw_woken < 2)
        msleep(1);
    msleep(20);
    SAY("  woken %d", fw_woken);
    SAY("WAKE INT_MAX woke %ld", futex6(&fw_word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0));
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    SAY("waiters returned %ld %ld %ld", fw_result[0], fw_result[1], fw_result[2]);

    /* a private waiter is woken by a private wake (the shared key differs) */
    pthread_create(&th[0], NULL, pw_waiter, NULL);
    wait_asleep(&pw_tid);
    SAY("private WAKE of a private waiter %s",
        RE(futex6(&pw_word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0)));
    pthread_join(th[0], NULL);
    SAY("  waiter got %ld", pw_result);
}

/* ======================================================================================
 * tid
 */
static volatile int tid_seen, tid_thread;
static void *tid_fn(void *arg) {
    (void)arg;
    tid_thread = gettid_();
    tid_seen = tid_thread != getpid();
    return NULL;
}

static pthread_mutex_t robust;
static void *robust_owner(void *arg) {
    (void)arg;
    pthread_mutex_lock(&robust);
    return NULL; /* exits holding it */
}

static volatile int ct_word;
static int ct_fn(void *arg) {
    (void)arg;
    return 0;
}

static void group_tid(void) {
    pthread_t th;
    long head = 0;
    size_t len = 0;
    static char stack[65536] __attribute__((aligned(16)));
    pid_t child;

    SAY("main: gettid is getpid %d", gettid_() == getpid());
    SAY("set_tid_address returns the tid %d", syscall(SYS_set_tid_address, &ct_word) ==
                                                   gettid_());
    pthread_create(&th, NULL, tid_fn, NULL);
    pthread_join(th, NULL);
    SAY("thread: gettid differs from getpid %d", tid_seen);
    SAY("set_robust_list len 23 %s", RE(syscall(SYS_set_robust_list, &head, 23)));
    SAY("get_robust_list self %s", RE(syscall(SYS_get_robust_list, 0, &head, &len)));
    SAY("  len %zu head set %d", len, head != 0);
    SAY("get_robust_list of a missing tid %s",
        RE(syscall(SYS_get_robust_list, 999999, &head, &len)));

    /* CLONE_CHILD_CLEARTID: the kernel zeroes the word and wakes a futex waiter */
    ct_word = -1;
    child = clone(ct_fn, stack + sizeof stack,
                  CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
                      CLONE_SYSVSEM | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID,
                  NULL, &ct_word, NULL, &ct_word);
    SAY("clone thread %d", child > 0);
    while (ct_word != 0)
        futex6(&ct_word, FUTEX_WAIT, ct_word, NULL, NULL, 0);
    SAY("CLONE_CHILD_CLEARTID: word cleared and waiter woken %d", ct_word == 0);
}

/* robust mutex: the owner exits, the kernel walks its robust list (FUTEX_OWNER_DIED), the
 * next locker gets EOWNERDEAD */
static void group_robust(void) {
    pthread_t th;
    pthread_mutexattr_t ma;
    int r;

    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&robust, &ma);
    pthread_create(&th, NULL, robust_owner, NULL);
    pthread_join(th, NULL);
    r = pthread_mutex_lock(&robust);
    SAY("robust mutex after its owner exited: %s", r == EOWNERDEAD ? "EOWNERDEAD" : strerror(r));
    if (r == EOWNERDEAD) {
        pthread_mutex_consistent(&robust);
        pthread_mutex_unlock(&robust);
    }
}

/* ======================================================================================
 * exit
 */
static void *exit_raw_fn(void *arg) {
    (void)arg;
    syscall(SYS_exit, 3);
    return NULL;
}

static void *exit_group_fn(void *arg) {
    (void)arg;
    msleep(20);
    syscall(SYS_exit_group, 42);
    return NULL;
}

static void *exit_libc_fn(void *arg) {
    (void)arg;
    msleep(20);
    exit(43);
}

static void *last_thread_fn(void *arg) {
    (void)arg;
    msleep(50);
    syscall(SYS_exit, 9);
    return NULL;
}

static int threads_now(void) {
    char v[32];
    pr_status_line("/proc/self/status", "Threads", v, sizeof v);
    return atoi(v);
}

static void child_exit_group(void) {
    pthread_t th;
    pthread_create(&th, NULL, exit_group_fn, NULL);
    for (;;)
        pause();
}
static void child_exit_libc(void) {
    pthread_t th;
    pthread_create(&th, NULL, exit_libc_fn, NULL);
    for (;;)
        pause();
}
static void child_leader_exits_first(void) {
    pthread_t th;
    pthread_create(&th, NULL, last_thread_fn, NULL);
    syscall(SYS_exit, 0); /* only the main thread */
}

static void group_exit(void) {
    pthread_t th;
    SAY("threads at start %d", threads_now());
    pthread_create(&th, NULL, exit_raw_fn, NULL);
    pthread_join(th, NULL);
    SAY("a thread's SYS_exit(3): the process goes on; threads %d", threads_now());
    SAY("exit_group(42) from a thread: %s", pr_wstatus(pr_in_child(child_exit_group)));
    SAY("exit(43) from a thread: %s", pr_wstatus(pr_in_child(child_exit_libc)));
    SAY("leader SYS_exit(0), last thread SYS_exit(9): %s",
        pr_wstatus(pr_in_child(child_leader_exits_first)));
}

/* ======================================================================================
 * sched
 */
static volatile int sp_flag, sp_done;
static void *spinner(void *arg) {
    (void)arg;
    while (!sp_flag) {
    } /* no system call: only preemption lets main run */
    sp_done = 1;
    return NULL;
}

static volatile long yw_work;
static volatile int yw_done;
static void *yw_worker(void *arg) {
    (void)arg;
    for (long i = 0; i < 200000; i++)
        yw_work += i;
    yw_done = 1;
    return NULL;
}

static void group_sched(void) {
    pthread_t th;
    long spins = 0;
    pthread_create(&th, NULL, spinner, NULL);
    for (volatile long i = 0; i < 100000; i++)
        spins++;
    sp_flag = 1;
    while (!sp_done) {
    }
    pthread_join(th, NULL);
    SAY("two spinning threads both progress %d", sp_done);
}

/* a sched_yield loop (what many programs do) waiting for a computing thread */
static void group_yield(void) {
    pthread_t th;
    long yields = 0;
    pthread_create(&th, NULL, yw_worker, NULL);
    while (!yw_done && yields < 200000) {
        sched_yield();
        yields++;
    }
    SAY("sched_yield loop saw the other thread finish %d", yw_done);
    pthread_join(th, NULL);
}

/* ======================================================================================
 * order: an interleaving that depends only on the scheduler
 */
static char order_log[4096];
static volatile int order_len;
static void *order_fn(void *arg) {
    char c = (char)(long)arg;
    for (int i = 0; i < 60; i++) {
        for (volatile int j = 0; j < 20000; j++) {
        }
        int n = __atomic_fetch_add(&order_len, 1, __ATOMIC_SEQ_CST);
        if (n < (int)sizeof order_log - 1)
            order_log[n] = c;
        if (i % 7 == 0)
            write(-1, "", 0); /* a system call now and then */
    }
    return NULL;
}

static void group_order(void) {
    pthread_t a, b;
    pthread_create(&a, NULL, order_fn, (void *)'a');
    pthread_create(&b, NULL, order_fn, (void *)'b');
    order_fn((void *)'m');
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    SAY("order %s", order_log);
}

/* ======================================================================================
 * shadow-stack groups
 */
#define THREAD_FLAGS                                                                      \
    (CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM |    \
     CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID)

/* What a raw thread reports (written before it wakes the parent). */
static volatile struct {
    int ready, release, tid, pid;
    uint64_t ssp, ssp_in_call;
    long status, disable_wrss, enable_wrss;
} rt;
static volatile int rt_tid_word; /* PARENT_SETTID / CHILD_CLEARTID */

__attribute__((noinline)) static uint64_t ssp_in_call(void) { return ss_get_ssp(); }

static __attribute__((noreturn)) void rt_child(uint64_t ssp, void *arg) {
    (void)arg;
    rt.ssp = ssp;
    rt.ssp_in_call = ssp_in_call();
    rt.tid = (int)pr_sys0(SYS_gettid);
    rt.pid = (int)pr_sys0(SYS_getpid);
    rt.status = pr_ss_status();
    rt.disable_wrss = ss_arch_prctl(ARCH_SHSTK_DISABLE, ARCH_SHSTK_WRSS);
    rt.enable_wrss = ss_arch_prctl(ARCH_SHSTK_ENABLE, ARCH_SHSTK_SHSTK);
    rt.ready = 1;
    pr_futex(&rt.ready, FUTEX_WAKE_, 1, NULL);
    while (!rt.release)
        pr_futex(&rt.release, FUTEX_WAIT_, 0, NULL);
    pr_exit(0);
}

/* A thread that turns its own shadow stack off (§4.2): its stack goes, main's stays. */
static volatile struct {
    int ready, release;
    uint64_t ssp;
    long disable, status;
} dt;
static volatile int dt_tid_word;
static __attribute__((noreturn)) void dt_child(uint64_t ssp, void *arg) {
    (void)arg;
    dt.ssp = ssp;
    dt.disable = ss_disable(); /* never returns from here: exits below */
    dt.status = pr_ss_status();
    dt.ready = 1;
    pr_futex(&dt.ready, FUTEX_WAKE_, 1, NULL);
    while (!dt.release)
        pr_futex(&dt.release, FUTEX_WAIT_, 0, NULL);
    pr_exit(0);
}

static void wait_ready(void) {
    while (!rt.ready)
        pr_futex(&rt.ready, FUTEX_WAIT_, 0, NULL);
}

static char *new_stack(size_t size) {
    char *s = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return s + size;
}

/* Checks while the raw thread is alive; then releases it and checks the stack is gone. */
static void check_thread_stack(const char *what, uint64_t want_size, long want_status,
                               long tid) {
    uint64_t s = 0, e = 0, ms, me;
    char path[64], feat[64], locked[64];

    CHECK(tid > 0, "%s: create %ld", what, tid);
    if (tid <= 0)
        return;
    wait_ready();
    CHECK(rt.tid == tid && rt_tid_word == tid, "%s: tid %d, parent_tid word %d, want %ld",
          what, rt.tid, rt_tid_word, tid);
    CHECK(rt.pid == getpid(), "%s: same process", what);
    CHECK(proc_mapping_of(rt.ssp - 8, &s, &e), "%s: SSP %#lx is mapped", what,
          (unsigned long)rt.ssp);
    CHECK(e == rt.ssp, "%s: SSP %#lx is the top of its mapping (%#lx-%#lx)", what,
          (unsigned long)rt.ssp, (unsigned long)s, (unsigned long)e);
    CHECK(e - s == want_size, "%s: shadow stack size %#lx, want %#lx", what,
          (unsigned long)(e - s), (unsigned long)want_size);
    CHECK(pr_is_ss(s) == 1, "%s: `ss` in VmFlags", what);
    CHECK(s >= FOUR_GIB, "%s: above 4 GiB", what);
    CHECK(proc_mapping_of(ss_get_ssp() - 8, &ms, &me) && ms != s, "%s: not main's", what);
    CHECK(rt.ssp_in_call == rt.ssp - 16, "%s: two calls pushed on it", what);
    CHECK(rt.status == want_status, "%s: STATUS in the thread %#lx, want %#lx (inherited)",
          what, rt.status, want_status);
    CHECK(rt.disable_wrss == -EPERM, "%s: DISABLE(WRSS) in the thread: %ld, want -EPERM (the "
          "lock is inherited)", what, rt.disable_wrss);
    CHECK(rt.enable_wrss == 0, "%s: ENABLE(SHSTK) (already on) %ld", what, rt.enable_wrss);
    snprintf(path, sizeof path, "/proc/self/task/%ld/status", tid);
    pr_status_line(path, "x86_Thread_features", feat, sizeof feat);
    pr_status_line(path, "x86_Thread_features_locked", locked, sizeof locked);
    CHECK(!strcmp(feat, "\tshstk wrss "), "%s: %s features \"%s\"", what, path, feat);
    CHECK(!strcmp(locked, "\twrss "), "%s: %s locked \"%s\"", what, path, locked);
    rt.release = 1;
    pr_futex(&rt.release, FUTEX_WAKE_, 1, NULL);
    pr_wait_cleared(&rt_tid_word); /* CLONE_CHILD_CLEARTID */
    CHECK(!proc_mapping_of(rt.ssp - 8, &s, &e), "%s: the shadow stack is unmapped after the "
          "thread exited (still %#lx-%#lx)", what, (unsigned long)s, (unsigned long)e);
    memset((void *)&rt, 0, sizeof rt);
}

static long raw_thread_clone(char *stack) {
    rt_tid_word = -1;
    return pr_clone_raw(SYS_clone, THREAD_FLAGS, (long)stack, (long)&rt_tid_word,
                        (long)&rt_tid_word, 0, rt_child, NULL);
}

static long raw_thread_clone3(char *stack, uint64_t stack_size, size_t size) {
    struct pr_clone_args a;
    memset(&a, 0, sizeof a);
    a.flags = THREAD_FLAGS;
    a.parent_tid = (uint64_t)&rt_tid_word;
    a.child_tid = (uint64_t)&rt_tid_word;
    a.stack = (uint64_t)(stack - stack_size);
    a.stack_size = stack_size;
    rt_tid_word = -1;
    return pr_clone_raw(SYS_clone3, (long)&a, (long)size, 0, 0, 0, rt_child, NULL);
}

static void group_clone_thread(void) {
    struct rlimit rl;
    char *stack = new_stack(1 << 20);
    const long both = ARCH_SHSTK_SHSTK | ARCH_SHSTK_WRSS;
    uint64_t s, e;

    pr_begin();
    /* the main shadow stack was sized from RLIMIT_STACK too (set before enabling) */
    CHECK(proc_mapping_of(ss_get_ssp() - 8, &s, &e) && e - s == 0x124000,
          "main shadow stack %#lx, want PAGE_ALIGN(0x123456)", (unsigned long)(e - s));
    check_thread_stack("clone, RLIMIT_STACK 0x123456", 0x124000, both, raw_thread_clone(stack));
    pr_ok("clone-thread-rlimit-size");
    rl.rlim_cur = RLIM_INFINITY;
    rl.rlim_max = RLIM_INFINITY;
    setrlimit(RLIMIT_STACK, &rl);
    check_thread_stack("clone, RLIMIT_STACK infinity", 1UL << 32, both, raw_thread_clone(stack));
    pr_ok("clone-thread-4g");
    rl.rlim_cur = 3 * PAGE + 1; /* not a page multiple */
    setrlimit(RLIMIT_STACK, &rl);
    check_thread_stack("clone, RLIMIT_STACK 3 pages + 1", 4 * PAGE, both,
                       raw_thread_clone(stack));
    pr_ok("clone-thread-small");

    {
        long tid;
        dt_tid_word = -1;
        tid = pr_clone_raw(SYS_clone, THREAD_FLAGS, (long)stack, (long)&dt_tid_word,
                           (long)&dt_tid_word, 0, dt_child, NULL);
        CHECK(tid > 0, "clone %ld", tid);
        while (!dt.ready)
            pr_futex(&dt.ready, FUTEX_WAIT_, 0, NULL);
        CHECK_EQ(dt.disable, 0, "DISABLE(SHSTK) in the thread");
        CHECK_EQ(dt.status, 0, "the thread's STATUS after its DISABLE");
        CHECK(!proc_mapping_of(dt.ssp - 8, &s, &e), "the thread's shadow stack is unmapped by "
              "its DISABLE");
        CHECK_EQ(pr_ss_status(), both, "main's features unchanged (per-thread state)");
        CHECK(proc_mapping_of(ss_get_ssp() - 8, &s, &e) && pr_is_ss(s) == 1,
              "main's shadow stack stays");
        dt.release = 1;
        pr_futex(&dt.release, FUTEX_WAKE_, 1, NULL);
        pr_wait_cleared(&dt_tid_word);
    }
    pr_ok("clone-thread-disable-own");
}

static void group_clone3_thread(void) {
    char *stack = new_stack(1 << 24);
    const long both = ARCH_SHSTK_SHSTK | ARCH_SHSTK_WRSS;
    pr_begin();
    check_thread_stack("clone3 88, stack_size 0x12345", 0x13000, both,
                       raw_thread_clone3(stack, 0x12345, 88));
    check_thread_stack("clone3 88, stack_size 0x800300", 0x801000, both,
                       raw_thread_clone3(stack, 0x800300, 88));
    check_thread_stack("clone3 64, stack_size 0x4000", 0x4000, both,
                       raw_thread_clone3(stack, 0x4000, 64));
    pr_ok("clone3-thread-stack-size");
}

/* ---- pthreads ---- */
static volatile uint64_t pt_ssp;
static volatile long pt_status;
static volatile int pt_release;
static void *pt_fn(void *arg) {
    (void)arg;
    pt_ssp = ss_get_ssp();
    pt_status = pr_ss_status();
    while (!pt_release)
        pr_relax();
    return NULL;
}

static void pthread_case(const char *what, size_t attr_size, uint64_t want) {
    pthread_t th;
    pthread_attr_t at;
    uint64_t s = 0, e = 0;
    pt_release = 0;
    pt_ssp = 0;
    pthread_attr_init(&at);
    if (attr_size)
        pthread_attr_setstacksize(&at, attr_size);
    pthread_create(&th, &at, pt_fn, NULL);
    while (!pt_ssp)
        pr_relax();
    CHECK(proc_mapping_of(pt_ssp, &s, &e), "%s: thread SSP mapped", what);
    CHECK(e - s == want, "%s: shadow stack %#lx, want %#lx", what, (unsigned long)(e - s),
          (unsigned long)want);
    CHECK(pr_is_ss(s) == 1, "%s: ss", what);
    CHECK(pt_status == (long)(ARCH_SHSTK_SHSTK | ARCH_SHSTK_WRSS), "%s: status %#lx", what,
          pt_status);
    pt_release = 1;
    pthread_join(th, NULL);
    CHECK(!proc_mapping_of(pt_ssp, &s, &e), "%s: freed before pthread_join returned", what);
}

static void group_pthread(void) {
    pr_begin();
    /* glibc 2.36 passes stack_size = usable stack (SPEC §6): 0x800300 and 0x40300 */
    pthread_case("default attributes", 0, 0x801000);
    pthread_case("256 KiB stack", 256 * 1024, 0x41000);
    pr_ok("pthread-shadow-stack-size");
}

/* ---- scale: 64 threads recursing deeply ---- */
#define MANY 64
#define DEPTH 20000
static volatile uint64_t many_top[MANY], many_bottom[MANY];

__attribute__((noinline)) static long rec(long n, int idx) {
    long r;
    if (n == 0) {
        if (!many_bottom[idx])
            many_bottom[idx] = ss_get_ssp(); /* the first, deepest, recursion */
        return idx;
    }
    r = rec(n - 1, idx);
    return (r * 31 + n) % 1000003;
}

static long rec_ref(long n, int idx) {
    long r = idx;
    for (long i = 1; i <= n; i++)
        r = (r * 31 + i) % 1000003;
    return r;
}

static void *many_fn(void *arg) {
    int idx = (int)(long)arg;
    long r;
    many_top[idx] = ss_get_ssp();
    r = rec(DEPTH, idx);
    r = r == rec_ref(DEPTH, idx) ? 0 : 1;
    r |= rec(DEPTH / 2, idx) == rec_ref(DEPTH / 2, idx) ? 0 : 2;
    return (void *)r;
}

static void group_many(void) {
    pthread_t th[MANY];
    void *ret;
    int bad = 0;
    pr_begin();
    for (long i = 0; i < MANY; i++)
        CHECK(pthread_create(&th[i], NULL, many_fn, (void *)i) == 0, "create %ld", i);
    for (int i = 0; i < MANY; i++) {
        pthread_join(th[i], &ret);
        if (ret != NULL)
            bad++;
        CHECK(many_top[i] - many_bottom[i] >= DEPTH * 8UL,
              "thread %d really recursed (%lu bytes of shadow stack)", i,
              (unsigned long)(many_top[i] - many_bottom[i]));
        for (int j = 0; j < i; j++)
            if (many_top[j] == many_top[i])
                CHECK(0, "threads %d and %d share a shadow stack", i, j);
    }
    CHECK(bad == 0, "%d threads computed a wrong result", bad);
    pr_ok("many-threads-deep-recursion");
}

/* ---- scale: 1000 live threads ---- */
#define THOUSAND 1000
static pthread_barrier_t bar;
static volatile uint64_t th_ssp[THOUSAND];
static void *thousand_fn(void *arg) {
    int idx = (int)(long)arg;
    th_ssp[idx] = ssp_in_call(); /* one call: a push on this thread's shadow stack */
    pthread_barrier_wait(&bar);  /* all alive at once */
    return NULL;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void group_thousand(void) {
    static pthread_t th[THOUSAND];
    static uint64_t sorted[THOUSAND];
    int created = 0, dup = 0;
    pr_begin();
    pthread_barrier_init(&bar, NULL, THOUSAND + 1);
    for (long i = 0; i < THOUSAND; i++)
        if (pthread_create(&th[i], NULL, thousand_fn, (void *)i) == 0)
            created++;
    CHECK(created == THOUSAND, "created %d threads", created);
    if (created == THOUSAND)
        pthread_barrier_wait(&bar);
    for (int i = 0; i < created; i++)
        pthread_join(th[i], NULL);
    memcpy(sorted, (void *)th_ssp, sizeof sorted);
    qsort(sorted, THOUSAND, sizeof sorted[0], cmp_u64);
    for (int i = 1; i < THOUSAND; i++)
        dup += sorted[i] == sorted[i - 1];
    CHECK(dup == 0 && sorted[0] != 0, "%d threads shared an SSP", dup);
    CHECK_EQ(pr_count_ss(), 1, "shadow stacks left after 1000 joins (main's only)");
    pr_ok("thousand-threads");
}

/* ---- #CP in a thread: the whole process dies of SIGSEGV ---- */
__attribute__((noinline)) static int smash_return(void) {
    uint64_t *ssp = (uint64_t *)ss_get_ssp();
    ss_wrss(ssp, 0x1234); /* our return address on the shadow stack */
    return 1;
}
static void *cp_thread(void *arg) {
    (void)arg;
    SAY("thread about to return through a corrupted shadow stack");
    smash_return();
    SAY("thread survived");
    return NULL;
}
static void group_cp_thread(void) {
    pthread_t th;
    pthread_create(&th, NULL, cp_thread, NULL);
    pthread_join(th, NULL);
    SAY("main survived");
}

/* ====================================================================================== */
int main(int argc, char **argv) {
    const char *g = argc > 1 ? argv[1] : "";
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!strcmp(g, "futex"))
        group_futex();
    else if (!strcmp(g, "tid"))
        group_tid();
    else if (!strcmp(g, "exit"))
        group_exit();
    else if (!strcmp(g, "sched"))
        group_sched();
    else if (!strcmp(g, "yield"))
        group_yield();
    else if (!strcmp(g, "robust"))
        group_robust();
    else if (!strcmp(g, "order"))
        group_order();
    else {
        if (!strcmp(g, "clone-thread")) {
            struct rlimit rl = {0x123456, RLIM_INFINITY};
            setrlimit(RLIMIT_STACK, &rl);
        }
        SS_ON_OR_DIE(1);
        if (!strcmp(g, "clone-thread") || !strcmp(g, "clone3-thread"))
            ss_arch_prctl(ARCH_SHSTK_LOCK, ARCH_SHSTK_WRSS);
        if (!strcmp(g, "clone-thread"))
            group_clone_thread();
        else if (!strcmp(g, "clone3-thread"))
            group_clone3_thread();
        else if (!strcmp(g, "pthread"))
            group_pthread();
        else if (!strcmp(g, "many"))
            group_many();
        else if (!strcmp(g, "thousand"))
            group_thousand();
        else if (!strcmp(g, "cp-thread"))
            group_cp_thread();
        else
            SAY("unknown group %s", g);
        fflush(stdout);
        exit(ss_failures ? 1 : 0);
    }
    return ss_failures ? 1 : 0;
}
