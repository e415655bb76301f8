/*
 * The action catalog: the key tables agent.yaml's `actions:` is loaded with, and the checks that
 * turn the loaded list into a catalog (actions.h). Arguments are checked in actions_args.c.
 *
 * Why a parameter's type is read from the file again: the table loader fills `ip:` with nothing
 * after it and no `ip:` at all alike (both leave an empty deny list), so which type keys a
 * parameter has is asked of the parsed document (cfgcheck_has), which the checks open anyway to
 * place their messages.
 */
#include "actions.h"

#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cfgcheck.h"
#include "evidence_kinds.h"
#include "log.h"
#include "wire.h"
#include "yaml.h"

#define SEC_MS 1000LL
#define DAY_MS (24LL * 3600 * SEC_MS)
#define MIB (1024LL * 1024)
#define YPATH_LEN 96

/* ---- key tables ---- */

#define PKEY(path_, type_, field_, min_, max_, def_, help_)                                        \
    {                                                                                              \
        .path = (path_), .type = (type_), .offset = offsetof(struct action_param_config, field_),  \
        .min = (min_), .max = (max_), .def = (def_), .help = (help_)                               \
    }

static const struct vg_cfg_key action_param_keys[] = {
    {.path = "name",
     .type = VG_CFG_STRING,
     .offset = offsetof(struct action_param_config, name),
     .max = ACTION_PARAM_NAME_MAX,
     .required = true,
     .help = "the parameter's name, as {name} in argv and in a request's arguments"},
    {.path = "enum",
     .type = VG_CFG_STRINGS,
     .offset = offsetof(struct action_param_config, enum_values),
     .max = ACTION_ENUM_MAX,
     .help = "the values allowed, exactly"},
    PKEY("int.min", VG_CFG_INT, int_min, 0, 0, NULL, "smallest integer allowed"),
    PKEY("int.max", VG_CFG_INT, int_max, 0, 0, NULL, "largest integer allowed"),
    PKEY("duration.min", VG_CFG_DURATION_MS, duration_min_ms, 0, 30 * DAY_MS, NULL,
         "shortest duration allowed"),
    PKEY("duration.max", VG_CFG_DURATION_MS, duration_max_ms, 0, 30 * DAY_MS, NULL,
         "longest duration allowed"),
    {.path = "ip.deny",
     .type = VG_CFG_STRINGS,
     .offset = offsetof(struct action_param_config, ip_deny),
     .max = ACTION_DENY_MAX,
     .help = "addresses or networks never accepted (loopback always is)"},
    PKEY("cidr.prefix4.min", VG_CFG_INT, cidr_prefix4_min, 0, 32, "16",
         "shortest IPv4 prefix accepted"),
    PKEY("cidr.prefix4.max", VG_CFG_INT, cidr_prefix4_max, 0, 32, "32",
         "longest IPv4 prefix accepted"),
    PKEY("cidr.prefix6.min", VG_CFG_INT, cidr_prefix6_min, 0, 128, "48",
         "shortest IPv6 prefix accepted"),
    PKEY("cidr.prefix6.max", VG_CFG_INT, cidr_prefix6_max, 0, 128, "128",
         "longest IPv6 prefix accepted"),
    {.path = "cidr.deny",
     .type = VG_CFG_STRINGS,
     .offset = offsetof(struct action_param_config, cidr_deny),
     .max = ACTION_DENY_MAX,
     .help = "addresses or networks a value may not overlap (loopback always is)"},
    {.path = "identifier.pattern",
     .type = VG_CFG_STRING,
     .offset = offsetof(struct action_param_config, identifier_pattern),
     .max = ACTION_PATTERN_MAX,
     .help = "POSIX extended regular expression the whole value must match"},
    PKEY("identifier.max_length", VG_CFG_INT, identifier_max_length, 1, ACTION_VALUE_MAX, "64",
         "longest value accepted"),
};
static const size_t action_param_nkeys = sizeof(action_param_keys) / sizeof(action_param_keys[0]);

#define AKEY(path_, type_, field_, min_, max_, def_, help_)                                        \
    {                                                                                              \
        .path = (path_), .type = (type_), .offset = offsetof(struct action_config, field_),        \
        .min = (min_), .max = (max_), .def = (def_), .help = (help_)                               \
    }

const struct vg_cfg_key action_keys[] = {
    {.path = "name",
     .type = VG_CFG_STRING,
     .offset = offsetof(struct action_config, name),
     .max = ACTION_NAME_MAX,
     .required = true,
     .help = "the action's name, as runbooks and vigilctl run name it"},
    {.path = "kind",
     .type = VG_CFG_STRING,
     .offset = offsetof(struct action_config, kind),
     .max = 16,
     .required = true,
     .help = "exec, systemd, signal, nft, isolate; postgres, redis, kubernetes"},
    AKEY("op", VG_CFG_STRING, op, 0, 16, "",
         "nft: block or unblock; isolate: isolate (default) or release; systemd: restart; "
         "postgres: terminate, analyze, reindex or statement; redis: flushall or flushdb; "
         "kubernetes: restart, scale, set-env, set-resources, block, unblock, isolate-pod or "
         "release-pod"),
    AKEY("target", VG_CFG_STRING, target, 0, 128, "",
         "postgres, redis: the name of the collectors.<kind>.targets entry it acts on"),
    AKEY("statement", VG_CFG_STRING, statement, 0, 8192, "",
         "postgres op statement: the SQL, with $1..$N for the parameters in order"),
    {.path = "argv",
     .type = VG_CFG_STRINGS,
     .offset = offsetof(struct action_config, argv),
     .max = ACTION_ARGV_MAX,
     .help = "exec: the program (absolute path) and its arguments; {param} is one whole element"},
    {.path = "params",
     .type = VG_CFG_LIST,
     .offset = offsetof(struct action_config, params),
     .max = ACTION_PARAMS_MAX,
     .help = "typed parameters: {name, enum | int | duration | ip | cidr | identifier}",
     .sub = action_param_keys,
     .nsub_ref = &action_param_nkeys,
     .elem_size = sizeof(struct action_param_config)},
    AKEY("timeout", VG_CFG_DURATION_MS, timeout_ms, SEC_MS, ACTION_TIMEOUT_MAX_MS, "60s",
         "the run is stopped (TERM, then KILL) after this long"),
    AKEY("output_max", VG_CFG_SIZE, output_max_bytes, 0, ACTION_OUTPUT_MAX_BYTES, "64KiB",
         "output kept (the SHA-256 covers all of it)"),
    AKEY("auto", VG_CFG_BOOL, auto_run, 0, 0, "false",
         "may run on the coordinator's signature alone"),
    AKEY("destructive", VG_CFG_BOOL, destructive, 0, 0, "false",
         "needs two operators' approvals; never auto"),
    AKEY("root", VG_CFG_BOOL, root, 0, 0, "false", "exec: run as root (otherwise privileges drop)"),
    AKEY("precheck", VG_CFG_STRING, precheck, 0, ACTION_NAME_MAX, "",
         "an action run first; the action runs only when it succeeds"),
    AKEY("inverse", VG_CFG_STRING, inverse, 0, ACTION_NAME_MAX, "",
         "the action that undoes this one (run when verification fails)"),
    {.path = "evidence",
     .type = VG_CFG_STRINGS,
     .offset = offsetof(struct action_config, evidence),
     .max = ACTION_EVIDENCE_MAX,
     .help = "evidence captured right after the run: \"KIND [key=value ...]\""},
};
const size_t action_nkeys = sizeof(action_keys) / sizeof(action_keys[0]);

/* ---- names ---- */

