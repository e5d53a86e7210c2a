/* Hostile guest, second round (issue 13): the 48 escapes the issue measured and others
   like them. Run as root under
     shstk run --sysroot ROOT --rw ROOT/rw --rw ROOT/rw/sub /bin/attacks [ONLY]
   with stdin a file outside --rw. Each row prints "label got want" (errno numbers, 0 for
   success); a row whose call succeeded goes on to write/alter through what it got, so a
   wrong success shows up as a changed canary outside --rw. With ONLY, one row runs
   (to tell which row changed what). Guest paths: /out (outside), /rw (writable),
   /out/li -> /rw/f, /out/lrw -> /rw, /rw/lo -> /out/c, /rw/ldn -> /dev/null. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif
#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE 1
#define RENAME_EXCHANGE 2
#define RENAME_WHITEOUT 4
#endif

static const char *only;
static int failures;

static int want_row(const char *label) { return !only || strcmp(only, label) == 0; }

static long row(const char *label, long rc, int want) {
    int got = rc < 0 ? errno : 0;
    printf("%s %d %d\n", label, got, want);
    fflush(stdout);
    if (got != want)
        failures++;
    return rc;
}
#define R(label, want, expr) \
    do { if (want_row(label)) { errno = 0; long rc_ = (long)(expr); \
         row(label, rc_, want); } } while (0)
/* a row whose result is a descriptor: on success, write through it */
#define RW(label, want, expr) \
    do { if (want_row(label)) { errno = 0; long fd_ = (long)(expr); row(label, fd_, want); \
         if (fd_ >= 0) { (void)!write((int)fd_, "PWNED\n", 6); \
                         (void)!ftruncate((int)fd_, 1); \
                         fchmod((int)fd_, 0777); close((int)fd_); } } } while (0)

static void poke(const char *path) {  /* after a link that should not exist */
    int fd = open(path, O_WRONLY);
    if (fd >= 0) {
        (void)!write(fd, "PWNED\n", 6);
        fchmod(fd, 0777);
        close(fd);
    }
    chmod(path, 0777);
}

static int sock_bind(const char *path) {
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strncpy(a.sun_path, path, sizeof a.sun_path - 1);
    int rc = bind(s, (struct sockaddr *)&a, sizeof a);
    int e = errno;
    close(s);
    errno = e;
    return rc;
}

static int O_PATHfd(const char *p) { return open(p, O_PATH); }

static void on_alarm(int sig) { (void)sig; }

