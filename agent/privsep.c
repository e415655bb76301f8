/*
 * Privilege separation: start the executor while root, then drop the agent's own privileges.
 *
 * Start-up order (see privsep.h):
 *   1. check the requested user and look it up (nothing has changed yet, so a configuration
 *      mistake costs no process);
 *   2. socketpair + fork + execve of the executor, its end of the pair as fd 3, every other
 *      descriptor closed, signals reset, a fixed environment (PATH, and the agent's NODE_NAME
 *      when it has one: the executor names its node as the agent does, agent_config.c). A
 *      close-on-exec pipe carries the
 *      errno of a failed execve back, so "no such file" is reported as such;
 *   3. drop to the user (root's supplementary groups replaced by the user's own, then gid, then
 *      uid) and prove the drop cannot be undone. The user's groups are kept because that is
 *      how an administrator grants read access (README: the agent's user in "adm" for
 *      /var/log/auth.log); they are looked up in step 1, before any process exists;
 *   4. one PING round trip proves the executor is alive and speaks the protocol.
 *
 * After any failed exchange the channel is closed: a peer that sent something unexpected is
 * treated as compromised, and after a timeout a late answer would be mistaken for the next one.
 */
#include "privsep.h"

#include "childproc.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define START_PING_TIMEOUT_MS 2000
#define STOP_GRACE_MS 2000
#define STOP_POLL_MS 10
#define EXEC_ERR_FD (PRIVSEP_EXEC_FD + 1) /* the child's end of the exec-error pipe */
#define PW_BUF_SIZE 16384
#define GROUPS_GUESS 32 /* first try of getgrouplist; it says when more are needed */

/* One message from the executor; +1: a longer one shows. */
#define RECV_BUF_SIZE (sizeof(struct privsep_hdr) + PRIVSEP_PAYLOAD_MAX + 1)
#define SEND_TIMEOUT_MS 2000

struct privsep {
    int fd;           /* our end of the socketpair; -1 once the channel is broken or closed */
    pid_t pid;        /* the executor; -1 once reaped */
    uint64_t counter; /* nonce fallback when getrandom cannot answer */
    privsep_report_fn *on_report;
    void *report_userdata;
    privsep_report_fn *on_output;
    void *output_userdata;
    unsigned char *buf; /* RECV_BUF_SIZE: one message from the executor */
};

#define EXEC_PATH_ENV "PATH=/usr/sbin:/usr/bin:/sbin:/bin"
#define NODE_NAME_ENV "NODE_NAME="

