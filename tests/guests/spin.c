/* Spins forever without syscalls after printing one line: tests that Ctrl-C
 * (SIGINT) interrupts the emulator promptly. */
#include <stdio.h>

int main(void)
{
    volatile unsigned long counter = 0;
    puts("spinning");
    fflush(stdout);
    for (;;)
        counter++;
}
