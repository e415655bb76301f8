/*
 * vigil-coordinator: wires the modules together and runs the loop.
 *
 * Exit codes (also in docs/operations.md):
 *   0  stopped by SIGINT/SIGTERM        64 usage error
 *   69 database unreachable at start   71 cannot listen / OS error
 *   78 configuration error              70 internal error
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "admin.h"
#include "checkpoint_hook.h"
#include "coord_config.h"
#include "digest_openssl.h"
#include "correlate.h"
#include "escalate.h"
#include "evloop.h"
#include "http.h"
#include "incidents.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "promql.h"
#include "registry.h"
#include "remediate.h"
#include "retention.h"
#include "roles.h"
#include "router.h"
#include "runbook_load.h"
#include "sign.h"
#include "status_http.h"
#include "steps.h"
#include "store.h"
#include "timeutil.h"
#include "watchdog.h"
#include "zap.h"

#define EXIT_USAGE 64
#define EXIT_UNAVAILABLE 69
#define EXIT_SOFTWARE 70
#define EXIT_OSERR 71
#define EXIT_CONFIG 78

#define TICK_MS 1000
/* Symptoms are evaluated four times a second: a fault seen in a sample becomes an event within
 * a quarter second of its commit (the detection target is p50 <= 0.3 s end to end). */
#define EVALUATE_MS 250
/* A batch that feeds a symptom evaluates at once, but not within this of the last evaluation. */
#define EVALUATE_EVENT_MIN_MS 20

static void usage(FILE *out)
{
    fprintf(out, "usage: vigil-coordinator [-n] [--print-signing-key] [-c FILE]\n"
                 "\n"
                 "Receives agents' signals over CURVE ZeroMQ, stores them in PostgreSQL and\n"
                 "serves vigilctl.\n"
                 "\n"
                 "  -c FILE   configuration file (default /etc/vigil/coordinator.yaml)\n"
                 "  -n        check the configuration and exit; with an external store.url, connect\n"
                 "            and warn when its login holds more rights than the coordinator needs\n"
                 "  --print-signing-key\n"
                 "            print the coordinator's Ed25519 signing public key (the line for\n"
                 "            the nodes' signer files; the key is made under state_dir if\n"
                 "            missing) and exit\n"
                 "  -V, --version  print the version and exit\n"
                 "  -h, --help     this help\n"
                 "\n"
                 "Ports: 7400 agents, 7401 vigilctl, 7480 HTTP (/healthz, /metrics).\n"
                 "Exit codes: 0 stopped, 64 usage, 69 database unreachable at start,\n"
                 "70 internal error, 71 cannot listen, 78 configuration error.\n"
                 "An annotated example configuration is in deploy/config/coordinator.yaml.\n");
}

/* The first admin operator comes from the configuration file: inserted when its key is not in
 * the store, and given admin.signing_public_key when it has no signing key yet (an operator from
 * before signing keys). A key that was revoked stays revoked: the configuration cannot bring it
 * back. */
static int ensure_initial_admin(const struct coord_config *cfg, store_t *store,
                                registry_t *registry)
{
    struct store_operator row = {0}, stored = {0};
    struct operator op = {0};
    char id[OPERATOR_ID_LEN + 1];

    if (cfg->admin_public_key[0] == '\0')
        return 0;
    const struct operator* known = registry_operator_by_key(registry, cfg->admin_public_key);
    if (known && (known->signing_key[0] || !cfg->admin_signing_public_key[0]))
        return 0;
    operator_id_from_key(cfg->admin_public_key, id);
    snprintf(row.id, sizeof(row.id), "%s", id);
    snprintf(row.name, sizeof(row.name), "%s", cfg->admin_name);
    snprintf(row.public_key, sizeof(row.public_key), "%s", cfg->admin_public_key);
    snprintf(row.signing_key, sizeof(row.signing_key), "%s", cfg->admin_signing_public_key);
    snprintf(row.role, sizeof(row.role), "admin");
    int r = store_operator_ensure(store, &row, &stored);
    if (r == -EEXIST) {
        /* Not fatal: the operators the store has can still work (and add a new admin). */
        if (known)
            vg_log(VG_LOG_ERROR,
                   "operator=%s id=%s: admin.signing_public_key not given to it: that signing "
                   "key is (or was) another operator's",
                   known->name, known->id);
        else
            vg_log(VG_LOG_ERROR,
                   "admin.public_key not added: admin.name \"%s\" is another active operator's "
                   "name, or admin.signing_public_key another operator's key (choose another "
                   "admin.name, or another key)",
                   cfg->admin_name);
        return 0;
    }
    if (r < 0)
        return r;
    if (stored.revoked) {
        vg_log(VG_LOG_WARN,
               "operator=%s id=%s: the configuration's admin key (admin.public_key) is revoked "
               "and stays revoked; remove it from the configuration or configure a new key",
               stored.name, stored.id);
        return 0;
    }
    /* What the store holds decides: a row that was already there keeps its id, name and role. */
    if (operator_role_parse(stored.role, &op.role) < 0) {
        vg_log(VG_LOG_WARN, "operator=%s id=%s role=%s: unknown role, operator ignored",
               stored.name, stored.id, stored.role);
        return 0;
    }
    snprintf(op.id, sizeof(op.id), "%s", stored.id);
    snprintf(op.name, sizeof(op.name), "%s", stored.name);
    snprintf(op.public_key, sizeof(op.public_key), "%s", stored.public_key);
    snprintf(op.signing_key, sizeof(op.signing_key), "%s", stored.signing_key);
    vg_log(VG_LOG_INFO, "operator=%s id=%s role=%s %s from the configuration", op.name, op.id,
           operator_role_name(op.role), known ? "given its signing key" : "added");
    return registry_operator_add(registry, &op);
}

static int block_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    /* Blocked before any thread starts, so every thread inherits the mask. */
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
        return -1;
    signal(SIGPIPE, SIG_IGN);
    return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

