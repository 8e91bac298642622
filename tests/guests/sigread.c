/* Reads cut short by signals, as Linux does it: a blocking read that a timer
 * interrupts fails with EINTR when the handler has no SA_RESTART, and is made
 * again after the handler when it has (here the handler finally writes what
 * the restarted read gets).  With the argument "stdin" the first read is of
 * fd 0 (a pipe or terminal with no data yet) rather than of an empty pipe.
 * With "blocked" the timer's signal is blocked and the read of the empty pipe
 * waits forever (as on Linux; rrdbg ends such a program with one line). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

static volatile int ticks;
static int pipefd[2];

static void tick(int sig)
{
    (void)sig;
    ticks++;
}

static void tick_then_feed(int sig)
{
    (void)sig;
    if (++ticks == 3)
        write(pipefd[1], "x", 1);
}

static void on_alarm(void (*fn)(int), int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sa.sa_flags = flags;
    sigaction(SIGALRM, &sa, NULL);
}

static void every(long usec)
{
    struct itimerval it = {{0, usec}, {0, usec}};
    setitimer(ITIMER_REAL, &it, NULL);
}

int main(int argc, char **argv)
{
    char c = 0;
    int fd, r;
    struct iovec iov = {&c, 1};

    if (pipe(pipefd) != 0)
        return 1;
    fd = argc > 1 && strcmp(argv[1], "stdin") == 0 ? 0 : pipefd[0];
    if (argc > 1 && strcmp(argv[1], "blocked") == 0) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGALRM);
        sigprocmask(SIG_BLOCK, &set, NULL);
        on_alarm(tick, 0);
        every(20000);
        return (int)read(pipefd[0], &c, 1);
    }

    /* 1. No SA_RESTART: the first tick ends the read with EINTR. */
    on_alarm(tick, 0);
    every(20000);
    errno = 0;
    r = (int)read(fd, &c, 1);
    printf("read: %d %s ticks=%d\n", r, strerror(errno), ticks);

    /* 2. The same through readv. */
    ticks = 0;
    errno = 0;
    r = (int)readv(pipefd[0], &iov, 1);
    printf("readv: %d %s ticks=%d\n", r, strerror(errno), ticks);

    /* 3. SA_RESTART: two ticks restart it; the third one's handler writes. */
    ticks = 0;
    on_alarm(tick_then_feed, SA_RESTART);
    errno = 0;
    r = (int)read(pipefd[0], &c, 1);
    every(0);
    printf("restarted: %d '%c' errno=%d ticks=%d\n", r, c, errno, ticks);
    return 0;
}
