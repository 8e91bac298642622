/* A case found reviewing threads (issue 17): natively and under rrdbg alike. */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
#include <errno.h>
#include <time.h>
#include <sys/syscall.h>
#include <linux/futex.h>
#include <poll.h>
static int word = 0;
static volatile int stop = 0;
static void *spin(void *a) { while (!stop) ; return 0; }
int main(void) {
    pthread_t t;
    pthread_create(&t, 0, spin, 0);
    struct timespec ts = {0, 0};
    long r = syscall(SYS_futex, &word, FUTEX_WAIT, 0, &ts, 0, 0);
    printf("futex wait {0,0}: r=%ld errno=%d\n", r, r < 0 ? errno : 0);
    int p[2]; pipe(p);
    struct pollfd pf = {p[0], POLLIN, 0};
    int n = poll(&pf, 1, 0);
    printf("poll own pipe timeout 0: %d\n", n);
    struct timespec one = {0, 1};
    r = syscall(SYS_nanosleep, &one, 0);
    printf("nanosleep 1ns: %ld\n", r);
    stop = 1;
    pthread_join(t, 0);
    return 0;
}