struct coordinator {
    struct coord_config cfg;
    struct vg_keypair keys;
    struct vg_signing_key signing_key; /* capsules: <state_dir>/coordinator.sign */
    remediate_t *remediate;            /* the admin thread's side of command capsules */
    char *enroll_secret;
    size_t enroll_secret_len;
    int signal_fd;
    http_server_t *http;
    status_server_t *status_page; /* NULL = disabled, or its port could not be bound */
    store_t *store;
    registry_t *registry;
    void *zmq_ctx;
    zap_t *zap;
    router_t *router;
    admin_t *admin;
    correlate_t *correlate;
    store_incidents_t *incidents; /* the incident layer's own connection (main thread) */
    promql_t *promql;             /* NULL = no prometheus.url */
    alertmanager_t *alerts;       /* borrowed from the HTTP server; NULL = webhook disabled */
    escalate_t *escalate;         /* NULL = paging not configured */
    notify_t *notify;             /* delivers what escalate inserts */
    steps_watchlist_t *watchlist; /* automatic runbook steps until their verify verdict */
    watchdog_t *watchdog;         /* the dead-man's switch; NULL when watchdog.url is empty */
    checkpoint_hook_t *checkpoint_hook; /* NULL when evidence.checkpoint_webhook is empty */
    retention_t *retention;       /* the retention thread (retention.h) */
    vg_loop_t *loop;              /* the main loop, while it runs */
    int evaluate_timer;           /* its evaluate timer */
    int64_t evaluated_mono_ms;    /* when evaluate last ran */
    bool evaluate_pending;        /* a batch fed a symptom too soon after it: evaluate_soon */
};

/* Every symptom transition is logged in one line. */
static void log_symptom_event(const struct rule_event *ev)
{
    vg_log(VG_LOG_INFO,
           "symptom runbook=%s symptom=%s fingerprint=%s state=%s previous=%s severity=%s "
           "nodes=%zu/%zu reason=\"%s\"",
           ev->runbook->id, ev->symptom->id, ev->fingerprint, rules_state_name(ev->state),
           rules_state_name(ev->previous), rb_severity_name(ev->severity), ev->nodes_firing,
           ev->nodes_total, ev->reason);
}

static enum incident_symptom_state incident_state(enum rule_state state)
{
    switch (state) {
    case RULE_CRITICAL:
        return INCIDENT_SYMPTOM_CRITICAL;
    case RULE_WARNING:
        return INCIDENT_SYMPTOM_WARNING;
    case RULE_OK:
        break;
    }
    return INCIDENT_SYMPTOM_OK;
}

/* The rule engine's transitions become incidents: a critical symptom opens (or reopens, or
 * joins) the incident of its fingerprint, a warning or a clear is recorded on an open one.
 * Runs on the main loop inside correlate_evaluate; transitions are rare, so the one
 * transaction each costs little. */
static void symptom_to_incident(void *userdata, const struct rule_event *ev)
{
    struct coordinator *c = userdata;
    store_incidents_t *store = c->incidents;
    const char *node = ev->node;
    char fingerprint[STORE_INCIDENT_FINGERPRINT_MAX];
    char reason[INCIDENT_NOTE_MAX];
    if (incidents_fingerprint(ev->runbook->id, node, fingerprint, sizeof(fingerprint)) < 0) {
        vg_log(VG_LOG_ERROR, "symptom fingerprint=%s: incident key too long", ev->fingerprint);
        return;
    }
    snprintf(reason, sizeof(reason), "%s: %s", ev->symptom->id, ev->reason);
    struct incident_symptom s = {
        .fingerprint = fingerprint,
        .runbook = ev->runbook->id,
        .symptom = ev->symptom->id,
        .title = ev->runbook->title,
        .severity = (int)ev->severity,
        .state = incident_state(ev->state),
        .reason = reason,
        .nodes = ev->firing,
        .n_nodes = ev->n_firing,
        .nodes_firing = (uint32_t)ev->nodes_firing,
        .nodes_total = (uint32_t)ev->nodes_total,
        .at_ms = ev->at_ms,
        .reopen_window_ms = ev->runbook->reopen_window_ms,
        .depends_on = (const char *const *)ev->runbook->depends_on,
        .n_depends = ev->runbook->ndepends,
    };
    struct incident_result res;

    log_symptom_event(ev);
    int r = incidents_on_symptom(store, &s, &res);
    if (r < 0) {
        vg_log(VG_LOG_ERROR, "incident for fingerprint=%s not recorded: %s", ev->fingerprint,
               strerror(-r));
        return;
    }
    if (res.outcome == INCIDENT_OPENED || res.outcome == INCIDENT_REOPENED)
        vg_log(VG_LOG_WARN, "incident %s id=%llu runbook=%s severity=SEV%d fingerprint=%s",
               res.outcome == INCIDENT_OPENED ? "opened" : "reopened", (unsigned long long)res.id,
               ev->runbook->id, res.severity, ev->fingerprint);
    /* After the incident's commit: its runbook's investigate entries become collections and its
     * resolve steps requests, on the admin thread, which has a store connection of its own, so
     * the loop does not wait for them. */
    const char *one[1] = {node};
    const char *const *nodes = node[0] ? one : (const char *const *)ev->firing;
    size_t nnodes = node[0] ? 1 : ev->n_firing;
    bool severe = res.severity >= 1 && res.severity <= 2; /* SEV1, SEV2: freeze the recorders */
    if ((res.outcome == INCIDENT_OPENED || res.outcome == INCIDENT_REOPENED) &&
        (ev->runbook->nresolve > 0 || ev->runbook->ninvestigate > 0 || severe) && c->admin) {
        struct steps_job *job = steps_job_new(res.id, ev->runbook, node, nodes, nnodes);
        if (job) {
            job->flight = severe;
            admin_runbook_steps(c->admin, &job);
        }
        else
            vg_log(VG_LOG_ERROR, "incident id=%llu: runbook steps not run: out of memory",
                   (unsigned long long)res.id);
    } else if (res.outcome == INCIDENT_UPDATED && !node[0] && ev->n_firing > 0 &&
               ev->runbook->ninvestigate > 0 && c->admin) {
        /* Across nodes, the symptom may now fire on more: those are investigated too. */
        struct steps_job *job = steps_job_joined(res.id, ev->runbook, ev->firing, ev->n_firing);
        if (job)
            admin_runbook_steps(c->admin, &job);
    } else if (res.outcome == INCIDENT_ATTACHED)
        vg_log(VG_LOG_INFO, "symptom fingerprint=%s attached to root incident id=%llu",
               ev->fingerprint, (unsigned long long)res.id);
    else if (res.severity_raised) {
        vg_log(VG_LOG_WARN, "incident id=%llu severity raised to SEV%d", (unsigned long long)res.id,
               res.severity);
        struct steps_job *job =
            severe && c->admin ? steps_job_flight(res.id, ev->runbook, nodes, nnodes) : NULL;
        if (job)
            admin_runbook_steps(c->admin, &job);
    }
}

