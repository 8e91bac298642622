/* procs MODE: processes on static glibc (fork, vfork, clone, execve of
 * itself through /proc/self/exe, posix_spawn, wait4/waitpid/waitid, pipes
 * between processes, dup2, O_CLOEXEC, SIGCHLD, kill between processes,
 * process groups and sessions).
 *
 * Modes: fork pipe bigpipe exec vfork spawn sigchld kill pgrp waitid orphan
 * many race [N] all ("all" runs every mode but race, each in a child);
 * stdinwait (a child reads stdin while its parent works: the parent's line
 * comes first however late the input is); for benchmarks: pingpong N (a
 * byte back and forth N times between two processes), tpingpong N (the
 * same between two threads), forkbig MB FORKS (touch MB MiB, then fork
 * FORKS children that exit at once), forkhold MB FORKS (the same, but the
 * children live together: each checks every page, writes some, and waits
 * for the parent to have made them all; the parent's pages stay its own).
 *
 * The output of every mode except race is the same on every native run:
 * a child prints only before its parent waits for it, the parent prints
 * after.  race prints what two processes wrote into one pipe, in the order
 * the scheduler gave (it varies natively).  Exit status 0 on success, 1 with
 * a "FAIL ..." line when a check fails, 2 with a usage message on stderr. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

static __attribute__((format(printf, 1, 2))) void out(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0)
        write_all(1, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

static void fail(const char *what)
{
    out("FAIL %s (errno %d)\n", what, errno);
    exit(1);
}

static void describe(const char *who, int status)
{
    if (WIFEXITED(status))
        out("%s: exited %d\n", who, WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        out("%s: killed by signal %d\n", who, WTERMSIG(status));
    else
        out("%s: status %#x\n", who, status);
}

static int wait_for(pid_t pid)
{
    int status;
    pid_t got;
    do
        got = waitpid(pid, &status, 0);
    while (got < 0 && errno == EINTR);
    if (got != pid)
        fail("waitpid");
    return status;
}

/* ---- fork: statuses, WNOHANG, ECHILD ----------------------------------- */

static void mode_fork(void)
{
    int x = 41;
    pid_t a = fork();
    if (a < 0)
        fail("fork");
    if (a == 0) {
        x++;  /* the child's copy */
        out("child: x=%d, parent is the forker: %d\n", x, getppid() > 1);
        _exit(x);
    }
    describe("first child", wait_for(a));
    out("parent: x=%d\n", x);
    pid_t b = fork();
    if (b == 0) {
        raise(SIGTERM);
        _exit(0);
    }
    describe("second child", wait_for(b));
    int pfd[2];
    if (pipe(pfd))
        fail("pipe");
    pid_t c = fork();
    if (c == 0) {
        char ch;
        close(pfd[1]);
        read(pfd[0], &ch, 1);  /* until the parent closes its end */
        _exit(3);
    }
    close(pfd[0]);
    int status;
    out("WNOHANG before the child ends: %d\n", (int)waitpid(c, &status, WNOHANG));
    close(pfd[1]);
    describe("third child", wait_for(c));
    errno = 0;
    int r = (int)wait(&status);
    out("wait with no child: %d %s\n", r, errno == ECHILD ? "ECHILD" : "?");
}

/* ---- pipe: a two-process pipeline through dup2 --------------------------- */

static void mode_pipe(void)
{
    int down[2], up[2];
    if (pipe(down) || pipe2(up, O_CLOEXEC))
        fail("pipe");
    pid_t pid = fork();
    if (pid == 0) {
        /* A filter on stdin/stdout: upper-cases what it reads. */
        dup2(down[0], 0);
        dup2(up[1], 1);
        close(down[0]);
        close(down[1]);
        close(up[0]);
        close(up[1]);
        char buf[64];
        ssize_t n;
        while ((n = read(0, buf, sizeof buf)) > 0) {
            for (ssize_t i = 0; i < n; i++)
                if (buf[i] >= 'a' && buf[i] <= 'z')
                    buf[i] -= 32;
            write_all(1, buf, (size_t)n);
        }
        _exit(n < 0);
    }
    close(down[0]);
    close(up[1]);
    const char *text = "a pipeline of two processes\nthrough dup2\n";
    write_all(down[1], text, strlen(text));
    close(down[1]);
    char got[256];
    size_t total = 0;
    ssize_t n;
    while ((n = read(up[0], got + total, sizeof got - 1 - total)) > 0)
        total += (size_t)n;
    got[total] = 0;
    out("filter said: %s", got);
    describe("filter", wait_for(pid));
}

