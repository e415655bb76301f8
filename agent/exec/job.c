/* One running program of an action: the contract is in job.h. */
#include "job.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "childproc.h"
#include "timeutil.h"

#define READ_CHUNK 65536
#define READ_CHUNKS_PER_CALL 16
#define FINISH_DRAIN_CALLS 16 /* 16 MiB at most after the exit */
#define NO_PIDFD_POLL_MS 50   /* without a pidfd, how often an exit is looked for */
#define EXIT_SETUP 126
#define EXIT_EXEC 127

struct job {
    pid_t pid; /* -1 once reaped */
    int pidfd; /* -1: none (old kernel): polled */
    int out_fd;
    int64_t started_mono;
    int64_t timeout_at;
    int64_t kill_at; /* 0 until SIGTERM was sent */
    int64_t output_max;
    bool timed_out;
    bool done;
    struct job_result result;
    struct vg_sha256 hash;
    unsigned char *kept; /* the output up to output_max, for the vault */
    size_t kept_len, kept_cap;
};

static const char *const job_env[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C", NULL};

/* In the child: one line to the output pipe (stdout by now, or fd), then exit. */
static void child_fail(int fd, int status, const char *what, int e) __attribute__((noreturn));

static void child_fail(int fd, int status, const char *what, int e)
{
    char line[512];
    int n = snprintf(line, sizeof(line), "vigil-agent-exec: %s: %s\n", what, strerror(e));
    if (n > 0 && write(fd, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1) < 0) {
        /* nobody to tell: the exit status says it */
    }
    _exit(status);
}

static void child(const struct job_spec *spec, int in_r, int out_w, int max_fd)
{
    /* Its own session and process group: the timeout signals the whole group. */
    if (setsid() < 0)
        child_fail(out_w, EXIT_SETUP, "setsid", errno);
    int in = in_r >= 0 ? in_r : open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (in < 0)
        child_fail(out_w, EXIT_SETUP, "/dev/null", errno);
    if (dup2(in, STDIN_FILENO) < 0 || dup2(out_w, STDOUT_FILENO) < 0 ||
        dup2(out_w, STDERR_FILENO) < 0)
        child_fail(out_w, EXIT_SETUP, "dup2", errno);
    childproc_close_from(3, max_fd);
    childproc_reset_signals();

    rlim_t cpu_s = (rlim_t)((spec->timeout_ms + 999) / 1000);
    struct rlimit nofile = {JOB_NOFILE, JOB_NOFILE};
    struct rlimit core = {0, 0};
    struct rlimit cpu = {cpu_s, cpu_s + 1};
    if (setrlimit(RLIMIT_NOFILE, &nofile) < 0 || setrlimit(RLIMIT_CORE, &core) < 0 ||
        setrlimit(RLIMIT_CPU, &cpu) < 0)
        child_fail(STDOUT_FILENO, EXIT_SETUP, "setrlimit", errno);

    if (spec->drop) {
        if (setgroups(spec->ngroups, spec->groups) < 0)
            child_fail(STDOUT_FILENO, EXIT_SETUP, "setgroups", errno);
        if (setresgid(spec->gid, spec->gid, spec->gid) < 0)
            child_fail(STDOUT_FILENO, EXIT_SETUP, "setresgid", errno);
        if (setresuid(spec->uid, spec->uid, spec->uid) < 0)
            child_fail(STDOUT_FILENO, EXIT_SETUP, "setresuid", errno);
        /* The drop must hold: a child that could become root again does not run. */
        if (spec->uid != 0 && (setuid(0) != -1 || geteuid() != spec->uid))
            child_fail(STDOUT_FILENO, EXIT_SETUP, "dropping root did not hold", EPERM);
        if (spec->gid != 0 && (setgid(0) != -1 || getegid() != spec->gid))
            child_fail(STDOUT_FILENO, EXIT_SETUP, "dropping root's group did not hold", EPERM);
    }
    execve(spec->argv[0], spec->argv, (char *const *)job_env);
    child_fail(STDOUT_FILENO, EXIT_EXEC, spec->argv[0], errno);
}

/* A pipe already holding data, its write end closed: the child reads the data, then EOF. */
static int stdin_pipe(const struct job_spec *spec, char *err, size_t errlen)
{
    int fds[2];
    if (spec->stdin_len > JOB_STDIN_MAX) {
        snprintf(err, errlen, "stdin data of %zu bytes, more than %d", spec->stdin_len,
                 JOB_STDIN_MAX);
        return -1;
    }
    if (pipe2(fds, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return -1;
    }
    (void)fcntl(fds[1], F_SETPIPE_SZ, JOB_STDIN_MAX); /* the default is already 64 KiB */
    size_t done = 0;
    while (done < spec->stdin_len) {
        ssize_t n = write(fds[1], spec->stdin_data + done, spec->stdin_len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(err, errlen, "writing stdin: %s", n < 0 ? strerror(errno) : "short write");
            close(fds[0]);
            close(fds[1]);
            return -1;
        }
        done += (size_t)n;
    }
    close(fds[1]);
    return fds[0];
}

job_t *job_start(const struct job_spec *spec, char *err, size_t errlen)
{
    int pipefd[2];
    int in_r = -1;
    job_t *self = calloc(1, sizeof(*self));
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->pid = -1;
    self->pidfd = -1;
    self->out_fd = -1;
    if (spec->stdin_data && (in_r = stdin_pipe(spec, err, errlen)) < 0) {
        free(self);
        return NULL;
    }
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        if (in_r >= 0)
            close(in_r);
        free(self);
        return NULL;
    }
    vg_sha256_init(&self->hash);
    self->output_max = spec->output_max_bytes;
    self->started_mono = vg_mono_ms();
    self->timeout_at = self->started_mono + spec->timeout_ms;

    struct rlimit nofile;
    int max_fd = 65536;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY &&
        nofile.rlim_cur < (rlim_t)1 << 30)
        max_fd = (int)nofile.rlim_cur;
    self->pid = fork();
    if (self->pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        close(pipefd[0]);
        close(pipefd[1]);
        if (in_r >= 0)
            close(in_r);
        free(self);
        return NULL;
    }
    if (self->pid == 0) {
        close(pipefd[0]);
        /* dup2 onto 1 and 2 clears close-on-exec there; the original closes at execve. */
        child(spec, in_r, pipefd[1], max_fd);
    }
    close(pipefd[1]);
    if (in_r >= 0)
        close(in_r);
    self->out_fd = pipefd[0];
    fcntl(self->out_fd, F_SETFL, O_NONBLOCK);
    self->pidfd = (int)syscall(SYS_pidfd_open, self->pid, 0);
    return self;
}

