/* malloc-heavy: many sizes, realloc growth and shrink, calloc zeroing, free in scrambled
 * order, large blocks glibc serves with mmap, memalign/posix_memalign. */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 1500

static unsigned rng = 12345;
static unsigned next(void) { return rng = rng * 1103515245u + 12345u; }

int main(void) {
    static unsigned char *blocks[N];
    static size_t sizes[N];
    unsigned long check = 0;
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++) {
            size_t sz = (next() >> 8) % (i % 50 == 0 ? 70000 : 600) + 1;
            blocks[i] = malloc(sz);
            if (!blocks[i]) {
                printf("malloc(%zu) failed\n", sz);
                return 1;
            }
            sizes[i] = sz;
            memset(blocks[i], (i + round) & 0xff, sz);
        }
        for (int i = 0; i < N; i += 3) {
            size_t nsz = sizes[i] * 2 + 17;
            unsigned char *p = realloc(blocks[i], nsz);
            for (size_t j = 0; j < sizes[i]; j++)
                if (p[j] != ((i + round) & 0xff)) {
                    printf("realloc lost data at %d\n", i);
                    return 1;
                }
            memset(p + sizes[i], 0xAB, nsz - sizes[i]);
            blocks[i] = p;
            sizes[i] = nsz;
        }
        for (int i = 1; i < N; i += 7) {
            blocks[i] = realloc(blocks[i], sizes[i] / 2 + 1);
            sizes[i] = sizes[i] / 2 + 1;
        }
        for (int i = 0; i < N; i++)
            for (size_t j = 0; j < sizes[i]; j += 97)
                check += blocks[i][j];
        for (int k = 0; k < N; k++) {
            int i = (k * 7919) % N;
            free(blocks[i]);
        }
    }
    printf("checksum %lu\n", check);

    for (int i = 0; i < 30; i++) {
        size_t n = (size_t)(i + 1) * 700;
        int *z = calloc(n, sizeof *z);
        for (size_t j = 0; j < n; j++)
            if (z[j] != 0) {
                printf("calloc not zero\n");
                return 1;
            }
        for (size_t j = 0; j < n; j++)
            z[j] = (int)j;
        free(z);
    }
    printf("calloc ok\n");

    /* Above the mmap threshold (128 KiB): served by mmap, returned by munmap. */
    for (int i = 0; i < 8; i++) {
        size_t big = ((size_t)1 << 18) * (i % 4 + 1) + 4096 * (size_t)i;
        char *p = malloc(big);
        memset(p, 0x5A, big);
        p = realloc(p, big * 2);
        if (p[big - 1] != 0x5A) {
            printf("big realloc lost data\n");
            return 1;
        }
        p[big * 2 - 1] = 1;
        free(p);
    }
    char *huge = malloc((size_t)64 << 20);
    huge[0] = 1;
    huge[((size_t)64 << 20) - 1] = 2;
    printf("huge %d %d\n", huge[0], huge[((size_t)64 << 20) - 1]);
    free(huge);

    for (size_t align = 16; align <= 65536; align *= 4) {
        void *p = memalign(align, 1000);
        void *q = NULL;
        int rc = posix_memalign(&q, align, 3000);
        printf("align %zu: memalign %s posix_memalign rc=%d %s\n", align,
               ((uintptr_t)p % align) ? "BAD" : "ok", rc, ((uintptr_t)q % align) ? "BAD" : "ok");
        free(p);
        free(q);
    }
    void *a = aligned_alloc(4096, 8192);
    printf("aligned_alloc %s usable>=8192: %d\n", ((uintptr_t)a % 4096) ? "BAD" : "ok",
           malloc_usable_size(a) >= 8192);
    free(a);
    printf("malloc(0) %s, free(NULL) ok\n", malloc(0) ? "non-NULL" : "NULL");
    free(NULL);
    return 0;
}
