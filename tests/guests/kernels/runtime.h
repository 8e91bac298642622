/* runtime.h: the tiny shared runtime of the test kernels (runtime.S,
 * runtime.c).  Ring 0, flat 32-bit protected mode, no paging, no libc.
 *
 * runtime.S enters from a Multiboot v1 loader, loads its own GDT (the
 * Multiboot spec leaves GDTR undefined), clears .bss, sets up a stack and
 * calls kmain(); kmain's return value goes to exit().  All output goes to
 * COM1. */
#ifndef RUNTIME_H
#define RUNTIME_H

#include <stdint.h>

/* --- exit codes shared by all kernels (QEMU's status is (code << 1) | 1) */
#define EXIT_OK 0
#define EXIT_CHECK_FAILED 1   /* a self-check printed "BAD" */
#define EXIT_UNEXPECTED 3     /* an interrupt/exception without a handler */

/* --- port I/O ------------------------------------------------------------ */
static inline void outb(uint16_t port, uint8_t value)
{
    __asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
    uint8_t value;
    __asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"(port));
    return value;
}

/* --- Multiboot v1 (only the parts the kernels read) ---------------------- */
#define MULTIBOOT_BOOTLOADER_MAGIC 0x2BADB002u
#define MB_INFO_MEMORY (1u << 0)
#define MB_INFO_CMDLINE (1u << 2)
#define MB_INFO_MMAP (1u << 6)
#define MB_INFO_BOOT_LOADER_NAME (1u << 9)

struct multiboot_info {
    uint32_t flags;
    uint32_t mem_lower; /* KiB from 0 */
    uint32_t mem_upper; /* KiB from 1 MiB */
    uint32_t boot_device;
    uint32_t cmdline;
    uint32_t mods_count;
    uint32_t mods_addr;
    uint32_t syms[4];
    uint32_t mmap_length;
    uint32_t mmap_addr;
    uint32_t drives_length;
    uint32_t drives_addr;
    uint32_t config_table;
    uint32_t boot_loader_name;
};

/* `size` does not count itself: the next entry is at (char *)e + e->size + 4. */
struct multiboot_mmap_entry {
    uint32_t size;
    uint64_t addr;
    uint64_t len;
    uint32_t type; /* 1 = available RAM */
} __attribute__((packed));

/* Each kernel defines this; the return value is the exit code. */
int kmain(uint32_t magic, const struct multiboot_info *mbi);

/* --- serial (COM1, polled output) ---------------------------------------- */
#define COM1 0x3F8
#define UART_RBR 0 /* receive buffer (read) */
#define UART_THR 0 /* transmit holding (write) */
#define UART_IER 1
#define UART_LSR 5
#define UART_LSR_DR 0x01   /* a received byte is waiting in RBR */
#define UART_LSR_THRE 0x20 /* THR can take a byte */

void serial_init(void);
void serial_putc(char c); /* '\n' goes out as "\r\n", as serial consoles expect */
void serial_puts(const char *s);
/* printf subset: %c %s %d %u %x, a zero-padded width (%08x), %llx, %%. */
void kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Write `code` to the isa-debug-exit port 0xf4, which ends the run; if
 * nothing is listening there, stop the CPU for good. */
__attribute__((noreturn)) void exit(int code);

/* --- interrupts ----------------------------------------------------------- */

/* The stack as runtime.S's common stub leaves it for the C handler: the
 * registers from `pusha`, the vector and error code the stub pushed (0 when
 * the CPU pushes none), then what the CPU pushed (no ss:esp: ring 0 only).
 * Handlers may change any field; it is restored on `iret`. */
struct frame {
    uint32_t edi, esi, ebp, esp_unused, ebx, edx, ecx, eax;
    uint32_t vector, error_code;
    uint32_t eip, cs, eflags;
};

typedef void (*handler_fn)(struct frame *f);

/* Fill all 256 IDT gates (32-bit interrupt gates, so IF is clear in
 * handlers) with runtime.S's stubs and load the IDT.  A vector without a
 * handler prints "unexpected interrupt ..." and exits EXIT_UNEXPECTED. */
void idt_init(void);
void set_handler(uint8_t vector, handler_fn handler);
/* Mark a gate not present: using it raises #NP instead. */
void idt_clear_gate(uint8_t vector);

/* 8259 pair: IRQ 0-7 -> vectors 0x20-0x27, IRQ 8-15 -> 0x28-0x2f (away from
 * the CPU exceptions, where the BIOS leaves IRQ 0-7), everything masked.
 * The common stub sends the EOI after an IRQ handler returns. */
#define IRQ_BASE 0x20
void pic_remap(void);
void pic_unmask(int irq);
void pic_eoi(int irq);

/* 8254 channel 0, mode 2 (rate generator): IRQ0 at about `hz`. */
void pit_set_hz(uint32_t hz);

static inline void cli(void) { __asm__ volatile("cli" ::: "memory"); }

/* `sti; hlt` back to back: sti delays interrupts by one instruction, so an
 * interrupt that arrives after the caller's last check still wakes the hlt
 * instead of being taken before it (and then sleeping forever). */
static inline void sti_hlt(void) { __asm__ volatile("sti; hlt" ::: "memory"); }

#endif
