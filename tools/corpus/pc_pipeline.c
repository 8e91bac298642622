/* A three-stage pipeline built by hand: generator | sort | uniq -c. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t stage(int in, int out, char *const argv[])
{
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(1);
    }
    if (pid == 0) {
        if (in != 0) {
            dup2(in, 0);
            close(in);
        }
        if (out != 1) {
            dup2(out, 1);
            close(out);
        }
        execvp(argv[0], argv);
        perror(argv[0]);
        _exit(127);
    }
    return pid;
}

int main(void)
{
    /* Close-on-exec, so no stage keeps another's pipe open (dup2 onto 0 and
     * 1 clears the flag on the copies a stage uses). */
    int a[2], b[2];
    if (pipe2(a, O_CLOEXEC) || pipe2(b, O_CLOEXEC)) {
        perror("pipe");
        return 1;
    }
    char *sort[] = {"sort", NULL};
    char *uniq[] = {"uniq", "-c", NULL};
    pid_t p1 = stage(a[0], b[1], sort);
    close(a[0]);
    close(b[1]);
    pid_t p2 = stage(b[0], 1, uniq);
    close(b[0]);
    FILE *gen = fdopen(a[1], "w");
    for (int i = 0; i < 5000; i++)
        fprintf(gen, "item%d\n", (i * 7919) % 13);
    fclose(gen);
    int s1, s2;
    waitpid(p1, &s1, 0);
    waitpid(p2, &s2, 0);
    printf("sort %d, uniq %d\n", WEXITSTATUS(s1), WEXITSTATUS(s2));
    return 0;
}
