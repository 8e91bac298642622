/* SIGSEGV handler recovering with siglongjmp: NULL write, unmapped read,
 * write to a read-only page; then SIGBUS-free exit. */
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static sigjmp_buf env;
static volatile sig_atomic_t code;
static void *volatile fault_addr;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    code = si->si_code;
    fault_addr = si->si_addr;
    siglongjmp(env, 1);
}

static void attempt(const char *what, void (*fn)(void *), void *arg)
{
    code = 0;
    fault_addr = 0;
    if (sigsetjmp(env, 1) == 0) {
        fn(arg);
        printf("%s: no fault\n", what);
    } else {
        printf("%s: recovered, si_code=%s, si_addr matches=%d\n", what,
               code == SEGV_MAPERR ? "SEGV_MAPERR" : code == SEGV_ACCERR ? "SEGV_ACCERR" : "?",
               fault_addr == arg);
    }
}

static void do_write(void *p) { *(volatile int *)p = 1; }
static void do_read(void *p) { (void)*(volatile int *)p; }

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);

    attempt("null write", do_write, (void *)0);
    attempt("unmapped read", do_read, (void *)0x10);

    long page = sysconf(_SC_PAGESIZE);
    char *ro = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ro[0] = 7;
    mprotect(ro, page, PROT_READ);
    attempt("read-only write", do_write, ro);
    attempt("read-only read", do_read, ro);
    munmap(ro, page);
    attempt("after munmap read", do_read, ro);

    sigset_t cur;
    sigprocmask(SIG_SETMASK, NULL, &cur);
    printf("SIGSEGV blocked after siglongjmp: %d\n", sigismember(&cur, SIGSEGV));
    return 0;
}
