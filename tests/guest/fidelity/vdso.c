/* The vDSO (issue 16): named by AT_SYSINFO_EHDR and in /proc/self/maps as [vdso], an ELF
 * image whose LINUX_2.6 functions give the time and the cpu. */
#include <elf.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <time.h>

int main(void) {
    unsigned long ehdr = getauxval(AT_SYSINFO_EHDR);
    printf("AT_SYSINFO_EHDR %s\n", ehdr ? "set" : "missing");
    if (!ehdr)
        return 1;
    Elf64_Ehdr *h = (Elf64_Ehdr *)ehdr;
    printf("ELF %d type %d\n", memcmp(h->e_ident, ELFMAG, SELFMAG) == 0, h->e_type);
    char line[512], found[64] = "";
    FILE *f = fopen("/proc/self/maps", "r");
    while (fgets(line, sizeof line, f)) {
        unsigned long s, e;
        char perms[8], name[64] = "";
        if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %63s", &s, &e, perms, name) >= 3 &&
            s == ehdr)
            snprintf(found, sizeof found, "%s %s", perms, name);
    }
    printf("maps: %s\n", found);
    /* the dynamic symbols name the functions glibc looks for */
    Elf64_Phdr *ph = (Elf64_Phdr *)(ehdr + h->e_phoff);
    Elf64_Dyn *dyn = NULL;
    for (int i = 0; i < h->e_phnum; i++)
        if (ph[i].p_type == PT_DYNAMIC)
            dyn = (Elf64_Dyn *)(ehdr + ph[i].p_offset);
    const char *strtab = NULL;
    for (; dyn && dyn->d_tag != DT_NULL; dyn++)
        if (dyn->d_tag == DT_STRTAB)
            strtab = (const char *)(ehdr + dyn->d_un.d_ptr);
    const char *want[] = {"__vdso_clock_gettime", "__vdso_gettimeofday", "__vdso_time",
                          "__vdso_getcpu", "LINUX_2.6", "linux-vdso.so.1"};
    for (unsigned i = 0; i < sizeof want / sizeof *want; i++) {
        int ok = 0;
        for (const char *p = strtab; p && p < strtab + 4096 && !ok; p += strlen(p) + 1)
            ok = strcmp(p, want[i]) == 0;
        printf("%s %s\n", want[i], ok ? "yes" : "no");
    }
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("monotonic %s, time %s\n", b.tv_sec > a.tv_sec || (b.tv_sec == a.tv_sec &&
           b.tv_nsec >= a.tv_nsec) ? "ok" : "backwards", time(NULL) > 1000000000 ? "ok" : "bad");
    return 0;
}
