/* Prints libgreet's message; no libc, so its closure is libgreet (+ ld.so). */
#include "tiny.h"

const char *greet(void);

void _start(void)
{
    tiny_puts(greet());
    tiny_exit(0);
}
