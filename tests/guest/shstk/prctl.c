/*
 * arch_prctl(ARCH_SHSTK_*): every row of SPEC.md §4.4 in the order of checks of §4, the
 * allocation rule of §3.1/§4.1, disable (§4.2), and the /proc lines of §10.
 *
 * Usage: prctl GROUP
 *   table        the §4.4 rows with nothing locked (mainline profile)
 *   size         PAGE_ALIGN(min(RLIMIT_STACK, 4 GiB)) above 4 GiB, SSP = top, freed on disable
 *   proc         /proc/self/status lines, smaps `ss`, cpuinfo `user_shstk`
 *   lock         LOCK, and EPERM before EINVAL (ends with exit(), shadow stack still on)
 *   unlock-self  the self-UNLOCK quirk
 *   old-codes    the pre-6.6 0x3001.. codes and neighbours of 0x5001..0x5005
 *   ptrace       PTRACE_ARCH_PRCTL on a tracee: STATUS/LOCK/UNLOCK work, the rest EINVAL
 *   fork         features and locks are inherited; the child's stack is a copy (§4.5, §7)
 *   exec         execve resets features and locks (§4.5); runs itself as exec-child
 *   nousershstk  expectations under --kernel nousershstk
 *   no-shstk     expectations under --kernel no-shstk
 * Run with --shstk off. Exits 1 if a check failed.
 */
#define _GNU_SOURCE
#include "../shstk/extra.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>

#define PTRACE_ARCH_PRCTL_REQ 30 /* SPEC §1 [UNVERIFIED]; uapi asm/ptrace-abi.h */

#define ENABLE ARCH_SHSTK_ENABLE
#define DISABLE ARCH_SHSTK_DISABLE
#define LOCK ARCH_SHSTK_LOCK
#define UNLOCK ARCH_SHSTK_UNLOCK
#define STATUS ARCH_SHSTK_STATUS
#define SHSTK ARCH_SHSTK_SHSTK
#define WRSS ARCH_SHSTK_WRSS

static char line[512];

/* The value of a raw arch_prctl, as -errno. */
#define P(opt, arg) ss_arch_prctl((opt), (unsigned long)(arg))

#define EXPECT(opt, arg, want)                                                          \
    do {                                                                                \
        long r_ = P(opt, arg);                                                          \
        CHECK(r_ == (long)(want), "arch_prctl(%#x, %#lx) = %ld, want %ld", (opt),       \
              (unsigned long)(arg), r_, (long)(want));                                  \
    } while (0)

SS_INLINE uint64_t status(void) {
    uint64_t v = 0xbad;
    long r = P(STATUS, &v);
    CHECK_EQ(r, 0, "ARCH_SHSTK_STATUS");
    return v;
}

/* The text of one /proc/self/status line ("key:\t..." up to and with the newline). */
static int status_line(const char *key, char *out, size_t outsz) {
    const char *p = proc_read_file("/proc/self/status");
    size_t klen = strlen(key);
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) + 1 : strlen(p);
        if (!strncmp(p, key, klen) && p[klen] == ':') {
            if (len >= outsz)
                len = outsz - 1;
            memcpy(out, p, len);
            out[len] = 0;
            return 1;
        }
        p += len;
    }
    out[0] = 0;
    return 0;
}

#define EXPECT_STATUS_LINE(key, want)                                                   \
    do {                                                                                \
        status_line(key, line, sizeof line);                                            \
        CHECK(!strcmp(line, want), "/proc/self/status %s: got \"%s\", want \"%s\"", key, \
              line, want);                                                              \
    } while (0)

static int cpuinfo_has_user_shstk(void) {
    const char *p = proc_read_file("/proc/cpuinfo");
    int flags_lines = 0, with = 0;
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (!strncmp(p, "flags", 5)) {
            char buf[4096];
            if (len >= sizeof buf)
                len = sizeof buf - 1;
            memcpy(buf, p, len);
            buf[len] = 0;
            flags_lines++;
            with += proc_has_word(buf, "user_shstk");
        }
        p += len + (eol ? 1 : 0);
    }
    CHECK(flags_lines > 0, "/proc/cpuinfo has flags lines");
    CHECK(with == 0 || with == flags_lines, "user_shstk on %d of %d processors", with,
          flags_lines);
    return with > 0;
}

static int mapped(uint64_t addr) {
    uint64_t s, e;
    return proc_mapping_of(addr, &s, &e);
}

