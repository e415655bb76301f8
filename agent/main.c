/*
 * vigil-agent: start-up order matters here.
 *
 *   1. read the configuration (and the enrollment secret) while still privileged;
 *   2. fork + exec the privileged executor (privsep.c), then drop privileges;
 *   3. only then create or load the key pair, open the spool and touch the network.
 *
 * Exit codes: 0 stopped by SIGINT/SIGTERM, 64 usage, 71 OS error, 75 the executor died (restart
 * the agent), 78 configuration error.
 */
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <malloc.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "actions_info.h"
#include "agent_config.h"
#include "cmd_output.h"
#include "collect.h"
#include "evidence.h"
#include "evidence_kinds.h"
#include "evloop.h"
#include "flight.h"
#include "host.h"
#include "keys.h"
#include "link.h"
#include "log.h"
#include "logtail.h"
#include "netstat.h"
#include "privsep.h"
#include "probes.h"
#include "procwatch.h"
#include "reach.h"
#include "sigbuf.h"
#include "spool.h"
#include "status.h"
#include "thresholds.h"
#include "timeutil.h"
#include "token.h"
#include "wire.h"

#define EXIT_USAGE 64
#define EXIT_OSERR 71
#define EXIT_EXECUTOR_LOST 75 /* EX_TEMPFAIL: the executor died; the supervisor restarts us */
#define EXIT_CONFIG 78

#define EXECUTOR_PING_TIMEOUT_MS 1000
#define EXECUTOR_LOST_FLUSH_MS 5000 /* for the spool's acknowledgement before exiting 75 */
/* After a command's DONE, its signals are tagged this long: a restarted service takes a moment
 * to answer its probe again. */
#define COMMAND_SETTLE_MS 2000

/* The runbook's alert table (docs/incident-response-runbooks.md, "ALERT THRESHOLDS"), plus
 * "down is critical" for everything with an up signal. Clear margins give hysteresis: CPU
 * fires at 80 % and clears below 75 %. agent.yaml `thresholds:` overrides or adds. */
static const struct threshold_rule default_thresholds[] = {
    {"host.cpu.busy_pct", 80, 95, 5, false},
    {"host.mem.used_pct", 85, 95, 5, false},
    {"host.disk.used_pct", 80, 90, 2, false},
    {"http.time_ms", 2000, 5000, 200, false},
    {"log.error_rate_pct", 1, 5, 0.5, false},
    {"http.up", 0, 0, 0, true},
    {"http.tls_days_left", 14, 3, 1, true},
    {"proc.up", 0, 0, 0, true},
    {"pg.up", 0, 0, 0, true},
    {"redis.up", 0, 0, 0, true},
    /* Bursts of 401/403 and failed logins per window (collectors.logs.window, 60 s). */
    {"log.http.denied", 20, 100, 5, false},
    {"log.failed_logins", 10, 50, 2, false},
};
#define MAX_THRESHOLDS 300

#define AGENT_COLLECTORS 6 /* agent, host, netstat, probes, processes, logs */

static void usage(FILE *out)
{
    fprintf(out, "usage: vigil-agent [-n | --health | --ready] [-c FILE]\n"
                 "\n"
                 "Watches this node and reports to the Vigil coordinator over CURVE ZeroMQ.\n"
                 "\n"
                 "  -c FILE   configuration file (default /etc/vigil/agent.yaml)\n"
                 "  -n        check the configuration and exit\n"
                 "  --health  is the agent running here alive? Reads <state_dir>/status, which the\n"
                 "            agent rewrites every 5 s: exit 0 when it is fresh and the executor\n"
                 "            answers, else 1; one line says why (a liveness probe)\n"
                 "  --ready   --health, and the coordinator answered within 3 heartbeats\n"
                 "            (a readiness probe)\n"
                 "  -V, --version  print the version and exit\n"
                 "  -h, --help     this help\n"
                 "\n"
                 "Exit codes: 0 stopped, 64 usage, 71 OS error, 75 the executor died (restart\n"
                 "the agent), 78 configuration error.\n"
                 "An annotated example configuration is in deploy/config/agent.yaml.\n");
}

struct agent;

/* One entry of the agent's collector array: the interface and the agent its handlers feed. */
struct agent_collector {
    struct collector c;
    struct agent *agent;
};

struct agent {
    struct agent_config cfg;
    char *config_path;                /* absolute: the executor reads it too */
    Vigil__ActionInfo **action_infos; /* the catalog as Enroll carries it */
    size_t naction_infos;
    struct vg_keypair keys;
    char id[VG_AGENT_ID_LEN + 1];
    uint8_t token[VG_TOKEN_LEN];
    bool has_token;
    char *enroll_secret;
    size_t enroll_secret_len;
    privsep_t *privsep;
    spool_t *spool;
    void *zmq_ctx;
    link_t *link;
    int signal_fd;
    int64_t started_mono;
    sigbuf_t *batch;
    thresholds_t *thresholds;
    int64_t batch_started; /* mono time of the batch's first sample; 0 = empty */
    bool executor_ok;
    cmd_output_t *outputs; /* the executor's command outputs, for the vault */
    podmap_t *pods;        /* names pods for netstat and evidence; outlives the collectors */
    /* The command whose signals are tagged (sigbuf_set_command): from its STARTED until
     * COMMAND_SETTLE_MS after its DONE. */
    char tagging[VG_MAX_COMMAND_ID_LEN + 1];
    int64_t tagging_until; /* mono ms; INT64_MAX while it runs */
    /* In the order a turn runs them; each owns its object. */
    struct agent_collector collectors[AGENT_COLLECTORS];
    size_t ncollectors;
    probes_t *probes; /* borrowed from collectors[]; NULL when no probe is configured */
    evidence_t *evidence;
    struct evidence_sources evidence_sources; /* borrows the logs and probes collectors' objects */
    flight_t *flight; /* NULL: flight_recorder.enabled is false */
    vg_loop_t *loop;
    int evidence_timer;      /* due while evidence_poll has work left */
    bool status_failed;      /* the last status file write failed (logged once) */
    int stop_signal;         /* SIGINT or SIGTERM, once one arrived */
    struct collect_ctx turn; /* what the collectors due in this loop turn emit into */
    bool turn_open;
};

/*
 * The state directory belongs to the unprivileged user the agent becomes, mode 0700 whatever
 * the umask. That user must reach it after the drop: checked now, so a directory above it that
 * it cannot search (a state_dir under /root) is one clear error instead of a key that cannot
 * be read later.
 */
