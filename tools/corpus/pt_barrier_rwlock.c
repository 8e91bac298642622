/* Threads: rounds separated by a pthread_barrier; in each round a writer
 * updates a table under a pthread_rwlock write lock while readers check it
 * under read locks. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define THREADS 4
#define ROUNDS 50
#define SLOTS 64

static pthread_barrier_t barrier;
static pthread_rwlock_t rwlock = PTHREAD_RWLOCK_INITIALIZER;
static pthread_mutex_t stats = PTHREAD_MUTEX_INITIALIZER;
static long table[SLOTS];
static long version;
static int serial_count;
static long reads, writes, bad_reads;

static void *worker(void *arg)
{
    long id = (long)arg;
    for (int round = 0; round < ROUNDS; round++) {
        int writer = round % THREADS == id;
        if (writer) {
            pthread_rwlock_wrlock(&rwlock);
            version++;
            for (int i = 0; i < SLOTS; i++)
                table[i] = version * 1000 + i;
            pthread_rwlock_unlock(&rwlock);
        }
        /* Everyone sees the round's write after the barrier. */
        int r = pthread_barrier_wait(&barrier);
        long my_reads = 0, my_bad = 0;
        for (int k = 0; k < 20; k++) {
            pthread_rwlock_rdlock(&rwlock);
            for (int i = 0; i < SLOTS; i++)
                if (table[i] != (round + 1) * 1000L + i)
                    my_bad++;
            my_reads++;
            pthread_rwlock_unlock(&rwlock);
        }
        pthread_mutex_lock(&stats);
        reads += my_reads;
        bad_reads += my_bad;
        writes += writer;
        if (r == PTHREAD_BARRIER_SERIAL_THREAD)
            serial_count++;
        pthread_mutex_unlock(&stats);
        /* Nobody writes the next round before everyone has read this one. */
        pthread_barrier_wait(&barrier);
    }
    return NULL;
}

static const char *try_result[2];

static const char *name(int err)
{
    return err == 0 ? "0" : err == EBUSY ? "EBUSY" : "other";
}

static void *try_locks(void *arg)
{
    (void)arg;
    int err = pthread_rwlock_tryrdlock(&rwlock);
    try_result[0] = name(err);
    if (err == 0)
        pthread_rwlock_unlock(&rwlock);
    err = pthread_rwlock_trywrlock(&rwlock);
    try_result[1] = name(err);
    if (err == 0)
        pthread_rwlock_unlock(&rwlock);
    return NULL;
}

int main(void)
{
    pthread_t t[THREADS];
    int err = pthread_barrier_init(&barrier, NULL, THREADS);
    if (err != 0) {
        printf("pthread_barrier_init: %s\n", strerror(err));
        return 1;
    }
    for (long i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)i) != 0) {
            printf("pthread_create failed\n");
            return 1;
        }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&barrier);
    printf("rounds %d, writes %ld, version %ld\n", ROUNDS, writes, version);
    printf("reads %ld, inconsistent slots seen %ld\n", reads, bad_reads);
    printf("one serial thread per round: %s (%d)\n", serial_count == ROUNDS ? "yes" : "no",
           serial_count);
    long sum = 0;
    for (int i = 0; i < SLOTS; i++)
        sum += table[i];
    printf("table sum %ld\n", sum);
    /* A lock held by main: another thread's trylocks fail with EBUSY. */
    pthread_t probe;
    pthread_rwlock_wrlock(&rwlock);
    pthread_create(&probe, NULL, try_locks, NULL);
    pthread_join(probe, NULL);
    pthread_rwlock_unlock(&rwlock);
    printf("while write-locked: tryrdlock %s, trywrlock %s\n", try_result[0], try_result[1]);
    pthread_rwlock_rdlock(&rwlock);
    pthread_create(&probe, NULL, try_locks, NULL);
    pthread_join(probe, NULL);
    pthread_rwlock_unlock(&rwlock);
    printf("while read-locked: tryrdlock %s, trywrlock %s\n", try_result[0], try_result[1]);
    return bad_reads == 0 ? 0 : 1;
}
