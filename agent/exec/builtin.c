/* The built-in action kinds as fixed argv vectors: see builtin.h. */
#include "builtin.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"

#define SCRIPT_MAX 4096

static const char *const systemctl_paths[] = {"/usr/bin/systemctl", "/bin/systemctl"};

/* The nft table every block lives in: two sets with timeouts and the rules that drop them.
 * auto-merge: a block that overlaps one already there (an address inside a blocked network, or a
 * wider network) is merged instead of refused; the merged range keeps the expiry of the wider. */
static const char nft_ensure[] =
    "add table inet vigil ; "
    "add set inet vigil blocked4 { type ipv4_addr ; flags interval, timeout ; auto-merge ; } ; "
    "add set inet vigil blocked6 { type ipv6_addr ; flags interval, timeout ; auto-merge ; } ; "
    "add chain inet vigil input { type filter hook input priority -10 ; policy accept ; } ; "
    "add chain inet vigil forward { type filter hook forward priority -10 ; policy accept ; } ; "
    "flush chain inet vigil input ; flush chain inet vigil forward ; "
    "add rule inet vigil input ip saddr @blocked4 drop ; "
    "add rule inet vigil input ip6 saddr @blocked6 drop ; "
    "add rule inet vigil forward ip saddr @blocked4 drop ; "
    "add rule inet vigil forward ip6 saddr @blocked6 drop";

static int fail(char *why, size_t whylen, int r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *why, size_t whylen, int r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return r;
}

static const char *arg_value(const struct action_arg *args, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(args[i].name, name) == 0)
            return args[i].value;
    }
    return NULL;
}

/* A NULL-terminated malloc'd copy of the count strings given. */
static int make_argv(char ***ret, size_t count, ...)
{
    char **argv = calloc(count + 1, sizeof(*argv));
    if (!argv)
        return -ENOMEM;
    va_list ap;
    va_start(ap, count);
    for (size_t i = 0; i < count; i++) {
        argv[i] = strdup(va_arg(ap, const char *));
        if (!argv[i]) {
            va_end(ap);
            actions_argv_free(&argv);
            return -ENOMEM;
        }
    }
    va_end(ap);
    *ret = argv;
    return 0;
}

