/* MAP_FIXED over part of an existing mapping splits and replaces it (issue 16): the
 * shape ld.so makes for a library (one file mapping, then MAP_FIXED pieces and a
 * zero-filled tail over it, past the end of the file), anonymous mappings cut in the
 * middle, and a MAP_FIXED spanning two mappings. Prints /proc/self/maps lines of each
 * area relative to its base, and the bytes read through each piece. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PG 4096UL

static void show(const char *what, char *base, size_t len) {
    char line[512];
    FILE *f = fopen("/proc/self/maps", "r");
    unsigned long lo = (unsigned long)base, hi = lo + len;
    printf("%s:\n", what);
    while (fgets(line, sizeof line, f)) {
        unsigned long s, e, off;
        char perms[8], path[256] = "";
        if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %255s", &s, &e, perms, &off, path) < 4)
            continue;
        if (e <= lo || s >= hi)
            continue;
        printf("  +%lx-+%lx %s %lx %s\n", (s - lo) / PG, (e - lo) / PG, perms, off / PG,
               strchr(path, '/') ? strrchr(path, '/') + 1 : path);
    }
    fclose(f);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *name = argc > 1 ? argv[1] : "mapfixed.data";
    int fd = open(name, O_RDWR | O_CREAT | O_TRUNC, 0644);
    for (unsigned i = 0; i < 5 * PG + 100; i++) {
        char c = 'a' + (char)(i / PG);
        write(fd, &c, 1);
    }
    /* ld.so's shape: 8 pages of a 5-page-and-a-bit file, read+exec */
    char *lib = mmap(NULL, 8 * PG, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
    /* a data piece at page 3 from file page 3, writable */
    mmap(lib + 3 * PG, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, 3 * PG);
    /* the zero-filled tail starting exactly at the first page wholly past the file */
    char *bss = mmap(lib + 6 * PG, 2 * PG, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS, -1, 0);
    bss[0] = 1;
    bss[2 * PG - 1] = 2;
    lib[3 * PG] = 'X';
    printf("lib %c %c %c %c bss %d %d\n", lib[0], lib[2 * PG], lib[3 * PG], lib[5 * PG + 99],
           bss[0], bss[2 * PG - 1]);
    show("library", lib, 8 * PG);

    /* anonymous: 16 pages, replace pages 4..6 and 10 with other anonymous memory */
    char *anon = mmap(NULL, 16 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                      -1, 0);
    memset(anon, 7, 16 * PG);
    mmap(anon + 4 * PG, 3 * PG, PROT_READ, MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS, -1, 0);
    mmap(anon + 10 * PG, PG, PROT_NONE, MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS, -1, 0);
    printf("anon %d %d %d %d\n", anon[3 * PG], anon[4 * PG], anon[7 * PG], anon[15 * PG]);
    show("anonymous", anon, 16 * PG);

    /* a file mapping spanning the end of one mapping and the start of the next */
    munmap(anon + 12 * PG, PG);
    mmap(anon + 11 * PG, 3 * PG, PROT_READ, MAP_SHARED | MAP_FIXED, fd, PG);
    printf("span %c %c %c %d\n", anon[11 * PG], anon[12 * PG], anon[13 * PG], anon[14 * PG]);
    show("spanning", anon, 16 * PG);
    unlink(name);
    return 0;
}
