/* Bad guest pointers passed to system calls give -1/EFAULT (never a crash of the emulator
 * or of the program). Same output natively. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

static void *volatile bad_ptr = (void *)1;
#define BAD bad_ptr
#define SHOW(what, call)                                                                  \
    do {                                                                                  \
        errno = 0;                                                                        \
        long r_ = (long)(call);                                                           \
        printf("%-28s -> %ld%s%s\n", what, r_, r_ < 0 ? " " : "",                       \
               r_ < 0 ? strerrorname_np(errno) : "");                                     \
    } while (0)

int main(void) {
    SHOW("write(1, 1, 10)", write(1, BAD, 10));
    SHOW("write(1, NULL, 10)", write(1, NULL, 10));
    SHOW("open((char*)1)", open((const char *)BAD, O_RDONLY));
    SHOW("stat(\"/\", 1)", syscall(SYS_stat, "/", BAD));
    SHOW("newfstatat(bad path)", syscall(SYS_newfstatat, AT_FDCWD, BAD, BAD, 0));
    SHOW("clock_gettime(REALTIME, 1)", syscall(SYS_clock_gettime, CLOCK_REALTIME, BAD));
    SHOW("gettimeofday(1)", syscall(SYS_gettimeofday, BAD, NULL));
    SHOW("uname(1)", syscall(SYS_uname, BAD));
    SHOW("getrandom(1, 8)", syscall(SYS_getrandom, BAD, 8, 0));
    SHOW("pipe(1)", syscall(SYS_pipe, BAD));
    SHOW("nanosleep(1)", syscall(SYS_nanosleep, BAD, NULL));
    SHOW("readlink(/proc/self/exe, 1)", syscall(SYS_readlink, "/proc/self/exe", BAD, 100));
    SHOW("getcwd(1, 100)", syscall(SYS_getcwd, BAD, 100));
    struct iovec iov = {BAD, 5};
    SHOW("writev(1, {1,5})", writev(1, &iov, 1));
    SHOW("writev(1, iov=1)", syscall(SYS_writev, 1, BAD, 1));

    /* read() into a read-only mapping: the kernel's copy faults, the call fails. */
    long pg = sysconf(_SC_PAGESIZE);
    char *ro = mmap(NULL, (size_t)pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int fd = open("/proc/self/cmdline", O_RDONLY);
    SHOW("read(fd, read-only page)", read(fd, ro, 16));
    SHOW("file offset after EFAULT", lseek(fd, 0, SEEK_CUR));
    SHOW("read(fd, unmapped)", read(fd, (void *)0x10000, 16));
    char *none = mmap(NULL, (size_t)pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    SHOW("write(1, PROT_NONE page)", write(1, none, 4));
    SHOW("getrandom(read-only page)", getrandom(ro, 8, 0));
    printf("read-only page untouched: %d\n", ro[0] == 0);

    /* A failed copy consumes nothing: the bytes stay in the pipe (non-blocking, so a lost
     * byte shows as EAGAIN instead of hanging). */
    int p[2];
    pipe2(p, O_NONBLOCK);
    write(p[1], "abc", 3);
    SHOW("read(pipe, read-only page)", read(p[0], ro, 3));
    SHOW("read(pipe) after EFAULT", read(p[0], (char[8]){0}, 8));
    return 0;
}