/* A committed batch that feeds a symptom makes the evaluation due now, instead of at the next
 * 250 ms tick, so fault -> incident -> runbook step does not wait a tick (the agent sends a
 * crossing at once). At most one evaluation per loop turn, and none within
 * EVALUATE_EVENT_MIN_MS of the last, so a busy ingest cannot turn it into a spin: a batch that
 * comes sooner leaves it pending for evaluate_soon. */
static void observe_signals(void *userdata, const char *node, const Vigil__SignalBatch *batch)
{
    struct coordinator *c = userdata;
    if (correlate_observe(c->correlate, node, batch) == 0 || !c->loop)
        return;
    if (vg_mono_ms() - c->evaluated_mono_ms >= EVALUATE_EVENT_MIN_MS)
        vg_loop_timer_due_now(c->loop, c->evaluate_timer);
    else
        c->evaluate_pending = true;
}

static void observe_agent_state(void *userdata, const char *node, bool up, int64_t at_ms)
{
    struct coordinator *c = userdata;
    if (up)
        correlate_node_up(c->correlate, node, at_ms);
    else
        correlate_node_down(c->correlate, node, at_ms);
}

static void observe_promql(void *userdata, const char *signal, double value, int64_t ts_ms)
{
    correlate_observe_value(userdata, "", signal, value, ts_ms);
}

static void observe_alert(void *userdata, const char *node, const char *name, double value,
                          int64_t ts_ms)
{
    correlate_observe_value(userdata, node, name, value, ts_ms);
}

/* The poller copies the PromQL symptoms of the set in force (loaded or reloaded). */
static void promql_sync(struct coordinator *c)
{
    const struct rb_set *set = correlate_runbooks(c->correlate);

    if (!c->promql)
        promql_warn_unpolled(set);
    else if (promql_set_queries(c->promql, set) < 0)
        vg_log(VG_LOG_ERROR, "promql: out of memory; polling the previous queries");
}

/* The runbook directory to load: the configured one, or "" when it is the packaged default
 * and that is not installed (a coordinator without runbooks is still a coordinator). */
static const char *runbooks_dir(const struct coord_config *cfg)
{
    struct stat st;

    if (strcmp(cfg->runbooks_dir, COORD_RUNBOOKS_DIR_DEFAULT) == 0 &&
        stat(cfg->runbooks_dir, &st) < 0 && errno == ENOENT) {
        vg_log(VG_LOG_WARN, "runbooks: %s does not exist; running without runbooks",
               cfg->runbooks_dir);
        return "";
    }
    return cfg->runbooks_dir;
}

/* SIGHUP: a set that does not load is refused whole; the last good one keeps running. */
static void reload_runbooks(struct coordinator *c)
{
    char err[1024];

    if (correlate_dir(c->correlate)[0] == '\0') {
        vg_log(VG_LOG_INFO, "SIGHUP: no runbook directory in use, nothing to reload");
        return;
    }
    if (correlate_reload(c->correlate, err, sizeof(err)) < 0) {
        metrics_runbook_reload_failed();
        vg_log(VG_LOG_ERROR, "runbooks not reloaded, keeping the %zu in force: %s",
               correlate_runbook_count(c->correlate), err);
        return;
    }
    vg_log(VG_LOG_INFO, "runbooks reloaded: %zu from %s", correlate_runbook_count(c->correlate),
           correlate_dir(c->correlate));
    /* A runbook naming a policy that does not exist pages by its severity's route meanwhile. */
    if (paging_check_runbooks(&c->cfg.paging, correlate_runbooks(c->correlate), err,
                              sizeof(err)) < 0)
        vg_log(VG_LOG_ERROR, "paging: %s", err);
    statuspage_check_runbooks(&c->cfg.status_page, correlate_runbooks(c->correlate));
    promql_sync(c);
    admin_set_runbooks(c->admin, correlate_runbooks(c->correlate));
}

/* ---- the main loop's handlers (vg_loop: sockets in this order, then timers) ---- */

/* The registry is shared with the admin thread (registry.h): held while ZAP and the router
 * serve, never while the rule engine or escalation run. */
static int serve_zap(vg_loop_t *loop, void *userdata)
{
    (void)loop;
    struct coordinator *c = userdata;
    registry_lock(c->registry);
    zap_handle(c->zap);
    registry_unlock(c->registry);
    return 0;
}

static int serve_agents(vg_loop_t *loop, void *userdata)
{
    (void)loop;
    struct coordinator *c = userdata;
    registry_lock(c->registry);
    router_handle(c->router);
    registry_unlock(c->registry);
    return 0;
}

/* Collect requests the admin thread queued: sent now, not at the next tick. */
static int serve_requests(vg_loop_t *loop, void *userdata)
{
    (void)loop;
    struct coordinator *c = userdata;
    registry_lock(c->registry);
    router_send_requests(c->router);
    registry_unlock(c->registry);
    return 0;
}

static int serve_signals(vg_loop_t *loop, void *userdata)
{
    struct coordinator *c = userdata;
    struct signalfd_siginfo si;
    while (read(c->signal_fd, &si, sizeof(si)) == sizeof(si)) {
        if (si.ssi_signo == SIGHUP) {
            reload_runbooks(c);
            continue;
        }
        vg_log(VG_LOG_INFO, "signal=%s stopping", strsignal((int)si.ssi_signo));
        vg_loop_stop(loop, 0);
        return 0;
    }
    return 0;
}

static int evaluate(vg_loop_t *loop, void *userdata)
{
    (void)loop;
    struct coordinator *c = userdata;
    c->evaluated_mono_ms = vg_mono_ms();
    c->evaluate_pending = false;
    admin_node_changes(c->admin); /* approvals and revocations since the last pass */
    if (c->promql)
        promql_drain(c->promql, observe_promql, c->correlate);
    alertmanager_drain(c->alerts, observe_alert, c->correlate);
    correlate_evaluate(c->correlate, vg_wall_ms());
    /* Right after the evaluation: a page goes out within one pass of the opening. */
    if (c->escalate &&
        escalate_tick(c->escalate, correlate_runbooks(c->correlate), vg_wall_ms()) > 0)
        notify_kick(c->notify);
    return 0;
}

