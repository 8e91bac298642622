/* threads MODE: POSIX threads on static glibc (clone, futex, set_robust_list,
 * TLS per thread through %gs, tgkill, thread exit versus process exit).
 *
 * Modes: join mutex cond barrier race [N] serial N tls detach signal sleep exit many pipe
 * sigwait poll sigqueue proc cpus
 * deadlock all (deadlock hangs natively: only for rrdbg, which ends it)
 * ("all" runs every mode except race, exit and signal in one process).
 *
 * Every line goes to stdout with write(2), so there is no stdio buffer to
 * flush before pthread_exit and lines from different threads never mix.  The
 * output of every mode except race is the same on every native run: threads
 * print nothing whose order depends on scheduling; results are collected and
 * printed by main after pthread_join.  race prints a value that varies
 * natively (it is deterministic under an emulator that runs one thread at a
 * time).  Exit status 0 on success, 1 with a "FAIL ..." line on stdout when a
 * check fails, 2 with a usage message on stderr for a missing or unknown
 * mode. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

/* ---- output ------------------------------------------------------------ */

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
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof buf)
        n = sizeof buf - 1;
    write_all(1, buf, (size_t)n);
}

/* Report a failed check and return 1 (the mode's result). */
#define FAIL(...) (out("FAIL " __VA_ARGS__), 1)

/* pthread functions return an error number instead of setting errno. */
#define CHECK(call)                                                        \
    do {                                                                   \
        int err_ = (call);                                                 \
        if (err_ != 0)                                                     \
            return FAIL("%s: %s\n", #call, strerror(err_));                \
    } while (0)

static pid_t my_tid(void) { return (pid_t)syscall(SYS_gettid); }

/* ---- join: results through the thread's return value ----------------- */

#define JOIN_THREADS 3
#define JOIN_BASE 200000u

static uint32_t join_lo(int i) { return (uint32_t)i * JOIN_BASE + 1; }
static uint32_t join_len(int i) { return JOIN_BASE + (uint32_t)i * 1000; }

static void *join_worker(void *arg)
{
    int i = (int)(intptr_t)arg;
    uint32_t lo = join_lo(i), hi = lo + join_len(i);
    volatile uint32_t acc = 0;
    for (volatile uint32_t k = lo; k < hi; k++)
        acc += k;
    if (i == 1)
        pthread_exit((void *)(uintptr_t)acc);  /* one through pthread_exit */
    return (void *)(uintptr_t)acc;             /* the others return */
}

static int mode_join(void)
{
    pthread_t t[JOIN_THREADS];
    for (int i = 0; i < JOIN_THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, join_worker, (void *)(intptr_t)i));
    for (int i = 0; i < JOIN_THREADS; i++) {
        void *ret;
        CHECK(pthread_join(t[i], &ret));
        uint32_t got = (uint32_t)(uintptr_t)ret;
        uint64_t lo = join_lo(i), n = join_len(i);
        uint32_t want = (uint32_t)((2 * lo + n - 1) * n / 2);  /* mod 2^32 */
        out("join thread %d sum=%u\n", i, got);
        if (got != want)
            return FAIL("join thread %d: expected %u\n", i, want);
    }
    out("join ok\n");
    return 0;
}

/* ---- mutex: a shared counter under a default mutex --------------------- */

#define MUTEX_THREADS 4
#define MUTEX_ITERS 50000

static pthread_mutex_t mutex_lock = PTHREAD_MUTEX_INITIALIZER;
static int mutex_counter;

static void *mutex_worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < MUTEX_ITERS; i++) {
        pthread_mutex_lock(&mutex_lock);
        mutex_counter++;
        pthread_mutex_unlock(&mutex_lock);
    }
    return NULL;
}

static int mode_mutex(void)
{
    pthread_t t[MUTEX_THREADS];
    mutex_counter = 0;
    for (int i = 0; i < MUTEX_THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, mutex_worker, NULL));
    for (int i = 0; i < MUTEX_THREADS; i++)
        CHECK(pthread_join(t[i], NULL));
    out("counter=%d\n", mutex_counter);
    if (mutex_counter != MUTEX_THREADS * MUTEX_ITERS)
        return FAIL("mutex: expected %d\n", MUTEX_THREADS * MUTEX_ITERS);
    return 0;
}

/* ---- cond: bounded buffer, 1 producer, 2 consumers --------------------- */

#define COND_SLOTS 4
#define COND_ITEMS 2000
#define COND_CONSUMERS 2

static pthread_mutex_t cond_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond_not_full = PTHREAD_COND_INITIALIZER;
static pthread_cond_t cond_not_empty = PTHREAD_COND_INITIALIZER;
static int cond_buf[COND_SLOTS];
static int cond_head, cond_count, cond_done;

