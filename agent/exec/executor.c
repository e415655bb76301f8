/*
 * vigil-agent-exec: the privileged executor. Started only by vigil-agent (agent/privsep.c),
 * before the agent drops its privileges, with its end of a SOCK_SEQPACKET socketpair as fd 3 and
 * the agent's configuration file as its one argument (none: every command is refused).
 *
 *   vigil-agent-exec [AGENT-YAML]
 *
 * At start, as root and before anything network-facing exists, it reads agent.yaml itself — the
 * action catalog, the signer file, the node name, the user to run actions as, the coordinator's
 * address — and opens the replay cache in its own directory (executor_state_dir/replay).
 * Nothing it uses comes from the network side, which only passes capsules on (privsep.h).
 *
 * Then it serves the channel: PING is answered with PONG at once, also while commands run; a
 * COMMAND is checked (command.h) and answered with REPORTs: REFUSED with the reason and nothing
 * run, or ACCEPTED, STARTED and DONE (exit status, duration, SHA-256 of the whole output,
 * truncation flag). Programs run as jobs (job.h), at most EXEC_JOBS_MAX at a time; a dry run
 * is checked like any command and reports what it would run.
 *
 * It links libc, libsodium, protobuf-c and libfyaml, never libzmq or libcurl: it must stay small
 * enough to audit. Every message is size-checked; anything unexpected ends the process (exit 3),
 * since a confused agent is treated as a compromised one.
 *
 * Exit status: 0 the agent closed the channel, 1 an I/O error, 2 not started by vigil-agent,
 * 3 protocol violation, 4 configuration error.
 */
#include "privsep.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent_config.h"
#include "command.h"
#include "job.h"
#include "service.h"
#include "log.h"
#include "procwatch.h"
#include "timeutil.h"
#include "vigil.pb-c.h"
#include "wire.h"

#define PROG "vigil-agent-exec"
#define EXEC_JOBS_MAX 16
#define COORDINATOR_ADDRS_MAX 16
#define COORDINATOR_RESOLVE_START_MS 1000 /* the agent's start-up PING waits 2 s */
#define COORDINATOR_RESOLVE_COMMAND_MS 200
#define PW_BUF_SIZE 16384
/* One message from the agent; +1: a longer one shows. */
#define RECV_SIZE (sizeof(struct privsep_hdr) + PRIVSEP_PAYLOAD_MAX + 1)

enum exit_status {
    EXIT_CLOSED = 0,
    EXIT_IO = 1,
    EXIT_NOT_STARTED_BY_AGENT = 2,
    EXIT_PROTOCOL = 3,
    EXIT_CONFIG = 4,
};

/* One command being run: its precheck first when it has one, then the action. */
struct running {
    struct command_plan plan;
    job_t *job;
    bool in_precheck;
};

struct executor {
    struct agent_config cfg;
    bool have_cfg;
    vg_signer_set_t *signers;
    replay_t *replay;
    procwatch_t *procs;
    const char **watched;
    char coordinator_host[256];
    bool coordinator_resolved;
    struct action_net coordinator[COORDINATOR_ADDRS_MAX];
    size_t ncoordinator;
    bool drop; /* non-root actions run as the user below */
    bool unprivileged_ok;
    char *service_program; /* vigil-agent-action, when it is there */
    uid_t uid;
    gid_t gid;
    gid_t *groups;
    size_t ngroups;
    struct running jobs[EXEC_JOBS_MAX];
    unsigned char buf[RECV_SIZE];
};

static struct executor ex;

static void die(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

/* One line on stderr, one write (the agent's stderr is shared with ours). */
static void die(int status, const char *fmt, ...)
{
    static const char prefix[] = PROG ": ";
    char line[1024];
    int used = (int)sizeof(prefix) - 1;
    memcpy(line, prefix, sizeof(prefix) - 1);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line + used, sizeof(line) - (size_t)used, fmt, ap);
    va_end(ap);
    if (n > 0)
        used += n < (int)sizeof(line) - used ? n : (int)sizeof(line) - used - 1;
    if (used > (int)sizeof(line) - 2)
        used = (int)sizeof(line) - 2;
    line[used++] = '\n';
    if (write(STDERR_FILENO, line, (size_t)used) < 0) {
        /* stderr is gone: the exit status still tells */
    }
    _exit(status);
}

