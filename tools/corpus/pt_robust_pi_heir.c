/* A case found reviewing threads (issue 17): natively and under rrdbg alike. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
#include <errno.h>
#include <string.h>
static pthread_mutex_t m;
static void *owner(void *a) {
    pthread_mutex_lock(&m);
    usleep(200000);             /* main blocks on the lock meanwhile */
    return 0;                   /* dies holding it */
}
int main(void) {
    pthread_mutexattr_t at;
    pthread_mutexattr_init(&at);
    pthread_mutexattr_setrobust(&at, PTHREAD_MUTEX_ROBUST);
    pthread_mutexattr_setprotocol(&at, PTHREAD_PRIO_INHERIT);
    pthread_mutex_init(&m, &at);
    pthread_t t;
    pthread_create(&t, 0, owner, 0);
    usleep(50000);
    int r = pthread_mutex_lock(&m);
    printf("lock: %s\n", r == EOWNERDEAD ? "EOWNERDEAD" : strerror(r));
    if (r == EOWNERDEAD) printf("consistent: %s\n", strerror(pthread_mutex_consistent(&m)));
    printf("word owner is me: %d\n", (m.__data.__lock & 0x3fffffff) == gettid());
    printf("unlock: %s\n", strerror(pthread_mutex_unlock(&m)));
    printf("lock again: %s\n", strerror(pthread_mutex_lock(&m)));
    printf("unlock again: %s\n", strerror(pthread_mutex_unlock(&m)));
    pthread_join(t, 0);
    return 0;
}
