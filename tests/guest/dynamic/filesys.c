/*
 * The file system calls ld.so and libc use, on a directory the test prepared:
 * openat, read, pread64, lseek, fstat, newfstatat, statx, access/faccessat, readlink,
 * getcwd, getdents64 (readdir), fcntl, dup, and file-backed mmap (private and shared,
 * read, at offsets). Prints only facts that are the same natively and under `shstk run`
 * (no inode numbers, times or addresses). Usage: filesys DIR (writes DIR/new.txt).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static unsigned long sum(const unsigned char *p, size_t n)
{
    unsigned long s = 0;
    for (size_t i = 0; i < n; i++)
        s = s * 31 + p[i];
    return s;
}

static const char *kind(mode_t m)
{
    return S_ISREG(m) ? "file" : S_ISDIR(m) ? "dir" : S_ISLNK(m) ? "symlink" : "other";
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    char cwd[4096], buf[8192], link[256];
    if (chdir(argv[1]) != 0 || getcwd(cwd, sizeof cwd) == NULL)
        return 3;
    printf("getcwd is the directory: %s\n", strcmp(cwd, argv[1]) == 0 ? "yes" : cwd);

    int dfd = open(".", O_RDONLY | O_DIRECTORY);
    int fd = openat(dfd, "data.bin", O_RDONLY | O_CLOEXEC);
    struct stat st;
    fstat(fd, &st);
    printf("fstat data.bin: %s size %lld mode %o\n", kind(st.st_mode), (long long)st.st_size,
           st.st_mode & 07777);
    ssize_t n = read(fd, buf, 100);
    printf("read 100: %zd sum %lu\n", n, sum((unsigned char *)buf, n));
    n = pread(fd, buf, 300, 5000);
    printf("pread 300 at 5000: %zd sum %lu, offset still %lld\n", n,
           sum((unsigned char *)buf, n), (long long)lseek(fd, 0, SEEK_CUR));
    printf("pread at the end: %zd\n", pread(fd, buf, 10, st.st_size));
    printf("lseek SEEK_END -10: %lld\n", (long long)lseek(fd, -10, SEEK_END));

    struct stat l1, l2;
    int r;
    fstatat(dfd, "link", &l1, AT_SYMLINK_NOFOLLOW);
    fstatat(AT_FDCWD, "link", &l2, 0);
    printf("newfstatat link: nofollow %s, follow %s size %lld\n", kind(l1.st_mode),
           kind(l2.st_mode), (long long)l2.st_size);
    r = stat("missing", &l1);
    printf("stat missing: %d %s\n", r, strerror(errno));

    struct statx sx;
    r = statx(dfd, "data.bin", 0, STATX_BASIC_STATS, &sx);
    printf("statx: %d size %llu %s basic %s\n", r, (unsigned long long)sx.stx_size,
           kind(sx.stx_mode),
           (sx.stx_mask & STATX_BASIC_STATS) == STATX_BASIC_STATS ? "yes" : "no");
    errno = 0;
    r = statx(AT_FDCWD, "", AT_EMPTY_PATH, STATX_SIZE, &sx);
    printf("statx AT_EMPTY_PATH on the cwd: %d %s\n", r, kind(sx.stx_mode));

    printf("access data.bin R_OK: %d\n", access("data.bin", R_OK));
    r = access("missing", F_OK);
    printf("access missing F_OK: %d %s\n", r, strerror(errno));
    printf("faccessat sub X_OK: %d\n", faccessat(dfd, "sub", X_OK, 0));

    n = readlink("link", link, sizeof link - 1);
    link[n > 0 ? n : 0] = 0;
    printf("readlink link: %zd \"%s\"\n", n, link);
    n = readlink("data.bin", link, sizeof link);
    printf("readlink data.bin: %zd %s\n", n, strerror(errno));

    DIR *d = opendir(".");
    char *names[64];
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && count < 64)
        names[count++] = strdup(e->d_name);
    closedir(d);
    qsort(names, count, sizeof names[0], cmp);
    printf("getdents64:");
    for (int i = 0; i < count; i++)
        printf(" %s", names[i]);
    printf("\n");

    printf("fcntl F_GETFD: %d\n", fcntl(fd, F_GETFD));
    int fd2 = fcntl(fd, F_DUPFD, 20);
    printf("fcntl F_DUPFD 20: %s, F_GETFD %d\n", fd2 >= 20 ? ">= 20" : "wrong",
           fcntl(fd2, F_GETFD));
    fcntl(fd2, F_SETFD, FD_CLOEXEC);
    printf("after F_SETFD: %d\n", fcntl(fd2, F_GETFD));
    int fd3 = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    printf("F_DUPFD_CLOEXEC: %d, F_GETFL accmode %d\n", fcntl(fd3, F_GETFD),
           fcntl(fd3, F_GETFL) & O_ACCMODE);
    close(fd2);
    close(fd3);
    r = fcntl(fd2, F_GETFD);
    printf("fcntl on a closed fd: %d %s\n", r, strerror(errno));

    /* private mapping at an offset: copy-on-write, the file is unchanged */
    unsigned char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 4096);
    if (p == MAP_FAILED)
        return 4;
    n = pread(fd, buf, 8192, 4096);
    printf("MAP_PRIVATE at 4096: %zd bytes same as pread: %s\n", n,
           memcmp(p, buf, n) == 0 ? "yes" : "no");
    p[0] ^= 0xff;
    pread(fd, buf, 1, 4096);
    printf("after writing the private copy, file byte unchanged: %s\n",
           (unsigned char)buf[0] != p[0] ? "yes" : "no");
    munmap(p, 8192);

    /* shared read-only mapping at an offset, past the end of the file is zero-filled */
    const unsigned char *q = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 8192);
    if (q == MAP_FAILED)
        return 5;
    size_t tail = (size_t)st.st_size - 8192;
    pread(fd, buf, tail, 8192);
    int zero = 1;
    for (size_t i = tail; i < 4096; i++)
        zero &= q[i] == 0;
    printf("MAP_SHARED PROT_READ at 8192: %zu file bytes match: %s, rest zero: %s\n", tail,
           memcmp(q, buf, tail) == 0 ? "yes" : "no", zero ? "yes" : "no");
    void *bad = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 100);
    printf("mmap at an unaligned offset: %s %s\n", bad == MAP_FAILED ? "fails" : "maps",
           strerror(errno));
    munmap((void *)q, 4096);

    /* a shared mapping sees a later write() to the file through another descriptor */
    int wfd = openat(dfd, "new.txt", O_RDWR | O_CREAT | O_EXCL, 0644);
    printf("openat new.txt O_CREAT|O_EXCL: %s\n", wfd >= 0 ? "ok" : strerror(errno));
    if (wfd >= 0) {
        write(wfd, "first version\n", 14);
        const char *m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, wfd, 0);
        pwrite(wfd, "SECOND", 6, 0);
        printf("MAP_SHARED sees a later pwrite: %.13s\n", m);
        fsync(wfd);
        close(wfd);
        munmap((void *)m, 4096);
        r = openat(dfd, "new.txt", O_CREAT | O_EXCL | O_WRONLY, 0644);
        printf("O_EXCL again: %d %s\n", r, strerror(errno));
        printf("unlink: %d\n", unlinkat(dfd, "new.txt", 0));
    }
    close(fd);
    close(dfd);
    return 0;
}
