/* A SIGCHLD handler that reaps with waitpid(-1, WNOHANG) while the parent
 * works; children exit with different codes at different times. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t reaped, sum;

static void on_chld(int sig)
{
    (void)sig;
    int saved = errno, status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        reaped++;
        sum += WEXITSTATUS(status);
    }
    errno = saved;
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_chld;
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
    for (int i = 1; i <= 8; i++) {
        if (fork() == 0) {
            struct timespec ts = {0, i * 3000000L};
            nanosleep(&ts, NULL);
            _exit(i);
        }
    }
    while (reaped < 8)
        pause();
    printf("reaped %d children, codes add up to %d\n", (int)reaped, (int)sum);
    return 0;
}
