/*
 * What a dynamic program finds in its auxiliary vector, checked against what the loader
 * actually did (dl_iterate_phdr, /proc/self/maps). Prints only facts that are the same
 * natively and under `shstk run`: no addresses.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

extern char _start[];

struct objs {
    int n;
    ElfW(Addr) main_addr;
    const ElfW(Phdr) *main_phdr;
    int main_phnum;
    ElfW(Addr) ldso_addr;
    int ldso_seen;
};

static int each(struct dl_phdr_info *info, size_t size, void *data)
{
    struct objs *o = data;
    (void)size;
    if (o->n++ == 0) {
        o->main_addr = info->dlpi_addr;
        o->main_phdr = info->dlpi_phdr;
        o->main_phnum = info->dlpi_phnum;
    } else if (strstr(info->dlpi_name, "ld-linux-x86-64.so.2") != NULL) {
        o->ldso_addr = info->dlpi_addr;
        o->ldso_seen = 1;
    }
    return 0;
}

/* Is there a line of /proc/self/maps that starts at `addr` and names `needle`? */
static int mapped_at(unsigned long addr, const char *needle)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    int found = 0;
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f)) {
        if (strtoul(line, NULL, 16) == addr && strstr(line, needle))
            found = 1;
    }
    fclose(f);
    return found;
}

#define YESNO(c) ((c) ? "yes" : "no")

int main(int argc, char **argv)
{
    struct objs o = {0};
    (void)argc;
    dl_iterate_phdr(each, &o);
    const char *execfn = (const char *)getauxval(AT_EXECFN);
    const char *platform = (const char *)getauxval(AT_PLATFORM);
    printf("PIE: %s\n", YESNO(o.main_addr != 0));
    printf("AT_PHDR is the executable's program headers: %s\n",
           YESNO(getauxval(AT_PHDR) == (unsigned long)o.main_phdr));
    printf("AT_PHNUM: %s\n", YESNO(getauxval(AT_PHNUM) == (unsigned long)o.main_phnum));
    printf("AT_PHENT: %lu\n", getauxval(AT_PHENT));
    printf("AT_ENTRY is _start: %s\n", YESNO(getauxval(AT_ENTRY) == (unsigned long)_start));
    printf("AT_BASE is where ld.so was loaded: %s\n",
           YESNO(o.ldso_seen && getauxval(AT_BASE) == o.ldso_addr && o.ldso_addr != 0));
    printf("AT_BASE starts a mapping of ld-linux-x86-64.so.2: %s\n",
           YESNO(mapped_at(getauxval(AT_BASE), "ld-linux-x86-64.so.2") == 1));
    printf("AT_PAGESZ: %lu\n", getauxval(AT_PAGESZ));
    printf("AT_CLKTCK: %lu\n", getauxval(AT_CLKTCK));
    printf("AT_FLAGS: %lu\n", getauxval(AT_FLAGS));
    printf("AT_SECURE: %lu\n", getauxval(AT_SECURE));
    printf("AT_UID/EUID/GID/EGID match: %s\n",
           YESNO(getauxval(AT_UID) == getuid() && getauxval(AT_EUID) == geteuid() &&
                 getauxval(AT_GID) == getgid() && getauxval(AT_EGID) == getegid()));
    printf("AT_RANDOM set: %s\n", YESNO(getauxval(AT_RANDOM) != 0));
    printf("AT_EXECFN is argv[0]: %s\n", YESNO(execfn && strcmp(execfn, argv[0]) == 0));
    printf("AT_PLATFORM: %s\n", platform ? platform : "(none)");
    return 0;
}
