/* The dependency of libdyn.so: a second level in the initial closure. No libc. */
long inner_add(long a, long b)
{
    return a + b;
}
