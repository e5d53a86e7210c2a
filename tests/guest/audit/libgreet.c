/* A shared library; the tests build it marked (-Wl,-z,shstk) and unmarked. */
const char *greet(void)
{
    return "hello from libgreet\n";
}
