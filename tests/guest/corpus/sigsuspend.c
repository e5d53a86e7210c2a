/* sigsuspend: a signal raised while blocked stays pending; sigsuspend with an empty mask
 * must deliver it at once (the handler runs, sigsuspend returns -1/EINTR) and restore the
 * old mask. Also sigwait/sigtimedwait taking a pending signal synchronously. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>

static volatile sig_atomic_t got;

static void on_usr1(int sig) { got += sig == SIGUSR1; }

int main(void) {
    sigset_t set, empty, now;
    sigemptyset(&set);
    sigemptyset(&empty);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    signal(SIGUSR1, on_usr1);
    sigprocmask(SIG_BLOCK, &set, NULL);

    raise(SIGUSR2);
    int sig = 0;
    int r = sigwait(&set, &sig);
    printf("sigwait -> %d sig=%s\n", r, sig == SIGUSR2 ? "SIGUSR2" : "other");
    raise(SIGUSR2);
    siginfo_t si;
    struct timespec ts = {0, 0};
    r = sigtimedwait(&set, &si, &ts);
    printf("sigtimedwait -> %s code=%s\n", r == SIGUSR2 ? "SIGUSR2" : "other",
           si.si_code == SI_TKILL ? "SI_TKILL" : si.si_code == SI_USER ? "SI_USER" : "other");
    errno = 0;
    r = sigtimedwait(&set, &si, &ts);
    printf("sigtimedwait nothing pending -> %d EAGAIN=%d\n", r, errno == EAGAIN);

    raise(SIGUSR1);
    printf("pending while blocked, got=%d\n", got);
    r = sigsuspend(&empty);
    printf("sigsuspend -> %d EINTR=%d got=%d\n", r, errno == EINTR, got);
    sigprocmask(SIG_BLOCK, NULL, &now);
    printf("mask restored: USR1 blocked=%d\n", sigismember(&now, SIGUSR1));
    return 0;
}
