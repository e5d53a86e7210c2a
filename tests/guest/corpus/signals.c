/* Signals handled in-process: signal()+raise, sigaction with SA_SIGINFO (si_signo, si_code,
 * si_pid==getpid), kill(getpid()), blocked signal pending then delivered on unblock,
 * SA_RESETHAND, SIG_IGN, SIGALRM from alarm() interrupting pause(). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t got_usr1, got_usr2, got_alrm;
static volatile int info_signo, info_code, info_pid_ok, info_value;

static void on_usr1(int sig) { got_usr1 += sig == SIGUSR1; }

static void on_info(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    got_usr2++;
    info_signo = si->si_signo;
    info_code = si->si_code;
    info_pid_ok = si->si_pid == getpid();
    info_value = si->si_value.sival_int;
    (void)sig;
}

static void on_alrm(int sig) { got_alrm = sig; }

static const char *code_name(int c) {
    return c == SI_USER ? "SI_USER" : c == SI_TKILL ? "SI_TKILL" : c == SI_QUEUE ? "SI_QUEUE"
                                                                                 : "other";
}

int main(void) {
    signal(SIGUSR1, on_usr1);
    printf("raise -> %d\n", raise(SIGUSR1));
    printf("got_usr1=%d\n", got_usr1);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_info;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR2, &sa, NULL);
    raise(SIGUSR2);
    printf("raise USR2: n=%d signo=%d code=%s pid_ok=%d\n", got_usr2, info_signo,
           code_name(info_code), info_pid_ok);
    kill(getpid(), SIGUSR2);
    printf("kill USR2: n=%d signo=%d code=%s pid_ok=%d\n", got_usr2, info_signo,
           code_name(info_code), info_pid_ok);
    union sigval v = {.sival_int = 4242};
    sigqueue(getpid(), SIGUSR2, v);
    printf("sigqueue USR2: n=%d code=%s value=%d\n", got_usr2, code_name(info_code), info_value);

    sigset_t set, pend;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    raise(SIGUSR1);
    raise(SIGUSR1);
    sigpending(&pend);
    printf("blocked: pending=%d got_usr1=%d\n", sigismember(&pend, SIGUSR1), got_usr1);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    printf("unblocked: got_usr1=%d (standard signals do not queue)\n", got_usr1);

    struct sigaction old;
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGUSR1, &sa, NULL);
    raise(SIGUSR1);
    sigaction(SIGUSR1, NULL, &old);
    printf("SA_RESETHAND: got_usr1=%d handler now default=%d\n", got_usr1,
           old.sa_handler == SIG_DFL);

    signal(SIGUSR1, SIG_IGN);
    raise(SIGUSR1);
    printf("ignored: still alive, got_usr1=%d\n", got_usr1);

    signal(SIGALRM, on_alrm);
    alarm(1);
    int r = pause();
    printf("pause -> %d errno=%s got_alrm=%d\n", r, errno == EINTR ? "EINTR" : "?", got_alrm);

    printf("SIGRTMIN..MAX %d..%d strsignal(SIGTERM)=%s\n", SIGRTMIN, SIGRTMAX,
           strsignal(SIGTERM));
    return 0;
}
