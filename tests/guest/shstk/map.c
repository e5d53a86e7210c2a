/*
 * map_shadow_stack(addr, size, flags), syscall 453: SPEC.md §5, every check in its order
 * (each error case is paired with the later ones it must win against), the token, the
 * placement, and §3.2 (rw-p, `ss` in smaps, above 4 GiB).
 *
 * Usage: map GROUP
 *   errors       the error checks in order (mainline)
 *   token        the restore token: value, place, unaligned sizes, nothing left behind
 *   placement    where the mapping goes and what it looks like; works with SHSTK off/on
 *   nousershstk  everything is EOPNOTSUPP (run with --kernel nousershstk)
 *   no-shstk     everything is ENOSYS (run with --kernel no-shstk)
 * Run with --shstk off. Exits 1 if a check failed.
 */
#define _GNU_SOURCE
#include "../shstk/extra.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN SHADOW_STACK_SET_TOKEN
#define MARKER SHADOW_STACK_SET_MARKER
#define TASK_SIZE_MAX 0x7ffffffff000UL

/* map_shadow_stack with a 64-bit flags register value (the kernel takes 32 bits). */
SS_INLINE long map3(unsigned long addr, unsigned long size, unsigned long flags) {
    return ss_syscall6(__NR_map_shadow_stack, (long)addr, (long)size, (long)flags, 0, 0, 0);
}

#define EXPECT_MAP(addr, size, flags, want)                                             \
    do {                                                                                \
        long r_ = map3((addr), (size), (flags));                                        \
        CHECK(r_ == (long)(want), "map_shadow_stack(%#lx, %#lx, %#lx) = %ld, want %ld",  \
              (unsigned long)(addr), (unsigned long)(size), (unsigned long)(flags), r_, \
              (long)(want));                                                            \
        if (r_ > 0 && r_ != (long)(want))                                               \
            munmap((void *)r_, (size));                                                 \
    } while (0)

static int mapped(uint64_t addr) {
    uint64_t s, e;
    return proc_mapping_of(addr, &s, &e);
}