static const char *const kind_names[] = {
    [ACTION_EXEC] = "exec",   [ACTION_SYSTEMD] = "systemd",       [ACTION_SIGNAL] = "signal",
    [ACTION_NFT] = "nft",     [ACTION_ISOLATE] = "isolate",       [ACTION_POSTGRES] = "postgres",
    [ACTION_REDIS] = "redis", [ACTION_KUBERNETES] = "kubernetes",
};
static const char *const op_names[] = {
    [ACTION_OP_RUN] = "run",
    [ACTION_OP_RESTART] = "restart",
    [ACTION_OP_SIGNAL] = "signal",
    [ACTION_OP_BLOCK] = "block",
    [ACTION_OP_UNBLOCK] = "unblock",
    [ACTION_OP_ISOLATE] = "isolate",
    [ACTION_OP_RELEASE] = "release",
    [ACTION_OP_TERMINATE] = "terminate",
    [ACTION_OP_ANALYZE] = "analyze",
    [ACTION_OP_REINDEX] = "reindex",
    [ACTION_OP_STATEMENT] = "statement",
    [ACTION_OP_FLUSHALL] = "flushall",
    [ACTION_OP_FLUSHDB] = "flushdb",
    [ACTION_OP_SCALE] = "scale",
    [ACTION_OP_SET_ENV] = "set-env",
    [ACTION_OP_SET_RESOURCES] = "set-resources",
    [ACTION_OP_ISOLATE_POD] = "isolate-pod",
    [ACTION_OP_RELEASE_POD] = "release-pod",
};
static const char *const type_names[] = {
    [ACTION_PARAM_ENUM] = "enum",         [ACTION_PARAM_INT] = "int",
    [ACTION_PARAM_DURATION] = "duration", [ACTION_PARAM_IP] = "ip",
    [ACTION_PARAM_CIDR] = "cidr",         [ACTION_PARAM_IDENTIFIER] = "identifier",
};
#define NTYPES (sizeof(type_names) / sizeof(type_names[0]))

/* The signals a `signal` action may send. */
static const char *const signal_names[] = {"TERM", "HUP", "USR1", "USR2", "KILL"};

/* Programs that would read an argument as code: exec never runs them. */
static const char *const shells[] = {"sh",  "bash", "dash", "zsh",  "ksh",     "mksh",
                                     "ash", "csh",  "tcsh", "fish", "busybox", "rbash"};

const char *actions_kind_name(enum action_kind kind)
{
    return (unsigned)kind < sizeof(kind_names) / sizeof(kind_names[0]) ? kind_names[kind] : "?";
}

bool actions_kind_is_service(enum action_kind kind)
{
    return kind == ACTION_POSTGRES || kind == ACTION_REDIS || kind == ACTION_KUBERNETES;
}

const char *actions_op_name(enum action_op op)
{
    return (unsigned)op < sizeof(op_names) / sizeof(op_names[0]) ? op_names[op] : "?";
}

const char *actions_param_type_name(enum action_param_type type)
{
    return (unsigned)type < NTYPES ? type_names[type] : "?";
}

/* ---- the catalog ---- */

struct actions {
    struct action *items;
    size_t count;
};

/* One action being checked: where messages go and where the action sits in the file. */
struct checker {
    const struct actions_context *ctx;
    const cfgcheck_doc_t *doc;
    char *err;
    size_t errlen;
    size_t index;     /* actions[index] */
    const char *name; /* its name, for messages */
};

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

static void free_param(struct action_param *p)
{
    free(p->name);
    free_strv(p->values, p->nvalues);
    free(p->deny);
    free(p->pattern);
    if (p->pattern_compiled)
        regfree(&p->pattern_re);
}

static void free_action(struct action *a)
{
    free(a->name);
    free(a->target);
    free(a->statement);
    free_strv(a->argv, a->argc);
    free(a->argv_param);
    for (size_t i = 0; a->params && i < a->nparams; i++)
        free_param(&a->params[i]);
    free(a->params);
    for (size_t i = 0; a->evidence && i < a->nevidence; i++) {
        free(a->evidence[i].kind);
        free_strv(a->evidence[i].keys, a->evidence[i].nargs);
        free_strv(a->evidence[i].values, a->evidence[i].nargs);
    }
    free(a->evidence);
}

void actions_destroy(actions_t **self_p)
{
    actions_t *self = self_p ? *self_p : NULL;

    if (!self)
        return;
    for (size_t i = 0; self->items && i < self->count; i++)
        free_action(&self->items[i]);
    free(self->items);
    free(self);
    *self_p = NULL;
}

size_t actions_count(const actions_t *self)
{
    return self ? self->count : 0;
}

const struct action *actions_get(const actions_t *self, size_t i)
{
    return self && i < self->count ? &self->items[i] : NULL;
}

const struct action *actions_find(const actions_t *self, const char *name)
{
    for (size_t i = 0; self && name && i < self->count; i++)
        if (self->items[i].name && strcmp(self->items[i].name, name) == 0)
            return &self->items[i];
    return NULL;
}

/* ---- checks ---- */

#define FAIL(ck, ypath, ...)                                                                       \
    cfgcheck_fail((ck)->doc, (ck)->ctx->file, (ypath), (ck)->err, (ck)->errlen, __VA_ARGS__)

static int oom(struct checker *ck)
{
    vg_set_err(ck->err, ck->errlen, "%s: out of memory", ck->ctx->file);
    return -ENOMEM;
}

/* "/actions/3" + suffix ("/argv/1"). */
static const char *ypath_of(const struct checker *ck, char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static const char *ypath_of(const struct checker *ck, char *buf, size_t len, const char *fmt, ...)
{
    int n = snprintf(buf, len, "/actions/%zu", ck->index);
    va_list ap;

    if (n < 0 || (size_t)n >= len)
        return buf;
    va_start(ap, fmt);
    vsnprintf(buf + n, len - (size_t)n, fmt, ap);
    va_end(ap);
    return buf;
}

/* [a-z][a-z0-9_.-]{0,63} */
static bool action_name_ok(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > ACTION_NAME_MAX || name[0] < 'a' || name[0] > 'z')
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' ||
              *p == '-'))
            return false;
    return true;
}

/* [a-z][a-z0-9_]{0,31}, also the text between a placeholder's braces (len bytes of it). */
static bool param_name_ok(const char *name, size_t len)
{
    if (len == 0 || len > ACTION_PARAM_NAME_MAX || name[0] < 'a' || name[0] > 'z')
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
              name[i] == '_'))
            return false;
    return true;
}

static bool has_control(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return true;
    return false;
}

