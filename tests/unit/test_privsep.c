/*
 * Privilege separation: the agent side (agent/privsep.c) and the executor program
 * (vigil-agent-exec).
 *
 * Usage: test_privsep PATH-TO-vigil-agent-exec (or VIGIL_EXEC_PATH in the environment).
 *
 * Misbehaving executors are played by this binary itself: it is exec'd through symlinks named
 * "fake-<mode>" and tells from AT_EXECFN which part to play. Tests that need root skip
 * otherwise; the drop to "nobody" happens in a forked child, since it cannot be undone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "privsep.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FAKE_PREFIX "fake-"

static const char *exec_path;
static char fake_dir[] = "/tmp/test_privsep.XXXXXX";
/* A copy of the executor in fake_dir that any user can run: the build tree may sit under a
 * directory only root can search (a clone in /root), and the unprivileged test runs as nobody. */
static char public_exec_path[PATH_MAX];

/* ---------------------------------------------------------------- fake executors */

static bool recv_msg(struct privsep_msg *msg)
{
    unsigned char buf[sizeof(*msg) + 1];
    ssize_t n = recv(PRIVSEP_EXEC_FD, buf, sizeof(buf), 0);
    if (n != (ssize_t)sizeof(*msg))
        return false;
    memcpy(msg, buf, sizeof(*msg));
    return true;
}

static void send_pong(uint64_t nonce)
{
    struct privsep_msg pong = {.magic = PRIVSEP_MAGIC, .type = PRIVSEP_PONG, .nonce = nonce};
    if (send(PRIVSEP_EXEC_FD, &pong, sizeof(pong), MSG_NOSIGNAL) < 0)
        _exit(1);
}

/* Plays a broken executor: answers the first PING properly (unless mute), then misbehaves. */
static int fake_main(const char *mode)
{
    struct privsep_msg msg;

    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test, whatever the mode */
    if (strcmp(mode, "mute") == 0) {
        while (recv_msg(&msg)) {
        }
        return 0;
    }
    if (strcmp(mode, "stubborn") == 0)
        signal(SIGTERM, SIG_IGN);
    if (!recv_msg(&msg))
        return 1;
    send_pong(msg.nonce);
    if (strcmp(mode, "stubborn") == 0) {
        alarm(30); /* a backstop if the test itself is broken */
        for (;;)
            pause();
    }

    if (!recv_msg(&msg))
        return 1;
    if (strcmp(mode, "wrong-nonce") == 0) {
        send_pong(msg.nonce + 1);
    } else if (strcmp(mode, "wrong-magic") == 0) {
        struct privsep_msg bad = {.magic = 0x12345678u, .type = PRIVSEP_PONG, .nonce = msg.nonce};
        send(PRIVSEP_EXEC_FD, &bad, sizeof(bad), MSG_NOSIGNAL);
    } else if (strcmp(mode, "wrong-type") == 0) {
        struct privsep_msg bad = {.magic = PRIVSEP_MAGIC, .type = PRIVSEP_PING, .nonce = msg.nonce};
        send(PRIVSEP_EXEC_FD, &bad, sizeof(bad), MSG_NOSIGNAL);
    } else if (strcmp(mode, "wrong-size") == 0) {
        struct privsep_msg pong = {PRIVSEP_MAGIC, PRIVSEP_PONG, msg.nonce};
        unsigned char bad[sizeof(pong) + 4] = {0};
        memcpy(bad, &pong, sizeof(pong));
        send(PRIVSEP_EXEC_FD, bad, sizeof(bad), MSG_NOSIGNAL);
    } else if (strcmp(mode, "short") == 0) {
        send(PRIVSEP_EXEC_FD, &msg, 4, MSG_NOSIGNAL);
    } else if (strcmp(mode, "empty") == 0) {
        send(PRIVSEP_EXEC_FD, &msg, 0, MSG_NOSIGNAL);
    } /* "silent": no answer */

    while (recv_msg(&msg)) {
    }
    return 0;
}

