/* malloc: heap workout -- brk-backed small blocks and mmap-backed large
 * blocks (> 256 KiB, above glibc's default M_MMAP_THRESHOLD of 128 KiB),
 * realloc growth/shrink, calloc zeroing.  Prints a checksum. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

#define NSLOTS 256

static uint32_t rng = 12345;
static uint32_t next_rand(void)
{
    rng = rng * 1103515245u + 12345u;
    return rng >> 8;
}

static uint32_t fnv(uint32_t h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

static void fill(unsigned char *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(seed + i * 7);
}

int main(void)
{
    unsigned char *slot[NSLOTS] = {0};
    size_t size[NSLOTS] = {0};
    uint32_t sum = 2166136261u;
    int n_alloc = 0, n_realloc = 0, n_free = 0, n_large = 0;

    for (int round = 0; round < 4000; round++) {
        int i = next_rand() % NSLOTS;
        uint32_t r = next_rand();
        if (slot[i] == NULL) {
            size_t sz;
            if (r % 97 == 0) {
                sz = 256 * 1024 + (r % 65536);   /* large: mmap */
                n_large++;
            } else if (r % 7 == 0) {
                sz = 1024 + r % 8192;
            } else {
                sz = 1 + r % 200;
            }
            slot[i] = malloc(sz);
            if (!slot[i]) { puts("malloc failed"); return 1; }
            size[i] = sz;
            fill(slot[i], sz, r);
            n_alloc++;
        } else if (r % 3 == 0) {
            size_t nsz = (r % 5 == 0) ? size[i] / 2 + 1 : size[i] * 2 + 3;
            if (r % 50 == 0) { nsz = 300 * 1024; n_large++; }
            unsigned char *p = realloc(slot[i], nsz);
            if (!p) { puts("realloc failed"); return 1; }
            size_t keep = nsz < size[i] ? nsz : size[i];
            sum = fnv(sum, p, keep);          /* preserved prefix */
            if (nsz > size[i])
                fill(p + size[i], nsz - size[i], r);
            slot[i] = p;
            size[i] = nsz;
            n_realloc++;
        } else {
            sum = fnv(sum, slot[i], size[i]);
            free(slot[i]);
            slot[i] = NULL;
            size[i] = 0;
            n_free++;
        }
    }
    for (int i = 0; i < NSLOTS; i++) {
        if (slot[i]) {
            sum = fnv(sum, slot[i], size[i]);
            free(slot[i]);
            n_free++;
        }
    }

    /* calloc: must be zeroed, both small and large (mmap) */
    int calloc_ok = 1;
    size_t csz[] = {1, 17, 4096, 100000, 600 * 1024};
    for (unsigned k = 0; k < sizeof csz / sizeof csz[0]; k++) {
        unsigned char *c = calloc(csz[k], 1);
        if (!c) { puts("calloc failed"); return 1; }
        for (size_t j = 0; j < csz[k]; j++)
            if (c[j]) calloc_ok = 0;
        memset(c, 0xAB, csz[k]);
        sum = fnv(sum, c, csz[k] < 64 ? csz[k] : 64);
        free(c);
    }
    /* calloc after freeing dirty memory of the same size */
    for (int k = 0; k < 50; k++) {
        unsigned char *d = malloc(512);
        memset(d, 0xCD, 512);
        free(d);
        unsigned int *c = calloc(128, sizeof(unsigned int));
        for (int j = 0; j < 128; j++)
            if (c[j]) calloc_ok = 0;
        free(c);
    }

    printf("allocs=%d reallocs=%d frees=%d large=%d\n",
           n_alloc, n_realloc, n_free, n_large);
    printf("calloc zeroed: %s\n", calloc_ok ? "yes" : "NO");
    printf("checksum=%08x\n", sum);
    return 0;
}
