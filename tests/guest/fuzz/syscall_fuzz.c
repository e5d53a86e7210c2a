/* A system-call fuzzer: calls numbers from the table with seeded hostile arguments.
 *
 *   syscall_fuzz LOG SEED START COUNT BATCH NR:KIND,KIND... ...
 *
 * Call i (START <= i < START+COUNT) fuzzes spec[i % nspec] with arguments drawn from a
 * generator seeded by (SEED, i) alone, so one index reproduces one call. Calls run in
 * child processes, BATCH at a time (fork per batch): a guest crash ends only its batch,
 * and the next batch starts after the call that crashed. Before each call the child
 * appends "i nr a0 a1 a2 a3 a4 a5" to LOG (O_APPEND), so when shstk itself fails the
 * last line names the call. A 50 ms timer (SIGALRM, no SA_RESTART) interrupts calls
 * that would block; the parent kills a batch that is stuck anyway.
 *
 * The child uses raw system calls only after the first fuzzed call: a hostile
 * arch_prctl(ARCH_SET_FS) or brk must not break what the fuzzer itself needs.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/time.h>
#include <unistd.h>

#define LOG_FD 1000

static long raw6(long n, long a, long b, long c, long d, long e, long f) {
    long ret;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("syscall" : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}
#define raw(n, a, b, c) raw6(n, a, b, c, 0, 0, 0)

/* splitmix64 */
static uint64_t rng_state;
static uint64_t rnd(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static uint64_t pick(const uint64_t *v, int n) { return v[rnd() % n]; }

struct spec { long nr; int nargs; char kind[6][16]; };

static struct spec *specs;
static int nspec;
static char *valid;        /* 64 KiB read-write, random contents */
static char *readonly;     /* one page of 'A' (no NUL), then a PROT_NONE page */
static char *unmapped;     /* was mapped, now is not */
static char *longpath;     /* 5000 characters */
static long parent_pid, parent_pgrp;
static volatile uint64_t *progress;  /* shared with the parent: the call running */

static const char *paths[] = {"", "/", ".", "..", "f", "g/h", "/dev/null", "/dev/zero",
                              "/proc/self/status", "/proc/self/mem", "/nonexistent/x",
                              "/etc/passwd", "f/", "//..//./f"};

static const uint64_t ints[] = {0, 1, 2, 3, 4, 7, 8, 16, 64, 4096, 65536, (uint64_t)-1,
                                (uint64_t)-2, (uint64_t)-4096, 0x7fffffff, 0x80000000ULL,
                                0xffffffffULL, 1ULL << 32, 1ULL << 40, 1ULL << 63,
                                (1ULL << 63) - 1, ~0ULL, 0xffff800000000000ULL};

static uint64_t pointer(void) {
    switch (rnd() % 9) {
    case 0: return 0;
    case 1: return (uint64_t)unmapped;
    case 2: return (uint64_t)readonly;
    case 3: return (uint64_t)(valid + 65536 - 8);   /* runs off the end */
    case 4: return 0xffff800000000000ULL;          /* kernel half */
    case 5: return 0x0000800000000000ULL;          /* not canonical */
    case 6: return (uint64_t)(valid + 1);           /* misaligned */
    default: return (uint64_t)valid;
    }
}

static uint64_t integer(void) {
    switch (rnd() % 4) {
    case 0: return rnd();
    case 1: return rnd() % 32;
    default: return pick(ints, sizeof ints / sizeof ints[0]);
    }
}

static uint64_t arg_of(const char *kind) {
    if (rnd() % 8 == 0)   /* any kind may get any value */
        return rnd() % 2 ? integer() : pointer();
    if (!strcmp(kind, "fd") || !strcmp(kind, "dirfd")) {
        static const uint64_t fds[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, (uint64_t)-1,
                                       (uint64_t)-100, 1023, 1024, 0x7fffffff, 0x80000000ULL,
                                       1ULL << 32 | 3};
        return pick(fds, sizeof fds / sizeof fds[0]);
    }
    if (!strcmp(kind, "path") || !strcmp(kind, "str")) {
        switch (rnd() % 6) {
        case 0: return pointer();
        case 1: return (uint64_t)longpath;
        default: return (uint64_t)paths[rnd() % (sizeof paths / sizeof paths[0])];
        }
    }
    if (!strcmp(kind, "pid")) {
        static const uint64_t pids[] = {0, 1, 2, 99999, 0x7fffffff, 0x80000000ULL,
                                        (uint64_t)-1, (uint64_t)-2, 1ULL << 32};
        return pick(pids, sizeof pids / sizeof pids[0]);
    }
    if (!strcmp(kind, "sig")) {
        static const uint64_t sigs[] = {0, SIGKILL, SIGSTOP, SIGSEGV, SIGUSR1, SIGCHLD, SIGALRM,
                                        SIGCONT, 31, 32, 64, 65, (uint64_t)-1, 1ULL << 32 | 10};
        return pick(sigs, sizeof sigs / sizeof sigs[0]);
    }
    if (kind[0] == 'p' || !strncmp(kind, "buf", 3) || !strncmp(kind, "obuf", 4) ||
        kind[0] == 'o' || !strcmp(kind, "sigaction") || !strcmp(kind, "argv") ||
        !strcmp(kind, "clone_args") || !strcmp(kind, "rlimit_in") || !strcmp(kind, "code"))
        return rnd() % 4 ? pointer() : integer();
    if (!strcmp(kind, "u") || !strcmp(kind, "x") || !strcmp(kind, "i") ||
        !strcmp(kind, "u32") || !strcmp(kind, "i32") || !strcmp(kind, "loff") ||
        !strcmp(kind, "off"))
        return integer();
    /* flags and small enumerations: one bit, a few bits, all bits, or small */
    switch (rnd() % 5) {
    case 0: return 1ULL << (rnd() % 64);
    case 1: return rnd() & rnd();
    case 2: return rnd() % 16;
    default: return integer();
    }
}

/* A pid argument that could reach the fuzzer's parent becomes the child's own. */
static long safe_pid(long v) {
    int p = (int)v;
    if (p == -1 || p == parent_pid || p == -parent_pgrp || p == 1 || p == -1 * 1)
        return raw(SYS_getpid, 0, 0, 0);
    return v;
}

static void sanitize(long nr, uint64_t *a) {
    switch (nr) {
    case SYS_kill: case SYS_tkill: case SYS_rt_sigqueueinfo: case SYS_pidfd_open:
    case SYS_process_vm_readv: case SYS_process_vm_writev: case SYS_prlimit64:
    case SYS_sched_setscheduler: case SYS_sched_setparam:
    case SYS_sched_setattr: case SYS_setpriority: case SYS_migrate_pages:
    case SYS_move_pages: case SYS_kcmp:
        a[nr == SYS_setpriority ? 1 : 0] = safe_pid(a[nr == SYS_setpriority ? 1 : 0]);
        break;
    case SYS_tgkill: case SYS_rt_tgsigqueueinfo:
        a[0] = safe_pid(a[0]);
        a[1] = safe_pid(a[1]);
        break;
    case SYS_setpgid:   /* back into the parent's group, kill(0) would reach it */
        a[0] = safe_pid(a[0]);
        if ((int)a[1] == parent_pgrp) a[1] = 0;
        break;
    case SYS_ptrace:
        a[1] = safe_pid(a[1]);
        break;
    case SYS_clone:
        /* a child sharing our memory and stack would run the fuzzer's own frames */
        a[0] &= ~(uint64_t)(CLONE_VM | CLONE_VFORK | CLONE_SETTLS);
        break;
    case SYS_clone3:
        if (a[0] == (uint64_t)valid)
            ((uint64_t *)valid)[0] &= ~(uint64_t)(CLONE_VM | CLONE_VFORK | CLONE_SETTLS);
        break;
    }
}

static char hex[] = "0123456789abcdef";
static int put_hex(char *out, uint64_t v) {
    char tmp[16];
    int n = 0, k = 0;
    do { tmp[n++] = hex[v & 15]; v >>= 4; } while (v);
    out[k++] = '0'; out[k++] = 'x';
    while (n) out[k++] = tmp[--n];
    return k;
}

static void on_alarm(int sig) { (void)sig; }

struct ksigaction { void *handler; unsigned long flags; void *restorer; uint64_t mask; };
extern void restore_rt(void);
__asm__(".text\n.globl restore_rt\nrestore_rt:\n mov $15, %eax\n syscall\n hlt\n");

static void arm_timer(void) {
    struct ksigaction sa = {(void *)on_alarm, 0x04000000 /* SA_RESTORER */, (void *)restore_rt, 0};
    uint64_t none = 0;
    raw6(SYS_rt_sigaction, SIGALRM, (long)&sa, 0, 8, 0, 0);
    raw6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&none, 0, 8, 0, 0);
    struct itimerval t = {{0, 0}, {0, 50000}};
    raw(SYS_setitimer, ITIMER_REAL, (long)&t, 0);
}

