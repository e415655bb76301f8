/*
 * vigilctl commands. main.c parses the options into a struct ctl_context and calls one of
 * these with the words after the command name; each returns the process exit status and has
 * printed its own error line (output_error) when it fails.
 */
#ifndef CTL_COMMANDS_H
#define CTL_COMMANDS_H

#include <stdbool.h>
#include <stdint.h>

#include "ctl_config.h"
#include "output.h"
#include "wire.h"

enum ctl_exit {
    CTL_EXIT_OK = 0,
    CTL_EXIT_FAILURE = 1, /* the command failed; one "vigilctl: reason" line on stderr */
    CTL_EXIT_USAGE = 2,   /* the command line is wrong */
    CTL_EXIT_PARTIAL = 3, /* collect: some agents delivered nothing (failed or timed out) */
};

struct ctl_context {
    const char *config_flag;   /* --config FILE, or NULL */
    enum output_format format; /* -o table|json */
    int64_t timeout_ms;        /* --timeout */
    bool timeout_given;        /* collect: --timeout is the wait for artifacts (default 60s) */
    const char *out_path;      /* keygen --out, evidence get --out */
    const char *secret_file;   /* token --secret-file */
    const char *public_key;    /* token --public-key */
    const char *key_file;      /* token --key-file */
    const char *node;          /* signals, collect, evidence list --node */
    const char *name_glob;     /* signals --name */
    bool all;                  /* collect --all */
    size_t nargs;              /* collect --arg KEY=VALUE, in order: */
    const char *args[VG_MAX_EVIDENCE_ARGS];
    bool too_many_args;     /* more --arg than args holds */
    const char *collection; /* evidence list --collection */
    const char *limit;      /* evidence list --limit */
    const char *status;     /* incidents --status open|all */
    const char *note;       /* ack, mitigate, resolve --note */
    const char *file;       /* report --file (- = standard input) */
    const char *schedule;   /* oncall override --schedule */
    const char *user;       /* oncall override --user */
    const char *from, *to;  /* oncall override --from/--to: now, +DURATION or RFC 3339 */

    struct ctl_config config; /* loaded by ctl_context_config on first use */
    char *config_path;
    bool config_loaded;
};

/*
 * The configuration, loaded on first use (commands that do not talk to the coordinator never
 * read it). Returns CTL_EXIT_OK, or CTL_EXIT_FAILURE after printing why.
 */
int ctl_context_config(struct ctl_context *ctx, const struct ctl_config **ret_cfg);

int cmd_keygen(struct ctl_context *ctx, int argc, char **argv);
int cmd_token(struct ctl_context *ctx, int argc, char **argv);
int cmd_agents(struct ctl_context *ctx, int argc, char **argv);
int cmd_signals(struct ctl_context *ctx, int argc, char **argv);
int cmd_collect(struct ctl_context *ctx, int argc, char **argv);
int cmd_evidence(struct ctl_context *ctx, int argc, char **argv);
int cmd_incidents(struct ctl_context *ctx, int argc, char **argv);
int cmd_mitigate(struct ctl_context *ctx, int argc, char **argv);
int cmd_report(struct ctl_context *ctx, int argc, char **argv);
int cmd_tail(struct ctl_context *ctx, int argc, char **argv);
int cmd_escalate(struct ctl_context *ctx, int argc, char **argv);
int cmd_notifications(struct ctl_context *ctx, int argc, char **argv);
int cmd_incident(struct ctl_context *ctx, int argc, char **argv);
int cmd_ack(struct ctl_context *ctx, int argc, char **argv);
int cmd_resolve(struct ctl_context *ctx, int argc, char **argv);
int cmd_oncall(struct ctl_context *ctx, int argc, char **argv);

#endif