/* ---- table ---------------------------------------------------------------------------- */
static void group_table(void) {
    static const unsigned long bad_args[] = {SHSTK | WRSS, 0, 1UL << 2, 1UL << 63, ~0UL,
                                             (1UL << 2) | SHSTK};
    uint64_t top, top2, s, e, v;
    unsigned i;
    char maps_before[8192];

    ss_begin();
    CHECK_EQ(status(), 0, "STATUS at start");
    CHECK_EQ(ss_get_ssp(), 0, "RDSSP at start");
    EXPECT(ENABLE, WRSS, -EPERM);   /* ENABLE WRSS, SHSTK off */
    EXPECT(DISABLE, WRSS, -EPERM);  /* DISABLE WRSS, SHSTK off */
    EXPECT(DISABLE, SHSTK, 0);      /* DISABLE SHSTK, off */
    CHECK_EQ(status(), 0, "STATUS after the failed calls");
    for (i = 0; i < sizeof bad_args / sizeof bad_args[0]; i++) {
        EXPECT(ENABLE, bad_args[i], -EINVAL);
        EXPECT(DISABLE, bad_args[i], -EINVAL);
    }
    CHECK_EQ(status(), 0, "STATUS after the EINVAL calls");
    ss_ok("table-off");

    {
        uint64_t *ro = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        char buf[16] = {0};
        EXPECT(STATUS, 0, -EFAULT);
        EXPECT(STATUS, 1, -EFAULT);
        EXPECT(STATUS, ro, -EFAULT);
        EXPECT(STATUS, 0xffff800000000000UL, -EFAULT);
        EXPECT(STATUS, ss_find_hole(1), -EFAULT);
        munmap(ro, PAGE);
        memset(buf, 0x55, sizeof buf);
        EXPECT(STATUS, buf + 1, 0); /* put_user does not need alignment */
        CHECK(buf[1] == 0 && buf[8] == 0 && buf[9] == 0x55 && buf[0] == 0x55,
              "STATUS wrote exactly 8 bytes at an unaligned address");
    }
    ss_ok("table-status-efault");

    /* ENABLE SHSTK, off: 0, new stack, SSP = top */
    EXPECT(ENABLE, SHSTK, 0);
    top = ss_get_ssp();
    CHECK(top >= FOUR_GIB && top % PAGE == 0, "SSP after enable %#lx", (unsigned long)top);
    CHECK(proc_mapping_of(top - 8, &s, &e) && e == top, "SSP is the end of a mapping");
    CHECK_EQ(status(), SHSTK, "STATUS = SHSTK");
    ss_ok("table-enable");

    /* ENABLE SHSTK, already on: 0, no change */
    memcpy(maps_before, proc_read_file("/proc/self/maps"), sizeof maps_before - 1);
    maps_before[sizeof maps_before - 1] = 0;
    v = ss_get_ssp();
    EXPECT(ENABLE, SHSTK, 0);
    CHECK_EQ(ss_get_ssp(), v, "ENABLE again: SSP unchanged");
    CHECK(!strcmp(maps_before, proc_read_file("/proc/self/maps")),
          "ENABLE again: no new mapping");
    ss_ok("table-enable-again");

    /* ENABLE WRSS, SHSTK on: 0 */
    EXPECT(ENABLE, WRSS, 0);
    CHECK_EQ(status(), SHSTK | WRSS, "STATUS = SHSTK|WRSS");
    EXPECT(ENABLE, WRSS, 0);
    EXPECT(ENABLE, SHSTK, 0);
    CHECK_EQ(status(), SHSTK | WRSS, "ENABLE SHSTK again keeps WRSS");
    for (i = 0; i < sizeof bad_args / sizeof bad_args[0]; i++) {
        EXPECT(ENABLE, bad_args[i], -EINVAL);
        EXPECT(DISABLE, bad_args[i], -EINVAL);
    }
    CHECK_EQ(status(), SHSTK | WRSS, "STATUS unchanged by the EINVAL calls");
    EXPECT(DISABLE, WRSS, 0);
    CHECK_EQ(status(), SHSTK, "DISABLE WRSS leaves SHSTK");
    EXPECT(DISABLE, WRSS, 0);
    EXPECT(ENABLE, WRSS, 0);
    ss_ok("table-wrss");

    /* DISABLE SHSTK, on: 0, WRSS cleared, kernel stack unmapped, SSP = 0 */
    EXPECT(DISABLE, SHSTK, 0);
    CHECK_EQ(ss_get_ssp(), 0, "RDSSP after DISABLE");
    CHECK_EQ(status(), 0, "STATUS after DISABLE (WRSS cleared too)");
    CHECK(!mapped(top - 8), "the kernel-allocated shadow stack is unmapped");
    EXPECT(ENABLE, WRSS, -EPERM);
    EXPECT(DISABLE, SHSTK, 0);
    ss_ok("table-disable");

    /* enable again: a new stack */
    EXPECT(ENABLE, SHSTK, 0);
    top2 = ss_get_ssp();
    CHECK(top2 >= FOUR_GIB && proc_mapping_of(top2 - 8, &s, &e) && e == top2,
          "re-enable: SSP %#lx is the top of a new mapping", (unsigned long)top2);
    EXPECT(DISABLE, SHSTK, 0);
    CHECK(!mapped(top2 - 8), "freed again");
    ss_ok("table-reenable");
}

