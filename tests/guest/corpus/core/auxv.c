/* The auxiliary vector, through getauxval: each entry Linux gives a static program is
 * there and has the right value. Prints booleans only. */
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

extern char _start[];
extern const ElfW(Ehdr) __ehdr_start;

static unsigned long get(unsigned long type, int *present) {
    errno = 0;
    unsigned long v = getauxval(type);
    *present = errno != ENOENT;
    return v;
}

#define CHECK(name, cond)                                                                 \
    do {                                                                                  \
        int present;                                                                      \
        unsigned long v = get(name, &present);                                            \
        (void)v;                                                                          \
        printf("%-12s present=%d ok=%d\n", #name, present, present && (cond));            \
    } while (0)

int main(int argc, char **argv) {
    (void)argc;
    const ElfW(Phdr) *ph = (const ElfW(Phdr) *)getauxval(AT_PHDR);
    CHECK(AT_PHDR, ph == (const ElfW(Phdr) *)((const char *)&__ehdr_start + __ehdr_start.e_phoff));
    CHECK(AT_PHNUM, v == __ehdr_start.e_phnum);
    CHECK(AT_PHENT, v == sizeof(ElfW(Phdr)));
    CHECK(AT_PAGESZ, v == 4096);
    CHECK(AT_ENTRY, v == (unsigned long)_start);
    CHECK(AT_RANDOM, v != 0 && v % 1 == 0);
    CHECK(AT_HWCAP, v != 0); /* glibc answers its own HWCAP_X86_64 bits, not the kernel's */
    CHECK(AT_HWCAP2, 1);
    CHECK(AT_EXECFN, strcmp((const char *)v, argv[0]) == 0);
    CHECK(AT_PLATFORM, strcmp((const char *)v, "x86_64") == 0);
    CHECK(AT_UID, v == getuid());
    CHECK(AT_EUID, v == geteuid());
    CHECK(AT_GID, v == getgid());
    CHECK(AT_EGID, v == getegid());
    CHECK(AT_SECURE, v == 0);
    CHECK(AT_CLKTCK, v == 100);
    CHECK(AT_FLAGS, v == 0);
    int present;
    get(AT_BASE, &present);
    printf("AT_BASE present=%d (0 for a static non-PIE program)\n", present);
    const unsigned char *rnd = (const unsigned char *)getauxval(AT_RANDOM);
    int nonzero = 0;
    for (int i = 0; i < 16; i++)
        nonzero |= rnd[i];
    printf("AT_RANDOM 16 bytes readable, not all zero: %d\n", nonzero != 0);
    return 0;
}
