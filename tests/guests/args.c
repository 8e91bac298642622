/* args: argv, environment and auxiliary vector as seen by the guest. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/auxv.h>

int main(int argc, char **argv)
{
    printf("argc=%d\n", argc);
    for (int i = 0; i < argc; i++) {
        if (i == 0)
            /* argv[0] depends on how the program was invoked; print it
             * anyway since tests control the invocation. */
            printf("argv[0]=%s\n", argv[0]);
        else
            printf("argv[%d]=%s\n", i, argv[i]);
    }
    printf("argv[argc]=%s\n", argv[argc] == NULL ? "NULL" : "non-NULL");

    const char *env = getenv("RRDBG_TEST");
    printf("RRDBG_TEST=%s\n", env ? env : "(unset)");

    printf("AT_PAGESZ=%lu\n", getauxval(AT_PAGESZ));
    printf("AT_RANDOM=%s\n", getauxval(AT_RANDOM) ? "non-null" : "null");
    const char *execfn = (const char *)getauxval(AT_EXECFN);
    printf("AT_EXECFN=%s\n", execfn ? execfn : "(null)");
    return 0;
}
