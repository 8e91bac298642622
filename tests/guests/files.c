/* files: file syscalls -- open/write/lseek/read, stdio (fopen/fgets/fread),
 * fstat/stat, access, readlink("/proc/self/exe"), getcwd, unlink, and an
 * ENOENT error.  Usage: files DIR  (DIR must exist and be writable; the
 * directory path itself is never printed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <limits.h>
#include <sys/stat.h>

static const char text[] =
    "line one\n"
    "line two: the quick brown fox\n"
    "line three: jumps over the lazy dog\n";

static void die(const char *what)
{
    printf("%s failed: %s\n", what, strerror(errno));
    exit(1);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/rrdbg_files_test.txt", dir);

    /* create + write */
    int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0644);
    if (fd < 0)
        die("open(O_CREAT)");
    ssize_t w = write(fd, text, sizeof text - 1);
    printf("write returned %zd\n", w);

    /* lseek + read */
    off_t end = lseek(fd, 0, SEEK_END);
    printf("lseek(SEEK_END)=%ld\n", (long)end);
    off_t pos = lseek(fd, 5, SEEK_SET);
    printf("lseek(5, SEEK_SET)=%ld\n", (long)pos);
    char buf[256];
    ssize_t r = read(fd, buf, 3);
    printf("read(3) returned %zd: \"%.*s\"\n", r, (int)(r > 0 ? r : 0), buf);
    lseek(fd, 0, SEEK_SET);
    r = read(fd, buf, sizeof buf - 1);
    if (r < 0)
        die("read");
    buf[r] = '\0';
    printf("read(all) returned %zd\n", r);
    printf("content matches: %s\n",
           (size_t)r == sizeof text - 1 && memcmp(buf, text, r) == 0 ? "yes" : "NO");
    r = read(fd, buf, sizeof buf);
    printf("read at EOF returned %zd\n", r);

    /* fstat */
    struct stat st;
    if (fstat(fd, &st) != 0)
        die("fstat");
    printf("fstat size=%ld regular=%d mode=%o\n", (long)st.st_size,
           S_ISREG(st.st_mode) ? 1 : 0, (unsigned)(st.st_mode & 0777));
    close(fd);

    /* stat */
    if (stat(path, &st) != 0)
        die("stat");
    printf("stat size=%ld\n", (long)st.st_size);
    if (stat(dir, &st) != 0)
        die("stat(dir)");
    printf("stat(dir) is directory: %d\n", S_ISDIR(st.st_mode) ? 1 : 0);

    /* access */
    printf("access(F_OK)=%d access(R_OK|W_OK)=%d\n",
           access(path, F_OK), access(path, R_OK | W_OK));

    /* stdio read back */
    FILE *f = fopen(path, "r");
    if (!f)
        die("fopen");
    char line[128];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        printf("fgets[%d]: %s\n", n++, line);
    }
    rewind(f);
    size_t got = fread(buf, 1, 20, f);
    printf("fread(20) returned %zu: \"%.*s\"\n", got, (int)got, buf);
    fclose(f);

    /* stdio append */
    f = fopen(path, "a");
    if (!f)
        die("fopen(a)");
    fprintf(f, "appended %d\n", 42);
    fclose(f);
    if (stat(path, &st) != 0)
        die("stat");
    printf("size after append=%ld\n", (long)st.st_size);

    /* readlink /proc/self/exe: success only (path is not deterministic) */
    char exe[PATH_MAX];
    ssize_t l = readlink("/proc/self/exe", exe, sizeof exe - 1);
    printf("readlink(/proc/self/exe): %s\n", l > 0 ? "ok" : "failed");

    /* getcwd: success only */
    char cwd[PATH_MAX];
    printf("getcwd: %s\n", getcwd(cwd, sizeof cwd) ? "ok" : "failed");

    /* unlink */
    printf("unlink=%d\n", unlink(path));
    errno = 0;
    int acc = access(path, F_OK);
    int acc_errno = errno;
    printf("access after unlink=%d (%s)\n", acc, strerror(acc_errno));

    /* missing file */
    errno = 0;
    fd = open("/nonexistent-rrdbg-dir/missing.txt", O_RDONLY);
    int e = errno;
    printf("open missing: fd=%d errno=%d%s (%s)\n", fd, e,
           e == ENOENT ? " ENOENT" : "", strerror(e));
    f = fopen("/nonexistent-rrdbg-dir/missing.txt", "r");
    printf("fopen missing: %s (%s)\n", f ? "opened?!" : "NULL", strerror(errno));
    return 0;
}
