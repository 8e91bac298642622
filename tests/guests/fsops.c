/* File-system calls real programs make, all under DIR (argv[1]): the working
   directory, *at calls on directory fds, links, modes, times, sizes,
   positioned and vector I/O, copies, syncs, locks, poll/select, statfs, and
   the identity/accounting calls that need no file.  Prints no paths, times
   or ids: natively and under rrdbg the output is the same. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysinfo.h>
#include <sys/time.h>
#include <sys/times.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHECK(x)                                                               \
    do {                                                                       \
        if ((x) < 0)                                                           \
            printf("%s: %s\n", #x, strerror(errno));                           \
    } while (0)

static void put(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd);
    CHECK(write(fd, text, strlen(text)));
    close(fd);
}

static long size_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    setvbuf(stdout, NULL, _IONBF, 0);
    char start[4096];
    CHECK(getcwd(start, sizeof start) ? 0 : -1);

    /* The working directory. */
    CHECK(chdir(argv[1]));
    CHECK(mkdir("sub", 0755));
    CHECK(chdir("sub"));
    put("here.txt", "in sub\n");
    char cwd[4096];
    CHECK(getcwd(cwd, sizeof cwd) ? 0 : -1);
    printf("cwd ends with /sub: %d\n", strlen(cwd) > 4 && !strcmp(cwd + strlen(cwd) - 4, "/sub"));
    CHECK(chdir(".."));
    printf("relative after chdir ..: %ld\n", size_of("sub/here.txt"));
    int dir = open("sub", O_RDONLY | O_DIRECTORY);
    CHECK(dir);
    CHECK(fchdir(dir));
    printf("after fchdir: %ld\n", size_of("here.txt"));
    CHECK(chdir(".."));
    int r = chdir("sub/here.txt");
    printf("chdir to a file: %d %s\n", r, strerror(errno));
    r = chdir("nothing");
    printf("chdir to nothing: %d %s\n", r, strerror(errno));

    /* *at calls on a directory fd. */
    int at = openat(dir, "made-at.txt", O_WRONLY | O_CREAT, 0644);
    CHECK(at);
    CHECK(write(at, "at\n", 3));
    close(at);
    struct stat st;
    CHECK(fstatat(dir, "made-at.txt", &st, 0));
    printf("fstatat size %ld\n", (long)st.st_size);
    CHECK(mkdirat(dir, "deeper", 0700));
    CHECK(renameat(dir, "made-at.txt", dir, "deeper/moved.txt"));
    printf("renamed: %ld\n", size_of("sub/deeper/moved.txt"));
    CHECK(unlinkat(dir, "deeper/moved.txt", 0));
    CHECK(unlinkat(dir, "deeper", AT_REMOVEDIR));

    /* Links. */
    put("a.txt", "hello links\n");
    CHECK(link("a.txt", "hard.txt"));
    CHECK(stat("a.txt", &st));
    printf("nlink %ld\n", (long)st.st_nlink);
    CHECK(symlink("a.txt", "soft.txt"));
    char target[64] = {0};
    CHECK(readlink("soft.txt", target, sizeof target - 1));
    printf("readlink %s\n", target);
    CHECK(lstat("soft.txt", &st));
    printf("lstat is link %d\n", S_ISLNK(st.st_mode));
    CHECK(symlinkat("hard.txt", dir, "to-hard"));
    CHECK(linkat(AT_FDCWD, "a.txt", dir, "hard-in-sub", 0));
    printf("link into sub: %ld\n", size_of("sub/hard-in-sub"));

    /* Modes, the umask, owners. */
    CHECK(chmod("a.txt", 0600));
    CHECK(stat("a.txt", &st));
    printf("chmod %o\n", st.st_mode & 07777);
    int fd = open("a.txt", O_RDWR);
    CHECK(fchmod(fd, 0640));
    CHECK(fstat(fd, &st));
    printf("fchmod %o\n", st.st_mode & 07777);
    CHECK(fchmodat(AT_FDCWD, "a.txt", 0644, 0));
    mode_t old = umask(077);
    put("private.txt", "x");
    CHECK(stat("private.txt", &st));
    printf("umask 077 gives %o (old umask %o)\n", st.st_mode & 0777, old);
    umask(old);
    CHECK(chown("a.txt", getuid(), getgid()));
    CHECK(fchown(fd, (uid_t)-1, (gid_t)-1));
    CHECK(lchown("soft.txt", getuid(), (gid_t)-1));

    /* Times. */
    struct timespec ts[2] = {{1000000000, 0}, {1234567890, 500}};
    CHECK(utimensat(AT_FDCWD, "a.txt", ts, 0));
    CHECK(stat("a.txt", &st));
    printf("mtime %ld.%09ld atime %ld\n", (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
           (long)st.st_atim.tv_sec);
    struct timeval tv[2] = {{100, 0}, {200, 0}};
    CHECK(utimes("a.txt", tv));
    CHECK(stat("a.txt", &st));
    printf("utimes mtime %ld\n", (long)st.st_mtim.tv_sec);
    struct timespec omit[2] = {{0, UTIME_OMIT}, {42, 0}};
    CHECK(futimens(fd, omit));
    CHECK(fstat(fd, &st));
    printf("futimens mtime %ld atime %ld\n", (long)st.st_mtim.tv_sec, (long)st.st_atim.tv_sec);

    /* Sizes. */
    CHECK(truncate("a.txt", 5));
    printf("truncate %ld\n", size_of("a.txt"));
    CHECK(ftruncate(fd, 100000));
    printf("ftruncate %ld\n", size_of("a.txt"));
    CHECK(ftruncate(fd, 12));

    /* Positioned and vector I/O. */
    CHECK(pwrite(fd, "PWRITE", 6, 3));
    char buf[64] = {0};
    CHECK(pread(fd, buf, 9, 0));
    printf("pread [%.5s] then [%s]\n", buf, buf + 3);
    printf("position still 0: %ld\n", (long)lseek(fd, 0, SEEK_CUR));
    struct iovec iov[2] = {{"ab", 2}, {"cdef", 4}};
    CHECK(pwritev(fd, iov, 2, 20));
    char x[3] = {0}, y[5] = {0};
    struct iovec in[2] = {{x, 2}, {y, 4}};
    CHECK(preadv(fd, in, 2, 20));
    printf("preadv %s %s\n", x, y);
    CHECK(lseek(fd, 0, SEEK_SET));
    CHECK(writev(fd, iov, 2));

    /* Copies. */
    int out = open("copy.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    off_t off = 0;
    printf("sendfile %ld\n", (long)sendfile(out, fd, &off, 6));
    printf("offset now %ld\n", (long)off);
    loff_t from = 20, to = 6;
    printf("copy_file_range %ld\n", (long)copy_file_range(fd, &from, out, &to, 6, 0));
    close(out);
    printf("copy size %ld\n", size_of("copy.txt"));

    /* Sync, locks, advice, allocation. */
    CHECK(fsync(fd));
    CHECK(fdatasync(fd));
    sync();
    CHECK(flock(fd, LOCK_EX));
    CHECK(flock(fd, LOCK_UN));
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    CHECK(fcntl(fd, F_SETLK, &fl));
    fl.l_type = F_WRLCK;
    CHECK(fcntl(fd, F_GETLK, &fl));
    printf("F_GETLK type unlocked %d\n", fl.l_type == F_UNLCK);
    CHECK(posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL));
    CHECK(posix_fallocate(fd, 0, 4096));
    printf("fallocate %ld\n", size_of("a.txt"));
    CHECK(fcntl(fd, F_SETFL, O_APPEND));
    printf("F_GETFL append %d\n", (fcntl(fd, F_GETFL) & O_APPEND) != 0);

    /* Waiting on files. */
    struct pollfd pfd = {.fd = fd, .events = POLLIN | POLLOUT};
    r = poll(&pfd, 1, 1000);
    printf("poll %d revents %x\n", r, pfd.revents);
    struct pollfd bad = {.fd = 999, .events = POLLIN};
    r = poll(&bad, 1, 0);
    printf("poll bad fd %d revents %x\n", r, bad.revents);
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(fd, &rd);
    struct timeval zero = {0, 0};
    r = select(fd + 1, &rd, NULL, NULL, &zero);
    printf("select %d set %d\n", r, FD_ISSET(fd, &rd));
    struct timeval nap = {0, 5000};
    printf("select as a sleep %d\n", select(0, NULL, NULL, NULL, &nap));
    printf("poll as a sleep %d\n", poll(NULL, 0, 3));
    close(fd);

    /* File systems. */
    struct statfs sfs;
    CHECK(statfs(".", &sfs));
    printf("statfs type nonzero %d bsize nonzero %d\n", sfs.f_type != 0, sfs.f_bsize != 0);
    CHECK(fstatfs(dir, &sfs));
    close(dir);

    /* Identity and accounting. */
    struct sysinfo si;
    CHECK(sysinfo(&si));
    printf("sysinfo mem_unit>0 %d procs>0 %d\n", si.mem_unit > 0, si.procs > 0);
    struct rusage ru;
    CHECK(getrusage(RUSAGE_SELF, &ru));
    printf("getrusage maxrss>0 %d\n", ru.ru_maxrss > 0);
    struct tms tm;
    printf("times ok %d\n", times(&tm) != (clock_t)-1);
    r = wait(NULL);
    printf("wait: %d %s\n", r, strerror(errno));
    printf("setpgid self %d\n", setpgid(0, 0));
    printf("getpgrp is pid %d\n", getpgrp() == getpid());
    errno = 0;
    printf("getpriority %d errno %d\n", getpriority(PRIO_PROCESS, 0), errno);
    gid_t groups[64];
    printf("getgroups >= 0 %d\n", getgroups(64, groups) >= 0);

    CHECK(chdir(start));
    return 0;
}
