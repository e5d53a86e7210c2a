/* System calls with hostile arguments, through syscall(2): the return value and errno
 * name of each, one line per call. Run natively and under `shstk run`, the lines must be
 * the same. argv[1]: a temporary directory this program may write in (and chown in). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

static void show(const char *what, long r) {
    if (r == -1)
        printf("%-44s = -1 %s\n", what, strerrorname_np(errno));
    else
        printf("%-44s = %ld\n", what, r);
}

#define CALL(what, ...) (errno = 0, show(what, syscall(__VA_ARGS__)))

static const long NEG2 = 0xfffffffe;             /* (uid_t)-2: a valid id, not "unchanged" */
static const long HI = 0x100000000L;             /* bits above an int's 32 */
static const long BIG_OFF = (long)(1UL << 63);   /* loff_t below zero */

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    char file[4096], other[4096], link[4096];
    snprintf(file, sizeof file, "%s/file", argv[1]);
    snprintf(other, sizeof other, "%s/other", argv[1]);
    snprintf(link, sizeof link, "%s/link", argv[1]);
    int fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0644);
    int out = open(other, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || out < 0 || write(fd, "0123456789abcdef", 16) != 16 || symlink("file", link))
        return 3;
    lseek(fd, 0, SEEK_SET);
    struct stat sb;

    /* owners: uid_t is 32 bits, (uid_t)-1 leaves it, (uid_t)-2 is an ordinary id */
    CALL("chown(file, -2, -1)", SYS_chown, file, NEG2, -1L);
    stat(file, &sb);
    printf("  owner %u:%u\n", sb.st_uid, sb.st_gid);
    CALL("chown(file, 1<<32, 1<<32 | 7)", SYS_chown, file, HI, HI | 7);
    stat(file, &sb);
    printf("  owner %u:%u\n", sb.st_uid, sb.st_gid);
    CALL("chown(file, -1, -1)", SYS_chown, file, -1L, -1L);
    CALL("chown(missing, 0, 0)", SYS_chown, "/nonexistent-shstk/x", 0L, 0L);
    CALL("lchown(link, -2, -2)", SYS_lchown, link, NEG2, NEG2);
    lstat(link, &sb);
    printf("  link owner %u:%u\n", sb.st_uid, sb.st_gid);
    CALL("fchown(fd, -2, 64-bit -2)", SYS_fchown, fd, NEG2, -2L);
    fstat(fd, &sb);
    printf("  owner %u:%u\n", sb.st_uid, sb.st_gid);
    CALL("fchown(-1, 0, 0)", SYS_fchown, -1L, 0L, 0L);
    CALL("fchown(1<<32 | fd, 0, 0)", SYS_fchown, HI | fd, 0L, 0L);
    CALL("fchownat(AT_FDCWD, file, -2, -3, 0)", SYS_fchownat, (long)AT_FDCWD, file, NEG2,
         0xfffffffdL, 0L);
    stat(file, &sb);
    printf("  owner %u:%u\n", sb.st_uid, sb.st_gid);
    CALL("fchownat(AT_FDCWD, file, 0, 0, 0x1)", SYS_fchownat, (long)AT_FDCWD, file, 0L, 0L, 1L);
    CALL("fchownat(AT_FDCWD, file, 0, 0, 0)", SYS_fchownat, (long)AT_FDCWD, file, 0L, 0L, 0L);

    /* utimes takes struct timeval[2] */
    struct timeval tv[2] = {{1000, 5}, {2000, 999999}};
    CALL("utimes(file, {1000.000005, 2000.999999})", SYS_utimes, file, tv);
    stat(file, &sb);
    printf("  atime %ld.%09ld mtime %ld.%09ld\n", (long)sb.st_atim.tv_sec, sb.st_atim.tv_nsec,
           (long)sb.st_mtim.tv_sec, sb.st_mtim.tv_nsec);
    tv[1].tv_usec = 1000000;
    CALL("utimes(file, usec 1000000)", SYS_utimes, file, tv);
    tv[1].tv_usec = -1;
    CALL("utimes(file, usec -1)", SYS_utimes, file, tv);
    CALL("utimes(file, (void *)8)", SYS_utimes, file, (void *)8);
    CALL("utimes(missing, NULL)", SYS_utimes, "/nonexistent-shstk/x", NULL);
    struct timespec ts[2] = {{1, 1000000000}, {2, 0}};
    CALL("utimensat(file, nsec 1e9)", SYS_utimensat, (long)AT_FDCWD, file, ts, 0L);

    /* positioned, vectored I/O: preadv2/pwritev2 take (fd, iov, cnt, pos_l, pos_h, flags) */
    char buf[8];
    struct iovec iov = {buf, 4};
    lseek(fd, 2, SEEK_SET);
    CALL("preadv2(fd, 4 bytes, pos -1, 0)", SYS_preadv2, fd, &iov, 1L, -1L, 0L, 0L);
    printf("  read \"%.4s\", position %ld\n", buf, (long)lseek(fd, 0, SEEK_CUR));
    CALL("preadv2(fd, 4 bytes, pos 10, 0)", SYS_preadv2, fd, &iov, 1L, 10L, 0L, 0L);
    printf("  read \"%.4s\"\n", buf);
    CALL("preadv2(fd, pos -2)", SYS_preadv2, fd, &iov, 1L, -2L, 0L, 0L);
    CALL("preadv2(fd, pos 1<<63)", SYS_preadv2, fd, &iov, 1L, BIG_OFF, 0L, 0L);
    CALL("preadv2(fd, flags 0x10000)", SYS_preadv2, fd, &iov, 1L, 0L, 0L, 0x10000L);
    CALL("preadv2(fd, 0 vectors, flags 0x10000)", SYS_preadv2, fd, &iov, 0L, 0L, 0L, 0x10000L);
    CALL("preadv2(fd, RWF_APPEND|RWF_NOAPPEND)", SYS_preadv2, fd, &iov, 1L, 0L, 0L, 0x30L);
    CALL("preadv2(-1, pos 0)", SYS_preadv2, -1L, &iov, 1L, 0L, 0L, 0L);
    CALL("preadv2(fd, 1025 vectors)", SYS_preadv2, fd, &iov, 1025L, 0L, 0L, 0L);
    CALL("preadv2(fd, 1<<32 | 1 vectors)", SYS_preadv2, fd, &iov, HI | 1, 0L, 0L, 0L);
    memcpy(buf, "WXYZ", 4);
    CALL("pwritev2(fd, 4 bytes, pos 12, 0)", SYS_pwritev2, fd, &iov, 1L, 12L, 0L, 0L);
    CALL("pwritev2(fd, pos -1, 0)", SYS_pwritev2, fd, &iov, 1L, -1L, 0L, 0L);
    printf("  position %ld\n", (long)lseek(fd, 0, SEEK_CUR));
    CALL("pwritev2(fd, pos 1<<63)", SYS_pwritev2, fd, &iov, 1L, BIG_OFF, 0L, 0L);
    CALL("pwritev2(fd, flags 0x40000000)", SYS_pwritev2, fd, &iov, 1L, 0L, 0L, 0x40000000L);
    CALL("preadv(fd, pos 1<<63)", SYS_preadv, fd, &iov, 1L, BIG_OFF, 0L);
    CALL("preadv(-1, pos 1<<63)", SYS_preadv, -1L, &iov, 1L, BIG_OFF, 0L);
    CALL("pwritev(fd, pos -1)", SYS_pwritev, fd, &iov, 1L, -1L, 0L);
    CALL("preadv(fd, pos 0, pos_h 5)", SYS_preadv, fd, &iov, 1L, 0L, 5L);
    printf("  read \"%.4s\"\n", buf);

    /* loff_t by pointer */
    long off = BIG_OFF;
    CALL("sendfile(out, fd, &(1<<63), 4)", SYS_sendfile, out, fd, &off, 4L);
    off = -1;
    CALL("sendfile(out, fd, &-1, 4)", SYS_sendfile, out, fd, &off, 4L);
    off = 1;
    CALL("sendfile(out, fd, &1, 4)", SYS_sendfile, out, fd, &off, 4L);
    printf("  offset now %ld\n", off);
    CALL("sendfile(out, -1, &1, 4)", SYS_sendfile, out, -1L, &off, 4L);
    off = BIG_OFF;
    CALL("copy_file_range(fd, &(1<<63), out, 0, 4)", SYS_copy_file_range, fd, &off, out, NULL,
         4L, 0L);
    CALL("copy_file_range(fd, 0, out, &(1<<63), 4)", SYS_copy_file_range, fd, NULL, out, &off,
         4L, 0L);
    CALL("copy_file_range(fd, 0, out, 0, 4, 1)", SYS_copy_file_range, fd, NULL, out, NULL, 4L,
         1L);

    /* resource numbers are unsigned ints */
    struct rlimit rl;
    CALL("getrlimit(-1)", SYS_getrlimit, -1L, &rl);
    CALL("getrlimit(100)", SYS_getrlimit, 100L, &rl);
    CALL("getrlimit(1<<32 | RLIMIT_NOFILE)", SYS_getrlimit, HI | RLIMIT_NOFILE, &rl);
    CALL("prlimit64(0, -1, NULL, &old)", SYS_prlimit64, 0L, -1L, NULL, &rl);
    CALL("prlimit64(0, 1<<32 | RLIMIT_CORE, NULL, &old)", SYS_prlimit64, 0L, HI | RLIMIT_CORE,
         NULL, &rl);
    CALL("setrlimit(-1, &rl)", SYS_setrlimit, -1L, &rl);

    /* credentials: (uid_t)-1 leaves an id; only the privileged may pick new ones */
    uid_t r, e, s;
    CALL("setuid(-1)", SYS_setuid, -1L);
    CALL("setgid(-1)", SYS_setgid, -1L);
    CALL("setresuid(-1, -1, -1)", SYS_setresuid, -1L, -1L, -1L);
    CALL("setresgid(-1, -1, -1)", SYS_setresgid, -1L, -1L, -1L);
    CALL("setresgid(-1, 1<<32 | 1000, -1)", SYS_setresgid, -1L, HI | 1000, -1L);
    getresgid(&r, &e, &s);
    printf("  gids %u %u %u\n", r, e, s);
    CALL("setresgid(0, 0, 0)", SYS_setresgid, 0L, 0L, 0L);
    CALL("setresuid(-1, 1000, -1)", SYS_setresuid, -1L, 1000L, -1L);
    getresuid(&r, &e, &s);
    printf("  uids %u %u %u\n", r, e, s);
    CALL("setresuid(2000, -1, -1) unprivileged", SYS_setresuid, 2000L, -1L, -1L);
    CALL("setresgid(-1, 2000, -1) unprivileged", SYS_setresgid, -1L, 2000L, -1L);
    CALL("setresuid(1000, -1, -1) unprivileged", SYS_setresuid, 1000L, -1L, -1L);
    CALL("setuid(-1) unprivileged", SYS_setuid, -1L);
    CALL("setresuid(0, 0, 0) unprivileged", SYS_setresuid, 0L, 0L, 0L);
    CALL("setresuid(-1, 0, -1) unprivileged", SYS_setresuid, -1L, 0L, -1L);
    errno = 0;
    show("seteuid(0) (glibc)", seteuid(0));
    getresuid(&r, &e, &s);
    printf("  uids %u %u %u\n", r, e, s);
    CALL("setresuid(0, 0, 0)", SYS_setresuid, 0L, 0L, 0L);
    errno = 0;
    show("seteuid(1000) (glibc)", seteuid(1000));
    errno = 0;
    show("seteuid(0) (glibc)", seteuid(0));
    getresuid(&r, &e, &s);
    printf("  uids %u %u %u\n", r, e, s);

    /* socket calls on descriptors that are not sockets, and on a socketpair */
    struct sockaddr_un sa;
    socklen_t len = sizeof sa;
    int v;
    socklen_t vl = sizeof v;
    struct msghdr mh = {0};
    CALL("getpeername(-1)", SYS_getpeername, -1L, &sa, &len);
    CALL("getpeername(4000)", SYS_getpeername, 4000L, &sa, &len);
    CALL("getpeername(file)", SYS_getpeername, fd, &sa, &len);
    CALL("getsockname(file)", SYS_getsockname, fd, &sa, &len);
    CALL("bind(file)", SYS_bind, fd, &sa, (long)sizeof sa);
    CALL("listen(file, 1)", SYS_listen, fd, 1L);
    CALL("accept(file)", SYS_accept, fd, NULL, NULL);
    CALL("accept4(file, flags 0)", SYS_accept4, fd, NULL, NULL, 0L);
    CALL("accept4(file, flags 1)", SYS_accept4, fd, NULL, NULL, 1L);
    CALL("setsockopt(file)", SYS_setsockopt, fd, (long)SOL_SOCKET, (long)SO_REUSEADDR, &v,
         (long)sizeof v);
    CALL("getsockopt(file)", SYS_getsockopt, fd, (long)SOL_SOCKET, (long)SO_TYPE, &v, &vl);
    CALL("sendmsg(file)", SYS_sendmsg, fd, &mh, 0L);
    CALL("recvmsg(file)", SYS_recvmsg, fd, &mh, 0L);
    CALL("recvmsg(-1)", SYS_recvmsg, -1L, &mh, 0L);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
        return 4;
    len = sizeof sa;
    memset(&sa, 0x55, sizeof sa);
    CALL("getsockname(socketpair)", SYS_getsockname, sv[0], &sa, &len);
    printf("  len %u family %d\n", len, sa.sun_family);
    len = sizeof sa;
    CALL("getpeername(socketpair)", SYS_getpeername, sv[1], &sa, &len);
    printf("  len %u family %d\n", len, sa.sun_family);
    CALL("getsockname(socketpair, NULL len)", SYS_getsockname, sv[0], &sa, NULL);
    vl = sizeof v;
    CALL("getsockopt(socketpair, SO_TYPE)", SYS_getsockopt, sv[0], (long)SOL_SOCKET,
         (long)SO_TYPE, &v, &vl);
    printf("  value %d len %u\n", v, vl);
    vl = sizeof v;
    CALL("getsockopt(socketpair, SO_ERROR)", SYS_getsockopt, sv[0], (long)SOL_SOCKET,
         (long)SO_ERROR, &v, &vl);
    printf("  value %d len %u\n", v, vl);
    vl = sizeof v;
    CALL("getsockopt(socketpair, SO_DOMAIN)", SYS_getsockopt, sv[0], (long)SOL_SOCKET,
         (long)SO_DOMAIN, &v, &vl);
    printf("  value %d len %u\n", v, vl);
    vl = sizeof v;
    CALL("getsockopt(socketpair, SO_PROTOCOL)", SYS_getsockopt, sv[0], (long)SOL_SOCKET,
         (long)SO_PROTOCOL, &v, &vl);
    printf("  value %d len %u\n", v, vl);
    vl = -1;
    CALL("getsockopt(socketpair, len -1)", SYS_getsockopt, sv[0], (long)SOL_SOCKET,
         (long)SO_TYPE, &v, &vl);
    CALL("listen(socketpair, 1)", SYS_listen, sv[0], 1L);
    CALL("accept(socketpair)", SYS_accept, sv[0], NULL, NULL);
    return 0;
}