static void *cond_producer(void *arg)
{
    (void)arg;
    for (int v = 1; v <= COND_ITEMS; v++) {
        pthread_mutex_lock(&cond_lock);
        while (cond_count == COND_SLOTS)
            pthread_cond_wait(&cond_not_full, &cond_lock);
        cond_buf[(cond_head + cond_count) % COND_SLOTS] = v;
        cond_count++;
        pthread_cond_signal(&cond_not_empty);
        pthread_mutex_unlock(&cond_lock);
    }
    pthread_mutex_lock(&cond_lock);
    cond_done = 1;
    pthread_cond_broadcast(&cond_not_empty);
    pthread_mutex_unlock(&cond_lock);
    return NULL;
}

struct cond_result { long sum; int items; };

static void *cond_consumer(void *arg)
{
    struct cond_result *r = arg;
    for (;;) {
        pthread_mutex_lock(&cond_lock);
        while (cond_count == 0 && !cond_done)
            pthread_cond_wait(&cond_not_empty, &cond_lock);
        if (cond_count == 0) {            /* done and drained */
            pthread_mutex_unlock(&cond_lock);
            return NULL;
        }
        int v = cond_buf[cond_head];
        cond_head = (cond_head + 1) % COND_SLOTS;
        cond_count--;
        pthread_cond_signal(&cond_not_full);
        pthread_mutex_unlock(&cond_lock);
        r->sum += v;
        r->items++;
    }
}

static int mode_cond(void)
{
    pthread_t prod, cons[COND_CONSUMERS];
    struct cond_result res[COND_CONSUMERS];
    memset(res, 0, sizeof res);
    cond_head = cond_count = cond_done = 0;
    for (int i = 0; i < COND_CONSUMERS; i++)
        CHECK(pthread_create(&cons[i], NULL, cond_consumer, &res[i]));
    CHECK(pthread_create(&prod, NULL, cond_producer, NULL));
    CHECK(pthread_join(prod, NULL));
    long total = 0;
    int items = 0;
    for (int i = 0; i < COND_CONSUMERS; i++) {
        CHECK(pthread_join(cons[i], NULL));
        total += res[i].sum;
        items += res[i].items;
    }
    /* How the items split between the consumers varies: print only totals. */
    out("cond total=%ld items=%d\n", total, items);
    long want = (long)COND_ITEMS * (COND_ITEMS + 1) / 2;
    if (total != want || items != COND_ITEMS)
        return FAIL("cond: expected total=%ld items=%d\n", want, COND_ITEMS);
    out("cond ok\n");
    return 0;
}

/* ---- barrier: 3 threads in lock step for 5 rounds ---------------------- */

#define BAR_THREADS 3
#define BAR_ROUNDS 5

static pthread_barrier_t bar;
static pthread_mutex_t bar_lock = PTHREAD_MUTEX_INITIALIZER;
static int bar_round[BAR_THREADS];   /* rounds each thread has entered */
static int bar_bad, bar_serial;

static void *bar_worker(void *arg)
{
    int idx = (int)(intptr_t)arg;
    for (int r = 1; r <= BAR_ROUNDS; r++) {
        pthread_mutex_lock(&bar_lock);
        bar_round[idx] = r;
        pthread_mutex_unlock(&bar_lock);

        int rc = pthread_barrier_wait(&bar);
        if (rc != 0 && rc != PTHREAD_BARRIER_SERIAL_THREAD) {
            pthread_mutex_lock(&bar_lock);
            bar_bad++;
            pthread_mutex_unlock(&bar_lock);
            return NULL;
        }

        /* Past barrier r everyone has entered round r, and nobody can be
           past round r + 1: that needs this thread at barrier r + 1. */
        pthread_mutex_lock(&bar_lock);
        if (rc == PTHREAD_BARRIER_SERIAL_THREAD)
            bar_serial++;
        for (int j = 0; j < BAR_THREADS; j++)
            if (bar_round[j] < r || bar_round[j] > r + 1)
                bar_bad++;
        pthread_mutex_unlock(&bar_lock);
    }
    return NULL;
}

