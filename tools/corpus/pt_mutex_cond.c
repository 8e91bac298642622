/* Threads: a bounded queue with one mutex and two condition variables, one
 * producer and three consumers; every item is consumed exactly once. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define CAPACITY 8
#define ITEMS 20000
#define CONSUMERS 3
#define DONE (-1L)

static long queue[CAPACITY];
static int head, count;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_full = PTHREAD_COND_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER;

struct tally {
    long items;
    long long sum;
    long long squares;
};

static void put(long item)
{
    pthread_mutex_lock(&lock);
    while (count == CAPACITY)
        pthread_cond_wait(&not_full, &lock);
    queue[(head + count) % CAPACITY] = item;
    count++;
    pthread_cond_signal(&not_empty);
    pthread_mutex_unlock(&lock);
}

static long take(void)
{
    pthread_mutex_lock(&lock);
    while (count == 0)
        pthread_cond_wait(&not_empty, &lock);
    long item = queue[head];
    head = (head + 1) % CAPACITY;
    count--;
    pthread_cond_signal(&not_full);
    pthread_mutex_unlock(&lock);
    return item;
}

static void *producer(void *arg)
{
    (void)arg;
    for (long i = 1; i <= ITEMS; i++)
        put(i);
    for (int i = 0; i < CONSUMERS; i++)
        put(DONE);
    return NULL;
}

static void *consumer(void *arg)
{
    struct tally *t = arg;
    for (;;) {
        long item = take();
        if (item == DONE)
            break;
        t->items++;
        t->sum += item;
        t->squares += (long long)item * item;
    }
    return t;
}

int main(void)
{
    pthread_t prod, cons[CONSUMERS];
    struct tally tallies[CONSUMERS];
    memset(tallies, 0, sizeof tallies);
    for (int i = 0; i < CONSUMERS; i++) {
        int err = pthread_create(&cons[i], NULL, consumer, &tallies[i]);
        if (err != 0) {
            printf("pthread_create: %s\n", strerror(err));
            return 1;
        }
    }
    if (pthread_create(&prod, NULL, producer, NULL) != 0) {
        printf("pthread_create failed\n");
        return 1;
    }
    pthread_join(prod, NULL);
    struct tally total = {0, 0, 0};
    int returned = 0;
    for (int i = 0; i < CONSUMERS; i++) {
        void *ret;
        pthread_join(cons[i], &ret);
        returned += ret == &tallies[i];
        total.items += tallies[i].items;
        total.sum += tallies[i].sum;
        total.squares += tallies[i].squares;
    }
    printf("consumers joined with their tally: %d of %d\n", returned, CONSUMERS);
    printf("items %ld sum %lld squares %lld\n", total.items, total.sum, total.squares);
    long long n = ITEMS;
    printf("expected: items %lld sum %lld squares %lld\n", n, n * (n + 1) / 2,
           n * (n + 1) * (2 * n + 1) / 6);
    printf("queue empty at the end: %s\n", count == 0 ? "yes" : "no");
    return total.items == ITEMS ? 0 : 1;
}