static const char *fake_path(const char *mode)
{
    static char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/" FAKE_PREFIX "%s", fake_dir, mode);
    return path;
}

static int make_fakes(void)
{
    static const char *const modes[] = {"mute",        "stubborn",   "wrong-nonce",
                                        "wrong-magic", "wrong-type", "wrong-size",
                                        "short",       "silent",     "empty"};
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n < 0 || !mkdtemp(fake_dir))
        return -1;
    self[n] = '\0';
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        if (symlink(self, fake_path(modes[i])) < 0)
            return -1;
    }
    return 0;
}

/* Copies the executor into fake_dir (made searchable by all) as public_exec_path. */
static int copy_executor(void)
{
    snprintf(public_exec_path, sizeof(public_exec_path), "%s/vigil-agent-exec", fake_dir);
    int in = open(exec_path, O_RDONLY | O_CLOEXEC);
    int out = open(public_exec_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
    int r = in >= 0 && out >= 0 ? 0 : -1;
    char buf[65536];
    ssize_t n;
    while (r == 0 && (n = read(in, buf, sizeof(buf))) != 0) {
        if (n < 0 || write(out, buf, (size_t)n) != n)
            r = -1;
    }
    if (in >= 0)
        close(in);
    if (out >= 0 && (fchmod(out, 0755) < 0 || close(out) < 0))
        r = -1;
    if (r == 0 && chmod(fake_dir, 0711) < 0)
        r = -1;
    return r;
}

static void remove_fakes(void)
{
    static const char *const modes[] = {"mute",        "stubborn",   "wrong-nonce",
                                        "wrong-magic", "wrong-type", "wrong-size",
                                        "short",       "silent",     "empty"};
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
        unlink(fake_path(modes[i]));
    if (public_exec_path[0])
        unlink(public_exec_path);
    rmdir(fake_dir);
}

/* ---------------------------------------------------------------- helpers */

static long elapsed_ms(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - since->tv_sec) * 1000 + (now.tv_nsec - since->tv_nsec) / 1000000;
}

/* Gone and reaped: a zombie would still accept signal 0. */
static bool process_gone(pid_t pid)
{
    return kill(pid, 0) < 0 && errno == ESRCH;
}

