/* qsort and bsearch over ints, strings and structs; stable-by-key check with tie-breaks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rec {
    int key;
    int idx;
    char name[8];
};

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}
static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}
static int cmp_rec(const void *a, const void *b) {
    const struct rec *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->idx - y->idx;
}

int main(void) {
    enum { N = 200000 };
    static int v[N];
    unsigned s = 1;
    for (int i = 0; i < N; i++) {
        s = s * 1664525u + 1013904223u;
        v[i] = (int)(s >> 4) % 1000000 - 500000;
    }
    qsort(v, N, sizeof v[0], cmp_int);
    int sorted = 1;
    long long sum = 0;
    for (int i = 0; i < N; i++) {
        if (i && v[i - 1] > v[i])
            sorted = 0;
        sum += v[i];
    }
    printf("ints sorted=%d min=%d max=%d median=%d sum=%lld\n", sorted, v[0], v[N - 1],
           v[N / 2], sum);
    int hits = 0;
    for (int k = -500000; k < 500000; k += 997)
        if (bsearch(&k, v, N, sizeof v[0], cmp_int))
            hits++;
    printf("bsearch hits=%d\n", hits);

    const char *words[] = {"pear", "apple", "fig", "banana", "cherry", "date", "elderberry",
                           "grape", "kiwi", "lemon", "mango", "Apple", "zucchini", ""};
    size_t nw = sizeof words / sizeof words[0];
    qsort(words, nw, sizeof words[0], cmp_str);
    for (size_t i = 0; i < nw; i++)
        printf("%s%s", i ? "," : "", words[i]);
    printf("\n");
    const char *key = "kiwi";
    const char **found = bsearch(&key, words, nw, sizeof words[0], cmp_str);
    printf("kiwi at %td\n", found ? found - words : -1);

    struct rec r[1000];
    for (int i = 0; i < 1000; i++) {
        r[i].key = (i * 37) % 10;
        r[i].idx = i;
        snprintf(r[i].name, sizeof r[i].name, "r%d", i);
    }
    qsort(r, 1000, sizeof r[0], cmp_rec);
    for (int i = 0; i < 1000; i += 111)
        printf("%d:%d:%s ", r[i].key, r[i].idx, r[i].name);
    printf("\n");
    return 0;
}
