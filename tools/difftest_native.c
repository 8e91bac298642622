/* The native side of tools/difftest.py: run test blobs on the real CPU.
 *
 * Input (stdin): records of [u32 length][blob][IN_SIZE bytes of input
 * state].  Each blob is position-dependent code assembled for CODE_ADDR; it
 * reads its input state at DATA_ADDR, writes its output state after it, and
 * returns (C calling convention, callee-saved registers preserved by the
 * blob itself).  Output (stdout), per record: [i32 signal (0: none)]
 * [OUT_SIZE bytes of output state].  A blob that faults (SIGILL, SIGFPE,
 * SIGSEGV, SIGBUS, SIGTRAP) is reported with its signal.
 *
 * Build: gcc -m32 -O1 -o difftest_native tools/difftest_native.c
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define CODE_ADDR 0x20000000u
#define CODE_SIZE 0x10000u
#define DATA_ADDR 0x20100000u
#define DATA_SIZE 0x4000u
#define IN_SIZE 0x400u
#define OUT_SIZE 0x400u

static sigjmp_buf back;
static volatile sig_atomic_t caught;

static void on_fault(int sig)
{
    caught = sig;
    siglongjmp(back, 1);
}

static int read_all(void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(0, (char *)buf + got, n - got);
        if (r <= 0)
            return got == 0 && r == 0 ? 0 : -1;
        got += (size_t)r;
    }
    return 1;
}

static void write_all(const void *buf, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(1, (const char *)buf + done, n - done);
        if (w <= 0)
            exit(3);
        done += (size_t)w;
    }
}

int main(void)
{
    void *code = mmap((void *)CODE_ADDR, CODE_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    void *data = mmap((void *)DATA_ADDR, DATA_SIZE, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (code != (void *)CODE_ADDR || data != (void *)DATA_ADDR) {
        fprintf(stderr, "difftest_native: cannot map the test pages\n");
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fault;
    sa.sa_flags = SA_NODEFER;
    int sigs[] = {SIGILL, SIGFPE, SIGSEGV, SIGBUS, SIGTRAP};
    for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);
    for (;;) {
        uint32_t length;
        int r = read_all(&length, 4);
        if (r == 0)
            return 0;
        if (r < 0 || length > CODE_SIZE)
            return 3;
        if (read_all(code, length) != 1 || read_all(data, IN_SIZE) != 1)
            return 3;
        memset((char *)data + IN_SIZE, 0, OUT_SIZE);
        int32_t sig = 0;
        caught = 0;
        if (sigsetjmp(back, 1) == 0)
            ((void (*)(void))code)();
        else
            sig = caught;
        write_all(&sig, 4);
        write_all((char *)data + IN_SIZE, OUT_SIZE);
    }
}
