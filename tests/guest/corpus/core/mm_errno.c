/* The mm system calls' results and errno for bad arguments, as Linux gives them. Prints no
 * addresses; the same output natively (Linux >= 6.6 for MAP_ABOVE4G) and emulated. */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MAP_ABOVE4G
#define MAP_ABOVE4G 0x80
#endif
#define ANON (MAP_PRIVATE | MAP_ANONYMOUS)
#define RW (PROT_READ | PROT_WRITE)

static void res(const char *what, void *p) {
    int e = errno;
    if (p == MAP_FAILED)
        printf("%-40s -> MAP_FAILED %s\n", what, strerrorname_np(e));
    else
        printf("%-40s -> ok\n", what);
}
static void rc(const char *what, long r) {
    int e = errno;
    printf("%-40s -> %ld%s%s\n", what, r, r < 0 ? " " : "", r < 0 ? strerrorname_np(e) : "");
}
static sigjmp_buf probe_jb;
static void on_segv(int sig) {
    (void)sig;
    siglongjmp(probe_jb, 1);
}
/* 1 if a write to *p works, 0 if it faults (the byte is written back unchanged). */
static int writable(volatile char *p) {
    if (sigsetjmp(probe_jb, 1))
        return 0;
    char c = *p;
    *p = c;
    return 1;
}

#define M(what, ...) (errno = 0, res(what, mmap(__VA_ARGS__)))
#define R(what, call) (errno = 0, rc(what, (long)(call)))

