/* The kubernetes module's pure part: fields shown, CIDRs, the block/unblock patch (see .h). */
#include "kube_policy.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

/* ---- objects ---- */

json_t *kube_at(json_t *v, const char *const *keys)
{
    for (; v && *keys; keys++)
        v = json_object_get(v, *keys);
    return v;
}

json_t *kube_container(json_t *deployment, const char *name, char *names, size_t nameslen)
{
    json_t *list = KUBE_AT(deployment, "spec", "template", "spec", "containers");
    size_t i, used = 0;
    json_t *c;

    if (names && nameslen > 0)
        names[0] = '\0';
    json_array_foreach(list, i, c)
    {
        const char *n = json_string_value(json_object_get(c, "name"));
        if (n && strcmp(n, name) == 0)
            return c;
        if (n && names && used < nameslen) {
            int w = snprintf(names + used, nameslen - used, "%s%s", used ? ", " : "", n);
            used += w > 0 ? (size_t)w : 0;
        }
    }
    return NULL;
}

json_t *kube_env_entry(json_t *container, const char *name)
{
    size_t i;
    json_t *e;

    json_array_foreach(json_object_get(container, "env"), i, e)
    {
        const char *n = json_string_value(json_object_get(e, "name"));
        if (n && strcmp(n, name) == 0)
            return e;
    }
    return NULL;
}

/* v as a new reference, json null for NULL. */
static json_t *held(json_t *v)
{
    return v ? json_incref(v) : json_null();
}

json_t *kube_fields(enum kube_op op, json_t *obj, const char *container, const char *variable)
{
    json_t *c = container ? kube_container(obj, container, NULL, 0) : NULL;

    switch (op) {
    case KUBE_OP_RESTART:
        return json_pack(
            "{s:O?}", KUBE_RESTARTED_AT,
            KUBE_AT(obj, "spec", "template", "metadata", "annotations", KUBE_RESTARTED_AT));
    case KUBE_OP_SCALE:
        return json_pack("{s:O?}", "replicas", KUBE_AT(obj, "spec", "replicas"));
    case KUBE_OP_SET_ENV:
        return held(variable ? kube_env_entry(c, variable) : NULL);
    case KUBE_OP_SET_RESOURCES:
        return held(json_object_get(c, "resources"));
    case KUBE_OP_BLOCK:
    case KUBE_OP_UNBLOCK:
        return held(KUBE_AT(obj, "spec", "ingress"));
    case KUBE_OP_ISOLATE_POD:
    case KUBE_OP_RELEASE_POD:
        return held(KUBE_AT(obj, "metadata", "labels"));
    case KUBE_OP_COUNT:
        break;
    }
    return json_null();
}

/* ---- CIDRs ---- */

static unsigned cidr_bits(const struct kube_cidr *c)
{
    return c->family == AF_INET ? 32 : 128;
}

static void cidr_mask(struct kube_cidr *c)
{
    for (unsigned i = c->prefix; i < cidr_bits(c); i++)
        c->addr[i / 8] &= (unsigned char)~(0x80 >> (i % 8));
}

int kube_cidr_parse(const char *text, bool strict, struct kube_cidr *ret)
{
    char buf[INET6_ADDRSTRLEN + 8];
    struct kube_cidr c = {0};
    const char *slash = strchr(text, '/');
    size_t len = slash ? (size_t)(slash - text) : strlen(text);

    if (len == 0 || len >= INET6_ADDRSTRLEN)
        return -EINVAL;
    memcpy(buf, text, len);
    buf[len] = '\0';
    if (inet_pton(AF_INET, buf, c.addr) == 1)
        c.family = AF_INET;
    else if (inet_pton(AF_INET6, buf, c.addr) == 1)
        c.family = AF_INET6;
    else
        return -EINVAL;
    c.prefix = cidr_bits(&c);
    if (slash) {
        char *end;
        errno = 0;
        unsigned long p = strtoul(slash + 1, &end, 10);
        if (errno || end == slash + 1 || *end || p > cidr_bits(&c) || slash[1] == '+' ||
            slash[1] == '-' || slash[1] == ' ')
            return -EINVAL;
        c.prefix = (unsigned)p;
    }
    struct kube_cidr masked = c;
    cidr_mask(&masked);
    if (strict && memcmp(masked.addr, c.addr, sizeof(c.addr)) != 0)
        return -EDOM;
    *ret = masked;
    return 0;
}

void kube_cidr_format(const struct kube_cidr *c, char *buf, size_t buflen)
{
    char addr[INET6_ADDRSTRLEN];

    if (!inet_ntop(c->family, c->addr, addr, sizeof(addr)))
        snprintf(addr, sizeof(addr), "?");
    snprintf(buf, buflen, "%s/%u", addr, c->prefix);
}

bool kube_cidr_contains(const struct kube_cidr *outer, const struct kube_cidr *inner)
{
    if (outer->family != inner->family || outer->prefix > inner->prefix)
        return false;
    struct kube_cidr cut = *inner;
    cut.prefix = outer->prefix;
    cidr_mask(&cut);
    return memcmp(cut.addr, outer->addr, sizeof(cut.addr)) == 0;
}

static bool cidr_text_equals(const char *text, const struct kube_cidr *c)
{
    struct kube_cidr x;
    return kube_cidr_parse(text, false, &x) == 0 && x.family == c->family &&
           x.prefix == c->prefix && memcmp(x.addr, c->addr, sizeof(x.addr)) == 0;
}

static bool cidr_text_contains(const char *text, const struct kube_cidr *c)
{
    struct kube_cidr x;
    return kube_cidr_parse(text, false, &x) == 0 && kube_cidr_contains(&x, c);
}

/* ---- block, unblock ---- */

