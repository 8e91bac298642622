/* alarm and setitimer(ITIMER_REAL) with a pause loop. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static volatile sig_atomic_t ticks;

static void on_alarm(int sig) { (void)sig; ticks++; }

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);

    alarm(1);
    pause();
    printf("alarm: %d tick\n", (int)ticks);

    struct itimerval it;
    memset(&it, 0, sizeof it);
    it.it_interval.tv_usec = 20000;
    it.it_value.tv_usec = 20000;
    setitimer(ITIMER_REAL, &it, NULL);
    ticks = 0;
    while (ticks < 5)
        pause();
    memset(&it, 0, sizeof it);
    setitimer(ITIMER_REAL, &it, NULL);
    getitimer(ITIMER_REAL, &it);
    printf("setitimer: %d ticks, disarmed=%d\n", (int)ticks,
           it.it_value.tv_sec == 0 && it.it_value.tv_usec == 0);
    printf("alarm(0) leaves %u\n", alarm(0));
    return 0;
}
