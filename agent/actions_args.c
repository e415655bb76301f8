/*
 * A request's arguments against an action's parameters, the exec argv they render to, and the
 * address arithmetic the ip and cidr types need (actions.h). Every value here came from the
 * network: nothing is trusted until its parameter's type accepted it.
 */
#include "actions.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "config.h"
#include "log.h"
#include "yaml.h"

#define MS_PER_S INT64_C(1000)
#define MS_PER_M (60 * MS_PER_S)
#define MS_PER_H (60 * MS_PER_M)

/* ---- networks ---- */

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* Digits only, no sign, no leading zero (but "0"), at most max. */
static int parse_prefix(const char *text, unsigned max, unsigned *ret)
{
    unsigned v = 0;

    if (!text[0] || (text[0] == '0' && text[1]) || strlen(text) > 3)
        return -EINVAL;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        v = v * 10 + (unsigned)(*p - '0');
    }
    if (v > max)
        return -EINVAL;
    *ret = v;
    return 0;
}

static bool host_bits_clear(const uint8_t *addr, unsigned prefix, unsigned bits)
{
    for (unsigned b = prefix; b < bits; b++)
        if (addr[b / 8] & (0x80 >> (b % 8)))
            return false;
    return true;
}

int actions_net_parse(const char *text, bool allow_prefix, struct action_net *ret)
{
    char buf[INET6_ADDRSTRLEN + 8];
    struct action_net n = {0};
    const char *slash;
    size_t len;

    if (!text)
        return -EINVAL;
    len = strlen(text);
    if (len == 0 || len >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, text, len + 1);
    slash = strchr(buf, '/');
    if (slash && !allow_prefix)
        return -EINVAL;
    if (slash)
        buf[slash - buf] = '\0';
    if (inet_pton(AF_INET, buf, n.addr) == 1) {
        n.family = AF_INET;
        n.prefix = 32;
    } else if (inet_pton(AF_INET6, buf, n.addr) == 1) {
        n.family = AF_INET6;
        n.prefix = 128;
    } else {
        return -EINVAL;
    }
    if (slash && parse_prefix(slash + 1, n.prefix, &n.prefix) < 0)
        return -EINVAL;
    if (!host_bits_clear(n.addr, n.prefix, n.family == AF_INET ? 32 : 128))
        return -EINVAL;
    /* ::ffff:a.b.c.d is a.b.c.d: compare and deny it as the IPv4 network it is. */
    if (n.family == AF_INET6 && n.prefix >= 96 &&
        memcmp(n.addr, v4_mapped_prefix, sizeof(v4_mapped_prefix)) == 0) {
        memmove(n.addr, n.addr + 12, 4);
        memset(n.addr + 4, 0, 12);
        n.family = AF_INET;
        n.prefix -= 96;
    }
    *ret = n;
    return 0;
}

const char *actions_net_format(const struct action_net *n, char *buf, size_t buflen)
{
    char addr[INET6_ADDRSTRLEN] = "?";
    unsigned full = n->family == AF_INET ? 32 : 128;

    inet_ntop(n->family, n->addr, addr, sizeof(addr));
    if (n->prefix == full)
        snprintf(buf, buflen, "%s", addr);
    else
        snprintf(buf, buflen, "%s/%u", addr, n->prefix);
    return buf;
}

/* An IPv4 network as the IPv6 network of its mapped addresses. */
static struct action_net as_v6(const struct action_net *n)
{
    struct action_net m = *n;

    if (n->family == AF_INET) {
        memcpy(m.addr, v4_mapped_prefix, sizeof(v4_mapped_prefix));
        memcpy(m.addr + 12, n->addr, 4);
        m.family = AF_INET6;
        m.prefix = n->prefix + 96;
    }
    return m;
}

bool actions_net_overlap(const struct action_net *a, const struct action_net *b)
{
    struct action_net x = *a, y = *b;
    unsigned bits;

    if (x.family != y.family) {
        x = as_v6(a);
        y = as_v6(b);
    }
    bits = x.prefix < y.prefix ? x.prefix : y.prefix;
    for (unsigned i = 0; i < bits; i++) {
        uint8_t mask = (uint8_t)(0x80 >> (i % 8));
        if ((x.addr[i / 8] & mask) != (y.addr[i / 8] & mask))
            return false;
    }
    return true;
}

