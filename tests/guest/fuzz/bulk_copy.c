/* bulk_copy: sendfile, copy_file_range, read and write of several MiB (more than one of
 * shstk's chunks), with and without offsets, into files and pipes; prints what each
 * returned and a checksum of what arrived. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <sys/wait.h>
#include <unistd.h>

#define SIZE (3 * 1024 * 1024 + 123)

static unsigned long sum_file(const char *path) {
    static unsigned char buf[SIZE + 10];
    int fd = open(path, O_RDONLY);
    long n = read(fd, buf, sizeof buf);
    unsigned long s = n;
    for (long i = 0; i < n; i++) s = s * 31 + buf[i];
    close(fd);
    return s;
}

int main(void) {
    static unsigned char data[SIZE];
    for (long i = 0; i < SIZE; i++) data[i] = (unsigned char)(i * 7 + i / 4096);
    int a = open("a", O_RDWR | O_CREAT | O_TRUNC, 0644);
    printf("write: %ld\n", (long)write(a, data, SIZE));
    printf("a: %lx\n", sum_file("a"));
    int b = open("b", O_RDWR | O_CREAT | O_TRUNC, 0644);
    off_t off = 1000;
    long r = sendfile(b, a, &off, SIZE);
    printf("sendfile at 1000: %ld, offset now %ld\n", r, (long)off);
    lseek(a, 5, SEEK_SET);
    r = sendfile(b, a, 0, SIZE);
    printf("sendfile at the position: %ld, position now %ld\n", r, (long)lseek(a, 0, SEEK_CUR));
    printf("b: %lx\n", sum_file("b"));
    int c = open("c", O_RDWR | O_CREAT | O_TRUNC, 0644);
    loff_t in = 3, out = 7;
    r = copy_file_range(a, &in, c, &out, SIZE, 0);
    printf("copy_file_range: %ld, offsets %ld %ld\n", r, (long)in, (long)out);
    printf("c: %lx\n", sum_file("c"));
    int p[2];
    pipe(p);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[1]);
        int d = open("d", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        static char buf[65536];
        long n;
        while ((n = read(p[0], buf, sizeof buf)) > 0) write(d, buf, n);
        _exit(0);
    }
    close(p[0]);
    off = 0;
    long total = 0, n;
    while (total < SIZE && (n = sendfile(p[1], a, &off, SIZE - total)) > 0) total += n;
    close(p[1]);
    waitpid(pid, 0, 0);
    printf("sendfile into a pipe: %ld in all\n", total);
    printf("d: %lx\n", sum_file("d"));
    lseek(a, 0, SEEK_SET);
    static unsigned char back[SIZE];
    printf("read: %ld\n", (long)read(a, back, SIZE));
    printf("pread at 100: %ld\n", (long)pread(a, back, SIZE, 100));
    printf("pwrite at 2 MiB: %ld\n", (long)pwrite(a, data, SIZE, 2 << 20));
    printf("a: %lx\n", sum_file("a"));
    return 0;
}
