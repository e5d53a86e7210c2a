/* A shared library of the "ready" closure: the executable calls it, it calls back into
 * the executable (an indirect call) and into its own dependency, libinner.so. Built
 * marked (-fcf-protection=full -Wl,-z,shstk) or not, by the test. No libc. */
long inner_add(long a, long b);

const char *lib_name(void)
{
    return "libdyn";
}

long lib_sum(long n, long (*f)(long))
{
    long s = 0;
    for (long i = 1; i <= n; i++)
        s = inner_add(s, f(i));
    return s;
}
