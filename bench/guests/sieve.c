/* tight loops, almost no calls */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 2000000;
    char *s = malloc(n + 1);
    memset(s, 1, n + 1);
    s[0] = s[1] = 0;
    for (long i = 2; i * i <= n; i++)
        if (s[i])
            for (long j = i * i; j <= n; j += i) s[j] = 0;
    long c = 0;
    for (long i = 0; i <= n; i++) c += s[i];
    printf("%ld\n", c);
    return 0;
}
