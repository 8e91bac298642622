/* A case found reviewing threads (issue 17): natively and under rrdbg alike. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <signal.h>
#include <poll.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>
static int p[2];
static volatile int handled;
static void h(int s) { handled = 1; }
static void *waiter(void *a) {
    sigset_t blk, during;
    sigemptyset(&blk); sigaddset(&blk, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &blk, 0);        /* SIGUSR1 only during ppoll */
    sigemptyset(&during);
    struct pollfd f = {p[0], POLLIN, 0};
    int r = ppoll(&f, 1, 0, &during);
    printf("ppoll=%d (%s) handled=%d\n", r, r < 0 ? strerror(errno) : "ready", handled);
    return 0;
}
int main(void) {
    signal(SIGUSR1, h);
    pipe(p);
    pthread_t t;
    pthread_create(&t, 0, waiter, 0);
    usleep(100000);
    pthread_kill(t, SIGUSR1);     /* should interrupt the ppoll */
    usleep(100000);
    write(p[1], "x", 1);
    pthread_join(t, 0);
    return 0;
}
