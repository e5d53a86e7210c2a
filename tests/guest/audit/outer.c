#include "tiny.h"

const char *outer(void);

void _start(void)
{
    tiny_puts(outer());
    tiny_exit(0);
}
