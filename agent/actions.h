/*
 * The action catalog: the only things a command can ever make this node do
 * (docs/remediation.md, "The action catalog").
 *
 * The node's owner declares each action in agent.yaml under `actions:`; the coordinator can only
 * name one of them, with arguments that must pass the types declared here. Loading is in two
 * steps: the table loader fills struct action_config elements with action_keys (unknown keys,
 * wrong types and out-of-range values are refused there, with file:line:col), then actions_new
 * checks what a table cannot say and compiles the result. Its errors name the place too
 * (cfgcheck.h):
 *
 *   agent.yaml:31:20: action "restart-unit": argv[2] "--unit={unit}" mixes text and a
 *   placeholder: a placeholder must be a whole argv element
 *
 * What actions_new promises about a catalog it returns:
 *   - names match [a-z][a-z0-9_.-]{0,63} and are unique; at most ACTIONS_MAX actions;
 *   - exec: argv[0] is a literal absolute path to an executable regular file that is not a shell
 *     (for a root action: owned by root, writable by nobody else); every other element is
 *     either literal text without braces or exactly "{param}" naming a declared parameter, so a
 *     value always becomes exactly one argv element; every parameter is used; no shell, ever;
 *   - built-ins take fixed parameters: systemd {unit} (restart only); signal {process, signal}
 *     with process an enum of names from collectors.processes.watch and signal an enum within
 *     TERM, HUP, USR1, USR2, KILL; nft {address (ip or cidr), expires (duration)} to block,
 *     {address} to unblock; isolate nothing;
 *   - every parameter has exactly one type: enum, int {min, max}, duration {min, max}, ip,
 *     cidr {prefix4, prefix6, deny}, identifier {pattern (POSIX ERE, anchored, compiled here),
 *     max_length}; ip and cidr parameters always deny loopback and the addresses listed, and
 *     the caller adds the node's own and the coordinator's at run time (struct action_deny);
 *   - auto and destructive are never both set; precheck and inverse name other actions of the
 *     catalog whose parameters are a subset of this one's (they get the same arguments);
 *   - evidence entries name kinds this agent captures (evidence_kinds.h), with arguments those
 *     kinds take.
 *
 * A catalog is read-only once built: any thread may use it. Argument values are hostile until
 * actions_check_args passed them; actions_render_argv only renders checked arguments.
 */
#ifndef AGENT_ACTIONS_H
#define AGENT_ACTIONS_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define ACTIONS_MAX 256
#define ACTION_NAME_MAX 64
#define ACTION_PARAMS_MAX 16
#define ACTION_PARAM_NAME_MAX 32
#define ACTION_ARGV_MAX 64
#define ACTION_ENUM_MAX 64     /* values of one enum parameter */
#define ACTION_DENY_MAX 64     /* deny entries of one ip or cidr parameter, in the file */
#define ACTION_EVIDENCE_MAX 8  /* evidence entries of one action */
#define ACTION_VALUE_MAX 1024  /* longest argument value (as VG_MAX_VALUE_LEN on the wire) */
#define ACTION_PATTERN_MAX 256 /* longest identifier pattern */
#define ACTION_TIMEOUT_MAX_MS (3600LL * 1000)
#define ACTION_OUTPUT_MAX_BYTES (16LL * 1024 * 1024)

/* ---- as the table loader fills them (agent_config.c declares `actions` with action_keys) ---- */

struct action_param_config {
    char *name;
    struct vg_cfg_strings enum_values;
    int64_t int_min, int_max;
    int64_t duration_min_ms, duration_max_ms;
    struct vg_cfg_strings ip_deny;
    int64_t cidr_prefix4_min, cidr_prefix4_max, cidr_prefix6_min, cidr_prefix6_max;
    struct vg_cfg_strings cidr_deny;
    char *identifier_pattern;
    int64_t identifier_max_length;
};

struct action_config {
    char *name;
    char *kind; /* exec, systemd, signal, nft, isolate; postgres, redis, kubernetes (services) */
    char *op;   /* "" = the kind's default: systemd restart, isolate isolate; nft block | unblock;
                   a service kind's op is required (actions_service.c) */
    char *target;    /* postgres, redis: the collectors.<kind>.targets name it acts on */
    char *statement; /* postgres op statement: the SQL, with $1..$N for the parameters in order */
    struct vg_cfg_strings argv;
    struct vg_cfg_list params; /* of struct action_param_config */
    int64_t timeout_ms;
    int64_t output_max_bytes;
    bool auto_run; /* `auto` */
    bool destructive;
    bool root;
    char *precheck; /* "" = none */
    char *inverse;  /* "" = none */
    struct vg_cfg_strings evidence;
};

