/* A dynamically linked program as `gcc -m32 -g prog.c` builds it (PIE), using
   libc (malloc, printf, write, qsort) and its own shared library libguest.so.
   `watched` is written on every round: the reverse-watchpoint target. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int guest_sum(const int *a, int n);
extern int guest_calls;

int watched;

static int cmp(const void *x, const void *y)
{
    return *(const int *)x - *(const int *)y;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 5;
    int total = 0;
    for (int r = 1; r <= rounds; r++) {
        int *a = malloc(16 * sizeof *a);
        for (int i = 0; i < 16; i++)
            a[i] = (i * 7919 + r * 31) % 101;
        qsort(a, 16, sizeof *a, cmp);
        watched = guest_sum(a, 16) + r;
        total += watched;
        free(a);
    }
    char line[64];
    int n = snprintf(line, sizeof line, "total=%d calls=%d\n", total, guest_calls);
    write(1, line, (size_t)n);
    printf("strlen=%zu\n", strlen(line));
    return total % 7;
}