/* fd 3 must be a unix SOCK_SEQPACKET socket whose other end belongs to our parent. */
static void check_channel(void)
{
    int type = 0;
    int domain = 0;
    socklen_t len = sizeof(type);
    if (getsockopt(PRIVSEP_EXEC_FD, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_SEQPACKET)
        die(EXIT_NOT_STARTED_BY_AGENT, "must be started by vigil-agent (fd %d is not its socket)",
            PRIVSEP_EXEC_FD);
    len = sizeof(domain);
    if (getsockopt(PRIVSEP_EXEC_FD, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 || domain != AF_UNIX)
        die(EXIT_NOT_STARTED_BY_AGENT, "must be started by vigil-agent (fd %d is not its socket)",
            PRIVSEP_EXEC_FD);

    /* Die with the agent. */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
        die(EXIT_IO, "prctl(PR_SET_PDEATHSIG): %s", strerror(errno));

    /*
     * The agent may have died before the prctl: then we were re-parented. Compare with the
     * process that created the socketpair rather than with 1, which is also the agent's pid
     * when it is a container's entrypoint.
     */
    struct ucred peer;
    len = sizeof(peer);
    if (getsockopt(PRIVSEP_EXEC_FD, SOL_SOCKET, SO_PEERCRED, &peer, &len) < 0)
        die(EXIT_IO, "getsockopt(SO_PEERCRED): %s", strerror(errno));
    if (getppid() != peer.pid)
        die(EXIT_CLOSED, "vigil-agent (pid %d) exited before the executor started", (int)peer.pid);
}

/* recv returned 0: the agent closed its end, or sent an empty message (SEQPACKET allows it). */
static bool peer_closed(void)
{
    struct pollfd pfd = {.fd = PRIVSEP_EXEC_FD, .events = POLLIN | POLLRDHUP};
    return poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLRDHUP));
}

/* Sends one message; the agent gone ends us quietly. */
static void send_or_exit(const struct iovec *iov, size_t iovcnt, size_t total)
{
    struct msghdr mh = {.msg_iov = (struct iovec *)iov, .msg_iovlen = iovcnt};
    ssize_t sent;
    do {
        sent = sendmsg(PRIVSEP_EXEC_FD, &mh, MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    if (sent < 0 && (errno == EPIPE || errno == ECONNRESET))
        _exit(EXIT_CLOSED);
    if (sent != (ssize_t)total)
        die(EXIT_IO, "send: %s", sent < 0 ? strerror(errno) : "short write");
}

/* ---- configuration ---- */

/* Takes the addresses of a finished lookup. */
static void take_addresses(struct addrinfo *res)
{
    for (struct addrinfo *ai = res; ai && ex.ncoordinator < COORDINATOR_ADDRS_MAX;
         ai = ai->ai_next) {
        char text[INET6_ADDRSTRLEN];
        if (getnameinfo(ai->ai_addr, ai->ai_addrlen, text, sizeof(text), NULL, 0, NI_NUMERICHOST) ==
                0 &&
            actions_net_parse(text, false, &ex.coordinator[ex.ncoordinator]) == 0)
            ex.ncoordinator++;
    }
}

/*
 * Resolves the coordinator's host name without blocking the loop for long: a slow DNS must not
 * make the executor miss the agent's PING. The lookup runs in the background (getaddrinfo_a);
 * this waits up to wait_ms for it and otherwise leaves it running, to be collected by a later
 * call (before each command, until it has an answer). Until then the coordinator's addresses are
 * not denied to ip/cidr arguments and isolate is refused.
 */
static void resolve_coordinator(int wait_ms)
{
    static struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
    static struct gaicb request;
    static struct gaicb *requests[1] = {&request};
    static bool pending;

    if (!ex.coordinator_host[0] || ex.coordinator_resolved)
        return;
    if (!pending) {
        request = (struct gaicb){.ar_name = ex.coordinator_host, .ar_request = &hints};
        if (getaddrinfo_a(GAI_NOWAIT, requests, 1, NULL) != 0)
            return;
        pending = true;
    }
    struct timespec wait = {wait_ms / 1000, (long)(wait_ms % 1000) * 1000000L};
    gai_suspend((const struct gaicb *const *)requests, 1, &wait);
    int r = gai_error(&request);
    if (r == EAI_INPROGRESS)
        return;
    pending = false;
    if (r != 0) {
        vg_log(VG_LOG_WARN,
               "executor: cannot resolve the coordinator's host %s: %s (its address is not denied "
               "to ip/cidr arguments, and isolate is refused, until it resolves)",
               ex.coordinator_host, gai_strerror(r));
        return;
    }
    take_addresses(request.ar_result);
    freeaddrinfo(request.ar_result);
    request.ar_result = NULL;
    ex.coordinator_resolved = true;
    vg_log(VG_LOG_INFO, "executor: coordinator host=%s addresses=%zu", ex.coordinator_host,
           ex.ncoordinator);
}

/* The host of "tcp://HOST:PORT" (HOST may be [IPv6]): an address, or a name to resolve. */
/*
 * The executor's own directory (its replay cache): created 0700 if missing; it and its parent
 * must be the executor's (or root's) and writable by nobody else, so that the network-facing
 * process, which owns state_dir, cannot remove a nonce and replay a captured capsule.
 */
static int own_directory(const char *dir, char *err, size_t errlen)
{
    char parent[PATH_MAX];
    struct stat st;
    uid_t me = geteuid();

    snprintf(parent, sizeof(parent), "%s", dir);
    char *slash = strrchr(parent, '/');
    if (!slash) {
        snprintf(err, errlen, "%.900s: must be an absolute path", dir);
        return -EINVAL;
    }
    *(slash == parent ? slash + 1 : slash) = '\0';
    if (stat(parent, &st) < 0 || (st.st_uid != me && st.st_uid != 0) || (st.st_mode & 022)) {
        snprintf(err, errlen,
                 "%.500s: its parent %.400s must exist, be owned by root (or uid %u) and writable by "
                 "nobody else",
                 dir, parent, (unsigned)me);
        return -EPERM;
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "%.900s: cannot create: %s", dir, strerror(errno));
        return -errno;
    }
    if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != me || (st.st_mode & 077)) {
        snprintf(err, errlen, "%.900s: must be a directory owned by uid %u with mode 0700", dir,
                 (unsigned)me);
        return -EPERM;
    }
    return 0;
}