extern const struct vg_cfg_key action_keys[];
extern const size_t action_nkeys;

/* ---- the checked catalog ---- */

enum action_kind {
    ACTION_EXEC,
    ACTION_SYSTEMD,
    ACTION_SIGNAL,
    ACTION_NFT,
    ACTION_ISOLATE,
    /* Service kinds: run by vigil-agent-action as the agent's user (agent/action/svc.h). */
    ACTION_POSTGRES,
    ACTION_REDIS,
    ACTION_KUBERNETES, /* only on an agent with role: cluster */
};

enum action_op {
    ACTION_OP_RUN,     /* exec */
    ACTION_OP_RESTART, /* systemd */
    ACTION_OP_SIGNAL,  /* signal */
    ACTION_OP_BLOCK,   /* nft */
    ACTION_OP_UNBLOCK, /* nft */
    ACTION_OP_ISOLATE, /* isolate */
    ACTION_OP_RELEASE, /* isolate: undo it */
    /* postgres */
    ACTION_OP_TERMINATE, /* pg_terminate_backend of active queries older than older_than */
    ACTION_OP_ANALYZE,
    ACTION_OP_REINDEX, /* REINDEX DATABASE: destructive */
    ACTION_OP_STATEMENT, /* the catalog's own SQL */
    /* redis */
    ACTION_OP_FLUSHALL, /* destructive */
    ACTION_OP_FLUSHDB,
    /* kubernetes (and ACTION_OP_RESTART, ACTION_OP_BLOCK, ACTION_OP_UNBLOCK) */
    ACTION_OP_SCALE,
    ACTION_OP_SET_ENV,
    ACTION_OP_SET_RESOURCES,
    ACTION_OP_ISOLATE_POD,
    ACTION_OP_RELEASE_POD,
};

enum action_param_type {
    ACTION_PARAM_ENUM,
    ACTION_PARAM_INT,
    ACTION_PARAM_DURATION,
    ACTION_PARAM_IP,
    ACTION_PARAM_CIDR,
    ACTION_PARAM_IDENTIFIER,
};

/* An IPv4 or IPv6 network; a single address has the full prefix (32 or 128). IPv4-mapped IPv6
 * (::ffff:a.b.c.d with a prefix of 96 or more) is stored as the IPv4 network it is. */
struct action_net {
    int family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    unsigned prefix;
};

struct action_param {
    char *name;
    enum action_param_type type;
    char **values; /* enum */
    size_t nvalues;
    int64_t min, max;                                            /* int; duration in ms */
    unsigned prefix4_min, prefix4_max, prefix6_min, prefix6_max; /* cidr */
    struct action_net *deny; /* ip, cidr: loopback, then the file's entries */
    size_t ndeny;
    char *pattern;      /* identifier: as written */
    regex_t pattern_re; /* identifier: "^(pattern)$", REG_EXTENDED | REG_NOSUB */
    bool pattern_compiled;
    size_t max_length; /* identifier */
};

/* One evidence entry: a kind and its key=value arguments. */
struct action_evidence {
    char *kind;
    char **keys;
    char **values;
    size_t nargs;
};

struct action {
    char *name;
    enum action_kind kind;
    enum action_op op;
    char **argv;     /* exec: the template, argc elements and a NULL */
    int *argv_param; /* exec: for each element, the index of the parameter it is, or -1 */
    size_t argc;
    struct action_param *params;
    size_t nparams;
    int64_t timeout_ms;
    int64_t output_max_bytes;
    bool auto_run;                 /* may run on the coordinator's signature alone */
    bool destructive;              /* needs two operators' approvals */
    bool root;                     /* exec: keeps root; otherwise runs in a child that dropped it */
    char *target;                  /* postgres, redis: the probe target's name */
    char *statement;               /* postgres statement: the SQL */
    const struct action *precheck; /* NULL = none */
    const struct action *inverse;  /* NULL = none */
    struct action_evidence *evidence;
    size_t nevidence;
};

typedef struct actions actions_t;

