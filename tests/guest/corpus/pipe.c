/* Pipes within one process: write then read, partial reads, EOF after the write end closes,
 * EPIPE/SIGPIPE when the read end is gone, O_NONBLOCK EAGAIN, dup2, pipe2 flags, writev. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

int main(void) {
    int fds[2];
    printf("pipe -> %d\n", pipe(fds));
    const char *msg = "through the pipe";
    printf("write -> %zd\n", write(fds[1], msg, strlen(msg)));
    char buf[64];
    ssize_t n = read(fds[0], buf, 7);
    printf("read 7 -> %zd [%.*s]\n", n, (int)n, buf);
    n = read(fds[0], buf, sizeof buf);
    printf("read rest -> %zd [%.*s]\n", n, (int)n, buf);
    struct iovec iov[3] = {{"one ", 4}, {"two ", 4}, {"three", 5}};
    printf("writev -> %zd\n", writev(fds[1], iov, 3));
    n = read(fds[0], buf, sizeof buf);
    printf("read -> %zd [%.*s]\n", n, (int)n, buf);

    fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
    errno = 0;
    n = read(fds[0], buf, sizeof buf);
    printf("nonblocking empty read -> %zd EAGAIN=%d\n", n, errno == EAGAIN);

    /* Fill the pipe: the default capacity is 64 KiB. */
    fcntl(fds[1], F_SETFL, O_NONBLOCK);
    static char chunk[4096];
    memset(chunk, 'z', sizeof chunk);
    long total = 0;
    while ((n = write(fds[1], chunk, sizeof chunk)) > 0)
        total += n;
    printf("pipe capacity=%ld then EAGAIN=%d\n", total, errno == EAGAIN);
    long drained = 0;
    while ((n = read(fds[0], chunk, sizeof chunk)) > 0)
        drained += n;
    printf("drained=%ld\n", drained);

    close(fds[1]);
    n = read(fds[0], buf, sizeof buf);
    printf("read after writer closed -> %zd (EOF)\n", n);
    close(fds[0]);

    pipe(fds);
    signal(SIGPIPE, SIG_IGN);
    close(fds[0]);
    errno = 0;
    n = write(fds[1], "x", 1);
    printf("write with no reader -> %zd EPIPE=%d\n", n, errno == EPIPE);
    close(fds[1]);

    printf("pipe2 -> %d\n", pipe2(fds, O_CLOEXEC | O_NONBLOCK));
    printf("cloexec=%d nonblock=%d\n", (fcntl(fds[0], F_GETFD) & FD_CLOEXEC) != 0,
           (fcntl(fds[1], F_GETFL) & O_NONBLOCK) != 0);
    int saved = dup(1);
    dup2(fds[1], 1);
    printf("captured via dup2");
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    n = read(fds[0], buf, sizeof buf);
    printf("read captured stdout -> %zd [%.*s]\n", n, (int)n, buf);
    return 0;
}
