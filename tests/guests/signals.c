/* Signals as Linux delivers them: handlers, masks, frames, faults, timers.
   Every line it prints is the same natively and under rrdbg (no addresses,
   no times): tests/machine/test_guests.py compares the two byte for byte. */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

static volatile sig_atomic_t hits, nested, depth, max_depth;
static volatile int last_code, last_sig, last_pid_ok;
static volatile void *last_addr;
static sigjmp_buf env;
static char altstack[65536];
static volatile int on_alt;

static void count(int sig) { (void)sig; hits++; }

static void info_handler(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    last_sig = sig;
    last_code = si->si_code;
    last_pid_ok = si->si_pid == getpid();
    hits++;
}

static void nest(int sig)
{
    depth++;
    if (depth > max_depth)
        max_depth = depth;
    if (depth < 3)
        raise(sig); /* SA_NODEFER: runs again at once, nested */
    depth--;
}

static void on_alt_handler(int sig)
{
    char here;
    (void)sig;
    on_alt = &here >= altstack && &here < altstack + sizeof altstack;
}

static void fault_handler(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    last_sig = sig;
    last_code = si->si_code;
    last_addr = si->si_addr;
    siglongjmp(env, 1);
}

static void fp_handler(int sig)
{
    (void)sig;
    volatile double x = 1.0;
    for (int i = 0; i < 10; i++)
        x = x * 3.0 + 0.5; /* clobbers x87 registers */
    hits += (int)x > 0;
}

static volatile sig_atomic_t ticks;
static void tick(int sig) { (void)sig; ticks++; }