/* What the catalog is checked against besides itself. */
struct actions_context {
    const char *file;           /* the file the list came from, for positions */
    const char *const *watched; /* collectors.processes.watch names */
    size_t nwatched;
    const char *const *postgres_targets; /* collectors.postgres.targets names */
    size_t npostgres_targets;
    const char *const *redis_targets; /* collectors.redis.targets names */
    size_t nredis_targets;
    bool cluster; /* role: cluster, the only agent that may declare kubernetes actions */
};

/*
 * Checks and compiles list (struct action_config elements). An empty list is a valid, empty
 * catalog. When the list is not empty, ctx->file must be root's and writable by nobody else
 * (cfgcheck_root_owned): it decides what may run on the node. NULL on failure, with
 * "file:line:col: message" in err.
 */
actions_t *actions_new(const struct vg_cfg_list *list, const struct actions_context *ctx, char *err,
                       size_t errlen);
void actions_destroy(actions_t **self_p);

size_t actions_count(const actions_t *self);
/* Iteration in file order; NULL past the end. */
const struct action *actions_get(const actions_t *self, size_t i);
/* The action named name, or NULL. */
const struct action *actions_find(const actions_t *self, const char *name);

const char *actions_kind_name(enum action_kind kind);
/* True for the kinds vigil-agent-action runs (postgres, redis, kubernetes). */
bool actions_kind_is_service(enum action_kind kind);
const char *actions_op_name(enum action_op op);
const char *actions_param_type_name(enum action_param_type type);

/* ---- arguments (actions_args.c) ---- */

/* One argument of a request, as the wire carries it (CommandArg). */
struct action_arg {
    const char *name;
    const char *value;
};

/* Addresses denied at run time, on top of each parameter's own list: the node's own addresses
 * and the coordinator's. The caller builds and frees it. */
struct action_deny {
    struct action_net *nets;
    size_t count;
};

/*
 * 0 when args are exactly the action's parameters (each once, none unknown, none missing) and
 * every value passes its type: an enum value in the list, a canonical integer in range, a
 * duration in range, an IP address or a CIDR network (no host bits set) within the prefix
 * bounds that overlaps no denied network (the parameter's own and deny's; deny may be NULL),
 * an identifier of printable ASCII not starting with '-', at most max_length long, matching the
 * pattern. Otherwise -EINVAL with one sentence in why naming the argument, e.g.
 * `argument "unit": "x; rm -rf /" does not match ^([a-z0-9@._-]+)$`.
 */
int actions_check_args(const struct action *a, const struct action_arg *args, size_t n,
                       const struct action_deny *deny, char *why, size_t whylen);

/*
 * The argv of an exec action for checked args: the template with each placeholder replaced by
 * its argument's value as exactly one element, NULL-terminated, malloc'd (free with
 * actions_argv_free). 0; -EINVAL for an action that is not exec or a placeholder without an
 * argument; -ENOMEM.
 */
int actions_render_argv(const struct action *a, const struct action_arg *args, size_t n,
                        char ***ret_argv);
void actions_argv_free(char ***argv_p);

/* Parses an address ("192.0.2.7", "2001:db8::1") or, when allow_prefix, a network
 * ("198.51.100.0/24"); host bits set after the prefix are refused. 0 or -EINVAL. */
int actions_net_parse(const char *text, bool allow_prefix, struct action_net *ret);
/* "198.51.100.0/24" (the prefix left out for a single address); buf of at least 64 bytes. */
const char *actions_net_format(const struct action_net *n, char *buf, size_t buflen);
/* True when a and b share an address (one contains the other); IPv4 is compared with IPv6
 * through its IPv4-mapped form, so ::/0 overlaps 127.0.0.1. */
bool actions_net_overlap(const struct action_net *a, const struct action_net *b);
/* True when value overlaps p's own deny list or deny's (may be NULL); *ret_hit (may be NULL)
 * gets the first denied network it overlaps. */
bool actions_net_denied(const struct action_param *p, const struct action_net *value,
                        const struct action_deny *deny, struct action_net *ret_hit);

/* Appends text (an address or network) to deny. 0, -EINVAL or -ENOMEM. */
int actions_deny_add(struct action_deny *deny, const char *text);
/* Appends every address of this node's interfaces (getifaddrs). 0 or negative errno. */
int actions_deny_add_interfaces(struct action_deny *deny);
void actions_deny_free(struct action_deny *deny);

#endif