static void load_coordinator(const char *endpoint)
{
    const char *p = strstr(endpoint, "://");
    p = p ? p + 3 : endpoint;
    size_t len;
    if (*p == '[') {
        const char *end = strchr(++p, ']');
        len = end ? (size_t)(end - p) : 0;
    } else {
        const char *colon = strrchr(p, ':');
        len = colon ? (size_t)(colon - p) : strlen(p);
    }
    if (len == 0 || len >= sizeof(ex.coordinator_host)) {
        vg_log(VG_LOG_WARN, "executor: cannot read the coordinator's host from %s", endpoint);
        return;
    }
    memcpy(ex.coordinator_host, p, len);
    ex.coordinator_host[len] = '\0';
    if (actions_net_parse(ex.coordinator_host, false, &ex.coordinator[0]) == 0) {
        ex.ncoordinator = 1;
        ex.coordinator_resolved = true;
        return;
    }
    resolve_coordinator(COORDINATOR_RESOLVE_START_MS);
}

/* The user non-root actions run as: the agent's, looked up now while we can. */
static void load_user(void)
{
    if (geteuid() != 0) {
        ex.unprivileged_ok = true; /* nothing to drop: everything runs as we do */
        return;
    }
    if (!ex.cfg.user[0]) {
        vg_log(VG_LOG_WARN, "executor: no user configured: actions without root: true are refused");
        return;
    }
    struct passwd pw, *found = NULL;
    char *pwbuf = malloc(PW_BUF_SIZE);
    if (!pwbuf || getpwnam_r(ex.cfg.user, &pw, pwbuf, PW_BUF_SIZE, &found) != 0 || !found)
        die(EXIT_CONFIG, "unknown user \"%s\" (agent \"user:\" setting)", ex.cfg.user);
    ex.uid = pw.pw_uid;
    ex.gid = pw.pw_gid;
    free(pwbuf);
    int n = 64;
    for (int attempt = 0; attempt < 4; attempt++) {
        free(ex.groups);
        ex.groups = calloc((size_t)n, sizeof(*ex.groups));
        if (!ex.groups)
            die(EXIT_IO, "out of memory");
        int count = n;
        if (getgrouplist(ex.cfg.user, ex.gid, ex.groups, &count) >= 0) {
            ex.ngroups = (size_t)count;
            ex.drop = ex.unprivileged_ok = true;
            return;
        }
        if (count <= n || count > 65536)
            break;
        n = count;
    }
    die(EXIT_CONFIG, "cannot list the groups of user \"%s\"", ex.cfg.user);
}