/* ---- size ----------------------------------------------------------------------------- */
static void group_size(void) {
    static const struct {
        unsigned long soft;
        unsigned long want;
    } cases[] = {
        {0x100001UL, 0x101000UL},        /* 1 MiB + 1 -> page aligned */
        {0x202001UL, 0x203000UL},
        {0x800000UL, 0x800000UL},        /* the usual 8 MiB */
        {0x140000000UL, 0x100000000UL},  /* 5 GiB -> 4 GiB */
        {RLIM_INFINITY, 0x100000000UL},  /* unlimited -> 4 GiB */
    };
    struct rlimit orig, rl;
    unsigned i;
    char vmflags[256];

    getrlimit(RLIMIT_STACK, &orig);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t top, s = 0, e = 0;
        ss_begin();
        rl.rlim_cur = cases[i].soft;
        rl.rlim_max = RLIM_INFINITY;
        CHECK_EQ(setrlimit(RLIMIT_STACK, &rl), 0, "setrlimit");
        EXPECT(ENABLE, SHSTK, 0);
        top = ss_get_ssp();
        CHECK(proc_mapping_of(top - 8, &s, &e), "SSP %#lx - 8 is mapped", (unsigned long)top);
        CHECK(e == top, "SSP %#lx is the end of the mapping %#lx-%#lx", (unsigned long)top,
              (unsigned long)s, (unsigned long)e);
        CHECK(e - s == cases[i].want, "RLIMIT_STACK %#lx: shadow stack of %#lx bytes, want %#lx",
              cases[i].soft, (unsigned long)(e - s), cases[i].want);
        CHECK(s >= FOUR_GIB, "shadow stack at %#lx, above 4 GiB", (unsigned long)s);
        CHECK(proc_smaps_vmflags(s, vmflags, sizeof vmflags) && proc_has_word(vmflags, "ss"),
              "smaps VmFlags of the shadow stack has ss: \"%s\"", vmflags);
        EXPECT(DISABLE, SHSTK, 0);
        CHECK(!mapped(top - 8), "unmapped by DISABLE");
        printf("%s size-rlimit-%#lx\n", ss_failures == ss_fail_mark ? "ok" : "not ok",
               cases[i].soft);
        ss_fail_mark = ss_failures;
    }
    setrlimit(RLIMIT_STACK, &orig);

    /* the extremes, in children (the limit also governs the normal stack):
     * a soft limit of 1 byte gives one page; 0 gives PAGE_ALIGN(0) = 0 bytes, which the
     * mmap layer refuses with EINVAL, returned as-is by ENABLE (§3.1, §4.1, §5 step 6) */
    {
        static const unsigned long softs[] = {1, 0};
        unsigned i2;
        for (i2 = 0; i2 < 2; i2++) {
            int wst = 0;
            pid_t pid;
            ss_begin();
            fflush(stdout);
            pid = fork();
            if (pid == 0) {
                struct rlimit r1 = {softs[i2], RLIM_INFINITY};
                uint64_t top, s = 0, e = 0;
                long r;
                if (setrlimit(RLIMIT_STACK, &r1))
                    _exit(9);
                r = ss_enable();
                if (softs[i2] == 0)
                    _exit(r == -EINVAL ? 0 : r == 0 ? 1 : 2);
                if (r)
                    _exit(3);
                top = ss_get_ssp();
                r = proc_mapping_of(top - 8, &s, &e) && e == top && e - s == PAGE ? 0 : 4;
                ss_disable();
                _exit((int)r);
            }
            CHECK_EQ(waitpid(pid, &wst, 0), pid, "waitpid");
            CHECK(WIFEXITED(wst) && WEXITSTATUS(wst) == 0,
                  "RLIMIT_STACK %lu: child status %#x (1: ENABLE succeeded, 2: other errno, "
                  "3: ENABLE failed, 4: not a one-page stack)", softs[i2], wst);
            printf("%s size-rlimit-%#lx\n", ss_failures == ss_fail_mark ? "ok" : "not ok",
                   softs[i2]);
            ss_fail_mark = ss_failures;
        }
    }
}

