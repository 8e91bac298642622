/* k_selfmod: writes to its own read-only code and data the CPU writes.
 * Loads a GDT kept in .rodata (so loading a selector makes the CPU set the
 * descriptor's "accessed" bit: a write into a read-only PT_LOAD segment) and
 * patches an immediate inside a function in .text, then calls it again.
 * Ring 0 with paging off may write anywhere; a machine that keeps code
 * read-only to cache it must let both writes through and see the new code.
 * Exit code 0, or 1 when a check printed BAD. */
#include "runtime.h"

static const uint64_t rodata_gdt[3] __attribute__((aligned(8))) = {
    0,
    0x00cf9a000000ffffull, /* code, accessed bit clear */
    0x00cf92000000ffffull, /* data, accessed bit clear */
};

static int failed;

static const char *check(int ok)
{
    failed |= !ok;
    return ok ? "yes" : "BAD";
}

/* Returns the 32-bit immediate of its first instruction (mov $imm, %eax). */
__attribute__((noinline, section(".text"))) static uint32_t answer(void)
{
    uint32_t v;
    __asm__ volatile("movl $0x11111111, %0" : "=a"(v));
    return v;
}

int kmain(uint32_t magic, const struct multiboot_info *mbi)
{
    (void)magic;
    (void)mbi;
    serial_init();
    struct __attribute__((packed)) {
        uint16_t limit;
        uint32_t base;
    } gdtr = {sizeof rodata_gdt - 1, (uint32_t)rodata_gdt};
    __asm__ volatile(
        "lgdt %0\n\t"
        "ljmp $0x08, $1f\n"
        "1:\n\t"
        "mov $0x10, %%cx\n\t"
        "mov %%cx, %%ds\n\t"
        "mov %%cx, %%es\n\t"
        "mov %%cx, %%ss\n\t"
        :
        : "m"(gdtr)
        : "ecx", "memory");
    /* volatile: the compiler would fold a read of a const object. */
    volatile const uint64_t *gdt = rodata_gdt;
    int accessed = (gdt[2] >> 40) & 1;
    kprintf("k_selfmod: GDT in .rodata loaded, data descriptor accessed bit set %s\n",
            check(accessed));
    uint32_t before = answer();
    /* Find the immediate and patch it. */
    volatile uint8_t *code = (volatile uint8_t *)(uintptr_t)answer;
    int patched = 0;
    for (int i = 0; i < 32; i++) {
        if (code[i] == 0x11 && code[i + 1] == 0x11 && code[i + 2] == 0x11 && code[i + 3] == 0x11) {
            code[i] = 0x22;
            code[i + 1] = 0x22;
            code[i + 2] = 0x22;
            code[i + 3] = 0x22;
            patched = 1;
            break;
        }
    }
    uint32_t after = answer();
    kprintf("k_selfmod: patched %s, answer 0x%x then 0x%x: %s\n", check(patched), before, after,
            check(before == 0x11111111u && after == 0x22222222u));
    return failed ? EXIT_CHECK_FAILED : EXIT_OK;
}
