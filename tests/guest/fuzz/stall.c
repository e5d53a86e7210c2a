/* stall MODE: stay somewhere for a long time, for --timeout and Ctrl-C tests.
 *   spin: compute; sleep: nanosleep; wait: wait for a child that sleeps; pipe: read an
 *   empty pipe a child keeps open; write: write 1 GiB to /dev/null again and again;
 *   zero: read 1 GiB from /dev/zero again and again; bigwrite: one 1 GiB write to
 *   /dev/null, then print what it returned. Prints "ready" first. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    const char *mode = argv[1];
    printf("ready\n");
    fflush(stdout);
    if (!strcmp(mode, "spin")) {
        for (volatile unsigned long i = 0;; i++) {}
    } else if (!strcmp(mode, "sleep")) {
        sleep(1000);
    } else if (!strcmp(mode, "wait")) {
        if (fork() == 0) { sleep(1000); _exit(0); }
        wait(0);
    } else if (!strcmp(mode, "pipe")) {
        int p[2];
        char b;
        pipe(p);
        if (fork() == 0) { sleep(1000); _exit(0); }
        read(p[0], &b, 1);
    } else {
        size_t n = 1UL << 30;
        char *buf = mmap(0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        int fd = open(!strcmp(mode, "write") ? "/dev/null" : "/dev/zero", O_RDWR);
        if (!strcmp(mode, "bigwrite")) {
            printf("%ld\n", (long)write(fd, buf, n));
            return 0;
        }
        for (;;) {
            if (!strcmp(mode, "write")) write(fd, buf, n);
            else read(fd, buf, n);
        }
    }
    return 0;
}
