/* fork_many N [NPROC]: fork up to N children that wait on a pipe; print how many forks
 * worked and the errno of the first that failed ("ok N" or "fail N ERRNO"), then release
 * them. With NPROC: set RLIMIT_NPROC to it and become user 65534 first (root is exempt). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 1000;
    if (argc > 2) {
        struct rlimit rl = {atoi(argv[2]), atoi(argv[2])};
        if (setrlimit(RLIMIT_NPROC, &rl) || setgid(65534) || setuid(65534)) return 3;
    }
    int p[2];
    if (pipe(p)) return 2;
    int made = 0, err = 0;
    for (; made < n; made++) {
        pid_t c = fork();
        if (c == 0) {
            char b;
            close(p[1]);
            read(p[0], &b, 1);   /* until the parent closes the write end */
            _exit(0);
        }
        if (c < 0) { err = errno; break; }
    }
    close(p[1]);
    while (wait(0) > 0) {}
    if (err) printf("fail %d %d\n", made, err);
    else printf("ok %d\n", made);
    return 0;
}