bool actions_net_denied(const struct action_param *p, const struct action_net *value,
                        const struct action_deny *deny, struct action_net *ret_hit)
{
    for (size_t i = 0; p && i < p->ndeny; i++) {
        if (actions_net_overlap(value, &p->deny[i])) {
            if (ret_hit)
                *ret_hit = p->deny[i];
            return true;
        }
    }
    for (size_t i = 0; deny && i < deny->count; i++) {
        if (actions_net_overlap(value, &deny->nets[i])) {
            if (ret_hit)
                *ret_hit = deny->nets[i];
            return true;
        }
    }
    return false;
}

static int deny_append(struct action_deny *deny, const struct action_net *n)
{
    struct action_net *grown = realloc(deny->nets, (deny->count + 1) * sizeof(*grown));

    if (!grown)
        return -ENOMEM;
    deny->nets = grown;
    deny->nets[deny->count++] = *n;
    return 0;
}

int actions_deny_add(struct action_deny *deny, const char *text)
{
    struct action_net n;

    if (actions_net_parse(text, true, &n) < 0)
        return -EINVAL;
    return deny_append(deny, &n);
}

int actions_deny_add_interfaces(struct action_deny *deny)
{
    struct ifaddrs *list, *ifa;
    int r = 0;

    if (getifaddrs(&list) != 0)
        return -errno;
    for (ifa = list; ifa && r == 0; ifa = ifa->ifa_next) {
        struct action_net n = {0};
        if (!ifa->ifa_addr)
            continue;
        if (ifa->ifa_addr->sa_family == AF_INET) {
            const struct sockaddr_in *sin = (const struct sockaddr_in *)(void *)ifa->ifa_addr;
            n.family = AF_INET;
            n.prefix = 32;
            memcpy(n.addr, &sin->sin_addr, 4);
        } else if (ifa->ifa_addr->sa_family == AF_INET6) {
            const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(void *)ifa->ifa_addr;
            n.family = AF_INET6;
            n.prefix = 128;
            memcpy(n.addr, &sin6->sin6_addr, 16);
        } else {
            continue;
        }
        r = deny_append(deny, &n);
    }
    freeifaddrs(list);
    return r;
}

void actions_deny_free(struct action_deny *deny)
{
    if (!deny)
        return;
    free(deny->nets);
    deny->nets = NULL;
    deny->count = 0;
}

/* ---- argument values ---- */

static void format_duration(int64_t ms, char *buf, size_t len)
{
    if (ms != 0 && ms % MS_PER_H == 0)
        snprintf(buf, len, "%" PRId64 "h", ms / MS_PER_H);
    else if (ms != 0 && ms % MS_PER_M == 0)
        snprintf(buf, len, "%" PRId64 "m", ms / MS_PER_M);
    else if (ms % MS_PER_S == 0)
        snprintf(buf, len, "%" PRId64 "s", ms / MS_PER_S);
    else
        snprintf(buf, len, "%" PRId64 "ms", ms);
}

/* Refuses with "argument \"name\": \"value\" <reason>". */
#define REFUSE(why, whylen, p, value, ...) refuse((why), (whylen), (p)->name, (value), __VA_ARGS__)

static int refuse(char *why, size_t whylen, const char *name, const char *value, const char *fmt,
                  ...) __attribute__((format(printf, 5, 6)));
