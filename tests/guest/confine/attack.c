/* Every path-taking system call against every kind of path, as a hostile guest would.
   Run under `shstk run --sysroot ROOT --rw ROOT/rw --rw ROOT/rw/sub` with stdin a file
   outside --rw; prints "call label result" (result: 0/ok or the errno name number). The
   test compares results with what Linux gives on a read-only mount and checks that
   nothing outside --rw changed. Guest paths: /out (outside), /rw (writable). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif
#ifndef SYS_setxattrat
#define SYS_setxattrat 463
#define SYS_getxattrat 464
#define SYS_listxattrat 465
#define SYS_removexattrat 466
#endif
#include <unistd.h>

static void report(const char *call, const char *label, long rc) {
    if (rc < 0)
        printf("%s %s %d\n", call, label, errno);
    else
        printf("%s %s 0\n", call, label);
    fflush(stdout);
}
#define T(call, label, ...) report(#call, label, syscall(SYS_##call, __VA_ARGS__))
#define TO(call, label, ...) do { long r_ = syscall(SYS_##call, __VA_ARGS__); \
    report(#call, label, r_); if (r_ >= 0) close((int)r_); } while (0)

#define O "/out/c"            /* a canary outside --rw */
#define LO "/rw/lo"           /* symlink inside --rw -> /out/c */
#define LI "/out/li"          /* symlink outside --rw -> /rw/f */
#define DD "/rw/../out/c"     /* .. out of --rw */
#define DEV "/dev/null"       /* a device: the sysroot's dev/null is a canary file */

