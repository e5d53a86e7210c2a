/* Exit status and stream ordering: stdout (full-buffered when not a terminal) and stderr
 * (unbuffered) written in turns, then a nonzero status from main. */
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv) {
    for (int i = 0; i < 5; i++) {
        printf("out %d\n", i);
        fprintf(stderr, "err %d\n", i);
    }
    write(1, "raw write\n", 10);
    write(2, "raw err\n", 8);
    return argc > 1 ? argv[1][0] : 42;
}
