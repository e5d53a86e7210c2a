/* fork + wait: the child writes through a pipe and exits with a status; waitpid reports
 * it; a second child is killed by a signal; the parent's and child's memory are separate. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    int shared = 100;
    int fds[2];
    pipe(fds);
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        close(fds[0]);
        shared = 200;
        char msg[64];
        int n = snprintf(msg, sizeof msg, "child sees shared=%d, parent ok=%d", shared,
                         getppid() > 0);
        write(fds[1], msg, (size_t)n);
        _exit(7);
    }
    close(fds[1]);
    char buf[128];
    ssize_t n = read(fds[0], buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    printf("from child: %s\n", buf);
    int status;
    pid_t w = waitpid(pid, &status, 0);
    printf("waitpid same pid=%d exited=%d status=%d parent shared=%d\n", w == pid,
           WIFEXITED(status), WEXITSTATUS(status), shared);

    pid = fork();
    if (pid == 0) {
        pause();
        _exit(0);
    }
    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
    printf("second child: signaled=%d sig=%d\n", WIFSIGNALED(status), WTERMSIG(status));

    for (int i = 0; i < 3; i++) {
        if (fork() == 0) {
            printf("grandchild %d\n", i);
            exit(10 + i);
        }
        wait(&status);
        printf("reaped status %d\n", WEXITSTATUS(status));
    }
    printf("wait with no children -> %d\n", wait(NULL));
    return 0;
}