/* ---- proc ----------------------------------------------------------------------------- */
static void group_proc(void) {
    char vmflags[256], l[256];
    uint64_t top, s = 0, e = 0;
    void *normal;

    ss_begin();
    EXPECT_STATUS_LINE("x86_Thread_features", "x86_Thread_features:\t\n");
    EXPECT_STATUS_LINE("x86_Thread_features_locked", "x86_Thread_features_locked:\t\n");
    {
        /* SPEC §10: printed after nonvoluntary_ctxt_switches, features then locked */
        const char *st = proc_read_file("/proc/self/status");
        const char *f = strstr(st, "\nx86_Thread_features:");
        const char *nv = strstr(st, "\nnonvoluntary_ctxt_switches:");
        const char *lk = strstr(st, "\nx86_Thread_features_locked:");
        CHECK(f && nv && lk, "status has the three lines");
        if (f && nv && lk) {
            const char *nv_end = strchr(nv + 1, '\n');
            const char *f_end = strchr(f + 1, '\n');
            CHECK(nv_end == f, "x86_Thread_features follows nonvoluntary_ctxt_switches");
            CHECK(f_end == lk, "x86_Thread_features_locked follows x86_Thread_features");
        }
    }
    ss_ok("proc-status-off");

    EXPECT(ENABLE, SHSTK, 0);
    EXPECT_STATUS_LINE("x86_Thread_features", "x86_Thread_features:\tshstk \n");
    EXPECT(ENABLE, WRSS, 0);
    EXPECT_STATUS_LINE("x86_Thread_features", "x86_Thread_features:\tshstk wrss \n");
    EXPECT_STATUS_LINE("x86_Thread_features_locked", "x86_Thread_features_locked:\t\n");
    ss_ok("proc-status-on");

    top = ss_get_ssp();
    CHECK(proc_mapping_of(top - 8, &s, &e), "shadow stack mapped");
    CHECK(proc_smaps_vmflags(s, vmflags, sizeof vmflags) && proc_has_word(vmflags, "ss"),
          "smaps VmFlags of the kernel shadow stack has ss: \"%s\"", vmflags);
    CHECK(ss_maps_line(s, l, sizeof l), "maps line");
    {
        /* an ordinary-looking anonymous rw-p mapping, no name (SPEC §3.2) */
        char perms[8] = "", off[32] = "", dev[16] = "", extra[64] = "";
        unsigned long ino = 99;
        int n = sscanf(l, "%*x-%*x %7s %31s %15s %lu %63s", perms, off, dev, &ino, extra);
        CHECK(n == 4 && !strcmp(perms, "rw-p") && !strcmp(off, "00000000") &&
                  !strcmp(dev, "00:00") && ino == 0,
              "maps line of the shadow stack: \"%s\"", l);
    }
    normal = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    *(volatile char *)normal = 1;
    CHECK(proc_smaps_vmflags((uint64_t)normal, vmflags, sizeof vmflags) &&
              !proc_has_word(vmflags, "ss"),
          "smaps VmFlags of a normal mapping lacks ss: \"%s\"", vmflags);
    munmap(normal, PAGE);
    ss_ok("proc-smaps-ss");

    EXPECT(DISABLE, SHSTK, 0);
    EXPECT_STATUS_LINE("x86_Thread_features", "x86_Thread_features:\t\n");
    CHECK(cpuinfo_has_user_shstk(), "/proc/cpuinfo flags include user_shstk");
    ss_ok("proc-cpuinfo-user-shstk");
}

