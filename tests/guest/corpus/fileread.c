/* File reading: the file named by argv[1] (the test writes it) with read/lseek/pread/fstat
 * and stdio; then /etc/passwd's line count compared with a second read through mmap. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: fileread FILE\n");
        return 2;
    }
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) {
        perror("open");
        return 1;
    }
    struct stat st;
    fstat(fd, &st);
    printf("size=%lld regular=%d\n", (long long)st.st_size, S_ISREG(st.st_mode));
    char buf[256];
    ssize_t n = read(fd, buf, 10);
    printf("read 10 -> %zd [%.*s]\n", n, (int)n, buf);
    off_t off = lseek(fd, -5, SEEK_END);
    n = read(fd, buf, sizeof buf);
    printf("lseek end-5 -> %lld, read -> %zd [%.*s]\n", (long long)off, n, (int)n, buf);
    n = read(fd, buf, sizeof buf);
    printf("read at eof -> %zd\n", n);
    n = pread(fd, buf, 8, 100);
    printf("pread 8@100 -> %zd [%.*s] pos=%lld\n", n, (int)n, buf,
           (long long)lseek(fd, 0, SEEK_CUR));
    close(fd);

    FILE *f = fopen(argv[1], "r");
    unsigned long sum = 0, lines = 0;
    int c;
    while ((c = fgetc(f)) != EOF) {
        sum = sum * 31 + (unsigned)c;
        lines += c == '\n';
    }
    fclose(f);
    printf("lines=%lu hash=%lx\n", lines, sum);

    errno = 0;
    fd = open("/nonexistent/file", O_RDONLY);
    printf("open missing -> %d errno=%s\n", fd, strerror(errno));

    FILE *pw = fopen("/etc/passwd", "r");
    long pwlines = 0;
    char line[1024];
    int has_root = 0;
    while (fgets(line, sizeof line, pw)) {
        pwlines++;
        if (strncmp(line, "root:", 5) == 0)
            has_root = 1;
    }
    fclose(pw);
    fd = open("/etc/passwd", O_RDONLY);
    fstat(fd, &st);
    char *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    long mlines = 0;
    for (off_t i = 0; i < st.st_size; i++)
        mlines += m[i] == '\n';
    munmap(m, (size_t)st.st_size);
    close(fd);
    printf("/etc/passwd: lines=%ld via mmap=%ld root=%d\n", pwlines, mlines, has_root);
    return 0;
}