static int find_param(const struct action *a, const char *name, size_t len)
{
    for (size_t i = 0; i < a->nparams; i++)
        if (strlen(a->params[i].name) == len && memcmp(a->params[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

static const char *shown(const char *text, char *buf, size_t len)
{
    return vg_yaml_quotable(text, strlen(text), buf, len);
}

static int parse_deny(struct checker *ck, struct action_param *p, const struct vg_cfg_strings *sv,
                      const char *base, const char *type)
{
    char ypath[YPATH_LEN], q[VG_YAML_QUOTE_MAX + 1];
    static const char *const loopback[] = {"127.0.0.0/8", "::1"};

    p->deny = calloc(sv->count + 2, sizeof(*p->deny));
    if (!p->deny)
        return oom(ck);
    for (size_t i = 0; i < 2; i++)
        if (actions_net_parse(loopback[i], true, &p->deny[p->ndeny++]) < 0)
            return -EINVAL; /* cannot happen: the texts above are valid */
    for (size_t i = 0; i < sv->count; i++) {
        if (actions_net_parse(sv->items[i], true, &p->deny[p->ndeny]) < 0)
            return FAIL(ck, ypath_of(ck, ypath, sizeof(ypath), "%s/%s/deny/%zu", base, type, i),
                        "action \"%s\": parameter \"%s\": deny[%zu] \"%s\" is not an IP address "
                        "or a network such as 192.0.2.0/24 (host bits clear)",
                        ck->name, p->name, i, shown(sv->items[i], q, sizeof(q)));
        p->ndeny++;
    }
    return 0;
}

static int check_enum(struct checker *ck, struct action_param *p,
                      const struct action_param_config *c, const char *base)
{
    char ypath[YPATH_LEN], q[VG_YAML_QUOTE_MAX + 1];

    if (c->enum_values.count == 0)
        return FAIL(ck, ypath_of(ck, ypath, sizeof(ypath), "%s/enum", base),
                    "action \"%s\": parameter \"%s\": enum needs at least one value", ck->name,
                    p->name);
    p->values = calloc(c->enum_values.count, sizeof(*p->values));
    if (!p->values)
        return oom(ck);
    for (size_t i = 0; i < c->enum_values.count; i++) {
        const char *v = c->enum_values.items[i];
        ypath_of(ck, ypath, sizeof(ypath), "%s/enum/%zu", base, i);
        if (!v[0] || has_control(v) || strlen(v) > ACTION_VALUE_MAX)
            return FAIL(ck, ypath,
                        "action \"%s\": parameter \"%s\": enum value %zu must be non-empty "
                        "printable text of at most %d bytes",
                        ck->name, p->name, i, ACTION_VALUE_MAX);
        for (size_t j = 0; j < p->nvalues; j++)
            if (p->values[j] && strcmp(p->values[j], v) == 0)
                return FAIL(ck, ypath,
                            "action \"%s\": parameter \"%s\": enum value \"%s\" is "
                            "listed twice",
                            ck->name, p->name, shown(v, q, sizeof(q)));
        if (!(p->values[p->nvalues] = strdup(v)))
            return oom(ck);
        p->nvalues++;
    }
    return 0;
}

static int check_identifier(struct checker *ck, struct action_param *p,
                            const struct action_param_config *c, const char *base)
{
    char ypath[YPATH_LEN], why[256];
    char *anchored;
    size_t len;
    int rc;

    ypath_of(ck, ypath, sizeof(ypath), "%s/identifier/pattern", base);
    if (!c->identifier_pattern || !c->identifier_pattern[0])
        return FAIL(ck, ypath_of(ck, ypath, sizeof(ypath), "%s/identifier", base),
                    "action \"%s\": parameter \"%s\": identifier needs a pattern (a POSIX "
                    "extended regular expression, matched against the whole value)",
                    ck->name, p->name);
    len = strlen(c->identifier_pattern) + 5;
    anchored = malloc(len);
    if (!anchored)
        return oom(ck);
    snprintf(anchored, len, "^(%s)$", c->identifier_pattern);
    rc = regcomp(&p->pattern_re, anchored, REG_EXTENDED | REG_NOSUB);
    free(anchored);
    if (rc != 0) {
        regerror(rc, &p->pattern_re, why, sizeof(why));
        return FAIL(ck, ypath,
                    "action \"%s\": parameter \"%s\": pattern \"%s\" is not a valid POSIX "
                    "extended regular expression: %s",
                    ck->name, p->name, c->identifier_pattern, why);
    }
    p->pattern_compiled = true;
    p->pattern = strdup(c->identifier_pattern);
    if (!p->pattern)
        return oom(ck);
    p->max_length = (size_t)c->identifier_max_length;
    return 0;
}

/* int and duration: both bounds given, in order. */
static int check_range(struct checker *ck, struct action_param *p, const char *base,
                       const char *type, int64_t lo, int64_t hi)
{
    char ypath[YPATH_LEN], ylo[YPATH_LEN], yhi[YPATH_LEN];

    ypath_of(ck, ypath, sizeof(ypath), "%s/%s", base, type);
    ypath_of(ck, ylo, sizeof(ylo), "%s/%s/min", base, type);
    ypath_of(ck, yhi, sizeof(yhi), "%s/%s/max", base, type);
    if (!cfgcheck_has(ck->doc, ylo) || !cfgcheck_has(ck->doc, yhi))
        return FAIL(ck, ypath, "action \"%s\": parameter \"%s\": %s needs both min and max",
                    ck->name, p->name, type);
    if (lo > hi)
        return FAIL(ck, ylo, "action \"%s\": parameter \"%s\": %s min is above its max", ck->name,
                    p->name, type);
    p->min = lo;
    p->max = hi;
    return 0;
}

static int check_param(struct checker *ck, struct action *a, size_t j,
                       const struct action_param_config *c)
{
    struct action_param *p = &a->params[j];
    char base[48], ypath[YPATH_LEN];
    const char *found[NTYPES];
    size_t nfound = 0;
    int r = 0;

    snprintf(base, sizeof(base), "/params/%zu", j);
    ypath_of(ck, ypath, sizeof(ypath), "%s/name", base);
    if (!param_name_ok(c->name, strlen(c->name)))
        return FAIL(ck, ypath,
                    "action \"%s\": parameter name \"%s\" must be a lower-case letter followed by "
                    "at most %d lower-case letters, digits or '_'",
                    ck->name, c->name, ACTION_PARAM_NAME_MAX - 1);
    if (find_param(a, c->name, strlen(c->name)) >= 0)
        return FAIL(ck, ypath, "action \"%s\": parameter \"%s\" is declared twice", ck->name,
                    c->name);
    if (!(p->name = strdup(c->name)))
        return oom(ck);
    a->nparams = j + 1; /* from here on, destroy frees what p holds */

    for (size_t t = 0; t < NTYPES; t++) {
        char tpath[YPATH_LEN];
        if (!cfgcheck_has(ck->doc,
                          ypath_of(ck, tpath, sizeof(tpath), "%s/%s", base, type_names[t])))
            continue;
        if (nfound == 0)
            p->type = (enum action_param_type)t;
        found[nfound++] = type_names[t];
    }
    ypath_of(ck, ypath, sizeof(ypath), "%s", base);
    if (nfound == 0)
        return FAIL(ck, ypath,
                    "action \"%s\": parameter \"%s\" needs a type: one of enum, int, duration, "
                    "ip, cidr or identifier",
                    ck->name, p->name);
    if (nfound > 1)
        return FAIL(ck, ypath,
                    "action \"%s\": parameter \"%s\" has more than one type (%s and %s); give it "
                    "one",
                    ck->name, p->name, found[0], found[1]);

    switch (p->type) {
    case ACTION_PARAM_ENUM:
        r = check_enum(ck, p, c, base);
        break;
    case ACTION_PARAM_INT:
        r = check_range(ck, p, base, "int", c->int_min, c->int_max);
        break;
    case ACTION_PARAM_DURATION:
        r = check_range(ck, p, base, "duration", c->duration_min_ms, c->duration_max_ms);
        break;
    case ACTION_PARAM_IP:
        r = parse_deny(ck, p, &c->ip_deny, base, "ip");
        break;
    case ACTION_PARAM_CIDR:
        if (c->cidr_prefix4_min > c->cidr_prefix4_max || c->cidr_prefix6_min > c->cidr_prefix6_max)
            return FAIL(ck,
                        ypath_of(ck, ypath, sizeof(ypath), "%s/cidr/%s", base,
                                 c->cidr_prefix4_min > c->cidr_prefix4_max ? "prefix4" : "prefix6"),
                        "action \"%s\": parameter \"%s\": a prefix min is above its max", ck->name,
                        p->name);
        p->prefix4_min = (unsigned)c->cidr_prefix4_min;
        p->prefix4_max = (unsigned)c->cidr_prefix4_max;
        p->prefix6_min = (unsigned)c->cidr_prefix6_min;
        p->prefix6_max = (unsigned)c->cidr_prefix6_max;
        r = parse_deny(ck, p, &c->cidr_deny, base, "cidr");
        break;
    case ACTION_PARAM_IDENTIFIER:
        r = check_identifier(ck, p, c, base);
        break;
    }
    return r;
}

/* ---- exec: argv ---- */

static bool is_shell(const char *path)
{
    char copy[PATH_MAX], real[PATH_MAX];
    const char *names[2] = {NULL, NULL};

    snprintf(copy, sizeof(copy), "%s", path);
    names[0] = basename(copy);
    if (realpath(path, real))
        names[1] = basename(real);
    for (size_t n = 0; n < 2; n++)
        for (size_t i = 0; names[n] && i < sizeof(shells) / sizeof(shells[0]); i++)
            if (strcmp(names[n], shells[i]) == 0)
                return true;
    return false;
}

/* An absolute path without "." or ".." components, empty components or a trailing '/'. */
static bool path_plain(const char *path)
{
    if (path[0] != '/' || strstr(path, "//") || strstr(path, "/./") || strstr(path, "/../"))
        return false;
    size_t len = strlen(path);
    return !(path[len - 1] == '/' || (len >= 2 && strcmp(path + len - 2, "/.") == 0) ||
             (len >= 3 && strcmp(path + len - 3, "/..") == 0));
}

static int check_program(struct checker *ck, const struct action *a, const char *ypath)
{
    const char *prog = a->argv[0];
    char q[VG_YAML_QUOTE_MAX + 1];
    struct stat st;

    if (strchr(prog, '{') || strchr(prog, '}'))
        return FAIL(ck, ypath,
                    "action \"%s\": argv[0] \"%s\" must be the program's absolute path, never a "
                    "placeholder",
                    ck->name, shown(prog, q, sizeof(q)));
    if (!path_plain(prog))
        return FAIL(ck, ypath,
                    "action \"%s\": argv[0] \"%s\" must be an absolute path such as "
                    "/usr/sbin/nginx (programs run with execve: no PATH search, no shell)",
                    ck->name, shown(prog, q, sizeof(q)));
    if (is_shell(prog))
        return FAIL(ck, ypath,
                    "action \"%s\": argv[0] \"%s\" is a shell: Vigil never runs one; name the "
                    "program itself",
                    ck->name, shown(prog, q, sizeof(q)));
    if (stat(prog, &st) != 0) {
        int e = errno;
        return FAIL(ck, ypath, "action \"%s\": argv[0] \"%s\": %s", ck->name,
                    shown(prog, q, sizeof(q)),
                    e == ENOENT ? "no such program on this node" : strerror(e));
    }
    if (!S_ISREG(st.st_mode) || !(st.st_mode & 0111))
        return FAIL(ck, ypath, "action \"%s\": argv[0] \"%s\" is not an executable file", ck->name,
                    shown(prog, q, sizeof(q)));
    if (a->root && (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH))))
        return FAIL(ck, ypath,
                    "action \"%s\": argv[0] \"%s\" runs as root, so it must be owned by root "
                    "and writable by nobody else",
                    ck->name, shown(prog, q, sizeof(q)));
    return 0;
}

static int check_argv(struct checker *ck, struct action *a, const struct action_config *c)
{
    char ypath[YPATH_LEN], q[VG_YAML_QUOTE_MAX + 1];
    bool *used;
    int r = 0;

    if (c->argv.count == 0)
        return FAIL(ck, ypath_of(ck, ypath, sizeof(ypath), "/kind"),
                    "action \"%s\": an exec action needs argv: the program and its arguments",
                    ck->name);
    a->argv = calloc(c->argv.count + 1, sizeof(*a->argv));
    a->argv_param = calloc(c->argv.count, sizeof(*a->argv_param));
    if (!a->argv || !a->argv_param)
        return oom(ck);
    for (size_t k = 0; k < c->argv.count; k++) {
        if (!(a->argv[k] = strdup(c->argv.items[k])))
            return oom(ck);
        a->argc = k + 1;
        a->argv_param[k] = -1;
    }
    r = check_program(ck, a, ypath_of(ck, ypath, sizeof(ypath), "/argv/0"));
    if (r < 0)
        return r;

    used = calloc(a->nparams + 1, sizeof(*used));
    if (!used)
        return oom(ck);
    for (size_t k = 1; k < a->argc && r == 0; k++) {
        const char *e = a->argv[k];
        size_t len = strlen(e);
        ypath_of(ck, ypath, sizeof(ypath), "/argv/%zu", k);

        if (has_control(e)) {
            r = FAIL(ck, ypath, "action \"%s\": argv[%zu] contains a control character", ck->name,
                     k);
        } else if (len >= 2 && e[0] == '{' && e[len - 1] == '}' && !memchr(e + 1, '{', len - 2) &&
                   !memchr(e + 1, '}', len - 2)) {
            int idx = param_name_ok(e + 1, len - 2) ? find_param(a, e + 1, len - 2) : -1;
            if (!param_name_ok(e + 1, len - 2))
                r = FAIL(ck, ypath,
                         "action \"%s\": argv[%zu] \"%s\" is not a placeholder: write {name} "
                         "with the name of a parameter",
                         ck->name, k, shown(e, q, sizeof(q)));
            else if (idx < 0)
                r = FAIL(ck, ypath,
                         "action \"%s\": argv[%zu] \"%s\" names no parameter of this action "
                         "(declare it under params)",
                         ck->name, k, shown(e, q, sizeof(q)));
            else {
                a->argv_param[k] = idx;
                used[idx] = true;
            }
        } else if (strchr(e, '{') || strchr(e, '}')) {
            r = FAIL(
                ck, ypath,
                "action \"%s\": argv[%zu] \"%s\" mixes text and a placeholder: a placeholder "
                "must be a whole argv element (\"--unit\", \"{unit}\", not \"--unit={unit}\"), "
                "and braces appear nowhere else",
                ck->name, k, shown(e, q, sizeof(q)));
        }
    }
    for (size_t j = 0; j < a->nparams && r == 0; j++)
        if (!used[j])
            r = FAIL(ck, ypath_of(ck, ypath, sizeof(ypath), "/params/%zu/name", j),
                     "action \"%s\": parameter \"%s\" is not used in argv (write \"{%s}\" as an "
                     "element where its value goes)",
                     ck->name, a->params[j].name, a->params[j].name);
    free(used);
    return r;
}

/* ---- built-in kinds: fixed parameters ---- */

static const struct action_param *param_named(const struct action *a, const char *name)
{
    int i = find_param(a, name, strlen(name));
    return i < 0 ? NULL : &a->params[i];
}

static bool in_list(const char *v, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] && strcmp(v, list[i]) == 0)
            return true;
    return false;
}

