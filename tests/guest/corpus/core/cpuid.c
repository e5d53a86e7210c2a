/* CPUID as the guest sees it: leaf 0 max leaf, leaf 7 CET bits (ECX bit 7 SHSTK, EDX bit
 * 20 IBT), leaf 1 SSE2, AT_HWCAP2 from the kernel. */
#include <cpuid.h>
#include <stdio.h>

int main(void) {
    unsigned a, b, c, d;
    __cpuid(0, a, b, c, d);
    printf("max leaf >= 7: %d\n", a >= 7);
    __cpuid(1, a, b, c, d);
    printf("leaf 1 SSE2: %d\n", (d >> 26) & 1);
    __cpuid_count(7, 0, a, b, c, d);
    printf("leaf 7 ECX bit 7 (CET_SS): %u\n", (c >> 7) & 1);
    printf("leaf 7 EDX bit 20 (CET_IBT): %u\n", (d >> 20) & 1);
    return 0;
}
