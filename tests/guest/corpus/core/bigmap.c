/* A 4 GiB anonymous mapping with a few touched pages must be cheap: prints the guest's
 * VmRSS growth (from /proc/self/status) in MiB, rounded. */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

static long vmrss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

int main(void) {
    long before = vmrss_kb();
    size_t len = (size_t)4 << 30;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap 4 GiB");
        return 1;
    }
    for (size_t off = 0; off < len; off += len / 16)
        p[off] = 1;
    p[len - 1] = 2;
    long sum = 0;
    for (size_t off = 0; off < len; off += len / 16)
        sum += p[off];
    long after = vmrss_kb();
    printf("mapped 4 GiB, touched 17 pages, sum=%ld\n", sum + p[len - 1]);
    printf("VmRSS grew by < 8 MiB: %d\n", after - before < 8 * 1024);
    printf("munmap -> %d\n", munmap(p, len));
    return 0;
}