static int mode_barrier(void)
{
    pthread_t t[BAR_THREADS];
    memset(bar_round, 0, sizeof bar_round);
    bar_bad = bar_serial = 0;
    CHECK(pthread_barrier_init(&bar, NULL, BAR_THREADS));
    for (int i = 0; i < BAR_THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, bar_worker, (void *)(intptr_t)i));
    for (int i = 0; i < BAR_THREADS; i++)
        CHECK(pthread_join(t[i], NULL));
    CHECK(pthread_barrier_destroy(&bar));
    int min = bar_round[0];
    for (int i = 1; i < BAR_THREADS; i++)
        if (bar_round[i] < min)
            min = bar_round[i];
    if (bar_bad != 0)
        return FAIL("barrier: %d checks saw a thread out of step\n", bar_bad);
    if (min != BAR_ROUNDS || bar_serial != BAR_ROUNDS)
        return FAIL("barrier: rounds=%d serial=%d\n", min, bar_serial);
    out("barrier serial=%d\n", bar_serial);
    out("barrier rounds=%d ok\n", min);
    return 0;
}

/* ---- race: unlocked read-add-write, deliberately racy ------------------ */

#define RACE_ITERS 1000000

static volatile int race_shared;
static int race_iters = RACE_ITERS;   /* `threads race N` makes it N */

static void *race_worker(void *arg)
{
    if (arg != NULL)
        pthread_setname_np(pthread_self(), (const char *)arg);  /* prctl */
    for (int i = 0; i < race_iters; i++)
        race_shared = race_shared + 1;   /* load, add, store: not atomic */
    return NULL;
}

/* ---- deadlock: two threads take two mutexes in opposite orders --------- */

static pthread_mutex_t dl_a = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t dl_b = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t dl_both;

static void *deadlock_worker(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&dl_b);
    pthread_barrier_wait(&dl_both);
    pthread_mutex_lock(&dl_a);   /* never: main holds it and waits for dl_b */
    return NULL;
}

static int mode_deadlock(void)
{
    pthread_t t;
    CHECK(pthread_barrier_init(&dl_both, NULL, 2));
    pthread_mutex_lock(&dl_a);
    CHECK(pthread_create(&t, NULL, deadlock_worker, NULL));
    pthread_barrier_wait(&dl_both);
    out("deadlock: both hold one lock\n");
    pthread_mutex_lock(&dl_b);
    out("FAIL deadlock: got the second lock\n");
    return 1;
}

static int mode_race(void)
{
    pthread_t a, b;
    race_shared = 0;
    CHECK(pthread_create(&a, NULL, race_worker, "racer-a"));
    CHECK(pthread_create(&b, NULL, race_worker, "racer-b"));
    CHECK(pthread_join(a, NULL));
    CHECK(pthread_join(b, NULL));
    out("race shared=%d\n", race_shared);
    return 0;
}

/* ---- tls: every thread has its own __thread block ---------------------- */

#define TLS_THREADS 3

static __thread int tv = 7;
static __thread char tbuf[32] = "init";

struct tls_result {
    int fresh;       /* tv and tbuf had their initial values at start */
    int tv;
    char buf[32];
    uintptr_t addr;  /* &tv in that thread */
};

static struct tls_result tls_res[TLS_THREADS];

static void *tls_worker(void *arg)
{
    int idx = (int)(intptr_t)arg;
    struct tls_result *r = &tls_res[idx];
    r->fresh = tv == 7 && strcmp(tbuf, "init") == 0;
    tv = idx * 10;
    snprintf(tbuf, sizeof tbuf, "t%d", idx);
    for (int i = 0; i < 5; i++)
        sched_yield();
    /* Other threads wrote their own tv/tbuf meanwhile: ours must be intact. */
    r->tv = tv;
    snprintf(r->buf, sizeof r->buf, "%s", tbuf);
    r->addr = (uintptr_t)&tv;
    return NULL;
}

static int mode_tls(void)
{
    pthread_t t[TLS_THREADS];
    memset(tls_res, 0, sizeof tls_res);
    int saved_tv = tv;
    char saved_buf[32];
    memcpy(saved_buf, tbuf, sizeof saved_buf);
    tv = 99;
    strcpy(tbuf, "main");
    for (int i = 0; i < TLS_THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, tls_worker, (void *)(intptr_t)i));
    for (int i = 0; i < TLS_THREADS; i++)
        CHECK(pthread_join(t[i], NULL));
    int bad = 0;
    for (int i = 0; i < TLS_THREADS; i++) {
        struct tls_result *r = &tls_res[i];
        out("tls %d %d %s\n", i, r->tv, r->buf);
        if (!r->fresh) {
            out("FAIL tls thread %d did not start with tv=7 buf=init\n", i);
            bad = 1;
        }
        char want[32];
        snprintf(want, sizeof want, "t%d", i);
        if (r->tv != i * 10 || strcmp(r->buf, want) != 0) {
            out("FAIL tls thread %d: expected %d %s\n", i, i * 10, want);
            bad = 1;
        }
        if (r->addr == (uintptr_t)&tv) {
            out("FAIL tls thread %d: &tv is main's\n", i);
            bad = 1;
        }
        for (int j = 0; j < i; j++)
            if (tls_res[j].addr == r->addr) {
                out("FAIL tls threads %d and %d share &tv\n", j, i);
                bad = 1;
            }
    }
    out("tls main %d %s\n", tv, tbuf);
    if (tv != 99 || strcmp(tbuf, "main") != 0) {
        out("FAIL tls main: expected 99 main\n");
        bad = 1;
    }
    tv = saved_tv;   /* so that "all" could run this mode again */
    memcpy(tbuf, saved_buf, sizeof tbuf);
    if (bad)
        return 1;
    out("tls ok\n");
    return 0;
}

