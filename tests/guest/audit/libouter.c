/* Needs libinner: lets tests check breadth-first order and DT_RPATH inheritance. */
const char *inner(void);

const char *outer(void)
{
    return inner();
}
