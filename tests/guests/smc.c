/* Self-modifying code: writes a tiny function into RWX memory, runs it,
 * patches its immediate (same length, same address), runs it again. */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

typedef int (*fn_t)(void);

int main(void)
{
    unsigned char *buf = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    /* mov eax, imm32 ; add eax, 1 ; ret */
    static const unsigned char code[] = {0xb8, 1, 0, 0, 0, 0x83, 0xc0, 0x01, 0xc3};
    memcpy(buf, code, sizeof code);
    fn_t fn = (fn_t)buf;
    int total = 0;
    for (int i = 0; i < 100; i++) {
        buf[1] = (unsigned char)i; /* patch the immediate in place */
        total += fn();
    }
    printf("first=%d total=%d\n", fn(), total);
    /* Change the code's length too: nop padding before the ret. */
    static const unsigned char longer[] = {0xb8, 7, 0, 0, 0, 0x90, 0x90, 0x90, 0xc3};
    memcpy(buf, longer, sizeof longer);
    printf("longer=%d\n", fn());
    /* W^X: make it read-exec only, then run it again. */
    mprotect(buf, 4096, PROT_READ | PROT_EXEC);
    printf("rx=%d\n", fn());
    return 0;
}
