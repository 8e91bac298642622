/* A case found reviewing threads (issue 17): natively and under rrdbg alike.
 * Two threads sigwait for two process signals already pending: each takes
 * one (which one is up to the scheduler, so main prints them sorted). */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

static sigset_t set;
static pthread_barrier_t bar;
static int got[2], rc[2];

static void *waiter(void *a)
{
    long i = (long)a;
    pthread_barrier_wait(&bar); /* both signals are pending by now */
    rc[i] = sigwait(&set, &got[i]);
    return 0;
}

int main(void)
{
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &set, 0);
    pthread_barrier_init(&bar, 0, 3);
    pthread_t t1, t2;
    pthread_create(&t1, 0, waiter, (void *)0);
    pthread_create(&t2, 0, waiter, (void *)1);
    kill(getpid(), SIGUSR1);
    kill(getpid(), SIGUSR2);
    pthread_barrier_wait(&bar);
    pthread_join(t1, 0);
    pthread_join(t2, 0);
    int lo = got[0] < got[1] ? got[0] : got[1], hi = got[0] < got[1] ? got[1] : got[0];
    printf("sigwait in two threads got %d and %d, r=%d %d\n", lo, hi, rc[0], rc[1]);
    return 0;
}
