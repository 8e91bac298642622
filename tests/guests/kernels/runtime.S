/* runtime.S: Multiboot v1 header, entry point and interrupt stubs of the
 * test kernels (see runtime.h). */

    /* Name the file symbol: gas would otherwise use the name of gcc's
     * temporary preprocessed file, which changes from build to build. */
    .file __FILE__

#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0x00000003 /* bit 0: align modules, bit 1: want memory info */

    .section .multiboot, "a"
    .balign 4
    .long MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)

/* --- entry ---------------------------------------------------------------
 * The loader leaves EAX = 0x2BADB002, EBX = the info struct, flat CS/DS in
 * protected mode, IF clear; ESP and GDTR are undefined. */
    .text
    .globl _start
    .type _start, @function
_start:
    cli
    movl %eax, %ebp             /* magic and info survive the bss clear */
    movl %ebx, %esi
    lgdt gdt_desc
    ljmp $0x08, $1f             /* reload CS from our GDT */
1:  movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    movw %ax, %ss
    /* Clear .bss ourselves rather than trusting every loader to do it. */
    movl $__bss_start, %edi
    movl $__bss_end, %ecx
    subl %edi, %ecx
    xorl %eax, %eax
    cld
    rep stosb
    movl $stack_top, %esp
    pushl $2                    /* EFLAGS: only the always-one bit (no DF, NT, AC) */
    popfl
    pushl %esi
    pushl %ebp
    call kmain
    pushl %eax
    call exit                   /* does not return */
    .size _start, . - _start

/* --- interrupt stubs -------------------------------------------------------
 * One 16-byte stub per vector, so that the stub for vector n is at
 * isr_stubs + 16 * n.  The CPU pushes an error code for vectors 8, 10-14,
 * 17, 21, 29 and 30; the others push a 0 in its place so that every frame
 * has the same layout (struct frame). */
    .balign 16
    .globl isr_stubs
isr_stubs:
    .set vector, 0
    .rept 256
    .balign 16
    .if (vector == 8) || ((vector >= 10) && (vector <= 14)) || (vector == 17) || (vector == 21) || (vector == 29) || (vector == 30)
    .else
    pushl $0
    .endif
    pushl $vector
    jmp isr_common
    .set vector, vector + 1
    .endr

isr_common:
    pushal
    cld                         /* the C ABI wants DF clear */
    pushl %esp                  /* argument: the struct frame */
    call isr_dispatch
    addl $4, %esp
    popal
    addl $8, %esp               /* vector and error code */
    iret

/* --- GDT: null, flat 32-bit code (0x08), flat data (0x10) -----------------
 * In .data, not .rodata: loading a segment register sets the descriptor's
 * accessed bit, so the CPU writes to the GDT. */
    .data
    .balign 8
gdt:
    .quad 0
    .quad 0x00CF9A000000FFFF
    .quad 0x00CF92000000FFFF
gdt_end:
gdt_desc:
    .word gdt_end - gdt - 1     /* limit 23: selector 0x18 is past the end (k_exceptions' #GP) */
    .long gdt

    .bss
    .balign 16
    .skip 16384
stack_top:

    .section .note.GNU-stack, "", @progbits
