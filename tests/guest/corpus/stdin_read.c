/* Reads stdin to the end: counts lines, words, bytes; echoes lines reversed; checksum. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lines = 0, words = 0, bytes = 0;
    unsigned long sum = 5381;
    while ((len = getline(&line, &cap, stdin)) != -1) {
        lines++;
        bytes += len;
        int inword = 0;
        for (ssize_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)line[i];
            sum = sum * 33 + c;
            if (isspace(c))
                inword = 0;
            else if (!inword) {
                inword = 1;
                words++;
            }
        }
        if (lines <= 5) {
            if (len && line[len - 1] == '\n')
                line[--len] = 0;
            for (ssize_t i = len - 1; i >= 0; i--)
                putchar(line[i]);
            putchar('\n');
        }
    }
    free(line);
    printf("lines=%ld words=%ld bytes=%ld sum=%lx eof=%d\n", lines, words, bytes, sum,
           feof(stdin));
    return lines == 0 ? 3 : 0;
}
