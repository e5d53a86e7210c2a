/* Prints what the guest sees at each path in argv: the file's size and first line, or the
 * errno name; then its cwd and /proc/self/exe. For --sysroot checks. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        int fd = open(argv[i], O_RDONLY);
        if (fd < 0) {
            printf("%s: %s\n", argv[i], strerrorname_np(errno));
            continue;
        }
        char buf[4096];
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        buf[n > 0 ? n : 0] = 0;
        printf("%s: %zd bytes: %.*s\n", argv[i], n, (int)strcspn(buf, "\n"), buf);
    }
    char cwd[PATH_MAX], exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    printf("cwd=%s exe=%s\n", getcwd(cwd, sizeof cwd) ? cwd : strerrorname_np(errno), exe);
    return 0;
}