/* ---- verify-then-inverse (docs/remediation.md, "Runbook steps") ---- */

#define ESCALATE_RETRY_MS 10000
/* How far back a restart looks for automatic commands still waiting for their verdict. */
#define REWATCH_WINDOW_MS (60LL * 60 * 1000)

static void watch_note(struct coordinator *c, const struct steps_watch *w, const char *state,
                       const char *text)
{
    vg_log(VG_LOG_WARN, "incident=%llu command=%s action=%s node=%s %s: %s",
           (unsigned long long)w->incident_id, w->request_id, w->action, w->node, state, text);
    int r = store_command_step_note(c->store, w->incident_id, w->action, "auto", state,
                                    w->request_id, text);
    if (r < 0)
        vg_log(VG_LOG_WARN, "incident=%llu command=%s not on the timeline: %s",
               (unsigned long long)w->incident_id, w->request_id, strerror(-r));
}

/* The escalation a verdict asks for; true when done with (or given up). */
static bool watch_escalate(struct coordinator *c, struct steps_watch *w, int64_t now)
{
    int r = escalate_request(c->incidents, w->incident_id, "vigil");
    if (r == -EINPROGRESS && now < w->escalate_until_ms)
        return false; /* adopted by the escalation engine within a second: next tick */
    if (r < 0 && r != -EALREADY)
        vg_log(VG_LOG_WARN, "incident=%llu command=%s not escalated: %s",
               (unsigned long long)w->incident_id, w->request_id, strerror(-r));
    return true;
}

/* One watched command, once a tick: true when its verdict is in and acted upon. */
static bool check_watch(struct steps_watch *w, void *userdata)
{
    struct coordinator *c = userdata;
    int64_t now = vg_wall_ms();
    if (w->escalate_until_ms)
        return watch_escalate(c, w, now);
    struct store_command_info info;
    int r = store_command_get(c->store, w->request_id, false, false, &info);
    if (r == -ENOENT)
        return true;
    if (r < 0)
        return false;
    bool done = strcmp(info.state, "done") == 0;
    if (done && w->done_at_ms == 0)
        w->done_at_ms = now;
    char why[512] = "", text[1024];
    int verified =
        done ? correlate_verified(c->correlate, w->runbook, w->verify_node, now, why, sizeof(why))
             : 0;
    enum steps_verdict v = steps_judge(info.state, info.has_exit, info.exit_status, verified, now,
                                       w->done_at_ms, w->within_ms);
    bool finished = v != STEPS_WAIT;
    enum steps_canary canary = STEPS_CANARY_WAIT;
    char canary_why[512] = "";
    if (w->rest[0]) {
        /* The canary proves itself on its own node before the others are reached. */
        const struct rb_set *set = correlate_runbooks(c->correlate);
        bool per_node = steps_verifies_per_node(set ? runbooks_find(set, w->runbook) : NULL);
        char node_why[512] = "";
        int node_verified = done && per_node ? correlate_verified(c->correlate, w->runbook, w->node,
                                                                  now, node_why, sizeof(node_why))
                                             : 0;
        canary = steps_canary_judge(info.state, info.has_exit, info.exit_status, per_node,
                                    node_verified, now, w->done_at_ms, w->within_ms);
        if (canary == STEPS_CANARY_GO)
            snprintf(canary_why, sizeof(canary_why), "%s",
                     per_node ? node_why : "done with exit 0; the runbook cannot verify one node");
    }
    if (canary == STEPS_CANARY_GO) {
        struct steps_job *rest =
            steps_job_after_canary(w->incident_id, w->runbook, w->verify_node, w->rest, w->action,
                                   info.args, info.nargs, w->within_ms);
        snprintf(text, sizeof(text), "canary %s on %s verified (%s): the other nodes now",
                 w->action, w->node, canary_why);
        watch_note(c, w, "canary-verified", text);
        if (rest)
            admin_runbook_steps(c->admin, &rest);
        else
            vg_log(VG_LOG_ERROR, "command=%s the other nodes not requested: out of memory",
                   w->request_id);
        w->rest[0] = '\0';
    } else if (canary == STEPS_CANARY_STOP) {
        snprintf(text, sizeof(text), "canary %s on %s %s: the other nodes are not reached",
                 w->action, w->node, v == STEPS_FAILED ? "failed" : "did not verify in time");
        watch_note(c, w, "canary-failed", text);
        w->rest[0] = '\0';
    }
    if (v == STEPS_VERIFIED) {
        snprintf(text, sizeof(text), "%s on %s verified: %s", w->action, w->node, why);
        watch_note(c, w, "verified", text);
    } else if (v == STEPS_FAILED) {
        if (done)
            snprintf(text, sizeof(text), "%s on %s exited %d: escalated", w->action, w->node,
                     info.exit_status);
        else
            snprintf(text, sizeof(text), "%s on %s is %s: escalated", w->action, w->node,
                     info.state);
        watch_note(c, w, "failed", text);
        w->escalate_until_ms = now + ESCALATE_RETRY_MS;
        finished = watch_escalate(c, w, now);
    } else if (v == STEPS_NOT_VERIFIED) {
        struct steps_job *job = NULL;
        if (w->inverse[0])
            job = steps_job_inverse(w->incident_id, w->runbook, w->node, w->inverse, info.args,
                                    info.nargs);
        snprintf(text, sizeof(text), "%s on %s did not verify within %llds (%.400s): %s%s%s",
                 w->action, w->node, (long long)(w->within_ms / 1000), why[0] ? why : "not yet",
                 w->inverse[0] ? "its inverse " : "no inverse declared; ", w->inverse,
                 w->inverse[0] ? " requested, escalated" : "escalated");
        watch_note(c, w, "not-verified", text);
        if (job)
            admin_runbook_steps(c->admin, &job);
        else if (w->inverse[0])
            vg_log(VG_LOG_ERROR, "command=%s inverse %s not requested: out of memory",
                   w->request_id, w->inverse);
        w->escalate_until_ms = now + ESCALATE_RETRY_MS;
        finished = watch_escalate(c, w, now);
    }
    store_command_info_clear(&info);
    return finished;
}

