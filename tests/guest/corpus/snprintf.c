/* snprintf into small buffers: truncation, return value, NUL placement, size 0, asprintf,
 * and a long formatted message built piecewise. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
    char buf[16];
    for (size_t n = 0; n <= 16; n += 3) {
        memset(buf, '#', sizeof buf);
        int r = snprintf(buf, n, "%s-%d-%.2f", "value", 12345, 6.789);
        printf("n=%zu r=%d buf=[%.*s] nul_at=%zd\n", n, r, (int)sizeof buf, buf,
               n ? (ssize_t)(memchr(buf, 0, sizeof buf) ? (char *)memchr(buf, 0, sizeof buf) - buf : -1)
                 : (ssize_t)-2);
    }
    printf("size0=%d\n", snprintf(NULL, 0, "%d %s %f", 42, "abc", 1.5));
    char *s = NULL;
    int r = asprintf(&s, "%0*d|%-8s|%x", 10, 42, "pad", 0xbeef);
    printf("asprintf r=%d [%s]\n", r, s);
    free(s);
    char out[4096];
    size_t pos = 0;
    for (int i = 0; i < 300 && pos < sizeof out; i++)
        pos += (size_t)snprintf(out + pos, sizeof out - pos, "%d:%x;", i, i * i);
    printf("piecewise pos=%zu tail=[%s]\n", pos, out + strlen(out) - 20);
    char w[64];
    sprintf(w, "%08.3f|%+.0e|%#g", 3.14159, 12345.0, 2.0);
    printf("sprintf [%s]\n", w);
    return 0;
}