/* vigil-agent-action, for the catalog's service actions: looked for once, and only trusted when
 * nobody but root can replace it (it runs as the agent's user, but with the node owner's
 * database passwords and the cluster agent's API token). */
static void load_service_program(void)
{
    bool wanted = false;
    struct stat st;

    for (size_t i = 0; i < actions_count(ex.cfg.catalog); i++)
        wanted |= actions_kind_is_service(actions_get(ex.cfg.catalog, i)->kind);
    if (!wanted)
        return;
    char *path = service_program_path(&ex.cfg);
    if (!path || stat(path, &st) < 0 || !S_ISREG(st.st_mode) || access(path, X_OK) < 0) {
        vg_log(VG_LOG_WARN,
               "executor: %s is not an executable file: postgres, redis and kubernetes actions "
               "are refused (set action_path)",
               path ? path : "vigil-agent-action");
        free(path);
        return;
    }
    if (geteuid() == 0 && (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)))) {
        vg_log(VG_LOG_WARN,
               "executor: %s is not root's or is writable by others: postgres, redis and "
               "kubernetes actions are refused",
               path);
        free(path);
        return;
    }
    ex.service_program = path;
}

static void load_config(const char *path)
{
    char err[1024];
    if (agent_config_load_remediation(path, &ex.cfg, err, sizeof(err)) < 0)
        die(EXIT_CONFIG, "%s", err);
    ex.have_cfg = true;
    enum vg_log_level level;
    if (vg_log_level_parse(ex.cfg.log_level, &level) == 0)
        vg_log_threshold = level;

    if (ex.cfg.signers) {
        ex.signers = vg_signer_set_new();
        if (!ex.signers)
            die(EXIT_IO, "out of memory");
        for (size_t i = 0; i < signers_count(ex.cfg.signers); i++) {
            const struct signer *s = signers_get(ex.cfg.signers, i);
            int r = vg_signer_set_add(ex.signers, s->name, s->role, s->public_key);
            if (r < 0)
                die(EXIT_CONFIG, "%s: signer \"%s\": %s", ex.cfg.signers_file, s->name,
                    strerror(-r));
        }
    }
    size_t nwatch = ex.cfg.processes_watch.count;
    if (nwatch) {
        ex.watched = calloc(nwatch, sizeof(*ex.watched));
        if (!ex.watched)
            die(EXIT_IO, "out of memory");
        for (size_t i = 0; i < nwatch; i++)
            ex.watched[i] = VG_CFG_ITEM(ex.cfg.processes_watch, struct procwatch_config, i)->name;
        ex.procs = procwatch_new(ex.cfg.processes_watch.items, nwatch, "/proc", "/sys/fs/cgroup",
                                 err, sizeof(err));
        if (!ex.procs)
            die(EXIT_CONFIG, "%s: collectors.processes: %s", path, err);
    }
    load_coordinator(ex.cfg.coordinator_endpoint);
    load_user();
    load_service_program();

    if (actions_count(ex.cfg.catalog) > 0 && ex.signers) {
        char own[PATH_MAX], dir[PATH_MAX];
        int n = ex.cfg.executor_state_dir[0]
                    ? snprintf(own, sizeof(own), "%s", ex.cfg.executor_state_dir)
                    : snprintf(own, sizeof(own), "%s-exec", ex.cfg.state_dir);
        if (n < 0 || (size_t)n >= sizeof(own) ||
            snprintf(dir, sizeof(dir), "%s/replay", own) >= (int)sizeof(dir))
            die(EXIT_CONFIG, "%s: state_dir is too long", path);
        if (own_directory(own, err, sizeof(err)) < 0)
            die(EXIT_CONFIG, "%s: executor_state_dir: %s", path, err);
        ex.replay = replay_open(dir, 0, err, sizeof(err));
        if (!ex.replay)
            die(EXIT_CONFIG, "replay cache %s: %s", dir, err);
    }
    vg_log(VG_LOG_INFO,
           "executor ready node=%s actions=%zu signers=%zu replay=%s coordinator_addresses=%zu",
           ex.cfg.node, actions_count(ex.cfg.catalog),
           ex.signers ? vg_signer_set_count(ex.signers) : 0, ex.replay ? "open" : "none",
           ex.ncoordinator);
}

