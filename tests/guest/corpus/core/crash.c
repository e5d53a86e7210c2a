/* Ways to die of a signal, chosen by argv[1]. Prints one line to stdout first. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const char rodata[64] = "constant";

__attribute__((noinline)) static int recurse(volatile char *p) {
    volatile char buf[256];
    buf[0] = p[0];
    return recurse(buf) + buf[1];
}

int main(int argc, char **argv) {
    const char *how = argc > 1 ? argv[1] : "null";
    printf("crash: %s\n", how);
    fflush(stdout);
    if (!strcmp(how, "null")) {
        *(volatile int *)0x10 = 1;
    } else if (!strcmp(how, "wild")) {
        *(volatile long *)0x7f0000001000ul = 1;
    } else if (!strcmp(how, "rodata")) {
        *(volatile char *)&rodata[8] = 'x';
    } else if (!strcmp(how, "jump0")) {
        void (*volatile f)(void) = 0;
        f();
    } else if (!strcmp(how, "ud2")) {
        __asm__ volatile("ud2");
    } else if (!strcmp(how, "divzero")) {
        int q, z = 0;
        __asm__ volatile("cltd; idivl %2" : "=a"(q) : "a"(1), "r"(z) : "edx");
        printf("%d\n", q);
    } else if (!strcmp(how, "bus")) {
        /* A file mapping past the end of the file: SIGBUS (BUS_ADRERR). */
        int fd = open(argv[2], O_RDONLY);
        char *m = mmap(NULL, 2 * 4096, PROT_READ, MAP_PRIVATE, fd, 0);
        printf("%d\n", m[4096 + 10]);
    } else if (!strcmp(how, "stack")) {
        recurse((volatile char *)argv[0]);
    } else if (!strcmp(how, "loop")) {
        for (volatile unsigned long i = 0;; i++) {
        }
    } else if (!strcmp(how, "kill")) {
        kill(getpid(), SIGTERM);
        pause();
    }
    printf("survived\n");
    return 0;
}