/* ---- detach: detached threads, an atomic counter and a semaphore ------- */

#define DETACH_THREADS 2

static sem_t detach_sem;
static int detach_counter;

static void *detach_worker(void *arg)
{
    (void)arg;
    __atomic_fetch_add(&detach_counter, 1, __ATOMIC_SEQ_CST);
    sem_post(&detach_sem);
    return NULL;
}

static int mode_detach(void)
{
    pthread_attr_t attr;
    pthread_t t;
    detach_counter = 0;
    if (sem_init(&detach_sem, 0, 0) != 0)
        return FAIL("sem_init: %s\n", strerror(errno));
    CHECK(pthread_attr_init(&attr));
    CHECK(pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED));
    for (int i = 0; i < DETACH_THREADS; i++)
        CHECK(pthread_create(&t, &attr, detach_worker, NULL));
    CHECK(pthread_attr_destroy(&attr));
    for (int i = 0; i < DETACH_THREADS; i++)
        while (sem_wait(&detach_sem) != 0)
            if (errno != EINTR)
                return FAIL("sem_wait: %s\n", strerror(errno));
    int n = __atomic_load_n(&detach_counter, __ATOMIC_SEQ_CST);
    out("detach counter=%d\n", n);
    if (n != DETACH_THREADS)
        return FAIL("detach: expected counter=%d\n", DETACH_THREADS);
    /* The detached threads may still be exiting: the semaphore stays. */
    out("detach ok\n");
    return 0;
}

/* ---- signal: pthread_kill to the one thread that has it unblocked ------ */

static volatile sig_atomic_t sig_flag, sig_ready;
static volatile pid_t sig_handler_tid, sig_worker_tid, sig_worker_pid;

static void sig_handler(int sig)
{
    (void)sig;
    int saved = errno;
    sig_handler_tid = my_tid();
    sig_flag = 1;
    errno = saved;
}

static void *sig_worker(void *arg)
{
    (void)arg;
    sigset_t set;
    sig_worker_tid = my_tid();
    sig_worker_pid = getpid();
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);   /* inherited blocked */
    sig_ready = 1;
    while (!sig_flag)
        sched_yield();
    return NULL;
}

static int mode_signal(void)
{
    struct sigaction sa;
    sigset_t set, old, pending;
    pthread_t t;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = sig_handler;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGUSR1, &sa, NULL) != 0)
        return FAIL("sigaction: %s\n", strerror(errno));
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    CHECK(pthread_sigmask(SIG_BLOCK, &set, &old));
    CHECK(pthread_create(&t, NULL, sig_worker, NULL));
    while (!sig_ready)
        sched_yield();
    CHECK(pthread_kill(t, SIGUSR1));
    CHECK(pthread_join(t, NULL));

    pid_t tid = my_tid(), pid = getpid();
    int bad = 0;
    if (sig_handler_tid != sig_worker_tid) {
        out("FAIL signal handler ran in tid %s\n",
            sig_handler_tid == tid ? "of main" : "unknown");
        bad = 1;
    } else {
        out("signal delivered to worker\n");
    }
    if (sigpending(&pending) != 0 || sigismember(&pending, SIGUSR1)) {
        out("FAIL signal: SIGUSR1 pending in main\n");
        bad = 1;
    }
    if (sig_worker_pid == pid && sig_worker_tid != tid && tid == pid) {
        out("pid same, tid differs\n");
    } else {
        out("FAIL signal: worker pid %s, tid %s, main tid %s pid\n",
            sig_worker_pid == pid ? "same" : "differs",
            sig_worker_tid != tid ? "differs" : "same",
            tid == pid ? "==" : "!=");
        bad = 1;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    signal(SIGUSR1, SIG_DFL);
    return bad;
}

/* ---- sleep: wake-up order set by the sleep lengths --------------------- */

#define SLEEP_LOOPS 3

static pthread_mutex_t sleep_lock = PTHREAD_MUTEX_INITIALIZER;
static int sleep_log[2 * SLEEP_LOOPS], sleep_n;