/* ---- reports ---- */

struct report {
    const char *request_id;
    const unsigned char *nonce;
    Vigil__CommandStep step;
    const char *reason;            /* NULL: none */
    const struct job_result *done; /* DONE: the outcome */
};

static void send_report(const struct report *rep)
{
    Vigil__CommandReport r = VIGIL__COMMAND_REPORT__INIT;
    unsigned char packed[PRIVSEP_PAYLOAD_MAX];
    char reason[COMMAND_REASON_MAX + 1];

    r.request_id = (char *)rep->request_id;
    r.nonce.data = (uint8_t *)rep->nonce;
    r.nonce.len = VG_COMMAND_NONCE_BYTES;
    r.step = rep->step;
    if (rep->reason) {
        /* The wire's bound: cut, never refused for length. */
        snprintf(reason, sizeof(reason) - 1, "%s", rep->reason);
        reason[COMMAND_REASON_MAX] = '\0';
        r.reason = reason;
    }
    if (rep->done) {
        r.exit_status = rep->done->exit_status;
        r.duration_ms = rep->done->duration_ms;
        r.output_sha256.data = (uint8_t *)rep->done->output_sha256;
        r.output_sha256.len = VG_SHA256_LEN;
        r.output_truncated = rep->done->output_truncated;
    }
    r.at_ms = vg_wall_ms();
    size_t len = vigil__command_report__get_packed_size(&r);
    if (len == 0 || len > sizeof(packed))
        die(EXIT_IO, "a report of %zu bytes does not fit a message", len);
    vigil__command_report__pack(&r, packed);

    struct privsep_hdr hdr = {.magic = PRIVSEP_MAGIC, .type = PRIVSEP_REPORT, .len = (uint32_t)len};
    struct iovec iov[2] = {{&hdr, sizeof(hdr)}, {packed, len}};
    send_or_exit(iov, 2, sizeof(hdr) + len);
    const char *step = vg_command_step_name(rep->step);
    vg_log(VG_LOG_INFO, "command request=%s step=%s%s%s%s", rep->request_id,
           step ? step : "unknown", rep->reason ? " reason=\"" : "", rep->reason ? reason : "", rep->reason ? "\"" : "");
}

/* The job's kept output to the agent, in OUTPUT messages, before the DONE that reports its hash:
 * the agent keeps it for the vault (agent/cmd_output.h). Nothing for an empty output. */
static void send_output(const struct command_plan *p, const job_t *job)
{
    size_t len = 0;
    const unsigned char *data = job_output(job, &len);
    unsigned char packed[PRIVSEP_PAYLOAD_MAX];
    /* Room for the request id and the field tags within one message. */
    const size_t chunk = PRIVSEP_PAYLOAD_MAX - 256;

    for (size_t off = 0; data && off < len; off += chunk) {
        Vigil__CommandOutput out = VIGIL__COMMAND_OUTPUT__INIT;
        out.request_id = (char *)p->request_id;
        out.offset = off;
        out.data.data = (uint8_t *)data + off;
        out.data.len = len - off < chunk ? len - off : chunk;
        out.last = off + out.data.len == len;
        size_t n = vigil__command_output__get_packed_size(&out);
        if (n == 0 || n > sizeof(packed))
            die(EXIT_IO, "an output message of %zu bytes does not fit a message", n);
        vigil__command_output__pack(&out, packed);
        struct privsep_hdr hdr = {.magic = PRIVSEP_MAGIC, .type = PRIVSEP_OUTPUT, .len = (uint32_t)n};
        struct iovec iov[2] = {{&hdr, sizeof(hdr)}, {packed, n}};
        send_or_exit(iov, 2, sizeof(hdr) + n);
    }
}

