/* Built twice by the sysroot tests: the copy inside the root says "inside the root", the
 * one with the same soname outside it says "outside the root (WRONG)". */
const char *sr_where(void)
{
    return SR_WHERE;
}
