/* A case found reviewing threads (issue 17): natively and under rrdbg alike. */
#include <pthread.h>
#include <stdio.h>
#include <signal.h>
#include <unistd.h>
static sigset_t set;
static pthread_barrier_t bar;
static void *waiter(void *a) {
    pthread_barrier_wait(&bar);          /* both signals are pending by now */
    int sig = 0;
    int r = sigwait(&set, &sig);
    printf("thread %ld got sig=%d r=%d\n", (long)a, sig, r);
    return 0;
}
int main(void) {
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &set, 0);
    pthread_barrier_init(&bar, 0, 3);
    pthread_t t1, t2;
    pthread_create(&t1, 0, waiter, (void *)1);
    pthread_create(&t2, 0, waiter, (void *)2);
    kill(getpid(), SIGUSR1);
    kill(getpid(), SIGUSR2);
    pthread_barrier_wait(&bar);
    pthread_join(t1, 0);
    pthread_join(t2, 0);
    puts("done");
    return 0;
}