/* ---- lock ----------------------------------------------------------------------------- */
static void group_lock(void) {
    ss_begin();
    EXPECT(LOCK, 0, 0);
    EXPECT(LOCK, 1UL << 5, 0);
    EXPECT_STATUS_LINE("x86_Thread_features_locked", "x86_Thread_features_locked:\t\n");
    EXPECT(ENABLE, 1UL << 5, -EPERM);            /* locked unknown bit: EPERM, not EINVAL */
    EXPECT(DISABLE, 1UL << 5, -EPERM);
    EXPECT(ENABLE, (1UL << 5) | SHSTK, -EPERM);  /* EPERM before the popcount check */
    EXPECT(ENABLE, 1UL << 6, -EINVAL);           /* an unlocked unknown bit: EINVAL */
    ss_ok("lock-unknown-bits");

    EXPECT(LOCK, WRSS, 0);
    EXPECT_STATUS_LINE("x86_Thread_features_locked", "x86_Thread_features_locked:\twrss \n");
    EXPECT(ENABLE, WRSS, -EPERM);   /* lock check before the SHSTK-off EPERM, same errno */
    EXPECT(ENABLE, SHSTK | WRSS, -EPERM);
    EXPECT(ENABLE, SHSTK, 0);       /* SHSTK itself is not locked */
    CHECK_EQ(status(), SHSTK, "STATUS");
    EXPECT(ENABLE, WRSS, -EPERM);
    EXPECT(DISABLE, WRSS, -EPERM);
    EXPECT(DISABLE, SHSTK | WRSS, -EPERM);
    EXPECT(UNLOCK, WRSS, -EPERM);   /* self-UNLOCK cannot unlock */
    ss_ok("lock-wrss");

    EXPECT(LOCK, SHSTK, 0);
    EXPECT_STATUS_LINE("x86_Thread_features_locked",
                       "x86_Thread_features_locked:\tshstk wrss \n");
    EXPECT(DISABLE, SHSTK, -EPERM);
    EXPECT(ENABLE, SHSTK, -EPERM);  /* even though it is already on */
    EXPECT(ENABLE, SHSTK | WRSS, -EPERM);
    EXPECT(ENABLE, 0, -EINVAL);     /* nothing locked in 0: popcount 0 -> EINVAL */
    EXPECT(UNLOCK, SHSTK, -EPERM);
    EXPECT(LOCK, SHSTK, 0);         /* idempotent */
    EXPECT(LOCK, ~0UL, 0);
    EXPECT_STATUS_LINE("x86_Thread_features_locked",
                       "x86_Thread_features_locked:\tshstk wrss \n");
    EXPECT_STATUS_LINE("x86_Thread_features", "x86_Thread_features:\tshstk \n");
    CHECK_EQ(status(), SHSTK, "STATUS after the locks");
    CHECK(ss_get_ssp() != 0, "still enabled");
    ss_ok("lock-shstk");
    printf("lock: %d failure(s)\n", ss_failures);
    /* cannot disable any more: leave through exit(), never returning from main */
    exit(ss_failures ? 1 : 0);
}

/* ---- unlock-self ---------------------------------------------------------------------- */
static void group_unlock_self(void) {
    uint64_t top, s, e;

    ss_begin();
    EXPECT(UNLOCK, 0, -EINVAL);
    EXPECT(UNLOCK, 1UL << 2, -EINVAL);
    EXPECT(UNLOCK, SHSTK | WRSS, -EINVAL);
    EXPECT(UNLOCK, WRSS, -EPERM);   /* as ENABLE WRSS with SHSTK off */
    CHECK_EQ(status(), 0, "STATUS");
    EXPECT(UNLOCK, SHSTK, 0);       /* as ENABLE SHSTK */
    top = ss_get_ssp();
    CHECK(top >= FOUR_GIB && proc_mapping_of(top - 8, &s, &e) && e == top,
          "UNLOCK(SHSTK) on self enabled shadow stacks: SSP %#lx", (unsigned long)top);
    CHECK_EQ(status(), SHSTK, "STATUS after UNLOCK(SHSTK)");
    EXPECT(UNLOCK, WRSS, 0);        /* as ENABLE WRSS */
    CHECK_EQ(status(), SHSTK | WRSS, "STATUS after UNLOCK(WRSS)");
    EXPECT(DISABLE, SHSTK, 0);
    CHECK_EQ(status(), 0, "STATUS after DISABLE");
    EXPECT(LOCK, WRSS, 0);
    EXPECT(UNLOCK, WRSS, -EPERM);
    EXPECT_STATUS_LINE("x86_Thread_features_locked", "x86_Thread_features_locked:\twrss \n");
    ss_ok("unlock-self-is-enable");
}

