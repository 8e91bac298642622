/* Threads: pthread_once, thread-specific data with destructors, __thread
 * variables, and detached threads that report through a semaphore. */
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 5

static pthread_once_t once = PTHREAD_ONCE_INIT;
static atomic_int init_calls;
static pthread_key_t key;
static atomic_int destructor_calls;
static atomic_long destructor_sum;
static sem_t finished;
static __thread long tls_counter = 100;
static __thread char tls_name[16];
static long results[THREADS];

static void destroy(void *value)
{
    long *p = value;
    atomic_fetch_add(&destructor_calls, 1);
    atomic_fetch_add(&destructor_sum, *p);
    free(p);
    sem_post(&finished);
}

static void init(void)
{
    atomic_fetch_add(&init_calls, 1);
    if (pthread_key_create(&key, destroy) != 0)
        abort();
}

static void *worker(void *arg)
{
    long id = (long)arg;
    pthread_once(&once, init);
    snprintf(tls_name, sizeof tls_name, "worker-%ld", id);
    for (long i = 0; i <= id * 10; i++)
        tls_counter += i;
    long *mine = malloc(sizeof *mine);
    *mine = id + 1;
    pthread_setspecific(key, mine);
    long *back = pthread_getspecific(key);
    /* Only this thread's __thread copies and key value are seen here. */
    int ok = back == mine && strncmp(tls_name, "worker-", 7) == 0 && tls_name[7] == '0' + id;
    results[id] = ok ? tls_counter : -1;
    return NULL; /* the destructor frees mine and posts the semaphore */
}

int main(void)
{
    sem_init(&finished, 0, 0);
    pthread_attr_t detached;
    pthread_attr_init(&detached);
    pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);
    for (long i = 0; i < THREADS; i++) {
        pthread_t t;
        /* Half detached at creation, half with pthread_detach afterwards. */
        int err = pthread_create(&t, i % 2 ? &detached : NULL, worker, (void *)i);
        if (err != 0) {
            printf("pthread_create: %s\n", strerror(err));
            return 1;
        }
        if (i % 2 == 0)
            pthread_detach(t);
    }
    for (int i = 0; i < THREADS; i++)
        sem_wait(&finished);
    pthread_once(&once, init);
    printf("init ran %d time(s)\n", atomic_load(&init_calls));
    printf("destructors: %d calls, values sum %ld\n", atomic_load(&destructor_calls),
           atomic_load(&destructor_sum));
    for (int i = 0; i < THREADS; i++)
        printf("thread %d: tls counter %ld\n", i, results[i]);
    printf("main's tls counter untouched: %ld, name \"%s\"\n", tls_counter, tls_name);
    printf("main's key value: %s\n", pthread_getspecific(key) == NULL ? "NULL" : "set");
    int value;
    sem_getvalue(&finished, &value);
    printf("semaphore value at the end: %d\n", value);
    pthread_attr_destroy(&detached);
    return 0;
}
