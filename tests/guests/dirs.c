/* dirs DIR: directories as programs use them, under DIR (which must exist).
 *
 * mkdir (and mkdirat), files in them, rename (and renameat2 with
 * RENAME_NOREPLACE), a recursive readdir walk (getdents64) printing names in
 * the order the file system gives them, the old getdents records through
 * syscall(2), rmdir of a non-empty directory (ENOTEMPTY), unlinkat with
 * AT_REMOVEDIR, and the final state.  Prints no inode numbers or paths
 * outside DIR's own names.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static char base[4096];

static const char *at(const char *rel)
{
    static char buf[2][8192];
    static int which;
    which ^= 1;
    snprintf(buf[which], sizeof buf[which], "%s/%s", base, rel);
    return buf[which];
}

static void touch(const char *rel, const char *text)
{
    FILE *f = fopen(at(rel), "w");
    if (!f) {
        printf("fopen %s: %s\n", rel, strerror(errno));
        return;
    }
    fputs(text, f);
    fclose(f);
}

static void walk(const char *rel, int depth)
{
    DIR *d = opendir(at(rel));
    if (!d) {
        printf("opendir %s: %s\n", rel, strerror(errno));
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        printf("%*s%s%s\n", 2 * depth, "", e->d_name, e->d_type == DT_DIR ? "/" : "");
        if (e->d_type == DT_DIR && strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            char sub[4096];
            snprintf(sub, sizeof sub, "%s/%s", rel, e->d_name);
            walk(sub, depth + 1);
        }
    }
    closedir(d);
}

/* The i386 linux_dirent of getdents(2), which libc no longer uses itself. */
static void old_getdents(const char *rel)
{
    int fd = open(at(rel), O_RDONLY | O_DIRECTORY);
    char buf[4096];
    long n = syscall(SYS_getdents, fd, buf, sizeof buf);
    int names = 0;
    for (long pos = 0; pos < n;) {
        unsigned short reclen = *(unsigned short *)(buf + pos + 8);
        char type = buf[pos + reclen - 1];
        const char *name = buf + pos + 10;
        if (strcmp(name, ".") && strcmp(name, ".."))
            printf("old getdents: %s%s\n", name, type == DT_DIR ? "/" : "");
        names++;
        pos += reclen;
    }
    printf("old getdents: %d entries\n", names);
    close(fd);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: dirs DIR\n");
        return 2;
    }
    snprintf(base, sizeof base, "%s", argv[1]);
    printf("mkdir a: %d\n", mkdir(at("a"), 0755));
    printf("mkdir a again: %s\n", mkdir(at("a"), 0755) ? strerror(errno) : "ok?");
    printf("mkdirat a/b: %d\n", mkdirat(AT_FDCWD, at("a/b"), 0700));
    printf("mkdir a/b/c: %d\n", mkdir(at("a/b/c"), 0755));
    touch("a/one.txt", "one\n");
    touch("a/b/two.txt", "two\n");
    touch("a/b/c/three.txt", "three\n");
    printf("rename: %d\n", rename(at("a/one.txt"), at("a/uno.txt")));
    printf("rename missing: %s\n", rename(at("a/none"), at("a/x")) ? strerror(errno) : "ok?");
    long r = syscall(SYS_renameat2, AT_FDCWD, at("a/uno.txt"), AT_FDCWD, at("a/b/two.txt"),
                     1 /* RENAME_NOREPLACE */);
    printf("renameat2 noreplace: %s\n", r ? strerror(errno) : "ok?");
    walk("a", 0);
    old_getdents("a/b");
    printf("rmdir a/b: %s\n", rmdir(at("a/b")) ? strerror(errno) : "ok?");
    printf("unlink c/three: %d\n", unlink(at("a/b/c/three.txt")));
    printf("unlinkat dir c: %d\n", unlinkat(AT_FDCWD, at("a/b/c"), AT_REMOVEDIR));
    printf("unlink two: %d\n", unlink(at("a/b/two.txt")));
    printf("rmdir a/b: %d\n", rmdir(at("a/b")));
    walk("a", 0);
    printf("unlink uno: %d\n", unlink(at("a/uno.txt")));
    printf("rmdir a: %d\n", rmdir(at("a")));
    struct stat st;
    printf("a is gone: %s\n", stat(at("a"), &st) ? strerror(errno) : "no");
    return 0;
}