/* ---- bigpipe: more than a pipe holds, both ways ---------------------------- */

static void mode_bigpipe(void)
{
    enum { SIZE = 300000 };
    int down[2], up[2];
    if (pipe(down) || pipe(up))
        fail("pipe");
    pid_t pid = fork();
    if (pid == 0) {
        close(down[1]);
        close(up[0]);
        static char buf[4096];
        ssize_t n;
        unsigned long sum = 0, count = 0;
        while ((n = read(down[0], buf, sizeof buf)) > 0) {
            for (ssize_t i = 0; i < n; i++)
                sum = sum * 31 + (unsigned char)buf[i];
            count += (unsigned long)n;
            write_all(up[1], buf, (size_t)n);  /* echoes everything back */
        }
        char line[64];
        int len = snprintf(line, sizeof line, "%lu %lu\n", count, sum);
        write_all(up[1], line, (size_t)len);
        _exit(0);
    }
    close(down[0]);
    close(up[1]);
    /* The parent writes and reads in turns, in chunks, so neither blocks
     * forever on a full pipe. */
    static char data[SIZE], back[SIZE + 64];
    for (int i = 0; i < SIZE; i++)
        data[i] = (char)('a' + (i * 7 + i / 13) % 26);
    size_t sent = 0, got = 0;
    while (sent < SIZE) {
        size_t chunk = SIZE - sent < 20000 ? SIZE - sent : 20000;
        write_all(down[1], data + sent, chunk);
        sent += chunk;
        while (got < sent) {
            ssize_t n = read(up[0], back + got, sent - got);
            if (n <= 0)
                fail("read back");
            got += (size_t)n;
        }
    }
    close(down[1]);
    ssize_t n;
    while ((n = read(up[0], back + got, sizeof back - 1 - got)) > 0)
        got += (size_t)n;
    back[got] = 0;
    out("echoed back intact: %d; child counted: %s", memcmp(data, back, SIZE) == 0, back + SIZE);
    describe("echo child", wait_for(pid));
}

/* ---- exec: itself, argv, envp, fds across exec ------------------------------ */

static int exec_child(int argc, char **argv)
{
    out("exec'd: argc=%d", argc);
    for (int i = 1; i < argc; i++)
        out(" [%s]", argv[i]);
    const char *v = getenv("PROCS_VAR");
    out("; PROCS_VAR=%s\n", v ? v : "(unset)");
    out("fd 5 open: %d, fd 6 open: %d\n", fcntl(5, F_GETFD) >= 0, fcntl(6, F_GETFD) >= 0);
    return 9;
}

static void mode_exec(void)
{
    int keep = open("/proc/self/exe", O_RDONLY);
    int drop = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (keep < 0 || drop < 0 || dup2(keep, 5) < 0 || dup3(drop, 6, O_CLOEXEC) < 0)
        fail("open");
    pid_t pid = fork();
    if (pid == 0) {
        char *args[] = {"procs", "exec-child", "one", "two words", NULL};
        char *env[] = {"PROCS_VAR=from the parent", NULL};
        execve("/proc/self/exe", args, env);
        fail("execve");
    }
    describe("exec child", wait_for(pid));
    char *none[] = {"nothing", NULL};
    errno = 0;
    int r = execve("/nonexistent/program", none, environ);
    out("execve of a missing file: %d %s\n", r, errno == ENOENT ? "ENOENT" : "?");
    errno = 0;
    r = execve("/", none, environ);
    out("execve of a directory: %d %s\n", r, errno == EACCES ? "EACCES" : "?");
}

