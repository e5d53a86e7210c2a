/* argv and getenv: prints its arguments (not argv[0], which differs by how it was run) and
 * a few environment variables the test sets. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

int main(int argc, char **argv) {
    printf("argc=%d\n", argc);
    for (int i = 1; i < argc; i++)
        printf("argv[%d]=[%s] len=%zu\n", i, argv[i], strlen(argv[i]));
    printf("argv[argc]=%s\n", argv[argc] == NULL ? "NULL" : "non-NULL");
    const char *names[] = {"CORPUS_A", "CORPUS_EMPTY", "CORPUS_SPACES", "CORPUS_MISSING"};
    for (int i = 0; i < 4; i++) {
        const char *v = getenv(names[i]);
        printf("%s=%s%s%s\n", names[i], v ? "[" : "", v ? v : "(unset)", v ? "]" : "");
    }
    int found = 0;
    for (char **e = environ; *e; e++)
        if (strncmp(*e, "CORPUS_", 7) == 0)
            found++;
    printf("CORPUS_* in environ: %d\n", found);
    return argc;
}
