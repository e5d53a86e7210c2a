/* vfork + exec with shadow stacks on: glibc's CET-aware vfork does not return through a
 * shared shadow-stack slot, so the parent survives. */
#include <sys/wait.h>
#include <unistd.h>
#include "common.h"

int main(int argc, char **argv) {
    for (int i = 0; i < 3; i++) {
        pid_t pid = vfork();
        if (pid == 0) {
            execl(argv[1], argv[1], "child", (char *)NULL);
            _exit(127);
        }
        int st;
        waitpid(pid, &st, 0);
        printf("child %d exited %d\n", i, WEXITSTATUS(st));
    }
    printf("parent status %lu\n", cet_status());
    return 0;
}
