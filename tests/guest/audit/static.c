/* A static program: glibc's static start-up only looks at its own property. */
#include "tiny.h"

void _start(void)
{
    tiny_puts("static\n");
    tiny_exit(0);
}
