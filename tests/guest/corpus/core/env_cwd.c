/* The guest's cwd and environment: prints getcwd() and the variables named in argv. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    char cwd[PATH_MAX];
    printf("cwd=%s\n", getcwd(cwd, sizeof cwd) ? cwd : "(error)");
    for (int i = 1; i < argc; i++) {
        const char *v = getenv(argv[i]);
        printf("%s=%s\n", argv[i], v ? v : "(unset)");
    }
    return 0;
}
