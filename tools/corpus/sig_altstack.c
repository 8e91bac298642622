/* sigaltstack: a handler runs on the alternate stack; SA_RESETHAND and
 * SA_RESTART flags; the handler's mask (sa_mask) is in force inside it. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *alt;
static volatile int on_alt;
static volatile int usr2_blocked_inside;

static void handler(int sig)
{
    char here;
    (void)sig;
    on_alt = &here >= alt && &here < alt + SIGSTKSZ * 4;
    sigset_t cur;
    sigprocmask(SIG_SETMASK, NULL, &cur);
    usr2_blocked_inside = sigismember(&cur, SIGUSR2);
}

int main(void)
{
    alt = malloc(SIGSTKSZ * 4);
    stack_t ss;
    ss.ss_sp = alt;
    ss.ss_size = SIGSTKSZ * 4;
    ss.ss_flags = 0;
    sigaltstack(&ss, NULL);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = SA_ONSTACK | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGUSR2);
    sigaction(SIGUSR1, &sa, NULL);

    raise(SIGUSR1);
    printf("handler on alternate stack: %d\n", on_alt);
    printf("SIGUSR2 blocked inside handler: %d\n", usr2_blocked_inside);
    struct sigaction now;
    sigaction(SIGUSR1, NULL, &now);
    printf("SA_RESETHAND restored SIG_DFL: %d\n", now.sa_handler == SIG_DFL);
    stack_t cur;
    sigaltstack(NULL, &cur);
    printf("altstack size ok: %d, disabled=%d\n", cur.ss_size == SIGSTKSZ * 4,
           (cur.ss_flags & SS_DISABLE) != 0);
    return 0;
}
