/* bulkio MODE: move 1 GiB in one write() (mode null: to /dev/null) or through a pipe to
 * a child that reads and drops it (mode pipe; the writer loops on short writes). The
 * buffer is never touched, so what the host pays is shstk's own cost. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define TOTAL (1L << 30)

int main(int argc, char **argv) {
    char *buf = mmap(0, TOTAL, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    long done = 0;
    if (!strcmp(argv[1], "null")) {
        int fd = open("/dev/null", O_WRONLY);
        done = write(fd, buf, TOTAL);
    } else {
        int p[2];
        pipe(p);
        pid_t c = fork();
        if (c == 0) {
            static char sink[1 << 16];
            close(p[1]);
            while (read(p[0], sink, sizeof sink) > 0) {}
            _exit(0);
        }
        close(p[0]);
        while (done < TOTAL) {
            long n = write(p[1], buf + done, TOTAL - done);
            if (n <= 0) break;
            done += n;
        }
        close(p[1]);
        waitpid(c, 0, 0);
    }
    printf("%ld\n", done);
    return done == TOTAL ? 0 : 1;
}