/* Appends to script (SCRIPT_MAX bytes); false when it would not fit. */
static bool append(char *script, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool append(char *script, const char *fmt, ...)
{
    size_t used = strlen(script);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(script + used, SCRIPT_MAX - used, fmt, ap);
    va_end(ap);
    return n >= 0 && (size_t)n < SCRIPT_MAX - used;
}

static int systemd_argv(const struct action *a, const struct action_arg *args, size_t n,
                        char ***ret, char *why, size_t whylen)
{
    const char *unit = arg_value(args, n, "unit");
    if (!unit)
        return fail(why, whylen, -EINVAL, "action %s: no unit", a->name);
    for (size_t i = 0; i < sizeof(systemctl_paths) / sizeof(systemctl_paths[0]); i++) {
        if (access(systemctl_paths[i], X_OK) == 0)
            return make_argv(ret, 5, systemctl_paths[i], "restart", "--no-ask-password", "--",
                             unit);
    }
    return fail(why, whylen, -EINVAL, "action %s: systemctl is not installed on this node",
                a->name);
}

static int nft_argv(const struct action *a, const struct action_arg *args, size_t n, char ***ret,
                    char *why, size_t whylen)
{
    char script[SCRIPT_MAX];
    char addr_text[64];
    struct action_net addr;
    const char *address = arg_value(args, n, "address");

    if (!address || actions_net_parse(address, true, &addr) < 0)
        return fail(why, whylen, -EINVAL, "action %s: no valid address", a->name);
    actions_net_format(&addr, addr_text, sizeof(addr_text));
    const char *set = addr.family == AF_INET ? "blocked4" : "blocked6";
    script[0] = '\0';
    if (!append(script, "%s ; ", nft_ensure))
        return fail(why, whylen, -EINVAL, "action %s: nft script too long", a->name);

    if (a->op == ACTION_OP_BLOCK) {
        const char *expires = arg_value(args, n, "expires");
        int64_t ms;
        if (!expires || vg_parse_duration_ms(expires, &ms) < 0 || ms < 1000)
            return fail(why, whylen, -EINVAL, "action %s: no valid expiry", a->name);
        if (!append(script, "add element inet vigil %s { %s timeout %" PRId64 "s }", set, addr_text,
                    ms / 1000))
            return fail(why, whylen, -EINVAL, "action %s: nft script too long", a->name);
    } else {
        /* What is not in the set (never blocked, expired, or part of a wider block) fails with
         * nft's "element does not exist" in the output: there is nothing to remove. */
        if (!append(script, "delete element inet vigil %s { %s }", set, addr_text))
            return fail(why, whylen, -EINVAL, "action %s: nft script too long", a->name);
    }
    return make_argv(ret, 2, BUILTIN_NFT_PATH, script);
}

static int isolate_argv(const struct action *a, const struct action_net *coordinator,
                        size_t ncoordinator, char ***ret, char *why, size_t whylen)
{
    char script[SCRIPT_MAX];
    bool ok;

    script[0] = '\0';
    if (a->op == ACTION_OP_RELEASE)
        return make_argv(ret, 2, BUILTIN_NFT_PATH,
                         "add table inet vigil_isolate ; delete table inet vigil_isolate");
    if (ncoordinator == 0)
        return fail(why, whylen, -EINVAL,
                    "action %s: the coordinator's address is not known, so isolating the node "
                    "would cut it off from its coordinator",
                    a->name);
    /* One transaction: the table is replaced whole, never half-built. */
    ok = append(script,
                "add table inet vigil_isolate ; delete table inet vigil_isolate ; "
                "add table inet vigil_isolate ; "
                "add chain inet vigil_isolate input { type filter hook input priority -20 ; "
                "policy drop ; } ; "
                "add chain inet vigil_isolate output { type filter hook output priority -20 ; "
                "policy drop ; } ; "
                "add chain inet vigil_isolate forward { type filter hook forward priority -20 ; "
                "policy drop ; } ; "
                "add rule inet vigil_isolate input iif lo accept ; "
                "add rule inet vigil_isolate output oif lo accept ; "
                /* IPv6 finds its neighbours (the coordinator's too) through multicast: without
                 * neighbour discovery an IPv6 coordinator is unreachable once its cache entry
                 * expires. Link-local only; it carries no traffic. */
                "add rule inet vigil_isolate input icmpv6 type { nd-neighbor-solicit, "
                "nd-neighbor-advert, nd-router-advert } ip6 hoplimit 255 accept ; "
                "add rule inet vigil_isolate output icmpv6 type { nd-neighbor-solicit, "
                "nd-neighbor-advert, nd-router-solicit } ip6 hoplimit 255 accept");
    for (size_t i = 0; ok && i < ncoordinator; i++) {
        char text[64];
        const char *fam = coordinator[i].family == AF_INET ? "ip" : "ip6";
        actions_net_format(&coordinator[i], text, sizeof(text));
        ok = append(script,
                    " ; add rule inet vigil_isolate input %s saddr %s accept"
                    " ; add rule inet vigil_isolate output %s daddr %s accept",
                    fam, text, fam, text);
    }
    if (!ok)
        return fail(why, whylen, -EINVAL, "action %s: nft script too long", a->name);
    return make_argv(ret, 2, BUILTIN_NFT_PATH, script);
}

int builtin_argv(const struct action *a, const struct action_arg *args, size_t n,
                 const struct action_net *coordinator, size_t ncoordinator, char ***ret_argv,
                 char *why, size_t whylen)
{
    switch (a->kind) {
    case ACTION_SYSTEMD:
        return systemd_argv(a, args, n, ret_argv, why, whylen);
    case ACTION_NFT:
        return nft_argv(a, args, n, ret_argv, why, whylen);
    case ACTION_ISOLATE:
        return isolate_argv(a, coordinator, ncoordinator, ret_argv, why, whylen);
    default:
        return fail(why, whylen, -EINVAL, "action %s: not a built-in with an argv", a->name);
    }
}

int builtin_signal_number(const char *name)
{
    static const struct {
        const char *name;
        int number;
    } signals[] = {
        {"TERM", SIGTERM}, {"HUP", SIGHUP}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"KILL", SIGKILL},
    };
    for (size_t i = 0; name && i < sizeof(signals) / sizeof(signals[0]); i++) {
        if (strcmp(signals[i].name, name) == 0)
            return signals[i].number;
    }
    return 0;
}
