/* Threads: a robust mutex whose owner exits while holding it (the next
 * locker gets EOWNERDEAD and makes it consistent), and a priority-inheritance
 * mutex contended by three threads. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static pthread_mutex_t robust;
static pthread_mutex_t pi;
static long pi_counter;
static int protected_state = 7;

static const char *errname(int err)
{
    switch (err) {
    case 0: return "0";
    case EOWNERDEAD: return "EOWNERDEAD";
    case ENOTRECOVERABLE: return "ENOTRECOVERABLE";
    case EBUSY: return "EBUSY";
    case EPERM: return "EPERM";
    case EDEADLK: return "EDEADLK";
    default: return strerror(err);
    }
}

static void *die_holding(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&robust);
    protected_state = -1; /* left half-updated */
    return NULL;          /* exits with the mutex locked */
}

static void *pi_worker(void *arg)
{
    long n = (long)arg;
    for (long i = 0; i < n; i++) {
        pthread_mutex_lock(&pi);
        long v = pi_counter;
        if (i % 97 == 0)
            sched_yield();
        pi_counter = v + 1;
        pthread_mutex_unlock(&pi);
    }
    return NULL;
}

int main(void)
{
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&robust, &attr);
    pthread_mutexattr_destroy(&attr);

    pthread_t t;
    pthread_create(&t, NULL, die_holding, NULL);
    pthread_join(t, NULL);
    int err = pthread_mutex_lock(&robust);
    printf("lock after the owner died: %s, state %d\n", errname(err), protected_state);
    if (err == EOWNERDEAD) {
        protected_state = 7; /* repair */
        printf("consistent: %s\n", errname(pthread_mutex_consistent(&robust)));
    }
    pthread_mutex_unlock(&robust);
    printf("lock again: %s, state %d\n", errname(pthread_mutex_lock(&robust)), protected_state);
    pthread_mutex_unlock(&robust);

    /* Dead again, this time unlocked without pthread_mutex_consistent. */
    pthread_create(&t, NULL, die_holding, NULL);
    pthread_join(t, NULL);
    printf("trylock after the owner died: %s\n", errname(pthread_mutex_trylock(&robust)));
    pthread_mutex_unlock(&robust);
    printf("lock after unlocking without consistent: %s\n",
           errname(pthread_mutex_lock(&robust)));

    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setprotocol(&attr, PTHREAD_PRIO_INHERIT);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
    err = pthread_mutex_init(&pi, &attr);
    int protocol = -1;
    pthread_mutexattr_getprotocol(&attr, &protocol);
    pthread_mutexattr_destroy(&attr);
    printf("PI mutex init: %s, protocol inherit: %s\n", errname(err),
           protocol == PTHREAD_PRIO_INHERIT ? "yes" : "no");
    pthread_t w[3];
    for (long i = 0; i < 3; i++)
        pthread_create(&w[i], NULL, pi_worker, (void *)(5000 * (i + 1)));
    for (int i = 0; i < 3; i++)
        pthread_join(w[i], NULL);
    printf("PI counter %ld (expected %d)\n", pi_counter, 5000 * 6);
    pthread_mutex_lock(&pi);
    printf("PI relock by owner: %s\n", errname(pthread_mutex_lock(&pi)));
    printf("PI trylock by owner: %s\n", errname(pthread_mutex_trylock(&pi)));
    pthread_mutex_unlock(&pi);
    printf("PI unlock when not owner: %s\n", errname(pthread_mutex_unlock(&pi)));
    return 0;
}
