/* SIGFPE from integer division by zero, recovered with siglongjmp. */
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static sigjmp_buf env;
static volatile sig_atomic_t code;

static void on_fpe(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    code = si->si_code;
    siglongjmp(env, 1);
}

int main(int argc, char **argv)
{
    (void)argv;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fpe;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGFPE, &sa, NULL);

    volatile int zero = argc - 1;
    for (volatile int i = 0; i < 3; i++) {
        if (sigsetjmp(env, 1) == 0) {
            volatile int r = 100 / zero;
            printf("no fault: %d\n", r);
        } else {
            printf("round %d: SIGFPE si_code=%s\n", i, code == FPE_INTDIV ? "FPE_INTDIV" : "?");
        }
    }
    volatile int big = -2147483647 - 1, m1 = -1;
    if (sigsetjmp(env, 1) == 0) {
        volatile int r = big / m1;
        printf("no fault: %d\n", r);
    } else {
        printf("INT_MIN/-1: SIGFPE\n");
    }
    return 0;
}