/* After a restart: the automatic commands that were waiting for their verify verdict are
 * watched again (their window starts anew when they are seen done). Only runbook steps: an
 * inverse is never watched, and a canary's other nodes are not requested again. */
static void rewatch_one(void *userdata, const struct store_unjudged_command *u)
{
    struct coordinator *c = userdata;
    const struct rb_set *set = correlate_runbooks(c->correlate);
    const struct rb_runbook *rb = set ? runbooks_find(set, u->runbook) : NULL;
    const struct rb_action *step = NULL;
    for (size_t i = 0; rb && i < rb->nresolve && !step; i++)
        if (strcmp(rb->resolve[i].name, u->action) == 0)
            step = &rb->resolve[i];
    if (!step)
        return;
    struct steps_watch w = {.incident_id = u->incident_id,
                            .within_ms = step->verify_within_ms > 0 ? step->verify_within_ms
                                                                    : RB_DEFAULT_VERIFY_WITHIN_MS};
    const char *fp_node = incidents_fingerprint_node(u->fingerprint);
    snprintf(w.request_id, sizeof(w.request_id), "%s", u->id);
    snprintf(w.runbook, sizeof(w.runbook), "%s", u->runbook);
    snprintf(w.verify_node, sizeof(w.verify_node), "%s", fp_node ? fp_node : "");
    snprintf(w.node, sizeof(w.node), "%s", u->node);
    snprintf(w.action, sizeof(w.action), "%s", u->action);
    snprintf(w.inverse, sizeof(w.inverse), "%s", u->inverse);
    if (steps_watchlist_add(c->watchlist, &w) == 0)
        vg_log(VG_LOG_INFO,
               "incident=%llu command=%s action=%s node=%s watched again for its verify",
               (unsigned long long)u->incident_id, u->id, u->action, u->node);
}

static void rewatch(struct coordinator *c)
{
    int r = store_commands_unjudged(c->store, vg_wall_ms() - REWATCH_WINDOW_MS, rewatch_one, c);
    if (r < 0)
        vg_log(VG_LOG_WARN, "automatic commands waiting for a verdict not read again (%s): "
               "they are not verified after this restart", strerror(-r));
}

/* Every EVALUATE_EVENT_MIN_MS: an evaluation a batch asked for too soon after the last one. */
static int evaluate_soon(vg_loop_t *loop, void *userdata)
{
    struct coordinator *c = userdata;
    if (c->evaluate_pending && vg_mono_ms() - c->evaluated_mono_ms >= EVALUATE_EVENT_MIN_MS)
        vg_loop_timer_due_now(loop, c->evaluate_timer);
    return 0;
}

static int tick(vg_loop_t *loop, void *userdata)
{
    (void)loop;
    struct coordinator *c = userdata;
    /* Before the health check: a private cluster that died is started again at once. */
    if (store_embedded_watch(c->store) > 0)
        metrics_embedded_pg_restarted();
    bool store_up = store_ping(c->store);
    metrics_store_up(store_up);
    watchdog_set_healthy(c->watchdog, store_up);
    metrics_store_outages(store_outages());
    registry_lock(c->registry);
    router_tick(c->router);
    registry_unlock(c->registry);
    /* Open incidents whose runbook's verify conditions held for their hold resolve themselves
     * (rules.h, rules_verified). */
    if (correlate_runbook_count(c->correlate) > 0)
        incidents_auto_resolve(c->incidents, correlate_verified, c->correlate, vg_wall_ms());
    if (c->watchlist)
        steps_watchlist_check(c->watchlist, check_watch, c);
    return 0;
}

static int run_loop(struct coordinator *c)
{
    vg_loop_t *loop = vg_loop_new();
    int r = loop ? 0 : -ENOMEM;

    /* ZAP first: handshakes wait on it. */
    if (r == 0)
        r = vg_loop_add_socket(loop, zap_socket(c->zap), serve_zap, c);
    if (r == 0)
        r = vg_loop_add_socket(loop, router_socket(c->router), serve_agents, c);
    if (r == 0)
        r = vg_loop_add_socket(loop, router_requests_socket(c->router), serve_requests, c);
    if (r == 0)
        r = vg_loop_add_socket(loop, router_commands_socket(c->router), serve_requests, c);
    if (r == 0)
        r = vg_loop_add_fd(loop, c->signal_fd, serve_signals, c);
    if (r == 0)
        r = vg_loop_add_timer(loop, EVALUATE_MS, evaluate, c);
    c->evaluate_timer = r;
    c->loop = r >= 0 ? loop : NULL;
    if (r >= 0)
        r = vg_loop_add_timer(loop, EVALUATE_EVENT_MIN_MS, evaluate_soon, c);
    if (r >= 0)
        r = vg_loop_add_timer(loop, TICK_MS, tick, c);
    if (r >= 0)
        r = vg_loop_run(loop);
    c->loop = NULL;
    vg_loop_destroy(&loop);
    if (r < 0) {
        vg_log(VG_LOG_ERROR, "main loop: %s", zmq_strerror(-r));
        return EXIT_SOFTWARE;
    }
    return r;
}

/* The coordinator's Ed25519 signing key file: beside the CURVE key, under state_dir. */
static void signing_key_path(const struct coord_config *cfg, char *out, size_t len)
{
    snprintf(out, len, "%s/coordinator.sign", cfg->state_dir);
}

/* --print-signing-key: the public key node owners pin in their signer files. */
static int print_signing_key(const struct coord_config *cfg)
{
    struct vg_signing_key key;
    char path[4096], err[1024];
    bool created = false;

    if (mkdir(cfg->state_dir, 0700) < 0 && errno != EEXIST) {
        fprintf(stderr, "vigil-coordinator: cannot create state directory %s: %s\n", cfg->state_dir,
                strerror(errno));
        return EXIT_OSERR;
    }
    signing_key_path(cfg, path, sizeof(path));
    if (vg_signing_key_load_or_create(path, &key, &created, err, sizeof(err)) < 0) {
        fprintf(stderr, "vigil-coordinator: %s\n", err);
        return EXIT_CONFIG;
    }
    printf("%s\n", key.public_b64);
    if (created)
        fprintf(stderr, "vigil-coordinator: created %s\n", path);
    vg_signing_key_wipe(&key);
    return 0;
}