static void report_step(const struct command_plan *p, Vigil__CommandStep step)
{
    send_report(&(struct report){p->request_id, p->nonce, step, NULL, NULL});
}

/* DONE for something that ran no program (a dry run, a signal, a start that failed). */
static void report_done_now(const struct command_plan *p, int exit_status, const char *reason)
{
    struct job_result res = {.exit_status = exit_status};
    vg_sha256(NULL, 0, res.output_sha256);
    send_report(&(struct report){p->request_id, p->nonce, VIGIL__COMMAND_STEP__COMMAND_STEP_DONE,
                                 reason, &res});
}

/* ---- running ---- */

static job_t *start_job(char *const *argv, bool as_root, const struct action *a,
                        const struct command_plan *stdin_of, char *err, size_t errlen)
{
    struct job_spec spec = {
        .stdin_data = stdin_of ? stdin_of->stdin_data : NULL,
        .stdin_len = stdin_of ? stdin_of->stdin_len : 0,
        .argv = argv,
        .drop = !as_root && ex.drop,
        .uid = ex.uid,
        .gid = ex.gid,
        .groups = ex.groups,
        .ngroups = ex.ngroups,
        .timeout_ms = a->timeout_ms,
        .output_max_bytes = a->output_max_bytes,
    };
    return job_start(&spec, err, errlen);
}

static void run_signal(const struct command_plan *p)
{
    char reason[256];
    int pid = 0;
    report_step(p, VIGIL__COMMAND_STEP__COMMAND_STEP_STARTED);
    int r = ex.procs ? procwatch_find_pid(ex.procs, p->process_name, &pid) : -ENOENT;
    if (r == 0 && kill(pid, p->signal_number) < 0)
        r = -errno;
    if (r == 0) {
        snprintf(reason, sizeof(reason), "sent SIG%s to %s (pid %d)",
                 sigabbrev_np(p->signal_number), p->process_name, pid);
        report_done_now(p, 0, reason);
    } else {
        snprintf(reason, sizeof(reason), "cannot signal %s: %s", p->process_name,
                 r == -ESRCH    ? "it is not running"
                 : r == -ENOENT ? "it is not a watched process"
                                : strerror(-r));
        report_done_now(p, 1, reason);
    }
}

/* Starts a checked command in slot; the slot is free again when nothing is left running. */
static void run_command(struct running *slot)
{
    struct command_plan *p = &slot->plan;
    char err[256];
    char text[COMMAND_REASON_MAX - 32]; /* leaves room for "dry run: would run " */

    report_step(p, VIGIL__COMMAND_STEP__COMMAND_STEP_ACCEPTED);
    if (p->dry_run) {
        char reason[COMMAND_REASON_MAX];
        if (p->argv) {
            command_argv_text(p->argv, text, sizeof(text));
        } else {
            snprintf(text, sizeof(text), "kill -%s %s", sigabbrev_np(p->signal_number),
                     p->process_name);
        }
        snprintf(reason, sizeof(reason), "dry run: would run %s", text);
        report_done_now(p, 0, reason);
        command_plan_free(p);
        return;
    }
    if (!p->argv) {
        run_signal(p);
        command_plan_free(p);
        return;
    }
    report_step(p, VIGIL__COMMAND_STEP__COMMAND_STEP_STARTED);
    slot->in_precheck = p->precheck_argv != NULL;
    slot->job = slot->in_precheck ? start_job(p->precheck_argv, p->precheck_as_root,
                                              p->action->precheck, NULL, err, sizeof(err))
                                  : start_job(p->argv, p->as_root, p->action, p, err, sizeof(err));
    if (!slot->job) {
        snprintf(text, sizeof(text), "cannot start: %s", err);
        report_done_now(p, 126, text);
        command_plan_free(p);
    }
}

