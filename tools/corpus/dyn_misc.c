/* A dynamically linked program: stdio, qsort, strtod/printf of doubles,
 * environment lookup, file I/O in the working directory, libm. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    double v[64];
    unsigned s = 12345;
    for (int i = 0; i < 64; i++) {
        s = s * 1103515245u + 12345u;
        v[i] = (double)(s >> 8) / 1000.0;
    }
    qsort(v, 64, sizeof v[0], cmp);
    printf("min %.3f max %.3f sqrt(max) %.6f\n", v[0], v[63], sqrt(v[63]));
    printf("args:");
    for (int i = 1; i < argc; i++)
        printf(" [%s]", argv[i]);
    printf("\nLC_ALL=%s\n", getenv("LC_ALL") ? getenv("LC_ALL") : "(unset)");
    FILE *f = fopen("dyn-out.txt", "w");
    for (int i = 0; i < 64; i += 8)
        fprintf(f, "%d %.4e\n", i, v[i]);
    fclose(f);
    f = fopen("dyn-out.txt", "r");
    char line[128];
    int n = 0;
    while (fgets(line, sizeof line, f))
        n++;
    fclose(f);
    printf("wrote and read back %d lines\n", n);
    return 0;
}
