/*
 * The ia32 system-call entry from 64-bit code (int $0x80) and the return to 32-bit code
 * that a handler installed through it needs. Prints "ok <part>" per behaviour.
 *
 * With shadow stacks on and SSP above 4 GiB, the return to compatibility mode is #GP:
 * SIGSEGV, si_code SI_KERNEL, trapno 13, err 0, and the 64-bit SIGSEGV handler sees the
 * 32-bit handler's address as the interrupted RIP.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

static long int80(long nr, long b, long c, long d, long si, long di, long bp)
{
    long ret;
    register long r_bp asm("rbp") = bp;
    asm volatile("int $0x80" : "=a"(ret)
                 : "0"(nr), "b"(b), "c"(c), "d"(d), "S"(si), "D"(di), "r"(r_bp)
                 : "memory");
    return ret;
}

#define ARCH_PRCTL(a, b) ({ long _r; register long _1 asm("rdi") = (a); \
    register long _2 asm("rsi") = (b); asm volatile("syscall" : "=a"(_r) \
    : "0"(158L), "r"(_1), "r"(_2) : "rcx", "r11", "memory", "cc"); _r; })

static sigjmp_buf jb;
static volatile int seen_code = -1, seen_trapno = -1, seen_err = -1;
static volatile uintptr_t seen_rip;

static void on_segv(int sig, siginfo_t *si, void *ucp)
{
    ucontext_t *uc = ucp;
    seen_code = si->si_code;
    seen_trapno = (int)uc->uc_mcontext.gregs[REG_TRAPNO];
    seen_err = (int)uc->uc_mcontext.gregs[REG_ERR];
    seen_rip = uc->uc_mcontext.gregs[REG_RIP];
    ARCH_PRCTL(0x5002, 1);  /* disable the shadow stack before leaving the handler */
    siglongjmp(jb, 1);
}

int main(int argc, char **argv)
{
    static const char msg[] = "hello from int80\n";
    long r = int80(4, 1, (long)msg, sizeof(msg) - 1, 0, 0, 0);
    printf("%s write\n", r == (long)sizeof(msg) - 1 ? "ok" : "FAIL");
    printf("%s getpid\n", int80(20, 0, 0, 0, 0, 0, 0) == getpid() ? "ok" : "FAIL");
    printf("%s enosys\n", int80(9999, 0, 0, 0, 0, 0, 0) == -38 ? "ok" : "FAIL");
    long brk0 = int80(45, 0, 0, 0, 0, 0, 0);
    printf("%s brk\n", brk0 > 0 && brk0 == (long)sbrk(0) ? "ok" : "FAIL");
    long m = int80(192, 0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("%s mmap2\n", m > 0 && (unsigned long)m < (1UL << 32) ? "ok" : "FAIL");
    /* sigprocmask, old one-word form: block SIGUSR2, read it back through rt_sigprocmask */
    static unsigned int set = 1u << (SIGUSR2 - 1), old; /* below 4 GiB: -no-pie */
    sigset_t now;
    int80(126, SIG_BLOCK, (long)&set, (long)&old, 0, 0, 0);
    sigprocmask(SIG_BLOCK, NULL, &now);
    printf("%s sigprocmask\n", sigismember(&now, SIGUSR2) ? "ok" : "FAIL");
    int80(126, SIG_UNBLOCK, (long)&set, 0, 0, 0, 0);

    /* compat sigaction: the handler reads back through the 64-bit rt_sigaction */
    unsigned int *sa32 = mmap(0, 4096, PROT_READ | PROT_WRITE,
                              MAP_32BIT | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    sa32[0] = (unsigned int)(uintptr_t)sa32; /* handler */
    sa32[1] = 0; sa32[2] = 0; sa32[3] = 0;
    long s = int80(67, SIGUSR1, (long)sa32, 0, 0, 0, 0);
    struct sigaction cur;
    sigaction(SIGUSR1, NULL, &cur);
    printf("%s sigaction32 %ld flags=%#lx\n",
           s == 0 && (uintptr_t)cur.sa_handler == (uintptr_t)sa32 ? "ok" : "FAIL", s,
           (unsigned long)cur.sa_flags);

    if (argc > 1) {
        /* shadow stacks off: the 32-bit handler would really have to run */
        fflush(stdout);
        raise(SIGUSR1);
        printf("FAIL returned from the 32-bit handler\n");
        return 1;
    }
    struct sigaction sa = {0};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    if (ARCH_PRCTL(0x5001, 1)) {
        printf("FAIL enable\n");
        return 1;
    }
    if (!sigsetjmp(jb, 1))
        raise(SIGUSR1);
    printf("%s compat-gp code=%#x trapno=%d err=%d rip_is_handler=%d\n",
           seen_code == 0x80 && seen_trapno == 13 && seen_err == 0 &&
           seen_rip == (uintptr_t)sa32 ? "ok" : "FAIL",
           seen_code, seen_trapno, seen_err, seen_rip == (uintptr_t)sa32);
    fflush(stdout);
    return 0;
}