/* ---- old codes ------------------------------------------------------------------------ */
static void group_old_codes(void) {
    uint64_t buf[4] = {0};
    int opt;

    ss_begin();
    /* the CET patch series before 6.6 used 0x3001 (ARCH_CET_STATUS) .. 0x3008 */
    for (opt = 0x3001; opt <= 0x3008; opt++) {
        EXPECT(opt, buf, -EINVAL);
        EXPECT(opt, SHSTK, -EINVAL);
    }
    EXPECT(0x5000, SHSTK, -EINVAL);
    EXPECT(0x5006, SHSTK, -EINVAL);
    EXPECT(0x5006, buf, -EINVAL);
    CHECK_EQ(status(), 0, "nothing enabled");
    ss_ok("old-codes-einval");
}

/* ---- ptrace (§4 step 3, the last row of §4.4) ----------------------------------------- */
static long ptrace_prctl(pid_t pid, int option, unsigned long arg2) {
    /* arch_ptrace(): PTRACE_ARCH_PRCTL takes the option in `data` and arg2 in `addr` */
    long r = ptrace((enum __ptrace_request)PTRACE_ARCH_PRCTL_REQ, pid, (void *)arg2,
                    (void *)(long)option);
    return r == -1 ? -errno : r;
}

#define EXPECT_PT(opt, arg, want)                                                       \
    do {                                                                                \
        long r_ = ptrace_prctl(pid, (opt), (unsigned long)(arg));                       \
        CHECK(r_ == (long)(want), "PTRACE_ARCH_PRCTL(%#x, %#lx) = %ld, want %ld", (opt), \
              (unsigned long)(arg), r_, (long)(want));                                  \
    } while (0)

static void group_ptrace(void) {
    char path[64], want[64];
    uint64_t v;
    int wst = 0;
    pid_t pid;

    ss_begin();
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        int bad = 0;
        char l[128];
        if (ss_enable() != 0)
            _exit(10);
        ptrace(PTRACE_TRACEME, 0, NULL, NULL);
        raise(SIGSTOP);
        /* the tracer locked SHSTK|WRSS, then unlocked WRSS */
        status_line("x86_Thread_features_locked", l, sizeof l);
        bad |= strcmp(l, "x86_Thread_features_locked:\tshstk \n") ? 1 : 0;
        bad |= P(ENABLE, WRSS) != 0 ? 2 : 0;            /* WRSS unlocked again */
        bad |= P(DISABLE, SHSTK) != -EPERM ? 4 : 0;     /* SHSTK locked */
        bad |= status() != (SHSTK | WRSS) ? 8 : 0;
        exit(bad); /* never return: shadow stacks are on and locked */
    }
    CHECK(pid > 0, "fork");
    CHECK_EQ(waitpid(pid, &wst, 0), pid, "waitpid");
    CHECK(WIFSTOPPED(wst) && WSTOPSIG(wst) == SIGSTOP, "tracee stopped: %#x", wst);

    v = 0xbad;
    EXPECT_PT(STATUS, &v, 0);
    CHECK_EQ(v, SHSTK, "STATUS through ptrace reads the tracee's features");
    EXPECT_PT(STATUS, 0, -EFAULT);               /* written into the tracer's memory */
    EXPECT_PT(ENABLE, WRSS, -EINVAL);
    EXPECT_PT(ENABLE, SHSTK, -EINVAL);
    EXPECT_PT(DISABLE, SHSTK, -EINVAL);
    EXPECT_PT(DISABLE, WRSS, -EINVAL);
    EXPECT_PT(ENABLE, 0, -EINVAL);
    EXPECT_PT(LOCK, SHSTK | WRSS, 0);
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    {
        const char *st = strstr(proc_read_file(path), "x86_Thread_features_locked:");
        CHECK(st && !strncmp(st, "x86_Thread_features_locked:\tshstk wrss \n", 40),
              "tracee's locked line after LOCK via ptrace");
    }
    EXPECT_PT(UNLOCK, WRSS, 0);                  /* CONFIG_CHECKPOINT_RESTORE */
    snprintf(want, sizeof want, "x86_Thread_features_locked:\tshstk \n");
    {
        const char *st = strstr(proc_read_file(path), "x86_Thread_features_locked:");
        CHECK(st && !strncmp(st, want, strlen(want)), "tracee's locked line after UNLOCK");
    }
    v = 0xbad;
    EXPECT_PT(STATUS, &v, 0);
    CHECK_EQ(v, SHSTK, "features unchanged by LOCK/UNLOCK");
    /* the tracer's own state is untouched */
    CHECK_EQ(status(), 0, "tracer's STATUS");
    EXPECT_STATUS_LINE("x86_Thread_features_locked", "x86_Thread_features_locked:\t\n");
    CHECK_EQ(ptrace(PTRACE_CONT, pid, NULL, NULL), 0, "PTRACE_CONT");
    CHECK_EQ(waitpid(pid, &wst, 0), pid, "waitpid");
    CHECK(WIFEXITED(wst) && WEXITSTATUS(wst) == 0,
          "tracee's own checks after the ptrace calls: status %#x", wst);
    ss_ok("ptrace-arch-prctl");
}

