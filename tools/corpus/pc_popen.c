/* popen both ways and system(): the shell runs the commands. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

int main(void)
{
    FILE *out = popen("sort -r | head -n 3", "w");
    if (!out) {
        perror("popen w");
        return 1;
    }
    const char *words[] = {"pear", "apple", "quince", "fig", "banana", "cherry"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        fprintf(out, "%s\n", words[i]);
    int status = pclose(out);
    printf("sort exited %d\n", WEXITSTATUS(status));
    fflush(stdout);

    FILE *in = popen("ls tree | wc -l", "r");
    if (!in) {
        perror("popen r");
        return 1;
    }
    char line[128];
    while (fgets(line, sizeof line, in))
        printf("ls | wc -l said: %s", line);
    status = pclose(in);
    printf("pipeline exited %d\n", WEXITSTATUS(status));
    fflush(stdout);

    status = system("echo from system; exit 3");
    printf("system gave %d\n", WEXITSTATUS(status));
    status = system("kill -TERM $$");
    printf("killed shell: signaled %d signal %d\n", WIFSIGNALED(status), WTERMSIG(status));
    return 0;
}
