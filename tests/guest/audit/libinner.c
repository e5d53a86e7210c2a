const char *inner(void)
{
    return "hello from libinner\n";
}
