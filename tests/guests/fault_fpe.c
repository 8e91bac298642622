/* fault_fpe: integer division by zero -> SIGFPE (shell status 136). */
#include <stdio.h>

int main(void)
{
    volatile int a = 42, b = 0;
    printf("about to divide by zero\n");
    fflush(stdout);
    volatile int c = a / b;
    printf("still alive?! %d\n", c);
    return 0;
}
