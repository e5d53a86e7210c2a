/*
 * The loader policy (`shstk run --shstk auto|on|off|permissive`, SPEC.md §15.1): what
 * the program finds at the start of main. Built twice by the tests: marked
 * (-fcf-protection=full -Wl,-z,shstk -Wl,-z,ibt) and unmarked.
 *
 * Prints, one per line:
 *   status <ret> <features>          ARCH_SHSTK_STATUS at the start of main
 *   ssp <0|1>                        RDSSP non-zero
 *   features "<rest of the /proc/self/status line>"   (tab and newline escaped)
 *   locked "<...>"
 * then, for each argument:
 *   disable   -> "disable <ret> <features after>"
 *   wrss      -> "wrss <ret> <features after>"
 * and returns 0 from main (through the shadow stack when it is on).
 */
#define _GNU_SOURCE
#include "../shstk/extra.h"

#include <stdio.h>
#include <string.h>

static void print_status_line(const char *key, const char *label) {
    const char *p = strstr(proc_read_file("/proc/self/status"), key);
    printf("%s \"", label);
    if (p) {
        p += strlen(key);
        for (; *p && *p != '\n'; p++)
            if (*p == '\t')
                printf("\\t");
            else
                putchar(*p);
        if (*p == '\n')
            printf("\\n");
    } else {
        printf("(absent)");
    }
    printf("\"\n");
}

static __attribute__((noipa)) int depth(int n) {
    int r;
    if (!n)
        return 0;
    r = depth(n - 1);
    asm volatile("" : "+r"(r)); /* a real call chain, not a loop */
    return r + 1;
}

int main(int argc, char **argv) {
    uint64_t st = 0xbad;
    long r = ss_arch_prctl(ARCH_SHSTK_STATUS, (unsigned long)&st);
    int i;

    printf("status %ld %#lx\n", r, (unsigned long)st);
    printf("ssp %d\n", ss_get_ssp() != 0);
    print_status_line("x86_Thread_features:", "features");
    print_status_line("x86_Thread_features_locked:", "locked");
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "disable")) {
            r = ss_disable();
        } else if (!strcmp(argv[i], "wrss")) {
            r = ss_arch_prctl(ARCH_SHSTK_ENABLE, ARCH_SHSTK_WRSS);
        } else {
            printf("unknown %s\n", argv[i]);
            return 2;
        }
        st = 0xbad;
        ss_arch_prctl(ARCH_SHSTK_STATUS, (unsigned long)&st);
        printf("%s %ld %#lx\n", argv[i], r, (unsigned long)st);
    }
    printf("calls %d\n", depth(20));
    return 0;
}