static int prepare_state_dir(const struct agent_config *cfg)
{
    if (mkdir(cfg->state_dir, 0700) < 0 && errno != EEXIST) {
        int e = errno;
        vg_log(VG_LOG_ERROR, "cannot create state_dir %s: %s", cfg->state_dir, strerror(e));
        return -e;
    }
    if (chmod(cfg->state_dir, 0700) < 0) {
        int e = errno;
        vg_log(VG_LOG_ERROR, "cannot set mode 0700 on state_dir %s: %s", cfg->state_dir,
               strerror(e));
        return -e;
    }
    if (geteuid() != 0 || !cfg->user[0])
        return 0;
    struct passwd *pw = getpwnam(cfg->user);
    if (!pw) {
        vg_log(VG_LOG_ERROR, "user %s does not exist", cfg->user);
        return -ENOENT;
    }
    if (chown(cfg->state_dir, pw->pw_uid, pw->pw_gid) < 0) {
        int e = errno;
        vg_log(VG_LOG_ERROR, "cannot chown %s: %s", cfg->state_dir, strerror(e));
        return -e;
    }
    /* As privsep will be: the user's own groups (root's are dropped). */
    gid_t groups[64];
    int ngroups = (int)(sizeof(groups) / sizeof(groups[0]));
    if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &ngroups) < 0)
        ngroups = 0;
    struct vg_identity who = {
        .uid = pw->pw_uid, .gid = pw->pw_gid, .groups = groups, .ngroups = (size_t)ngroups};
    int r = vg_reach_check(&who, cfg->state_dir, R_OK | W_OK | X_OK);
    if (r == 1)
        return 0;
    char blocked[PATH_MAX] = "";
    if (r == 0 && vg_reach_blocking_dir(&who, cfg->state_dir, blocked, sizeof(blocked)) == 1)
        vg_log(VG_LOG_ERROR,
               "state_dir %s: the agent's network side runs as user %s, which cannot search %s "
               "(no execute permission for it there): put state_dir below a directory it can "
               "search (the default is /var/lib/vigil-agent), or chmod o+x %s",
               cfg->state_dir, cfg->user, blocked, blocked);
    else
        vg_log(VG_LOG_ERROR, "state_dir %s: user %s cannot use it (%s)", cfg->state_dir, cfg->user,
               r < 0 ? strerror(-r) : "no read, write or search permission");
    return -EACCES;
}

static char *default_executor_path(void)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return NULL;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (!slash)
        return NULL;
    *slash = '\0';
    char *path;
    return asprintf(&path, "%s/vigil-agent-exec", self) < 0 ? NULL : path;
}

/* The current batch becomes one durable message in the spool. */
static void flush_batch(struct agent *a)
{
    uint64_t seq;
    uint8_t *buf;
    size_t len;
    size_t n = sigbuf_count(a->batch);

    a->batch_started = 0;
    if (n == 0)
        return;
    int r = spool_reserve_seq(a->spool, &seq);
    if (r == 0)
        r = sigbuf_encode(a->batch, a->id, seq, &buf, &len);
    if (r == 0) {
        r = spool_append(a->spool, seq, SPOOL_KIND_SIGNALS, (uint32_t)n, buf, len);
        free(buf);
    }
    if (r < 0)
        vg_log(VG_LOG_ERROR, "spool: %zu samples not stored: %s", n, strerror(-r));
    sigbuf_clear(a->batch);
}

/* The agent's own health, as signals through the spool like any collector's (the "agent"
 * collector; self is the agent). */
static void collect_self(void *self, struct collect_ctx *ctx)
{
    struct agent *a = self;
    struct spool_stats st;

    spool_stats(a->spool, &st);
    collect_emit(ctx, "agent.uptime_s", (double)(vg_mono_ms() - a->started_mono) / 1000, "s", NULL,
                 0);
    collect_emit(ctx, "agent.spool.depth", (double)st.depth, "messages", NULL, 0);
    collect_emit(ctx, "agent.spool.bytes", (double)st.bytes, "bytes", NULL, 0);
    collect_emit(ctx, "agent.spool.dropped_messages", (double)st.dropped_messages, "messages", NULL,
                 0);
    collect_emit(ctx, "agent.spool.dropped_samples", (double)st.dropped_samples, "samples", NULL,
                 0);
    collect_emit(ctx, "agent.executor.up", a->executor_ok ? 1 : 0, "bool", NULL, 0);
    collect_emit(ctx, "agent.link.ignored_messages", (double)link_ignored_messages(a->link),
                 "messages", NULL, 0);
    collect_emit(ctx, "agent.link.refused_records", (double)link_refused_records(a->link),
                 "messages", NULL, 0);
    collect_emit(ctx, "agent.link.duplicate_requests", (double)link_duplicate_requests(a->link),
                 "messages", NULL, 0);
    collect_emit(ctx, "agent.signals.escaped", (double)sigbuf_escaped(a->batch), "strings", NULL,
                 0);
    if (a->probes)
        collect_emit(ctx, "agent.probes.dropped_samples", (double)probes_errors(a->probes),
                     "samples", NULL, 0);
    struct evidence_stats ev;
    evidence_stats(a->evidence, &ev);
    collect_emit(ctx, "agent.evidence.requests", (double)ev.requests, "requests", NULL, 0);
    collect_emit(ctx, "agent.evidence.refused", (double)ev.refused, "requests", NULL, 0);
    collect_emit(ctx, "agent.evidence.failed", (double)ev.failed, "requests", NULL, 0);
    collect_emit(ctx, "agent.evidence.sent", (double)ev.stored, "artifacts", NULL, 0);
    collect_emit(ctx, "agent.evidence.sent_bytes", (double)ev.bytes, "bytes", NULL, 0);
    if (a->flight) {
        struct flight_stats fl;
        flight_get_stats(a->flight, &fl);
        collect_emit(ctx, "agent.flight.snapshots", (double)fl.snapshots, "snapshots", NULL, 0);
        collect_emit(ctx, "agent.flight.bytes", (double)fl.bytes, "bytes", NULL, 0);
    }
    struct podmap_stats pods;
    if (a->pods && (podmap_get_stats(a->pods, &pods), pods.scans > 0)) { /* a Kubernetes node */
        collect_emit(ctx, "agent.pods.known", (double)pods.pods, "pods", NULL, 0);
        collect_emit(ctx, "agent.pods.unresolved", (double)pods.unresolved, "lookups", NULL, 0);
        collect_emit(ctx, "agent.pods.bad_names", (double)pods.malformed, "entries", NULL, 0);
    }
}

static struct collect_ctx collect_begin(struct agent *a)
{
    if (a->tagging[0] && vg_mono_ms() >= a->tagging_until) {
        a->tagging[0] = '\0';
        if (a->batch)
            sigbuf_set_command(a->batch, NULL);
    }
    if (sigbuf_count(a->batch) == 0)
        a->batch_started = vg_mono_ms();
    return (struct collect_ctx){
        .batch = a->batch, .thresholds = a->thresholds, .now_ms = vg_wall_ms()};
}