static void job_finished(struct running *slot)
{
    struct command_plan *p = &slot->plan;
    struct job_result res;
    char reason[COMMAND_REASON_MAX];
    char err[256];

    job_result(slot->job, &res);
    /* The output DONE reports the hash of: the action's, or a precheck's that stopped it. */
    if (!slot->in_precheck || res.exit_status != 0 || res.timed_out)
        send_output(p, slot->job);
    job_destroy(&slot->job);
    if (slot->in_precheck) {
        slot->in_precheck = false;
        if (res.exit_status == 0 && !res.timed_out) {
            slot->job = start_job(p->argv, p->as_root, p->action, p, err, sizeof(err));
            if (slot->job)
                return;
            snprintf(reason, sizeof(reason), "cannot start: %s", err);
            report_done_now(p, 126, reason);
            command_plan_free(p);
            return;
        }
        snprintf(reason, sizeof(reason), "precheck %s failed (%s %d): %s not run",
                 p->action->precheck->name, res.exit_status < 0 ? "signal" : "exit",
                 res.exit_status < 0 ? -res.exit_status : res.exit_status, p->action->name);
        send_report(&(struct report){p->request_id, p->nonce,
                                     VIGIL__COMMAND_STEP__COMMAND_STEP_DONE, reason, &res});
        command_plan_free(p);
        return;
    }
    reason[0] = '\0';
    if (res.timed_out)
        snprintf(reason, sizeof(reason), "timed out after %lld ms: the process group was stopped",
                 (long long)p->action->timeout_ms);
    else if (res.exit_status < 0)
        snprintf(reason, sizeof(reason), "killed by SIG%s", sigabbrev_np(-res.exit_status));
    else if (res.exit_status == 126 || res.exit_status == 127)
        snprintf(reason, sizeof(reason), "exit %d: the program could not be started as asked",
                 res.exit_status);
    send_report(&(struct report){p->request_id, p->nonce, VIGIL__COMMAND_STEP__COMMAND_STEP_DONE,
                                 reason[0] ? reason : NULL, &res});
    command_plan_free(p);
}

static struct running *free_slot(void)
{
    for (size_t i = 0; i < EXEC_JOBS_MAX; i++) {
        if (!ex.jobs[i].job && !ex.jobs[i].plan.action)
            return &ex.jobs[i];
    }
    return NULL;
}

static void handle_command(const uint8_t *capsule, size_t len)
{
    struct command_env env = {
        .node = ex.have_cfg ? ex.cfg.node : "",
        .catalog = ex.have_cfg ? ex.cfg.catalog : NULL,
        .signers = ex.signers,
        .replay = ex.replay,
        .coordinator = ex.coordinator,
        .ncoordinator = ex.ncoordinator,
        .unprivileged_ok = ex.unprivileged_ok,
        .cfg = ex.have_cfg ? &ex.cfg : NULL,
        .service_program = ex.service_program,
    };
    resolve_coordinator(COORDINATOR_RESOLVE_COMMAND_MS);
    env.ncoordinator = ex.ncoordinator;
    struct running *slot = free_slot();
    env.busy = slot == NULL;
    struct command_plan plan;
    char why[COMMAND_REASON_MAX];

    int r = command_check(&env, capsule, len, vg_wall_ms(), &plan, why, sizeof(why));
    if (r == -EPERM) {
        if (plan.request_id[0])
            send_report(&(struct report){plan.request_id, plan.nonce,
                                         VIGIL__COMMAND_STEP__COMMAND_STEP_REFUSED, why, NULL});
        else
            vg_log(VG_LOG_WARN, "command refused, unnamed so unreported: %s", why);
        return;
    }
    if (r < 0)
        die(EXIT_IO, "checking a command: %s", strerror(-r));
    slot->plan = plan;
    run_command(slot);
    if (!slot->job)
        slot->plan = (struct command_plan){0};
}

/* ---- the loop ---- */

