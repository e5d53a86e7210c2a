/*
 * userfaultfd in MISSING mode: a fault on a registered page that has no page yet blocks
 * the faulting thread until another thread resolves it (UFFDIO_COPY / ZEROPAGE / WAKE),
 * for ordinary loads and stores and for shadow-stack WRSS; the message says where and
 * whether it was a write. Prints "ok <part>" per behaviour.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096
#define ARCH_PRCTL(a, b) ({ long _r; register long _1 asm("rdi") = (a); \
    register long _2 asm("rsi") = (b); asm volatile("syscall" : "=a"(_r) \
    : "0"(158L), "r"(_1), "r"(_2) : "rcx", "r11", "memory", "cc"); _r; })

static int uffd;
static char src[PAGE];
static struct uffd_msg last;
static volatile int resolver_mode; /* 0 copy, 1 zeropage */

static void *resolver(void *arg)
{
    struct pollfd p = { .fd = uffd, .events = POLLIN };
    if (poll(&p, 1, 10000) != 1 || !(p.revents & POLLIN))
        return (void *)1;
    if (read(uffd, &last, sizeof(last)) != sizeof(last))
        return (void *)2;
    if (resolver_mode == 0) {
        struct uffdio_copy c = { .dst = last.arg.pagefault.address & ~(PAGE - 1UL),
                                 .src = (uintptr_t)src, .len = PAGE };
        if (ioctl(uffd, UFFDIO_COPY, &c) || c.copy != PAGE)
            return (void *)3;
        /* the page is there now: a second copy is EEXIST */
        if (!ioctl(uffd, UFFDIO_COPY, &c) || errno != EEXIST)
            return (void *)4;
    } else {
        struct uffdio_zeropage z = { .range = { last.arg.pagefault.address & ~(PAGE - 1UL),
                                                PAGE } };
        if (ioctl(uffd, UFFDIO_ZEROPAGE, &z) || z.zeropage != PAGE)
            return (void *)5;
    }
    return NULL;
}

static void reg(void *addr)
{
    struct uffdio_register r = { .range = { (uintptr_t)addr, PAGE },
                                 .mode = UFFDIO_REGISTER_MODE_MISSING };
    if (ioctl(uffd, UFFDIO_REGISTER, &r))
        printf("FAIL register %d\n", errno);
    if ((r.ioctls & (1 << _UFFDIO_COPY)) == 0)
        printf("FAIL register ioctls %#llx\n", (unsigned long long)r.ioctls);
}

static int run(int mode, void (*access)(volatile char *), volatile char *p)
{
    pthread_t th;
    void *res;
    resolver_mode = mode;
    pthread_create(&th, NULL, resolver, NULL);
    access(p);
    pthread_join(th, &res);
    return (int)(intptr_t)res;
}

static void do_load(volatile char *p) { if (p[100] != 'x') printf("FAIL load value %d\n", p[100]); }
static void do_store(volatile char *p) { p[8] = 7; }
static void do_wrss(volatile char *p)
{
    asm volatile("wrssq %0, (%1)" :: "r"(0x1234UL), "r"(p) : "memory");
}

int main(void)
{
    memset(src, 'x', sizeof(src));
    int flags = O_CLOEXEC | O_NONBLOCK | (geteuid() ? 1 /* UFFD_USER_MODE_ONLY */ : 0);
    uffd = syscall(__NR_userfaultfd, flags);
    if (uffd < 0) {
        printf("FAIL userfaultfd %d\n", errno);
        return 1;
    }
    struct uffdio_api api = { .api = UFFD_API };
    char buf[sizeof(struct uffd_msg)];
    printf("%s read-before-api\n", read(uffd, buf, sizeof(buf)) < 0 && errno == EINVAL ? "ok" : "FAIL");
    printf("%s api\n", ioctl(uffd, UFFDIO_API, &api) == 0 && api.api == UFFD_API ? "ok" : "FAIL");
    printf("%s nothing-pending\n", read(uffd, buf, sizeof(buf)) < 0 && errno == EAGAIN ? "ok" : "FAIL");

    char *mem = mmap(0, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct uffdio_register bad = { .range = { (uintptr_t)mem + 1, PAGE },
                                   .mode = UFFDIO_REGISTER_MODE_MISSING };
    printf("%s register-unaligned\n", ioctl(uffd, UFFDIO_REGISTER, &bad) && errno == EINVAL ? "ok" : "FAIL");

    reg(mem);
    int r = run(0, do_load, mem);
    printf("%s load r=%d write=%d addr_ok=%d\n", !r && !(last.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE)
           && last.event == UFFD_EVENT_PAGEFAULT && last.arg.pagefault.address == (uintptr_t)mem ? "ok" : "FAIL",
           r, (int)(last.arg.pagefault.flags & 1), last.arg.pagefault.address == (uintptr_t)mem);
    /* the page is present now: no more faults */
    printf("%s present %d\n", mem[0] == 'x' ? "ok" : "FAIL", mem[0]);

    madvise(mem, PAGE, MADV_DONTNEED); /* missing again */
    r = run(1, do_store, mem);
    printf("%s store r=%d write=%d\n", !r && (last.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE)
           && mem[8] == 7 && mem[9] == 0 ? "ok" : "FAIL", r, (int)(last.arg.pagefault.flags & 1));

    struct uffdio_range un = { (uintptr_t)mem, PAGE };
    madvise(mem, PAGE, MADV_DONTNEED);
    printf("%s unregister\n", ioctl(uffd, UFFDIO_UNREGISTER, &un) == 0 && mem[0] == 0 ? "ok" : "FAIL");

    /* fork: the child's copy is not registered (no UFFD_FEATURE_EVENT_FORK) */
    reg(mem + PAGE);
    pid_t pid = fork();
    if (pid == 0)
        _exit(mem[PAGE] == 0 ? 0 : 1);
    int st;
    waitpid(pid, &st, 0);
    printf("%s fork-child-unregistered\n", WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "ok" : "FAIL");

    /* shadow stack: WRSS to a registered missing page blocks until UFFDIO_COPY */
    if (ARCH_PRCTL(0x5001, 1) == 0 && ARCH_PRCTL(0x5001, 2) == 0) {
        unsigned long *ss = (void *)syscall(453, 0, 4 * PAGE, 1);
        reg(ss);
        r = run(0, do_wrss, (volatile char *)ss);
        printf("%s wrss r=%d write=%d val=%#lx\n", !r && (last.arg.pagefault.flags & 1) && ss[0] == 0x1234
               && ss[1] == 0x7878787878787878UL ? "ok" : "FAIL", r, (int)(last.arg.pagefault.flags & 1), ss[0]);
        ARCH_PRCTL(0x5002, 1);
    } else {
        printf("no shadow stack\n");
    }
    close(uffd);
    fflush(stdout);
    return 0;
}