static void run_batch(uint64_t seed, uint64_t start, uint64_t end) {
    long me = raw(SYS_getpid, 0, 0, 0);
    for (uint64_t i = start; i < end; i++) {
        struct spec *s = &specs[i % nspec];
        uint64_t a[6];
        rng_state = seed * 0x100000001b3ULL ^ (i + 1) * 0x9e3779b97f4a7c15ULL;
        rnd();
        for (int k = 0; k < 6; k++)
            a[k] = k < s->nargs ? arg_of(s->kind[k]) : integer();
        /* the valid buffer: zeros, or random bytes, before each call */
        if (rnd() % 2)
            memset(valid, 0, 4096);
        else
            for (int k = 0; k < 512; k++) ((uint64_t *)valid)[k] = rnd();
        sanitize(s->nr, a);
        char line[200];
        int n = put_hex(line, i);
        line[n++] = ' ';
        n += put_hex(line + n, s->nr);
        for (int k = 0; k < 6; k++) { line[n++] = ' '; n += put_hex(line + n, a[k]); }
        line[n++] = '\n';
        if (raw(SYS_write, LOG_FD, (long)line, n) != n)
            raw(SYS_exit, 0, 0, 0);   /* the call before closed our log: end the batch */
        *progress = i;
        arm_timer();
        raw6(s->nr, a[0], a[1], a[2], a[3], a[4], a[5]);
        struct itimerval off = {{0, 0}, {0, 0}};
        raw(SYS_setitimer, ITIMER_REAL, (long)&off, 0);
        if (raw(SYS_getpid, 0, 0, 0) != me)
            raw(SYS_exit, 0, 0, 0);   /* a fork's child: only the batch's process fuzzes */
    }
}