/* Sends the batch at once on a threshold crossing, else when it is batch_interval old. */
static void collect_end(struct agent *a, const struct collect_ctx *ctx)
{
    if (ctx->errors)
        vg_log(VG_LOG_DEBUG, "collect: %llu sources unreadable or samples refused",
               (unsigned long long)ctx->errors);
    if (sigbuf_count(a->batch) == 0)
        a->batch_started = 0;
    if (ctx->crossed ||
        (a->batch_started && vg_mono_ms() - a->batch_started >= a->cfg.batch_interval_ms))
        flush_batch(a);
}

/* A collector's timer. The collectors due in one loop turn emit into one context, and
 * collect_turn_end decides once whether the batch goes: a crossing sends everything that turn
 * measured. */
static int on_collector_due(vg_loop_t *loop, void *userdata)
{
    struct agent_collector *ac = userdata;
    struct agent *a = ac->agent;

    (void)loop;
    if (!a->turn_open) {
        a->turn = collect_begin(a);
        a->turn_open = true;
    }
    ac->c.run(ac->c.self, &a->turn);
    return 0;
}

/* Samples that arrive on their own (probe results, a watched process's exit) get a context of
 * their own, so a crossing among them is sent before the timers run. */
static int on_collector_readable(vg_loop_t *loop, void *userdata)
{
    struct agent_collector *ac = userdata;
    struct collect_ctx ctx = collect_begin(ac->agent);

    (void)loop;
    ac->c.on_readable(ac->c.self, &ctx);
    collect_end(ac->agent, &ctx);
    return 0;
}

/* After every turn, whether a collector ran or not: the batch goes on a crossing, or once it
 * is batch_interval old. */
static void collect_turn_end(struct agent *a)
{
    if (!a->turn_open)
        a->turn = collect_begin(a);
    collect_end(a, &a->turn);
    a->turn_open = false;
}

/* The runbook's defaults, overridden or extended by agent.yaml `thresholds:`. */
static thresholds_t *thresholds_from_config(const struct agent_config *cfg)
{
    static struct threshold_rule rules[MAX_THRESHOLDS];
    size_t n = sizeof(default_thresholds) / sizeof(default_thresholds[0]);

    memcpy(rules, default_thresholds, sizeof(default_thresholds));
    for (size_t i = 0; i < cfg->thresholds.count; i++) {
        const struct threshold_config *t = VG_CFG_ITEM(cfg->thresholds, struct threshold_config, i);
        size_t j = 0;
        while (j < n && strcmp(rules[j].signal, t->signal) != 0)
            j++;
        if (j == n && n == MAX_THRESHOLDS)
            break; /* the config table's bound keeps this from happening */
        rules[j] = (struct threshold_rule){t->signal, t->warning, t->critical, t->clear, t->below};
        if (j == n)
            n++;
    }
    return thresholds_new(rules, n);
}

static void on_collect(void *userdata, const Vigil__CollectRequest *req)
{
    struct agent *a = userdata;
    evidence_request(a->evidence, req);
}

/* The probe kinds as configured; returns how many targets are enabled. */
#define PROBE_KINDS 4
static size_t probe_kinds_from_config(const struct agent *a,
                                      struct probes_kind_config kinds[PROBE_KINDS])
{
    const struct probe_kind_settings *settings[] = {&a->cfg.http, &a->cfg.postgres, &a->cfg.redis,
                                                    &a->cfg.kubernetes};
    static const char *const names[] = {"http", "postgres", "redis", "kubernetes"};
    size_t ntargets = 0;
    for (size_t i = 0; i < PROBE_KINDS; i++) {
        kinds[i] = (struct probes_kind_config){
            .kind = names[i],
            .interval_ms = settings[i]->interval_ms,
            .options = {.timeout_ms = settings[i]->timeout_ms,
                        .long_running_ms = settings[i]->long_running_ms,
                        .max_artifact_bytes = (size_t)a->cfg.evidence_max_bytes},
            .targets = settings[i]->targets.items,
            .ntargets = settings[i]->targets.count,
        };
        ntargets += settings[i]->interval_ms ? settings[i]->targets.count : 0;
    }
    return ntargets;
}

static void add_collector(struct agent *a, struct collector c)
{
    assert(a->ncollectors < AGENT_COLLECTORS);
    a->collectors[a->ncollectors++] = (struct agent_collector){.c = c, .agent = a};
}

/* The flight recorder (flight.h): its thread starts here; the log collector hands it its lines. */
static int start_flight(struct agent *a, logtail_t *logs)
{
    char err[256];
    const char *names[LOGTAIL_CONFIGS_MAX];
    size_t nlogs = a->cfg.logs_files.count < LOGTAIL_CONFIGS_MAX ? a->cfg.logs_files.count
                                                                 : LOGTAIL_CONFIGS_MAX;
    /* cppcheck-suppress knownConditionTrueFalse ; nlogs comes from the configuration */
    for (size_t i = 0; i < nlogs; i++)
        names[i] = VG_CFG_ITEM(a->cfg.logs_files, struct logtail_file_config, i)->name;
    struct flight_options opt = {
        .interval_ms = a->cfg.flight_interval_ms,
        .window_ms = a->cfg.flight_window_ms,
        .max_bytes = (size_t)a->cfg.flight_max_bytes,
        .proc_root = "/proc",
        .pods = a->pods,
        .log_names = names,
        .nlogs = logs ? nlogs : 0,
    };
    a->flight = flight_new(&opt, err, sizeof(err));
    if (!a->flight || flight_start(a->flight, err, sizeof(err)) < 0) {
        vg_log(VG_LOG_ERROR, "%s", err);
        flight_destroy(&a->flight);
        return -1;
    }
    if (logs)
        logtail_set_line_hook(logs, flight_log_line, a->flight);
    vg_log(VG_LOG_INFO,
           "flight recorder: a snapshot every %lld ms, kept %lld ms, at most %lld bytes in memory",
           (long long)a->cfg.flight_interval_ms, (long long)a->cfg.flight_window_ms,
           (long long)a->cfg.flight_max_bytes);
    return 0;
}

/*
 * Builds the collectors, then hands them to the array in the order a loop turn serves them:
 * the timers of agent, host, netstat, processes and logs run in that order, and probe results
 * are drained before process exits are read.
 */
