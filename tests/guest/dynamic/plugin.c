/* A library loaded with dlopen (no libc, no dependencies): marked or not, by the test. */
int plugin_value(void)
{
    return PLUGIN_VALUE;
}
