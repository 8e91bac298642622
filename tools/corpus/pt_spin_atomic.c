/* Threads: four threads add to counters guarded by a pthread_spinlock and
 * to C11 atomics (fetch_add, compare-exchange loops, an atomic flag lock). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#define THREADS 4
#define ROUNDS 50000

static pthread_spinlock_t spin;
static long spin_counter;
static long long spin_sum;
static atomic_long atomic_counter;
static atomic_llong cas_sum;
static atomic_int max_seen;
static atomic_flag flag_lock = ATOMIC_FLAG_INIT;
static long flag_counter;

static void *worker(void *arg)
{
    long id = (long)arg;
    for (long i = 0; i < ROUNDS; i++) {
        pthread_spin_lock(&spin);
        spin_counter++;
        spin_sum += i * (id + 1);
        pthread_spin_unlock(&spin);

        atomic_fetch_add_explicit(&atomic_counter, 1, memory_order_relaxed);
        long long old = atomic_load(&cas_sum);
        while (!atomic_compare_exchange_weak(&cas_sum, &old, old + i + id))
            ;
        int value = (int)(i % 1000) * THREADS + (int)id;
        int seen = atomic_load(&max_seen);
        while (value > seen && !atomic_compare_exchange_weak(&max_seen, &seen, value))
            ;
        if (i % 16 == 0) {
            while (atomic_flag_test_and_set_explicit(&flag_lock, memory_order_acquire))
                ;
            flag_counter++;
            atomic_flag_clear_explicit(&flag_lock, memory_order_release);
        }
    }
    return NULL;
}

int main(void)
{
    pthread_t t[THREADS];
    pthread_spin_init(&spin, PTHREAD_PROCESS_PRIVATE);
    for (long i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)i) != 0) {
            printf("pthread_create failed\n");
            return 1;
        }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    printf("spinlock counter %ld sum %lld\n", spin_counter, spin_sum);
    printf("atomic counter %ld cas sum %lld max %d\n", atomic_load(&atomic_counter),
           atomic_load(&cas_sum), atomic_load(&max_seen));
    printf("atomic_flag counter %ld\n", flag_counter);
    printf("spin_trylock on a free lock: %d\n", pthread_spin_trylock(&spin));
    pthread_spin_unlock(&spin);
    pthread_spin_destroy(&spin);
    printf("lock free: %d\n", atomic_is_lock_free(&cas_sum));
    return 0;
}
