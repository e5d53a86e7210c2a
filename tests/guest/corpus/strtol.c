/* strtol/strtoul/strtoll/strtod/strtof/atoi: bases, signs, overflow (ERANGE), end pointers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static void tl(const char *s, int base) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, base);
    printf("strtol(\"%s\",%d)=%ld end=+%td errno=%d\n", s, base, v, end - s, errno);
}

static void td(const char *s) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    printf("strtod(\"%s\")=%.17g end=+%td errno=%d\n", s, v, end - s, errno);
}

int main(void) {
    tl("12345", 10);
    tl("   -42xyz", 10);
    tl("0x1fF", 16);
    tl("0x1fF", 0);
    tl("0777", 0);
    tl("1010", 2);
    tl("zz", 36);
    tl("9223372036854775807", 10);
    tl("9223372036854775808", 10);
    tl("-9223372036854775809", 10);
    tl("", 10);
    tl("+", 10);
    char *end;
    errno = 0;
    unsigned long u = strtoul("-1", &end, 10);
    printf("strtoul(-1)=%lu errno=%d\n", u, errno);
    errno = 0;
    long long ll = strtoll("123456789012345678", NULL, 10);
    printf("strtoll=%lld errno=%d\n", ll, errno);
    errno = 0;
    strtol("5", NULL, 99);
    printf("bad base errno=%d\n", errno);
    td("3.14159");
    td("  -2.5e-3rest");
    td("1e308");
    td("1e309");
    td("1e-400");
    td("0x1.8p3");
    td("inf");
    td("-Infinity");
    td("nan");
    td(".5");
    td("abc");
    td("4.9406564584124654e-324");
    printf("strtof=%.9g strtold=%.21Lg\n", strtof("0.1", NULL), strtold("0.1", NULL));
    printf("atoi=%d atol=%ld atof=%g\n", atoi("  77abc"), atol("-123456789"), atof("2.5e2"));
    return 0;
}
