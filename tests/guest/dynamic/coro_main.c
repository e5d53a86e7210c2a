/* Two generators on libcoro.so, interleaved by main. Marked SHSTK, like the library. */
#include <stdio.h>

#include "coro.h"

static void counter(struct coro *self, void *arg)
{
    const char *name = arg;
    for (int i = 0; i < 3; i++) {
        printf("%s %d\n", name, i);
        coro_yield(self);
    }
}

int main(void)
{
    struct coro *a = coro_new(counter, "ping");
    struct coro *b = coro_new(counter, "pong");
    int more_a = 1, more_b = 1;
    while (more_a || more_b) {
        if (more_a)
            more_a = coro_resume(a);
        if (more_b)
            more_b = coro_resume(b);
    }
    coro_free(a);
    coro_free(b);
    printf("both finished\n");
    return 0;
}
