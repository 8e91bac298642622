/* k_busy: timer interrupts that arrive while the kernel computes, and while
 * it has interrupts disabled.
 *
 * The PIT runs at 10 kHz.  Phase 1 sums a series with interrupts enabled,
 * so ticks interrupt ordinary instructions.  Phase 2 spins with interrupts
 * disabled until a tick is pending, then executes `sti; nop`: the tick must
 * be taken after the nop (sti's interrupt shadow), at label sti_done.
 * Phase 3 does the same with `pushf; cli; ...; popf`: the tick must be
 * taken right after the popf, at label popf_done.  The handler records where
 * it interrupted.  Output depends on nothing timing-related:
 *
 *     k_busy: sum 4292870144
 *     k_busy: ticks during the sum: yes
 *     k_busy: after sti: taken at sti_done
 *     k_busy: after popf: taken at popf_done
 *
 * The command line `loop=N` makes phase 1 N iterations instead of 4194304
 * (a short run for tests that step through all of it; the sum changes).
 * Exit code 0. */
#include "runtime.h"

#define HZ 10000

static volatile uint32_t ticks;
static volatile uint32_t last_eip;

extern char sti_done[], popf_done[];

static void timer_irq(struct frame *f)
{
    ticks++;
    last_eip = f->eip;
}

/* Spin with interrupts disabled until IRQ0 is pending at the PIC (its
 * request register, read through OCW3). */
static void wait_for_pending_tick(void)
{
    outb(0x20, 0x0A); /* OCW3: the next read of port 0x20 returns IRR */
    while (!(inb(0x20) & 1)) {
    }
}

/* N from "loop=N" anywhere on the command line, else `fallback`. */
static uint32_t loop_count(const struct multiboot_info *mbi, uint32_t fallback)
{
    if (!(mbi->flags & MB_INFO_CMDLINE)) {
        return fallback;
    }
    for (const char *p = (const char *)mbi->cmdline; *p; p++) {
        if (p[0] == 'l' && p[1] == 'o' && p[2] == 'o' && p[3] == 'p' && p[4] == '=') {
            uint32_t n = 0;
            for (p += 5; *p >= '0' && *p <= '9'; p++) {
                n = n * 10 + (uint32_t)(*p - '0');
            }
            return n;
        }
    }
    return fallback;
}

static const char *where(uint32_t eip)
{
    if (eip == (uint32_t)sti_done) {
        return "sti_done";
    }
    if (eip == (uint32_t)popf_done) {
        return "popf_done";
    }
    return "somewhere else";
}

int kmain(uint32_t magic, const struct multiboot_info *mbi)
{
    (void)magic;
    uint32_t n = loop_count(mbi, 1u << 22);
    serial_init();
    idt_init();
    pic_remap();
    set_handler(IRQ_BASE + 0, timer_irq);
    pit_set_hz(HZ);
    pic_unmask(0);

    /* Phase 1: over 10 ms of virtual time (and of QEMU's) in a loop the
     * ticks interrupt anywhere. */
    __asm__ volatile("sti");
    uint32_t sum = 0;
    for (uint32_t i = 0; i < n; i++) {
        sum += i;
        __asm__ volatile("" : "+r"(sum));
    }
    __asm__ volatile("cli");
    uint32_t seen = ticks;
    kprintf("k_busy: sum %u\n", sum);
    kprintf("k_busy: ticks during the sum: %s\n", seen > 0 ? "yes" : "no");

    /* Phase 2: a tick waits for sti; it is taken after the next instruction. */
    last_eip = 0;
    wait_for_pending_tick();
    __asm__ volatile("sti\n\tnop\n\t.globl sti_done\nsti_done:\n\tcli" ::: "memory");
    kprintf("k_busy: after sti: taken at %s\n", where(last_eip));

    /* Phase 3: popf brings IF back; the tick is taken right after it.  (One
     * asm statement: the compiler must not see the stack change.) */
    last_eip = 0;
    __asm__ volatile("sti\n\tnop\n\tpushf\n\tcli\n\t"
                     "movb $0x0a, %%al\n\toutb %%al, $0x20\n"
                     "1:\tinb $0x20, %%al\n\ttestb $1, %%al\n\tjz 1b\n\t"
                     "popf\n\t.globl popf_done\npopf_done:\n\tcli"
                     :
                     :
                     : "eax", "memory", "cc");
    kprintf("k_busy: after popf: taken at %s\n", where(last_eip));

    outb(0x21, 0xFF);
    return EXIT_OK;
}
