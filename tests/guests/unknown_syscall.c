/* unknown_syscall: syscall(0x7fff) is not a valid i386 syscall number,
 * so the kernel returns -ENOSYS; glibc's syscall() gives -1 / errno ENOSYS. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <sys/syscall.h>

int main(void)
{
    errno = 0;
    long r = syscall(0x7fff, 1, 2, 3);
    int e = errno;
    printf("syscall(0x7fff) returned %ld errno=%d%s (%s)\n", r, e,
           e == ENOSYS ? " ENOSYS" : "", strerror(e));
    /* a valid one afterwards, to show the process keeps going */
    long pid = syscall(SYS_getpid);
    printf("getpid via syscall(): %s\n", pid > 0 ? "ok" : "failed");
    return 0;
}
