/* A case found reviewing threads (issue 17): natively and under rrdbg alike. */
#include <pthread.h>
#include <stdio.h>
#include <signal.h>
#include <unistd.h>
static sigset_t set;
static void *waiter(void *a) {
    int sig = 0;
    int r = sigwait(&set, &sig);
    printf("thread sigwait r=%d sig=%d\n", r, sig);
    return 0;
}
int main(void) {
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, 0);
    kill(getpid(), SIGUSR1);      /* process-directed, pending (shared) */
    pthread_t t;
    pthread_create(&t, 0, waiter, 0);
    pthread_join(t, 0);
    puts("done");
    return 0;
}
