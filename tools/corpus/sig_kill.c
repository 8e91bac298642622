/* Signals with handlers: raise, kill, SA_SIGINFO, blocked signals made
 * pending and delivered on unblock, sigsuspend, default actions ignored. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t order[16];
static volatile sig_atomic_t norder;
static volatile sig_atomic_t last_code;

static void plain(int sig) { order[norder++] = sig; }

static void info(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    order[norder++] = sig;
    last_code = si->si_code;
    if (si->si_signo != sig)
        order[norder++] = -1;
}

static const char *code_name(int code)
{
    switch (code) {
    case SI_USER: return "SI_USER";
    case SI_TKILL: return "SI_TKILL";
    case SI_QUEUE: return "SI_QUEUE";
    default: return "other";
    }
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = plain;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);

    sa.sa_handler = NULL;
    sa.sa_sigaction = info;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR2, &sa, NULL);

    raise(SIGUSR1);
    printf("after raise(SIGUSR1): %d handled\n", (int)norder);

    kill(getpid(), SIGUSR2);
    printf("after kill(SIGUSR2): code %s\n", code_name(last_code));

    union sigval v;
    v.sival_int = 42;
    sigqueue(getpid(), SIGUSR2, v);
    printf("after sigqueue(SIGUSR2): code %s\n", code_name(last_code));

    sigset_t block, old, pending;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGUSR2);
    sigprocmask(SIG_BLOCK, &block, &old);
    norder = 0;
    raise(SIGUSR2);
    raise(SIGUSR1);
    sigpending(&pending);
    printf("pending: USR1=%d USR2=%d handled=%d\n", sigismember(&pending, SIGUSR1),
           sigismember(&pending, SIGUSR2), (int)norder);
    sigprocmask(SIG_SETMASK, &old, NULL);
    printf("after unblock: handled %d:", (int)norder);
    for (int i = 0; i < norder; i++)
        printf(" %d", (int)order[i]);
    printf("\n");

    signal(SIGTERM, SIG_IGN);
    raise(SIGTERM);
    printf("SIGTERM ignored\n");

    sigset_t wait;
    sigemptyset(&wait);
    sigprocmask(SIG_BLOCK, &block, NULL);
    raise(SIGUSR1);
    norder = 0;
    sigsuspend(&wait);
    printf("sigsuspend returned after %d handler(s)\n", (int)norder);
    return 0;
}
