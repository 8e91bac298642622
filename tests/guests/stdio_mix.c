/* stdio_mix: interleaved stdout/stderr through puts/printf/fprintf/fwrite,
 * plus libm (sqrt/sin/cos/exp/log) and %f/%e/%g formatting. */
#include <stdio.h>
#include <math.h>
#include <string.h>

int main(void)
{
    puts("puts: line 1 to stdout");
    fprintf(stderr, "fprintf: line 1 to stderr\n");
    printf("printf: %d %u %x %o %c %s %5d|%-5d|%05d\n",
           -42, 42u, 0xbeef, 8, 'Z', "str", 7, 7, 7);
    fflush(stdout);
    fwrite("fwrite: to stderr\n", 1, 18, stderr);
    fwrite("fwrite: to stdout\n", 1, 18, stdout);
    printf("printf: long long %lld %llx\n", -1234567890123LL, 0x123456789abcdefULL);

    volatile double x = 2.0;   /* volatile: force runtime libm calls */
    double vals[] = {sqrt(x), sin(x), cos(x), exp(x), log(x), pow(x, 0.5),
                     atan2(1.0, x), fabs(-x * 3.25)};
    const char *names[] = {"sqrt(x)", "sin(x)", "cos(x)", "exp(x)", "log(x)",
                           "pow(x,0.5)", "atan2(1,x)", "fabs(-x*3.25)"};
    for (unsigned i = 0; i < sizeof vals / sizeof vals[0]; i++)
        printf("%s = %.6f (x=2)\n", names[i], vals[i]);

    double acc = 0.0;
    for (int i = 1; i <= 1000; i++)
        acc += sqrt((double)i) * sin((double)i * 0.001);
    printf("acc = %.6f\n", acc);
    printf("formats: %e %g %g %.3f %10.4f|\n", 12345.678, 0.0001, 1e20, -0.0005, M_PI);
    float f = 1.0f / 3.0f;
    printf("float: %.9f\n", (double)f);
    fflush(stdout);

    fprintf(stderr, "fprintf: line 2 to stderr (%.6f)\n", vals[0]);
    puts("puts: last line to stdout");
    return 0;
}
