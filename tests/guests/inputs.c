/* Everything nondeterministic at once: stdin, the clock, random bytes, the
 * pid and the environment.  Replaying a recording of it must print the same
 * bytes without stdin, later in time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int main(void)
{
    char buf[4096];
    size_t total = 0;
    unsigned sum = 0;
    ssize_t n;
    while ((n = read(0, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++)
            sum = sum * 31 + (unsigned char)buf[i];
        total += (size_t)n;
    }
    printf("stdin: %zu bytes, hash %08x\n", total, sum);

    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct timespec mono;
    clock_gettime(CLOCK_MONOTONIC, &mono);
    printf("time: %ld.%06ld monotonic %ld.%09ld\n", (long)tv.tv_sec, (long)tv.tv_usec,
           (long)mono.tv_sec, mono.tv_nsec);

    unsigned char rnd[16];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        return 1;
    printf("random:");
    for (size_t i = 0; i < sizeof rnd; i++)
        printf(" %02x", rnd[i]);
    printf("\n");
    srand((unsigned)tv.tv_usec);
    printf("rand: %d pid: %d\n", rand(), (int)getpid());
    const char *home = getenv("HOME");
    printf("HOME=%s\n", home ? home : "(unset)");
    return (int)(total % 7);
}