static int start_collectors(struct agent *a)
{
    char err[1024];
    char path[PATH_MAX];
    int code = EXIT_CONFIG;
    host_collector_t *host = host_collector_new("/proc");
    netstat_collector_t *netstat = netstat_collector_new("/proc");
    procwatch_t *procs = NULL; /* NULL when no process is watched */
    logtail_t *logs = NULL;    /* NULL when no log is configured */
    probes_t *probes = NULL;   /* NULL when no probe is configured */

    if (!host || !netstat) {
        vg_log(VG_LOG_ERROR, "out of memory");
        code = EXIT_OSERR;
        goto err_destroy_collectors;
    }
    vg_log(VG_LOG_INFO, "socket tables read through %s", netstat_collector_source(netstat));
    a->pods = podmap_new(a->cfg.pod_logs_dir, a->cfg.container_logs_dir);
    if (!a->pods) {
        vg_log(VG_LOG_ERROR, "out of memory");
        code = EXIT_OSERR;
        goto err_destroy_collectors;
    }
    netstat_collector_set_pods(netstat, a->pods);
    if (a->cfg.processes_watch.count && a->cfg.processes_interval_ms) {
        procs = procwatch_new(a->cfg.processes_watch.items, a->cfg.processes_watch.count, "/proc",
                              "/sys/fs/cgroup", err, sizeof(err));
        if (!procs) {
            vg_log(VG_LOG_ERROR, "collectors.processes: %s", err);
            goto err_destroy_collectors;
        }
        procwatch_set_pods(procs, a->pods);
    }
    if (a->cfg.logs_files.count && a->cfg.logs_interval_ms) {
        struct logtail_options opt = {
            .window_ms = a->cfg.logs_window_ms,
            .max_line_bytes = a->cfg.logs_max_line_bytes,
            .max_read_per_run = a->cfg.logs_max_read_bytes,
            .pods_dir = a->cfg.pod_logs_dir,
        };
        snprintf(path, sizeof(path), "%s/log-offsets", a->cfg.state_dir);
        logs = logtail_new(a->cfg.logs_files.items, a->cfg.logs_files.count, &opt, path, err,
                           sizeof(err));
        if (!logs) {
            vg_log(VG_LOG_ERROR, "collectors.logs: %s", err);
            goto err_destroy_collectors;
        }
    }
    struct probes_kind_config probe_kinds[PROBE_KINDS];
    size_t nprobe_targets = probe_kinds_from_config(a, probe_kinds);
    if (nprobe_targets) {
        probes = probes_new(probe_kinds, PROBE_KINDS, a->cfg.probe_dir, err, sizeof(err));
        if (!probes) {
            vg_log(VG_LOG_ERROR, "probes: %s", err);
            goto err_destroy_collectors;
        }
    }

    if (a->cfg.flight_enabled && start_flight(a, logs) < 0) {
        code = EXIT_OSERR;
        goto err_destroy_collectors;
    }
    a->probes = probes;
    a->evidence_sources = (struct evidence_sources){
        .proc_root = "/proc",
        .allow_dirs = &a->cfg.evidence_allow_dirs,
        .logs = logs,
        .probes = probes,
        .max_bytes = (size_t)a->cfg.evidence_max_bytes,
        .outputs = a->outputs,
        .pods = a->pods,
        .flight = a->flight,
    };
    add_collector(a, (struct collector){.name = "agent",
                                        .interval_ms = a->cfg.self_signals_interval_ms,
                                        .run = collect_self,
                                        .self = a});
    add_collector(a, host_collector(&host, a->cfg.host_interval_ms));
    add_collector(a, netstat_collector(&netstat, a->cfg.netstat_interval_ms));
    if (probes)
        add_collector(a, probes_collector(&probes));
    if (procs)
        add_collector(a, procwatch_collector(&procs, a->cfg.processes_interval_ms));
    if (logs)
        add_collector(a, logtail_collector(&logs, a->cfg.logs_interval_ms));

    struct evidence_kind ev_kinds[EVIDENCE_KINDS_MAX];
    size_t nkinds = evidence_kinds_fill(ev_kinds, &a->evidence_sources);
    snprintf(path, sizeof(path), "%s/evidence", a->cfg.state_dir);
    struct evidence_options ev_opt = {
        .work_dir = path,
        .max_bytes = (uint64_t)a->cfg.evidence_max_bytes,
        .chunk_bytes = (uint64_t)a->cfg.evidence_chunk_bytes,
        .sender = a->id,
    };
    a->evidence = evidence_new(ev_kinds, nkinds, &ev_opt, err, sizeof(err));
    if (!a->evidence) {
        vg_log(VG_LOG_ERROR, "%s", err);
        return EXIT_OSERR; /* the collectors are the agent's now: stop() frees them */
    }
    return 0;

err_destroy_collectors:
    probes_destroy(&probes);
    logtail_destroy(&logs);
    procwatch_destroy(&procs);
    netstat_collector_destroy(&netstat);
    host_collector_destroy(&host);
    return code;
}

/* -n: what only building a collector checks (log patterns compile, watch entries are
 * complete), without touching offsets, the network or the spool. Probe targets are checked
 * when the agent starts (loading a probe module opens its targets). */
static int check_sources(const struct agent_config *cfg, const char *path)
{
    char err[1024];
    struct logtail_options opt = {.window_ms = cfg->logs_window_ms,
                                  .max_line_bytes = cfg->logs_max_line_bytes,
                                  .max_read_per_run = cfg->logs_max_read_bytes};
    logtail_t *logs = cfg->logs_files.count
                          ? logtail_new(cfg->logs_files.items, cfg->logs_files.count, &opt, NULL,
                                        err, sizeof(err))
                          : NULL;
    if (cfg->logs_files.count && !logs) {
        fprintf(stderr, "vigil-agent: %s: collectors.logs: %s\n", path, err);
        return EXIT_CONFIG;
    }
    logtail_destroy(&logs);
    procwatch_t *procs = cfg->processes_watch.count
                             ? procwatch_new(cfg->processes_watch.items, cfg->processes_watch.count,
                                             "/proc", "/sys/fs/cgroup", err, sizeof(err))
                             : NULL;
    if (cfg->processes_watch.count && !procs) {
        fprintf(stderr, "vigil-agent: %s: collectors.processes: %s\n", path, err);
        return EXIT_CONFIG;
    }
    procwatch_destroy(&procs);
    return 0;
}

static int on_link_monitor(vg_loop_t *loop, void *userdata)
{
    (void)loop;
    link_handle_monitor(userdata);
    return 0;
}

static int on_link_message(vg_loop_t *loop, void *userdata)
{
    (void)loop;
    link_handle(userdata);
    return 0;
}