/* ---- vfork: the parent waits for the child's exec or exit --------------------- */

static void mode_vfork(void)
{
    pid_t pid = vfork();
    if (pid == 0)
        _exit(12);
    describe("vfork child (_exit)", wait_for(pid));
    pid = vfork();
    if (pid == 0) {
        char *args[] = {"procs", "exec-child", "after vfork", NULL};
        execve("/proc/self/exe", args, environ);
        _exit(127);
    }
    describe("vfork child (exec)", wait_for(pid));
}

/* ---- spawn: posix_spawn (clone with CLONE_VM|CLONE_VFORK) ----------------------- */

static void mode_spawn(void)
{
    pid_t pid;
    char *args[] = {"procs", "exec-child", "spawned", NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, 1, 7);
    int err = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, args, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (err)
        fail("posix_spawn");
    describe("spawned", wait_for(pid));
}

/* ---- sigchld: the parent's handler, SA_RESTART ------------------------------------ */

static volatile sig_atomic_t chld_count;
static volatile sig_atomic_t chld_code;

static void on_chld(int sig, siginfo_t *info, void *ctx)
{
    (void)sig;
    (void)ctx;
    chld_count++;
    chld_code = info->si_code;
}

static void mode_sigchld(void)
{
    struct sigaction sa = {0};
    sa.sa_sigaction = on_chld;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGCHLD, &sa, NULL);
    int pfd[2];
    if (pipe(pfd))
        fail("pipe");
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        write_all(pfd[1], "x", 1);
        _exit(4);
    }
    close(pfd[1]);
    char c;
    /* The read may be interrupted by SIGCHLD: SA_RESTART makes it again. */
    ssize_t n = read(pfd[0], &c, 1);
    out("read %d byte(s) from the child\n", (int)n);
    describe("child", wait_for(pid));
    out("SIGCHLD handled %d time(s), si_code CLD_EXITED: %d\n", (int)chld_count,
        chld_code == CLD_EXITED);
    signal(SIGCHLD, SIG_DFL);
}

/* ---- kill: signals between processes ------------------------------------------------ */

static volatile sig_atomic_t usr1;

static void on_usr1(int sig)
{
    (void)sig;
    usr1 = 1;
}

static void mode_kill(void)
{
    int ready[2], ack[2];
    if (pipe(ready) || pipe(ack))
        fail("pipe");
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGUSR1, on_usr1);
        close(ready[0]);
        close(ack[0]);
        write_all(ready[1], "r", 1);
        while (!usr1)
            pause();
        out("child: got SIGUSR1\n");
        write_all(ack[1], "a", 1);
        for (;;)
            pause();
    }
    close(ready[1]);
    close(ack[1]);
    char c;
    read(ready[0], &c, 1);
    kill(pid, SIGUSR1);
    read(ack[0], &c, 1);
    kill(pid, SIGKILL);
    describe("killed child", wait_for(pid));
    errno = 0;
    int r = kill(pid, 0);
    out("kill of a reaped child: %d %s\n", r, errno == ESRCH ? "ESRCH" : "?");
}

/* ---- pgrp: process groups and sessions ------------------------------------------------ */

