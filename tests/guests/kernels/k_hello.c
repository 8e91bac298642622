/* k_hello: what the Multiboot loader hands over -- magic, command line,
 * mem_lower/mem_upper, memory map.
 *
 * Lines starting with "raw " show values that depend on the machine's
 * firmware and on the kernel's path (the memory map, mem_lower/mem_upper,
 * the full command line, which starts with the kernel's file name); all
 * other lines are plausibility checks that any correct Multiboot machine
 * with at least 16 MiB of RAM prints the same.  Run with
 * `-append "answer=42 greeting=hello"` to get the documented output.
 * Exit code 0, or 1 when a check printed BAD. */
#include "runtime.h"

static int failed;

static const char *check(int ok)
{
    failed |= !ok;
    return ok ? "yes" : "BAD";
}

int kmain(uint32_t magic, const struct multiboot_info *mbi)
{
    serial_init();
    kprintf("k_hello: multiboot magic %s\n", check(magic == MULTIBOOT_BOOTLOADER_MAGIC));
    if (magic != MULTIBOOT_BOOTLOADER_MAGIC) {
        return EXIT_CHECK_FAILED; /* EBX means nothing then */
    }
    uint32_t flags = mbi->flags;
    kprintf("raw flags=0x%08x\n", flags);
    kprintf("flags: memory %s, cmdline %s, mmap %s\n", check(flags & MB_INFO_MEMORY),
            check(flags & MB_INFO_CMDLINE), check(flags & MB_INFO_MMAP));

    if (flags & MB_INFO_CMDLINE) {
        const char *cmdline = (const char *)mbi->cmdline;
        kprintf("raw cmdline=\"%s\"\n", cmdline);
        /* Loaders put the kernel's file name first (GRUB and QEMU do), and
         * that differs between runs; the arguments after it do not. */
        const char *args = cmdline;
        while (*args && *args != ' ') {
            args++;
        }
        while (*args == ' ') {
            args++;
        }
        kprintf("cmdline arguments: \"%s\"\n", args);
    }

    if (flags & MB_INFO_MEMORY) {
        kprintf("raw mem_lower=%u mem_upper=%u\n", mbi->mem_lower, mbi->mem_upper);
        /* mem_lower is conventional memory below the EBDA/VGA hole (up to
         * 640 KiB); mem_upper is contiguous RAM from 1 MiB. */
        kprintf("mem_lower between 512 and 640 KiB: %s\n",
                check(mbi->mem_lower >= 512 && mbi->mem_lower <= 640));
        kprintf("mem_upper at least 15 MiB: %s\n", check(mbi->mem_upper >= 15 * 1024));
    }

    if (flags & MB_INFO_MMAP) {
        extern char _start[], _end[];
        int low_ok = 0, kernel_ok = 0;
        const char *p = (const char *)mbi->mmap_addr;
        const char *end = p + mbi->mmap_length;
        while (p < end) {
            const struct multiboot_mmap_entry *e = (const void *)p;
            kprintf("raw mmap addr=0x%016llx len=0x%016llx type=%u\n", e->addr, e->len,
                    e->type);
            if (e->type == 1) {
                uint64_t last = e->addr + e->len;
                low_ok |= e->addr == 0 && last >= 512 * 1024;
                kernel_ok |= e->addr <= (uint32_t)_start && last >= (uint32_t)_end;
            }
            p += e->size + 4;
        }
        kprintf("mmap: available RAM at 0: %s\n", check(low_ok));
        kprintf("mmap: kernel image in available RAM: %s\n", check(kernel_ok));
    }

    if (flags & MB_INFO_BOOT_LOADER_NAME) {
        kprintf("raw boot_loader_name=\"%s\"\n", (const char *)mbi->boot_loader_name);
    }
    kprintf("k_hello: done\n");
    return failed ? EXIT_CHECK_FAILED : EXIT_OK;
}