static int fail(char *err, size_t errlen, int r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int r, const char *fmt, ...)
{
    if (err && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return r;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Looks up name. 0 and the ids, -ENOENT if there is no such user, another negative errno if
 * the lookup itself failed.
 */
static int lookup_user(const char *name, uid_t *ret_uid, gid_t *ret_gid)
{
    struct passwd pw;
    struct passwd *found = NULL;
    char *buf = malloc(PW_BUF_SIZE);
    if (!buf)
        return -ENOMEM;
    int r = getpwnam_r(name, &pw, buf, PW_BUF_SIZE, &found);
    if (r == 0 && found) {
        *ret_uid = pw.pw_uid;
        *ret_gid = pw.pw_gid;
    }
    free(buf);
    if (r != 0)
        return -r;
    return found ? 0 : -ENOENT;
}

/*
 * Runs in the forked child, which may be a copy of a multi-threaded process: only
 * async-signal-safe calls until execve. Never returns.
 */
static void exec_child(const char *exec_path, const char *config_path, const char *const *envp,
                       int sock, int err_pipe, int max_fd)
{
    const char *const exec_argv[] = {"vigil-agent-exec", config_path, NULL};
    int e;
    int err_fd = err_pipe; /* where a failure is reported */

    /* Move both descriptors above the fixed slots first so neither clobbers the other. */
    int sock_hi = fcntl(sock, F_DUPFD_CLOEXEC, EXEC_ERR_FD + 1);
    int err_hi = fcntl(err_pipe, F_DUPFD_CLOEXEC, EXEC_ERR_FD + 1);
    if (sock_hi < 0 || err_hi < 0)
        goto fail;
    /* dup2 clears close-on-exec: fd 3 is the one descriptor the executor inherits. */
    if (dup3(err_hi, EXEC_ERR_FD, O_CLOEXEC) < 0)
        goto fail;
    err_fd = EXEC_ERR_FD;
    if (dup2(sock_hi, PRIVSEP_EXEC_FD) < 0)
        goto fail;
    childproc_close_from(EXEC_ERR_FD + 1, max_fd); /* the limit was read before fork */
    /* Ignored signals and the mask survive execve: give the executor a clean slate. */
    childproc_reset_signals();

    execve(exec_path, (char *const *)exec_argv, (char *const *)envp);
fail:
    e = errno;
    if (write(err_fd, &e, sizeof(e)) < 0) {
        /* nothing more to say: the parent sees EOF and the exit status */
    }
    _exit(127);
}

/* Waits up to grace_ms for the executor to exit, then kills it. Sets self->pid = -1 if reaped. */
static void reap(privsep_t *self, int grace_ms)
{
    int64_t deadline = now_ms() + grace_ms;
    int status;

    while (self->pid > 0) {
        pid_t r = waitpid(self->pid, &status, WNOHANG);
        if (r == self->pid || (r < 0 && errno == ECHILD)) {
            /* ECHILD: someone else (a SIGCHLD handler) already reaped it. */
            self->pid = -1;
            return;
        }
        if (r < 0 && errno != EINTR)
            break;
        if (now_ms() >= deadline)
            break;
        struct timespec pause = {0, STOP_POLL_MS * 1000000L};
        nanosleep(&pause, NULL);
    }
    if (self->pid <= 0)
        return;

    if (kill(self->pid, SIGKILL) < 0) {
        /* After the drop we may no longer signal a root executor (EPERM): leave it. */
        vg_log(VG_LOG_WARN, "privsep: cannot kill executor pid=%d: %s", (int)self->pid,
               strerror(errno));
        return;
    }
    vg_log(VG_LOG_WARN, "privsep: executor pid=%d did not exit within %d ms, killed",
           (int)self->pid, grace_ms);
    while (waitpid(self->pid, &status, 0) < 0 && errno == EINTR) {
    }
    self->pid = -1;
}

static void close_channel(privsep_t *self)
{
    if (self->fd >= 0) {
        close(self->fd);
        self->fd = -1;
    }
}

/*
 * The groups user belongs to (its primary gid included), as login would set them: 0 with a
 * malloc'd list, or a negative errno with err set.
 */
static int lookup_groups(const char *user, gid_t gid, gid_t **ret_groups, size_t *ret_count,
                         char *err, size_t errlen)
{
    long max = sysconf(_SC_NGROUPS_MAX);
    int n = GROUPS_GUESS;
    for (int attempt = 0; attempt < 4; attempt++) {
        gid_t *groups = calloc((size_t)n, sizeof(*groups));
        if (!groups)
            return fail(err, errlen, -ENOMEM, "out of memory");
        int count = n;
        if (getgrouplist(user, gid, groups, &count) >= 0) {
            if (max > 0 && count > max) {
                free(groups);
                return fail(err, errlen, -E2BIG,
                            "user \"%s\" is in %d groups, more than the system allows (%ld)", user,
                            count, max);
            }
            *ret_groups = groups;
            *ret_count = (size_t)count;
            return 0;
        }
        free(groups);
        /* Too small: count now says how many there are (it may grow between calls). */
        if (count <= n || count > 65536)
            break;
        n = count;
    }
    return fail(err, errlen, -EIO, "cannot list the groups of user \"%s\"", user);
}

static int drop_privileges(const char *user, uid_t uid, gid_t gid, const gid_t *groups,
                           size_t ngroups, char *err, size_t errlen)
{
    /* Root's supplementary groups go; the user's own (e.g. adm for auth.log) stay. */
    if (setgroups(ngroups, groups) < 0)
        return fail(err, errlen, -errno, "cannot set the supplementary groups of user \"%s\": %s",
                    user, strerror(errno));
    if (setresgid(gid, gid, gid) < 0)
        return fail(err, errlen, -errno, "cannot switch to group %lu of user \"%s\": %s",
                    (unsigned long)gid, user, strerror(errno));
    if (setresuid(uid, uid, uid) < 0)
        return fail(err, errlen, -errno, "cannot switch to user \"%s\" (uid %lu): %s", user,
                    (unsigned long)uid, strerror(errno));

    /* The drop must be irreversible. If it is not, nothing that follows can be trusted. */
    if (uid != 0 && setuid(0) != -1) {
        vg_log(VG_LOG_ERROR, "privsep: setuid(0) succeeded after dropping to user=%s: aborting",
               user);
        abort();
    }
    if (gid != 0 && setgid(0) != -1) {
        vg_log(VG_LOG_ERROR, "privsep: setgid(0) succeeded after dropping to user=%s: aborting",
               user);
        abort();
    }
    vg_log(VG_LOG_INFO, "privsep: dropped privileges user=%s uid=%lu gid=%lu groups=%zu", user,
           (unsigned long)uid, (unsigned long)gid, ngroups);
    return 0;
}

/*
 * Decides, before anything is started, whether and to whom to drop. 0 with *ret_drop set (and,
 * when true, the ids and the user's malloc'd group list), or a negative errno with err set.
 */
static int plan_drop(const char *user, bool allow_root, bool *ret_drop, uid_t *ret_uid,
                     gid_t *ret_gid, gid_t **ret_groups, size_t *ret_ngroups, char *err,
                     size_t errlen)
{
    bool have_user = user && user[0] != '\0';
    uid_t uid = 0;
    gid_t gid = 0;

    if (have_user) {
        int r = lookup_user(user, &uid, &gid);
        if (r == -ENOENT)
            return fail(err, errlen, r, "unknown user \"%s\" (agent \"user:\" setting)", user);
        if (r < 0)
            return fail(err, errlen, r, "cannot look up user \"%s\": %s", user, strerror(-r));
    }

    if (geteuid() == 0) {
        if (!have_user) {
            if (!allow_root)
                return fail(err, errlen, -EPERM,
                            "refusing to run the network-facing agent as root: set \"user:\" in "
                            "the agent configuration to an unprivileged account (e.g. "
                            "\"user: vigil\")");
            vg_log(VG_LOG_WARN, "privsep: no user configured, the agent keeps running as root");
            *ret_drop = false;
            return 0;
        }
        int r = lookup_groups(user, gid, ret_groups, ret_ngroups, err, errlen);
        if (r < 0)
            return r;
        *ret_drop = true;
        *ret_uid = uid;
        *ret_gid = gid;
        return 0;
    }

    if (have_user && uid != geteuid())
        return fail(err, errlen, -EPERM, "cannot switch to user \"%s\": not running as root", user);
    *ret_drop = false;
    return 0;
}

privsep_t *privsep_start(const char *exec_path, const char *user, bool allow_root, char *err,
                         size_t errlen)
{
    return privsep_start_config(exec_path, NULL, user, allow_root, err, errlen);
}

privsep_t *privsep_start_config(const char *exec_path, const char *config_path, const char *user,
                                bool allow_root, char *err, size_t errlen)
{
    int r;
    privsep_t *self = NULL;
    bool drop = false;
    uid_t uid = 0;
    gid_t gid = 0;
    gid_t *groups = NULL;
    size_t ngroups = 0;
    int pair[2] = {-1, -1};
    int err_pipe[2] = {-1, -1};

    if (!exec_path || exec_path[0] == '\0') {
        r = fail(err, errlen, -EINVAL, "no executor path given");
        goto err_out;
    }
    if (config_path && config_path[0] != '/') {
        r = fail(err, errlen, -EINVAL, "the executor's configuration path must be absolute");
        goto err_out;
    }
    r = plan_drop(user, allow_root, &drop, &uid, &gid, &groups, &ngroups, err, errlen);
    if (r < 0)
        goto err_out;

    self = calloc(1, sizeof(*self));
    if (!self) {
        r = fail(err, errlen, -ENOMEM, "out of memory");
        goto err_out;
    }
    self->fd = -1;
    self->pid = -1;
    self->buf = malloc(RECV_BUF_SIZE);
    if (!self->buf) {
        r = fail(err, errlen, -ENOMEM, "out of memory");
        goto err_free;
    }

    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
        r = fail(err, errlen, -errno, "socketpair: %s", strerror(errno));
        goto err_free;
    }
    if (pipe2(err_pipe, O_CLOEXEC) < 0) {
        r = fail(err, errlen, -errno, "pipe2: %s", strerror(errno));
        goto err_close_pair;
    }
    /* Built before fork: the child may only make async-signal-safe calls. A NODE_NAME the
     * configuration would refuse (agent_config.c) never gets this far. */
    char node_env[sizeof(NODE_NAME_ENV) + 128];
    const char *envp[] = {EXEC_PATH_ENV, NULL, NULL};
    const char *node = getenv("NODE_NAME");
    if (node && node[0] && strlen(node) <= 128) {
        snprintf(node_env, sizeof(node_env), NODE_NAME_ENV "%s", node);
        envp[1] = node_env;
    }
    struct rlimit nofile;
    int max_fd = 65536;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY &&
        nofile.rlim_cur < (rlim_t)1 << 30)
        max_fd = (int)nofile.rlim_cur;

    self->pid = fork();
    if (self->pid < 0) {
        r = fail(err, errlen, -errno, "fork: %s", strerror(errno));
        goto err_close_pipe;
    }
    if (self->pid == 0)
        exec_child(exec_path, config_path, envp, pair[1], err_pipe[1], max_fd);

    close(pair[1]);
    pair[1] = -1;
    close(err_pipe[1]);
    err_pipe[1] = -1;
    self->fd = pair[0];
    pair[0] = -1;

    /* EOF: execve succeeded and closed the pipe. An int: the child's errno. */
    int exec_errno = 0;
    ssize_t n;
    do {
        n = read(err_pipe[0], &exec_errno, sizeof(exec_errno));
    } while (n < 0 && errno == EINTR);
    close(err_pipe[0]);
    err_pipe[0] = -1;
    if (n != 0) {
        if (n != (ssize_t)sizeof(exec_errno) || exec_errno <= 0)
            exec_errno = EIO;
        r = fail(err, errlen, -exec_errno, "cannot execute executor %s: %s", exec_path,
                 strerror(exec_errno));
        goto err_stop;
    }
    vg_log(VG_LOG_DEBUG, "privsep: started executor path=%s pid=%d", exec_path, (int)self->pid);

    if (drop) {
        r = drop_privileges(user, uid, gid, groups, ngroups, err, errlen);
        if (r < 0)
            goto err_stop;
    }
    free(groups);
    groups = NULL;

    r = privsep_ping(self, START_PING_TIMEOUT_MS);
    if (r < 0) {
        r = fail(err, errlen, r, "executor %s (pid %d) did not answer: %s", exec_path,
                 (int)self->pid, strerror(-r));
        goto err_stop;
    }
    return self;

err_stop:
    privsep_stop(&self);
    goto err_out;
err_close_pipe:
    close(err_pipe[0]);
    close(err_pipe[1]);
err_close_pair:
    close(pair[0]);
    close(pair[1]);
err_free:
    free(self->buf);
    free(self);
err_out:
    free(groups);
    errno = -r;
    return NULL;
}