/* Exactly the parameters named in want (n of them), nothing else. */
static int want_params(struct checker *ck, const struct action *a, const char *const *want,
                       size_t n, const char *what)
{
    char ypath[YPATH_LEN];

    for (size_t j = 0; j < a->nparams; j++)
        if (!in_list(a->params[j].name, want, n))
            return FAIL(ck, ypath_of(ck, ypath, sizeof(ypath), "/params/%zu/name", j),
                        "action \"%s\": a %s action takes %s; \"%s\" is not one of them", ck->name,
                        actions_kind_name(a->kind), what, a->params[j].name);
    for (size_t i = 0; i < n; i++)
        if (!param_named(a, want[i]))
            return FAIL(ck, ypath_of(ck, ypath, sizeof(ypath), a->nparams ? "/params" : "/kind"),
                        "action \"%s\": a %s action takes %s; \"%s\" is missing", ck->name,
                        actions_kind_name(a->kind), what, want[i]);
    return 0;
}

static int want_type(struct checker *ck, const struct action *a, const char *name,
                     enum action_param_type t1, enum action_param_type t2, const char *what)
{
    const struct action_param *p = param_named(a, name);
    char ypath[YPATH_LEN];

    if (p->type == t1 || p->type == t2)
        return 0;
    return FAIL(ck, ypath_of(ck, ypath, sizeof(ypath), "/params/%td", p - a->params),
                "action \"%s\": parameter \"%s\" must be %s (it is %s)", ck->name, name, what,
                actions_param_type_name(p->type));
}

