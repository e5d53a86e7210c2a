/* string.h: copy, compare, search, tokenize, memory functions on overlapping and unaligned
 * buffers (the SSE2 variants glibc selects from CPUID). */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int main(void) {
    char buf[128];
    strcpy(buf, "Hello");
    strcat(buf, ", ");
    strncat(buf, "World!!!", 6);
    printf("strcpy/strcat: [%s] len=%zu\n", buf, strlen(buf));
    printf("strcmp: %d %d %d strncmp=%d strcasecmp=%d\n", strcmp("abc", "abd") < 0,
           strcmp("b", "a") > 0, strcmp("same", "same"), strncmp("abcdef", "abcxyz", 3),
           strcasecmp("HeLLo", "hello"));
    printf("strchr=%s strrchr=%s strstr=%s strpbrk=%s\n", strchr(buf, 'o'), strrchr(buf, 'o'),
           strstr(buf, "Wor"), strpbrk(buf, ",!"));
    printf("strspn=%zu strcspn=%zu strnlen=%zu\n", strspn("aaabbbccc", "ab"),
           strcspn("hello world", " "), strnlen("abcdef", 3));
    char tok[] = "  one,two;;three , four  ";
    char *save;
    int i = 0;
    for (char *t = strtok_r(tok, " ,;", &save); t; t = strtok_r(NULL, " ,;", &save))
        printf("tok%d=[%s] ", i++, t);
    printf("\n");
    char *dup = strdup("duplicate me");
    char *ndup = strndup("duplicate me", 9);
    printf("strdup=[%s] strndup=[%s]\n", dup, ndup);
    free(dup);
    free(ndup);

    /* Memory functions across alignments and lengths. */
    static unsigned char a[4096], b[4096];
    unsigned long sum = 0;
    for (int off = 0; off < 33; off++)
        for (int len = 0; len < 300; len += 7) {
            memset(a + off, off + len, len);
            memcpy(b + (off * 3) % 17, a + off, len);
            sum += memcmp(a + off, b + (off * 3) % 17, len) == 0;
            memmove(a + off + 5, a + off, len);
            sum += a[off + 5 + len / 2];
            const unsigned char *p = memchr(a + off, off + len + 1, len);
            sum += p ? (unsigned long)(p - a) : 1;
        }
    printf("mem sum=%lu\n", sum);
    char ov[] = "0123456789abcdefghij";
    memmove(ov + 3, ov, 10);
    printf("memmove fwd=[%s]\n", ov);
    memmove(ov, ov + 5, 10);
    printf("memmove back=[%s]\n", ov);
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    big[3000] = 'y';
    printf("strlen big=%zu strchr y at %td memrchr x at %td\n", strlen(big),
           strchr(big, 'y') - big, (char *)memrchr(big, 'x', 4999) - big);
    char up[] = "Mixed Case 123";
    for (char *p = up; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    printf("upper=[%s]\n", up);
    printf("ffs(0x80)=%d strverscmp=%d\n", ffs(0x80), strverscmp("file9", "file10") < 0);
    return 0;
}