static void *sleep_worker(void *arg)
{
    int idx = (int)(intptr_t)arg;
    /* thread 0 wakes at 10, 20, 30 ms; thread 1 at 25, 50, 75 ms */
    useconds_t us = idx == 0 ? 10000 : 25000;
    for (int i = 0; i < SLEEP_LOOPS; i++) {
        usleep(us);
        pthread_mutex_lock(&sleep_lock);
        sleep_log[sleep_n++] = idx;
        pthread_mutex_unlock(&sleep_lock);
    }
    return NULL;
}

static int mode_sleep(void)
{
    pthread_t t[2];
    sleep_n = 0;
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&t[i], NULL, sleep_worker, (void *)(intptr_t)i));
    for (int i = 0; i < 2; i++)
        CHECK(pthread_join(t[i], NULL));
    char line[64];
    int len = snprintf(line, sizeof line, "sleep log");
    for (int i = 0; i < sleep_n; i++)
        len += snprintf(line + len, sizeof line - (size_t)len, " %d", sleep_log[i]);
    out("%s\n", line);
    if (strcmp(line, "sleep log 0 0 1 0 1 1") != 0)
        return FAIL("sleep: expected log 0 0 1 0 1 1\n");
    return 0;
}

/* ---- exit: pthread_exit from a nested call, and from main -------------- */

static volatile int exit_reached_end, exit_main_gone;

static void exit_cleanup(void *arg)
{
    (void)arg;
    out("exit cleanup handler ran\n");
}

static __attribute__((noinline)) void exit_level2(int v)
{
    if (v > 0)
        pthread_exit((void *)(intptr_t)v);
}

static __attribute__((noinline)) void exit_level1(int v)
{
    exit_level2(v + 1);
    exit_reached_end = 1;
}

static void *exit_early_worker(void *arg)
{
    (void)arg;
    pthread_cleanup_push(exit_cleanup, NULL);
    exit_level1(41);
    exit_reached_end = 2;
    pthread_cleanup_pop(0);
    return (void *)-1;
}

static void *exit_last_worker(void *arg)
{
    (void)arg;
    while (!exit_main_gone)      /* set just before main's pthread_exit */
        sched_yield();
    for (int i = 0; i < 3; i++)
        sched_yield();
    out("last thread\n");
    return NULL;                 /* the last thread: the process exits 0 */
}

static int mode_exit(void)
{
    pthread_t t;
    void *ret;
    CHECK(pthread_create(&t, NULL, exit_early_worker, NULL));
    CHECK(pthread_join(t, &ret));
    if (exit_reached_end)
        return FAIL("exit: code after pthread_exit ran (%d)\n", exit_reached_end);
    out("worker exited early value=%d\n", (int)(intptr_t)ret);
    if (ret != (void *)42)
        return FAIL("exit: expected value=42\n");
    CHECK(pthread_create(&t, NULL, exit_last_worker, NULL));
    out("main exits\n");
    exit_main_gone = 1;
    pthread_exit(NULL);
}

/* ---- many: 20 threads alive at once ------------------------------------ */

#define MANY_THREADS 20

static pthread_mutex_t many_lock = PTHREAD_MUTEX_INITIALIZER;
static int many_sum;

static void *many_worker(void *arg)
{
    int idx = (int)(intptr_t)arg;
    pthread_mutex_lock(&many_lock);
    many_sum += idx;
    pthread_mutex_unlock(&many_lock);
    return arg;
}

/* ---- sigwait: a thread takes process signals every thread blocks -------- */

static sigset_t sw_set;
static int sw_got[3];

static void *sigwait_worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 3; i++) {
        int sig;
        if (sigwait(&sw_set, &sig) != 0)
            return (void *)1;
        sw_got[i] = sig;
    }
    return NULL;
}

static int mode_sigwait(void)
{
    pthread_t t;
    void *failed;
    sigset_t old;
    sigemptyset(&sw_set);
    sigaddset(&sw_set, SIGUSR1);
    sigaddset(&sw_set, SIGALRM);
    CHECK(pthread_sigmask(SIG_BLOCK, &sw_set, &old));
    CHECK(pthread_create(&t, NULL, sigwait_worker, NULL));
    kill(getpid(), SIGUSR1);          /* maybe before the worker waits */
    usleep(1000);
    struct itimerval it = {{0, 0}, {0, 50000}};
    setitimer(ITIMER_REAL, &it, NULL); /* SIGALRM in 50 ms */
    usleep(20000);
    kill(getpid(), SIGUSR1);          /* while the worker waits */
    CHECK(pthread_join(t, &failed));
    CHECK(pthread_sigmask(SIG_SETMASK, &old, NULL));
    out("sigwait got %d %d %d\n", sw_got[0], sw_got[1], sw_got[2]);
    return failed != NULL;
}

