/* mmap/munmap/mprotect/mremap/madvise used directly: anonymous private memory is zeroed,
 * MAP_FIXED replaces, mprotect then SIGSEGV caught with si_code/si_addr, MADV_DONTNEED zeroes,
 * mremap grows, errno of bad calls. Prints offsets and errnos, never addresses. */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static sigjmp_buf jb;
static void *fault_addr;
static int fault_code;

static void on_segv(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    fault_addr = si->si_addr;
    fault_code = si->si_code;
    siglongjmp(jb, 1);
}

static const char *code(int c) {
    return c == SEGV_MAPERR ? "SEGV_MAPERR" : c == SEGV_ACCERR ? "SEGV_ACCERR" : "other";
}

int main(void) {
    long pg = sysconf(_SC_PAGESIZE);
    size_t len = 16 * (size_t)pg;
    unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return 1;
    int zero = 1;
    for (size_t i = 0; i < len; i++)
        zero &= p[i] == 0;
    printf("anon zeroed=%d aligned=%d\n", zero, (uintptr_t)p % (uintptr_t)pg == 0);
    memset(p, 0x11, len);

    unsigned char *q = mmap(p + 4 * pg, (size_t)pg, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    printf("MAP_FIXED same addr=%d new page zero=%d neighbour kept=%d\n", q == p + 4 * pg,
           q[0] == 0 && q[pg - 1] == 0, p[4 * pg - 1] == 0x11 && p[5 * pg] == 0x11);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);

    printf("mprotect RO -> %d\n", mprotect(p + 2 * pg, (size_t)pg, PROT_READ));
    if (sigsetjmp(jb, 1) == 0) {
        p[2 * pg + 100] = 1;
        printf("write to RO page did not fault\n");
    } else {
        printf("write to RO: %s offset=%td\n", code(fault_code), (unsigned char *)fault_addr - p);
    }
    printf("read RO still works: %d\n", p[2 * pg + 100]);
    munmap(p + 8 * pg, (size_t)pg);
    if (sigsetjmp(jb, 1) == 0) {
        volatile unsigned char c = p[8 * pg + 8];
        (void)c;
        printf("read of unmapped page did not fault\n");
    } else {
        printf("read unmapped: %s offset=%td\n", code(fault_code), (unsigned char *)fault_addr - p);
    }
    mprotect(p + 3 * pg, (size_t)pg, PROT_NONE);
    if (sigsetjmp(jb, 1) == 0) {
        volatile unsigned char c = p[3 * pg];
        (void)c;
        printf("read of PROT_NONE did not fault\n");
    } else {
        printf("read PROT_NONE: %s offset=%td\n", code(fault_code), (unsigned char *)fault_addr - p);
    }

    printf("madvise DONTNEED -> %d\n", madvise(p, (size_t)pg, MADV_DONTNEED));
    printf("after DONTNEED first=%d last=%d next page=%d\n", p[0], p[pg - 1], p[pg]);

    unsigned char *r = mremap(p + 10 * pg, 2 * (size_t)pg, 64 * (size_t)pg, MREMAP_MAYMOVE);
    printf("mremap grow ok=%d data kept=%d tail zero=%d\n", r != MAP_FAILED,
           r[0] == 0x11 && r[2 * pg - 1] == 0x11, r[63 * pg] == 0);
    munmap(r, 64 * (size_t)pg);

    errno = 0;
    void *bad = mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("mmap len 0: failed=%d errno=%s\n", bad == MAP_FAILED, strerror(errno));
    errno = 0;
    bad = mmap((void *)(p + 1), (size_t)pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    printf("mmap unaligned fixed: failed=%d errno=%s\n", bad == MAP_FAILED, strerror(errno));
    errno = 0;
    bad = mmap(NULL, (size_t)pg, PROT_READ, MAP_PRIVATE, 12345, 0);
    printf("mmap bad fd: failed=%d errno=%s\n", bad == MAP_FAILED, strerror(errno));
    errno = 0;
    int rc = munmap(p, 0);
    printf("munmap len 0 -> %d errno=%s\n", rc, strerror(errno));
    errno = 0;
    rc = mprotect(p + 1, 10, PROT_READ);
    printf("mprotect unaligned -> %d errno=%s\n", rc, strerror(errno));
    munmap(p, len);
    errno = 0;
    rc = mprotect(p, (size_t)pg, PROT_READ);
    printf("mprotect unmapped -> %d errno=%s\n", rc, strerror(errno));
    printf("munmap of unmapped -> %d\n", munmap(p, len));
    return 0;
}
