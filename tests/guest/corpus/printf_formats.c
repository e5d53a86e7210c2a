/* printf conversions: integers, floats (f/e/g/a), widths, precisions, flags, %n. */
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>

int main(void) {
    int n = 0;
    printf("[%d] [%i] [%u] [%x] [%X] [%o] [%#x] [%#o]\n", -42, 42, 42u, 255, 255, 8, 255, 8);
    printf("[%5d] [%-5d] [%05d] [%+d] [% d] [%.3d]\n", 42, 42, 42, 42, 42, 7);
    printf("[%ld] [%lld] [%lu] [%zu] [%jd]\n", LONG_MIN, LLONG_MAX, ULONG_MAX, (size_t)12345,
           (intmax_t)-1);
    printf("[%" PRId64 "] [%" PRIx64 "] [%hhd] [%hd]\n", INT64_MIN, UINT64_MAX, (char)300,
           (short)70000);
    printf("[%f] [%.2f] [%10.4f] [%-10.1f] [%e] [%E] [%g] [%G]\n", 3.14159265358979, 2.71828,
           1.5, -0.25, 123456.789, 0.000123, 1e-10, 1e20);
    printf("[%a] [%A] [%.3a]\n", 1.0, 255.5, 0.1);
    printf("[%g] [%g] [%g] [%f] [%f]\n", 100000.0, 1000000.0, 0.0001, INFINITY, -INFINITY);
    printf("[%f] [%F] [%e]\n", NAN, -NAN, 0.0);
    printf("[%.0f] [%.0f] [%.0f] [%.20f]\n", 0.5, 1.5, 2.5, 0.1);
    printf("[%Lf] [%Le] [%.30Lg]\n", 1.0L / 3, 2.0L / 3, 1.0L / 7);
    printf("[%s] [%10s] [%-10s] [%.3s] [%c] [%%]\n", "str", "right", "left", "truncate", 'Z');
    printf("[%*d] [%-*d] [%.*f]%n\n", 6, 1, 6, 2, 3, 3.14159, &n);
    printf("n=%d\n", n);
    printf("[%'d] [%5.1s]\n", 1234567, "abc");
    printf("%.17g %.17g %.17g\n", 0.1 + 0.2, 1.0 / 3.0, 2.0 / 3.0);
    printf("%.15e %.15e\n", 6.02214076e23, 1.602176634e-19);
    printf("%f %f\n", (double)3.4028234663852886e38f, 1e300 * 10);
    return 0;
}
