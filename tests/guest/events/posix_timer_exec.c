/* POSIX timers: good_sigevent()'s checks, and exec destroys the process's timers. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static volatile int got;
static void on_usr1(int sig) { (void)sig; got++; }

static long create(int notify, int signo, int *id) {
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = notify;
    sev.sigev_signo = signo;
    sev._sigev_un._tid = (int)syscall(SYS_gettid);
    long r = syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, id);
    return r < 0 ? -errno : r;
}

int main(int argc, char **argv) {
    int id = -1;
    if (argc > 1) {  /* after exec: the timer armed before is gone */
        struct itimerspec cur;
        long r = syscall(SYS_timer_gettime, 0, &cur);
        printf("after exec: gettime(0) %s\n", r < 0 ? strerror(errno) : "ok");
        sleep(1);  /* the old timer's SIGALRM would have killed us here */
        printf("still alive\n");
        return 0;
    }
    printf("thread sig0: %ld\n", create(SIGEV_THREAD, 0, &id));
    printf("none|tid: %ld\n", create(SIGEV_NONE | SIGEV_THREAD_ID, SIGUSR1, &id));
    printf("bad notify: %ld\n", create(7, SIGUSR1, &id));
    signal(SIGUSR1, on_usr1);
    long r = create(SIGEV_THREAD, SIGUSR1, &id);  /* the kernel takes it as SIGEV_SIGNAL */
    struct itimerspec its = {{0, 0}, {0, 20 * 1000 * 1000}};
    syscall(SYS_timer_settime, id, 0, &its, NULL);
    while (!got)
        pause();
    printf("thread SIGUSR1: %ld id=%d fired=%d\n", r, id, got);
    int alarm_id;
    create(SIGEV_SIGNAL, SIGALRM, &alarm_id);
    struct itimerspec soon = {{0, 0}, {0, 300 * 1000 * 1000}};
    syscall(SYS_timer_settime, alarm_id, 0, &soon, NULL);
    fflush(stdout);
    execl("/proc/self/exe", argv[0], "child", (char *)NULL);
    return 1;
}