/* ---- fork (§4.5, §6 rule 3, §7) -------------------------------------------------------- */
__attribute__((noipa)) static int depth(int n) {
    int r;
    if (!n)
        return 0;
    r = depth(n - 1);
    asm volatile("" : "+r"(r)); /* a real call chain, not a loop */
    return r + 1;
}

static void group_fork(void) {
    uint64_t top, s, e, ssp_parent;
    int wst = 0, pfd[2];
    pid_t pid;

    ss_begin();
    EXPECT(ENABLE, SHSTK, 0);
    EXPECT(ENABLE, WRSS, 0);
    EXPECT(LOCK, WRSS, 0);
    top = ss_get_ssp();
    CHECK(proc_mapping_of(top - 8, &s, &e), "shadow stack mapped");
    CHECK_EQ(pipe(pfd), 0, "pipe");
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        int bad = 0;
        uint64_t ssp = ss_get_ssp(), cs, ce;
        char l[128];
        bad |= status() != (SHSTK | WRSS) ? 1 : 0;
        status_line("x86_Thread_features_locked", l, sizeof l);
        bad |= strcmp(l, "x86_Thread_features_locked:\twrss \n") ? 2 : 0;
        bad |= !proc_mapping_of(top - 8, &cs, &ce) || cs != s || ce != e ? 4 : 0;
        bad |= depth(30) != 30 ? 8 : 0; /* calls and returns on the copied stack */
        ss_push_dummy();
        ss_wrss((uint64_t *)(ssp - 8), 0xc0ffee);
        bad |= *(volatile uint64_t *)(ssp - 8) != 0xc0ffee ? 16 : 0;
        ss_incssp(1);
        bad |= write(pfd[1], &ssp, sizeof ssp) != sizeof ssp ? 32 : 0;
        exit(bad);
    }
    ssp_parent = ss_get_ssp();
    CHECK_EQ(waitpid(pid, &wst, 0), pid, "waitpid");
    CHECK(WIFEXITED(wst) && WEXITSTATUS(wst) == 0,
          "child's checks (features, locks, copied stack): status %#x", wst);
    {
        uint64_t child_ssp = 0;
        CHECK(read(pfd[0], &child_ssp, sizeof child_ssp) == sizeof child_ssp, "pipe read");
        CHECK(child_ssp == ssp_parent, "the child's SSP after fork %#lx equals the parent's %#lx",
              (unsigned long)child_ssp, (unsigned long)ssp_parent);
        CHECK(*(volatile uint64_t *)(ssp_parent - 8) != 0xc0ffee,
              "the child's WRSS did not reach the parent's stack");
    }
    CHECK(proc_mapping_of(top - 8, &s, &e) && e == top,
          "the child's exit did not unmap the parent's shadow stack");
    CHECK_EQ(depth(30), 30, "the parent's calls and returns still work");
    CHECK_EQ(status(), SHSTK | WRSS, "parent STATUS");
    /* WRSS is locked, SHSTK is not: DISABLE SHSTK works and clears WRSS too (§4.2) */
    EXPECT(DISABLE, SHSTK, 0);
    CHECK_EQ(status(), 0, "DISABLE SHSTK cleared the locked WRSS feature as well");
    EXPECT(ENABLE, WRSS, -EPERM);
    ss_ok("fork-inherits");
}