/* SIGINT and SIGTERM stop the loop (a->stop_signal says which); SIGHUP is read and ignored. */
static int on_signal(vg_loop_t *loop, void *userdata)
{
    struct agent *a = userdata;
    struct signalfd_siginfo si;

    while (read(a->signal_fd, &si, sizeof(si)) == sizeof(si)) {
        if (si.ssi_signo != SIGHUP)
            a->stop_signal = (int)si.ssi_signo;
    }
    if (a->stop_signal)
        vg_loop_stop(loop, 0);
    return 0;
}

/* What both loops serve first, in this order: the link's monitor (a reconnection is known
 * before the messages after it), the link's socket, the signals. */
static int watch_link_and_signals(vg_loop_t *loop, struct agent *a)
{
    int r = vg_loop_add_socket(loop, link_monitor_socket(a->link), on_link_monitor, a->link);
    if (r == 0)
        r = vg_loop_add_socket(loop, link_socket(a->link), on_link_message, a->link);
    if (r == 0)
        r = vg_loop_add_fd(loop, a->signal_fd, on_signal, a);
    return r;
}

/* The evidence worker has something: evidence_poll runs in the timer pass. */
static int on_evidence_readable(vg_loop_t *loop, void *userdata)
{
    struct agent *a = userdata;
    return vg_loop_timer_due_now(loop, a->evidence_timer) < 0 ? -1 : 0;
}

/* evidence_poll moves a bounded number of chunks per call; while more wait, the next turn
 * calls it again without sleeping. */
static int on_evidence_due(vg_loop_t *loop, void *userdata)
{
    struct agent *a = userdata;
    if (evidence_poll(a->evidence, a->spool))
        vg_loop_timer_due_now(loop, a->evidence_timer);
    return 0;
}

/*
 * A capsule from the coordinator goes to the executor as it came: this side has no keys to
 * check it with and is not trusted to (privsep.h). A channel that fails is the executor lost.
 */
static void on_command(void *userdata, const Vigil__CommandCapsule *capsule)
{
    struct agent *a = userdata;
    size_t len = vigil__command_capsule__get_packed_size(capsule);
    uint8_t *buf = len > 0 && len <= PRIVSEP_PAYLOAD_MAX ? malloc(len) : NULL;
    if (!buf) {
        vg_log(VG_LOG_WARN, "command of %zu bytes not passed to the executor (limit %d)", len,
               PRIVSEP_PAYLOAD_MAX);
        return;
    }
    vigil__command_capsule__pack(capsule, buf);
    int r = privsep_send_command(a->privsep, buf, len);
    free(buf);
    if (r == -EMSGSIZE) {
        vg_log(VG_LOG_WARN, "command of %zu bytes not passed to the executor", len);
    } else if (r < 0) {
        a->executor_ok = false;
        vg_loop_stop(a->loop, EXIT_EXECUTOR_LOST);
    }
}

static const char *step_name(Vigil__CommandStep step)
{
    const char *name = vg_command_step_name(step);
    return name ? name : "unknown";
}

/*
 * Signals measured while a command runs, and for COMMAND_SETTLE_MS after it, carry its request id:
 * what a restart or a block disturbs on its way is Vigil's own doing, and the coordinator opens
 * no incident for it (docs/remediation.md). One command at a time is tagged, the latest started.
 */
static void tag_signals(struct agent *a, const Vigil__CommandReport *report)
{
    bool mine = strcmp(a->tagging, report->request_id) == 0;
    switch (report->step) {
    case VIGIL__COMMAND_STEP__COMMAND_STEP_STARTED:
        snprintf(a->tagging, sizeof(a->tagging), "%s", report->request_id);
        a->tagging_until = INT64_MAX;
        if (a->batch)
            sigbuf_set_command(a->batch, a->tagging);
        break;
    case VIGIL__COMMAND_STEP__COMMAND_STEP_DONE:
    case VIGIL__COMMAND_STEP__COMMAND_STEP_REFUSED:
        if (mine)
            a->tagging_until = vg_mono_ms() + COMMAND_SETTLE_MS;
        break;
    default:
        break;
    }
}

/* A command's output from the executor: kept for the coordinator's command_output collection. */
static void on_executor_output(void *userdata, const uint8_t *data, size_t len)
{
    struct agent *a = userdata;
    if (a->outputs)
        cmd_output_take(a->outputs, data, len);
}

/*
 * A report from the executor becomes a durable command_report message in the spool, like
 * evidence: never dropped for space (SPOOL_KIND_RESULT), sent until acknowledged, stored once
 * by (agent, seq). It is checked with the coordinator's own decoder first, so a report the
 * coordinator would refuse is logged here instead of being sent again and again.
 */
static void on_executor_report(void *userdata, const uint8_t *data, size_t len)
{
    struct agent *a = userdata;
    Vigil__Envelope env;
    Vigil__Envelope *check = NULL;
    const char *why = NULL;
    uint8_t *buf = NULL;
    size_t size;
    uint64_t seq;

    Vigil__CommandReport *report = vigil__command_report__unpack(NULL, len, data);
    if (!report) {
        vg_log(VG_LOG_ERROR, "executor sent a report that is not a CommandReport: dropped");
        return;
    }
    tag_signals(a, report);
    int r = spool_reserve_seq(a->spool, &seq);
    if (r == 0) {
        vg_envelope_init(&env, a->id, seq);
        env.body_case = VIGIL__ENVELOPE__BODY_COMMAND_REPORT;
        env.command_report = report;
        r = vg_envelope_encode(&env, &buf, &size);
    }
    if (r == 0 && vg_envelope_decode(buf, size, &check, &why) != VG_DECODE_OK) {
        vg_log(VG_LOG_ERROR, "executor sent a report the coordinator would refuse (%s): dropped",
               why ? why : "?");
        r = -EINVAL;
    }
    vg_envelope_free(check);
    if (r == 0)
        r = spool_append(a->spool, seq, SPOOL_KIND_RESULT, 0, buf, size);
    if (r < 0) {
        vg_log(VG_LOG_ERROR, "command report request=%s step=%s not spooled: %s",
               report->request_id, step_name(report->step), strerror(-r));
    } else {
        vg_log(VG_LOG_INFO, "command report request=%s step=%s seq=%llu", report->request_id,
               step_name(report->step), (unsigned long long)seq);
    }
    free(buf);
    vigil__command_report__free_unpacked(report, NULL);
}

/* The executor sent something: reports into the spool. A broken channel is the executor lost. */
static int on_executor_readable(vg_loop_t *loop, void *userdata)
{
    struct agent *a = userdata;
    if (privsep_handle(a->privsep) < 0) {
        a->executor_ok = false;
        vg_loop_stop(loop, EXIT_EXECUTOR_LOST);
    }
    return 0;
}

