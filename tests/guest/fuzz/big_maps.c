/* big_maps: mappings and heap growth larger than any host has; each line is what the
 * call gave ("ok" or the errno name), never a crash of the emulator. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void show(const char *what, void *p) {
    printf("%s: %s\n", what, p == MAP_FAILED ? strerror(errno) : "ok");
}

int main(void) {
    size_t sizes[] = {1UL << 36, 1UL << 40, 1UL << 44, 1UL << 46, 1UL << 47};
    for (int i = 0; i < 5; i++) {
        char name[64];
        void *p = mmap(0, sizes[i], PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        snprintf(name, sizeof name, "rw 2^%d", 36 + 4 * i - (i == 4 ? 3 : 0));
        show(name, p);
        if (p != MAP_FAILED) munmap(p, sizes[i]);
        p = mmap(0, sizes[i], PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        snprintf(name, sizeof name, "none 2^%d", 36 + 4 * i - (i == 4 ? 3 : 0));
        show(name, p);
        if (p != MAP_FAILED) munmap(p, sizes[i]);
    }
    void *b = sbrk(0);
    show("brk +2^40", sbrk(1L << 40) == (void *)-1 ? MAP_FAILED : b);
    /* many 64 GiB maps: the host's address space must not run out first */
    int n = 0;
    while (n < 4000 && mmap(0, 1UL << 36, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                              -1, 0) != MAP_FAILED)
        n++;
    printf("64 GiB PROT_NONE maps: %s after %s\n", strerror(errno), n > 1000 ? "many" : "few");
    return 0;
}
