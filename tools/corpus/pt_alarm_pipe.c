/* A case found reviewing threads (issue 17): natively and under rrdbg alike. */
#include <pthread.h>
#include <stdio.h>
#include <signal.h>
#include <unistd.h>
#include <errno.h>
#include <string.h>
static int p[2];
static void *writer(void *a) {
    for (volatile long i = 0; i < 1000000; i++) ;   /* a little work first */
    write(p[1], "hello", 5);
    return 0;
}
int main(void) {
    alarm(30);          /* a watchdog: the program should take far less */
    pipe(p);
    pthread_t t;
    pthread_create(&t, 0, writer, 0);
    char buf[16] = {0};
    ssize_t r = read(p[0], buf, sizeof buf);
    printf("read=%zd '%s'\n", r, buf);
    pthread_join(t, 0);
    return 0;
}