/* The annotation's list (comma-separated CIDRs) with cidr added or removed: a new string, or
 * NULL when it is empty afterwards (*ret_oom on failure). */
static char *blocked_list(const char *old, const char *cidr, bool add, bool *ret_oom)
{
    char *copy = strdup(old ? old : ""), *save = NULL, *out = NULL;
    size_t used = 0, cap = strlen(old ? old : "") + strlen(cidr) + 2;

    *ret_oom = false;
    out = calloc(1, cap);
    if (!copy || !out) {
        free(copy);
        free(out);
        *ret_oom = true;
        return NULL;
    }
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        item += strspn(item, " ");
        if (!item[0] || strcmp(item, cidr) == 0)
            continue;
        used += (size_t)snprintf(out + used, cap - used, "%s%s", used ? "," : "", item);
    }
    if (add)
        used += (size_t)snprintf(out + used, cap - used, "%s%s", used ? "," : "", cidr);
    free(copy);
    if (used == 0) {
        free(out);
        return NULL;
    }
    return out;
}

int kube_policy_edit(json_t *policy, const struct kube_cidr *target, bool block, const char *ns,
                     const char *name, json_t **ret_patch, char *msg, size_t msglen)
{
    json_t *ingress, *rule, *peer, *patch = NULL, *meta;
    char canon[KUBE_CIDR_TEXT_MAX];
    size_t i, j, holders = 0, changed = 0, whole = 0;
    int r;

    *ret_patch = NULL;
    msg[0] = '\0';
    kube_cidr_format(target, canon, sizeof(canon));
    ingress = json_deep_copy(KUBE_AT(policy, "spec", "ingress"));

    /* Every ipBlock of every ingress rule: block excepts the CIDR from those that let it in;
     * unblock removes it from every except list holding it. */
    json_array_foreach(ingress, i, rule)
    {
        json_array_foreach(json_object_get(rule, "from"), j, peer)
        {
            json_t *ipb = json_object_get(peer, "ipBlock");
            const char *cidr = json_string_value(json_object_get(ipb, "cidr"));
            json_t *except = json_object_get(ipb, "except"), *e;
            size_t x;
            bool excepted = false;

            if (!cidr)
                continue;
            if (block) {
                if (!cidr_text_contains(cidr, target))
                    continue;
                /* An except must be a strict subset of its ipBlock's cidr (the API server
                 * refuses the rest): an ipBlock of exactly this range cannot be blocked so. */
                if (cidr_text_equals(cidr, target)) {
                    whole++;
                    continue;
                }
                if (except && !json_is_array(except)) {
                    snprintf(msg, msglen,
                             "networkpolicy %s/%s has an ipBlock holding %s whose except is not "
                             "a list; nothing was changed",
                             ns, name, canon);
                    r = -EINVAL;
                    goto out;
                }
                holders++;
                json_array_foreach(except, x, e)
                {
                    const char *et = json_string_value(e);
                    excepted = excepted || (et && cidr_text_contains(et, target));
                }
                if (excepted)
                    continue;
                if (!except) {
                    except = json_array();
                    if (!except || json_object_set_new(ipb, "except", except) < 0)
                        goto err_oom;
                }
                if (json_array_append_new(except, json_string(canon)) < 0)
                    goto err_oom;
                changed++;
            } else if (json_is_array(except)) {
                for (x = json_array_size(except); x-- > 0;) {
                    const char *et = json_string_value(json_array_get(except, x));
                    if (et && cidr_text_equals(et, target)) {
                        json_array_remove(except, x);
                        changed++;
                        holders++;
                    }
                }
                if (json_array_size(except) == 0)
                    json_object_del(ipb, "except");
            }
        }
    }
    if (block && whole > 0) {
        snprintf(msg, msglen,
                 "networkpolicy %s/%s lets %s in through an ipBlock of exactly that range, which "
                 "an except cannot cover (it must be a strict subset of the ipBlock's cidr); "
                 "nothing was changed: remove that rule from the policy instead",
                 ns, name, canon);
        r = -EDOM;
        goto out;
    }
    if (block && holders == 0) {
        snprintf(msg, msglen,
                 "networkpolicy %s/%s lets no ipBlock containing %s in: there is nothing to block "
                 "(its ingress rules admit that range another way, or not at all)",
                 ns, name, canon);
        r = -ENOENT;
        goto out;
    }
    if (changed == 0) {
        snprintf(msg, msglen, "%s: %s is %s in networkpolicy %s/%s; nothing to change",
                 block ? "already blocked" : "not blocked", canon,
                 block ? "already excepted from every ipBlock that contains it"
                       : "in no except list",
                 ns, name);
        r = 0;
        goto out;
    }

    bool oom;
    char *list = blocked_list(
        json_string_value(KUBE_AT(policy, "metadata", "annotations", KUBE_BLOCKED_ANNOTATION)),
        canon, block, &oom);
    if (oom)
        goto err_oom;
    meta = json_pack("{s:{s:s?}}", "annotations", KUBE_BLOCKED_ANNOTATION, list);
    free(list);
    const char *rv = json_string_value(KUBE_AT(policy, "metadata", "resourceVersion"));
    /* The resourceVersion read: a change made since fails with 409 instead of being lost. */
    if (!meta || (rv && json_object_set_new(meta, "resourceVersion", json_string(rv)) < 0)) {
        json_decref(meta);
        goto err_oom;
    }
    patch = json_pack("{s:o,s:{s:O}}", "metadata", meta, "spec", "ingress", ingress);
    if (!patch)
        goto err_oom;
    *ret_patch = patch;
    r = 0;
    goto out;

err_oom:
    snprintf(msg, msglen, "out of memory");
    r = -ENOMEM;
out:
    json_decref(ingress);
    return r;
}
