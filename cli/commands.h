/*
 * vigilctl commands: one table that dispatch, option checking and help all read.
 *
 * Every verb is one struct ctl_command entry in the cmd_*.c file of its area: its name, its
 * lines in 'vigilctl help', its help text ('vigilctl help NAME' and 'vigilctl NAME --help'),
 * the options it takes and the function that runs it. main.c parses the global options
 * (--config, -o, --timeout, -v, --help, --version), finds the entry by the command word, hands
 * it the options it declares (struct ctl_args), refuses any other one with a line naming the
 * command and the commands that take it, and calls run. run returns the process exit status
 * and has printed its own error line (output_error) when it fails.
 *
 * Adding a verb is one entry in the cmd_*.c file of its area: its function
 *     static int run_NAME(struct ctl_context *ctx, const struct ctl_args *args)
 * (options from ctl_args_value/ctl_args_has/ctl_args_list, its words in args->argv) and, in
 * that file's table, {.name, .forms (usage and one-line summary for 'vigilctl help'), .help
 * (starting "Usage: vigilctl NAME"), .options, .run}. Nothing else in cli/ changes: 'vigilctl
 * help', 'vigilctl help NAME', 'NAME --help', the refusal of options it does not take and the
 * dispatch all read the entry. (Its request, a proto message and a coordinator handler, lives
 * outside cli/.) Only a new cmd_AREA.c file adds more: its table cmd_AREA_table[], ended by an
 * entry without a name, declared at the end of this header and listed once in commands.c, and
 * the file in CMakeLists.txt.
 */
#ifndef CTL_COMMANDS_H
#define CTL_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>
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

/* What the global options set, and the configuration once a command asks for it. */
struct ctl_context {
    const char *config_flag;   /* --config FILE, or NULL */
    enum output_format format; /* -o table|json */
    int64_t timeout_ms;        /* --timeout */
    bool timeout_given;        /* collect: --timeout is the wait for artifacts (default 60s) */

    struct ctl_config config; /* loaded by ctl_context_config on first use */
    char *config_path;
    bool config_loaded;
};

/*
 * The configuration, loaded on first use (commands that do not talk to the coordinator never
 * read it). Returns CTL_EXIT_OK, or CTL_EXIT_FAILURE after printing why.
 */
int ctl_context_config(struct ctl_context *ctx, const struct ctl_config **ret_cfg);

enum ctl_option_kind {
    CTL_OPTION_FLAG,  /* --all */
    CTL_OPTION_VALUE, /* --note TEXT; given twice, the last one counts */
    CTL_OPTION_LIST,  /* --arg KEY=VALUE ...: every one kept, in order */
};

/*
 * An option of one command: a long option, "--name VALUE" or "--name=VALUE", before or after
 * the command word like the global ones. A name several commands take has the same kind in
 * each, and no command option is named like a global one (test_cli_commands checks both).
 */
struct ctl_option {
    const char *name; /* without the "--" */
    enum ctl_option_kind kind;
};

#define CTL_MAX_FORMS 6   /* lines of one command in 'vigilctl help' */
#define CTL_MAX_OPTIONS 6 /* options of one command */
#define CTL_MAX_LIST 16   /* values kept of one CTL_OPTION_LIST option */

/* One line of 'vigilctl help': a form of the command and what it does. */
struct ctl_form {
    const char *usage;   /* "agents approve ID" */
    const char *summary; /* "admit a pending agent, or approve its rename" */
};

/* The words after the command name, sorted out against the command's options. */
struct ctl_args {
    const struct ctl_command *command;
    int argc; /* the words that are not options, in order */
    char **argv;
    /* By position in command->options: */
    const char *value[CTL_MAX_OPTIONS]; /* the last value given ("" for a flag); NULL: not given */
    size_t count[CTL_MAX_OPTIONS];      /* how many times it was given */
    const char *list[CTL_MAX_OPTIONS][CTL_MAX_LIST]; /* a list option's first values */
};

struct ctl_command {
    const char *name;                     /* the command word */
    struct ctl_form forms[CTL_MAX_FORMS]; /* its lines in 'vigilctl help'; usually one */
    const char *help; /* 'vigilctl help NAME' and 'vigilctl NAME --help': starts "Usage:" */
    struct ctl_option options[CTL_MAX_OPTIONS]; /* up to the first without a name */
    int (*run)(struct ctl_context *ctx, const struct ctl_args *args);
};

/* The value of the command's option (declared in its entry): the last one given, "" for a
 * flag, NULL when it was not given. */
const char *ctl_args_value(const struct ctl_args *args, const char *option);

/* Whether the option (declared in the command's entry) was given. */
bool ctl_args_has(const struct ctl_args *args, const char *option);

/* A list option's values, in order: how many were given (may be more than CTL_MAX_LIST: only
 * the first CTL_MAX_LIST are in *ret_values). */
size_t ctl_args_list(const struct ctl_args *args, const char *option,
                     const char *const **ret_values);

/*
 * n `--arg KEY=VALUE` texts (at most max) split into keys (copied into keys[i]) and values
 * (pointing into the texts): every key 1 to VG_MAX_NAME_LEN bytes and given once, every value
 * at most VG_MAX_VALUE_LEN bytes. False after printing why.
 */
bool ctl_key_values(const char *const *texts, size_t n, size_t max,
                    char keys[][VG_MAX_NAME_LEN + 1], const char **ret_values);

/* The command called name, or NULL. */
const struct ctl_command *ctl_command_find(const char *name);

/* The position of --option in the command's entry (the index of args->value), or -1. */
int ctl_command_option(const struct ctl_command *cmd, const char *option);

#define CTL_MAX_COMMANDS 64

/* Every command in alphabetical order into ret (at most max); returns how many there are. */
size_t ctl_command_list(const struct ctl_command **ret, size_t max);

/* The names of the commands that take --option, space-separated in alphabetical order, into
 * buf ("" for none). Returns how many take it. */
size_t ctl_command_owners(const char *option, char *buf, size_t buflen);

/* The tables of the cmd_*.c files, each ended by an entry without a name. */
extern const struct ctl_command cmd_agents_table[];
extern const struct ctl_command cmd_commands_table[];
extern const struct ctl_command cmd_evidence_table[];
extern const struct ctl_command cmd_incidents_table[];
extern const struct ctl_command cmd_keys_table[];
extern const struct ctl_command cmd_notifications_table[];
extern const struct ctl_command cmd_oncall_table[];
extern const struct ctl_command cmd_operators_table[];
extern const struct ctl_command cmd_report_table[];
extern const struct ctl_command cmd_signals_table[];
extern const struct ctl_command cmd_tail_table[];
extern const struct ctl_command cmd_silences_table[];
extern const struct ctl_command cmd_steer_table[]; /* cmd_steer.c: issue 18 */
extern const struct ctl_command cmd_drills_table[];
extern const struct ctl_command cmd_followups_table[]; /* cmd_followups.c: issue 18 */
extern const struct ctl_command cmd_holds_table[];     /* cmd_holds.c: issue 15, legal hold */

#endif
