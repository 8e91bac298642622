/* recursion: deep stack use -- fib, ackermann, and a 10000-deep recursion
 * with a local array in every frame (~1.2 MB of stack, under the 8 MB
 * default rlimit). */
#include <stdio.h>
#include <string.h>

static unsigned fib(unsigned n)
{
    return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

static unsigned ack(unsigned m, unsigned n)
{
    if (m == 0)
        return n + 1;
    if (n == 0)
        return ack(m - 1, 1);
    return ack(m - 1, ack(m, n - 1));
}

static unsigned max_depth_seen;

static unsigned deep(unsigned depth, unsigned limit)
{
    volatile unsigned char buf[100];   /* force real stack usage */
    for (unsigned i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(depth + i);
    if (depth > max_depth_seen)
        max_depth_seen = depth;
    unsigned r = 0;
    if (depth < limit)
        r = deep(depth + 1, limit);
    for (unsigned i = 0; i < sizeof buf; i += 9)
        r = r * 31 + buf[i];
    return r;
}

int main(void)
{
    printf("fib(24)=%u\n", fib(24));
    printf("ack(2,3)=%u\n", ack(2, 3));
    printf("ack(3,5)=%u\n", ack(3, 5));
    unsigned r = deep(0, 10000);
    printf("deep(10000)=%08x max_depth=%u\n", r, max_depth_seen);
    return 0;
}
