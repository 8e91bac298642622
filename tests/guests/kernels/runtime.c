/* runtime.c: serial output, exit, IDT, PIC and PIT helpers of the test
 * kernels (see runtime.h). */
#include <stdarg.h>

#include "runtime.h"

/* --- serial ---------------------------------------------------------------- */

void serial_init(void)
{
    outb(COM1 + UART_IER, 0x00);     /* no interrupts until a kernel asks */
    outb(COM1 + 3, 0x80);            /* LCR: DLAB on to reach the divisor */
    outb(COM1 + 0, 0x01);            /* divisor 1 = 115200 baud */
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03);            /* LCR: 8N1, DLAB off */
    outb(COM1 + 4, 0x0B);            /* MCR: DTR, RTS, OUT2 (OUT2 gates the IRQ line on PCs) */
    /* FCR is left alone on purpose: clearing the receive FIFO would throw
     * away a byte the host may already have delivered (QEMU feeds stdin as
     * soon as RBR is free, even before the kernel runs), so k_echo would
     * lose input depending on timing.  Without FIFO the UART acts like a
     * 16450: one byte at a time in RBR. */
}

void serial_putc(char c)
{
    if (c == '\n') {
        serial_putc('\r');
    }
    while (!(inb(COM1 + UART_LSR) & UART_LSR_THRE)) {
    }
    outb(COM1 + UART_THR, (uint8_t)c);
}

void serial_puts(const char *s)
{
    while (*s) {
        serial_putc(*s++);
    }
}

static void put_unsigned(uint32_t v, unsigned base, int width, char pad)
{
    char digits[32];
    int n = 0;
    do {
        digits[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (width-- > n) {
        serial_putc(pad);
    }
    while (n) {
        serial_putc(digits[--n]);
    }
}

void kprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            serial_putc(*fmt);
            continue;
        }
        fmt++;
        char pad = ' ';
        int width = 0;
        if (*fmt == '0') {
            pad = '0';
            fmt++;
        }
        while (*fmt >= '0' && *fmt <= '9') {
            width = width * 10 + (*fmt++ - '0');
        }
        switch (*fmt) {
        case 'c':
            serial_putc((char)va_arg(ap, int));
            break;
        case 's':
            serial_puts(va_arg(ap, const char *));
            break;
        case 'd': {
            int v = va_arg(ap, int);
            if (v < 0) {
                serial_putc('-');
                put_unsigned(0u - (uint32_t)v, 10, width, pad);
            } else {
                put_unsigned((uint32_t)v, 10, width, pad);
            }
            break;
        }
        case 'u':
            put_unsigned(va_arg(ap, uint32_t), 10, width, pad);
            break;
        case 'x':
            put_unsigned(va_arg(ap, uint32_t), 16, width, pad);
            break;
        case 'l': /* only %llx: hex needs no 64-bit division (no libgcc) */
            fmt += 2;
            {
                uint64_t v = va_arg(ap, uint64_t);
                uint32_t hi = (uint32_t)(v >> 32);
                if (hi) {
                    put_unsigned(hi, 16, width > 8 ? width - 8 : 0, pad);
                    put_unsigned((uint32_t)v, 16, 8, '0');
                } else {
                    put_unsigned((uint32_t)v, 16, width, pad);
                }
            }
            break;
        case '%':
            serial_putc('%');
            break;
        default: /* unknown conversion: show it rather than guess */
            serial_putc('%');
            serial_putc(*fmt);
            break;
        }
    }
    va_end(ap);
}

/* --- exit -------------------------------------------------------------------- */

void exit(int code)
{
    outb(0xf4, (uint8_t)code);
    for (;;) {
        __asm__ volatile("cli; hlt");
    }
}

/* --- IDT ---------------------------------------------------------------------- */

struct idt_gate {
    uint16_t offset_low;
    uint16_t selector;
    uint8_t zero;
    uint8_t type_attr;
    uint16_t offset_high;
} __attribute__((packed));

