/* stdio: setvbuf modes, fputs/fputc/puts, fgets from an in-memory stream, fmemopen,
 * open_memstream, ungetc, fscanf, stderr interleaving with an unbuffered stream. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char outbuf[64];

int main(void) {
    setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
    for (int i = 0; i < 20; i++) {
        fputs("line ", stdout);
        fputc('0' + i % 10, stdout);
        fputc('\n', stdout);
    }
    fflush(stdout);
    setvbuf(stdout, NULL, _IOLBF, 0);
    puts("line buffered now");

    char text[] = "alpha beta\ngamma\n\ndelta 42 3.5\nlast line without newline";
    FILE *in = fmemopen(text, strlen(text), "r");
    char line[16];
    int n = 0;
    while (fgets(line, sizeof line, in)) {
        size_t len = strlen(line);
        printf("fgets %d: len=%zu nl=%d [%.*s]\n", n++, len, line[len - 1] == '\n',
               (int)(len - (line[len - 1] == '\n')), line);
    }
    printf("feof=%d ferror=%d\n", feof(in), ferror(in));
    rewind(in);
    char w1[16], w2[16];
    int num;
    double d;
    if (fscanf(in, "%15s %15s %*s %15s %d %lf", w1, w2, w1, &num, &d) == 5)
        printf("fscanf: %s %s %d %.2f\n", w1, w2, num, d);
    int c = fgetc(in);
    ungetc('X', in);
    printf("ungetc: %c then %c\n", c == ' ' ? '_' : c, fgetc(in));
    fclose(in);

    char *mem = NULL;
    size_t memlen = 0;
    FILE *ms = open_memstream(&mem, &memlen);
    for (int i = 0; i < 1000; i++)
        fprintf(ms, "%d,", i);
    fclose(ms);
    printf("memstream: len=%zu head=%.20s tail=%s\n", memlen, mem, mem + memlen - 8);
    free(mem);

    fprintf(stderr, "to stderr 1\n");
    printf("to stdout after stderr\n");
    fflush(stdout);
    fputs("to stderr 2\n", stderr);
    return 0;
}
