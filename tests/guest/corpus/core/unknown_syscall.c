/* System calls the emulator does not implement: each returns -1/ENOSYS and the program
 * goes on. io_setup (a real Linux call, not emulated), 600 and 1000 (numbers no kernel
 * has), io_setup again (the diagnostic is printed once per number). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void try(const char *what, long nr) {
    unsigned long ctx = 0;
    errno = 0;
    long r = syscall(nr, 8, &ctx, 0, 0, 0, 0);
    printf("%s -> %ld errno=%s\n", what, r, strerrorname_np(errno));
}

int main(void) {
    try("io_setup", SYS_io_setup);
    try("syscall 600", 600);
    try("syscall 1000", 1000);
    try("io_setup again", SYS_io_setup);
    printf("still running: getpid>0=%d\n", getpid() > 0);
    return 0;
}
