/* compute: CPU benchmark guest.  Usage: compute [ITERATIONS]
 * Each iteration: a pseudo-random load/store walk over a 256 KiB table,
 * integer arithmetic, a hash over a buffer, an insertion sort of a small
 * array, and glibc string routines (memcpy/memset/strlen/memcmp).
 * Prints a deterministic checksum.  See README.md for the instruction count
 * of the default iteration count. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

#define DEFAULT_ITERS 170
#define TABLE_WORDS (256 * 1024 / 4)       /* 256 KiB */
#define SORT_N 64
#define BUF_SIZE 4096

static uint32_t table[TABLE_WORDS];
static unsigned char buf_a[BUF_SIZE], buf_b[BUF_SIZE];

static uint32_t xorshift32(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

static __attribute__((noinline)) uint32_t table_walk(uint32_t seed, int steps)
{
    uint32_t idx = seed & (TABLE_WORDS - 1);
    uint32_t acc = seed;
    for (int i = 0; i < steps; i++) {
        uint32_t v = table[idx];
        acc = (acc ^ v) * 2654435761u + (uint32_t)i;
        table[idx] = v + (acc >> 7);
        idx = (idx + (v | 1) * 17 + (acc >> 20)) & (TABLE_WORDS - 1);
    }
    return acc;
}

static __attribute__((noinline)) uint32_t fnv1a(const unsigned char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

static __attribute__((noinline)) void insertion_sort(uint32_t *a, int n)
{
    for (int i = 1; i < n; i++) {
        uint32_t key = a[i];
        int j = i - 1;
        while (j >= 0 && a[j] > key) {
            a[j + 1] = a[j];
            j--;
        }
        a[j + 1] = key;
    }
}

static int cmp_u32(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    return (a > b) - (a < b);
}

static __attribute__((noinline)) uint32_t arith(uint32_t x, uint32_t y)
{
    uint32_t r = 0;
    for (int i = 0; i < 64; i++) {
        r += (x * y) ^ (x >> (i & 15));
        r = (r << 3) | (r >> 29);
        x += y / ((i & 7) + 1);
        y ^= r % 1000003u;
    }
    return r;
}

int main(int argc, char **argv)
{
    long iters = DEFAULT_ITERS;
    if (argc > 1)
        iters = strtol(argv[1], NULL, 0);

    uint32_t seed = 0x12345678u;
    for (int i = 0; i < TABLE_WORDS; i++)
        table[i] = xorshift32(&seed);

    uint32_t checksum = 0;
    uint32_t sortbuf[SORT_N];
    char str[256];

    for (long it = 0; it < iters; it++) {
        checksum ^= table_walk(checksum + (uint32_t)it, 20000);

        for (int i = 0; i < SORT_N; i++)
            sortbuf[i] = xorshift32(&seed) % 10000u;
        if (it & 1)
            insertion_sort(sortbuf, SORT_N);
        else
            qsort(sortbuf, SORT_N, sizeof sortbuf[0], cmp_u32);
        for (int i = 1; i < SORT_N; i++)
            if (sortbuf[i - 1] > sortbuf[i]) {
                puts("sort failed");
                return 1;
            }
        checksum += sortbuf[SORT_N / 2] * 31u + sortbuf[0];

        memset(buf_a, (int)(it & 0xff), BUF_SIZE);
        memcpy(buf_a + 128, (const unsigned char *)table + (it * 64) % (sizeof table - 2048), 2048);
        memcpy(buf_b, buf_a, BUF_SIZE);
        checksum = checksum * 33u + fnv1a(buf_b, BUF_SIZE);
        checksum += (uint32_t)memcmp(buf_a, buf_b, BUF_SIZE);

        int len = snprintf(str, sizeof str, "iteration %ld checksum %08x", it, checksum);
        memset(str + len, 'x', (size_t)(it % 100));
        str[len + it % 100] = '\0';
        checksum += (uint32_t)strlen(str);
        checksum ^= arith(checksum, (uint32_t)it + 1);
    }

    printf("iterations=%ld checksum=%08x table[0]=%08x\n", iters, checksum, table[0]);
    return 0;
}
