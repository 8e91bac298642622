/* A case found reviewing threads (issue 17): natively and under rrdbg alike. */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
#include <fcntl.h>
static int p[2];
static void *reader(void *a) {
    char buf[16];
    ssize_t r = read(p[0], buf, sizeof buf);   /* blocks until EOF */
    printf("reader: read=%zd\n", r);
    return 0;
}
int main(void) {
    pipe(p);
    pthread_t t;
    pthread_create(&t, 0, reader, 0);
    for (volatile long i = 0; i < 3000000; i++) ;  /* let the reader block */
    int null = open("/dev/null", O_WRONLY);
    dup2(null, p[1]);        /* closes the only write end: the reader sees EOF */
    pthread_join(t, 0);
    puts("done");
    return 0;
}