static long vm_kb(const char *key) {
    const char *p = strstr(proc_read_file("/proc/self/status"), key);
    return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

/* ---- errors --------------------------------------------------------------------------- */
static void group_errors(void) {
    uint64_t hole, existing;
    long r;

    ss_begin();
    /* 2. flags other than SET_TOKEN: EINVAL, before ENOSPC and ERANGE */
    EXPECT_MAP(0, PAGE, MARKER, -EINVAL);
    EXPECT_MAP(0, PAGE, TOKEN | MARKER, -EINVAL);
    EXPECT_MAP(0, PAGE, 1UL << 2, -EINVAL);
    EXPECT_MAP(0, PAGE, 1UL << 31, -EINVAL);
    EXPECT_MAP(0, PAGE, 0xffffffffUL, -EINVAL);
    EXPECT_MAP(0x1000, 4, TOKEN | MARKER, -EINVAL);  /* not ENOSPC, not ERANGE */
    ss_ok("errors-flags-einval");

    /* `unsigned int flags`: bits above 31 of the register are not seen (SPEC §5 signature) */
    r = map3(0, PAGE, (1UL << 32) | TOKEN);
    CHECK(r > 0 && (uint64_t)r >= FOUR_GIB, "flags 1<<32|TOKEN = %ld, want a mapping", r);
    if (r > 0) {
        CHECK_EQ(*(uint64_t *)(r + PAGE - 8), (r + PAGE) | 1, "the token is there");
        munmap((void *)r, PAGE);
    }
    r = map3(0, PAGE, 1UL << 33);
    CHECK(r > 0 && *(uint64_t *)(r + PAGE - 8) == 0, "flags 1<<33 = %ld: no token", r);
    if (r > 0)
        munmap((void *)r, PAGE);
    ss_ok("errors-flags-32bit");

    /* 3. SET_TOKEN and size < 8: ENOSPC, before ERANGE and EOVERFLOW */
    EXPECT_MAP(0, 0, TOKEN, -ENOSPC);
    EXPECT_MAP(0, 4, TOKEN, -ENOSPC);
    EXPECT_MAP(0, 7, TOKEN, -ENOSPC);
    EXPECT_MAP(0x1000, 7, TOKEN, -ENOSPC);  /* not ERANGE */
    EXPECT_MAP(1, 1, TOKEN, -ENOSPC);
    ss_ok("errors-token-enospc");

    /* 4. addr below 4 GiB: ERANGE, before EOVERFLOW and the mmap errors */
    EXPECT_MAP(0x1000, PAGE, 0, -ERANGE);
    EXPECT_MAP(1, PAGE, 0, -ERANGE);
    EXPECT_MAP(FOUR_GIB - PAGE, PAGE, TOKEN, -ERANGE);
    EXPECT_MAP(0x400000, PAGE, 0, -ERANGE);           /* the program's own text: not EEXIST */
    EXPECT_MAP(0x1000, ~0UL, TOKEN, -ERANGE);         /* not EOVERFLOW */
    EXPECT_MAP(0x1001, 0, 0, -ERANGE);                /* not EINVAL */
    ss_ok("errors-erange");

    /* 5. PAGE_ALIGN(size) wraps: EOVERFLOW, before the mmap errors */
    EXPECT_MAP(0, ~0UL, 0, -EOVERFLOW);
    EXPECT_MAP(0, ~0UL, TOKEN, -EOVERFLOW);
    EXPECT_MAP(0, ~0UL - 4094, 0, -EOVERFLOW);        /* 0xfffffffffffff001 */
    EXPECT_MAP(FOUR_GIB + 1, ~0UL - 100, TOKEN, -EOVERFLOW);  /* not EINVAL (alignment) */
    ss_ok("errors-eoverflow");

    /* 6. generic mmap errors ([UNVERIFIED] in SPEC §5: from do_mmap/get_unmapped_area) */
    hole = ss_find_hole(4);
    CHECK(hole >= FOUR_GIB, "a hole above 4 GiB: %#lx", (unsigned long)hole);
    EXPECT_MAP(hole + 1, PAGE, 0, -EINVAL);           /* unaligned addr */
    EXPECT_MAP(hole + 8, PAGE, TOKEN, -EINVAL);
    EXPECT_MAP(hole + 0x800, PAGE, 0, -EINVAL);
    EXPECT_MAP(0, 0, 0, -EINVAL);                      /* size 0 without token */
    EXPECT_MAP(hole, 0, 0, -EINVAL);
    existing = (uint64_t)mmap((void *)(hole + PAGE), PAGE, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    CHECK_EQ(existing, hole + PAGE, "mmap a page in the hole");
    EXPECT_MAP(existing, PAGE, 0, -EEXIST);           /* occupied */
    EXPECT_MAP(existing, PAGE, TOKEN, -EEXIST);
    EXPECT_MAP(hole, 2 * PAGE, 0, -EEXIST);           /* partly occupied */
    EXPECT_MAP(existing + 8, PAGE, 0, -EINVAL);       /* unaligned wins over occupied */
    CHECK(!mapped(hole), "nothing left at the hole after EEXIST");
    munmap((void *)existing, PAGE);
    EXPECT_MAP(TASK_SIZE_MAX, PAGE, 0, -ENOMEM);      /* beyond TASK_SIZE */
    EXPECT_MAP(TASK_SIZE_MAX - PAGE, 2 * PAGE, 0, -ENOMEM);
    EXPECT_MAP(0, ~0UL - 4095, 0, -ENOMEM);           /* 0xfffffffffffff000: no space */
    ss_ok("errors-mmap");
}

/* ---- token ---------------------------------------------------------------------------- */
static void group_token(void) {
    static const unsigned long sizes[] = {0x2000, 0x1008, 8, 16, 0x1000, 0x3ff8, 0x200000};
    static const unsigned long bad_sizes[] = {0x1004, 0x1001, 9, 12, 0x1ffc, 0x2001};
    unsigned i;

    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned long size = sizes[i], aligned = (size + PAGE - 1) & ~(PAGE - 1);
        long r;
        uint64_t S, s = 0, e = 0, off, nonzero = 0;

        ss_begin();
        r = map3(0, size, TOKEN);
        CHECK(r > 0, "map_shadow_stack(0, %#lx, TOKEN) = %ld", size, r);
        if (r <= 0)
            continue;
        S = (uint64_t)r;
        CHECK(S >= FOUR_GIB && S % PAGE == 0, "at %#lx", (unsigned long)S);
        CHECK(proc_mapping_of(S, &s, &e) && s == S && e == S + aligned,
              "size %#lx: mapping %#lx-%#lx, want %#lx bytes", size, (unsigned long)s,
              (unsigned long)e, aligned);
        CHECK(*(uint64_t *)(S + size - 8) == ((S + size) | 1),
              "size %#lx: token at addr+size-8 = %#lx, want %#lx", size,
              (unsigned long)*(uint64_t *)(S + size - 8), (unsigned long)((S + size) | 1));
        for (off = 0; off < aligned; off += 8)
            if (off != size - 8 && *(uint64_t *)(S + off))
                nonzero++;
        CHECK_EQ(nonzero, 0, "everything but the token is zero");
        munmap((void *)S, aligned);
        printf("%s token-size-%#lx\n", ss_failures == ss_fail_mark ? "ok" : "not ok", size);
        ss_fail_mark = ss_failures;
    }

    /* an 8-aligned but not page-aligned size: the token sits below the top */
    {
        long r = map3(0, 0x1008, TOKEN);
        ss_begin();
        if (r > 0) {
            CHECK_EQ(*(uint64_t *)(r + 0x1ff8), 0, "the top slot of the 0x2000 mapping is 0");
            CHECK_EQ(*(uint64_t *)(r + 0x1000), (r + 0x1008) | 1, "token at +0x1000");
            munmap((void *)r, 0x2000);
        }
        ss_ok("token-below-top");
    }

    /* size not a multiple of 8 with SET_TOKEN: EINVAL, and the mapping is gone */
    for (i = 0; i < sizeof bad_sizes / sizeof bad_sizes[0]; i++) {
        unsigned long size = bad_sizes[i];
        uint64_t hole = ss_find_hole(8);
        char before[8192];
        long r;

        ss_begin();
        memcpy(before, proc_read_file("/proc/self/maps"), sizeof before - 1);
        before[sizeof before - 1] = 0;
        EXPECT_MAP(0, size, TOKEN, -EINVAL);
        CHECK(!strcmp(before, proc_read_file("/proc/self/maps")),
              "size %#lx: /proc/self/maps unchanged after the EINVAL", size);
        EXPECT_MAP(hole, size, TOKEN, -EINVAL);
        CHECK(!mapped(hole), "size %#lx: nothing left at the explicit address", size);
        r = map3(hole, 2 * PAGE, 0);
        CHECK(r == (long)hole, "size %#lx: the address is free again: %ld", size, r);
        if (r > 0)
            munmap((void *)r, 2 * PAGE);
        printf("%s token-unaligned-size-%#lx\n", ss_failures == ss_fail_mark ? "ok" : "not ok",
               size);
        ss_fail_mark = ss_failures;
    }
}

/* ---- placement ------------------------------------------------------------------------ */
static void group_placement(void) {
    char l[256], vmflags[256], perms[8] = "";
    uint64_t st = 0xbad, hole, S, s, e;
    long r;

    ss_begin();
    CHECK_EQ(ss_arch_prctl(ARCH_SHSTK_STATUS, (unsigned long)&st), 0, "STATUS");
    CHECK_EQ(st, 0, "shadow stacks are off for the caller");
    r = map3(0, 1, 0);
    CHECK(r > 0 && (uint64_t)r >= FOUR_GIB && r % PAGE == 0,
          "map_shadow_stack(0, 1, 0) with SHSTK off = %#lx, above 4 GiB", (unsigned long)r);
    S = (uint64_t)r;
    CHECK(proc_mapping_of(S, &s, &e) && s == S && e == S + PAGE, "size 1 -> one page");
    CHECK_EQ(*(volatile uint64_t *)S, 0, "normal reads work, zero-filled");
    CHECK(ss_maps_line(S, l, sizeof l) && sscanf(l, "%*x-%*x %7s", perms) == 1 &&
              !strcmp(perms, "rw-p"),
          "maps shows an rw-p mapping: \"%s\"", l);
    CHECK(!strstr(l, "[") , "no name on the shadow-stack mapping: \"%s\"", l);
    CHECK(proc_smaps_vmflags(S, vmflags, sizeof vmflags) && proc_has_word(vmflags, "ss"),
          "smaps VmFlags has ss: \"%s\"", vmflags);
    munmap((void *)S, PAGE);
    CHECK(!mapped(S), "munmap removes it");
    ss_ok("placement-shstk-off");

    /* explicit address (page aligned, free, >= 4 GiB): mapped exactly there */
    hole = ss_find_hole(4);
    r = map3(hole + PAGE, 2 * PAGE, TOKEN);
    CHECK_EQ(r, hole + PAGE, "explicit address honoured");
    if (r > 0) {
        CHECK_EQ(*(uint64_t *)(r + 2 * PAGE - 8), (r + 2 * PAGE) | 1, "token");
        munmap((void *)r, 2 * PAGE);
    }
    /* exactly 4 GiB is allowed (ERANGE is only below) */
    r = map3(FOUR_GIB, PAGE, 0);
    CHECK(r == (long)FOUR_GIB || r == -EEXIST, "addr = 4 GiB: %ld", r);
    if (r == (long)FOUR_GIB)
        munmap((void *)r, PAGE);
    ss_ok("placement-explicit");

    /* several in a row: all above 4 GiB, none overlapping */
    {
        uint64_t m[8];
        int i, j;
        for (i = 0; i < 8; i++) {
            m[i] = (uint64_t)map3(0, 3 * PAGE, TOKEN);
            CHECK(m[i] >= FOUR_GIB && m[i] < TASK_SIZE_MAX, "stack %d at %#lx", i,
                  (unsigned long)m[i]);
        }
        for (i = 0; i < 8; i++)
            for (j = 0; j < 8; j++)
                if (i != j)
                    CHECK(m[i] + 3 * PAGE <= m[j] || m[j] + 3 * PAGE <= m[i],
                          "stacks %d and %d overlap", i, j);
        for (i = 0; i < 8; i++)
            munmap((void *)m[i], 3 * PAGE);
    }
    ss_ok("placement-many");

    /* the same with shadow stacks enabled for the caller */
    CHECK_EQ(ss_enable(), 0, "ENABLE");
    r = map3(0, PAGE, TOKEN);
    CHECK(r > 0 && (uint64_t)r >= FOUR_GIB, "with SHSTK on: %#lx", (unsigned long)r);
    if (r > 0) {
        CHECK_EQ(*(uint64_t *)(r + PAGE - 8), (r + PAGE) | 1, "token");
        munmap((void *)r, PAGE);
    }
    CHECK_EQ(ss_disable(), 0, "DISABLE");
    ss_ok("placement-shstk-on");

    /* DISABLE does not free stacks made by map_shadow_stack (SPEC §4.2, §7) */
    r = map3(0, PAGE, TOKEN);
    CHECK_EQ(ss_enable(), 0, "ENABLE");
    CHECK_EQ(ss_disable(), 0, "DISABLE");
    CHECK(r > 0 && mapped((uint64_t)r), "a map_shadow_stack stack survives DISABLE");
    if (r > 0)
        munmap((void *)r, PAGE);
    ss_ok("placement-not-freed-by-disable");

    /* ... not even when the thread is on it: DISABLE frees only the kernel's stack */
    {
        uint64_t K, old;
        r = map3(0, 2 * PAGE, TOKEN);
        CHECK_EQ(ss_enable(), 0, "ENABLE");
        old = ss_get_ssp();
        K = old - 8;
        ss_pivot((void *)(r + 2 * PAGE - 8));
        CHECK_EQ(ss_get_ssp(), (uint64_t)r + 2 * PAGE, "pivoted to the map_shadow_stack stack");
        CHECK_EQ(ss_disable(), 0, "DISABLE while on it");
        CHECK_EQ(ss_get_ssp(), 0, "SSP 0");
        CHECK(mapped((uint64_t)r), "the stack the thread was on is still mapped");
        CHECK(!mapped(K), "the kernel-allocated stack is unmapped");
        munmap((void *)r, 2 * PAGE);
    }
    ss_ok("placement-disable-while-pivoted");

    /* [UNVERIFIED in SPEC §3.2] shadow stacks count as stack memory: VmStk grows */
    {
        long before = vm_kb("VmStk:"), after;
        r = map3(0, 0x400000, 0);
        after = vm_kb("VmStk:");
        CHECK(after - before == 0x400000 / 1024, "VmStk grew by %ld kB, want %lu", after - before,
              0x400000UL / 1024);
        munmap((void *)r, 0x400000);
        CHECK_EQ(vm_kb("VmStk:"), before, "VmStk back after munmap");
    }
    ss_ok("placement-vmstk");
}

/* ---- profiles ------------------------------------------------------------------------- */
static void group_nousershstk(void) {
    ss_begin();
    /* 1. EOPNOTSUPP comes first: before every other check */
    EXPECT_MAP(0, PAGE, TOKEN, -EOPNOTSUPP);
    EXPECT_MAP(0, PAGE, 0, -EOPNOTSUPP);
    EXPECT_MAP(0, PAGE, MARKER, -EOPNOTSUPP);
    EXPECT_MAP(0, 4, TOKEN, -EOPNOTSUPP);
    EXPECT_MAP(0x1000, PAGE, 0, -EOPNOTSUPP);
    EXPECT_MAP(0, ~0UL, 0, -EOPNOTSUPP);
    EXPECT_MAP(0, 0, 0, -EOPNOTSUPP);
    ss_ok("nousershstk-eopnotsupp");
}

static void group_no_shstk(void) {
    ss_begin();
    EXPECT_MAP(0, PAGE, TOKEN, -ENOSYS);
    EXPECT_MAP(0, PAGE, MARKER, -ENOSYS);
    EXPECT_MAP(0x1000, 4, TOKEN, -ENOSYS);
    ss_ok("no-shstk-enosys");
}

int main(int argc, char **argv) {
    const char *g = argc > 1 ? argv[1] : "";
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!strcmp(g, "errors"))
        group_errors();
    else if (!strcmp(g, "token"))
        group_token();
    else if (!strcmp(g, "placement"))
        group_placement();
    else if (!strcmp(g, "nousershstk"))
        group_nousershstk();
    else if (!strcmp(g, "no-shstk"))
        group_no_shstk();
    else {
        printf("usage: map GROUP\n");
        return 2;
    }
    printf("%s: %d failure(s)\n", g, ss_failures);
    return ss_failures ? 1 : 0;
}
