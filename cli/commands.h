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

enum ctl_exit {
    CTL_EXIT_OK = 0,
    CTL_EXIT_FAILURE = 1, /* the command failed; one "vigilctl: reason" line on stderr */
    CTL_EXIT_USAGE = 2,   /* the command line is wrong */
};

struct ctl_context {
    const char *config_flag;   /* --config FILE, or NULL */
    enum output_format format; /* -o table|json */
    int64_t timeout_ms;        /* --timeout */
    const char *out_path;      /* keygen --out */
    const char *secret_file;   /* token --secret-file */
    const char *public_key;    /* token --public-key */
    const char *key_file;      /* token --key-file */
    const char *node;          /* signals --node */
    const char *name_glob;     /* signals --name */

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

#endif