struct table_register {
    uint16_t limit;
    uint32_t base;
} __attribute__((packed));

extern char isr_stubs[]; /* runtime.S: 16 bytes per vector */

static struct idt_gate idt[256];
static handler_fn handlers[256];

void idt_init(void)
{
    for (int v = 0; v < 256; v++) {
        uint32_t stub = (uint32_t)isr_stubs + 16u * (uint32_t)v;
        idt[v].offset_low = (uint16_t)stub;
        idt[v].selector = 0x08;
        idt[v].zero = 0;
        idt[v].type_attr = 0x8E; /* present, DPL 0, 32-bit interrupt gate */
        idt[v].offset_high = (uint16_t)(stub >> 16);
    }
    struct table_register idtr = {sizeof idt - 1, (uint32_t)idt};
    __asm__ volatile("lidt %0" : : "m"(idtr));
}

void set_handler(uint8_t vector, handler_fn handler)
{
    handlers[vector] = handler;
}

void idt_clear_gate(uint8_t vector)
{
    idt[vector].type_attr &= 0x7F;
}

/* Called by runtime.S's common stub with interrupts disabled. */
void isr_dispatch(struct frame *f);
void isr_dispatch(struct frame *f)
{
    handler_fn handler = handlers[f->vector & 0xff];
    if (!handler) {
        kprintf("unexpected interrupt: vector %u error code 0x%x eip 0x%08x\n",
                f->vector, f->error_code, f->eip);
        exit(EXIT_UNEXPECTED);
    }
    handler(f);
    if (f->vector >= IRQ_BASE && f->vector < IRQ_BASE + 16) {
        pic_eoi((int)f->vector - IRQ_BASE);
    }
}

/* --- 8259 PIC --------------------------------------------------------------------- */

#define PIC1_CMD 0x20
#define PIC1_DATA 0x21
#define PIC2_CMD 0xA0
#define PIC2_DATA 0xA1

/* No io_wait (out to port 0x80) between the writes: emulated PICs do not
 * need it, and it would be one more device a machine must provide. */
void pic_remap(void)
{
    outb(PIC1_CMD, 0x11);       /* ICW1: init, edge triggered, ICW4 follows */
    outb(PIC2_CMD, 0x11);
    outb(PIC1_DATA, IRQ_BASE);  /* ICW2: vector base */
    outb(PIC2_DATA, IRQ_BASE + 8);
    outb(PIC1_DATA, 0x04);      /* ICW3: slave on IRQ2 */
    outb(PIC2_DATA, 0x02);      /* ICW3: slave identity 2 */
    outb(PIC1_DATA, 0x01);      /* ICW4: 8086 mode, normal EOI */
    outb(PIC2_DATA, 0x01);
    outb(PIC1_DATA, 0xFF);      /* mask everything; kernels unmask what they use */
    outb(PIC2_DATA, 0xFF);
}

void pic_unmask(int irq)
{
    if (irq >= 8) {
        outb(PIC2_DATA, inb(PIC2_DATA) & (uint8_t)~(1u << (irq - 8)));
        irq = 2; /* the cascade must be open too */
    }
    outb(PIC1_DATA, inb(PIC1_DATA) & (uint8_t)~(1u << irq));
}

void pic_eoi(int irq)
{
    if (irq >= 8) {
        outb(PIC2_CMD, 0x20);
    }
    outb(PIC1_CMD, 0x20);
}

/* --- 8254 PIT -------------------------------------------------------------------------- */

void pit_set_hz(uint32_t hz)
{
    uint32_t divisor = 1193182u / hz;   /* input clock 1.193182 MHz */
    outb(0x43, 0x34);                   /* channel 0, lobyte/hibyte, mode 2, binary */
    outb(0x40, (uint8_t)divisor);
    outb(0x40, (uint8_t)(divisor >> 8));
}
