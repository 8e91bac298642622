/* hello: the simplest guest -- printf + exit 0. */
#include <stdio.h>

int main(void)
{
    printf("Hello, world!\n");
    return 0;
}
