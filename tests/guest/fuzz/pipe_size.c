/* pipe_size: F_GETPIPE_SZ / F_SETPIPE_SZ and a pipe's capacity, as Linux. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void show(const char *what, long r) {
    printf("%s: %ld %s\n", what, r, r < 0 ? strerror(errno) : "");
}

int main(void) {
    int p[2];
    static char buf[1 << 20];
    pipe2(p, O_NONBLOCK);
    show("default", fcntl(p[0], F_GETPIPE_SZ));
    long n = 0, w;
    while ((w = write(p[1], buf, 4096)) > 0) n += w;
    show("a full pipe holds", n);
    while (read(p[0], buf, sizeof buf) > 0) {}
    n = 0;
    while ((w = write(p[1], buf, 1000)) > 0) n += w;
    show("of 1000-byte writes", n);
    show("read 2500", read(p[0], buf, 2500));
    n = 0;
    while ((w = write(p[1], buf, 1000)) > 0) n += w;
    show("then writes", n);
    while (read(p[0], buf, sizeof buf) > 0) {}
    n = 0;
    while ((w = write(p[1], buf, 5000)) > 0) n += w;
    show("of 5000-byte writes", n);
    while (read(p[0], buf, sizeof buf) > 0) {}
    n = 0;
    while ((w = write(p[1], buf, 4096)) > 0) n += w;
    show("shrink below its content", fcntl(p[1], F_SETPIPE_SZ, 4096));
    while (read(p[0], buf, sizeof buf) > 0) {}
    show("set 100000", fcntl(p[1], F_SETPIPE_SZ, 100000));
    show("get", fcntl(p[0], F_GETPIPE_SZ));
    show("set 0", fcntl(p[1], F_SETPIPE_SZ, 0));
    show("set 2^31 + 1", fcntl(p[1], F_SETPIPE_SZ, (1UL << 31) + 1));
    show("on a file", fcntl(1, F_GETPIPE_SZ) < 0 ? -1 : 0);
    n = 0;
    fcntl(p[1], F_SETPIPE_SZ, 8192);
    while ((w = write(p[1], buf, 4096)) > 0) n += w;
    show("an 8 KiB pipe holds", n);
    return 0;
}