/* Each value of enum parameter name must be in allowed[] (n); what names the list. */
static int want_enum_within(struct checker *ck, const struct action *a, const char *name,
                            const char *const *allowed, size_t n, const char *what)
{
    const struct action_param *p = param_named(a, name);
    char ypath[YPATH_LEN], q[VG_YAML_QUOTE_MAX + 1];

    for (size_t i = 0; i < p->nvalues; i++)
        if (!in_list(p->values[i], allowed, n))
            return FAIL(
                ck, ypath_of(ck, ypath, sizeof(ypath), "/params/%td/enum/%zu", p - a->params, i),
                "action \"%s\": parameter \"%s\": \"%s\" is not %s", ck->name, name,
                shown(p->values[i], q, sizeof(q)), what);
    return 0;
}

/* A systemd unit name: letters, digits, ":-_.\@", not starting with '-'. */
static bool unit_name_ok(const char *s)
{
    if (!s[0] || s[0] == '-' || strlen(s) > 255)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr(":-_.\\@", *p)))
            return false;
    return true;
}

static int check_builtin(struct checker *ck, struct action *a)
{
    static const char *const unit[] = {"unit"};
    static const char *const sig[] = {"process", "signal"};
    static const char *const block[] = {"address", "expires"};
    char ypath[YPATH_LEN];
    int r;

    switch (a->kind) {
    case ACTION_SYSTEMD:
        if ((r = want_params(ck, a, unit, 1, "one parameter, unit")) < 0 ||
            (r = want_type(ck, a, "unit", ACTION_PARAM_ENUM, ACTION_PARAM_IDENTIFIER,
                           "an enum or an identifier of unit names")) < 0)
            return r;
        for (size_t i = 0; i < param_named(a, "unit")->nvalues; i++)
            if (!unit_name_ok(param_named(a, "unit")->values[i]))
                return FAIL(ck,
                            ypath_of(ck, ypath, sizeof(ypath), "/params/%td/enum/%zu",
                                     param_named(a, "unit") - a->params, i),
                            "action \"%s\": \"%s\" is not a systemd unit name", ck->name,
                            param_named(a, "unit")->values[i]);
        return 0;
    case ACTION_SIGNAL:
        if ((r = want_params(ck, a, sig, 2, "two parameters, process and signal")) < 0 ||
            (r = want_type(ck, a, "process", ACTION_PARAM_ENUM, ACTION_PARAM_ENUM,
                           "an enum of names from collectors.processes.watch")) < 0 ||
            (r = want_type(ck, a, "signal", ACTION_PARAM_ENUM, ACTION_PARAM_ENUM,
                           "an enum of TERM, HUP, USR1, USR2 or KILL")) < 0 ||
            (r = want_enum_within(ck, a, "process", ck->ctx->watched, ck->ctx->nwatched,
                                  "a watched process (collectors.processes.watch names)")) < 0)
            return r;
        return want_enum_within(ck, a, "signal", signal_names,
                                sizeof(signal_names) / sizeof(signal_names[0]),
                                "one of TERM, HUP, USR1, USR2, KILL");
    case ACTION_NFT:
        if ((r = want_params(ck, a, block, a->op == ACTION_OP_BLOCK ? 2 : 1,
                             a->op == ACTION_OP_BLOCK ? "address and expires" : "address")) < 0 ||
            (r = want_type(ck, a, "address", ACTION_PARAM_IP, ACTION_PARAM_CIDR,
                           "an ip or a cidr")) < 0)
            return r;
        if (a->op == ACTION_OP_BLOCK)
            return want_type(ck, a, "expires", ACTION_PARAM_DURATION, ACTION_PARAM_DURATION,
                             "a duration (how long the block lasts)");
        return 0;
    case ACTION_ISOLATE:
        return want_params(ck, a, NULL, 0, "no parameters");
    case ACTION_EXEC:
    case ACTION_POSTGRES:
    case ACTION_REDIS:
    case ACTION_KUBERNETES:
        break;
    }
    return 0;
}

/* ---- service kinds: postgres, redis, kubernetes ---- */

/* What each service op takes: the parameters it needs, those it may have, whether it must be
 * destructive. Names and types are fixed so that vigil-agent-action knows what each means;
 * names of things (namespaces, deployments, databases...) are enums: the catalog's allow-list. */
struct service_op {
    enum action_kind kind;
    enum action_op op;
    const char *required[6];
    const char *optional[2];
    bool destructive;
};

static const struct service_op service_ops[] = {
    {ACTION_POSTGRES, ACTION_OP_TERMINATE, {"older_than"}, {"database"}, false},
    {ACTION_POSTGRES, ACTION_OP_ANALYZE, {NULL}, {"database"}, false},
    {ACTION_POSTGRES, ACTION_OP_REINDEX, {"database"}, {NULL}, true},
    {ACTION_REDIS, ACTION_OP_FLUSHALL, {NULL}, {NULL}, true},
    {ACTION_REDIS, ACTION_OP_FLUSHDB, {"db"}, {NULL}, false},
    {ACTION_KUBERNETES, ACTION_OP_RESTART, {"namespace", "deployment"}, {NULL}, false},
    {ACTION_KUBERNETES, ACTION_OP_SCALE, {"namespace", "deployment", "replicas"}, {NULL}, false},
    {ACTION_KUBERNETES,
     ACTION_OP_SET_ENV,
     {"namespace", "deployment", "container", "variable", "value"},
     {NULL},
     false},
    {ACTION_KUBERNETES,
     ACTION_OP_SET_RESOURCES,
     {"namespace", "deployment", "container", "cpu", "memory"},
     {NULL},
     false},
    {ACTION_KUBERNETES, ACTION_OP_BLOCK, {"namespace", "policy", "cidr"}, {NULL}, false},
    {ACTION_KUBERNETES, ACTION_OP_UNBLOCK, {"namespace", "policy", "cidr"}, {NULL}, false},
    {ACTION_KUBERNETES, ACTION_OP_ISOLATE_POD, {"namespace", "pod"}, {NULL}, false},
    {ACTION_KUBERNETES, ACTION_OP_RELEASE_POD, {"namespace", "pod"}, {NULL}, false},
};