/* Waits up to timeout_ms; the wait status, or -1 (child killed and reaped) on timeout. */
static int wait_exit(pid_t pid, int timeout_ms)
{
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int status;
    while (elapsed_ms(&start) < timeout_ms) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return status;
        struct timespec pause = {0, 5 * 1000000L};
        nanosleep(&pause, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

struct raw_exec {
    pid_t pid;
    int stderr_fd; /* read end of the executor's stderr */
};

/*
 * Starts the executor by hand with fd3 (may be -1: fd 3 closed) as its fd 3 and its stderr
 * captured, the way a careless or hostile starter would.
 */
static void raw_spawn(int fd3, struct raw_exec *ret)
{
    int errp[2];
    assert_int_equal(pipe2(errp, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int err_hi = fcntl(errp[1], F_DUPFD, 10);
        int fd3_hi = fd3 >= 0 ? fcntl(fd3, F_DUPFD, 10) : -1;
        if (err_hi < 0 || dup2(err_hi, STDERR_FILENO) < 0)
            _exit(126);
        if (fd3_hi >= 0) {
            if (dup2(fd3_hi, PRIVSEP_EXEC_FD) < 0)
                _exit(126);
        } else {
            close(PRIVSEP_EXEC_FD);
        }
        close_range(PRIVSEP_EXEC_FD + 1, ~0U, 0);
        char *const argv[] = {"vigil-agent-exec", NULL};
        char *const envp[] = {NULL};
        execve(exec_path, argv, envp);
        _exit(127);
    }
    close(errp[1]);
    ret->pid = pid;
    ret->stderr_fd = errp[0];
}

/* Reads everything the (exited) executor wrote to stderr. */
static void read_stderr(struct raw_exec *raw, char *buf, size_t len)
{
    size_t used = 0;
    ssize_t n;
    while (used < len - 1 && (n = read(raw->stderr_fd, buf + used, len - 1 - used)) > 0)
        used += (size_t)n;
    buf[used] = '\0';
    close(raw->stderr_fd);
    raw->stderr_fd = -1;
}

/* Reaps zombies left by an earlier, failed test so they are not blamed on the next one. */
static void reap_strays(void)
{
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

/* No child of ours exists at all: none left running, none left unreaped. (reap_strays first
 * clears what earlier tests legitimately left to reap.) */
static bool no_children(void)
{
    errno = 0;
    return waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD;
}

static size_t count_lines(const char *text)
{
    size_t lines = 0;
    for (const char *p = text; *p; p++)
        lines += *p == '\n';
    return lines;
}

/* The value of a "Key:\t..." line of /proc/<pid>/status, or "" */
static void proc_status_line(pid_t pid, const char *key, char *buf, size_t len)
{
    char path[64];
    char line[256];
    size_t keylen = strlen(key);
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, key, keylen) == 0 && line[keylen] == ':') {
            const char *value = line + keylen + 1;
            while (*value == '\t' || *value == ' ')
                value++;
            snprintf(buf, len, "%s", value);
            buf[strcspn(buf, "\n")] = '\0';
            break;
        }
    }
    fclose(f);
}

/* Starts the real executor as the current user (root: allow_root, no drop). */
static privsep_t *start_plain(void)
{
    char err[256] = "";
    privsep_t *ps = privsep_start(exec_path, NULL, true, err, sizeof(err));
    if (!ps)
        print_error("privsep_start: %s\n", err);
    assert_non_null(ps);
    return ps;
}

/* ---------------------------------------------------------------- the agent side */

static void test_ping_round_trip(void **state)
{
    (void)state;
    privsep_t *ps = start_plain();
    pid_t pid = privsep_executor_pid(ps);
    assert_true(pid > 0);
    for (int i = 0; i < 20; i++)
        assert_int_equal(privsep_ping(ps, 1000), 0);

    /* It is the executor program, not a forked copy of this process. */
    char exe[PATH_MAX];
    char proc_exe[64];
    char *want = realpath(exec_path, NULL);
    snprintf(proc_exe, sizeof(proc_exe), "/proc/%d/exe", (int)pid);
    ssize_t n = readlink(proc_exe, exe, sizeof(exe) - 1);
    assert_true(n > 0);
    exe[n] = '\0';
    assert_non_null(want);
    assert_string_equal(exe, want);
    free(want);

    privsep_stop(&ps);
    assert_null(ps);
}

/* What the executor inherits: fd 3 only, a fixed environment, default signals. */
static void test_executor_starts_clean(void **state)
{
    (void)state;
    int leak = open("/dev/null", O_RDONLY); /* not close-on-exec on purpose */
    assert_true(leak >= 0);
    struct sigaction ign = {.sa_handler = SIG_IGN};
    struct sigaction old_usr1;
    sigaction(SIGUSR1, &ign, &old_usr1);
    sigset_t block;
    sigset_t old_mask;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR2);
    sigprocmask(SIG_BLOCK, &block, &old_mask);
    setenv("VIGIL_TEST_SECRET", "leaked", 1);

    privsep_t *ps = start_plain();
    pid_t pid = privsep_executor_pid(ps);

    sigaction(SIGUSR1, &old_usr1, NULL);
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    unsetenv("VIGIL_TEST_SECRET");
    close(leak);

    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    int dfd = open(path, O_RDONLY | O_DIRECTORY);
    assert_true(dfd >= 0);
    for (int fd = PRIVSEP_EXEC_FD + 1; fd < 64; fd++) {
        char name[16];
        struct stat st;
        snprintf(name, sizeof(name), "%d", fd);
        if (fstatat(dfd, name, &st, 0) == 0)
            fail_msg("executor inherited fd %d", fd);
    }
    struct stat st;
    assert_int_equal(fstatat(dfd, "3", &st, 0), 0);
    assert_true(S_ISSOCK(st.st_mode));
    close(dfd);

    char env[512];
    snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
    int efd = open(path, O_RDONLY);
    assert_true(efd >= 0);
    ssize_t n = read(efd, env, sizeof(env));
    close(efd);
    static const char want_env[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
    assert_int_equal(n, sizeof(want_env)); /* exactly one variable, NUL-terminated */
    assert_memory_equal(env, want_env, sizeof(want_env));

    /* Standard signals (1-31) must all be at their defaults and unblocked. glibc reserves
     * 32 and 33 for itself and refuses to change them, so an ignore inherited from whatever
     * started the test cannot be undone through libc; they are not checked. */
    char value[128];
    proc_status_line(pid, "SigIgn", value, sizeof(value));
    assert_int_equal(strtoull(value, NULL, 16) & 0x7fffffffULL, 0);
    proc_status_line(pid, "SigBlk", value, sizeof(value));
    assert_int_equal(strtoull(value, NULL, 16) & 0x7fffffffULL, 0);

    assert_int_equal(privsep_ping(ps, 1000), 0);
    privsep_stop(&ps);
}

/* Closing the socket is how the agent stops the executor: quick, and nothing left behind. */
static void test_stop_reaps_executor(void **state)
{
    (void)state;
    privsep_t *ps = start_plain();
    pid_t pid = privsep_executor_pid(ps);
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    privsep_stop(&ps);
    assert_null(ps);
    assert_true(elapsed_ms(&start) < 1000); /* exited on EOF, was not killed after 2 s */
    assert_true(process_gone(pid));
    privsep_stop(&ps); /* NULL is fine */
    privsep_stop(NULL);
}

static void test_ping_after_executor_died(void **state)
{
    (void)state;
    privsep_t *ps = start_plain();
    pid_t pid = privsep_executor_pid(ps);
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(privsep_ping(ps, 1000), -EPIPE);
    assert_int_equal(privsep_ping(ps, 1000), -EPIPE);
    privsep_stop(&ps);
    assert_true(process_gone(pid));
}

static void test_missing_executor(void **state)
{
    (void)state;
    char err[256] = "";
    const char *missing = "/nonexistent/vigil-agent-exec";
    reap_strays();
    errno = 0;
    assert_null(privsep_start(missing, NULL, true, err, sizeof(err)));
    assert_int_equal(errno, ENOENT);
    assert_non_null(strstr(err, missing));
    assert_non_null(strstr(err, "No such file or directory"));

    /* Not executable: said as such. */
    char notexec[PATH_MAX];
    snprintf(notexec, sizeof(notexec), "%s/not-executable", fake_dir);
    int fd = open(notexec, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    close(fd);
    assert_null(privsep_start(notexec, NULL, true, err, sizeof(err)));
    assert_int_equal(errno, EACCES);
    assert_non_null(strstr(err, notexec));
    unlink(notexec);

    assert_null(privsep_start("", NULL, true, err, sizeof(err)));
    assert_int_equal(errno, EINVAL);

    assert_true(no_children()); /* the failed children were reaped */
}

static void test_executor_does_not_answer(void **state)
{
    (void)state;
    char err[512] = "";
    const char *mute = fake_path("mute");
    struct timespec start;
    reap_strays();
    clock_gettime(CLOCK_MONOTONIC, &start);
    assert_null(privsep_start(mute, NULL, true, err, sizeof(err)));
    assert_int_equal(errno, ETIMEDOUT);
    assert_in_range(elapsed_ms(&start), 1900, 4500);
    assert_non_null(strstr(err, mute));
    assert_non_null(strstr(err, "did not answer"));
    assert_true(no_children());
}

/* Every wrong reply is -EPROTO and breaks the channel; the executor is still stopped cleanly. */
static void test_bad_replies_are_fatal(void **state)
{
    (void)state;
    static const struct {
        const char *mode;
        int want;
    } cases[] = {
        {"wrong-nonce", -EPROTO}, {"wrong-magic", -EPROTO}, {"wrong-type", -EPROTO},
        {"wrong-size", -EPROTO},  {"short", -EPROTO},       {"empty", -EPROTO},
        {"silent", -ETIMEDOUT},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[256] = "";
        privsep_t *ps = privsep_start(fake_path(cases[i].mode), NULL, true, err, sizeof(err));
        if (!ps)
            fail_msg("%s: privsep_start: %s", cases[i].mode, err);
        pid_t pid = privsep_executor_pid(ps);
        int r = privsep_ping(ps, 300);
        if (r != cases[i].want)
            fail_msg("%s: ping returned %d, want %d", cases[i].mode, r, cases[i].want);
        assert_int_equal(privsep_ping(ps, 300), -EPIPE); /* the channel is closed */

        struct timespec start;
        clock_gettime(CLOCK_MONOTONIC, &start);
        privsep_stop(&ps);
        assert_true(elapsed_ms(&start) < 1000);
        assert_true(process_gone(pid));
    }
}

/* An executor that ignores EOF and SIGTERM is killed after the grace period. */
static void test_stop_kills_stubborn_executor(void **state)
{
    (void)state;
    char err[256] = "";
    privsep_t *ps = privsep_start(fake_path("stubborn"), NULL, true, err, sizeof(err));
    if (!ps)
        fail_msg("privsep_start: %s", err);
    pid_t pid = privsep_executor_pid(ps);
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    privsep_stop(&ps);
    assert_in_range(elapsed_ms(&start), 1900, 4000);
    assert_true(process_gone(pid));
}

/* ---------------------------------------------------------------- the executor program */

static void test_executor_exits_on_eof(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    struct raw_exec raw;
    raw_spawn(sv[1], &raw);
    close(sv[1]);

    struct privsep_msg ping = {PRIVSEP_MAGIC, PRIVSEP_PING, 0x0123456789abcdefULL};
    struct privsep_msg pong;
    assert_int_equal(send(sv[0], &ping, sizeof(ping), MSG_NOSIGNAL), sizeof(ping));
    struct pollfd pfd = {.fd = sv[0], .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 2000), 1);
    assert_int_equal(recv(sv[0], &pong, sizeof(pong), 0), sizeof(pong));
    assert_int_equal(pong.magic, PRIVSEP_MAGIC);
    assert_int_equal(pong.type, PRIVSEP_PONG);
    assert_true(pong.nonce == ping.nonce);

    close(sv[0]);
    int status = wait_exit(raw.pid, 2000);
    assert_true(status != -1);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    char text[512];
    read_stderr(&raw, text, sizeof(text));
    assert_string_equal(text, "");
}

static void test_executor_rejects_garbage(void **state)
{
    (void)state;
    struct privsep_msg ping = {PRIVSEP_MAGIC, PRIVSEP_PING, 1};
    unsigned char long_msg[sizeof(ping) + 8] = {0};
    memcpy(long_msg, &ping, sizeof(ping));
    struct privsep_msg bad_magic = {0x58454756u, PRIVSEP_PING, 1};
    struct privsep_msg bad_type = {PRIVSEP_MAGIC, 99, 1};
    struct privsep_msg pong = {PRIVSEP_MAGIC, PRIVSEP_PONG, 1};
    static const char garbage[] = "hello";
    const struct {
        const char *name;
        const void *data;
        size_t len;
    } cases[] = {
        {"short", garbage, 5},
        {"long", long_msg, sizeof(long_msg)},
        {"bad magic", &bad_magic, sizeof(bad_magic)},
        {"unknown type", &bad_type, sizeof(bad_type)},
        {"pong to the executor", &pong, sizeof(pong)},
        {"empty", garbage, 0},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        struct raw_exec raw;
        raw_spawn(sv[1], &raw);
        close(sv[1]);
        assert_int_equal(send(sv[0], cases[i].data, cases[i].len, MSG_NOSIGNAL),
                         (ssize_t)cases[i].len);
        int status = wait_exit(raw.pid, 2000);
        close(sv[0]);
        char text[512];
        read_stderr(&raw, text, sizeof(text));
        if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 3)
            fail_msg("%s: executor wait status %#x, want exit 3 (stderr: %s)", cases[i].name,
                     (unsigned)status, text);
        assert_non_null(strstr(text, "vigil-agent-exec: protocol violation"));
        assert_int_equal(count_lines(text), 1);
    }
}

