/* strerror/perror/strerror_r/errno names for a few errnos (glibc's own tables). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>

int main(void) {
    int errs[] = {0, EPERM, ENOENT, EINTR, EBADF, EAGAIN, ENOMEM, EACCES, EFAULT, EEXIST,
                  ENOTDIR, EINVAL, EROFS, EPIPE, ERANGE, ENOSYS, ETIMEDOUT, 9999};
    for (unsigned i = 0; i < sizeof errs / sizeof errs[0]; i++)
        printf("%d %s: %s\n", errs[i], strerrorname_np(errs[i]) ? strerrorname_np(errs[i]) : "?",
               strerror(errs[i]));
    char buf[8];
    char *s = strerror_r(ENOENT, buf, sizeof buf);
    printf("strerror_r (GNU) -> %s\n", s);
    errno = EACCES;
    perror("perror says");
    errno = 0;
    perror(NULL);
    printf("%%m: ");
    errno = ENOSPC;
    printf("%m\n");
    return 0;
}