/* A failed ping closes the channel for good (privsep.c): the unprivileged agent cannot start a
 * new executor, so the loop stops for executor_lost to report the loss and exit. */
static int on_ping_due(vg_loop_t *loop, void *userdata)
{
    struct agent *a = userdata;
    a->executor_ok = privsep_ping(a->privsep, EXECUTOR_PING_TIMEOUT_MS) == 0;
    if (!a->executor_ok)
        vg_loop_stop(loop, EXIT_EXECUTOR_LOST);
    return 0;
}

/* <state_dir>/status for `vigil-agent --health` (status.h): the loop is alive, and what the
 * link knows of the coordinator. */
static int on_status_due(vg_loop_t *loop, void *userdata)
{
    struct agent *a = userdata;
    struct agent_status st = {.pid = (long)getpid(),
                              .written_ms = vg_wall_ms(),
                              .interval_ms = AGENT_STATUS_INTERVAL_MS,
                              .executor_ok = a->executor_ok};
    struct link_status ls;
    struct spool_stats sp;

    (void)loop;
    link_get_status(a->link, &ls);
    spool_stats(a->spool, &sp);
    snprintf(st.node, sizeof(st.node), "%s", a->cfg.node);
    snprintf(st.agent_id, sizeof(st.agent_id), "%s", a->id);
    snprintf(st.link, sizeof(st.link), "%s", link_state_name(ls.state));
    st.started_ms = st.written_ms - (vg_mono_ms() - a->started_mono);
    st.connected = ls.connected;
    st.last_contact_ms = ls.last_contact_ms;
    st.heartbeat_interval_ms = ls.heartbeat_interval_ms;
    st.spool_depth = sp.depth;
    st.spool_dropped_messages = sp.dropped_messages;
    int r = agent_status_write(a->cfg.state_dir, &st);
    if (r < 0 && !a->status_failed)
        vg_log(VG_LOG_WARN, "status file in %s not written: %s (vigil-agent --health will fail)",
               a->cfg.state_dir, strerror(-r));
    else if (r == 0 && a->status_failed)
        vg_log(VG_LOG_INFO, "status file in %s written again", a->cfg.state_dir);
    a->status_failed = r < 0;
    return 0;
}

/*
 * The main loop. A turn serves, in this order: the link and the signals, each collector's fd,
 * the evidence worker's fd; then the timers: evidence left to move, the executor's ping, and
 * each collector's interval (the first run at once), in the collectors' order. run_loop adds
 * the end of the turn: the batch and the link's own timers.
 */
static int start_loop(struct agent *a)
{
    a->loop = vg_loop_new();
    if (!a->loop)
        return -ENOMEM;
    int r = watch_link_and_signals(a->loop, a);
    for (size_t i = 0; r == 0 && i < a->ncollectors; i++) {
        struct agent_collector *ac = &a->collectors[i];
        int fd = ac->c.fd && ac->c.on_readable ? ac->c.fd(ac->c.self) : -1;
        if (fd >= 0)
            r = vg_loop_add_fd(a->loop, fd, on_collector_readable, ac);
    }
    if (r == 0)
        r = vg_loop_add_fd(a->loop, evidence_fd(a->evidence), on_evidence_readable, a);
    if (r == 0)
        r = vg_loop_add_fd(a->loop, privsep_fd(a->privsep), on_executor_readable, a);
    if (r < 0)
        return r;
    a->evidence_timer = vg_loop_add_timer(a->loop, 0, on_evidence_due, a);
    if (a->evidence_timer < 0)
        return a->evidence_timer;
    r = vg_loop_add_timer(a->loop, a->cfg.heartbeat_interval_ms, on_ping_due, a);
    if (r > 0)
        r = vg_loop_add_timer(a->loop, AGENT_STATUS_INTERVAL_MS, on_status_due, a);
    if (r > 0)
        r = vg_loop_timer_due_now(a->loop, r);
    for (size_t i = 0; r >= 0 && i < a->ncollectors; i++) {
        struct agent_collector *ac = &a->collectors[i];
        if (!ac->c.run || ac->c.interval_ms <= 0)
            continue;
        r = vg_loop_add_timer(a->loop, ac->c.interval_ms, on_collector_due, ac);
        if (r > 0)
            r = vg_loop_timer_due_now(a->loop, r);
    }
    return r < 0 ? r : 0;
}

static int block_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
        return -1;
    signal(SIGPIPE, SIG_IGN);
    return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

