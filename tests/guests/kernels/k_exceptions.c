/* k_exceptions: CPU exceptions delivered through the IDT and recovered from.
 * One line each for a divide error (#DE, 0), a breakpoint (#BP, 3), an
 * invalid opcode (#UD, 6), a general protection fault from loading a
 * selector past the end of the GDT (#GP, 13, error code = the selector),
 * `int $0x80` with a handler that changes the saved EAX, `int $0x81` through
 * a gate marked not present (#NP, 11, error code 0x40a = 0x81 << 3 | 2, the
 * IDT bit), and a page fault
 * (#PF, 14) on a write to an unmapped page with paging on (error code 2 =
 * write to a not-present page, CR2 = the address).  Each line also checks the
 * saved EIP: faults point at the faulting instruction, traps (#BP, int) after
 * it.  The fault handlers resume by setting the saved EIP to a label after
 * the faulting instruction.  Exit code 0, or 1 when a check printed BAD. */
#include "runtime.h"

/* Filled by the trigger macros and the handler. */
static volatile uint32_t fault_eip, resume_eip;
static volatile uint32_t seen_vector, seen_error_code, seen_eip, seen_cr2, seen_count;
static int failed;

static const char *check(int ok)
{
    failed |= !ok;
    return ok ? "yes" : "BAD";
}

static void fault(struct frame *f)
{
    seen_vector = f->vector;
    seen_error_code = f->error_code;
    seen_eip = f->eip;
    seen_count++;
    if (f->vector == 14) {
        uint32_t cr2;
        __asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
        seen_cr2 = cr2;
    }
    if (f->vector != 3) { /* #BP is a trap: EIP is already past int3 */
        f->eip = resume_eip;
    }
}

static void syscall_handler(struct frame *f)
{
    seen_vector = f->vector;
    seen_eip = f->eip;
    seen_count++;
    f->eax = f->eax * 2 + 1; /* the "system call": a visible change to the frame */
}

/* Run `insn` with label 1 at the instruction and label 2 after it; the
 * handler resumes at 2.  `extra` clobbers are the registers `insn` uses. */
#define TRIGGER(setup, insn, ...)                                   \
    __asm__ volatile(setup "\n\tmovl $1f, %0\n\tmovl $2f, %1\n"     \
                     "1:\t" insn "\n2:"                             \
                     : "=m"(fault_eip), "=m"(resume_eip)            \
                     :                                              \
                     : "memory", ##__VA_ARGS__)

static void expect(const char *name, uint32_t vector, int has_error_code, int is_trap)
{
    int ok = seen_count == 1 && seen_vector == vector;
    kprintf("%s vector %u", name, seen_vector);
    if (has_error_code) {
        kprintf(" error code 0x%x", seen_error_code);
    }
    if (vector == 14) {
        kprintf(" cr2 0x%08x", seen_cr2);
    }
    kprintf(": handled %s, eip %s %s\n", check(ok), is_trap ? "after it" : "at the instruction",
            check(seen_eip == (is_trap ? resume_eip : fault_eip)));
    seen_count = 0;
}

/* Identity map of the first 4 MiB with 4 KiB pages: the kernel and its stack
 * stay where they are, and 0x800000 is not mapped. */
static uint32_t page_directory[1024] __attribute__((aligned(4096)));
static uint32_t page_table[1024] __attribute__((aligned(4096)));

static void paging_on(void)
{
    for (uint32_t i = 0; i < 1024; i++) {
        page_table[i] = (i << 12) | 0x3; /* present, writable */
    }
    page_directory[0] = (uint32_t)page_table | 0x3;
    __asm__ volatile("mov %0, %%cr3\n\t"
                     "mov %%cr0, %%eax\n\t"
                     "orl $0x80000000, %%eax\n\t"
                     "mov %%eax, %%cr0"
                     :
                     : "r"(page_directory)
                     : "eax", "memory");
}

static void paging_off(void)
{
    __asm__ volatile("mov %%cr0, %%eax\n\t"
                     "andl $0x7fffffff, %%eax\n\t"
                     "mov %%eax, %%cr0"
                     :
                     :
                     : "eax", "memory");
}

int kmain(uint32_t magic, const struct multiboot_info *mbi)
{
    (void)magic;
    (void)mbi;
    serial_init();
    idt_init();
    pic_remap(); /* no IRQ may arrive on an exception vector */
    set_handler(0, fault);
    set_handler(3, fault);
    set_handler(6, fault);
    set_handler(13, fault);
    set_handler(11, fault);
    set_handler(14, fault);
    set_handler(0x80, syscall_handler);
    idt_clear_gate(0x81);
    kprintf("k_exceptions: IDT installed\n");

    TRIGGER("xorl %%edx, %%edx\n\tmovl $7, %%eax\n\txorl %%ecx, %%ecx", "divl %%ecx", "eax",
            "ecx", "edx");
    expect("#DE", 0, 0, 0);

    TRIGGER("", "int3"); /* a trap: the saved EIP is label 2, right after int3 */
    expect("#BP", 3, 0, 1);

    TRIGGER("", "ud2");
    expect("#UD", 6, 0, 0);

    /* Our GDT has three descriptors (limit 23): selector 0x18 is past its end. */
    TRIGGER("movw $0x18, %%ax", "movw %%ax, %%fs", "eax");
    expect("#GP", 13, 1, 0);

    uint32_t eax;
    __asm__ volatile("movl $2f, %1\n\tint $0x80\n2:"
                     : "=a"(eax), "=m"(resume_eip)
                     : "a"(0x1234)
                     : "memory");
    expect("int 0x80", 0x80, 0, 1);
    kprintf("int 0x80: eax 0x1234 -> 0x%x %s\n", eax, check(eax == 0x2469));

    TRIGGER("", "int $0x81");
    expect("#NP", 11, 1, 0);

    paging_on();
    TRIGGER("", "movl %%eax, 0x800000");
    paging_off();
    expect("#PF", 14, 1, 0);

    kprintf("k_exceptions: done\n");
    return failed ? EXIT_CHECK_FAILED : EXIT_OK;
}
