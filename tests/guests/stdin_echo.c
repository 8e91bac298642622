/* stdin_echo: read(0) until EOF, write the data back uppercased with
 * write(1), then print the byte count. */
#include <stdio.h>
#include <ctype.h>
#include <unistd.h>
#include <errno.h>

int main(void)
{
    char buf[4096];
    long total = 0;
    for (;;) {
        ssize_t n = read(0, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("read");
            return 1;
        }
        if (n == 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            buf[i] = (char)toupper((unsigned char)buf[i]);
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(1, buf + off, n - off);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                perror("write");
                return 1;
            }
            off += w;
        }
        total += n;
    }
    printf("\nbytes=%ld\n", total);
    return 0;
}
