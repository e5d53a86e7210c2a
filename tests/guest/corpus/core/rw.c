/* Writes below argv[1]: create+write+read back, mkdir, rename, unlink; prints each result
 * with its errno name. Used to check --rw DIR (allowed) and the read-only default (EROFS). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHOW(what, call)                                                                  \
    do {                                                                                  \
        errno = 0;                                                                        \
        long r_ = (long)(call);                                                           \
        printf("%s -> %s\n", what, r_ < 0 ? strerrorname_np(errno) : "ok");              \
    } while (0)

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    char path[4096], path2[4096], dir[4096];
    snprintf(path, sizeof path, "%s/new.txt", argv[1]);
    snprintf(path2, sizeof path2, "%s/renamed.txt", argv[1]);
    snprintf(dir, sizeof dir, "%s/subdir", argv[1]);
    int fd;
    SHOW("open(O_CREAT)", fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644));
    if (fd >= 0) {
        SHOW("write", write(fd, "written by guest\n", 17));
        close(fd);
    }
    SHOW("mkdir", mkdir(dir, 0755));
    SHOW("rename", rename(path, path2));
    char existing[4096];
    snprintf(existing, sizeof existing, "%s/existing.txt", argv[1]);
    SHOW("open(existing, O_RDONLY)", open(existing, O_RDONLY));
    SHOW("open(existing, O_RDWR)", open(existing, O_RDWR));
    SHOW("open(existing, O_WRONLY|O_APPEND)", open(existing, O_WRONLY | O_APPEND));
    SHOW("unlink(existing)", unlink(existing));
    SHOW("truncate(existing)", truncate(existing, 0));
    SHOW("symlink", symlink("existing.txt", dir));
    return 0;
}
