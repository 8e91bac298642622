/* Threads: cancelling a thread blocked in pthread_cond_wait (its cleanup
 * handler unlocks the mutex), and timeouts that expire:
 * pthread_cond_timedwait, pthread_mutex_timedlock, sem_timedwait. */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static pthread_cond_t ready_cond = PTHREAD_COND_INITIALIZER;
static int waiting, cleanups, never_set;
static sem_t holder_has_lock, release_holder;
static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;

static const char *errname(int err)
{
    switch (err) {
    case 0: return "0";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EINTR: return "EINTR";
    case EBUSY: return "EBUSY";
    case EINVAL: return "EINVAL";
    default: return strerror(err);
    }
}

static void cleanup(void *arg)
{
    (void)arg;
    cleanups++;
    pthread_mutex_unlock(&lock);
}

static void *waiter(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lock);
    pthread_cleanup_push(cleanup, NULL);
    waiting = 1;
    pthread_cond_signal(&ready_cond);
    while (!never_set)
        pthread_cond_wait(&cond, &lock);
    pthread_cleanup_pop(1);
    return (void *)1;
}

static void *holder(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&held);
    sem_post(&holder_has_lock);
    sem_wait(&release_holder);
    pthread_mutex_unlock(&held);
    return NULL;
}

static struct timespec in_ms(clockid_t clock, long ms)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    ts.tv_nsec += ms * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    return ts;
}

static long elapsed_ms(const struct timespec *from)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - from->tv_sec) * 1000L + (now.tv_nsec - from->tv_nsec) / 1000000L;
}

int main(void)
{
    /* 1. Cancel a thread blocked in pthread_cond_wait. */
    pthread_t t;
    pthread_create(&t, NULL, waiter, NULL);
    pthread_mutex_lock(&lock);
    while (!waiting)
        pthread_cond_wait(&ready_cond, &lock);
    pthread_mutex_unlock(&lock); /* the waiter now waits on cond */
    int err = pthread_cancel(t);
    void *ret;
    pthread_join(t, &ret);
    printf("cancel: %s, joined with %s, cleanup handlers run %d\n", errname(err),
           ret == PTHREAD_CANCELED ? "PTHREAD_CANCELED" : "a value", cleanups);
    /* The cleanup handler unlocked the mutex: it can be taken again. */
    printf("mutex free after cancel: %s\n", errname(pthread_mutex_trylock(&lock)));
    pthread_mutex_unlock(&lock);

    /* 2. pthread_cond_timedwait: nobody signals; 20 ms pass. */
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    pthread_mutex_lock(&lock);
    struct timespec deadline = in_ms(CLOCK_REALTIME, 20);
    do
        err = pthread_cond_timedwait(&cond, &lock, &deadline);
    while (err == 0);
    pthread_mutex_unlock(&lock);
    printf("cond_timedwait timed out: %s, waited >= 20 ms: %s\n", errname(err),
           elapsed_ms(&start) >= 19 ? "yes" : "no");

    /* The same on CLOCK_MONOTONIC. */
    pthread_condattr_t ca;
    pthread_cond_t mono;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&mono, &ca);
    clock_gettime(CLOCK_MONOTONIC, &start);
    pthread_mutex_lock(&lock);
    deadline = in_ms(CLOCK_MONOTONIC, 20);
    do
        err = pthread_cond_timedwait(&mono, &lock, &deadline);
    while (err == 0);
    pthread_mutex_unlock(&lock);
    printf("monotonic cond_timedwait timed out: %s, waited >= 20 ms: %s\n", errname(err),
           elapsed_ms(&start) >= 19 ? "yes" : "no");
    pthread_cond_destroy(&mono);
    pthread_condattr_destroy(&ca);

    /* 3. pthread_mutex_timedlock on a mutex another thread holds. */
    sem_init(&holder_has_lock, 0, 0);
    sem_init(&release_holder, 0, 0);
    pthread_create(&t, NULL, holder, NULL);
    sem_wait(&holder_has_lock);
    clock_gettime(CLOCK_MONOTONIC, &start);
    deadline = in_ms(CLOCK_REALTIME, 20);
    err = pthread_mutex_timedlock(&held, &deadline);
    printf("mutex_timedlock timed out: %s, waited >= 20 ms: %s\n", errname(err),
           elapsed_ms(&start) >= 19 ? "yes" : "no");
    sem_post(&release_holder);
    pthread_join(t, NULL);
    err = pthread_mutex_timedlock(&held, &deadline); /* free now: no wait */
    printf("mutex_timedlock on a free mutex: %s\n", errname(err));
    pthread_mutex_unlock(&held);

    /* 4. sem_timedwait on a semaphore nobody posts. */
    sem_t sem;
    sem_init(&sem, 0, 0);
    clock_gettime(CLOCK_MONOTONIC, &start);
    deadline = in_ms(CLOCK_REALTIME, 20);
    int r;
    do
        r = sem_timedwait(&sem, &deadline);
    while (r == -1 && errno == EINTR);
    printf("sem_timedwait: %d, timed out: %s, waited >= 20 ms: %s\n", r,
           errname(r == -1 ? errno : 0), elapsed_ms(&start) >= 19 ? "yes" : "no");
    sem_post(&sem);
    r = sem_timedwait(&sem, &deadline);
    printf("sem_timedwait after a post: %d\n", r);
    return 0;
}
