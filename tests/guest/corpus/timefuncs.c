/* Time functions, deterministic facts only: gmtime/strftime/timegm of fixed instants,
 * mktime in TZ=UTC, monotonic clocks that do not go backwards, nanosleep returns 0, time()
 * agrees with gettimeofday to within a few seconds, clock_getres. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

int main(void) {
    setenv("TZ", "UTC", 1);
    tzset();
    time_t fixed[] = {0, 86399, 951782400, 1234567890, 2147483647, 4102444800LL};
    for (unsigned i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        struct tm tm;
        gmtime_r(&fixed[i], &tm);
        char s[128];
        strftime(s, sizeof s, "%Y-%m-%d %H:%M:%S %a %b %j %U %Z", &tm);
        printf("%lld -> %s yday=%d wday=%d back=%lld\n", (long long)fixed[i], s, tm.tm_yday,
               tm.tm_wday, (long long)timegm(&tm));
    }
    struct tm t = {.tm_year = 124, .tm_mon = 1, .tm_mday = 29, .tm_hour = 12};
    time_t mk = mktime(&t);
    printf("mktime 2024-02-29 12:00 UTC = %lld wday=%d\n", (long long)mk, t.tm_wday);
    t.tm_mday += 1;
    mk = mktime(&t);
    printf("normalized: %d-%02d-%02d\n", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday);
    char ab[64];
    struct tm tm0;
    time_t z = 0;
    printf("asctime=%s", asctime_r(gmtime_r(&z, &tm0), ab));
    struct tm parsed;
    memset(&parsed, 0, sizeof parsed);
    strptime("2001-09-09 01:46:40", "%Y-%m-%d %H:%M:%S", &parsed);
    printf("strptime -> %lld\n", (long long)timegm(&parsed));
    printf("difftime=%.1f\n", difftime(1000, 250));

    struct timespec a, b, res;
    clock_gettime(CLOCK_MONOTONIC, &a);
    volatile unsigned long spin = 0;
    for (int i = 0; i < 1000000; i++)
        spin += (unsigned long)i;
    struct timespec nap = {0, 1000000};
    int rc = nanosleep(&nap, NULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    long long dt = (b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
    printf("nanosleep rc=%d monotonic advanced>=1ms: %d\n", rc, dt >= 1000000);
    rc = clock_getres(CLOCK_MONOTONIC, &res);
    printf("getres monotonic rc=%d positive=%d\n", rc, res.tv_sec > 0 || res.tv_nsec > 0);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    time_t now = time(NULL);
    printf("time~gettimeofday: %d, after 2020: %d\n", now - tv.tv_sec <= 2 && now >= tv.tv_sec,
           now > 1577836800);
    struct timespec cpu1, cpu2;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu1);
    for (int i = 0; i < 1000000; i++)
        spin += (unsigned long)i;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu2);
    printf("cputime non-decreasing: %d\n",
           cpu2.tv_sec > cpu1.tv_sec || (cpu2.tv_sec == cpu1.tv_sec && cpu2.tv_nsec >= cpu1.tv_nsec));
    return 0;
}