int main(void) {
    const size_t pg = 4096;
    char *base = mmap(NULL, 16 * pg, RW, ANON, -1, 0);
    M("mmap len 0", NULL, 0, RW, ANON, -1, 0);
    M("mmap len 2^62", NULL, (size_t)1 << 62, RW, ANON, -1, 0);
    M("mmap len -4096", NULL, (size_t)-4096, RW, ANON, -1, 0);
    M("mmap neither SHARED nor PRIVATE", NULL, pg, RW, MAP_ANONYMOUS, -1, 0);
    M("mmap unaligned offset", NULL, pg, PROT_READ, ANON, -1, 100);
    M("mmap bad fd", NULL, pg, PROT_READ, MAP_PRIVATE, 999, 0);
    M("mmap MAP_FIXED unaligned", base + 1, pg, RW, ANON | MAP_FIXED, -1, 0);
    M("mmap MAP_FIXED at 0", NULL, pg, RW, ANON | MAP_FIXED, -1, 0);
    M("mmap MAP_FIXED_NOREPLACE overlap", base + 4 * pg, pg, RW, ANON | MAP_FIXED_NOREPLACE, -1,
      0);
    M("mmap MAP_FIXED over existing", base + 4 * pg, pg, RW, ANON | MAP_FIXED, -1, 0);

    void *p = mmap((void *)(uintptr_t)0x300000000000ul, pg, RW, ANON | MAP_FIXED_NOREPLACE, -1,
                   0);
    printf("MAP_FIXED_NOREPLACE free spot exact: %d\n", p == (void *)(uintptr_t)0x300000000000ul);
    p = mmap((void *)(uintptr_t)0x300000000000ul, pg, RW, ANON, -1, 0);
    printf("hint on a taken spot moves: %d\n", p != MAP_FAILED && p != (void *)0x300000000000ul);
    p = mmap(NULL, pg, RW, ANON | MAP_32BIT, -1, 0);
    printf("MAP_32BIT below 2 GiB: %d\n", p != MAP_FAILED && (uintptr_t)p < (1ul << 31));
    p = mmap(NULL, pg, RW, ANON | MAP_ABOVE4G, -1, 0);
    printf("MAP_ABOVE4G at/above 4 GiB: %d\n", p != MAP_FAILED && (uintptr_t)p >= (1ul << 32));
    char *hi = mmap(NULL, pg, RW, ANON, -1, 0), *hi2 = mmap(NULL, pg, RW, ANON, -1, 0);
    char local;
    printf("top-down: below the stack %d, second below first %d\n", hi < &local, hi2 < hi);

    R("munmap len 0", munmap(base, 0));
    R("munmap unaligned", munmap(base + 1, pg));
    R("munmap unmapped range", munmap((void *)0x310000000000ul, pg));
    R("mprotect unaligned", mprotect(base + 1, pg, PROT_READ));
    R("mprotect bad prot", mprotect(base, pg, 0x1000));
    R("mprotect len 0", mprotect(base, 0, PROT_READ));
    R("mprotect unmapped", mprotect((void *)0x310000000000ul, pg, PROT_READ));
    signal(SIGSEGV, on_segv);
    munmap(base + 8 * pg, pg);
    R("mprotect over a hole", mprotect(base + 6 * pg, 4 * pg, PROT_READ));
    /* Linux changes the part before the hole, then fails; the part after is unchanged. */
    printf("after it: before the hole writable %d %d, after the hole writable %d\n",
           writable(base + 6 * pg), writable(base + 7 * pg), writable(base + 9 * pg));
    mprotect(base + 6 * pg, 2 * pg, RW);
    R("madvise unaligned", madvise(base + 1, pg, MADV_DONTNEED));
    R("madvise bad advice", madvise(base, pg, 12345));
    R("madvise unmapped", madvise((void *)0x310000000000ul, pg, MADV_DONTNEED));
    memset(base, 0x77, 4 * pg);
    R("madvise DONTNEED", madvise(base + pg, 2 * pg, MADV_DONTNEED));
    printf("DONTNEED zeroed: %d, neighbours kept: %d\n",
           base[pg] == 0 && base[3 * pg - 1] == 0, base[pg - 1] == 0x77 && base[3 * pg] == 0x77);

    /* mremap */
    errno = 0;
    void *m = mremap(base, 0, pg, 0);
    printf("mremap old_len 0 private -> %s %s\n", m == MAP_FAILED ? "MAP_FAILED" : "ok",
           m == MAP_FAILED ? strerrorname_np(errno) : "");
    errno = 0;
    m = mremap(base + 1, pg, 2 * pg, MREMAP_MAYMOVE);
    printf("mremap unaligned -> %s %s\n", m == MAP_FAILED ? "MAP_FAILED" : "ok",
           m == MAP_FAILED ? strerrorname_np(errno) : "");
    errno = 0;
    m = mremap(base, pg, 2 * pg, 0);  /* base+pg is mapped: cannot grow in place */
    printf("mremap grow in place blocked -> %s %s\n", m == MAP_FAILED ? "MAP_FAILED" : "ok",
           m == MAP_FAILED ? strerrorname_np(errno) : "");
    char *g = mremap(base + 9 * pg, pg, 2 * pg, 0);  /* base+10*pg is mapped */
    printf("mremap grow in place (neighbour mapped) -> %s\n", g == MAP_FAILED ? "MAP_FAILED" : "ok");
    base[7 * pg] = 0x42;
    g = mremap(base + 7 * pg, pg, 3 * pg, 0);  /* base+8*pg is the hole, 9 is mapped */
    printf("mremap grow into a 1-page hole by 2 -> %s\n", g == MAP_FAILED ? "MAP_FAILED" : "ok");
    g = mremap(base + 7 * pg, pg, 2 * pg, 0);
    printf("mremap grow into the hole -> same place %d, data %#x\n", g == base + 7 * pg,
           g != MAP_FAILED ? g[0] : -1);
    base[0] = 0x55;
    g = mremap(base, pg, 64 * pg, MREMAP_MAYMOVE);
    printf("mremap MAYMOVE grow -> moved %d, data %#x, old gone: %d\n", g != base, g[0],
           mprotect(base, pg, PROT_READ) == -1 && errno == ENOMEM);
    char *shrunk = mremap(g, 64 * pg, pg, 0);
    printf("mremap shrink -> same %d\n", shrunk == g);
    char *target = mmap(NULL, 4 * pg, RW, ANON, -1, 0);
    char *f = mremap(shrunk, pg, pg, MREMAP_MAYMOVE | MREMAP_FIXED, target + pg);
    printf("mremap FIXED -> at target %d, data %#x\n", f == target + pg, f[0]);
    errno = 0;
    f = mremap(target, pg, pg, MREMAP_FIXED, target + 2 * pg);
    printf("mremap FIXED without MAYMOVE -> %s\n", f == MAP_FAILED ? strerrorname_np(errno) : "ok");

    /* brk */
    void *b0 = sbrk(0);
    R("brk grow 1 MiB", brk((char *)b0 + (1 << 20)));
    memset(b0, 1, 1 << 20);
    R("brk shrink", brk(b0));
    printf("sbrk(0) back to start: %d\n", sbrk(0) == b0);
    long r = syscall(SYS_brk, 0x10000);
    printf("brk below start returns current: %d\n", (void *)r == b0);
    return 0;
}