/* Started by hand without the socket (fd 3 closed, a file, a stream socket): exit 2. */
static void test_executor_needs_agent(void **state)
{
    (void)state;
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int stream[2];
    assert_true(devnull >= 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, stream), 0);
    const int fds[] = {-1, devnull, stream[1]};

    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
        struct raw_exec raw;
        raw_spawn(fds[i], &raw);
        int status = wait_exit(raw.pid, 2000);
        char text[512];
        read_stderr(&raw, text, sizeof(text));
        if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 2)
            fail_msg("case %zu: wait status %#x, want exit 2 (stderr: %s)", i, (unsigned)status,
                     text);
        assert_non_null(strstr(text, "vigil-agent-exec: must be started by vigil-agent"));
    }
    close(devnull);
    close(stream[0]);
    close(stream[1]);
}

/* ---------------------------------------------------------------- users and privileges */

static void test_unknown_user(void **state)
{
    (void)state;
    char err[256] = "";
    assert_null(privsep_start(exec_path, "vigil-no-such-user", false, err, sizeof(err)));
    assert_int_equal(errno, ENOENT);
    assert_non_null(strstr(err, "\"vigil-no-such-user\""));
}

static void test_root_without_user_refused(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    char err[256] = "";
    reap_strays();
    assert_null(privsep_start(exec_path, NULL, false, err, sizeof(err)));
    assert_int_equal(errno, EPERM);
    assert_non_null(strstr(err, "\"user:\""));
    assert_null(privsep_start(exec_path, "", false, err, sizeof(err)));
    assert_int_equal(errno, EPERM);
    assert_true(no_children()); /* nothing left behind */
}

