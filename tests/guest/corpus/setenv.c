/* Environment manipulation: setenv (overwrite or not), unsetenv, putenv, clearenv, and
 * environ seen by a walk. Works only on variables the program itself creates. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

static void show(const char *k) {
    const char *v = getenv(k);
    printf("%s=%s\n", k, v ? v : "(unset)");
}

static int count_prefix(const char *p) {
    int n = 0;
    for (char **e = environ; e && *e; e++)
        n += strncmp(*e, p, strlen(p)) == 0;
    return n;
}

int main(void) {
    show("SETENV_TEST");
    printf("setenv -> %d\n", setenv("SETENV_TEST", "first", 0));
    show("SETENV_TEST");
    setenv("SETENV_TEST", "second", 0);
    show("SETENV_TEST");
    setenv("SETENV_TEST", "third", 1);
    show("SETENV_TEST");
    static char pe[] = "SETENV_PUT=via putenv";
    putenv(pe);
    show("SETENV_PUT");
    pe[11] = 'V';
    show("SETENV_PUT");
    for (int i = 0; i < 100; i++) {
        char k[32], v[32];
        snprintf(k, sizeof k, "SETENV_MANY_%d", i);
        snprintf(v, sizeof v, "%d", i * i);
        setenv(k, v, 1);
    }
    printf("many=%d\n", count_prefix("SETENV_MANY_"));
    show("SETENV_MANY_77");
    for (int i = 0; i < 100; i += 2) {
        char k[32];
        snprintf(k, sizeof k, "SETENV_MANY_%d", i);
        unsetenv(k);
    }
    printf("after unset half=%d\n", count_prefix("SETENV_MANY_"));
    printf("unsetenv missing -> %d\n", unsetenv("SETENV_NEVER_SET"));
    errno = 0;
    int rc = setenv("BAD=NAME", "x", 1);
    printf("setenv bad name -> %d EINVAL=%d\n", rc, errno == EINVAL);
    printf("preexisting CORPUS_KEEP: ");
    show("CORPUS_KEEP");
    clearenv();
    printf("after clearenv: environ empty=%d\n", environ == NULL || environ[0] == NULL);
    setenv("ONLY", "one", 1);
    printf("count=%d first=%s\n", count_prefix(""), environ[0]);
    return 0;
}
