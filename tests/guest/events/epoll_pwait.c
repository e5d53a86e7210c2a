/* epoll_pwait/epoll_pwait2 swap the signal mask for the wait only (issue 17). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

static volatile int got;
static void on_usr1(int sig) { (void)sig; got++; }

static int blocked(int sig) {
    sigset_t cur;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    return sigismember(&cur, sig);
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    sigset_t usr1, empty, all;
    sigemptyset(&usr1); sigaddset(&usr1, SIGUSR1);
    sigemptyset(&empty); sigfillset(&all);
    sigprocmask(SIG_BLOCK, &usr1, NULL);
    raise(SIGUSR1);
    int ep = epoll_create1(0);
    struct epoll_event ev;
    /* a pending signal the wait's mask unblocks: EINTR, the handler ran, mask restored */
    int r = epoll_pwait(ep, &ev, 1, 5000, &empty);
    printf("pwait: %d %s handler=%d usr1-blocked=%d\n", r, r < 0 ? strerror(errno) : "",
           got, blocked(SIGUSR1));
    raise(SIGUSR1);
    struct timespec ts = {5, 0};
    r = epoll_pwait2(ep, &ev, 1, &ts, &empty);
    printf("pwait2: %d %s handler=%d usr1-blocked=%d\n", r, r < 0 ? strerror(errno) : "",
           got, blocked(SIGUSR1));
    /* a call that completes at once leaves the caller's mask as it was */
    int efd = eventfd(1, 0);
    ev.events = EPOLLIN; ev.data.u64 = 7;
    epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev);
    sigprocmask(SIG_SETMASK, &empty, NULL);
    r = epoll_pwait(ep, &ev, 1, -1, &all);
    printf("ready: %d data=%llu usr1-blocked=%d\n", r, (unsigned long long)ev.data.u64,
           blocked(SIGUSR1));
    /* a timeout with every signal blocked for the wait: the pending one waits for after */
    sigprocmask(SIG_BLOCK, &usr1, NULL);
    raise(SIGUSR1);
    epoll_ctl(ep, EPOLL_CTL_DEL, efd, NULL);
    r = epoll_pwait(ep, &ev, 1, 50, &all);
    printf("timeout: %d handler=%d\n", r, got);
    sigprocmask(SIG_UNBLOCK, &usr1, NULL);
    printf("after unblock: handler=%d\n", got);
    return 0;
}