int main(void) {
    int rw = open("/rw", O_RDONLY | O_DIRECTORY);
    unsigned uid = getuid(), gid = getgid();
    struct stat sb;
    char buf[256];
    struct timespec ts[2] = {{1, 0}, {1, 0}};
    struct timeval tv[2] = {{1, 0}, {1, 0}};

    /* open / creat / openat */
    TO(open, "out-wr", O, O_WRONLY);
    TO(open, "out-trunc", O, O_RDONLY | O_TRUNC);
    TO(open, "out-creat", "/out/new", O_CREAT | O_WRONLY, 0644);
    TO(open, "lo-wr", LO, O_WRONLY);
    TO(open, "dotdot-wr", DD, O_WRONLY);
    TO(open, "procroot-wr", "/proc/self/root/out/c", O_WRONLY);
    TO(open, "dev-wr", DEV, O_WRONLY | O_TRUNC);
    TO(open, "devdir-creat", "/dev/new", O_CREAT | O_WRONLY, 0644);
    TO(open, "li-wr", LI, O_WRONLY);
    TO(open, "stdin-reopen-wr", "/proc/self/fd/0", O_WRONLY);
    TO(creat, "out", O, 0644);
    TO(creat, "lo", LO, 0644);
    TO(openat, "rwfd-dotdot-wr", rw, "../out/c", O_WRONLY);
    TO(openat, "rwfd-dotdot-creat", rw, "../out/n2", O_CREAT | O_WRONLY, 0644);
    /* truncate */
    T(truncate, "out", O, 0);
    T(truncate, "lo", LO, 0);
    T(truncate, "dev", DEV, 0);
    T(ftruncate, "stdin", 0, 0);
    /* mode */
    T(chmod, "out", O, 0777);
    T(chmod, "lo", LO, 0777);
    T(chmod, "dev", DEV, 0777);
    T(chmod, "outdir", "/out", 0777);
    T(fchmodat, "rwfd-dotdot", rw, "../out/c", 0777);
    T(fchmodat2, "lo-nofollow", AT_FDCWD, LO, 0777, AT_SYMLINK_NOFOLLOW);
    T(fchmodat2, "dotdot", AT_FDCWD, DD, 0777, 0);
    T(fchmod, "stdin", 0, 0777);
    /* owner */
    T(chown, "out", O, uid, gid);
    T(chown, "lo", LO, uid, gid);
    T(chown, "dev", DEV, uid, gid);
    T(lchown, "li", LI, uid, gid);
    T(fchownat, "rwfd-dotdot", rw, "../out/c", uid, gid, 0);
    T(fchownat, "li-nofollow", AT_FDCWD, LI, uid, gid, AT_SYMLINK_NOFOLLOW);
    T(fchown, "stdin", 0, uid, gid);
    /* times */
    T(utimes, "out", O, tv);
    T(utimes, "lo", LO, tv);
    T(utimes, "dev", DEV, tv);
    T(utimensat, "li-nofollow", AT_FDCWD, LI, ts, AT_SYMLINK_NOFOLLOW);
    T(utimensat, "rwfd-dotdot", rw, "../out/c", ts, 0);
    T(utimensat, "stdin-fd", 0, NULL, ts, 0);
    /* extended attributes: EROFS outside --rw, none to get inside or out */
    T(setxattr, "out", O, "user.x", "v", 1, 0);
    T(setxattr, "lo", LO, "user.x", "v", 1, 0);
    T(lsetxattr, "lo", LO, "user.x", "v", 1, 0);
    T(getxattr, "out", O, "user.x", NULL, 0);
    T(getxattr, "missing", "/out/nope", "user.x", NULL, 0);
    T(lgetxattr, "li", LI, "user.x", NULL, 0);
    T(listxattr, "out", O, NULL, 0);
    T(llistxattr, "lo", LO, NULL, 0);
    T(removexattr, "out", O, "user.x");
    T(lremovexattr, "lo", LO, "user.x");
    { long in_ = syscall(SYS_inotify_init1, 0);  /* a watch changes nothing */
      T(inotify_add_watch, "out", in_, O, 0xfff); close((int)in_); }
    { unsigned long long how[3] = {O_WRONLY, 0, 0};
      TO(openat2, "out-wr", AT_FDCWD, O, how, sizeof how);
      TO(openat2, "rwfd-dotdot-wr", rw, "../out/c", how, sizeof how);
      how[2] = 0x08;  /* RESOLVE_BENEATH */
      TO(openat2, "rwfd-dotdot-beneath", rw, "../out/c", how, sizeof how); }
    { unsigned long long xa[2] = {(unsigned long)"v", 1};  /* struct xattr_args */
      T(setxattrat, "rwfd-dotdot", rw, "../out/c", 0, "user.x", xa, sizeof xa);
      xa[0] = 0; xa[1] = 0;
      T(getxattrat, "out", AT_FDCWD, O, 0, "user.x", xa, sizeof xa);
      T(listxattrat, "out", AT_FDCWD, O, 0, NULL, 0);
      T(removexattrat, "rwfd-dotdot", rw, "../out/c", 0, "user.x"); }
    T(utime, "out", O, NULL);
    T(futimesat, "rwfd-dotdot", rw, "../out/c", NULL);
    /* names: unlink / rmdir */
    T(unlink, "out", O);
    T(unlink, "li", LI);
    T(unlink, "dev", DEV);
    T(unlinkat, "rwfd-dotdot", rw, "../out/c", 0);
    T(unlinkat, "rwroot-rmdir", AT_FDCWD, "/rw", AT_REMOVEDIR);
    T(rmdir, "rwroot", "/rw");
    T(rmdir, "nested-rwroot", "/rw/sub");
    T(rmdir, "outdir", "/out/d");
    if (chdir("/rw") == 0) {
        T(rmdir, "dot", ".");
        T(rmdir, "dotdot", "/rw/..");
    }
    /* rename */
    T(rename, "out-out", O, "/out/x");
    T(rename, "out-rw", O, "/rw/x");
    T(rename, "rw-out", "/rw/f", "/out/x");
    T(rename, "li-rw", LI, "/rw/y");
    T(rename, "rwroot", "/rw", "/rw2");
    T(rename, "nested-rwroot", "/rw/sub", "/rw/sub2");
    T(rename, "over-rwroot", "/rw/f", "/rw/sub");
    T(rename, "dev-rw", DEV, "/rw/n");
    T(renameat, "rwfd-dotdot", rw, "../out/c", rw, "x");
    T(renameat2, "rwfd-dotdot", rw, "../out/c", rw, "x", 0);
    /* link */
    T(link, "out-rw", O, "/rw/l");
    T(link, "rw-out", "/rw/f", "/out/l");
    T(link, "dev-rw", DEV, "/rw/dn");
    T(linkat, "lo-follow", AT_FDCWD, LO, AT_FDCWD, "/rw/l2", AT_SYMLINK_FOLLOW);
    T(linkat, "rwfd-dotdot", rw, "../out/c", rw, "l3", 0);
    T(linkat, "procfd", AT_FDCWD, "/proc/self/fd/0", AT_FDCWD, "/rw/l4", AT_SYMLINK_FOLLOW);
    /* create */
    T(symlink, "out", "x", "/out/s");
    T(symlink, "dev", "x", "/dev/s");
    T(symlinkat, "rwfd-dotdot", "x", rw, "../out/s");
    T(mkdir, "out", "/out/d2", 0755);
    T(mkdir, "dev", "/dev/d2", 0755);
    T(mkdirat, "rwfd-dotdot", rw, "../out/d2", 0755);
    T(mknod, "out-fifo", "/out/p", S_IFIFO | 0644, 0);
    T(mknod, "dev-chr", "/dev/n2", S_IFCHR | 0644, makedev(1, 3));
    T(mknodat, "rwfd-dotdot", rw, "../out/p", S_IFIFO | 0644, 0);
    T(mknod, "rw-fifo", "/rw/p", S_IFIFO | 0644, 0);
    /* queries: change nothing */
    T(access, "out-w", O, W_OK);
    T(access, "dev-w", DEV, W_OK);
    T(faccessat, "rwfd-dotdot-w", rw, "../out/c", W_OK);
    T(faccessat2, "lo-w", AT_FDCWD, LO, W_OK, 0);
    T(stat, "out", O, &sb);
    T(lstat, "li", LI, &sb);
    T(newfstatat, "rwfd-dotdot", rw, "../out/c", &sb, 0);
    T(statx, "out", AT_FDCWD, O, 0, 0x7ff, buf);
    T(statfs, "out", O, buf);
    T(readlink, "li", LI, buf, sizeof buf);
    T(readlinkat, "rwfd-lo", rw, "lo", buf, sizeof buf);
    T(chdir, "out", "/out");
    T(execve, "out", O, (char *[]){NULL}, (char *[]){NULL});
    T(execveat, "out", AT_FDCWD, O, (char *[]){NULL}, (char *[]){NULL}, 0);
    if (stat(DEV, &sb) == 0)
        printf("devnull %s %u:%u\n", S_ISCHR(sb.st_mode) ? "chr" : "not-chr",
               major(sb.st_rdev), minor(sb.st_rdev));
    /* allowed inside --rw: a final symlink's own entry */
    T(lchown, "lo", LO, uid, gid);
    T(unlink, "lo", LO);
    return 0;
}