/* Exit codes of the dropping child, so the parent can say which check failed. */
enum drop_check {
    DROP_OK = 0,
    DROP_START = 10,
    DROP_UID,
    DROP_GID,
    DROP_GROUPS,
    DROP_SETUID_WORKS,
    DROP_PING,
    DROP_EXEC_UID,
    DROP_EXEC_GONE,
};

/* The groups user gets at login (primary included), sorted; count in *ret_n. */
static gid_t *user_groups(const char *user, gid_t gid, int *ret_n)
{
    int n = 64;
    gid_t *groups = calloc((size_t)n, sizeof(*groups));
    if (!groups || getgrouplist(user, gid, groups, &n) < 0) {
        free(groups);
        return NULL;
    }
    for (int i = 1; i < n; i++) /* insertion sort: a handful of entries */
        for (int j = i; j > 0 && groups[j - 1] > groups[j]; j--) {
            gid_t g = groups[j];
            groups[j] = groups[j - 1];
            groups[j - 1] = g;
        }
    *ret_n = n;
    return groups;
}

/* The process's supplementary groups are exactly want (sorted, n entries)? */
static bool groups_are(const gid_t *want, int n)
{
    gid_t have[128];
    int count = getgroups(128, have);
    if (count != n) {
        fprintf(stderr, "after the drop: %d supplementary groups, want %d\n", count, n);
        return false;
    }
    for (int i = 1; i < count; i++)
        for (int j = i; j > 0 && have[j - 1] > have[j]; j--) {
            gid_t g = have[j];
            have[j] = have[j - 1];
            have[j - 1] = g;
        }
    for (int i = 0; i < count; i++) {
        if (have[i] != want[i]) {
            fprintf(stderr, "after the drop: group %lu, want %lu\n", (unsigned long)have[i],
                    (unsigned long)want[i]);
            return false;
        }
    }
    return true;
}