/* ---- poll: main polls a pipe a worker writes to later -------------------- */

static int poll_fds[2];

static void *poll_writer(void *arg)
{
    (void)arg;
    usleep(5000);
    if (write(poll_fds[1], "x", 1) != 1)
        return (void *)1;
    usleep(5000);
    if (write(poll_fds[1], "y", 1) != 1)
        return (void *)1;
    usleep(100000);  /* alive, writing nothing, while main's polls time out */
    return NULL;
}

static int mode_poll(void)
{
    pthread_t t;
    void *failed;
    char c;
    CHECK(pipe(poll_fds));
    CHECK(pthread_create(&t, NULL, poll_writer, NULL));
    struct pollfd p = {poll_fds[0], POLLIN, 0};
    int n = poll(&p, 1, 1000);               /* ready when the worker writes */
    out("poll ready=%d in=%d\n", n, (p.revents & POLLIN) != 0);
    if (read(poll_fds[0], &c, 1) != 1)
        return FAIL("read\n");
    fd_set set;
    FD_ZERO(&set);
    FD_SET(poll_fds[0], &set);
    struct timeval tv = {1, 0};
    n = select(poll_fds[0] + 1, &set, NULL, NULL, &tv);
    out("select ready=%d set=%d\n", n, FD_ISSET(poll_fds[0], &set) != 0);
    if (read(poll_fds[0], &c, 1) != 1)
        return FAIL("read\n");
    n = poll(&p, 1, 10);                     /* nobody writes: a timeout */
    out("poll timeout=%d\n", n);
    FD_SET(poll_fds[0], &set);
    tv.tv_sec = 0;
    tv.tv_usec = 10000;
    n = select(poll_fds[0] + 1, &set, NULL, NULL, &tv);
    out("select timeout=%d set=%d\n", n, FD_ISSET(poll_fds[0], &set) != 0);
    CHECK(pthread_join(t, &failed));
    close(poll_fds[0]);
    close(poll_fds[1]);
    return failed != NULL;
}

/* ---- sigqueue: a signal with a value to one thread; ppoll's mask --------- */

static volatile int sq_sig, sq_val, sq_in_worker, pp_handled;
static pthread_t sq_worker_id;
static pthread_barrier_t sq_both;
static int pp_fds[2];

static void sq_handler(int sig, siginfo_t *si, void *ctx)
{
    (void)ctx;
    sq_sig = sig;
    sq_val = si->si_value.sival_int;
    sq_in_worker = pthread_equal(pthread_self(), sq_worker_id);
}

static void pp_handler(int sig)
{
    (void)sig;
    pp_handled = 1;
}

static void *sq_worker(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&sq_both);
    pthread_barrier_wait(&sq_both);
    /* SIGUSR2 blocked but for ppoll's mask: the signal must cut the wait */
    sigset_t blocked, during;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &blocked, NULL);
    sigemptyset(&during);
    struct pollfd p = {pp_fds[0], POLLIN, 0};
    pthread_barrier_wait(&sq_both);
    int r = ppoll(&p, 1, NULL, &during);
    out("ppoll=%d %s handled=%d\n", r, r < 0 ? strerror(errno) : "ready", pp_handled);
    return NULL;
}

static int mode_sigqueue(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = sq_handler;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGUSR2, pp_handler);
    CHECK(pipe(pp_fds));
    CHECK(pthread_barrier_init(&sq_both, NULL, 2));
    CHECK(pthread_create(&sq_worker_id, NULL, sq_worker, NULL));
    pthread_barrier_wait(&sq_both);
    union sigval v = {.sival_int = 42};
    CHECK(pthread_sigqueue(sq_worker_id, SIGUSR1, v));
    pthread_barrier_wait(&sq_both);
    pthread_barrier_wait(&sq_both);
    usleep(20000);                          /* the worker waits in ppoll */
    CHECK(pthread_kill(sq_worker_id, SIGUSR2));
    CHECK(pthread_join(sq_worker_id, NULL));
    out("sigqueue sig=%d value=%d in_worker=%d\n", sq_sig, sq_val, sq_in_worker);
    signal(SIGUSR1, SIG_DFL);
    signal(SIGUSR2, SIG_DFL);
    close(pp_fds[0]);
    close(pp_fds[1]);
    return 0;
}

/* ---- pipe: a worker writes 100 KB into a pipe main reads ---------------- */

static int pipe_fds[2];

