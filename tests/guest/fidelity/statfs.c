/* statfs/fstatfs as a program sees them: the file system type of a directory and how many
 * bytes of the caller's buffer the kernel filled (struct statfs is 120 bytes on x86-64;
 * a shorter struct leaves the tail, and a host-side buffer that short overflows). */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/statfs.h>
#include <unistd.h>

static void show(const char *what, int rc, const unsigned char *buf, size_t size) {
    size_t filled = size;
    while (filled > 0 && buf[filled - 1] == 0xAA) filled--;
    const struct statfs *st = (const struct statfs *)buf;
    printf("%s: rc %d, type %#lx, namelen %ld, bytes written %zu\n", what, rc,
           (unsigned long)st->f_type, (long)st->f_namelen, rc == 0 ? filled : 0);
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : ".";
    unsigned char buf[sizeof(struct statfs) + 64];
    memset(buf, 0xAA, sizeof buf);
    show("statfs", statfs(dir, (struct statfs *)buf), buf, sizeof buf);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    memset(buf, 0xAA, sizeof buf);
    show("fstatfs", fstatfs(fd, (struct statfs *)buf), buf, sizeof buf);
    close(fd);
    printf("sizeof(struct statfs) %zu\n", sizeof(struct statfs));
    return 0;
}