static void mode_pgrp(void)
{
    /* Each child waits for its own go: they print in a fixed order. */
    int go_a[2], go_b[2], ack[2];
    if (pipe(go_a) || pipe(go_b) || pipe(ack))
        fail("pipe");
    char c;
    pid_t a = fork();
    if (a == 0) {
        setpgid(0, 0);
        read(go_a[0], &c, 1);
        out("child a: own group %d\n", getpgrp() == getpid());
        write_all(ack[1], "k", 1);
        pause();
        _exit(0);
    }
    setpgid(a, a);  /* both sides set it, as shells do */
    pid_t b = fork();
    if (b == 0) {
        setpgid(0, a);
        read(go_b[0], &c, 1);
        out("child b: in a's group %d\n", getpgrp() == a);
        write_all(ack[1], "k", 1);
        pause();
        _exit(0);
    }
    setpgid(b, a);
    out("getpgid(a) == a: %d, getpgid(b) == a: %d\n", getpgid(a) == a, getpgid(b) == a);
    write_all(go_a[1], "g", 1);
    read(ack[0], &c, 1);
    write_all(go_b[1], "g", 1);
    read(ack[0], &c, 1);
    kill(-a, SIGTERM);  /* the whole group */
    describe("a", wait_for(a));
    describe("b", wait_for(b));
    pid_t d = fork();
    if (d == 0) {
        pid_t sid = setsid();
        out("child d: setsid gives its pid %d, then getsid %d, setsid again fails %d\n",
            sid == getpid(), getsid(0) == getpid(), setsid() < 0 && errno == EPERM);
        _exit(0);
    }
    describe("d", wait_for(d));
}

/* ---- waitid ------------------------------------------------------------------------------ */

static void mode_waitid(void)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(21);
    siginfo_t info;
    memset(&info, 0, sizeof info);
    if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT))
        fail("waitid WNOWAIT");
    out("waitid WNOWAIT: pid ok %d, code CLD_EXITED %d, status %d\n", info.si_pid == pid,
        info.si_code == CLD_EXITED, info.si_status);
    memset(&info, 0, sizeof info);
    if (waitid(P_ALL, 0, &info, WEXITED))
        fail("waitid");
    out("waitid again: pid ok %d, status %d\n", info.si_pid == pid, info.si_status);
    pid = fork();
    if (pid == 0) {
        abort();
    }
    memset(&info, 0, sizeof info);
    if (waitid(P_PID, (id_t)pid, &info, WEXITED))
        fail("waitid killed");
    out("waitid killed: CLD_KILLED or CLD_DUMPED %d, signal %d\n",
        info.si_code == CLD_KILLED || info.si_code == CLD_DUMPED, info.si_status);
    errno = 0;
    int r = waitid(P_ALL, 0, &info, WEXITED);
    out("waitid with no children: %d %s\n", r, errno == ECHILD ? "ECHILD" : "?");
}

/* ---- orphan: a grandchild outlives its parent ------------------------------------------------ */

static void mode_orphan(void)
{
    int pfd[2];
    if (pipe(pfd))
        fail("pipe");
    pid_t pid = fork();
    if (pid == 0) {
        pid_t me = getpid();
        pid_t g = fork();
        if (g == 0) {
            close(pfd[0]);
            while (getppid() == me) {
                struct timespec ts = {0, 1000000};
                nanosleep(&ts, NULL);
            }
            write_all(pfd[1], "orphaned, then adopted\n", 23);
            _exit(0);
        }
        _exit(0);
    }
    close(pfd[1]);
    describe("middle child", wait_for(pid));
    char buf[64];
    ssize_t n = read(pfd[0], buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    out("grandchild: %s", buf);
}

/* ---- many: twenty children ------------------------------------------------------------------ */

static void mode_many(void)
{
    pid_t pids[20];
    for (int i = 0; i < 20; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            unsigned long s = 0;
            for (int j = 0; j < 20000 * (i + 1); j++)
                s += (unsigned long)j % 7;
            _exit((int)(s % 100));
        }
    }
    int total = 0;
    for (int i = 19; i >= 0; i--) {
        int status = wait_for(pids[i]);
        total += WEXITSTATUS(status);
    }
    out("twenty children, statuses add up to %d\n", total);
}

/* ---- race: two writers, one pipe ------------------------------------------------------------ */

