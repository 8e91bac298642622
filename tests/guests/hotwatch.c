/* hotwatch: a variable written once, on the same cache line as one written
 * all the time.  Usage: hotwatch [ITERATIONS [sse]]
 *
 * g_pair.inner is set once at the start; g_pair.counter, four bytes below
 * it, is written on every iteration of the loop (about 6 instructions each).
 * `watch g_pair.inner` then `reverse-continue` from the end asks "who last
 * wrote this?" with the answer far back on a hot page: the case
 * benchmarks/bench_watch.py measures.  With "sse", the loop is followed by
 * one block of SSE stores (movq of zeros to the pair, movd to counter, movq
 * of ones to the pair); Unicorn runs movq's memory hooks with EIP at the block's start: a
 * watchpoint must still name the store.  Prints the two values. */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>

struct pair {
    volatile uint32_t counter;
    volatile uint32_t inner;
};

struct pair g_pair;

/* pxor; nop; movq zeros -> the pair; pcmpeqd; movd ones -> counter; nop;
 * movq ones -> the pair.  (Unicorn runs memory hooks for movq's 8-byte
 * store with EIP still at the block's start, unlike movd's.) */
static __attribute__((noinline, target("sse2"))) void sse_stores(void)
{
    __asm__ volatile("pxor %%xmm0, %%xmm0\n\t"
                     "nop\n\t"
                     "movq %%xmm0, %0\n\t"
                     "pcmpeqd %%xmm0, %%xmm0\n\t"
                     "movd %%xmm0, %1\n\t"
                     "nop\n\t"
                     "movq %%xmm0, %0\n\t"
                     : "=m"(g_pair), "=m"(g_pair.counter)
                     :
                     : "xmm0");
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    g_pair.inner = 0x1234;
    for (long i = 0; i < n; i++) {
        g_pair.counter += (uint32_t)i;
    }
    if (argc > 2)
        sse_stores();
    printf("hotwatch: counter %u inner %#x\n", (unsigned)g_pair.counter, (unsigned)g_pair.inner);
    return 0;
}
