/* getrandom/getentropy/arc4random-free randomness: prints lengths and sanity facts only. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

int main(void) {
    unsigned char a[64], b[64];
    ssize_t n1 = getrandom(a, sizeof a, 0);
    ssize_t n2 = getrandom(b, sizeof b, GRND_NONBLOCK);
    printf("getrandom 64 -> %zd, nonblock -> %zd, differ=%d\n", n1, n2, memcmp(a, b, 64) != 0);
    static unsigned char big[1 << 16];
    ssize_t n3 = getrandom(big, sizeof big, 0);
    int counts[256] = {0};
    for (size_t i = 0; i < sizeof big; i++)
        counts[big[i]]++;
    int empty = 0;
    for (int i = 0; i < 256; i++)
        empty += counts[i] == 0;
    printf("getrandom 65536 -> %zd, byte values never seen: %d\n", n3, empty);
    printf("getentropy 32 -> %d\n", getentropy(a, 32));
    errno = 0;
    int rc = getentropy(big, 257);
    printf("getentropy 257 -> %d EIO=%d\n", rc, errno == EIO);
    errno = 0;
    ssize_t n4 = getrandom(a, 8, 0x100);
    printf("getrandom bad flags -> %zd EINVAL=%d\n", n4, errno == EINVAL);
    printf("getrandom 0 bytes -> %zd\n", getrandom(a, 0, 0));
    return 0;
}
