/* A case found reviewing threads (issue 17): natively and under rrdbg alike. */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
static int p[2];
static char big[100000];
static void *writer(void *a) {
    ssize_t r = write(p[1], big, sizeof big);   /* blocking pipe: all or nothing */
    printf("writer: write returned %zd\n", r);
    close(p[1]);
    return 0;
}
int main(void) {
    pipe(p);
    pthread_t t;
    pthread_create(&t, 0, writer, 0);
    char buf[4096]; long total = 0; ssize_t n;
    while ((n = read(p[0], buf, sizeof buf)) > 0) total += n;
    pthread_join(t, 0);
    printf("main: read %ld\n", total);
    return 0;
}