static int start(struct agent *a)
{
    char err[1024];
    bool created;

    a->started_mono = vg_mono_ms();
    if (a->cfg.enrollment_secret_file[0] &&
        vg_secret_file_read(a->cfg.enrollment_secret_file, &a->enroll_secret, &a->enroll_secret_len,
                            err, sizeof(err)) < 0) {
        vg_log(VG_LOG_ERROR, "%s", err);
        return EXIT_CONFIG;
    }
    if (prepare_state_dir(&a->cfg) < 0)
        return EXIT_OSERR;

    char *exec_path =
        a->cfg.executor_path[0] ? strdup(a->cfg.executor_path) : default_executor_path();
    if (!exec_path) {
        vg_log(VG_LOG_ERROR, "cannot locate vigil-agent-exec; set executor_path");
        return EXIT_OSERR;
    }
    /* Probe modules are mapped while we can still read them wherever they are installed. */
    struct probes_kind_config probe_kinds[PROBE_KINDS];
    probe_kinds_from_config(a, probe_kinds);
    if (probes_preload(probe_kinds, PROBE_KINDS, a->cfg.probe_dir, err, sizeof(err)) < 0) {
        free(exec_path);
        vg_log(VG_LOG_ERROR, "probes: %s", err);
        return EXIT_CONFIG;
    }
    a->privsep = privsep_start_config(exec_path, a->config_path, a->cfg.user, a->cfg.allow_root,
                                      err, sizeof(err));
    free(exec_path);
    if (!a->privsep) {
        vg_log(VG_LOG_ERROR, "%s", err);
        return EXIT_OSERR;
    }
    vg_log(VG_LOG_INFO, "executor pid=%d; network side runs as uid=%d",
           (int)privsep_executor_pid(a->privsep), (int)getuid());
    privsep_set_report_handler(a->privsep, on_executor_report, a);
    privsep_set_output_handler(a->privsep, on_executor_output, a);

    /* From here on: unprivileged. */
    char outputs_dir[PATH_MAX];
    snprintf(outputs_dir, sizeof(outputs_dir), "%s/outputs", a->cfg.state_dir);
    a->outputs = cmd_output_new(outputs_dir, err, sizeof(err));
    if (!a->outputs) {
        vg_log(VG_LOG_ERROR, "command outputs: %s", err);
        return EXIT_OSERR;
    }
    char key_path[PATH_MAX];
    snprintf(key_path, sizeof(key_path), "%s/agent.key", a->cfg.state_dir);
    if (vg_keypair_load_or_create(key_path, &a->keys, &created, err, sizeof(err)) < 0) {
        vg_log(VG_LOG_ERROR, "%s", err);
        return EXIT_CONFIG;
    }
    vg_agent_id_from_key(a->keys.public_key, a->id);
    vg_log(VG_LOG_INFO, "agent=%s node=%s key %s public=%s", a->id, a->cfg.node,
           created ? "created" : "loaded", a->keys.public_key);

    if (a->cfg.enrollment_token[0]) {
        vg_token_from_hex(a->cfg.enrollment_token, a->token);
        a->has_token = true;
    } else if (a->enroll_secret) {
        vg_token_compute(a->enroll_secret, a->enroll_secret_len, a->keys.public_key, a->token);
        a->has_token = true;
    }

    char spool_dir[PATH_MAX];
    snprintf(spool_dir, sizeof(spool_dir), "%s/spool", a->cfg.state_dir);
    struct spool_limits limits = {
        .max_bytes = (uint64_t)a->cfg.spool_max_bytes,
        .segment_bytes = (uint64_t)a->cfg.spool_segment_bytes,
        .fsync = a->cfg.spool_fsync,
    };
    a->spool = spool_open(spool_dir, &limits, err, sizeof(err));
    if (!a->spool) {
        vg_log(VG_LOG_ERROR, "spool: %s", err);
        return EXIT_OSERR;
    }
    struct spool_stats st;
    spool_stats(a->spool, &st);
    vg_log(VG_LOG_INFO, "spool %s: %llu messages waiting, next seq %llu", spool_dir,
           (unsigned long long)st.depth, (unsigned long long)st.next_seq);

    a->batch = sigbuf_new();
    a->thresholds = thresholds_from_config(&a->cfg);
    if (!a->batch || !a->thresholds) {
        vg_log(VG_LOG_ERROR, "out of memory");
        return EXIT_OSERR;
    }
    int code = start_collectors(a);
    if (code != 0)
        return code;
    a->executor_ok = true;

    a->zmq_ctx = zmq_ctx_new();
    struct link_config lcfg = {
        .endpoint = a->cfg.coordinator_endpoint,
        .server_public_key = a->cfg.coordinator_public_key,
        .keys = &a->keys,
        .agent_id = a->id,
        .node = a->cfg.node,
        .token = a->has_token ? a->token : NULL,
        .heartbeat_interval_ms = a->cfg.heartbeat_interval_ms,
        .max_inflight = a->cfg.link_max_inflight,
        .ack_timeout_ms = a->cfg.link_ack_timeout_ms,
        .reconnect_min_ms = a->cfg.link_reconnect_min_ms,
        .reconnect_max_ms = a->cfg.link_reconnect_max_ms,
        .on_collect = on_collect,
        .on_command = on_command,
        .userdata = a,
    };
    if (actions_info_build(a->cfg.catalog, &a->action_infos, &a->naction_infos) < 0) {
        vg_log(VG_LOG_ERROR, "out of memory");
        return EXIT_OSERR;
    }
    lcfg.actions = a->action_infos;
    lcfg.nactions = a->naction_infos;
    lcfg.role = a->cfg.role;
    a->link = a->zmq_ctx ? link_new(a->zmq_ctx, &lcfg, a->spool, err, sizeof(err)) : NULL;
    if (!a->link) {
        vg_log(VG_LOG_ERROR, "%s", a->zmq_ctx ? err : "zmq context");
        return EXIT_OSERR;
    }
    int r = start_loop(a);
    if (r < 0) {
        vg_log(VG_LOG_ERROR, "event loop: %s", strerror(-r));
        return EXIT_OSERR;
    }
    return 0;
}

/*
 * The executor stopped answering (privsep.c has closed the channel). The network side dropped
 * its privileges at start and cannot start a root executor again, and an agent that can no
 * longer act must not carry on looking healthy. So: agent.executor.up = 0 goes into the spool
 * at once with everything measured so far, the link gets up to EXECUTOR_LOST_FLUSH_MS to have
 * the spool acknowledged, and the agent exits EXIT_EXECUTOR_LOST for its supervisor (systemd,
 * Kubernetes) to restart it whole. What is not acknowledged by then stays in the spool and is
 * sent by the next start. SIGINT/SIGTERM cut the wait short.
 */
static int executor_lost(struct agent *a)
{
    struct spool_stats st;

    vg_log(VG_LOG_ERROR,
           "executor pid=%d does not answer and cannot be restarted without privileges: "
           "reporting agent.executor.up=0, then exiting with %d for the supervisor to restart "
           "the agent",
           (int)privsep_executor_pid(a->privsep), EXIT_EXECUTOR_LOST);
    link_set_executor_ok(a->link, false);
    struct collect_ctx ctx = collect_begin(a);
    collect_self(a, &ctx);
    flush_batch(a);

    /* A loop of its own with only the link and the signals: no collector, no ping. */
    vg_loop_t *drain = vg_loop_new();
    if (!drain || watch_link_and_signals(drain, a) < 0) {
        vg_log(VG_LOG_ERROR, "out of memory: not waiting for the spool's acknowledgement");
        vg_loop_destroy(&drain);
    }
    int64_t deadline = vg_mono_ms() + EXECUTOR_LOST_FLUSH_MS;
    bool stopping = false;
    for (;;) {
        spool_stats(a->spool, &st);
        int64_t now = vg_mono_ms();
        if (!drain || st.depth == 0 || now >= deadline || stopping)
            break;
        int64_t wait = link_next_timeout(a->link);
        if (deadline - now < wait)
            wait = deadline - now;
        int r = vg_loop_run_once(drain, wait > 0 ? wait : 0);
        if (r < 0)
            break;
        stopping = r > 0;
        link_tick(a->link);
    }
    vg_loop_destroy(&drain);
    if (st.depth == 0)
        vg_log(VG_LOG_INFO, "spool flushed: the coordinator acknowledged everything; exit %d",
               EXIT_EXECUTOR_LOST);
    else if (stopping)
        vg_log(VG_LOG_WARN,
               "spool not flushed (stopped by a signal): %llu messages left for the "
               "next start; exit %d",
               (unsigned long long)st.depth, EXIT_EXECUTOR_LOST);
    else
        vg_log(VG_LOG_WARN,
               "spool not flushed in %d s: %llu messages left for the next start; "
               "exit %d",
               EXECUTOR_LOST_FLUSH_MS / 1000, (unsigned long long)st.depth, EXIT_EXECUTOR_LOST);
    return EXIT_EXECUTOR_LOST;
}

