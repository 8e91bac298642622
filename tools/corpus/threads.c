/* Needs threads: pthread_create/join summing in four threads. */
#include <pthread.h>
#include <stdio.h>

static long sums[4];

static void *work(void *arg)
{
    long k = (long)arg, s = 0;
    for (long i = 0; i < 100000; i++)
        s += (i * (k + 1)) % 7;
    sums[k] = s;
    return NULL;
}

int main(void)
{
    pthread_t t[4];
    for (long k = 0; k < 4; k++)
        if (pthread_create(&t[k], NULL, work, (void *)k) != 0) {
            printf("pthread_create failed\n");
            return 1;
        }
    for (int k = 0; k < 4; k++)
        pthread_join(t[k], NULL);
    for (int k = 0; k < 4; k++)
        printf("thread %d: %ld\n", k, sums[k]);
    return 0;
}