static int drop_child(const char *user, uid_t want_uid, gid_t want_gid, const gid_t *want_groups,
                      int want_ngroups)
{
    char err[256] = "";
    privsep_t *ps = privsep_start(exec_path, user, false, err, sizeof(err));
    if (!ps) {
        fprintf(stderr, "privsep_start: %s\n", err);
        return DROP_START;
    }
    uid_t ruid;
    uid_t euid;
    uid_t suid;
    gid_t rgid;
    gid_t egid;
    gid_t sgid;
    getresuid(&ruid, &euid, &suid);
    getresgid(&rgid, &egid, &sgid);
    if (ruid != want_uid || euid != want_uid || suid != want_uid)
        return DROP_UID;
    if (rgid != want_gid || egid != want_gid || sgid != want_gid)
        return DROP_GID;
    if (!groups_are(want_groups, want_ngroups))
        return DROP_GROUPS;
    if (setuid(0) != -1 || seteuid(0) != -1)
        return DROP_SETUID_WORKS;
    for (int i = 0; i < 3; i++) {
        if (privsep_ping(ps, 1000) != 0)
            return DROP_PING;
    }
    pid_t pid = privsep_executor_pid(ps);
    char uid_line[128];
    proc_status_line(pid, "Uid", uid_line, sizeof(uid_line));
    if (strcmp(uid_line, "0\t0\t0\t0") != 0) {
        fprintf(stderr, "executor Uid: %s\n", uid_line);
        return DROP_EXEC_UID;
    }
    privsep_stop(&ps); /* the unprivileged agent can still stop the root executor */
    if (!process_gone(pid))
        return DROP_EXEC_GONE;
    return DROP_OK;
}

