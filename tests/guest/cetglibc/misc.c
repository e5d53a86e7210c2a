/* qsort with callbacks, atexit handlers, printf of floats. */
#include <math.h>
#include <stdlib.h>
#include "common.h"

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void bye1(void) { printf("atexit 1\n"); }
static void bye2(void) { printf("atexit 2, status %lu\n", cet_status()); }

int main(void) {
    double v[] = {3.25, -1.5, 2.0e10, 1e-7, 0.1, 42.0};
    qsort(v, 6, sizeof v[0], cmp);
    for (int i = 0; i < 6; i++) printf("%g %.3f %e\n", v[i], v[i], v[i]);
    printf("%.10f\n", 1.0 / 3.0);
    atexit(bye1);
    atexit(bye2);
    return 0;
}
