/*
 * A program whose initial dependency closure is exactly what the test links: this
 * executable, libdyn.so, libinner.so (its dependency) and the dynamic loader. No libc
 * (see nolibc.h), so the closure can be fully marked SHSTK.
 *
 * It calls across the libraries (and back, through a function pointer), then prints what
 * it finds about its own shadow stack: ARCH_SHSTK_STATUS, whether RDSSP reads a shadow
 * stack pointer, and the x86_Thread_features lines of /proc/self/status. With the
 * argument "env" it also prints the GLIBC_TUNABLES entry of its environment.
 */
#include "nolibc.h"

const char *lib_name(void);
long lib_sum(long n, long (*f)(long));

static long square(long x)
{
    return x * x;
}

__attribute__((noreturn, used)) void nl_main(long *sp)
{
    long argc = sp[0];
    char **argv = (char **)(sp + 1);
    char **envp = argv + argc + 1;
    nl_puts("library: ");
    nl_puts(lib_name());
    nl_puts("\nsum of squares: ");
    nl_putd(lib_sum(10, square));
    nl_puts("\nARCH_SHSTK_STATUS: ");
    nl_putd(nl_shstk_status());
    nl_puts(nl_rdssp() ? "\nRDSSP: shadow stack\n" : "\nRDSSP: 0\n");
    nl_status_lines("x86_Thread_features");
    if (argc > 1 && nl_streq(argv[1], "env")) {
        int found = 0;
        for (char **e = envp; *e; e++) {
            const char *p = *e, *k = "GLIBC_TUNABLES=";
            while (*k && *p == *k)
                p++, k++;
            if (!*k) {
                nl_puts("environment: ");
                nl_puts(*e);
                nl_puts("\n");
                found = 1;
            }
        }
        if (!found)
            nl_puts("environment: no GLIBC_TUNABLES\n");
    }
    nl_exit(0);
}
