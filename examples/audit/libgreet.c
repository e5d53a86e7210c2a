/* The demo builds this library twice: marked SHSTK (-fcf-protection=full
 * -Wl,-z,shstk) next to the "ready" program, and unmarked (-fcf-protection=none)
 * next to the "blocked" one. */
const char *greet(void)
{
    return "hello from libgreet.so\n";
}
