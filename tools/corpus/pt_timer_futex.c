/* A case found reviewing threads (issue 17): natively and under rrdbg alike. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <time.h>
#include <errno.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/futex.h>
static int word = 0;
static volatile int got = 0;
static volatile int stop = 0;
static void h(int s) { got++; }
static void *spinner(void *a) { while (!stop) ; return 0; }
int main(int argc, char **argv) {
    long d = atol(argv[1]);
    struct sigaction sa = {0};
    sa.sa_handler = h;
    sigaction(SIGUSR1, &sa, 0);
    pthread_t t;
    pthread_create(&t, 0, spinner, 0);
    timer_t tm;
    struct sigevent ev = {0};
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGUSR1;
    timer_create(CLOCK_MONOTONIC, &ev, &tm);
    struct itimerspec its = {{0, 0}, {0, d}};
    timer_settime(tm, 0, &its, 0);
    /* a timed wait that should time out after 1 ms (or EINTR) */
    struct timespec ts = {0, 1000000};
    long r = syscall(SYS_futex, &word, FUTEX_WAIT, 0, &ts, 0, 0);
    int e = errno;
    unsigned n = 30000000, acc;
    __asm__ volatile("xor %%eax,%%eax\n1: add $1,%%eax\n dec %%ecx\n jnz 1b" : "=a"(acc), "+c"(n) :: "cc");
    printf("d=%ld futex r=%ld errno=%d got=%d; counted %u (expect 30000000)\n", d, r, r < 0 ? e : 0, got, acc);
    stop = 1;
    pthread_join(t, 0);
    return 0;
}
