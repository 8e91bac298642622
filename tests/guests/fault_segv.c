/* fault_segv: store to address 0x10 -> SIGSEGV (shell status 139). */
#include <stdio.h>

int main(void)
{
    printf("about to write to 0x10\n");
    fflush(stdout);
    volatile int *p = (volatile int *)0x10;
    *p = 42;
    printf("still alive?!\n");
    return 0;
}
