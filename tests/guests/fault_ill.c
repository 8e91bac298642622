/* fault_ill: execute ud2 -> SIGILL (shell status 132). */
#include <stdio.h>

int main(void)
{
    printf("about to execute ud2\n");
    fflush(stdout);
    __asm__ volatile("ud2");
    printf("still alive?!\n");
    return 0;
}
