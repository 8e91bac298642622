/* A case found reviewing threads (issue 17): natively and under rrdbg alike. */
#include <pthread.h>
#include <stdio.h>
#include <signal.h>
#include <unistd.h>
#include <errno.h>
#include <string.h>
static int p[2];
static void *writer(void *a) {
    sigset_t s; sigemptyset(&s); sigaddset(&s, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &s, 0);   /* this thread wants EPIPE, not death */
    ssize_t r = write(p[1], "x", 1);
    printf("writer: write=%zd errno=%s\n", r, strerror(errno));
    return 0;
}
int main(void) {
    pipe(p);
    close(p[0]);
    pthread_t t;
    pthread_create(&t, 0, writer, 0);
    pthread_join(t, 0);
    puts("main: done");
    return 0;
}
