/* Processes that outlive their parent, and violations in children.
 *
 *   family smash-child N   fork N children; each smashes its own return address
 *                          (a #CP under shadow stacks), the parent reaps them and
 *                          exits 3
 *   family orphan          the parent exits 5 at once; its child sleeps, then writes
 *                          "orphan done" to stdout: the run ends only after it
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

__attribute__((noinline, noipa)) static void smash(long value)
{
    volatile long *frame = (long *)__builtin_frame_address(0);
    frame[1] = value; /* the saved return address */
}

static int smash_children(int n)
{
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0)
            return 1;
        if (pid == 0) {
            smash(0x1000 + i);
            _exit(0);
        }
        int status;
        if (waitpid(pid, &status, 0) != pid)
            return 1;
        printf("child %d: %s %d\n", i, WIFSIGNALED(status) ? "signal" : "exit",
               WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    }
    fflush(stdout);
    return 3;
}

static int orphan(void)
{
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
        printf("orphan done, parent now %s\n", getppid() == 1 ? "init" : "other");
        fflush(stdout);
        _exit(0);
    }
    printf("parent exits\n");
    fflush(stdout);
    return 5;
}

int main(int argc, char **argv)
{
    if (argc > 2 && !strcmp(argv[1], "smash-child"))
        return smash_children(atoi(argv[2]));
    if (argc > 1 && !strcmp(argv[1], "orphan"))
        return orphan();
    fprintf(stderr, "usage: family smash-child N | orphan\n");
    return 2;
}
