/* k_echo: interrupt-driven serial echo.  Enables the UART's receive
 * interrupt (IER bit 0) and IRQ4, then sleeps in `sti; hlt`.  The IRQ4
 * handler reads RBR while LSR bit 0 says a byte is there and echoes each
 * byte uppercased; on '.' it prints how many bytes it received (the '.'
 * included) and the kernel exits 0.  Input after the '.' is ignored.
 *
 * Input "hello world." gives
 *     k_echo: type text ending in '.'
 *     HELLO WORLD.
 *     k_echo: 12 bytes
 * Nothing is printed per interrupt, so the output does not depend on how the
 * bytes were spread over interrupts. */
#include "runtime.h"

#define IRQ_COM1 4

static volatile uint32_t received;
static volatile int done;

static void com1_irq(struct frame *f)
{
    (void)f;
    /* Reading IIR acknowledges the interrupt on a real 16550; the loop
     * drains everything that arrived, so one interrupt may cover several
     * bytes and an interrupt may find nothing left to read. */
    (void)inb(COM1 + 2);
    while (!done && (inb(COM1 + UART_LSR) & UART_LSR_DR)) {
        char c = (char)inb(COM1 + UART_RBR);
        received++;
        serial_putc(c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c);
        if (c == '.') {
            done = 1;
        }
    }
}

int kmain(uint32_t magic, const struct multiboot_info *mbi)
{
    (void)magic;
    (void)mbi;
    serial_init();
    idt_init();
    pic_remap();
    set_handler(IRQ_BASE + IRQ_COM1, com1_irq);
    kprintf("k_echo: type text ending in '.'\n");
    outb(COM1 + UART_IER, 0x01); /* received data available */
    pic_unmask(IRQ_COM1);
    while (!done) {
        sti_hlt();
        cli(); /* re-check `done` with interrupts off (see sti_hlt) */
    }
    outb(COM1 + UART_IER, 0x00);
    kprintf("\nk_echo: %u bytes\n", received);
    return EXIT_OK;
}
