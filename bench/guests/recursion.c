/* Recursion depth growth curve: N frames deep, then all the way back (shadow stack
 * grows with it: 8 bytes per frame). */
#include <stdio.h>
#include <stdlib.h>
__attribute__((noinline)) static long down(long n) {
    /* a volatile local read after the call: gcc can neither turn the recursion into a
     * loop (it does for `down(n - 1) + (n & 1)`) nor drop the frame */
    volatile long mine = n & 1;
    if (n == 0) return 0;
    long r = down(n - 1);
    return r + mine;
}
int main(int argc, char **argv) {
    printf("%ld\n", down(argc > 1 ? atol(argv[1]) : 1000));
    return 0;
}