static void *pipe_writer(void *arg)
{
    (void)arg;
    char block[1000];
    for (int i = 0; i < 100; i++) {
        memset(block, 'a' + i % 26, sizeof block);
        /* more than a pipe holds (64 KiB): the writer waits for the reader */
        for (size_t done = 0; done < sizeof block;) {
            ssize_t n = write(pipe_fds[1], block + done, sizeof block - done);
            if (n <= 0)
                return (void *)1;
            done += (size_t)n;
        }
    }
    close(pipe_fds[1]);
    return NULL;
}

static int mode_pipe(void)
{
    pthread_t t;
    void *failed;
    CHECK(pipe(pipe_fds));
    CHECK(pthread_create(&t, NULL, pipe_writer, NULL));
    unsigned long sum = 0, bytes = 0;
    char buf[4096];
    ssize_t n;
    while ((n = read(pipe_fds[0], buf, sizeof buf)) > 0) {  /* waits for the writer */
        for (ssize_t i = 0; i < n; i++)
            sum += (unsigned char)buf[i];
        bytes += (unsigned long)n;
    }
    CHECK(pthread_join(t, &failed));
    close(pipe_fds[0]);
    out("pipe bytes=%lu sum=%lu writer=%s\n", bytes, sum, failed ? "failed" : "ok");
    return failed != NULL;
}

static int mode_many(void)
{
    pthread_t t[MANY_THREADS];
    many_sum = 0;
    for (int i = 0; i < MANY_THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, many_worker, (void *)(intptr_t)i));
    for (int i = 0; i < MANY_THREADS; i++) {
        void *ret;
        CHECK(pthread_join(t[i], &ret));
        if (ret != (void *)(intptr_t)i)
            return FAIL("many: thread %d returned %d\n", i, (int)(intptr_t)ret);
    }
    out("many sum=%d\n", many_sum);
    if (many_sum != MANY_THREADS * (MANY_THREADS - 1) / 2)
        return FAIL("many: expected sum=%d\n", MANY_THREADS * (MANY_THREADS - 1) / 2);
    return 0;
}

/* ---- proc: /proc about the process and its threads -------------------------- */

static int proc_gate[2];

static void *proc_worker(void *arg)
{
    (void)arg;
    char c;
    read(proc_gate[0], &c, 1);
    return NULL;
}

static int read_file(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, size - 1, f);
    buf[n] = 0;
    fclose(f);
    return (int)n;
}

static const char *field(const char *text, const char *key)
{
    const char *p = strstr(text, key);
    return p ? p + strlen(key) : "?";
}

static int mode_proc(void)
{
    static char buf[65536];
    pthread_t t;
    CHECK(pipe(proc_gate));
    CHECK(pthread_create(&t, NULL, proc_worker, NULL));
    /* Another thread's name goes through /proc/self/task/TID/comm. */
    CHECK(pthread_setname_np(t, "worker-1"));
    char name[16];
    CHECK(pthread_getname_np(t, name, sizeof name));
    out("worker name: %s\n", name);
    CHECK(pthread_setname_np(pthread_self(), "main-thread"));
    if (read_file("/proc/self/comm", buf, sizeof buf) < 0)
        return FAIL("proc: comm: %s\n", strerror(errno));
    out("comm: %s", buf);
    if (read_file("/proc/self/status", buf, sizeof buf) < 0)
        return FAIL("proc: status: %s\n", strerror(errno));
    out("status threads: %d, pid matches: %d\n", atoi(field(buf, "Threads:\t")),
        atoi(field(buf, "\nPid:\t")) == getpid());
    int n = read_file("/proc/self/cmdline", buf, sizeof buf);
    int args = 0;
    const char *last = buf;
    for (int i = 0; i < n; i++)
        if (buf[i] == 0) {
            args++;
            if (i + 1 < n)
                last = buf + i + 1;
        }
    out("cmdline: %d arguments, the last %s\n", args, last);
    char link[4096], fdpath[64];
    ssize_t len = readlink("/proc/self/exe", link, sizeof link - 1);
    link[len > 0 ? len : 0] = 0;
    const char *slash = strrchr(link, '/');
    out("exe: absolute %d, named %s\n", link[0] == '/', slash ? slash + 1 : link);
    int nul = open("/dev/null", O_RDONLY);
    snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", nul);
    len = readlink(fdpath, link, sizeof link - 1);
    link[len > 0 ? len : 0] = 0;
    out("fd link: %s\n", link);
    close(nul);
    len = readlink("/proc/self", link, sizeof link - 1);
    link[len > 0 ? len : 0] = 0;
    errno = 0;
    int not_link = readlink("/proc/self/status", fdpath, sizeof fdpath) < 0 ? errno : 0;
    out("self link is my pid: %d, status is not a link: %s\n", atoi(link) == getpid(),
        strerror(not_link));
    if (read_file("//proc/./self/../self/comm", buf, sizeof buf) < 0)
        return FAIL("proc: comm by another spelling: %s\n", strerror(errno));
    out("comm by another spelling: %s", buf);
    if (read_file("/proc/self/stat", buf, sizeof buf) < 0)
        return FAIL("proc: stat: %s\n", strerror(errno));
    const char *after = strrchr(buf, ')');
    int fields = 2;
    for (const char *p = after; p && *p; p++)
        fields += *p == ' ';
    long threads = 0;
    char state = 0;
    sscanf(after + 2, "%c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %ld",
           &state, &threads);
    out("stat: pid matches %d, %d fields, %ld threads, state %c\n", atoi(buf) == getpid(),
        fields, threads, state);
    if (read_file("/proc/self/maps", buf, sizeof buf) < 0)
        return FAIL("proc: maps: %s\n", strerror(errno));
    unsigned long lo, hi, global = (unsigned long)&race_shared;
    int covered = 0;
    for (const char *line = buf; *line; line = strchr(line, '\n') + 1) {
        if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && lo <= global && global < hi)
            covered = 1;
        if (!strchr(line, '\n'))
            break;
    }
    out("maps: stack %d, a global covered %d\n", strstr(buf, "[stack]") != NULL, covered);
    const char *dirs[] = {"/proc/self/task", "/proc/self/fd", "/proc/self"};
    for (int i = 0; i < 3; i++) {
        DIR *d = opendir(dirs[i]);
        int entries = 0, found = 0;
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                entries++;
            found |= !strcmp(e->d_name, "status");
        }
        if (d)
            closedir(d);
        if (i < 2)
            out("%s: %d entries\n", dirs[i], entries);
        else
            out("%s: has status %d\n", dirs[i], found);
    }
    int got = read_file("/proc/999999/status", buf, sizeof buf);
    out("another process: %d %s\n", got, got < 0 ? strerror(errno) : "found");
    CHECK(write(proc_gate[1], "x", 1) == 1 ? 0 : -1);
    CHECK(pthread_join(t, NULL));
    return 0;
}

