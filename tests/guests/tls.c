/* tls: __thread variables (static TLS, accessed via %gs on i386) with
 * initialised (.tdata) and zero (.tbss) parts, plus errno (itself TLS). */
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <stdint.h>

__thread int tls_counter = 100;            /* .tdata */
__thread char tls_name[16] = "initial";    /* .tdata */
__thread long tls_zero[8];                 /* .tbss  */
static __thread int tls_static = 7;

static __attribute__((noinline)) void bump(int n)
{
    for (int i = 0; i < n; i++) {
        tls_counter++;
        tls_zero[i % 8] += i;
    }
    tls_static *= 3;
}

int main(void)
{
    printf("initial: counter=%d name=%s static=%d\n", tls_counter, tls_name, tls_static);
    long zsum = 0;
    for (int i = 0; i < 8; i++)
        zsum += tls_zero[i];
    printf("tbss zeroed: %s\n", zsum == 0 ? "yes" : "NO");

    bump(20);
    strcpy(tls_name, "changed");
    zsum = 0;
    for (int i = 0; i < 8; i++)
        zsum += tls_zero[i];
    printf("after: counter=%d name=%s static=%d zsum=%ld\n",
           tls_counter, tls_name, tls_static, zsum);

    /* The TLS block must be reachable through %gs:0 (TCB self-pointer) */
    uintptr_t self;
    __asm__("movl %%gs:0, %0" : "=r"(self));
    printf("gs:0 self-pointer matches &tls_counter region: %s\n",
           (uintptr_t)&tls_counter < self && self - (uintptr_t)&tls_counter < 4096
               ? "yes" : "NO");

    /* errno is thread-local too */
    errno = 0;
    ssize_t r = write(-1, "x", 1);
    int e = errno;
    printf("write(-1) = %zd errno=%d%s\n", r, e, e == EBADF ? " EBADF" : "");
    errno = 12345;
    printf("errno roundtrip: %d\n", errno);
    return 0;
}