static void mode_race(int rounds)
{
    int pfd[2];
    if (pipe(pfd))
        fail("pipe");
    for (int w = 0; w < 2; w++) {
        if (fork() == 0) {
            close(pfd[0]);
            for (int i = 0; i < rounds; i++) {
                volatile unsigned long s = 0;
                for (int j = 0; j < 3000; j++)
                    s += (unsigned long)j;
                char c = (char)('A' + w);
                write_all(pfd[1], &c, 1);
            }
            _exit(0);
        }
    }
    close(pfd[1]);
    char buf[4096];
    size_t total = 0;
    ssize_t n;
    while ((n = read(pfd[0], buf + total, sizeof buf - 1 - total)) > 0)
        total += (size_t)n;
    buf[total] = 0;
    while (wait(NULL) > 0)
        ;
    out("race: %s\n", buf);
}

/* ---- benchmarks ------------------------------------------------------------------------------ */

/* The parent's count of round trips, and one function per side (a
 * debugger test watches the count and breaks in both: only the followed
 * parent's hits count). */
volatile int trips;

__attribute__((noinline)) void trip(int there, int back)
{
    char c = 'x';
    write_all(there, &c, 1);
    if (read(back, &c, 1) != 1)
        fail("read");
    trips++;
}

__attribute__((noinline)) int echo_one(int from, int to)
{
    char c;
    if (read(from, &c, 1) != 1)
        return 0;
    write_all(to, &c, 1);
    return 1;
}

static void mode_pingpong(int rounds)
{
    int there[2], back[2];
    if (pipe(there) || pipe(back))
        fail("pipe");
    pid_t pid = fork();
    if (pid == 0) {
        close(there[1]);
        close(back[0]);
        while (echo_one(there[0], back[1]))
            ;
        _exit(0);
    }
    close(there[0]);
    close(back[1]);
    for (int i = 0; i < rounds; i++)
        trip(there[1], back[0]);
    close(there[1]);
    wait_for(pid);
    out("pingpong %d\n", trips);
}

/* stdinwait: a child reads the console while its parent goes on working
 * (the parent's line comes first however late the input is). */
static void mode_stdinwait(void)
{
    int ready[2];
    if (pipe(ready))
        fail("pipe");
    pid_t pid = fork();
    if (pid == 0) {
        close(ready[0]);
        write_all(ready[1], "r", 1);
        char buf[64];
        ssize_t n = read(0, buf, sizeof buf - 1);
        buf[n > 0 ? n : 0] = 0;
        out("child read: %s", buf);
        _exit(0);
    }
    close(ready[1]);
    char c;
    read(ready[0], &c, 1);
    unsigned long s = 0;
    for (int i = 0; i < 200000; i++)
        s += (unsigned long)i % 13;
    out("parent done: %lu\n", s);
    describe("child", wait_for(pid));
}

static int tp_there[2], tp_back[2];

static void *tp_echo(void *arg)
{
    (void)arg;
    char c;
    while (read(tp_there[0], &c, 1) == 1)
        write_all(tp_back[1], &c, 1);
    return NULL;
}

/* The same hand-over between two threads of one process. */
static void mode_tpingpong(int rounds)
{
    if (pipe(tp_there) || pipe(tp_back))
        fail("pipe");
    pthread_t t;
    if (pthread_create(&t, NULL, tp_echo, NULL))
        fail("pthread_create");
    char c = 0;
    for (int i = 0; i < rounds; i++) {
        write_all(tp_there[1], &c, 1);
        if (read(tp_back[0], &c, 1) != 1)
            fail("read");
    }
    close(tp_there[1]);
    pthread_join(t, NULL);
    out("tpingpong %d\n", rounds);
}

static void mode_forkbig(int megabytes, int forks)
{
    size_t size = (size_t)megabytes << 20;
    char *mem = malloc(size);
    if (!mem)
        fail("malloc");
    for (size_t i = 0; i < size; i += 4096)
        mem[i] = (char)(1 + (i >> 12) % 127);  /* never zero: real data */
    for (int i = 0; i < forks; i++) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(mem[4096] == 2 ? 0 : 1);
        if (wait_for(pid) != 0)
            fail("child");
    }
    out("forkbig %d %d\n", megabytes, forks);
}

