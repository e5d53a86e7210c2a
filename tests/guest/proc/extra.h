/*
 * Helpers for the guest programs of tests/guest/proc/ (threads, signals, processes,
 * ptrace, clone3). Adds to tests/guest/include/shstk_guest.h, which is shared:
 *
 * - results: pr_begin()/pr_ok("part") print "ok PART" or "not ok PART" after the CHECKs
 *   of a part; every failed CHECK prints "FAIL file:line: ...".
 * - raw system calls (no errno, no call): pr_sys0..6, pr_exit (SYS_exit, one thread),
 *   pr_futex, and pr_clone_raw: clone/clone3/vfork/fork whose child runs `fn(ssp, arg)`
 *   on whatever stacks it got (fn must never return). `ssp` is the child's SSP read with
 *   RDSSP right after the system call, before the child's first CALL.
 * - /proc readers: the mapping containing an address, its smaps VmFlags, status lines.
 *
 * Every program defines _GNU_SOURCE before including this header.
 */
#ifndef PROC_EXTRA_H
#define PROC_EXTRA_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "proc_read.h"
#include "shstk_guest.h"

#define PAGE 4096UL
#define FOUR_GIB 0x100000000UL
#define DATA_BIT (1UL << 63)
#define TASK_SIZE_MAX 0x7ffffffff000UL
#define X86_TRAP_CP 21
#define CP_NEAR_RET 1
#define NT_X86_SHSTK_ 0x204
#define PTRACE_ARCH_PRCTL_ 30
#define FUTEX_WAIT_ 0
#define FUTEX_WAKE_ 1

/* ---- results ------------------------------------------------------------------------ */
static int pr_fail_mark;
static __attribute__((unused)) void pr_begin(void) { pr_fail_mark = ss_failures; }
static __attribute__((unused)) void pr_ok(const char *what) {
    printf("%s %s\n", ss_failures == pr_fail_mark ? "ok" : "not ok", what);
    fflush(stdout);
    pr_fail_mark = ss_failures;
}
/* A line for the Python side to compare (e.g. with a native run). */
#define SAY(...)                                                                        \
    do {                                                                                \
        printf(__VA_ARGS__);                                                            \
        printf("\n");                                                                   \
        fflush(stdout);                                                                 \
    } while (0)

/* shadow stacks on (and WRSS when asked) with the inline enable, or exit 2 */
#define SS_ON_OR_DIE(wrss)                                                                \
    do {                                                                                  \
        if (ss_enable() != 0) {                                                           \
            SAY("FAIL could not enable shadow stacks");                                   \
            exit(2);                                                                      \
        }                                                                                 \
        if ((wrss) && ss_arch_prctl(ARCH_SHSTK_ENABLE, ARCH_SHSTK_WRSS) != 0) {           \
            SAY("FAIL could not enable WRSS");                                            \
            exit(2);                                                                      \
        }                                                                                 \
    } while (0)

/* "RESULT/ERRNO" of a libc call, errno read right after the call (a ring of buffers, so
 * several may appear in one SAY). */
static __attribute__((unused)) const char *pr_re(long r) {
    static char ring[8][48];
    static int next;
    int e = errno;
    char *b = ring[next++ % 8];
    if (r == -1)
        snprintf(b, 48, "-1/errno %d", e);
    else
        snprintf(b, 48, "%ld", r);
    return b;
}
#define RE(call) (errno = 0, pr_re((long)(call)))

/* ---- raw system calls ------------------------------------------------------------------ */
#define pr_sys0(n) ss_syscall6((n), 0, 0, 0, 0, 0, 0)
#define pr_sys1(n, a) ss_syscall6((n), (long)(a), 0, 0, 0, 0, 0)
#define pr_sys2(n, a, b) ss_syscall6((n), (long)(a), (long)(b), 0, 0, 0, 0)
#define pr_sys3(n, a, b, c) ss_syscall6((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define pr_sys4(n, a, b, c, d) ss_syscall6((n), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define pr_sys6(n, a, b, c, d, e, f)                                                    \
    ss_syscall6((n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))

SS_INLINE __attribute__((noreturn)) void pr_exit(int code) {
    for (;;)
        ss_syscall6(SYS_exit, code, 0, 0, 0, 0, 0);
}

SS_INLINE __attribute__((noreturn)) void pr_exit_group(int code) {
    for (;;)
        ss_syscall6(SYS_exit_group, code, 0, 0, 0, 0, 0);
}

SS_INLINE long pr_futex(volatile int *uaddr, int op, int val, const struct timespec *ts) {
    return ss_syscall6(SYS_futex, (long)uaddr, op, val, (long)ts, 0, 0);
}

/* Let other threads and processes run: a short sleep (a blocking system call). Used in
 * wait loops instead of sched_yield(), which must not be what these tests depend on
 * (test_threads.py checks sched_yield itself). */
static __attribute__((unused)) void pr_relax(void) {
    struct timespec ts = {0, 200000};
    nanosleep(&ts, NULL);
}

/* Wait until *word is 0 (CLONE_CHILD_CLEARTID / set_tid_address). */
SS_INLINE void pr_wait_cleared(volatile int *word) {
    int v;
    while ((v = *word) != 0)
        pr_futex(word, FUTEX_WAIT_, v, NULL);
}