void job_fds(const job_t *self, int fds[2])
{
    fds[0] = self->done ? -1 : self->out_fd;
    fds[1] = self->done ? -1 : self->pidfd;
}

int64_t job_deadline(const job_t *self)
{
    if (self->done)
        return INT64_MAX;
    int64_t at = self->kill_at ? self->kill_at : self->timeout_at;
    if (self->pidfd < 0) {
        int64_t poll_at = vg_mono_ms() + NO_PIDFD_POLL_MS;
        if (poll_at < at)
            at = poll_at;
    }
    return at;
}

/* Keeps what fits under output_max; past it only the hash and the count go on. */
static void keep(job_t *self, const unsigned char *buf, size_t n)
{
    size_t room = (size_t)self->output_max > self->kept_len
                      ? (size_t)self->output_max - self->kept_len
                      : 0;
    if (n > room)
        n = room;
    if (n == 0)
        return;
    if (self->kept_len + n > self->kept_cap) {
        size_t want = self->kept_cap ? self->kept_cap : 4096;
        while (want < self->kept_len + n)
            want *= 2;
        if (want > (size_t)self->output_max)
            want = (size_t)self->output_max;
        unsigned char *more = realloc(self->kept, want);
        if (!more)
            return; /* the hash still covers it; the kept copy stops here */
        self->kept = more;
        self->kept_cap = want;
    }
    memcpy(self->kept + self->kept_len, buf, n);
    self->kept_len += n;
}

/* Reads what the pipe holds, at most READ_CHUNKS_PER_CALL chunks: a program that writes as fast
 * as it is read must not keep the loop from answering PING. True when it stopped at that limit
 * (more may be waiting), false at EAGAIN or EOF. */
static bool read_output(job_t *self)
{
    unsigned char buf[READ_CHUNK];
    for (int chunks = 0; self->out_fd >= 0; chunks++) {
        if (chunks == READ_CHUNKS_PER_CALL)
            return true;
        ssize_t n = read(self->out_fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return false;
        if (n <= 0) {
            close(self->out_fd); /* EOF (or an error): nothing more will come */
            self->out_fd = -1;
            return false;
        }
        vg_sha256_update(&self->hash, buf, (size_t)n);
        self->result.output_bytes += (uint64_t)n;
        keep(self, buf, (size_t)n);
    }
    return false;
}

static void finish(job_t *self, int status, int64_t now)
{
    self->pid = -1;
    self->done = true;
    /* What the process wrote before it exited, up to EAGAIN or EOF; bounded, since a descendant
     * that holds the pipe could write forever. */
    for (int i = 0; i < FINISH_DRAIN_CALLS && read_output(self); i++) {
    }
    if (self->out_fd >= 0) {
        close(self->out_fd); /* a descendant may hold the pipe open: not waited for */
        self->out_fd = -1;
    }
    if (self->pidfd >= 0) {
        close(self->pidfd);
        self->pidfd = -1;
    }
    self->result.exit_status = WIFEXITED(status)     ? WEXITSTATUS(status)
                               : WIFSIGNALED(status) ? -WTERMSIG(status)
                                                     : -1;
    self->result.timed_out = self->timed_out;
    self->result.duration_ms = (uint64_t)(now - self->started_mono);
    self->result.output_truncated = self->result.output_bytes > (uint64_t)self->output_max;
    vg_sha256_final(&self->hash, self->result.output_sha256);
}

bool job_handle(job_t *self, int64_t now)
{
    if (self->done)
        return true;
    read_output(self);

    int status;
    pid_t pid = self->pid;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) {
        if (self->timed_out)
            kill(-pid, SIGKILL); /* what is left of the group after the timeout */
        finish(self, status, now);
        return true;
    }
    if (now >= self->timeout_at && !self->timed_out) {
        self->timed_out = true;
        self->kill_at = now + JOB_KILL_GRACE_MS;
        kill(-pid, SIGTERM);
        kill(pid, SIGTERM); /* in case it has not reached setsid yet */
    } else if (self->kill_at && now >= self->kill_at) {
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        self->kill_at = INT64_MAX - 1; /* sent; the exit follows */
    }
    return false;
}

void job_result(const job_t *self, struct job_result *ret)
{
    *ret = self->result;
}

const unsigned char *job_output(const job_t *self, size_t *ret_len)
{
    *ret_len = self->kept_len;
    return self->kept;
}

void job_destroy(job_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    job_t *self = *self_p;
    if (self->pid > 0) {
        kill(-self->pid, SIGKILL);
        kill(self->pid, SIGKILL);
        while (waitpid(self->pid, NULL, 0) < 0 && errno == EINTR) {
        }
    }
    if (self->out_fd >= 0)
        close(self->out_fd);
    if (self->pidfd >= 0)
        close(self->pidfd);
    free(self->kept);
    free(self);
    *self_p = NULL;
}
