/* time_random: time(), gettimeofday, clock_gettime(REALTIME/MONOTONIC),
 * getrandom, rand() seeded from time, nanosleep(10 ms).  By default prints
 * only deterministic facts; with argv[1] == "show" also prints raw values
 * (useful for record/replay tests). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/time.h>
#include <sys/random.h>

static long long ts_ns(const struct timespec *t)
{
    return (long long)t->tv_sec * 1000000000LL + t->tv_nsec;
}

int main(int argc, char **argv)
{
    int show = argc > 1 && strcmp(argv[1], "show") == 0;

    time_t t = time(NULL);
    /* plausible: after 2020-01-01 and before 2100 (32-bit time_t wraps 2038,
     * but then it would be negative anyway) */
    int time_ok = t > 1577836800 && t != (time_t)-1;
    printf("time %s\n", time_ok ? "ok" : "BAD");

    struct timeval tv;
    int r = gettimeofday(&tv, NULL);
    int tod_ok = r == 0 && tv.tv_usec >= 0 && tv.tv_usec < 1000000 &&
                 tv.tv_sec >= t && tv.tv_sec - t < 10;
    printf("gettimeofday %s\n", tod_ok ? "ok" : "BAD");

    struct timespec rt, m1, m2;
    int rr = clock_gettime(CLOCK_REALTIME, &rt);
    int rt_ok = rr == 0 && rt.tv_nsec >= 0 && rt.tv_nsec < 1000000000 &&
                rt.tv_sec >= t && rt.tv_sec - t < 10;
    printf("clock_gettime(REALTIME) %s\n", rt_ok ? "ok" : "BAD");

    int rm1 = clock_gettime(CLOCK_MONOTONIC, &m1);

    unsigned char rnd[16];
    memset(rnd, 0, sizeof rnd);
    ssize_t g = getrandom(rnd, sizeof rnd, 0);
    printf("getrandom returned %zd\n", g);

    srand((unsigned)t);
    int r1 = rand(), r2 = rand();
    printf("rand in range: %s\n",
           r1 >= 0 && r1 <= RAND_MAX && r2 >= 0 && r2 <= RAND_MAX ? "yes" : "no");

    struct timespec req = {0, 10 * 1000 * 1000}, rem = {0, 0};
    int ns = nanosleep(&req, &rem);
    printf("nanosleep returned %d\n", ns);

    int rm2 = clock_gettime(CLOCK_MONOTONIC, &m2);
    long long d = ts_ns(&m2) - ts_ns(&m1);
    printf("clock_gettime(MONOTONIC) %s\n", rm1 == 0 && rm2 == 0 ? "ok" : "BAD");
    printf("monotonic non-decreasing: %s\n", d >= 0 ? "yes" : "NO");
    /* Whether >= 10 ms elapsed depends on whether the emulator fakes time;
     * only reported with "show". */

    if (show) {
        printf("raw time=%lld\n", (long long)t);
        printf("raw gettimeofday=%lld.%06ld\n", (long long)tv.tv_sec, (long)tv.tv_usec);
        printf("raw realtime=%lld.%09ld\n", (long long)rt.tv_sec, rt.tv_nsec);
        printf("raw monotonic1=%lld.%09ld\n", (long long)m1.tv_sec, m1.tv_nsec);
        printf("raw monotonic2=%lld.%09ld\n", (long long)m2.tv_sec, m2.tv_nsec);
        printf("raw monotonic delta ns=%lld (slept >= 10ms: %s)\n", d,
               d >= 10000000LL ? "yes" : "no");
        printf("raw getrandom=");
        for (unsigned i = 0; i < sizeof rnd; i++)
            printf("%02x", rnd[i]);
        printf("\n");
        printf("raw rand=%d %d\n", r1, r2);
    }
    return 0;
}