/* ---- exec (§4.5) ----------------------------------------------------------------------- */
static void group_exec(void) {
    char *args[] = {"prctl", "exec-child", NULL};

    EXPECT(ENABLE, SHSTK, 0);
    EXPECT(ENABLE, WRSS, 0);
    EXPECT(LOCK, ~0UL, 0);
    printf("exec: %d failure(s) before execve\n", ss_failures);
    fflush(stdout);
    execv("/proc/self/exe", args);
    printf("FAIL execv: %s\n", strerror(errno));
    exit(1);
}

static void group_exec_child(void) {
    ss_begin();
    CHECK_EQ(status(), 0, "STATUS after execve");
    CHECK_EQ(ss_get_ssp(), 0, "RDSSP after execve");
    EXPECT_STATUS_LINE("x86_Thread_features", "x86_Thread_features:\t\n");
    EXPECT_STATUS_LINE("x86_Thread_features_locked", "x86_Thread_features_locked:\t\n");
    EXPECT(ENABLE, SHSTK, 0);   /* the locks are gone */
    EXPECT(ENABLE, WRSS, 0);
    EXPECT(DISABLE, SHSTK, 0);
    ss_ok("exec-resets");
}

/* ---- profiles ------------------------------------------------------------------------- */
static void group_nousershstk(void) {
    ss_begin();
    CHECK_EQ(status(), 0, "STATUS works");
    EXPECT(STATUS, 0, -EFAULT);
    EXPECT(ENABLE, SHSTK, -EOPNOTSUPP);
    EXPECT(UNLOCK, SHSTK, -EOPNOTSUPP);
    EXPECT(DISABLE, SHSTK, -EOPNOTSUPP);
    EXPECT(ENABLE, WRSS, -EOPNOTSUPP);
    EXPECT(DISABLE, WRSS, -EOPNOTSUPP);
    EXPECT(ENABLE, SHSTK | WRSS, -EINVAL);
    EXPECT(ENABLE, 0, -EINVAL);
    EXPECT(ENABLE, 1UL << 2, -EINVAL);
    EXPECT(DISABLE, 1UL << 2, -EINVAL);
    CHECK_EQ(ss_get_ssp(), 0, "RDSSP");
    ss_ok("nousershstk-prctl");
    EXPECT(LOCK, WRSS, 0);
    EXPECT(ENABLE, WRSS, -EPERM);  /* the lock check comes before the CPU-feature check */
    EXPECT_STATUS_LINE("x86_Thread_features", "x86_Thread_features:\t\n");
    EXPECT_STATUS_LINE("x86_Thread_features_locked", "x86_Thread_features_locked:\twrss \n");
    CHECK(!cpuinfo_has_user_shstk(), "/proc/cpuinfo has no user_shstk");
    ss_ok("nousershstk-lock-proc");
}

static void group_no_shstk(void) {
    uint64_t v = 0x77;
    int opt;

    ss_begin();
    for (opt = ENABLE; opt <= STATUS; opt++) {
        EXPECT(opt, SHSTK, -EINVAL);
        EXPECT(opt, &v, -EINVAL);
    }
    CHECK_EQ(v, 0x77, "STATUS wrote nothing");
    CHECK(!strstr(proc_read_file("/proc/self/status"), "x86_Thread_features"),
          "no x86_Thread_features lines in /proc/self/status");
    CHECK(!cpuinfo_has_user_shstk(), "/proc/cpuinfo has no user_shstk");
    ss_ok("no-shstk-prctl-einval");
}

int main(int argc, char **argv) {
    const char *g = argc > 1 ? argv[1] : "";
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!strcmp(g, "table"))
        group_table();
    else if (!strcmp(g, "size"))
        group_size();
    else if (!strcmp(g, "proc"))
        group_proc();
    else if (!strcmp(g, "lock"))
        group_lock();
    else if (!strcmp(g, "unlock-self"))
        group_unlock_self();
    else if (!strcmp(g, "old-codes"))
        group_old_codes();
    else if (!strcmp(g, "ptrace"))
        group_ptrace();
    else if (!strcmp(g, "fork"))
        group_fork();
    else if (!strcmp(g, "exec"))
        group_exec();
    else if (!strcmp(g, "exec-child"))
        group_exec_child();
    else if (!strcmp(g, "nousershstk"))
        group_nousershstk();
    else if (!strcmp(g, "no-shstk"))
        group_no_shstk();
    else {
        printf("usage: prctl GROUP\n");
        return 2;
    }
    printf("%s: %d failure(s)\n", g, ss_failures);
    return ss_failures ? 1 : 0;
}
