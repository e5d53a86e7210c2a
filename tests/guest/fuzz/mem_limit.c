/* mem_limit MiB: run under `--memory-limit MiB`M. Prints what mmap, brk and fork give
 * near the limit; the guest, not shstk, runs out of memory. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define MB (1UL << 20)

int main(int argc, char **argv) {
    long limit = atol(argv[1]);
    void *p = mmap(0, (limit + 1) * MB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("mmap over the limit: %s\n", p == MAP_FAILED ? strerror(errno) : "ok");
    p = mmap(0, (limit + 1) * MB, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    printf("the same with MAP_NORESERVE: %s\n", p == MAP_FAILED ? strerror(errno) : "ok");
    if (p != MAP_FAILED) munmap(p, (limit + 1) * MB);
    printf("brk over the limit: %s\n",
           sbrk((limit + 1) * MB) == (void *)-1 ? strerror(errno) : "ok");
    long n = 0;
    while (mmap(0, MB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) != MAP_FAILED)
        n++;
    printf("1 MiB maps: %s, %s\n", strerror(errno),
           n < limit && n > limit / 2 ? "below the limit" : "wrong count");
    pid_t c = fork();
    if (c == 0) _exit(0);
    printf("fork with all of it: %s\n", c < 0 ? strerror(errno) : "ok");
    if (c > 0) waitpid(c, 0, 0);
    return 0;
}
