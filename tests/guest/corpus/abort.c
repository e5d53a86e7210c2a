/* abort(): the process dies of SIGABRT (exit status 134 as seen by a shell) after stdout is
 * flushed by us and stderr carries our message only. */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    printf("before abort\n");
    fflush(stdout);
    fprintf(stderr, "fatal: giving up\n");
    abort();
}