/* The type each fixed parameter name must have (two when either will do). */
static const struct {
    const char *name;
    enum action_param_type t1, t2;
    const char *what;
} service_param_types[] = {
    {"older_than", ACTION_PARAM_DURATION, ACTION_PARAM_DURATION, "a duration"},
    {"database", ACTION_PARAM_ENUM, ACTION_PARAM_ENUM, "an enum of database names"},
    {"db", ACTION_PARAM_INT, ACTION_PARAM_INT, "an int (the Redis database number)"},
    {"namespace", ACTION_PARAM_ENUM, ACTION_PARAM_ENUM, "an enum of namespaces"},
    {"deployment", ACTION_PARAM_ENUM, ACTION_PARAM_ENUM, "an enum of deployment names"},
    {"container", ACTION_PARAM_ENUM, ACTION_PARAM_ENUM, "an enum of container names"},
    {"variable", ACTION_PARAM_ENUM, ACTION_PARAM_ENUM, "an enum of environment variable names"},
    {"policy", ACTION_PARAM_ENUM, ACTION_PARAM_ENUM, "an enum of NetworkPolicy names"},
    {"replicas", ACTION_PARAM_INT, ACTION_PARAM_INT, "an int"},
    {"cidr", ACTION_PARAM_CIDR, ACTION_PARAM_CIDR, "a cidr"},
    {"pod", ACTION_PARAM_IDENTIFIER, ACTION_PARAM_IDENTIFIER, "an identifier (pod names vary)"},
    {"value", ACTION_PARAM_ENUM, ACTION_PARAM_IDENTIFIER, "an enum or an identifier"},
    {"cpu", ACTION_PARAM_ENUM, ACTION_PARAM_IDENTIFIER, "an enum or an identifier"},
    {"memory", ACTION_PARAM_ENUM, ACTION_PARAM_IDENTIFIER, "an enum or an identifier"},
};

static size_t strv_len(const char *const *v, size_t max)
{
    size_t n = 0;
    while (n < max && v[n])
        n++;
    return n;
}

/* $1..$N in sql, N the number of parameters: each used, none beyond. */
static int check_statement(struct checker *ck, const struct action *a)
{
    bool used[ACTION_PARAMS_MAX + 1] = {false};
    char ypath[YPATH_LEN];

    ypath_of(ck, ypath, sizeof(ypath), "/statement");
    if (!a->statement || !a->statement[0])
        return FAIL(ck, ypath,
                    "action \"%s\": a postgres statement action needs statement: the SQL it runs "
                    "(the coordinator can only name the action, never send SQL)",
                    ck->name);
    for (const char *p = a->statement; (p = strchr(p, '$'));) {
        p++;
        if (*p < '1' || *p > '9')
            continue;
        long n = strtol(p, (char **)&p, 10);
        if (n < 1 || (size_t)n > a->nparams)
            return FAIL(ck, ypath,
                        "action \"%s\": the statement uses $%ld but the action has %zu "
                        "parameter%s ($1..$N bind them in the order of params)",
                        ck->name, n, a->nparams, a->nparams == 1 ? "" : "s");
        used[n] = true;
    }
    for (size_t j = 1; j <= a->nparams; j++)
        if (!used[j])
            return FAIL(ck, ypath,
                        "action \"%s\": parameter \"%s\" is $%zu, which the statement never uses",
                        ck->name, a->params[j - 1].name, j);
    return 0;
}

/* target: a configured probe target of the kind (postgres, redis); no other kind has one. */
static int check_target(struct checker *ck, const struct action *a)
{
    char ypath[YPATH_LEN], q[VG_YAML_QUOTE_MAX + 1];
    const char *const *names =
        a->kind == ACTION_POSTGRES ? ck->ctx->postgres_targets : ck->ctx->redis_targets;
    size_t n = a->kind == ACTION_POSTGRES ? ck->ctx->npostgres_targets : ck->ctx->nredis_targets;

    ypath_of(ck, ypath, sizeof(ypath), "/target");
    if (a->kind != ACTION_POSTGRES && a->kind != ACTION_REDIS)
        return a->target[0]
                   ? FAIL(ck, ypath, "action \"%s\": target is for postgres and redis actions",
                          ck->name)
                   : 0;
    if (!a->target[0])
        return FAIL(ck, ypath_of(ck, ypath, sizeof(ypath), "/kind"),
                    "action \"%s\": a %s action needs target: the name of one of "
                    "collectors.%s.targets (it uses that target's address and password)",
                    ck->name, actions_kind_name(a->kind), actions_kind_name(a->kind));
    if (!in_list(a->target, names, n))
        return FAIL(ck, ypath,
                    "action \"%s\": target \"%s\" is not a name in collectors.%s.targets", ck->name,
                    shown(a->target, q, sizeof(q)), actions_kind_name(a->kind));
    return 0;
}

static int check_service(struct checker *ck, struct action *a)
{
    char ypath[YPATH_LEN];
    const struct service_op *so = NULL;
    int r;

    if (a->kind == ACTION_KUBERNETES && !ck->ctx->cluster)
        return FAIL(ck, ypath_of(ck, ypath, sizeof(ypath), "/kind"),
                    "action \"%s\": kubernetes actions run only on the cluster agent (role: "
                    "cluster); a node agent holds no cluster rights, so a compromised node cannot "
                    "change the cluster",
                    ck->name);
    if ((r = check_target(ck, a)) < 0)
        return r;
    if (a->op != ACTION_OP_STATEMENT && a->statement[0])
        return FAIL(ck, ypath_of(ck, ypath, sizeof(ypath), "/statement"),
                    "action \"%s\": statement is for postgres actions with op: statement",
                    ck->name);
    if (a->op == ACTION_OP_STATEMENT)
        return check_statement(ck, a);

    for (size_t i = 0; i < sizeof(service_ops) / sizeof(service_ops[0]); i++)
        if (service_ops[i].kind == a->kind && service_ops[i].op == a->op)
            so = &service_ops[i];
    if (!so)
        return FAIL(ck, ypath_of(ck, ypath, sizeof(ypath), "/op"), "action \"%s\": no such op",
                    ck->name);
    size_t nreq = strv_len(so->required, 6), nopt = strv_len(so->optional, 2);
    const char *all[8];
    char what[160] = "";
    for (size_t i = 0; i < nreq + nopt; i++) {
        all[i] = i < nreq ? so->required[i] : so->optional[i - nreq];
        snprintf(what + strlen(what), sizeof(what) - strlen(what), "%s%s%s", i ? ", " : "", all[i],
                 i >= nreq ? " (optional)" : "");
    }
    if (!what[0])
        snprintf(what, sizeof(what), "no parameters");
    /* The required ones, then whichever optional ones are there: nothing else. */
    for (size_t j = 0; j < a->nparams; j++)
        if (!in_list(a->params[j].name, all, nreq + nopt))
            return FAIL(ck, ypath_of(ck, ypath, sizeof(ypath), "/params/%zu/name", j),
                        "action \"%s\": a %s %s action takes %s; \"%s\" is not one of them",
                        ck->name, actions_kind_name(a->kind), actions_op_name(a->op), what,
                        a->params[j].name);
    for (size_t i = 0; i < nreq; i++)
        if (!param_named(a, so->required[i]))
            return FAIL(ck, ypath_of(ck, ypath, sizeof(ypath), a->nparams ? "/params" : "/op"),
                        "action \"%s\": a %s %s action takes %s; \"%s\" is missing", ck->name,
                        actions_kind_name(a->kind), actions_op_name(a->op), what, so->required[i]);
    for (size_t j = 0; j < a->nparams; j++)
        for (size_t t = 0; t < sizeof(service_param_types) / sizeof(service_param_types[0]); t++)
            if (strcmp(service_param_types[t].name, a->params[j].name) == 0 &&
                (r = want_type(ck, a, a->params[j].name, service_param_types[t].t1,
                               service_param_types[t].t2, service_param_types[t].what)) < 0)
                return r;
    if (so->destructive && !a->destructive)
        return FAIL(ck, ypath_of(ck, ypath, sizeof(ypath), "/op"),
                    "action \"%s\": %s %s cannot be undone, so it must be destructive: true (two "
                    "operators' approvals, one an admin)",
                    ck->name, actions_kind_name(a->kind), actions_op_name(a->op));
    return 0;
}

