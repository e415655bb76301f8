/*
 * Fuzz target: the JSON a Kubernetes API server answers vigil-agent-action's kubernetes module
 * with (agent/action/kube_policy.c), parsed as svc_kube.c parses it (json_loadb, no flags): the
 * fields every op shows of it, the container lookup of set-env and set-resources, and the
 * NetworkPolicy edit of block and unblock for a fixed IPv4 and a fixed IPv6 CIDR.
 *
 * Oracles beyond "no crash, no sanitizer report": nothing here changes the object read; the
 * fields shown are never NULL and always dump; the container names for a message are cut to
 * their buffer; an edit is a patch, a line saying why there is none, or a refusal with its
 * sentence (-EDOM, -ENOENT, -EINVAL), never anything else; a patch sends a list as spec.ingress,
 * the resourceVersion read, an annotation that names the CIDR after a block and not after an
 * unblock; and an edit is idempotent — the same edit of the policy as the patch leaves it has
 * nothing left to write.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kube_policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whether the comma-separated annotation list holds cidr as an item. */
static bool listed(const char *list, const char *cidr)
{
    size_t len = strlen(cidr);
    for (const char *p = list; p && *p;) {
        p += strspn(p, " ");
        size_t item = strcspn(p, ",");
        if (item == len && memcmp(p, cidr, len) == 0)
            return true;
        p += item;
        if (*p == ',')
            p++;
    }
    return false;
}

/* The policy as the patch leaves it: its spec.ingress and annotation put into a copy. */
static json_t *patched(json_t *policy, json_t *patch)
{
    json_t *copy = json_deep_copy(policy);
    json_t *spec = json_object_get(copy, "spec"), *meta = json_object_get(copy, "metadata");
    json_t *ann;

    if (!copy || !json_is_object(spec))
        abort(); /* a patch comes only from a policy with spec.ingress */
    if (!json_is_object(meta)) {
        meta = json_object();
        json_object_set_new(copy, "metadata", meta);
    }
    ann = json_object_get(meta, "annotations");
    if (!json_is_object(ann)) {
        ann = json_object();
        json_object_set_new(meta, "annotations", ann);
    }
    json_object_set(spec, "ingress", KUBE_AT(patch, "spec", "ingress"));
    json_object_set(ann, KUBE_BLOCKED_ANNOTATION,
                    KUBE_AT(patch, "metadata", "annotations", KUBE_BLOCKED_ANNOTATION));
    return copy;
}

static void edit(json_t *policy, const char *text, bool block)
{
    struct kube_cidr target;
    char canon[KUBE_CIDR_TEXT_MAX], msg[1024];
    json_t *patch = (json_t *)1;

    if (kube_cidr_parse(text, true, &target) != 0)
        abort();
    kube_cidr_format(&target, canon, sizeof(canon));
    int r = kube_policy_edit(policy, &target, block, "ns", "name", &patch, msg, sizeof(msg));
    if (r < 0) {
        if (!block || (r != -EDOM && r != -ENOENT && r != -EINVAL) || patch || !msg[0])
            abort(); /* unblock never refuses */
        return;
    }
    if (r != 0 || (!patch && !msg[0]))
        abort();
    if (!patch)
        return;
    const char *rv = json_string_value(KUBE_AT(policy, "metadata", "resourceVersion"));
    const char *sent = json_string_value(KUBE_AT(patch, "metadata", "resourceVersion"));
    const char *list =
        json_string_value(KUBE_AT(patch, "metadata", "annotations", KUBE_BLOCKED_ANNOTATION));
    if (!json_is_array(KUBE_AT(patch, "spec", "ingress")) || (rv == NULL) != (sent == NULL) ||
        (rv && strcmp(rv, sent) != 0) || listed(list, canon) != block)
        abort();
    char *dumped = json_dumps(patch, JSON_COMPACT);
    if (!dumped)
        abort();
    free(dumped);

    json_t *again = patched(policy, patch), *second = (json_t *)1;
    json_decref(patch);
    r = kube_policy_edit(again, &target, block, "ns", "name", &second, msg, sizeof(msg));
    if (r != 0 || second)
        abort(); /* the edit, made, would be made again */
    json_decref(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *obj = json_loadb((const char *)data, size, 0, NULL);
    if (!obj)
        return 0;
    json_t *orig = json_deep_copy(obj);
    if (!orig)
        abort();

    for (int op = 0; op < KUBE_OP_COUNT; op++) {
        json_t *shown = kube_fields((enum kube_op)op, obj, "backend", "LOG_LEVEL");
        char *text = shown ? json_dumps(shown, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        if (!text)
            abort();
        free(text);
        json_decref(shown);
    }
    char names[256], small[8];
    memset(small, 'x', sizeof(small));
    kube_container(obj, "nosuch", names, sizeof(names));
    kube_container(obj, "nosuch", small, sizeof(small));
    if (!memchr(names, '\0', sizeof(names)) || !memchr(small, '\0', sizeof(small)))
        abort();

    edit(obj, "10.0.0.0/24", true);
    edit(obj, "10.0.0.0/24", false);
    edit(obj, "2001:db8::/64", true);
    edit(obj, "2001:db8::/64", false);
    if (!json_equal(obj, orig))
        abort(); /* the object read was changed */
    json_decref(orig);
    json_decref(obj);
    return 0;
}