static void mode_forkhold(int megabytes, int forks)
{
    size_t size = (size_t)megabytes << 20;
    unsigned char *mem = malloc(size);
    int gate[2];
    if (!mem || pipe(gate))
        fail("malloc/pipe");
    for (size_t i = 0; i < size; i += 4096)
        mem[i] = (unsigned char)(i >> 12);
    pid_t pids[64];
    if (forks > 64)
        forks = 64;
    for (int n = 0; n < forks; n++) {
        pids[n] = fork();
        if (pids[n] < 0)
            fail("fork");
        if (pids[n] == 0) {
            close(gate[1]);
            int bad = 0;
            for (size_t i = 0; i < size; i += 4096)
                bad |= mem[i] != (unsigned char)(i >> 12);
            for (size_t i = 0; i < size; i += 16 * 4096)
                mem[i] = (unsigned char)(0xA0 + n);  /* copies one page in 16 */
            char c;
            read(gate[0], &c, 1);  /* EOF once the parent made every child */
            for (size_t i = 0; i < size; i += 16 * 4096)
                bad |= mem[i] != (unsigned char)(0xA0 + n);
            _exit(bad);
        }
    }
    close(gate[1]);
    for (int n = 0; n < forks; n++)
        if (wait_for(pids[n]) != 0)
            fail("child");
    for (size_t i = 0; i < size; i += 4096)
        if (mem[i] != (unsigned char)(i >> 12))
            fail("a child's write reached the parent");
    out("forkhold %d %d\n", megabytes, forks);
}

/* ---- main ----------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    void (*run)(void);
} MODES[] = {
    {"fork", mode_fork},     {"pipe", mode_pipe},     {"bigpipe", mode_bigpipe},
    {"exec", mode_exec},     {"vfork", mode_vfork},   {"spawn", mode_spawn},
    {"sigchld", mode_sigchld}, {"kill", mode_kill},   {"pgrp", mode_pgrp},
    {"waitid", mode_waitid}, {"orphan", mode_orphan}, {"many", mode_many},
};

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "exec-child") == 0)
        return exec_child(argc - 1, argv + 1);
    if (argc < 2) {
        fprintf(stderr, "usage: procs MODE (fork pipe bigpipe exec vfork spawn sigchld kill "
                        "pgrp waitid orphan many race [N] all pingpong N tpingpong N "
                        "forkbig MB FORKS forkhold MB FORKS)\n");
        return 2;
    }
    if (strcmp(argv[1], "race") == 0) {
        mode_race(argc > 2 ? atoi(argv[2]) : 40);
        return 0;
    }
    if (strcmp(argv[1], "pingpong") == 0 && argc > 2) {
        mode_pingpong(atoi(argv[2]));
        return 0;
    }
    if (strcmp(argv[1], "stdinwait") == 0) {
        mode_stdinwait();
        return 0;
    }
    if (strcmp(argv[1], "tpingpong") == 0 && argc > 2) {
        mode_tpingpong(atoi(argv[2]));
        return 0;
    }
    if (strcmp(argv[1], "forkbig") == 0 && argc > 3) {
        mode_forkbig(atoi(argv[2]), atoi(argv[3]));
        return 0;
    }
    if (strcmp(argv[1], "forkhold") == 0 && argc > 3) {
        mode_forkhold(atoi(argv[2]), atoi(argv[3]));
        return 0;
    }
    size_t count = sizeof MODES / sizeof MODES[0];
    for (size_t i = 0; i < count; i++) {
        if (strcmp(argv[1], MODES[i].name) == 0) {
            MODES[i].run();
            return 0;
        }
    }
    if (strcmp(argv[1], "all") == 0) {
        for (size_t i = 0; i < count; i++) {
            out("== %s\n", MODES[i].name);
            pid_t pid = fork();
            if (pid == 0) {
                MODES[i].run();
                _exit(0);
            }
            int status = wait_for(pid);
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                describe(MODES[i].name, status);
                return 1;
            }
        }
        return 0;
    }
    fprintf(stderr, "procs: unknown mode '%s'\n", argv[1]);
    return 2;
}
