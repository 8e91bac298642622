/* debugme: the program the gdb tests debug.  Usage: debugme [segv|spin|loop]
 *
 * Built with -O0 (see the build-flags line) so that every local lives in
 * memory and gdb can print it at any line.
 * build-flags: -O0
 *
 * Without arguments it prints "total=55 counter=15" and exits with status 7.
 * "segv" then writes to address 16 (SIGSEGV); "spin" then loops forever
 * without system calls (for Ctrl-C); "loop" then runs ~2 G instructions. */
#include <stdio.h>
#include <string.h>

int counter;         /* changed only by bump(): the watchpoint target */
int history[16];
volatile int stop_spinning;

static int square(int x)
{
    int result = x * x;
    return result;
}

static void bump(int by)
{
    counter += by;
    history[counter & 15] = by;
}

static long long long_loop(long n)
{
    long long sum = 0;
    for (long i = 0; i < n; i++)
        sum += i ^ (sum >> 3);
    return sum;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    int total = 0;
    for (int i = 1; i <= 5; i++) {
        bump(i);
        total += square(i);
    }
    printf("total=%d counter=%d\n", total, counter);
    fflush(stdout);
    if (strcmp(mode, "segv") == 0)
        *(volatile int *)16 = 1;
    if (strcmp(mode, "spin") == 0)
        while (!stop_spinning)
            counter++;
    if (strcmp(mode, "loop") == 0)
        printf("loop=%lld\n", long_loop(100000000L));
    return total == 55 ? 7 : 1;
}
