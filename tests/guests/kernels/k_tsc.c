/* k_tsc: reads the time-stamp counter (rdtsc) before and after a fixed
 * loop and prints both values and their difference.  Under rrdbg the TSC is
 * virtual (one tick per instruction), so the output is the same on every
 * run; under QEMU it is the host's and differs (so this kernel is not part of
 * the QEMU comparison).  Exit code 0. */
#include "runtime.h"

int kmain(uint32_t magic, const struct multiboot_info *mbi)
{
    (void)magic;
    (void)mbi;
    serial_init();
    uint32_t lo, hi, lo2, hi2;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    for (volatile int i = 0; i < 1000; i++) {
    }
    __asm__ volatile("rdtsc" : "=a"(lo2), "=d"(hi2));
    kprintf("k_tsc: first %u second %u delta %u high %u %u\n", lo, lo2, lo2 - lo, hi, hi2);
    return EXIT_OK;
}