static void setup_files(void) {
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0); dup2(null, 1); dup2(null, 2);
    close(null);
    int p[2];
    pipe(p);                                              /* 3, 4 */
    open("f", O_RDWR | O_CREAT, 0644);                   /* 5 */
    socket(AF_UNIX, SOCK_STREAM, 0);                      /* 6 */
    open(".", O_RDONLY | O_DIRECTORY);                    /* 7 */
    syscall(SYS_eventfd2, 0, 0);                          /* 8 */
    syscall(SYS_epoll_create1, 0);                        /* 9 */
    syscall(SYS_memfd_create, "m", 0);                    /* 10 */
    syscall(SYS_timerfd_create, CLOCK_MONOTONIC, 0);      /* 11 */
}

int main(int argc, char **argv) {
    if (argc < 7) return 2;
    int log = open(argv[1], O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (log < 0 || dup2(log, LOG_FD) < 0) return 2;
    close(log);
    uint64_t seed = strtoull(argv[2], 0, 0), start = strtoull(argv[3], 0, 0);
    uint64_t count = strtoull(argv[4], 0, 0), batch = strtoull(argv[5], 0, 0);
    nspec = argc - 6;
    specs = calloc(nspec, sizeof *specs);
    for (int i = 0; i < nspec; i++) {
        char *tok = argv[6 + i], *colon = strchr(tok, ':');
        specs[i].nr = strtol(tok, 0, 10);
        if (colon && colon[1] && colon[1] != '-') {
            char *k = colon + 1;
            while (*k && specs[i].nargs < 6) {
                char *comma = strchr(k, ',');
                size_t len = comma ? (size_t)(comma - k) : strlen(k);
                if (len > 15) len = 15;
                memcpy(specs[i].kind[specs[i].nargs++], k, len);
                k = comma ? comma + 1 : k + len;
            }
        }
    }
    valid = mmap(0, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    readonly = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(readonly, 'A', 4096);
    mprotect(readonly, 4096, PROT_READ);
    mprotect(readonly + 4096, 4096, PROT_NONE);
    unmapped = mmap(0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(unmapped, 4096);
    longpath = malloc(5001);
    memset(longpath, 'a', 5000);
    longpath[5000] = 0;
    progress = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    parent_pid = getpid();
    parent_pgrp = getpgrp();
    signal(SIGALRM, SIG_IGN);
    /* the parent only polls waitpid: a signal a fuzzed call aims at it (a clone child's
       exit signal, F_SETOWN, a timer) stays pending; each child unblocks all before
       each call */
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, 0);

    uint64_t i = start, end = start + count;
    int batches = 0, crashed = 0, stuck = 0;
    while (i < end) {
        uint64_t stop = i + batch < end ? i + batch : end;
        *progress = i;
        pid_t child = fork();
        if (child == 0) {
            setpgid(0, 0);
            setup_files();
            run_batch(seed, i, stop);
            raw(SYS_exit, 0, 0, 0);
        }
        if (child < 0) return 3;
        batches++;
        int status = 0;
        /* 20 ms per call and 2 s more: a call that blocks anyway ends its batch */
        long waited = 0, limit = 2000 + 20 * (long)(stop - i);
        for (;;) {
            pid_t w = waitpid(-1, &status, WNOHANG);
            if (w == child) break;
            if (w > 0) continue;     /* a grandchild reparented to us */
            if (w < 0) break;
            if (waited >= limit) {
                kill(-child, SIGKILL);
                kill(child, SIGKILL);
                waitpid(child, &status, 0);
                stuck++;
                break;
            }
            struct timespec ts = {0, 5000000};
            nanosleep(&ts, 0);
            waited += 5;
        }
        kill(-child, SIGKILL);  /* whatever the batch left behind */
        while (waitpid(-1, 0, WNOHANG) > 0) {}
        if (WIFSIGNALED(status)) crashed++;
        uint64_t done = *progress;
        i = (done >= i && done < stop && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
            ? done + 1 : stop;
    }
    char msg[120];
    int n = snprintf(msg, sizeof msg, "fuzz: %d batches, %d crashed, %d stuck\n",
                     batches, crashed, stuck);
    write(1, msg, n);
    return 0;
}