/* ---- main ---------------------------------------------------------------- */

struct mode { const char *name; int (*fn)(void); int in_all; };

static const struct mode modes[] = {
    {"join", mode_join, 1},
    {"mutex", mode_mutex, 1},
    {"cond", mode_cond, 1},
    {"barrier", mode_barrier, 1},
    {"race", mode_race, 0},
    {"deadlock", mode_deadlock, 0},
    {"tls", mode_tls, 1},
    {"detach", mode_detach, 1},
    {"signal", mode_signal, 0},
    {"sleep", mode_sleep, 1},
    {"exit", mode_exit, 0},
    {"many", mode_many, 1},
    {"pipe", mode_pipe, 1},
    {"sigwait", mode_sigwait, 1},
    {"poll", mode_poll, 1},
    {"sigqueue", mode_sigqueue, 1},
    {"proc", mode_proc, 0},
};
#define NMODES (sizeof modes / sizeof modes[0])

static int usage(void)
{
    static const char msg[] =
        "usage: threads MODE\n"
        "MODE: join mutex cond barrier race [N] tls detach signal sleep exit many pipe sigwait poll sigqueue proc deadlock all\n";
    write_all(2, msg, sizeof msg - 1);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "race") == 0) {
        race_iters = atoi(argv[2]);
        return mode_race() != 0;
    }
    if (argc == 2 && strcmp(argv[1], "cpus") == 0) {
        /* what nproc and thread pools size themselves by */
        cpu_set_t set;
        if (sched_getaffinity(0, sizeof set, &set) != 0)
            return FAIL("sched_getaffinity: %s\n", strerror(errno));
        out("cpus %d\n", CPU_COUNT(&set));
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "serial") == 0) {
        /* race's work in one thread (benchmarks/bench_threads.py) */
        race_iters = atoi(argv[2]);
        race_worker(NULL);
        race_worker(NULL);
        out("serial shared=%d\n", race_shared);
        return 0;
    }
    if (argc != 2)
        return usage();
    if (strcmp(argv[1], "all") == 0) {
        for (size_t i = 0; i < NMODES; i++) {
            if (!modes[i].in_all)
                continue;
            out("== %s\n", modes[i].name);
            if (modes[i].fn() != 0)
                return 1;
        }
        out("all ok\n");
        return 0;
    }
    for (size_t i = 0; i < NMODES; i++)
        if (strcmp(argv[1], modes[i].name) == 0)
            return modes[i].fn() != 0;
    return usage();
}