/*
 * clone-like system call `nr` (clone 56, fork 57, vfork 58, clone3 435) with up to five
 * arguments. The parent gets the result; the child reads its SSP (RDSSPQ, 0 when shadow
 * stacks are off) before anything else, moves below the red zone, aligns its stack and
 * calls fn(ssp, arg), which must not return (it exits with a raw system call).
 */
typedef void (*pr_child_fn)(uint64_t ssp, void *arg);

SS_INLINE long pr_clone_raw(long nr, long a1, long a2, long a3, long a4, long a5,
                            pr_child_fn fn, void *arg) {
    long ret;
    register long r10 asm("r10") = a4;
    register long r8 asm("r8") = a5;
    register pr_child_fn r12 asm("r12") = fn;
    register void *r13 asm("r13") = arg;
    asm volatile("syscall\n\t"
                 "test %%rax, %%rax\n\t"
                 "jnz 1f\n\t"
                 "xor %%edi, %%edi\n\t"
                 "rdsspq %%rdi\n\t"
                 "mov %%r13, %%rsi\n\t"
                 "sub $256, %%rsp\n\t"
                 "and $-16, %%rsp\n\t"
                 "call *%%r12\n\t"
                 "ud2\n"
                 "1:"
                 : "=a"(ret)
                 : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r12), "r"(r13)
                 : "rcx", "r11", "memory", "cc");
    return ret;
}

/* fork (57) that returns in both, and reports the SSP right after the system call. */
SS_INLINE long pr_fork_ssp(uint64_t *ssp_after) {
    long ret;
    uint64_t ssp = 0;
    asm volatile("syscall\n\trdsspq %1"
                 : "=a"(ret), "+r"(ssp)
                 : "a"(57L)
                 : "rcx", "r11", "memory", "cc");
    *ssp_after = ssp;
    return ret;
}

/* struct clone_args, with the proposed 12th field (§12: shadow_stack_size or shstk_token). */
struct pr_clone_args {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls,
        set_tid, set_tid_size, cgroup, extra, tail[4];
};

/* ---- /proc helpers (plain libc calls: they return normally) ------------------------------ */
/* Is the smaps entry that starts at `start` a shadow stack (`ss` in VmFlags)? -1: none. */
static __attribute__((unused)) int pr_is_ss(uint64_t start) {
    char line[256];
    if (!proc_smaps_vmflags(start, line, sizeof line))
        return -1;
    return proc_has_word(line, "ss");
}

/* Number of shadow-stack VMAs (smaps entries with `ss`). */
static __attribute__((unused)) int pr_count_ss(void) {
    const char *p = proc_read_file("/proc/self/smaps");
    int n = 0;
    while ((p = strstr(p, "VmFlags:")) != NULL) {
        const char *eol = strchr(p, '\n');
        char line[256];
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len >= sizeof line)
            len = sizeof line - 1;
        memcpy(line, p, len);
        line[len] = 0;
        if (strstr(line, " ss ") || (len >= 3 && strcmp(line + len - 3, " ss") == 0))
            n++;
        p += len;
    }
    return n;
}

/* The value of a "Key:\tvalue" line of a /proc status file, copied to out ("" if none). */
static __attribute__((unused)) const char *pr_status_line(const char *path, const char *key,
                                                          char *out, size_t outsz) {
    const char *p = proc_read_file(path);
    size_t klen = strlen(key);
    out[0] = 0;
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len > klen && strncmp(p, key, klen) == 0 && p[klen] == ':') {
            size_t n = len - klen - 1;
            if (n >= outsz)
                n = outsz - 1;
            memcpy(out, p + klen + 1, n);
            out[n] = 0;
            return out;
        }
        p += len + (eol ? 1 : 0);
    }
    return out;
}

/* Shadow-stack status through arch_prctl (raw; returns the features or -errno). */
SS_INLINE long pr_ss_status(void) {
    unsigned long v = 0xdead;
    long r = ss_arch_prctl(ARCH_SHSTK_STATUS, (unsigned long)&v);
    return r ? r : (long)v;
}

/* Wait status as text, the same for a native and an emulated run. */
static __attribute__((unused)) const char *pr_wstatus(int st) {
    static char buf[96];
    if (WIFEXITED(st))
        snprintf(buf, sizeof buf, "exited %d (raw %#x)", WEXITSTATUS(st), st);
    else if (WIFSIGNALED(st))
        snprintf(buf, sizeof buf, "signaled %d core %d (raw %#x)", WTERMSIG(st),
                 WCOREDUMP(st) ? 1 : 0, st);
    else if (WIFSTOPPED(st))
        snprintf(buf, sizeof buf, "stopped %d (raw %#x)", WSTOPSIG(st), st);
    else if (WIFCONTINUED(st))
        snprintf(buf, sizeof buf, "continued (raw %#x)", st);
    else
        snprintf(buf, sizeof buf, "unknown %#x", st);
    return buf;
}

/* Run f() in a forked child (stdout flushed first) and return its wait status. */
static __attribute__((unused)) int pr_in_child(void (*f)(void)) {
    int st = -1;
    pid_t pid;
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        f();
        fflush(stdout);
        _exit(0);
    }
    if (waitpid(pid, &st, 0) != pid)
        return -1;
    return st;
}

#endif
