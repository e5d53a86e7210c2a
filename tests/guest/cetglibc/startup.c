/* What glibc's start-up left: the kernel's view (STATUS), /proc, and whether calls work. */
#include "common.h"

__attribute__((noinline)) static int depth(int n) { return n ? depth(n - 1) + 1 : 0; }

int main(void) {
    printf("status %lu\n", cet_status());
    print_thread_features();
    printf("ssp %s\n", ss_get_ssp() ? "nonzero" : "zero");
    printf("depth %d\n", depth(500));
    /* with the lock, a program cannot turn shadow stacks off again */
    long r = ss_arch_prctl(ARCH_SHSTK_DISABLE, ARCH_SHSTK_SHSTK);
    printf("disable %s\n", r == 0 ? "ok" : r == -EPERM ? "EPERM" : "other");
    /* shadow stacks may be off by now (permissive): main must still return normally */
    return 0;
}
