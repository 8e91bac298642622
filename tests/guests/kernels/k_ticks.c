/* k_ticks: PIT-driven tick counter.  Programs 8254 channel 0 to 1000 Hz
 * (mode 2), unmasks IRQ0 and sleeps in `sti; hlt` until the IRQ0 handler has
 * counted 50 ticks, printing a line every 10 ticks (from the handler, so no
 * multiple of 10 is skipped however the ticks fall between wake-ups).
 * Prints tick numbers only, never times.  Exit code 0.
 *
 *     k_ticks: PIT channel 0 at 1000 Hz, waiting for 50 ticks
 *     tick 10
 *     ...
 *     tick 50
 *     k_ticks: done */
#include "runtime.h"

#define HZ 1000
#define TICKS 50

static volatile uint32_t ticks;

static void timer_irq(struct frame *f)
{
    (void)f;
    if (ticks >= TICKS) {
        return; /* one more may come before the main loop masks IRQ0 */
    }
    ticks++;
    if (ticks % 10 == 0) {
        kprintf("tick %u\n", ticks);
    }
}

int kmain(uint32_t magic, const struct multiboot_info *mbi)
{
    (void)magic;
    (void)mbi;
    serial_init();
    idt_init();
    pic_remap();
    set_handler(IRQ_BASE + 0, timer_irq);
    kprintf("k_ticks: PIT channel 0 at %u Hz, waiting for %u ticks\n", HZ, TICKS);
    pit_set_hz(HZ);
    pic_unmask(0);
    while (ticks < TICKS) {
        sti_hlt();
        cli();
    }
    outb(0x21, 0xFF); /* mask IRQ0 again */
    kprintf("k_ticks: done\n");
    return EXIT_OK;
}