static uint64_t new_nonce(privsep_t *self)
{
    uint64_t nonce;
    if (getrandom(&nonce, sizeof(nonce), GRND_NONBLOCK) != (ssize_t)sizeof(nonce))
        nonce = ++self->counter ^ (uint64_t)now_ms() << 20;
    return nonce;
}

/* recv returned 0: the executor closed its end, or sent an empty message (SEQPACKET allows it). */
static bool peer_closed(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN | POLLRDHUP};
    return poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLRDHUP));
}

/*
 * Checks one message of n bytes in self->buf and acts on it: a REPORT goes to the handler
 * (1), a PONG is copied to *ret_pong when one is awaited (2). -EPROTO for anything else.
 */
static int take_message(privsep_t *self, ssize_t n, struct privsep_msg *ret_pong)
{
    struct privsep_hdr hdr;

    if ((size_t)n < sizeof(hdr)) {
        vg_log(VG_LOG_ERROR, "privsep: executor sent %zd bytes (at least %zu expected)", n,
               sizeof(hdr));
        return -EPROTO;
    }
    memcpy(&hdr, self->buf, sizeof(hdr));
    if (hdr.magic != PRIVSEP_MAGIC) {
        vg_log(VG_LOG_ERROR, "privsep: executor sent bad magic %#x", (unsigned)hdr.magic);
        return -EPROTO;
    }
    if (hdr.type == PRIVSEP_PONG && ret_pong) {
        if ((size_t)n != sizeof(struct privsep_msg)) {
            vg_log(VG_LOG_ERROR, "privsep: executor sent a PONG of %zd bytes (expected %zu)", n,
                   sizeof(struct privsep_msg));
            return -EPROTO;
        }
        memcpy(ret_pong, self->buf, sizeof(*ret_pong));
        return 2;
    }
    if (hdr.type == PRIVSEP_REPORT || hdr.type == PRIVSEP_OUTPUT) {
        bool report = hdr.type == PRIVSEP_REPORT;
        if (hdr.reserved != 0 || hdr.len == 0 || hdr.len > PRIVSEP_PAYLOAD_MAX ||
            (size_t)n != sizeof(hdr) + hdr.len) {
            vg_log(VG_LOG_ERROR,
                   "privsep: executor sent a%s of %zd bytes claiming %u (reserved %u)",
                   report ? " REPORT" : "n OUTPUT", n, (unsigned)hdr.len, (unsigned)hdr.reserved);
            return -EPROTO;
        }
        privsep_report_fn *fn = report ? self->on_report : self->on_output;
        if (fn)
            fn(report ? self->report_userdata : self->output_userdata, self->buf + sizeof(hdr),
               hdr.len);
        return 1;
    }
    vg_log(VG_LOG_ERROR, "privsep: unexpected message type %u from executor%s", (unsigned)hdr.type,
           hdr.type == PRIVSEP_PONG ? " (a PONG nobody waited for)" : "");
    return -EPROTO;
}

