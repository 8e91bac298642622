/* A case found reviewing threads (issue 17): natively and under rrdbg alike. */
#include <pthread.h>
#include <stdio.h>
#include <signal.h>
#include <unistd.h>
#include <errno.h>
#include <string.h>
static int p[2];
static volatile int handled;
static void h(int s) { handled = 1; }
static void *reader(void *a) {
    char buf[16] = {0};
    ssize_t r = read(p[0], buf, sizeof buf);
    printf("reader: read=%zd (%s) handled=%d\n", r, r < 0 ? strerror(errno) : buf, handled);
    return 0;
}
int main(void) {
    struct sigaction sa = {0};
    sa.sa_handler = h;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, 0);
    pipe(p);
    pthread_t t;
    pthread_create(&t, 0, reader, 0);
    usleep(100000);                  /* the reader blocks in read */
    pthread_kill(t, SIGUSR1);        /* SA_RESTART: the read goes on */
    usleep(100000);
    write(p[1], "data", 4);
    pthread_join(t, 0);
    return 0;
}
