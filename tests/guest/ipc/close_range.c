/* close_range: CLOSE_RANGE_UNSHARE gives a CLONE_FILES child its own table; CLOEXEC. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <fcntl.h>
#include <unistd.h>
#include <signal.h>
#include <sys/wait.h>
#include <sys/syscall.h>
static char stack[65536];
static int child(void *a) {
    (void)a;
    long r = syscall(SYS_close_range, 3, ~0U, 2);  /* UNSHARE */
    printf("child close_range %ld, fd3 %s\n", r, fcntl(3, F_GETFD) < 0 ? "closed" : "open");
    fflush(stdout);
    return 0;
}
int main(void) {
    int fd = open("/etc/passwd", O_RDONLY);
    printf("fd %d\n", fd);
    fflush(stdout);
    pid_t p = clone(child, stack + sizeof stack, CLONE_FILES | SIGCHLD, NULL);
    waitpid(p, NULL, 0);
    printf("parent fd3 %s\n", fcntl(3, F_GETFD) < 0 ? "closed" : "open");
    long r = syscall(SYS_close_range, 3, 3, 4);
    printf("cloexec %ld flags %d\n", r, fcntl(3, F_GETFD));
    printf("bad %ld\n", syscall(SYS_close_range, 5, 3, 0));
    printf("badflag %ld\n", syscall(SYS_close_range, 3, 5, 8));
    return 0;
}