static int start(struct coordinator *c)
{
    char err[1024];
    bool created;

    if (mkdir(c->cfg.state_dir, 0700) < 0 && errno != EEXIST) {
        vg_log(VG_LOG_ERROR, "cannot create state directory %s: %s", c->cfg.state_dir,
               strerror(errno));
        return EXIT_OSERR;
    }
    if (vg_keypair_load_or_create(c->cfg.server_key_file, &c->keys, &created, err, sizeof(err)) <
        0) {
        vg_log(VG_LOG_ERROR, "%s", err);
        return EXIT_CONFIG;
    }
    vg_log(VG_LOG_INFO, "server key %s %s public=%s", c->cfg.server_key_file,
           created ? "created" : "loaded", c->keys.public_key);
    char signing_path[4096];
    signing_key_path(&c->cfg, signing_path, sizeof(signing_path));
    if (vg_signing_key_load_or_create(signing_path, &c->signing_key, &created, err, sizeof(err)) <
        0) {
        vg_log(VG_LOG_ERROR, "%s", err);
        return EXIT_CONFIG;
    }
    /* The line node owners put in their signer files (docs/remediation.md). */
    vg_log(VG_LOG_INFO, "signing key %s %s public=%s", signing_path, created ? "created" : "loaded",
           c->signing_key.public_b64);
    if (c->cfg.enrollment_secret_file[0] &&
        vg_secret_file_read(c->cfg.enrollment_secret_file, &c->enroll_secret, &c->enroll_secret_len,
                            err, sizeof(err)) < 0) {
        vg_log(VG_LOG_ERROR, "%s", err);
        return EXIT_CONFIG;
    }

    c->signal_fd = block_signals();
    if (c->signal_fd < 0) {
        vg_log(VG_LOG_ERROR, "signalfd: %s", strerror(errno));
        return EXIT_OSERR;
    }
    metrics_init();
    const char *dir = runbooks_dir(&c->cfg);
    c->correlate = correlate_new(dir, err, sizeof(err));
    if (!c->correlate) {
        vg_log(VG_LOG_ERROR, "runbooks: %s", err);
        return EXIT_CONFIG;
    }
    correlate_set_absence_grace(c->correlate, c->cfg.runbooks_absence_grace_ms);
    if (dir[0])
        vg_log(VG_LOG_INFO, "runbooks: %zu loaded from %s", correlate_runbook_count(c->correlate),
               dir);
    else
        vg_log(VG_LOG_INFO, "runbooks: none loaded");
    if (c->cfg.prometheus_url[0]) {
        struct promql_config pcfg = {.url = c->cfg.prometheus_url,
                                     .timeout_ms = c->cfg.prometheus_timeout_ms,
                                     .token_file = c->cfg.prometheus_token_file};
        c->promql = promql_new(&pcfg, err, sizeof(err));
        if (!c->promql) {
            vg_log(VG_LOG_ERROR, "prometheus: %s", err);
            return EXIT_CONFIG;
        }
        vg_log(VG_LOG_INFO, "prometheus: PromQL symptoms evaluated against %s",
               c->cfg.prometheus_url);
    }
    promql_sync(c);
    if (paging_check_runbooks(&c->cfg.paging, correlate_runbooks(c->correlate), err,
                              sizeof(err)) < 0) {
        vg_log(VG_LOG_ERROR, "paging: %s", err);
        return EXIT_CONFIG;
    }
    statuspage_check_runbooks(&c->cfg.status_page, correlate_runbooks(c->correlate));
    c->http = http_server_start(c->cfg.http_address, (uint16_t)c->cfg.http_port,
                                (unsigned)c->cfg.http_max_per_client, err, sizeof(err));
    if (!c->http) {
        vg_log(VG_LOG_ERROR, "%s", err);
        return EXIT_OSERR;
    }

    struct store_config scfg = {
        .url = c->cfg.store_url,
        .owner_url = c->cfg.store_owner_url,
        .state_dir = c->cfg.state_dir,
        .pg_bin_dir = c->cfg.store_pg_bin_dir[0] ? c->cfg.store_pg_bin_dir : NULL,
        .start_timeout_ms = c->cfg.store_start_timeout_ms,
    };
    c->store = store_open(&scfg, err, sizeof(err));
    if (!c->store) {
        vg_log(VG_LOG_ERROR, "store: %s", err);
        return EXIT_UNAVAILABLE;
    }
    metrics_store_up(1);

    c->incidents = store_incidents_new(store_conninfo(c->store));
    if (!c->incidents) {
        vg_log(VG_LOG_ERROR, "incidents: cannot connect to the store");
        return EXIT_UNAVAILABLE;
    }
    correlate_set_handler(c->correlate, symptom_to_incident, c);

    /* Paging: the engine inserts notifications on the main loop, the notifier's thread
     * delivers them (escalate.h, notify.h). */
    if (paging_enabled(&c->cfg.paging)) {
        const struct paging_config *p = &c->cfg.paging;
        struct notify_config ncfg = {
            .conninfo = store_conninfo(c->store),
            .smtp_url = p->smtp_url,
            .smtp_from = p->smtp_from,
            .pagerduty_url = p->pagerduty_url,
            .webhook_secret_file = p->webhook_secret_file,
            .timeout_ms = p->notify_timeout_ms,
            .max_attempts = (int)p->notify_attempts,
            .backoff_ms = p->notify_backoff_ms,
            .max_backoff_ms = p->notify_max_backoff_ms,
            .sms_url = p->sms_url,
            .sms_account_sid = p->sms_account_sid,
            .sms_auth_token_file = p->sms_auth_token_file,
            .sms_from = p->sms_from,
            .ticket_kind = p->tickets_kind,
            .ticket_api_url = p->tickets_api_url,
            .ticket_owner = p->tickets_owner,
            .ticket_repo = p->tickets_repo,
            .ticket_labels = (const char *const *)p->tickets_labels.items,
            .ticket_nlabels = p->tickets_labels.count,
            .ticket_base_url = p->tickets_base_url,
            .ticket_user = p->tickets_user,
            .ticket_project = p->tickets_project,
            .ticket_issue_type = p->tickets_issue_type,
            .ticket_token_file = p->tickets_token_file,
        };
        c->notify = notify_new(&ncfg, err, sizeof(err));
        if (!c->notify) {
            vg_log(VG_LOG_ERROR, "paging: %s", err);
            return EXIT_CONFIG;
        }
        c->escalate = escalate_new(p, store_conninfo(c->store));
        if (!c->escalate) {
            vg_log(VG_LOG_ERROR, "paging: cannot connect to the store");
            return EXIT_UNAVAILABLE;
        }
        vg_log(VG_LOG_INFO, "paging: %zu contacts, %zu schedules, %zu policies",
               p->contacts.count, p->schedules.count, p->policies.count);
    }

    /* The webhook stores through its own connection, on the HTTP thread (alertmanager.h). */
    if (c->cfg.alertmanager_token_file[0]) {
        struct alertmanager_config acfg = {
            .token_file = c->cfg.alertmanager_token_file,
            .max_body = (size_t)c->cfg.alertmanager_max_body,
            .store_conninfo = store_conninfo(c->store),
        };
        alertmanager_t *am = alertmanager_new(&acfg, err, sizeof(err));
        if (!am) {
            vg_log(VG_LOG_ERROR, "alertmanager: %s", err);
            return EXIT_CONFIG;
        }
        c->alerts = am; /* borrowed: the HTTP server owns it and outlives the loop */
        http_server_set_alertmanager(c->http, &am);
        vg_log(VG_LOG_INFO, "alertmanager: webhook enabled path=/api/v1/alerts");
    }

    c->registry = registry_new();
    if (!c->registry || registry_load(c->registry, c->store) < 0 ||
        ensure_initial_admin(&c->cfg, c->store, c->registry) < 0) {
        vg_log(VG_LOG_ERROR, "cannot load agents and operators from the store");
        return EXIT_UNAVAILABLE;
    }
    vg_log(VG_LOG_INFO, "registry: %zu agents loaded", registry_agent_count(c->registry));

    c->zmq_ctx = zmq_ctx_new();
    if (!c->zmq_ctx) {
        vg_log(VG_LOG_ERROR, "zmq context: %s", zmq_strerror(zmq_errno()));
        return EXIT_OSERR;
    }
    c->zap = zap_new(c->zmq_ctx, c->registry, err, sizeof(err));
    if (!c->zap) {
        vg_log(VG_LOG_ERROR, "%s", err);
        return EXIT_OSERR;
    }
    struct router_config rcfg = {
        .endpoint = c->cfg.listen_agents,
        .server_keys = &c->keys,
        .heartbeat_interval_ms = c->cfg.heartbeat_interval_ms,
        .missed_heartbeats = c->cfg.missed_heartbeats,
        .enroll_secret = c->enroll_secret,
        .enroll_secret_len = c->enroll_secret_len,
        .enroll_rate_per_minute = c->cfg.enrollment_rate_per_minute,
        .pending_max = c->cfg.enrollment_pending_max,
        .max_series_per_agent = c->cfg.max_series_per_agent,
        .pending_ttl_ms = c->cfg.enrollment_pending_ttl_ms,
        .incomplete_evidence_grace_ms = c->cfg.evidence_incomplete_grace_ms,
        .observer = {.signals = observe_signals, .agent_state = observe_agent_state, .userdata = c},
    };
    c->router = router_new(c->zmq_ctx, &rcfg, c->registry, c->store, err, sizeof(err));
    if (!c->router) {
        vg_log(VG_LOG_ERROR, "%s", err);
        return EXIT_OSERR;
    }
    c->admin =
        admin_new(c->zmq_ctx, c->cfg.listen_admin, &c->keys, (int)c->cfg.heartbeat_interval_ms,
                  c->registry, store_conninfo(c->store), err, sizeof(err));
    if (!c->admin) {
        vg_log(VG_LOG_ERROR, "%s", err);
        return EXIT_OSERR;
    }
    struct remediate_config mcfg = {.key = &c->signing_key,
                                    .capsule_ttl_ms = c->cfg.commands_capsule_ttl_ms,
                                    .approval_window_ms = c->cfg.commands_approval_window_ms};
    c->remediate = remediate_new(c->zmq_ctx, &mcfg, err, sizeof(err));
    if (!c->remediate) {
        vg_log(VG_LOG_ERROR, "%s", err);
        return EXIT_OSERR;
    }
    admin_set_remediate(c->admin, c->remediate);
    admin_set_promql(c->admin, c->promql); /* the promql evidence kind's captures */
    char checkpoints[PATH_MAX];
    snprintf(checkpoints, sizeof(checkpoints), "%s/checkpoints", c->cfg.state_dir);
    admin_set_checkpoints(c->admin, &c->signing_key, checkpoints,
                          c->cfg.evidence_checkpoint_interval_ms);
    if (c->cfg.evidence_checkpoint_webhook[0]) {
        c->checkpoint_hook =
            checkpoint_hook_start(c->cfg.evidence_checkpoint_webhook, err, sizeof(err));
        if (!c->checkpoint_hook) {
            vg_log(VG_LOG_ERROR, "%s", err);
            return EXIT_OSERR;
        }
        admin_set_checkpoint_hook(c->admin, c->checkpoint_hook);
    }
    c->watchlist = steps_watchlist_new();
    if (!c->watchlist) {
        vg_log(VG_LOG_ERROR, "admin: out of memory");
        return EXIT_OSERR;
    }
    admin_set_watchlist(c->admin, c->watchlist);
    rewatch(c);
    if (c->cfg.watchdog_url[0]) {
        c->watchdog = watchdog_start(c->cfg.watchdog_url, c->cfg.watchdog_interval_ms, err,
                                     sizeof(err));
        if (!c->watchdog) {
            vg_log(VG_LOG_ERROR, "%s", err);
            return EXIT_OSERR;
        }
    }
    const struct retention_config retention = {
        .signals_ms = c->cfg.retention_signals_ms,
        .evidence_ms = c->cfg.retention_evidence_ms,
        .interval_ms = c->cfg.retention_interval_ms,
        .ahead_days = (int)c->cfg.retention_signals_ahead,
        .incomplete_grace_ms = c->cfg.evidence_incomplete_grace_ms,
    };
    c->retention = retention_start(c->store, &retention, err, sizeof(err));
    if (!c->retention) {
        vg_log(VG_LOG_ERROR, "%s", err);
        return EXIT_OSERR;
    }
    if (admin_set_auto_min_interval(c->admin, c->cfg.commands_auto_min_interval_ms) < 0) {
        vg_log(VG_LOG_ERROR, "admin: out of memory");
        return EXIT_OSERR;
    }
    admin_set_paging(c->admin, &c->cfg.paging);
    admin_set_runbooks(c->admin, correlate_runbooks(c->correlate));
    admin_set_status_page(c->admin, &c->cfg.status_page);
    admin_set_observer(c->admin, &rcfg.observer); /* approve / revoke move the node set too */
    int r = admin_start(c->admin);
    if (r < 0) {
        vg_log(VG_LOG_ERROR, "admin thread: %s", strerror(-r));
        return EXIT_OSERR;
    }
    /* The public page is not what the coordinator is for: when its port cannot be had, it says
     * so and goes on detecting and paging (docs/status-page.md). */
    if (c->cfg.status_page.enabled) {
        c->status_page =
            status_server_start(&c->cfg.status_page, store_conninfo(c->store), err, sizeof(err));
        if (!c->status_page)
            vg_log(VG_LOG_ERROR, "%s; the status page is not served", err);
    }
    vg_log(VG_LOG_INFO, "listening agents=%s admin=%s http=%s:%lld", c->cfg.listen_agents,
           c->cfg.listen_admin, c->cfg.http_address[0] ? c->cfg.http_address : "*",
           (long long)c->cfg.http_port);
    return 0;
}