static void sigaction_of(int sig, void (*fn)(int), int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

static void siginfo_of(int sig, void (*fn)(int, siginfo_t *, void *), int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fn;
    sa.sa_flags = SA_SIGINFO | flags;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);

    /* 1. A handler for a signal sent with kill, raise, tgkill. */
    sigaction_of(SIGUSR1, count, 0);
    kill(getpid(), SIGUSR1);
    raise(SIGUSR1);
    syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGUSR1);
    printf("handler: %d hits\n", (int)hits);

    /* 2. SA_SIGINFO: si_code and si_pid. */
    siginfo_of(SIGUSR2, info_handler, 0);
    kill(getpid(), SIGUSR2);
    printf("siginfo kill: sig=%d code=%d pid_ok=%d\n", last_sig, last_code, last_pid_ok);
    raise(SIGUSR2);
    printf("siginfo raise: code=%d\n", last_code);

    /* 3. Blocked signals stay pending until unblocked; standard ones once. */
    sigset_t set, old, pend;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    hits = 0;
    sigprocmask(SIG_BLOCK, &set, &old);
    raise(SIGUSR1);
    raise(SIGUSR1);
    sigpending(&pend);
    printf("blocked: hits=%d pending=%d\n", (int)hits, sigismember(&pend, SIGUSR1));
    sigprocmask(SIG_SETMASK, &old, NULL);
    printf("unblocked: hits=%d\n", (int)hits);

    /* 4. SA_RESETHAND: the second one is ignored because SIGCHLD's default is. */
    hits = 0;
    sigaction_of(SIGCHLD, count, SA_RESETHAND);
    raise(SIGCHLD);
    raise(SIGCHLD);
    printf("resethand: hits=%d\n", (int)hits);

    /* 5. SA_NODEFER: the handler nests. */
    sigaction_of(SIGUSR1, nest, SA_NODEFER);
    raise(SIGUSR1);
    printf("nodefer: max depth %d\n", (int)max_depth);

    /* 6. sigaltstack and SA_ONSTACK. */
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
    sigaltstack(&ss, NULL);
    sigaction_of(SIGUSR2, on_alt_handler, SA_ONSTACK);
    raise(SIGUSR2);
    stack_t now;
    sigaltstack(NULL, &now);
    printf("altstack: handler on it %d, flags after %d\n", on_alt, now.ss_flags);

    /* 7. Faults to handlers and siglongjmp out of them. */
    siginfo_of(SIGSEGV, fault_handler, 0);
    if (sigsetjmp(env, 1) == 0)
        *(volatile int *)0x1234 = 1;
    printf("segv: sig=%d code=%d addr=%p\n", last_sig, last_code, (void *)last_addr);
    if (sigsetjmp(env, 1) == 0)
        *(volatile int *)main = 1; /* write to read-only text */
    printf("segv on text: code=%d addr_is_main=%d\n", last_code, last_addr == (void *)main);
    siginfo_of(SIGFPE, fault_handler, 0);
    volatile int zero = 0;
    volatile int fpes = 0;
    for (volatile int i = 0; i < 3; i++) /* again and again: each one a clean #DE */
        if (sigsetjmp(env, 1) == 0)
            zero = 10 / zero;
        else
            fpes++;
    printf("fpe: sig=%d code=%d times=%d\n", last_sig, last_code, fpes);
    siginfo_of(SIGILL, fault_handler, 0);
    if (sigsetjmp(env, 1) == 0)
        __asm__ volatile("ud2");
    printf("ill: sig=%d code=%d\n", last_sig, last_code);
    sigprocmask(SIG_SETMASK, NULL, &old);
    printf("mask after siglongjmp: segv blocked %d\n", sigismember(&old, SIGSEGV));

    /* 8. The x87 state survives a handler that uses it. */
    sigaction_of(SIGUSR1, fp_handler, 0);
    volatile double a = 2.5, b = 4.0;
    double c = a * b;
    raise(SIGUSR1);
    c = c + a * b;
    printf("fpu: %.3f\n", c);

    /* 9. setitimer ticks, pause until five arrived. */
    sigaction_of(SIGALRM, tick, 0);
    struct itimerval it = {{0, 2000}, {0, 2000}};
    setitimer(ITIMER_REAL, &it, NULL);
    while (ticks < 5)
        pause();
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    printf("itimer: ticks >= 5: %d\n", ticks >= 5);

    /* 10. An alarm interrupts a sleep: EINTR and time left. */
    ticks = 0;
    struct itimerval once = {{0, 0}, {0, 20000}};
    setitimer(ITIMER_REAL, &once, NULL);
    struct timespec req = {5, 0}, rem = {0, 0};
    int r = nanosleep(&req, &rem);
    printf("nanosleep: r=%d errno=%s ticks=%d rem>0 %d\n", r, r ? strerror(errno) : "-", ticks,
           rem.tv_sec > 0 || rem.tv_nsec > 0);

    /* 11. sigsuspend with the signal blocked outside it. */
    sigemptyset(&set);
    sigaddset(&set, SIGALRM);
    sigprocmask(SIG_BLOCK, &set, &old);
    ticks = 0;
    setitimer(ITIMER_REAL, &once, NULL);
    sigset_t wait_mask = old;
    sigdelset(&wait_mask, SIGALRM);
    r = sigsuspend(&wait_mask);
    sigprocmask(SIG_SETMASK, NULL, &pend);
    printf("sigsuspend: r=%d errno=%s ticks=%d alrm still blocked %d\n", r, strerror(errno),
           ticks, sigismember(&pend, SIGALRM));

    /* 12. sigtimedwait takes a blocked pending signal without a handler. */
    raise(SIGALRM);
    siginfo_t si;
    struct timespec zero_ts = {0, 0};
    r = sigtimedwait(&set, &si, &zero_ts);
    printf("sigtimedwait: %d code=%d\n", r, si.si_code);
    r = sigtimedwait(&set, &si, &zero_ts);
    printf("sigtimedwait empty: %d %s\n", r, strerror(errno));
    sigprocmask(SIG_SETMASK, &old, NULL);

    /* 13. alarm() returns what is left of the previous one. */
    sigaction_of(SIGALRM, tick, 0);
    alarm(100);
    printf("alarm left: %u\n", alarm(0));

    /* 14. signal() (the old interface) and SIG_IGN. */
    signal(SIGUSR2, SIG_IGN);
    raise(SIGUSR2);
    printf("ignored: survived\n");

    /* 15. The default action ends the process: SIGTERM, 128 + 15. */
    signal(SIGTERM, SIG_DFL);
    raise(SIGTERM);
    printf("not reached\n");
    return 0;
}