/* kind and op: op "" is the kind's default; exec has none. */
static int check_kind(struct checker *ck, struct action *a, const struct action_config *c)
{
    static const struct {
        const char *op;
        enum action_kind kind;
        enum action_op value;
    } ops[] = {
        {"", ACTION_EXEC, ACTION_OP_RUN},
        {"", ACTION_SYSTEMD, ACTION_OP_RESTART},
        {"restart", ACTION_SYSTEMD, ACTION_OP_RESTART},
        {"", ACTION_SIGNAL, ACTION_OP_SIGNAL},
        {"block", ACTION_NFT, ACTION_OP_BLOCK},
        {"unblock", ACTION_NFT, ACTION_OP_UNBLOCK},
        {"", ACTION_ISOLATE, ACTION_OP_ISOLATE},
        {"isolate", ACTION_ISOLATE, ACTION_OP_ISOLATE},
        {"release", ACTION_ISOLATE, ACTION_OP_RELEASE},
        {"terminate", ACTION_POSTGRES, ACTION_OP_TERMINATE},
        {"analyze", ACTION_POSTGRES, ACTION_OP_ANALYZE},
        {"reindex", ACTION_POSTGRES, ACTION_OP_REINDEX},
        {"statement", ACTION_POSTGRES, ACTION_OP_STATEMENT},
        {"flushall", ACTION_REDIS, ACTION_OP_FLUSHALL},
        {"flushdb", ACTION_REDIS, ACTION_OP_FLUSHDB},
        {"restart", ACTION_KUBERNETES, ACTION_OP_RESTART},
        {"scale", ACTION_KUBERNETES, ACTION_OP_SCALE},
        {"set-env", ACTION_KUBERNETES, ACTION_OP_SET_ENV},
        {"set-resources", ACTION_KUBERNETES, ACTION_OP_SET_RESOURCES},
        {"block", ACTION_KUBERNETES, ACTION_OP_BLOCK},
        {"unblock", ACTION_KUBERNETES, ACTION_OP_UNBLOCK},
        {"isolate-pod", ACTION_KUBERNETES, ACTION_OP_ISOLATE_POD},
        {"release-pod", ACTION_KUBERNETES, ACTION_OP_RELEASE_POD},
    };
    static const char *const op_help[] = {
        [ACTION_EXEC] = "an exec action takes no op",
        [ACTION_SYSTEMD] = "a systemd action only restarts (op: restart, the default)",
        [ACTION_SIGNAL] = "a signal action takes no op",
        [ACTION_NFT] = "an nft action needs op: block or unblock",
        [ACTION_ISOLATE] = "an isolate action takes op: isolate (the default) or release",
        [ACTION_POSTGRES] = "a postgres action needs op: terminate, analyze, reindex or statement",
        [ACTION_REDIS] = "a redis action needs op: flushall or flushdb",
        [ACTION_KUBERNETES] = "a kubernetes action needs op: restart, scale, set-env, "
                              "set-resources, block, unblock, isolate-pod or release-pod",
    };
    char ypath[YPATH_LEN], q[VG_YAML_QUOTE_MAX + 1];
    size_t k;

    for (k = 0; k < sizeof(kind_names) / sizeof(kind_names[0]); k++)
        if (strcmp(c->kind, kind_names[k]) == 0)
            break;
    if (k == sizeof(kind_names) / sizeof(kind_names[0]))
        return FAIL(ck, ypath_of(ck, ypath, sizeof(ypath), "/kind"),
                    "action \"%s\": kind must be exec, systemd, signal, nft, isolate, postgres, "
                    "redis or kubernetes (got \"%s\")",
                    ck->name, shown(c->kind, q, sizeof(q)));
    a->kind = (enum action_kind)k;
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (ops[i].kind == a->kind && strcmp(ops[i].op, c->op) == 0) {
            a->op = ops[i].value;
            return 0;
        }
    }
    return FAIL(ck, ypath_of(ck, ypath, sizeof(ypath), c->op[0] ? "/op" : "/kind"),
                "action \"%s\": %s%s%s%s", ck->name, op_help[a->kind], c->op[0] ? " (got \"" : "",
                c->op[0] ? shown(c->op, q, sizeof(q)) : "", c->op[0] ? "\")" : "");
}

/* ---- evidence ---- */

static int check_evidence(struct checker *ck, struct action *a, const struct action_config *c)
{
    struct evidence_kind kinds[EVIDENCE_KINDS_MAX];
    struct evidence_sources none = {0};
    const char *known[EVIDENCE_KINDS_MAX];
    size_t nknown = evidence_kinds_fill(kinds, &none);
    char ypath[YPATH_LEN], q[VG_YAML_QUOTE_MAX + 1];

    for (size_t i = 0; i < nknown; i++)
        known[i] = kinds[i].name;
    if (c->evidence.count == 0)
        return 0;
    a->evidence = calloc(c->evidence.count, sizeof(*a->evidence));
    if (!a->evidence)
        return oom(ck);
    for (size_t i = 0; i < c->evidence.count; i++) {
        struct action_evidence *e = &a->evidence[i];
        char *text = strdup(c->evidence.items[i]);
        char *save = NULL, *tok;
        const char *const *allowed;
        size_t ntok = 0;

        a->nevidence = i + 1;
        ypath_of(ck, ypath, sizeof(ypath), "/evidence/%zu", i);
        if (!text)
            return oom(ck);
        for (const char *p = text; *p; p++)
            ntok += (*p == ' ') ? 1 : 0;
        e->keys = calloc(ntok + 1, sizeof(*e->keys));
        e->values = calloc(ntok + 1, sizeof(*e->values));
        tok = strtok_r(text, " ", &save);
        if (!e->keys || !e->values || (tok && !(e->kind = strdup(tok)))) {
            free(text);
            return oom(ck);
        }
        if (!tok || !in_list(tok, known, nknown)) {
            free(text);
            return FAIL(ck, ypath,
                        "action \"%s\": evidence[%zu] \"%s\" must start with an evidence kind: "
                        "%s",
                        ck->name, i, shown(c->evidence.items[i], q, sizeof(q)), VG_EVIDENCE_KINDS);
        }
        allowed = vg_evidence_kind_args(tok);
        while ((tok = strtok_r(NULL, " ", &save))) {
            char *eq = strchr(tok, '=');
            bool ok = eq && eq != tok && eq[1] != '\0';
            size_t n = 0;
            if (ok) {
                *eq = '\0';
                while (allowed && allowed[n])
                    n++;
                ok = in_list(tok, allowed, n);
            }
            if (!ok) {
                char takes[128] = "";
                for (size_t k = 0; allowed && allowed[k]; k++)
                    snprintf(takes + strlen(takes), sizeof(takes) - strlen(takes), "%s%s",
                             k ? ", " : "", allowed[k]);
                int rr = FAIL(ck, ypath,
                              "action \"%s\": evidence[%zu]: \"%s\" is not an argument of %s "
                              "(key=value with a key of: %s)",
                              ck->name, i, shown(tok, q, sizeof(q)), e->kind,
                              takes[0] ? takes : "none, it takes no arguments");
                free(text);
                return rr;
            }
            if (!(e->keys[e->nargs] = strdup(tok)) || !(e->values[e->nargs] = strdup(eq + 1))) {
                free(e->keys[e->nargs]);
                e->keys[e->nargs] = NULL;
                free(text);
                return oom(ck);
            }
            e->nargs++;
        }
        free(text);
    }
    return 0;
}

/* ---- one action ---- */

