/* A program whose only dependency is libgreet.so (found through DT_RUNPATH $ORIGIN). */
#include "tiny.h"

const char *greet(void);

void _start(void)
{
    tiny_puts(greet());
    tiny_exit(0);
}
