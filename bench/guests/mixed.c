/* qsort with a callback, libm, malloc/free, string functions */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 20000;
    double *v = malloc(n * sizeof *v);
    srand(1);
    for (int i = 0; i < n; i++) v[i] = sin(rand() * 0.001) * exp(cos(i * 0.01));
    qsort(v, n, sizeof *v, cmp);
    double acc = 0;
    char buf[64];
    for (int i = 0; i < n; i++) {
        snprintf(buf, sizeof buf, "%.6f", v[i]);
        acc += strtod(buf, NULL) + sqrt(fabs(v[i])) + log1p(fabs(v[i]));
        char *p = malloc(16 + i % 64);
        memset(p, i, 16 + i % 64);
        free(p);
    }
    printf("%.3f\n", acc);
    return 0;
}
