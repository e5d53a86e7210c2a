/* Shared by the CET-glibc guests: shadow-stack state as the kernel and /proc see it. */
#ifndef CET_COMMON_H
#define CET_COMMON_H
#include <stdio.h>
#include <string.h>
#include "shstk_guest.h"

/* ARCH_SHSTK_STATUS through an inline syscall (glibc has no wrapper). */
static inline __attribute__((always_inline)) unsigned long cet_status(void) {
    unsigned long features = 0;
    ss_arch_prctl(ARCH_SHSTK_STATUS, (unsigned long)&features);
    return features;
}

/* Print the x86_Thread_features lines of /proc/self/status. */
static void print_thread_features(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "x86_Thread_features", 19)) fputs(line, stdout);
    if (f) fclose(f);
}

/* Count the shadow-stack VMAs (`ss` in smaps VmFlags). */
static int count_shadow_stacks(void) {
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    int n = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmFlags:", 8) && strstr(line, " ss ")) n++;
    if (f) fclose(f);
    return n;
}

/* Size of the mapping that contains `addr` (from /proc/self/maps), 0 if none. */
static unsigned long mapping_size(unsigned long addr) {
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    unsigned long lo, hi, size = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && lo <= addr && addr < hi) size = hi - lo;
    if (f) fclose(f);
    return size;
}
#endif