static void handle_channel(void)
{
    ssize_t n;
    do {
        n = recv(PRIVSEP_EXEC_FD, ex.buf, sizeof(ex.buf), 0);
    } while (n < 0 && errno == EINTR);
    if (n == 0 && !peer_closed())
        die(EXIT_PROTOCOL, "protocol violation: empty message");
    if (n == 0 || (n < 0 && errno == ECONNRESET))
        exit(EXIT_CLOSED);
    if (n < 0)
        die(EXIT_IO, "recv: %s", strerror(errno));
    if ((size_t)n < sizeof(struct privsep_hdr))
        die(EXIT_PROTOCOL, "protocol violation: message of %zd bytes (at least %zu expected)", n,
            sizeof(struct privsep_hdr));

    struct privsep_hdr hdr;
    memcpy(&hdr, ex.buf, sizeof(hdr));
    if (hdr.magic != PRIVSEP_MAGIC)
        die(EXIT_PROTOCOL, "protocol violation: bad magic %#x", (unsigned)hdr.magic);

    switch (hdr.type) {
    case PRIVSEP_PING: {
        struct privsep_msg msg;
        if ((size_t)n != sizeof(msg))
            die(EXIT_PROTOCOL, "protocol violation: message of %zd bytes (expected %zu)", n,
                sizeof(msg));
        memcpy(&msg, ex.buf, sizeof(msg));
        struct privsep_msg pong = {
            .magic = PRIVSEP_MAGIC, .type = PRIVSEP_PONG, .nonce = msg.nonce};
        struct iovec iov = {&pong, sizeof(pong)};
        send_or_exit(&iov, 1, sizeof(pong));
        break;
    }
    case PRIVSEP_COMMAND:
        if (hdr.reserved != 0 || hdr.len == 0 || hdr.len > PRIVSEP_PAYLOAD_MAX ||
            (size_t)n != sizeof(hdr) + hdr.len)
            die(EXIT_PROTOCOL, "protocol violation: COMMAND of %zd bytes claiming %u", n,
                (unsigned)hdr.len);
        handle_command(ex.buf + sizeof(hdr), hdr.len);
        break;
    default:
        die(EXIT_PROTOCOL, "protocol violation: unexpected message type %u", (unsigned)hdr.type);
    }
}

static void serve(void)
{
    for (;;) {
        struct pollfd pfds[1 + 2 * EXEC_JOBS_MAX];
        nfds_t n = 0;
        int64_t deadline = INT64_MAX;

        pfds[n++] = (struct pollfd){.fd = PRIVSEP_EXEC_FD, .events = POLLIN};
        for (size_t i = 0; i < EXEC_JOBS_MAX; i++) {
            if (!ex.jobs[i].job)
                continue;
            int fds[2];
            job_fds(ex.jobs[i].job, fds);
            for (int k = 0; k < 2; k++) {
                if (fds[k] >= 0)
                    pfds[n++] = (struct pollfd){.fd = fds[k], .events = POLLIN};
            }
            int64_t d = job_deadline(ex.jobs[i].job);
            if (d < deadline)
                deadline = d;
        }
        int64_t now = vg_mono_ms();
        int timeout = deadline == INT64_MAX      ? -1
                      : deadline <= now          ? 0
                      : deadline - now > INT_MAX ? INT_MAX
                                                 : (int)(deadline - now);
        int r = poll(pfds, n, timeout);
        if (r < 0 && errno != EINTR)
            die(EXIT_IO, "poll: %s", strerror(errno));

        /* Jobs first: their output is read before a new command can take a slot. */
        now = vg_mono_ms();
        for (size_t i = 0; i < EXEC_JOBS_MAX; i++) {
            if (ex.jobs[i].job && job_handle(ex.jobs[i].job, now)) {
                job_finished(&ex.jobs[i]);
                if (!ex.jobs[i].job)
                    ex.jobs[i].plan = (struct command_plan){0};
            }
        }
        if (r > 0 && (pfds[0].revents & (POLLIN | POLLHUP | POLLERR)))
            handle_channel();
    }
}

static void cleanup(void)
{
    for (size_t i = 0; i < EXEC_JOBS_MAX; i++) {
        job_destroy(&ex.jobs[i].job);
        command_plan_free(&ex.jobs[i].plan);
    }
    replay_destroy(&ex.replay);
    procwatch_destroy(&ex.procs);
    vg_signer_set_destroy(&ex.signers);
    free(ex.watched);
    free(ex.groups);
    if (ex.have_cfg)
        agent_config_free(&ex.cfg);
}

int main(int argc, char **argv)
{
    check_channel();
    vg_log_init(PROG, VG_LOG_INFO, !isatty(STDERR_FILENO));
    if (argc > 2)
        die(EXIT_NOT_STARTED_BY_AGENT, "usage: %s [AGENT-YAML]", PROG);
    if (argc == 2)
        load_config(argv[1]);
    atexit(cleanup);
    serve();
}
