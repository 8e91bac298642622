/* hotwatch: a variable written once, on the same cache line as one written
 * all the time.  Usage: hotwatch [ITERATIONS]
 *
 * g_pair.inner is set once at the start; g_pair.counter, four bytes below
 * it, is written on every iteration of the loop (about 6 instructions each).
 * `watch g_pair.inner` then `reverse-continue` from the end asks "who last
 * wrote this?" with the answer far back on a hot page: the case
 * benchmarks/bench_watch.py measures.  Prints the two values. */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>

struct pair {
    volatile uint32_t counter;
    volatile uint32_t inner;
};

struct pair g_pair;

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    g_pair.inner = 0x1234;
    for (long i = 0; i < n; i++) {
        g_pair.counter += (uint32_t)i;
    }
    printf("hotwatch: counter %u inner %#x\n", (unsigned)g_pair.counter, (unsigned)g_pair.inner);
    return 0;
}
