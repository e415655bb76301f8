/* The request for vigil-agent-action: see service.h and agent/action/svc.h. */
#include "service.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "probe.h"

#define SERVICE_REQUEST_MAX 65536 /* as SVC_REQUEST_MAX */
#define SERVICE_SECRET_MAX 16384  /* a token, a CA bundle */
#define KUBE_SA_TOKEN "/var/run/secrets/kubernetes.io/serviceaccount/token"
#define KUBE_SA_CA "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"

struct blob {
    char *buf;
    size_t len, cap;
    bool too_long;
};

static void put(struct blob *b, const char *key, const char *value)
{
    size_t klen = strlen(key) + 1, vlen = strlen(value) + 1;
    if (b->len + klen + vlen > b->cap) {
        b->too_long = true;
        return;
    }
    memcpy(b->buf + b->len, key, klen);
    memcpy(b->buf + b->len + klen, value, vlen);
    b->len += klen + vlen;
}

static const struct probe_target_config *find_target(const struct vg_cfg_list *targets,
                                                     const char *name)
{
    for (size_t i = 0; i < targets->count; i++) {
        const struct probe_target_config *t =
            VG_CFG_ITEM(*targets, struct probe_target_config, i);
        if (strcmp(t->name, name) == 0)
            return t;
    }
    return NULL;
}

/* A small file's text (the token, the CA bundle), or NULL when it cannot be read. */
static char *read_small(const char *path, size_t max)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    char *text = calloc(1, max + 1);
    size_t n = text ? fread(text, 1, max + 1, f) : 0;
    fclose(f);
    if (text && (n == 0 || n > max || memchr(text, '\0', n))) {
        explicit_bzero(text, max + 1);
        free(text);
        return NULL;
    }
    return text;
}

/* In-cluster, the ServiceAccount's token and CA as the executor (root) reads them: the token is
 * root's only (the agent's network side, the user vigil-agent-action runs as, cannot read it).
 * What cannot be read here is left for vigil-agent-action to read, and to report. */
static void put_in_cluster_secrets(struct blob *b, const struct agent_config *cfg)
{
    const char *token_file = cfg->kube_token_file[0] ? cfg->kube_token_file : KUBE_SA_TOKEN;
    const char *ca_file = cfg->kube_ca_file[0] ? cfg->kube_ca_file : KUBE_SA_CA;
    char *token = read_small(token_file, SERVICE_SECRET_MAX);
    char *ca = read_small(ca_file, SERVICE_SECRET_MAX);
    if (token)
        put(b, "kube.token", token);
    if (ca)
        put(b, "kube.ca_pem", ca);
    if (token)
        explicit_bzero(token, strlen(token));
    free(token);
    free(ca);
}

int service_request(const struct agent_config *cfg, const struct action *a,
                    const struct action_arg *args, size_t n, char **ret, size_t *ret_len, char *why,
                    size_t whylen)
{
    struct blob b = {.buf = malloc(SERVICE_REQUEST_MAX), .cap = SERVICE_REQUEST_MAX};
    char num[32], key[ACTION_PARAM_NAME_MAX + 8];

    if (!b.buf)
        return -ENOMEM;
    put(&b, "kind", actions_kind_name(a->kind));
    put(&b, "op", actions_op_name(a->op));
    put(&b, "action", a->name);
    snprintf(num, sizeof(num), "%" PRId64, a->timeout_ms);
    put(&b, "timeout_ms", num);
    for (size_t i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "arg.%s", args[i].name);
        put(&b, key, args[i].value);
    }

    if (a->kind == ACTION_POSTGRES || a->kind == ACTION_REDIS) {
        const struct probe_target_config *t =
            find_target(a->kind == ACTION_POSTGRES ? &cfg->postgres.targets : &cfg->redis.targets,
                        a->target);
        if (!t) { /* the catalog was checked against the same file: not expected */
            free(b.buf);
            snprintf(why, whylen, "action %s: target %s is not configured", a->name, a->target);
            return -EINVAL;
        }
        put(&b, "target.name", t->name);
        put(&b, "target.address", t->address);
        put(&b, "target.password_file", t->password_file ? t->password_file : "");
    }
    if (a->op == ACTION_OP_STATEMENT) {
        put(&b, "statement", a->statement);
        snprintf(num, sizeof(num), "%zu", a->nparams);
        put(&b, "bind.count", num);
        /* $k is the k-th parameter of the catalog, whatever order the request gave them in. */
        for (size_t j = 0; j < a->nparams; j++) {
            for (size_t i = 0; i < n; i++) {
                if (strcmp(args[i].name, a->params[j].name) != 0)
                    continue;
                snprintf(key, sizeof(key), "bind.%zu", j + 1);
                put(&b, key, args[i].value);
            }
        }
    }
    if (a->kind == ACTION_KUBERNETES) {
        if (!cfg->kube_kubeconfig[0])
            put_in_cluster_secrets(&b, cfg);
        put(&b, "kube.kubeconfig", cfg->kube_kubeconfig);
        put(&b, "kube.context", cfg->kube_context);
        if (cfg->kube_server[0])
            put(&b, "kube.server", cfg->kube_server);
        if (cfg->kube_token_file[0])
            put(&b, "kube.token_file", cfg->kube_token_file);
        if (cfg->kube_ca_file[0])
            put(&b, "kube.ca_file", cfg->kube_ca_file);
    }
    if (b.too_long) {
        free(b.buf);
        snprintf(why, whylen, "action %s: the request would be longer than %d bytes", a->name,
                 SERVICE_REQUEST_MAX);
        return -EINVAL;
    }
    *ret = b.buf;
    *ret_len = b.len;
    return 0;
}

char *service_program_path(const struct agent_config *cfg)
{
    char self[PATH_MAX], *path;

    if (cfg->action_path[0])
        return strdup(cfg->action_path);
    ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (len <= 0)
        return NULL;
    self[len] = '\0';
    char *slash = strrchr(self, '/');
    if (!slash)
        return NULL;
    *slash = '\0';
    return asprintf(&path, "%s/vigil-agent-action", self) < 0 ? NULL : path;
}