int main(int argc, char **argv) {
    only = argc > 1 ? argv[1] : NULL;
    struct timespec ts[2] = {{1, 0}, {1, 0}};
    char name[64], path[8192];
    int out_fd = open("/out/c", O_RDONLY);      /* an outside file, opened for reading */
    int outdir = open("/out", O_RDONLY | O_DIRECTORY);
    int rwdir = open("/rw", O_RDONLY | O_DIRECTORY);

    /* --- link a host file into --rw, then write through the link (issue: 1st item) */
    R("link-out-rw", EXDEV, link("/out/c", "/rw/l1")); poke("/rw/l1");
    R("link-dd-rw", EXDEV, link("/rw/../out/c", "/rw/l1b")); poke("/rw/l1b");
    R("linkat-lo-follow", EXDEV,
      linkat(AT_FDCWD, "/rw/lo", AT_FDCWD, "/rw/l2", AT_SYMLINK_FOLLOW)); poke("/rw/l2");
    R("linkat-emptypath", EXDEV, linkat(out_fd, "", AT_FDCWD, "/rw/l3", AT_EMPTY_PATH));
    poke("/rw/l3");
    snprintf(name, sizeof name, "/proc/self/fd/%d", out_fd);
    R("linkat-procfd", EXDEV, linkat(AT_FDCWD, name, AT_FDCWD, "/rw/l4", AT_SYMLINK_FOLLOW));
    poke("/rw/l4");
    R("linkat-stdin", EXDEV,
      linkat(AT_FDCWD, "/proc/self/fd/0", AT_FDCWD, "/rw/l5", AT_SYMLINK_FOLLOW));
    poke("/rw/l5");
    R("link-sysroot-bin", EXDEV, link("/bin/attacks", "/rw/l6")); poke("/rw/l6");
    R("link-dev-null", EXDEV, link("/dev/null", "/rw/l7")); poke("/rw/l7");
    R("link-rw-out", EROFS, link("/rw/f", "/out/l8"));

    /* --- the sysroot's dev/null, dev/zero, dev/tty (canary files in ROOT/dev) */
    static const char *devs[] = {"/dev/null", "/dev/zero", "/dev/tty"};
    for (int i = 0; i < 3; i++) {
        const char *d = devs[i];
        char l[64];
#define DL(what) (snprintf(l, sizeof l, "%s-%s", what, d + 5), l)
        R(DL("unlink"), EROFS, unlink(d));
        R(DL("rename"), EROFS, rename(d, "/dev/moved"));
        R(DL("rename-rw"), EXDEV, rename(d, "/rw/moved"));
        R(DL("symlink-over"), EEXIST, symlink("/rw/f", d));
        R(DL("chmod"), EROFS, chmod(d, 0777));
        R(DL("chown"), EROFS, chown(d, 1, 1));
        R(DL("lchown"), EROFS, lchown(d, 1, 1));
        R(DL("utimensat"), EROFS, utimensat(AT_FDCWD, d, ts, 0));
        R(DL("truncate"), EINVAL, truncate(d, 0));
        R(DL("mknod-over"), EEXIST, mknod(d, S_IFIFO | 0666, 0));
        if (i < 2 && (!only || strstr(only, d + 5))) {  /* the rows of this device */
            int fd = open(d, O_RDWR | O_TRUNC);
            R(DL("open-write"), 0, fd >= 0 ? write(fd, "PWNED\n", 6) - 6 : -1);
            R(DL("fchmod"), EROFS, fchmod(fd, 0777));
            R(DL("fchown"), EROFS, fchown(fd, 1, 1));
            R(DL("futimens"), EROFS, futimens(fd, ts));
            R(DL("ftruncate"), EINVAL, ftruncate(fd, 0));
            close(fd);
            int pfd = O_PATHfd(d);
            R(DL("fchmodat-empty"), EROFS, syscall(SYS_fchmodat2, pfd, "", 0777, AT_EMPTY_PATH));
            R(DL("fchownat-empty"), EROFS, fchownat(pfd, "", 1, 1, AT_EMPTY_PATH));
            close(pfd);
        }
    }
    R("devdir-creat", EROFS, open("/dev/new", O_CREAT | O_WRONLY, 0644));
    R("devdir-mkdir", EROFS, mkdir("/dev/newdir", 0755));
    R("devdir-mkfifo", EROFS, mknod("/dev/newfifo", S_IFIFO | 0644, 0));
    R("devdir-symlink", EROFS, symlink("/rw/f", "/dev/newlink"));
    R("devdir-bind", EROFS, sock_bind("/dev/newsock"));
    R("devdir-chmod", EROFS, chmod("/dev", 0777));
    RW("rw-symlink-devnull", 0, open("/rw/ldn", O_WRONLY | O_TRUNC));
    R("rw-symlink-devnull-chmod", EROFS, chmod("/rw/ldn", 0777));
    R("devnull-via-dotdot", EROFS, chmod("/rw/../dev/null", 0777));
    R("devnull-via-procroot", EROFS, chmod("/proc/self/root/dev/null", 0777));
    R("dev-stdin-fchmod", EROFS, chmod("/dev/stdin", 0777));
    R("devshm-rmdir", EROFS, rmdir("/dev/shm"));

    /* --- stdin: a host file outside --rw */
    R("fchmod-0", EROFS, fchmod(0, 0777));
    R("fchown-0", EROFS, fchown(0, 1, 1));
    R("futimens-0", EROFS, futimens(0, ts));
    R("utimensat-null-0", EROFS, syscall(SYS_utimensat, 0, NULL, ts, 0));
    R("ftruncate-0", EINVAL, ftruncate(0, 0));
    R("fchmodat-empty-0", EROFS, syscall(SYS_fchmodat2, 0, "", 0777, AT_EMPTY_PATH));
    R("fchownat-empty-0", EROFS, fchownat(0, "", 1, 1, AT_EMPTY_PATH));
    R("chmod-procfd-0", EROFS, chmod("/proc/self/fd/0", 0777));
    R("truncate-procfd-0", EROFS, truncate("/proc/self/fd/0", 0));
    RW("open-procfd-0-wr", EROFS, open("/proc/self/fd/0", O_WRONLY));
    R("write-0", EBADF, write(0, "PWNED\n", 6));

    /* --- an outside file's descriptor */
    R("fchmod-outfd", EROFS, fchmod(out_fd, 0777));
    R("fchown-outfd", EROFS, fchown(out_fd, 1, 1));
    R("futimens-outfd", EROFS, futimens(out_fd, ts));
    R("utimensat-null-outfd", EROFS, syscall(SYS_utimensat, out_fd, NULL, ts, 0));
    R("ftruncate-outfd", EINVAL, ftruncate(out_fd, 0));
    R("write-outfd", EBADF, write(out_fd, "PWNED\n", 6));
    R("pwrite-outfd", EBADF, pwrite(out_fd, "PWNED\n", 6, 0));
    {
        int pfd = O_PATHfd("/out/c");
        R("fchmod-opath", EBADF, fchmod(pfd, 0777));
        R("fchown-opath", EBADF, fchown(pfd, 1, 1));
        R("fchmodat-empty-opath", EROFS, syscall(SYS_fchmodat2, pfd, "", 0777, AT_EMPTY_PATH));
        R("utimensat-empty-opath", EROFS, utimensat(pfd, "", ts, AT_EMPTY_PATH));
        close(pfd);
    }
    snprintf(name, sizeof name, "/proc/self/fd/%d", out_fd);
    R("truncate-procfd-out", EROFS, truncate(name, 0));
    RW("open-procfd-out-wr", EROFS, open(name, O_WRONLY));
    R("chmod-procfd-out", EROFS, chmod(name, 0777));
    {
        void *m = MAP_FAILED;
        R("mmap-shared-out", EACCES, ({
            m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, out_fd, 0);
            m == MAP_FAILED ? -1 : 0; }));
        if (m != MAP_FAILED)
            memcpy(m, "PWNED", 5), msync(m, 4096, MS_SYNC);
        m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, out_fd, 0);
        R("mprotect-shared-out", EACCES, mprotect(m, 4096, PROT_READ | PROT_WRITE));
        if (m != MAP_FAILED)
            munmap(m, 4096);
    }
    {
        int in = open("/rw/f", O_RDONLY);
        off_t off = 0;
        R("copy_file_range-into-ro", EBADF, copy_file_range(in, NULL, out_fd, NULL, 4, 0));
        R("sendfile-into-ro", EBADF, sendfile(out_fd, in, &off, 4));
        close(in);
    }

    /* --- symlinks outside --rw that point into it */
    R("unlink-out-li", EROFS, unlink("/out/li"));
    R("unlink-out-lrw", EROFS, unlink("/out/lrw"));
    R("rename-out-li", EROFS, rename("/out/li", "/out/li2"));
    R("rename-out-lrw-rw", EXDEV, rename("/out/lrw", "/rw/x"));
    R("rmdir-out-lrw-slash", EROFS, rmdir("/out/lrw/"));
    R("lchown-out-li", EROFS, lchown("/out/li", 1, 1));
    R("utimensat-nofollow-out-li", EROFS,
      utimensat(AT_FDCWD, "/out/li", ts, AT_SYMLINK_NOFOLLOW));

    /* --- the --rw root */
    R("rmdir-rwroot", EROFS, rmdir("/rw"));
    R("rmdir-rwroot-slash", EROFS, rmdir("/rw/"));
    R("rmdir-rwroot-via-lrw", EINVAL, rmdir("/out/lrw/."));
    R("unlinkat-rwroot", EROFS, unlinkat(AT_FDCWD, "/rw", AT_REMOVEDIR));
    R("unlinkat-rwfd-dot", EINVAL, unlinkat(rwdir, ".", AT_REMOVEDIR));
    R("unlinkat-rwfd-dotdot", ENOTEMPTY, unlinkat(rwdir, "..", AT_REMOVEDIR));
    R("rename-rwroot", EROFS, rename("/rw", "/rw2"));
    R("rename-over-rwroot", EROFS, rename("/out/d", "/rw"));
    R("rename-rwsub", EBUSY, rename("/rw/sub", "/rw/sub2"));
    R("rmdir-rwsub", EBUSY, rmdir("/rw/sub"));
    R("rename-over-rwsub", EBUSY, rename("/rw/emptydir", "/rw/sub"));
    R("chdir-rwsub", 0, chdir("/rw/sub"));
    R("rmdir-dot", EINVAL, rmdir("."));
    R("rmdir-proc-cwd", ENOTDIR, rmdir("/proc/self/cwd"));
    R("rmdir-proc-cwd-slash", ENOTDIR, rmdir("/proc/self/cwd/"));
    R("rmdir-dotdot-abs", ENOTEMPTY, rmdir("/rw/sub/.."));
    R("chdir-back", 0, chdir("/"));
    R("renameat2-exchange-rwroot", EBUSY,
      renameat2(AT_FDCWD, "/rw/sub", AT_FDCWD, "/rw/f", RENAME_EXCHANGE));

    /* --- more like them */
    snprintf(name, sizeof name, "/proc/self/fd/%d/new", outdir);
    R("creat-excl-via-procfd-dir", EROFS, open(name, O_CREAT | O_EXCL | O_WRONLY, 0644));
    R("creat-excl-via-dirfd", EROFS, openat(outdir, "new", O_CREAT | O_EXCL | O_WRONLY, 0644));
    R("otmpfile-out", EROFS, open("/out", O_TMPFILE | O_WRONLY, 0600));
    R("renameat2-exchange-out-rw", EXDEV,
      renameat2(AT_FDCWD, "/out/c", AT_FDCWD, "/rw/f", RENAME_EXCHANGE));
    R("renameat2-exchange-out-out", EROFS,
      renameat2(AT_FDCWD, "/out/c", AT_FDCWD, "/out/li", RENAME_EXCHANGE));
    R("renameat2-whiteout-out", EROFS,
      renameat2(AT_FDCWD, "/out/c", AT_FDCWD, "/out/w", RENAME_WHITEOUT));
    R("renameat2-noreplace-out", EROFS,
      renameat2(AT_FDCWD, "/out/c", AT_FDCWD, "/out/w", RENAME_NOREPLACE));
    R("mknod-chr-out", EROFS, mknod("/out/n", S_IFCHR | 0666, makedev(1, 3)));
    R("mknod-chr-rw", EPERM, mknod("/rw/n", S_IFCHR | 0666, makedev(8, 0)));
    R("mknod-blk-rw", EPERM, mknod("/rw/nb", S_IFBLK | 0666, makedev(8, 0)));
    R("bind-out", EROFS, sock_bind("/out/sock"));
    R("bind-dotdot", EROFS, sock_bind("/rw/../out/sock"));
    R("bind-rw-dangling-to-out", EADDRINUSE, sock_bind("/rw/dangle"));
    R("creat-rw-dangling-to-out", EROFS, open("/rw/dangle", O_CREAT | O_WRONLY, 0644));
    {   /* a directory fd opened before its directory was renamed */
        mkdir("/rw/a", 0755);
        int a = open("/rw/a", O_RDONLY | O_DIRECTORY);
        rename("/rw/a", "/rw/b");
        symlink("/out", "/rw/a");
        R("dirfd-renamed-write", ENOENT, openat(a, "c", O_WRONLY));
        R("dirfd-renamed-creat", 0, openat(a, "made", O_CREAT | O_WRONLY, 0644));
        R("dirfd-renamed-where", 0, access("/rw/b/made", F_OK));
        R("dirfd-renamed-fchdir", 0, fchdir(a));
        R("dirfd-renamed-cwd-creat", 0, open("made2", O_CREAT | O_WRONLY, 0644));
        R("dirfd-renamed-where2", 0, access("/rw/b/made2", F_OK));
        R("chdir-back2", 0, chdir("/"));
        close(a);
    }
    R("fchdir-out", 0, fchdir(outdir));
    RW("fchdir-out-write", EROFS, open("c", O_WRONLY));
    R("fchdir-out-creat", EROFS, open("x", O_CREAT | O_WRONLY, 0644));
    R("fchdir-out-unlink", EROFS, unlink("c"));
    R("fchdir-out-dotdot-rw", 0, access("../rw/f", W_OK));
    R("chdir-back3", 0, chdir("/rw"));
    RW("rel-dotdot-out", EROFS, open("../out/c", O_WRONLY));
    RW("rel-many-dotdot-out", EROFS, open("../../../../out/c", O_WRONLY));
    RW("proc-cwd-dotdot", EROFS, open("/proc/self/cwd/../out/c", O_WRONLY));
    RW("proc-root-out", EROFS, open("/proc/self/root/out/c", O_WRONLY));
    RW("proc-root-root-out", EROFS, open("/proc/self/root/proc/self/root/../out/c", O_WRONLY));
    RW("abs-dotdot-root", EROFS, open("/../../out/c", O_WRONLY));
    R("chdir-back4", 0, chdir("/"));
    symlink("/rw/loop", "/rw/loop");
    R("symlink-loop", ELOOP, open("/rw/loop", O_RDONLY));
    for (int i = 0; i <= 40; i++) {
        char a[32], b[32];
        snprintf(a, sizeof a, "/rw/s%d", i);
        snprintf(b, sizeof b, i == 40 ? "/rw/f" : "/rw/s%d", i + 1);
        symlink(b, a);
    }
    R("symlinks-40", 0, close(open("/rw/s1", O_RDONLY)));
    R("symlinks-41", ELOOP, open("/rw/s0", O_RDONLY));
    memset(path, 'a', sizeof path);
    path[0] = '/';
    path[4096] = 0;
    R("path-4096", ENAMETOOLONG, open(path, O_RDONLY));
    memcpy(path, "/rw/", 4);
    path[4 + 256] = 0;
    R("component-256", ENAMETOOLONG, open(path, O_CREAT | O_WRONLY, 0644));
    R("utimensat-null-path-dirfd", EROFS, syscall(SYS_utimensat, outdir, NULL, ts, 0));
    R("chmod-via-rwsub-link", EROFS, chmod("/rw/sub/up", 0777));
    R("chmod-outdir-via-lrw-dotdot", EROFS, chmod("/out/lrw/../out", 0777));
    R("truncate-via-sub-dotdot", EROFS, truncate("/rw/sub/../../out/c", 0));
    R("fifo-rdwr", 0, ({ mkfifo("/rw/fifo", 0644); int f = open("/rw/fifo", O_RDWR);
                        f >= 0 ? close(f) : -1; }));
    R("fifo-out-rdwr", 0, ({ int f = open("/out/fifo", O_RDWR | O_NONBLOCK);
                            if (f >= 0) (void)!write(f, "x", 1); f >= 0 ? close(f) : -1; }));
    {   /* a FIFO open interrupted by a signal leaves no phantom reader */
        struct sigaction sa = {.sa_handler = on_alarm};
        sigaction(SIGALRM, &sa, NULL);
        mkfifo("/rw/fifo2", 0644);
        alarm(1);
        R("fifo-open-eintr", EINTR, open("/rw/fifo2", O_RDONLY));
        R("fifo-no-phantom-reader", ENXIO, open("/rw/fifo2", O_WRONLY | O_NONBLOCK));
    }
    {   /* /dev/shm: a sticky, world-writable tmpfs with a size cap */
        struct stat sb;
        stat("/dev/shm", &sb);
        R("devshm-mode-1777", 0, (sb.st_mode & 07777) == 01777 ? 0 : (errno = EPERM, -1));
        int f = open("/dev/shm/big", O_CREAT | O_WRONLY, 0600);
        static char chunk[1 << 20];
        R("devshm-cap", ENOSPC, ({ long rc = 0;
            for (int i = 0; i < 80 && rc >= 0; i++)
                rc = write(f, chunk, sizeof chunk);
            rc; }));
        close(f);
        unlink("/dev/shm/big");
    }
    printf("failures %d\n", failures);
    return 0;
}