/* Receives one message if one is there within timeout_ms (0: only what is queued). Returns
 * what take_message returns, 0 when nothing came, -EPIPE, or -EPROTO. */
static int recv_one(privsep_t *self, struct privsep_msg *ret_pong, int timeout_ms)
{
    int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    struct pollfd pfd = {.fd = self->fd, .events = POLLIN};

    for (;;) {
        int64_t left = deadline - now_ms();
        int r = poll(&pfd, 1, left > 0 ? (int)left : 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return 0;

        ssize_t n = recv(self->fd, self->buf, RECV_BUF_SIZE, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n == 0 && !peer_closed(self->fd)) {
            vg_log(VG_LOG_ERROR, "privsep: executor sent an empty message");
            return -EPROTO;
        }
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return -EPIPE;
        if (n < 0)
            return -errno;
        return take_message(self, n, ret_pong);
    }
}

/* Receives until the PONG, within timeout_ms; REPORTs on the way go to the handler. 0,
 * -ETIMEDOUT, -EPIPE, -EPROTO. */
static int recv_reply(privsep_t *self, struct privsep_msg *ret_msg, int timeout_ms)
{
    int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);

    for (;;) {
        int64_t left = deadline - now_ms();
        int r = recv_one(self, ret_msg, left > 0 ? (int)left : 0);
        if (r < 0)
            return r;
        if (r == 2)
            return 0;
        if (r == 0 && now_ms() >= deadline)
            return -ETIMEDOUT;
    }
}

