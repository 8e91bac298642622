/* Needs processes: fork, a pipe between parent and child, waitpid. */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
    int fds[2];
    if (pipe(fds) != 0) {
        perror("pipe");
        return 1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        close(fds[0]);
        const char *msg = "hello from the child\n";
        write(fds[1], msg, strlen(msg));
        _exit(7);
    }
    close(fds[1]);
    char buf[64];
    ssize_t n = read(fds[0], buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    int status;
    waitpid(pid, &status, 0);
    printf("parent read: %s", buf);
    printf("child exit status %d\n", WEXITSTATUS(status));
    return 0;
}
