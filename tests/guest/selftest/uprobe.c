/*
 * The uprobe PMU through perf_event_open: a uprobe and a uretprobe on a function of this
 * program (path /proc/self/exe, file offset from /proc/self/maps), with shadow stacks on;
 * each call counts once in each event, the function returns where it should (the return
 * hijack kept the shadow stack consistent), the [uprobes] page appears, and the
 * uretprobe system call from anywhere but the trampoline is SIGILL. Other PMUs are absent.
 * Prints "ok <part>" per behaviour.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/perf_event.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ARCH_PRCTL(a, b) ({ long _r; register long _1 asm("rdi") = (a); \
    register long _2 asm("rsi") = (b); asm volatile("syscall" : "=a"(_r) \
    : "0"(158L), "r"(_1), "r"(_2) : "rcx", "r11", "memory", "cc"); _r; })

static int read_int(const char *path, const char *fmt)
{
    FILE *f = fopen(path, "r");
    int v = -1;
    if (!f)
        return -errno;
    if (fscanf(f, fmt, &v) != 1)
        v = -1;
    fclose(f);
    return v;
}

static long file_offset(const void *addr)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    long off = -1;
    while (fgets(line, sizeof(line), f)) {
        unsigned long s, e, o;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s %lx", &s, &e, perms, &o) == 4 && perms[2] == 'x' &&
            (uintptr_t)addr >= s && (uintptr_t)addr < e)
            off = (uintptr_t)addr - s + o;
    }
    fclose(f);
    return off;
}

static int has_uprobes_page(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    int found = 0;
    while (fgets(line, sizeof(line), f))
        found |= strstr(line, "[uprobes]") != NULL;
    fclose(f);
    return found;
}

static __attribute__((noinline)) long probed(long x)
{
    asm volatile("" ::: "memory");
    return x * 3 + 1;
}

static int open_probe(int type, int retbit, long offset, int ret)
{
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.size = sizeof(attr);
    attr.type = type;
    attr.config = ret ? 1UL << retbit : 0;
    attr.config1 = (uintptr_t)"/proc/self/exe";
    attr.config2 = offset;
    return syscall(__NR_perf_event_open, &attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
}

static sigjmp_buf jb;
static volatile int got_sig;
static void on_sig(int sig) { got_sig = sig; siglongjmp(jb, 1); }

int main(void)
{
    int type = read_int("/sys/bus/event_source/devices/uprobe/type", "%d");
    int bit = read_int("/sys/bus/event_source/devices/uprobe/format/retprobe", "config:%d");
    printf("%s sysfs type=%d bit=%d\n", type > 0 && bit == 0 ? "ok" : "FAIL", type, bit);
    printf("%s sysfs-only-ours\n", access("/sys/kernel", F_OK) != 0 && errno == ENOENT ? "ok" : "FAIL");

    struct perf_event_attr hw;
    memset(&hw, 0, sizeof(hw));
    hw.size = sizeof(hw);
    hw.type = PERF_TYPE_HARDWARE;
    int r = syscall(__NR_perf_event_open, &hw, 0, -1, -1, 0);
    printf("%s no-hardware-pmu %d\n", r < 0 && errno == ENOENT ? "ok" : "FAIL", errno);

    long offset = file_offset((void *)probed);
    int up = open_probe(type, bit, offset, 0);
    int uret = open_probe(type, bit, offset, 1);
    printf("%s open %d %d\n", up >= 0 && uret >= 0 ? "ok" : "FAIL", up, uret);

    long sum = 0;
    if (ARCH_PRCTL(0x5001, 1)) {
        printf("FAIL enable\n");
        return 1;
    }
    for (int i = 0; i < 5; i++)
        sum += probed(i);
    ARCH_PRCTL(0x5002, 1);
    printf("%s returns sum=%ld\n", sum == 3 * 10 + 5 ? "ok" : "FAIL", sum);

    unsigned long long c1 = 0, c2 = 0;
    read(up, &c1, sizeof(c1));
    read(uret, &c2, sizeof(c2));
    printf("%s counts %llu %llu\n", c1 == 5 && c2 == 5 ? "ok" : "FAIL", c1, c2);
    printf("%s uprobes-page\n", has_uprobes_page() ? "ok" : "FAIL");

    /* after close the function runs unprobed */
    close(up);
    close(uret);
    printf("%s closed %ld\n", probed(10) == 31 ? "ok" : "FAIL", probed(10));

    signal(SIGILL, on_sig);
    if (!sigsetjmp(jb, 1))
        syscall(335);
    printf("%s uretprobe-elsewhere-sigill %d\n", got_sig == SIGILL ? "ok" : "FAIL", got_sig);
    fflush(stdout);
    return 0;
}
