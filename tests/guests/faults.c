/* faults KIND POS: end with one fault of KIND, placed at POS in its block.
 *
 * KIND: read, write (unmapped memory), rodata (store to read-only data),
 *   prot (load from a PROT_NONE page), div (divide error), ud2 (invalid
 *   opcode), jump (to an unmapped address), call (into non-executable
 *   memory), stack (overflow into the guard), hlt and cli (privileged), in
 *   (port I/O), int3 (breakpoint trap), intn (int $0x21 through a gate user
 *   code may not use).
 * POS: start, middle or end: the faulting instruction is the first, one in
 *   the middle, or the last one before the jump that ends its block.
 *   Instructions that themselves end a block (jump, call, int3, intn, ud2)
 *   are only ever last; POS then says what comes before them.
 *
 * Every variant first changes registers and flags in the same block, so a
 * report at the wrong instruction shows in the registers too.  Native runs
 * are the reference: tests compare the signal and pc with gdb's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static const int rodata_word = 7;
static unsigned char data_code[16] = {0xc3};

#define BAD 0x12345678

/* Each body is placed between the two halves of a block.  PRE and POST set
 * up the position: START begins a new block right before the body. */
#define START "jmp 1f\n1:\n"
#define MIDDLE "incl %%ecx\n addl $3, %%edx\n cmpl %%ecx, %%edx\n"
#define TAIL "\n incl %%ecx\n addl $5, %%edx\n jmp 2f\n2:\n"

#define RUN(pos, body, ...)                                                    \
    do {                                                                       \
        if (!strcmp(pos, "start"))                                             \
            __asm__ volatile(START body TAIL __VA_ARGS__);                     \
        else if (!strcmp(pos, "middle"))                                       \
            __asm__ volatile(MIDDLE body TAIL __VA_ARGS__);                    \
        else                                                                   \
            __asm__ volatile(MIDDLE MIDDLE body "\n jmp 2f\n2:\n" __VA_ARGS__); \
    } while (0)

#define REGS : : "a"(target), "c"(1), "d"(2) : "memory", "cc"

/* Frames of 64 KiB whose first access is their lowest byte: that store is
 * the first to reach the guard below the 8 MiB stack, wherever the stack
 * starts (native runs start it elsewhere). */
static int deep(int n)
{
    volatile char pad[65536];
    pad[0] = (char)n;
    return deep(n + 1) + pad[0];
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: faults KIND start|middle|end\n");
        return 2;
    }
    const char *kind = argv[1], *pos = argv[2];
    void *target = (void *)BAD;
    printf("faults %s %s\n", kind, pos);
    fflush(stdout);
    if (!strcmp(kind, "read"))
        RUN(pos, "movl (%%eax), %%ebx", REGS);
    else if (!strcmp(kind, "write"))
        RUN(pos, "movl %%ecx, 8(%%eax)", REGS);
    else if (!strcmp(kind, "rodata")) {
        target = (void *)&rodata_word;
        RUN(pos, "addl %%ecx, (%%eax)", REGS);
    } else if (!strcmp(kind, "prot")) {
        target = mmap(0, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        RUN(pos, "movzbl 5(%%eax), %%ebx", REGS);
    } else if (!strcmp(kind, "div")) {
        target = 0;
        RUN(pos, "movl %%edx, %%ebx\n xorl %%edx, %%edx\n divl %%eax", REGS);
    } else if (!strcmp(kind, "ud2"))
        RUN(pos, "ud2", REGS);
    else if (!strcmp(kind, "jump"))
        RUN(pos, "jmp *%%eax", REGS);
    else if (!strcmp(kind, "call")) {
        target = data_code;
        RUN(pos, "call *%%eax", REGS);
    } else if (!strcmp(kind, "stack"))
        return deep(0);
    else if (!strcmp(kind, "hlt"))
        RUN(pos, "hlt", REGS);
    else if (!strcmp(kind, "cli"))
        RUN(pos, "cli", REGS);
    else if (!strcmp(kind, "in"))
        RUN(pos, "inb $0x60, %%al", REGS);
    else if (!strcmp(kind, "int3"))
        RUN(pos, "int3", REGS);
    else if (!strcmp(kind, "intn"))
        RUN(pos, "int $0x21", REGS);
    else {
        fprintf(stderr, "faults: unknown kind %s\n", kind);
        return 2;
    }
    printf("no fault\n");
    return 0;
}