/* Drops to user in a child: afterwards its groups are exactly the user's (getgrouplist), and
 * root's supplementary group 4242 is gone. */
static void drop_and_check(const char *user)
{
    struct passwd *pw = getpwnam(user);
    assert_non_null(pw);
    uid_t uid = pw->pw_uid;
    gid_t gid = pw->pw_gid;
    int ngroups = 0;
    gid_t *groups = user_groups(user, gid, &ngroups);
    assert_non_null(groups);
    for (int i = 0; i < ngroups; i++)
        assert_true(groups[i] != 4242);
    gid_t extra = 4242;
    assert_int_equal(setgroups(1, &extra), 0); /* root's: must be gone after the drop */

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(drop_child(user, uid, gid, groups, ngroups));
    setgroups(0, NULL);
    free(groups);
    int status = wait_exit(pid, 10000);
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != DROP_OK)
        fail_msg("dropping to %s: wait status %#x (exit codes: enum drop_check)", user,
                 (unsigned)status);
}

static void test_drop_to_nobody(void **state)
{
    (void)state;
    if (geteuid() != 0 || !getpwnam("nobody"))
        skip();
    drop_and_check("nobody");
}

/* A user with a supplementary group (the README's "agent's user in adm" for auth.log) keeps it
 * after the drop. Uses the first non-root account some group lists as a member (on Debian with
 * PostgreSQL installed: postgres, in ssl-cert); the test creates no accounts. */