/* How long a turn may sleep besides the loop's timers: until the link's next deadline, or
 * until the batch is batch_interval old. */
static int64_t turn_wait(const struct agent *a)
{
    int64_t wait = link_next_timeout(a->link);
    if (a->batch_started) {
        int64_t batch_left = a->batch_started + a->cfg.batch_interval_ms - vg_mono_ms();
        if (batch_left < wait)
            wait = batch_left;
    }
    return wait > 0 ? wait : 0;
}

static int run_loop(struct agent *a)
{
    int r;
    while ((r = vg_loop_run_once(a->loop, turn_wait(a))) == 0) {
        collect_turn_end(a);
        link_tick(a->link);
    }
    if (r < 0) {
        vg_log(VG_LOG_ERROR, "poll: %s", zmq_strerror(-r));
        return EXIT_OSERR;
    }
    if (vg_loop_stop_code(a->loop) == EXIT_EXECUTOR_LOST)
        return executor_lost(a);
    vg_log(VG_LOG_INFO, "signal=%s stopping", strsignal(a->stop_signal));
    return 0;
}

static void stop(struct agent *a)
{
    /* A stopped agent is not healthy: --health says so at once instead of after 15 s. */
    if (a->loop)
        agent_status_remove(a->cfg.state_dir);
    /* What was measured but not yet batched goes to the spool, to be sent next time. */
    if (a->batch && a->spool)
        flush_batch(a);
    a->turn = (struct collect_ctx){0};
    sigbuf_destroy(&a->batch);
    vg_loop_destroy(&a->loop);
    evidence_destroy(&a->evidence); /* before the sources its captures read */
    cmd_output_destroy(&a->outputs);
    a->evidence_sources = (struct evidence_sources){0};
    a->probes = NULL;
    for (size_t i = a->ncollectors; i-- > 0;) {
        struct collector *c = &a->collectors[i].c;
        if (c->destroy)
            c->destroy(&c->self);
    }
    a->ncollectors = 0;
    flight_destroy(&a->flight); /* after the log collector that feeds it, before the podmap */
    podmap_destroy(&a->pods); /* after the collectors and evidence that borrow it */
    thresholds_destroy(&a->thresholds);
    link_destroy(&a->link);
    actions_info_free(&a->action_infos, a->naction_infos);
    if (a->zmq_ctx)
        zmq_ctx_term(a->zmq_ctx);
    spool_destroy(&a->spool);
    privsep_stop(&a->privsep);
    if (a->signal_fd >= 0)
        close(a->signal_fd);
    if (a->enroll_secret) {
        explicit_bzero(a->enroll_secret, a->enroll_secret_len);
        free(a->enroll_secret);
    }
    explicit_bzero(&a->keys, sizeof(a->keys));
    agent_config_free(&a->cfg);
    free(a->config_path);
    a->config_path = NULL;
}

/* --health / --ready: judges <state_dir>/status (status.h); 0 healthy (ready), 1 not. Only the
 * configuration's keys are read, not cross-checked: the probe asks about the agent running
 * now, which loaded the file when it started. */
static int health_check(const char *config_path, bool ready)
{
    struct agent_config cfg;
    struct agent_status st;
    char err[1024], why[512];

    memset(&cfg, 0, sizeof(cfg));
    if (vg_config_load(config_path, agent_config_keys, agent_config_nkeys, &cfg, err,
                       sizeof(err)) < 0) {
        printf("unhealthy: %s\n", err);
        vg_config_free(agent_config_keys, agent_config_nkeys, &cfg);
        return 1;
    }
    int r = agent_status_read(cfg.state_dir, &st, err, sizeof(err));
    vg_config_free(agent_config_keys, agent_config_nkeys, &cfg);
    if (r == -ENOENT) {
        printf("unhealthy: the agent is not running (%s)\n", err);
        return 1;
    }
    if (r < 0) {
        printf("unhealthy: %s\n", err);
        return 1;
    }
    bool ok = agent_status_check(&st, vg_wall_ms(), ready, why, sizeof(why));
    printf("%s\n", why);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    const char *config_path = "/etc/vigil/agent.yaml";
    bool check_only = false;
    int health = 0; /* 'H' --health, 'R' --ready */
    struct agent a = {.signal_fd = -1};
    char err[1024];
    enum vg_log_level level;
    int opt;

    static const struct option long_options[] = {
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"health", no_argument, NULL, 'H'},
        {"ready", no_argument, NULL, 'R'},
        {NULL, 0, NULL, 0},
    };
    while ((opt = getopt_long(argc, argv, "c:nVh", long_options, NULL)) != -1) {
        switch (opt) {
        case 'H':
        case 'R':
            health = opt;
            break;
        case 'c':
            config_path = optarg;
            break;
        case 'n':
            check_only = true;
            break;
        case 'V':
            printf("vigil-agent %s\n", VIGIL_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind != argc || (health && check_only)) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (health)
        return health_check(config_path, health == 'R');
    vg_log_init("vigil-agent", VG_LOG_INFO, !isatty(STDERR_FILENO));
    /* Probe and capture threads allocate little: one malloc arena keeps glibc from giving
     * each thread its own (every arena is anonymous memory the agent keeps). */
    mallopt(M_ARENA_MAX, 1);
    if (agent_config_load(config_path, &a.cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "vigil-agent: %s\n", err);
        agent_config_free(&a.cfg);
        return EXIT_CONFIG;
    }
    if (check_only) {
        int code = check_sources(&a.cfg, config_path);
        if (code == 0)
            printf("%s: configuration OK\n", config_path);
        agent_config_free(&a.cfg);
        return code;
    }
    vg_log_level_parse(a.cfg.log_level, &level);
    vg_log_threshold = level;
    a.config_path = realpath(config_path, NULL);
    if (!a.config_path) {
        fprintf(stderr, "vigil-agent: %s: %s\n", config_path, strerror(errno));
        agent_config_free(&a.cfg);
        return EXIT_CONFIG;
    }

    a.signal_fd = block_signals();
    if (a.signal_fd < 0) {
        vg_log(VG_LOG_ERROR, "signalfd: %s", strerror(errno));
        agent_config_free(&a.cfg);
        free(a.config_path);
        return EXIT_OSERR;
    }
    int code = start(&a);
    if (code == 0) {
        vg_log(VG_LOG_INFO, "started version=%s coordinator=%s", VIGIL_VERSION,
               a.cfg.coordinator_endpoint);
        code = run_loop(&a);
    }
    stop(&a);
    return code;
}
