/* nanosleep interrupted by SIGALRM (no SA_RESTART): EINTR with time left;
 * then clock_nanosleep and a plain short sleep completing. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t got;

static void on_alarm(int sig) { (void)sig; got++; }

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    sigaction(SIGALRM, &sa, NULL);

    struct itimerval it;
    memset(&it, 0, sizeof it);
    it.it_value.tv_usec = 50000;
    setitimer(ITIMER_REAL, &it, NULL);

    struct timespec req = {5, 0}, rem = {0, 0};
    int r = nanosleep(&req, &rem);
    printf("nanosleep: r=%d errno=%s handler=%d rem>3s=%d\n", r,
           errno == EINTR ? "EINTR" : "other", (int)got, rem.tv_sec >= 3);

    setitimer(ITIMER_REAL, &it, NULL);
    req.tv_sec = 5;
    req.tv_nsec = 0;
    int e = clock_nanosleep(CLOCK_MONOTONIC, 0, &req, &rem);
    printf("clock_nanosleep: %s handler=%d\n", e == EINTR ? "EINTR" : "other", (int)got);

    req.tv_sec = 0;
    req.tv_nsec = 1000000;
    r = nanosleep(&req, NULL);
    printf("short nanosleep: r=%d\n", r);
    unsigned left = sleep(0);
    printf("sleep(0) = %u\n", left);
    return 0;
}