static int check_action(struct checker *ck, actions_t *cat, const struct action_config *c)
{
    struct action *a = &cat->items[ck->index];
    char ypath[YPATH_LEN], q[VG_YAML_QUOTE_MAX + 1];
    const struct action *dup;
    int r;

    ypath_of(ck, ypath, sizeof(ypath), "/name");
    ck->name = c->name;
    if (!action_name_ok(c->name))
        return FAIL(ck, ypath,
                    "action name \"%s\" must be a lower-case letter followed by at most %d "
                    "lower-case letters, digits, '_', '.' or '-'",
                    shown(c->name, q, sizeof(q)), ACTION_NAME_MAX - 1);
    if ((dup = actions_find(cat, c->name)))
        return FAIL(ck, ypath, "action \"%s\" is defined twice (first as actions[%td])", c->name,
                    dup - cat->items);
    if (!(a->name = strdup(c->name)))
        return oom(ck);
    cat->count = ck->index + 1;

    a->timeout_ms = c->timeout_ms;
    a->output_max_bytes = c->output_max_bytes;
    a->auto_run = c->auto_run;
    a->destructive = c->destructive;
    a->root = c->root;
    if (!(a->target = strdup(c->target)) || !(a->statement = strdup(c->statement)))
        return oom(ck);
    if ((r = check_kind(ck, a, c)) < 0)
        return r;
    if (a->auto_run && a->destructive)
        return FAIL(
            ck, ypath_of(ck, ypath, sizeof(ypath), "/auto"),
            "action \"%s\" is both auto and destructive: a destructive action needs two "
            "operators' approvals, so it can never run on the coordinator's signature alone",
            c->name);
    if (a->root && a->kind != ACTION_EXEC)
        return FAIL(ck, ypath_of(ck, ypath, sizeof(ypath), "/root"),
                    "action \"%s\": root is for exec actions; a %s action always runs with the "
                    "privilege its work needs",
                    c->name, actions_kind_name(a->kind));

    if (c->params.count > 0 && !(a->params = calloc(c->params.count, sizeof(*a->params))))
        return oom(ck);
    for (size_t j = 0; j < c->params.count; j++)
        if ((r = check_param(ck, a, j, VG_CFG_ITEM(c->params, struct action_param_config, j))) < 0)
            return r;

    if (a->kind == ACTION_EXEC) {
        r = check_argv(ck, a, c);
    } else if (c->argv.count > 0) {
        r = FAIL(ck, ypath_of(ck, ypath, sizeof(ypath), "/argv"),
                 "action \"%s\": argv is for exec actions; a %s action takes parameters only",
                 c->name, actions_kind_name(a->kind));
    } else {
        r = actions_kind_is_service(a->kind) ? check_service(ck, a) : check_builtin(ck, a);
    }
    if (r < 0)
        return r;
    return check_evidence(ck, a, c);
}

/* ---- references between actions: precheck and inverse ---- */

/* other gets this action's arguments by name: each of its parameters must be one of a's, of a
 * type whose values other accepts. */
static int check_params_subset(struct checker *ck, const struct action *a,
                               const struct action *other, const char *role, const char *ypath)
{
    for (size_t j = 0; j < other->nparams; j++) {
        const struct action_param *op = &other->params[j];
        const struct action_param *mine = param_named(a, op->name);
        if (!mine)
            return FAIL(ck, ypath,
                        "action \"%s\": its %s \"%s\" takes parameter \"%s\", which this action "
                        "does not have (it gets this action's arguments)",
                        a->name, role, other->name, op->name);
        if (mine->type != op->type &&
            !(mine->type == ACTION_PARAM_IP && op->type == ACTION_PARAM_CIDR))
            return FAIL(ck, ypath,
                        "action \"%s\": parameter \"%s\" is %s here but %s in its %s \"%s\"",
                        a->name, op->name, actions_param_type_name(mine->type),
                        actions_param_type_name(op->type), role, other->name);
    }
    return 0;
}

static int check_reference(struct checker *ck, const actions_t *cat, struct action *a,
                           const char *target, const char *role, const struct action **ret)
{
    char ypath[YPATH_LEN], q[VG_YAML_QUOTE_MAX + 1];
    const struct action *other;

    if (!target[0])
        return 0;
    ypath_of(ck, ypath, sizeof(ypath), "/%s", role);
    if (a->name && strcmp(target, a->name) == 0)
        return FAIL(ck, ypath, "action \"%s\" cannot be its own %s", a->name, role);
    other = actions_find(cat, target);
    if (!other)
        return FAIL(ck, ypath, "action \"%s\": %s \"%s\" is not an action of this catalog", a->name,
                    role, shown(target, q, sizeof(q)));
    if (strcmp(role, "precheck") == 0 && (other->destructive || other->precheck))
        return FAIL(ck, ypath,
                    "action \"%s\": precheck \"%s\" must be a plain check: not destructive and "
                    "without a precheck of its own",
                    a->name, other->name);
    *ret = other;
    return check_params_subset(ck, a, other, role, ypath);
}

static int check_references(struct checker *ck, actions_t *cat, const struct vg_cfg_list *list)
{
    int r;

    /* Every precheck is resolved first, so that "a precheck has no precheck of its own" holds
     * whichever order the actions come in; check_reference then checks each. */
    for (size_t i = 0; i < cat->count; i++) {
        const struct action_config *c = VG_CFG_ITEM(*list, struct action_config, i);
        cat->items[i].precheck = c->precheck[0] ? actions_find(cat, c->precheck) : NULL;
    }
    for (size_t i = 0; i < cat->count; i++) {
        const struct action_config *c = VG_CFG_ITEM(*list, struct action_config, i);
        ck->index = i;
        ck->name = c->name;
        if ((r = check_reference(ck, cat, &cat->items[i], c->precheck, "precheck",
                                 &cat->items[i].precheck)) < 0 ||
            (r = check_reference(ck, cat, &cat->items[i], c->inverse, "inverse",
                                 &cat->items[i].inverse)) < 0)
            return r;
    }
    return 0;
}

actions_t *actions_new(const struct vg_cfg_list *list, const struct actions_context *ctx, char *err,
                       size_t errlen)
{
    actions_t *self = calloc(1, sizeof(*self));
    struct checker ck = {.ctx = ctx, .err = err, .errlen = errlen};
    cfgcheck_doc_t *doc = NULL;
    int r = 0;

    if (!self) {
        vg_set_err(err, errlen, "%s: out of memory", ctx->file);
        return NULL;
    }
    if (list->count == 0)
        return self;
    if (cfgcheck_root_owned(ctx->file, "configuration file (it holds the action catalog)", NULL,
                            err, errlen) < 0)
        goto err_destroy;
    doc = cfgcheck_doc_open(ctx->file);
    if (!doc) {
        vg_set_err(err, errlen, "%s: cannot read the file again to check the action catalog",
                   ctx->file);
        goto err_destroy;
    }
    ck.doc = doc;
    self->items = calloc(list->count, sizeof(*self->items));
    if (!self->items) {
        oom(&ck);
        goto err_close_doc;
    }
    for (size_t i = 0; i < list->count && r == 0; i++) {
        ck.index = i;
        r = check_action(&ck, self, VG_CFG_ITEM(*list, struct action_config, i));
    }
    if (r == 0)
        r = check_references(&ck, self, list);
    if (r < 0)
        goto err_close_doc;
    cfgcheck_doc_close(&doc);
    vg_log(VG_LOG_DEBUG, "action catalog loaded file=%s actions=%zu", ctx->file, self->count);
    return self;

err_close_doc:
    cfgcheck_doc_close(&doc);
err_destroy:
    actions_destroy(&self);
    return NULL;
}