static void test_drop_keeps_user_groups(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    char user[256] = "";
    gid_t member_of = 0;
    setgrent();
    for (struct group *gr = getgrent(); gr && !user[0]; gr = getgrent()) {
        for (char **m = gr->gr_mem; m && *m && !user[0]; m++) {
            struct passwd *pw = getpwnam(*m);
            if (pw && pw->pw_uid != 0 && pw->pw_gid != gr->gr_gid) {
                snprintf(user, sizeof(user), "%s", *m);
                member_of = gr->gr_gid;
            }
        }
    }
    endgrent();
    if (!user[0]) {
        fprintf(stderr, "no account with a supplementary group on this machine\n");
        skip();
    }
    int ngroups = 0;
    struct passwd *pw = getpwnam(user);
    assert_non_null(pw);
    gid_t *groups = user_groups(user, pw->pw_gid, &ngroups);
    assert_non_null(groups);
    bool listed = false;
    for (int i = 0; i < ngroups; i++)
        listed = listed || groups[i] == member_of;
    free(groups);
    assert_true(listed && ngroups >= 2);
    drop_and_check(user);
}

/* Not root: only the current user is acceptable. */
static int unprivileged_child(const char *executor)
{
    char err[256] = "";
    if (privsep_start(executor, "root", false, err, sizeof(err)) || errno != EPERM ||
        !strstr(err, "cannot switch to user \"root\": not running as root")) {
        fprintf(stderr, "switch to root: %s\n", err);
        return 1;
    }
    struct passwd *pw = getpwuid(geteuid());
    if (!pw)
        return 2;
    const char *users[] = {NULL, "", pw->pw_name};
    for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
        privsep_t *ps = privsep_start(executor, users[i], false, err, sizeof(err));
        if (!ps) {
            fprintf(stderr, "start as %s: %s\n", users[i] ? users[i] : "(null)", err);
            return 3;
        }
        if (privsep_ping(ps, 1000) != 0)
            return 4;
        privsep_stop(&ps);
    }
    return 0;
}

static void test_not_root_cannot_switch(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        assert_int_equal(unprivileged_child(exec_path), 0);
        return;
    }
    struct passwd *pw = getpwnam("nobody");
    if (!pw)
        skip();
    uid_t uid = pw->pw_uid;
    gid_t gid = pw->pw_gid;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
            _exit(100);
        _exit(unprivileged_child(public_exec_path));
    }
    int status = wait_exit(pid, 10000);
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("unprivileged child: wait status %#x", (unsigned)status);
}

int main(int argc, char **argv)
{
    const char *execfn = (const char *)getauxval(AT_EXECFN);
    const char *base = execfn ? strrchr(execfn, '/') : NULL;
    base = base ? base + 1 : execfn;
    if (base && strncmp(base, FAKE_PREFIX, strlen(FAKE_PREFIX)) == 0)
        return fake_main(base + strlen(FAKE_PREFIX));

    exec_path = argc > 1 ? argv[1] : getenv("VIGIL_EXEC_PATH");
    if (!exec_path || access(exec_path, X_OK) != 0) {
        fprintf(stderr, "usage: %s PATH-TO-vigil-agent-exec (or set VIGIL_EXEC_PATH)\n", argv[0]);
        return 2;
    }
    if (make_fakes() < 0 || copy_executor() < 0) {
        perror("test_privsep: cannot create fake executors");
        remove_fakes();
        return 2;
    }
    signal(SIGPIPE, SIG_IGN); /* an agent-like setting; must not reach the executor */

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ping_round_trip),
        cmocka_unit_test(test_executor_starts_clean),
        cmocka_unit_test(test_stop_reaps_executor),
        cmocka_unit_test(test_ping_after_executor_died),
        cmocka_unit_test(test_missing_executor),
        cmocka_unit_test(test_executor_does_not_answer),
        cmocka_unit_test(test_bad_replies_are_fatal),
        cmocka_unit_test(test_stop_kills_stubborn_executor),
        cmocka_unit_test(test_executor_exits_on_eof),
        cmocka_unit_test(test_executor_rejects_garbage),
        cmocka_unit_test(test_executor_needs_agent),
        cmocka_unit_test(test_unknown_user),
        cmocka_unit_test(test_root_without_user_refused),
        cmocka_unit_test(test_drop_to_nobody),
        cmocka_unit_test(test_drop_keeps_user_groups),
        cmocka_unit_test(test_not_root_cannot_switch),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    remove_fakes();
    return failed;
}