static int refuse(char *why, size_t whylen, const char *name, const char *value, const char *fmt,
                  ...)
{
    char shown[VG_YAML_QUOTE_MAX + 1], reason[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    if (why && whylen)
        snprintf(why, whylen, "argument \"%s\": \"%s\" %s", name,
                 vg_yaml_quotable(value, strlen(value), shown, sizeof(shown)), reason);
    return -EINVAL;
}

static int check_int(const struct action_param *p, const char *value, char *why, size_t whylen)
{
    char canonical[32];
    int64_t v;

    if (vg_parse_int(value, &v) < 0)
        return REFUSE(why, whylen, p, value, "is not an integer");
    snprintf(canonical, sizeof(canonical), "%" PRId64, v);
    if (strcmp(canonical, value) != 0)
        return REFUSE(why, whylen, p, value, "is not written plainly (write %s)", canonical);
    if (v < p->min || v > p->max)
        return REFUSE(why, whylen, p, value, "is out of range: %" PRId64 " to %" PRId64, p->min,
                      p->max);
    return 0;
}

static int check_duration(const struct action_param *p, const char *value, char *why, size_t whylen)
{
    char lo[32], hi[32];
    int64_t ms;

    if (vg_parse_duration_ms(value, &ms) < 0)
        return REFUSE(why, whylen, p, value, "is not a duration such as 30s, 5m or 1h");
    if (ms < p->min || ms > p->max) {
        format_duration(p->min, lo, sizeof(lo));
        format_duration(p->max, hi, sizeof(hi));
        return REFUSE(why, whylen, p, value, "is out of range: %s to %s", lo, hi);
    }
    return 0;
}

static int check_net(const struct action_param *p, const char *value,
                     const struct action_deny *deny, char *why, size_t whylen)
{
    bool cidr = p->type == ACTION_PARAM_CIDR;
    struct action_net n, hit;
    char text[64];

    if (actions_net_parse(value, cidr, &n) < 0)
        return REFUSE(why, whylen, p, value,
                      cidr ? "is not an IP address or a network such as 198.51.100.0/24 (host "
                             "bits clear)"
                           : "is not an IP address");
    if (cidr) {
        unsigned lo = n.family == AF_INET ? p->prefix4_min : p->prefix6_min;
        unsigned hi = n.family == AF_INET ? p->prefix4_max : p->prefix6_max;
        if (n.prefix < lo || n.prefix > hi)
            return REFUSE(why, whylen, p, value,
                          "has a prefix of /%u; IPv%d prefixes from /%u "
                          "to /%u are accepted",
                          n.prefix, n.family == AF_INET ? 4 : 6, lo, hi);
    }
    if (actions_net_denied(p, &n, deny, &hit))
        return REFUSE(why, whylen, p, value,
                      "covers %s, which is never accepted (loopback, this node, the coordinator "
                      "or the parameter's deny list)",
                      actions_net_format(&hit, text, sizeof(text)));
    return 0;
}

/* Printable ASCII without space or '/', not starting with '-', not "." or "..", at most
 * max_length, matching the pattern. The fixed rules hold whatever the pattern allows: an
 * identifier is a name, never a path or an option. */
static int check_identifier(const struct action_param *p, const char *value, char *why,
                            size_t whylen)
{
    size_t len = strlen(value);

    if (len == 0)
        return REFUSE(why, whylen, p, value, "is empty");
    if (len > p->max_length)
        return REFUSE(why, whylen, p, value, "is longer than %zu characters", p->max_length);
    for (const unsigned char *c = (const unsigned char *)value; *c; c++)
        if (*c <= 0x20 || *c >= 0x7f || *c == '/')
            return REFUSE(why, whylen, p, value,
                          "contains a space, a '/' or a character outside printable ASCII");
    if (value[0] == '-')
        return REFUSE(why, whylen, p, value, "starts with '-' (it could be read as an option)");
    if (strcmp(value, ".") == 0 || strcmp(value, "..") == 0)
        return REFUSE(why, whylen, p, value, "is not a name");
    if (regexec(&p->pattern_re, value, 0, NULL, 0) != 0)
        return REFUSE(why, whylen, p, value, "does not match ^(%s)$", p->pattern);
    return 0;
}

static int check_value(const struct action_param *p, const char *value,
                       const struct action_deny *deny, char *why, size_t whylen)
{
    switch (p->type) {
    case ACTION_PARAM_ENUM:
        for (size_t i = 0; i < p->nvalues; i++)
            if (strcmp(p->values[i], value) == 0)
                return 0;
        return REFUSE(why, whylen, p, value, "is not one of the %zu values allowed", p->nvalues);
    case ACTION_PARAM_INT:
        return check_int(p, value, why, whylen);
    case ACTION_PARAM_DURATION:
        return check_duration(p, value, why, whylen);
    case ACTION_PARAM_IP:
    case ACTION_PARAM_CIDR:
        return check_net(p, value, deny, why, whylen);
    case ACTION_PARAM_IDENTIFIER:
        return check_identifier(p, value, why, whylen);
    }
    return REFUSE(why, whylen, p, value, "has a parameter of an unknown type");
}

static const struct action_param *param_of(const struct action *a, const char *name)
{
    for (size_t i = 0; i < a->nparams; i++)
        if (strcmp(a->params[i].name, name) == 0)
            return &a->params[i];
    return NULL;
}

static const struct action_arg *arg_of(const struct action_arg *args, size_t n, const char *name)
{
    for (size_t i = 0; args && i < n; i++)
        if (args[i].name && strcmp(args[i].name, name) == 0)
            return &args[i];
    return NULL;
}

int actions_check_args(const struct action *a, const struct action_arg *args, size_t n,
                       const struct action_deny *deny, char *why, size_t whylen)
{
    char shown[VG_YAML_QUOTE_MAX + 1];

    if (!a || (n > 0 && !args)) {
        vg_set_err(why, whylen, "no action or no arguments");
        return -EINVAL;
    }
    if (n > ACTION_PARAMS_MAX) {
        vg_set_err(why, whylen, "%zu arguments; action \"%s\" takes %zu", n, a->name, a->nparams);
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        const char *name = args[i].name;
        const struct action_param *p = name ? param_of(a, name) : NULL;

        if (!name || !p) {
            char takes[ACTION_PARAMS_MAX * (ACTION_PARAM_NAME_MAX + 2) + 1] = "";
            for (size_t j = 0; j < a->nparams; j++)
                snprintf(takes + strlen(takes), sizeof(takes) - strlen(takes), "%s%s",
                         j ? ", " : "", a->params[j].name);
            vg_set_err(why, whylen, "unknown argument \"%s\": action \"%s\" takes %s",
                       name ? vg_yaml_quotable(name, strlen(name), shown, sizeof(shown)) : "",
                       a->name, takes[0] ? takes : "no arguments");
            return -EINVAL;
        }
        if (arg_of(args, i, name)) {
            vg_set_err(why, whylen, "argument \"%s\" is given twice", name);
            return -EINVAL;
        }
        if (!args[i].value) {
            vg_set_err(why, whylen, "argument \"%s\" has no value", name);
            return -EINVAL;
        }
        if (strlen(args[i].value) > ACTION_VALUE_MAX) {
            vg_set_err(why, whylen, "argument \"%s\" is longer than %d bytes", name,
                       ACTION_VALUE_MAX);
            return -EINVAL;
        }
        if (check_value(p, args[i].value, deny, why, whylen) < 0)
            return -EINVAL;
    }
    for (size_t j = 0; j < a->nparams; j++) {
        if (!arg_of(args, n, a->params[j].name)) {
            vg_set_err(why, whylen, "missing argument \"%s\" (%s) of action \"%s\"",
                       a->params[j].name, actions_param_type_name(a->params[j].type), a->name);
            return -EINVAL;
        }
    }
    return 0;
}

/* ---- exec argv ---- */

void actions_argv_free(char ***argv_p)
{
    char **argv = argv_p ? *argv_p : NULL;

    if (!argv)
        return;
    for (char **p = argv; *p; p++)
        free(*p);
    free(argv);
    *argv_p = NULL;
}

int actions_render_argv(const struct action *a, const struct action_arg *args, size_t n,
                        char ***ret_argv)
{
    char **argv;

    if (!a || a->kind != ACTION_EXEC || a->argc == 0)
        return -EINVAL;
    argv = calloc(a->argc + 1, sizeof(*argv));
    if (!argv)
        return -ENOMEM;
    for (size_t k = 0; k < a->argc; k++) {
        const char *text = a->argv[k];
        if (a->argv_param[k] >= 0) {
            const struct action_arg *arg = arg_of(args, n, a->params[a->argv_param[k]].name);
            if (!arg || !arg->value) {
                actions_argv_free(&argv);
                return -EINVAL;
            }
            text = arg->value;
        }
        argv[k] = strdup(text);
        if (!argv[k]) {
            actions_argv_free(&argv);
            return -ENOMEM;
        }
    }
    *ret_argv = argv;
    return 0;
}