static void stop(struct coordinator *c)
{
    watchdog_destroy(&c->watchdog); /* first: a stopping coordinator is no longer healthy */
    retention_destroy(&c->retention);
    admin_destroy(&c->admin);
    remediate_destroy(&c->remediate); /* after the admin thread that used it */
    checkpoint_hook_destroy(&c->checkpoint_hook); /* likewise */
    steps_watchlist_destroy(&c->watchlist);
    router_destroy(&c->router);
    zap_destroy(&c->zap);
    if (c->zmq_ctx)
        zmq_ctx_term(c->zmq_ctx);
    http_server_stop(&c->http);
    status_server_stop(&c->status_page);
    registry_destroy(&c->registry);
    escalate_destroy(&c->escalate);
    notify_destroy(&c->notify);
    promql_destroy(&c->promql);
    correlate_destroy(&c->correlate);
    store_incidents_destroy(&c->incidents);
    store_destroy(&c->store);
    metrics_fini();
    if (c->signal_fd >= 0)
        close(c->signal_fd);
    if (c->enroll_secret) {
        explicit_bzero(c->enroll_secret, c->enroll_secret_len);
        free(c->enroll_secret);
    }
    explicit_bzero(&c->keys, sizeof(c->keys));
    vg_signing_key_wipe(&c->signing_key);
    coord_config_free(&c->cfg);
}

