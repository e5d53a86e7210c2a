/* atexit/on_exit handlers run in reverse order at exit(), with stdout flushed after them;
 * the exit status comes from exit(). */
#include <stdio.h>
#include <stdlib.h>

static void h1(void) { printf("handler 1\n"); }
static void h2(void) { printf("handler 2\n"); }
static void h3(int status, void *arg) { printf("on_exit status=%d arg=%s\n", status, (char *)arg); }
static void late(void) {
    printf("registered from a handler? no: registered last, runs first\n");
}

__attribute__((destructor)) static void dtor(void) { printf("destructor\n"); }
__attribute__((constructor)) static void ctor(void) { printf("constructor\n"); }

int main(void) {
    atexit(h1);
    atexit(h2);
    on_exit(h3, "xyz");
    atexit(late);
    printf("main done, buffered");
    exit(5);
}
