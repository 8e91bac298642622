/* k_fpu: the x87/SSE state a Multiboot kernel starts with, at ring 0, and a
 * few results that depend on it.  Prints the privilege level, CR0's
 * MP/EM/TS/ET/NE bits, the x87 control, status and tag words before any FPU
 * instruction, then the precision of a division (the control word's
 * precision field) and its status word (PE), and after enabling SSE (CR4.OSFXSR) MXCSR before and
 * after an inexact division.  Compared with qemu-system-i386, whose reset
 * state is that of FNINIT (a real CPU's reset state differs: FCW 0x0040,
 * tags 0x5555, but a boot loader has run FNINIT by the time a kernel
 * starts).  Exit code 0. */
#include "runtime.h"

struct fpu_env {
    uint32_t cw, sw, tw, ip, cs, dp, ds;
};

static struct fpu_env env;
static uint32_t quotient[2]; /* a double */
static uint32_t mxcsr_reset, mxcsr_after;
static uint32_t one = 0x3f800000u, three = 0x40400000u; /* 1.0f, 3.0f */

int kmain(uint32_t magic, const struct multiboot_info *mbi)
{
    (void)magic;
    (void)mbi;
    serial_init();

    uint32_t cs, cr0, cr4;
    __asm__ volatile("mov %%cs, %0" : "=r"(cs));
    __asm__ volatile("mov %%cr0, %0" : "=r"(cr0));
    kprintf("k_fpu: cpl %u cr0 mp %u em %u ts %u et %u ne %u\n", cs & 3, (cr0 >> 1) & 1,
            (cr0 >> 2) & 1, (cr0 >> 3) & 1, (cr0 >> 4) & 1, (cr0 >> 5) & 1);

    /* fnstenv does not change the state it stores (unlike fnsave). */
    __asm__ volatile("fnstenv %0" : "=m"(env));
    kprintf("k_fpu: at entry fcw %04x fsw %04x ftw %04x\n", env.cw & 0xffff, env.sw & 0xffff,
            env.tw & 0xffff);

    /* 1/3 in double precision: its low bits show the precision control. */
    __asm__ volatile("fld1\n\tfld1\n\tfadd %%st(0), %%st(0)\n\tfadd %%st(1), %%st(0)\n\t"
                     "fdivrp\n\tfstpl %0"
                     : "=m"(quotient));
    __asm__ volatile("fnstenv %0" : "=m"(env));
    kprintf("k_fpu: 1/3 %08x%08x fsw %04x ftw %04x\n", quotient[1], quotient[0],
            env.sw & 0xffff, env.tw & 0xffff);

    __asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
    cr4 |= 1u << 9; /* OSFXSR: SSE instructions allowed */
    __asm__ volatile("mov %0, %%cr4" : : "r"(cr4));
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr_reset));
    /* 1/3 in single precision: inexact, so MXCSR's PE is set. */
    __asm__ volatile("movss %1, %%xmm1\n\tdivss %2, %%xmm1\n\tstmxcsr %0"
                     : "=m"(mxcsr_after)
                     : "m"(one), "m"(three));
    kprintf("k_fpu: mxcsr %08x after divss %08x\n", mxcsr_reset, mxcsr_after);
    return EXIT_OK;
}