/* -n with an external store: the login the running coordinator would use, checked for rights
 * beyond its needs (a warning: the configuration itself is fine). */
static void check_store_rights(const struct coord_config *cfg)
{
    if (!cfg->store_url[0]) {
        printf("store: private cluster: the coordinator connects as " ROLES_RUNTIME
               " (reads, appends to the record), migrations and maintenance as " ROLES_OWNER "\n");
        return;
    }
    char excess[1024];
    int n = store_check_rights(cfg->store_url, excess, sizeof(excess));
    if (n < 0)
        printf("store: rights not checked: %s\n", excess);
    else if (n == 0)
        printf("store: the coordinator's login holds no more rights than it needs\n");
    else
        fprintf(stderr,
                "vigil-coordinator: warning: store.url's login has more rights than the running "
                "coordinator needs (%s): it could switch the append-only protection off; give it a "
                "role of its own and the owner's to store.owner_url (docs/operations.md, "
                "\"Database roles\")\n",
                excess);
}

int main(int argc, char **argv)
{
    const char *config_path = "/etc/vigil/coordinator.yaml";
    bool check_only = false, print_key = false;
    static const struct option long_options[] = {
        {"print-signing-key", no_argument, NULL, 'K'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    struct coordinator c = {.signal_fd = -1};
    char err[1024];
    enum vg_log_level level;
    int opt;

    while ((opt = getopt_long(argc, argv, "c:nVh", long_options, NULL)) != -1) {
        switch (opt) {
        case 'K':
            print_key = true;
            break;
        case 'c':
            config_path = optarg;
            break;
        case 'n':
            check_only = true;
            break;
        case 'V':
            printf("vigil-coordinator %s\n", VIGIL_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return EXIT_USAGE;
    }

    vg_log_init("vigil-coordinator", VG_LOG_INFO, !isatty(STDERR_FILENO));
    /* Whole artifacts are hashed here (stored, verified, exported): libcrypto's SHA-256. */
    vg_sha256_set_engine(vg_sha256_openssl());
    if (coord_config_load(config_path, &c.cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "vigil-coordinator: %s\n", err);
        coord_config_free(&c.cfg);
        return EXIT_CONFIG;
    }
    if (print_key) {
        int code = print_signing_key(&c.cfg);
        coord_config_free(&c.cfg);
        return code;
    }
    if (check_only) {
        /* The runbooks are part of the configuration: a set that does not load fails -n. */
        const char *dir = runbooks_dir(&c.cfg);
        if (dir[0]) {
            struct rb_set *set = runbooks_load_dir(dir, err, sizeof(err));
            if (!set) {
                fprintf(stderr, "vigil-coordinator: runbooks: %s\n", err);
                coord_config_free(&c.cfg);
                return EXIT_CONFIG;
            }
            printf("runbooks: %zu loaded from %s\n", set->n, dir);
            int paging = paging_check_runbooks(&c.cfg.paging, set, err, sizeof(err));
            runbooks_free(&set);
            if (paging < 0) {
                fprintf(stderr, "vigil-coordinator: paging: %s\n", err);
                coord_config_free(&c.cfg);
                return EXIT_CONFIG;
            }
        }
        check_store_rights(&c.cfg);
        printf("%s: configuration OK\n", config_path);
        coord_config_free(&c.cfg);
        return 0;
    }
    vg_log_level_parse(c.cfg.log_level, &level);
    vg_log_threshold = level;

    int code = start(&c);
    if (code == 0) {
        vg_log(VG_LOG_INFO, "started version=%s", VIGIL_VERSION);
        code = run_loop(&c);
    }
    stop(&c);
    vg_log(VG_LOG_INFO, "stopped");
    return code;
}
