/* posix_spawnp with file actions: output into a file, then read back. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int main(void)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "spawned.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    char *argv[] = {"wc", "-l", "words.txt", NULL};
    pid_t pid;
    int err = posix_spawnp(&pid, "wc", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (err) {
        printf("posix_spawnp: %s\n", strerror(err));
        return 1;
    }
    int status;
    waitpid(pid, &status, 0);
    printf("wc exited %d\n", WEXITSTATUS(status));
    FILE *f = fopen("spawned.txt", "r");
    char line[128] = "";
    if (f && fgets(line, sizeof line, f))
        printf("it wrote: %s", line);
    if (f)
        fclose(f);

    char *missing[] = {"no-such-program-here", NULL};
    err = posix_spawnp(&pid, missing[0], NULL, NULL, missing, environ);
    if (err)
        printf("missing program: %s\n", strerror(err));
    else {
        waitpid(pid, &status, 0);
        printf("missing program: exit status %d\n", WEXITSTATUS(status));
    }
    return 0;
}
