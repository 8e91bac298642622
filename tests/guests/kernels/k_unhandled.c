/* k_unhandled: an exception with nowhere to go.  Loads an empty IDT (limit
 * 0) and executes ud2: #UD cannot be delivered, which raises #GP, then a
 * double fault, then a triple fault.  A real PC resets; QEMU with
 * -no-reboot exits with status 0 instead, and isa-debug-exit never runs.
 * rrdbg is expected to stop the run with a message about the exception.
 *
 *     k_unhandled: ud2 with an empty IDT
 *
 * If execution ever gets past the ud2 the kernel says so and exits 1. */
#include "runtime.h"

struct table_register {
    uint16_t limit;
    uint32_t base;
} __attribute__((packed));

int kmain(uint32_t magic, const struct multiboot_info *mbi)
{
    (void)magic;
    (void)mbi;
    serial_init();
    kprintf("k_unhandled: ud2 with an empty IDT\n");
    static const struct table_register empty = {0, 0};
    __asm__ volatile("lidt %0\n\tud2" : : "m"(empty) : "memory");
    kprintf("k_unhandled: BAD: still running after ud2\n");
    return EXIT_CHECK_FAILED;
}
