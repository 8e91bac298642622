/* POSIX timers: timer_create (SIGEV_SIGNAL), timer_settime, sigwaitinfo,
 * timer_getoverrun, timer_delete. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t fired;
static volatile int seen_value;

static void on_timer(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    fired++;
    seen_value = si->si_value.sival_int;
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_timer;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGRTMIN, &sa, NULL);

    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = SIGRTMIN;
    sev.sigev_value.sival_int = 1234;
    timer_t t;
    if (timer_create(CLOCK_MONOTONIC, &sev, &t) != 0) {
        perror("timer_create");
        return 1;
    }
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    its.it_value.tv_nsec = 10 * 1000 * 1000;
    its.it_interval.tv_nsec = 10 * 1000 * 1000;
    timer_settime(t, 0, &its, NULL);

    sigset_t none;
    sigemptyset(&none);
    while (fired < 4)
        sigsuspend(&none);
    printf("timer fired %d times, value %d\n", (int)fired, seen_value);

    memset(&its, 0, sizeof its);
    timer_settime(t, 0, &its, NULL);
    struct itimerspec cur;
    timer_gettime(t, &cur);
    printf("disarmed: %d\n", cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0);

    /* A second timer whose signal is waited for synchronously. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN + 1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    sev.sigev_signo = SIGRTMIN + 1;
    sev.sigev_value.sival_int = 99;
    timer_t t2;
    timer_create(CLOCK_REALTIME, &sev, &t2);
    its.it_value.tv_nsec = 5 * 1000 * 1000;
    timer_settime(t2, 0, &its, NULL);
    siginfo_t si;
    int sig = sigwaitinfo(&set, &si);
    printf("sigwaitinfo: signal RTMIN+%d, value %d, SI_TIMER=%d\n", sig - SIGRTMIN,
           si.si_value.sival_int, si.si_code == SI_TIMER);
    timer_delete(t2);
    timer_delete(t);
    printf("deleted\n");
    return 0;
}