/* Sends one whole message, waiting up to timeout_ms for room. 0, -ETIMEDOUT, -EPIPE, errno. */
static int send_all(privsep_t *self, const struct iovec *iov, size_t iovcnt, size_t total,
                    int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    struct msghdr mh = {.msg_iov = (struct iovec *)iov, .msg_iovlen = iovcnt};

    for (;;) {
        ssize_t n = sendmsg(self->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            int64_t left = deadline - now_ms();
            if (left <= 0)
                return -ETIMEDOUT;
            struct pollfd pfd = {.fd = self->fd, .events = POLLOUT};
            if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
                return -errno;
            continue;
        }
        if (n < 0)
            return errno == ECONNRESET || errno == EPIPE ? -EPIPE : -errno;
        return (size_t)n == total ? 0 : -EPIPE;
    }
}

int privsep_ping(privsep_t *self, int timeout_ms)
{
    if (!self || self->fd < 0)
        return -EPIPE;

    struct privsep_msg ping = {.magic = PRIVSEP_MAGIC, .type = PRIVSEP_PING};
    ping.nonce = new_nonce(self);

    ssize_t n;
    do {
        n = send(self->fd, &ping, sizeof(ping), MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    int r = 0;
    if (n < 0)
        r = errno == EAGAIN ? -ETIMEDOUT : errno == ECONNRESET ? -EPIPE : -errno;
    else if ((size_t)n != sizeof(ping))
        r = -EPIPE;
    if (r < 0)
        goto err_close;

    struct privsep_msg pong = {0};
    r = recv_reply(self, &pong, timeout_ms);
    if (r < 0)
        goto err_close;
    if (pong.magic != PRIVSEP_MAGIC || pong.type != PRIVSEP_PONG || pong.nonce != ping.nonce) {
        vg_log(VG_LOG_ERROR,
               "privsep: unexpected reply from executor magic=%#x type=%u nonce_ok=%d",
               (unsigned)pong.magic, (unsigned)pong.type, pong.nonce == ping.nonce);
        r = -EPROTO;
        goto err_close;
    }
    return 0;

err_close:
    vg_log(VG_LOG_DEBUG, "privsep: closing executor channel: %s", strerror(-r));
    close_channel(self);
    return r;
}

void privsep_set_report_handler(privsep_t *self, privsep_report_fn *fn, void *userdata)
{
    if (!self)
        return;
    self->on_report = fn;
    self->report_userdata = userdata;
}

void privsep_set_output_handler(privsep_t *self, privsep_report_fn *fn, void *userdata)
{
    if (!self)
        return;
    self->on_output = fn;
    self->output_userdata = userdata;
}

int privsep_send_command(privsep_t *self, const void *capsule, size_t len)
{
    if (!self || self->fd < 0)
        return -EPIPE;
    if (len == 0 || len > PRIVSEP_PAYLOAD_MAX)
        return -EMSGSIZE;
    struct privsep_hdr hdr = {
        .magic = PRIVSEP_MAGIC, .type = PRIVSEP_COMMAND, .len = (uint32_t)len};
    struct iovec iov[2] = {{&hdr, sizeof(hdr)}, {(void *)capsule, len}};
    int r = send_all(self, iov, 2, sizeof(hdr) + len, SEND_TIMEOUT_MS);
    if (r < 0) {
        vg_log(VG_LOG_DEBUG, "privsep: closing executor channel: %s", strerror(-r));
        close_channel(self);
    }
    return r;
}

int privsep_fd(const privsep_t *self)
{
    return self ? self->fd : -1;
}

int privsep_handle(privsep_t *self)
{
    if (!self || self->fd < 0)
        return -EPIPE;
    /* A bounded number per call: the loop's other work is not starved by a chatty executor. */
    for (int i = 0; i < 64; i++) {
        int r = recv_one(self, NULL, 0);
        if (r == 0)
            return 0;
        if (r < 0) {
            vg_log(VG_LOG_DEBUG, "privsep: closing executor channel: %s", strerror(-r));
            close_channel(self);
            return r;
        }
    }
    return 0;
}

pid_t privsep_executor_pid(const privsep_t *self)
{
    return self ? self->pid : -1;
}

void privsep_stop(privsep_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    privsep_t *self = *self_p;
    close_channel(self);
    reap(self, STOP_GRACE_MS);
    free(self->buf);
    free(self);
    *self_p = NULL;
}
