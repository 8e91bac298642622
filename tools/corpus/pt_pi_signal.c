/* A case found reviewing threads (issue 17): natively and under rrdbg alike. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
static pthread_mutex_t m;
static volatile int a_inside;
static void h(int s) {}
static void *holder(void *x) {
    pthread_mutex_lock(&m);
    a_inside = 1;
    usleep(300000);
    a_inside = 0;
    pthread_mutex_unlock(&m);
    return 0;
}
static void *locker(void *x) {
    usleep(100000);
    int r = pthread_mutex_lock(&m);   /* blocks in FUTEX_LOCK_PI */
    printf("locker: lock=%s, holder still inside=%d\n", strerror(r), a_inside);
    r = pthread_mutex_unlock(&m);
    printf("locker: unlock=%s\n", strerror(r));
    return 0;
}
int main(void) {
    signal(SIGUSR1, h);
    pthread_mutexattr_t at;
    pthread_mutexattr_init(&at);
    pthread_mutexattr_setprotocol(&at, PTHREAD_PRIO_INHERIT);
    pthread_mutex_init(&m, &at);
    pthread_t a, b;
    pthread_create(&a, 0, holder, 0);
    pthread_create(&b, 0, locker, 0);
    usleep(200000);
    pthread_kill(b, SIGUSR1);         /* a signal while blocked on the PI lock */
    pthread_join(a, 0);
    pthread_join(b, 0);
    return 0;
}
