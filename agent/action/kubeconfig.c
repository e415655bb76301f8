/* The kubernetes module's credentials: in-cluster or a kubeconfig context (see kubeconfig.h). */
#include "kubeconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <libfyaml.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "yaml.h"

#define KUBECONFIG_MAX (1024 * 1024) /* larger than any kubeconfig a person keeps */
#define TOKEN_MAX (64 * 1024)        /* a ServiceAccount token is a JWT of about 1 KiB */

static bool empty(const char *s)
{
    return !s || !s[0];
}

/* -errno, never 0 (a failed call that left errno unset still fails). */
static int neg_errno(void)
{
    return errno > 0 ? -errno : -EIO;
}

/* Reads all of path (at most max bytes) into a NUL-terminated *ret. */
static int read_file(const char *path, size_t max, char **ret, size_t *ret_len)
{
    struct stat st;
    char *buf;
    size_t used = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    int r;

    if (fd < 0)
        return neg_errno();
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        r = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
        goto err_close;
    }
    buf = malloc(max + 1);
    if (!buf) {
        r = -ENOMEM;
        goto err_close;
    }
    for (;;) {
        ssize_t n = read(fd, buf + used, max + 1 - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = neg_errno();
            goto err_free;
        }
        if (n == 0)
            break;
        used += (size_t)n;
        if (used > max) {
            r = -EFBIG;
            goto err_free;
        }
    }
    close(fd);
    buf[used] = '\0';
    *ret = buf;
    if (ret_len)
        *ret_len = used;
    return 0;

err_free:
    explicit_bzero(buf, used);
    free(buf);
err_close:
    close(fd);
    return r;
}

static const char *file_error(int r)
{
    if (r == -EFBIG)
        return "too large";
    if (r == -EINVAL)
        return "not a regular file";
    return strerror(-r);
}

/* A bearer token goes into an HTTP header: one line of visible ASCII, nothing else. */
static bool token_ok(const char *t)
{
    if (!t[0])
        return false;
    for (const char *p = t; *p; p++) {
        if (*p < 0x21 || *p > 0x7e)
            return false;
    }
    return true;
}

/* The token as the executor passed it: trailing white space trimmed, then one visible line. */
static int inline_token(const char *token, char **ret, char *err, size_t errlen)
{
    size_t len = strlen(token);
    while (len > 0 && strchr(" \t\r\n", token[len - 1]))
        len--;
    char *text = strndup(token, len);
    if (!text) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    if (!token_ok(text)) {
        snprintf(err, errlen, "the ServiceAccount token is not one line of visible ASCII");
        explicit_bzero(text, len);
        free(text);
        return -EINVAL;
    }
    *ret = text;
    return 0;
}

static int read_token(const char *path, char **ret, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    int r = read_file(path, TOKEN_MAX, &text, &len);

    if (r < 0 || !text) {
        r = r < 0 ? r : -EIO;
        snprintf(err, errlen, "cannot read the token file %s: %s", path, file_error(r));
        return r;
    }
    while (len > 0 && strchr(" \t\r\n", text[len - 1]))
        text[--len] = '\0';
    if (!token_ok(text)) {
        snprintf(err, errlen, "the token file %s does not hold a token (one line of visible ASCII)",
                 path);
        explicit_bzero(text, len);
        free(text);
        return -EINVAL;
    }
    *ret = text;
    return 0;
}

/* server without its trailing slashes; only https (the token must never travel in the clear). */
static int set_server(struct kube_creds *c, const char *server, const char *where, char *err,
                      size_t errlen)
{
    size_t len = strlen(server);

    if (strncmp(server, "https://", 8) != 0 || len <= 8) {
        snprintf(err, errlen,
                 "%s: the API server must be an https:// URL (got \"%.80s\"): the token and the "
                 "changes are never sent unencrypted",
                 where, server);
        return -EINVAL;
    }
    for (const char *p = server; *p; p++) {
        if (*p <= 0x20 || *p > 0x7e) {
            snprintf(err, errlen, "%s: the API server URL holds a space or a control character",
                     where);
            return -EINVAL;
        }
    }
    while (len > 8 && server[len - 1] == '/')
        len--;
    c->server = strndup(server, len);
    if (!c->server) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

static int in_cluster(const struct kube_source *src, struct kube_creds *c, char *err, size_t errlen)
{
    const char *server = empty(src->server) ? KUBE_DEFAULT_SERVER : src->server;
    const char *token_file = empty(src->token_file) ? KUBE_DEFAULT_TOKEN_FILE : src->token_file;
    const char *ca_file = empty(src->ca_file) ? KUBE_DEFAULT_CA_FILE : src->ca_file;
    int r = set_server(c, server, "kube.server", err, errlen);

    if (r < 0)
        return r;
    if (!empty(src->ca_pem)) {
        c->ca.len = strlen(src->ca_pem);
        c->ca.data = (unsigned char *)strdup(src->ca_pem);
        if (!c->ca.data) {
            snprintf(err, errlen, "out of memory");
            return -ENOMEM;
        }
    } else if (access(ca_file, R_OK) < 0) {
        r = neg_errno();
        snprintf(err, errlen, "cannot read the API server's CA file %s: %s", ca_file, strerror(-r));
        return r;
    } else if (!(c->ca_file = strdup(ca_file))) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    if (!empty(src->token))
        return inline_token(src->token, &c->token, err, errlen);
    return read_token(token_file, &c->token, err, errlen);
}

/* ---- kubeconfig ---- */

struct kcfg {
    const char *file;
    char *dir; /* the kubeconfig's directory, for relative paths */
    char *err;
    size_t errlen;
};

static int kerr(struct kcfg *k, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int kerr(struct kcfg *k, int r, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(k->err, k->errlen, "kubeconfig %s: %s", k->file, msg);
    return r;
}

static struct fy_node *lookup(struct fy_node *map, const char *key)
{
    if (!map || !fy_node_is_mapping(map))
        return NULL;
    return fy_node_mapping_lookup_by_string(map, key, FY_NT);
}

/* The scalar at key of map, NULL when absent or null; -EINVAL via *bad when not a scalar. */
static const char *scalar(struct fy_node *map, const char *key, bool *bad)
{
    struct fy_node *n = lookup(map, key);

    if (vg_yaml_is_empty(n))
        return NULL;
    if (!fy_node_is_scalar(n) || fy_node_is_alias(n)) {
        *bad = true;
        return NULL;
    }
    return fy_node_get_scalar0(n);
}

/* The item of the named list (clusters, users, contexts) called name: its inner mapping
 * (item[inner]). */
static int named(struct kcfg *k, struct fy_node *root, const char *list, const char *inner,
                 const char *name, struct fy_node **ret)
{
    struct fy_node *seq = lookup(root, list);
    struct fy_node *item;
    void *iter = NULL;
    bool bad = false;

    if (seq && !vg_yaml_is_empty(seq) && !fy_node_is_sequence(seq))
        return kerr(k, -EINVAL, "%s is %s, not a list", list, vg_yaml_kind_of(seq));
    while (seq && (item = fy_node_sequence_iterate(seq, &iter))) {
        const char *n = scalar(item, "name", &bad);
        if (n && strcmp(n, name) == 0) {
            struct fy_node *v = lookup(item, inner);
            if (!v || !fy_node_is_mapping(v))
                return kerr(k, -EINVAL, "%s \"%.80s\" has no %s mapping", list, name, inner);
            *ret = v;
            return 0;
        }
    }
    return kerr(k, -ENOENT, "no %.*s named \"%.80s\"", (int)strlen(list) - 1, list, name);
}

/* path as kubectl reads it: relative to the kubeconfig's directory. */
static char *resolve(struct kcfg *k, const char *path)
{
    char *out;

    if (path[0] == '/')
        return strdup(path);
    if (asprintf(&out, "%s/%s", k->dir, path) < 0)
        return NULL;
    return out;
}

/* A path field that must name a readable file: resolved into *ret. */
static int path_field(struct kcfg *k, const char *what, const char *path, char **ret)
{
    char *full = resolve(k, path);

    if (!full)
        return kerr(k, -ENOMEM, "out of memory");
    if (access(full, R_OK) < 0) {
        int r = neg_errno();
        kerr(k, r, "cannot read the %s %s: %s", what, full, strerror(-r));
        free(full);
        return r;
    }
    *ret = full;
    return 0;
}

static int data_field(struct kcfg *k, const char *key, const char *b64, struct kube_blob *ret)
{
    size_t len = strlen(b64), out_len;
    unsigned char *out = malloc(len / 4 * 3 + 4);

    if (!out)
        return kerr(k, -ENOMEM, "out of memory");
    if (sodium_base642bin(out, len / 4 * 3 + 4, b64, len, " \t\r\n", &out_len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        out_len == 0) {
        free(out);
        return kerr(k, -EINVAL, "%s is not base64", key);
    }
    ret->data = out;
    ret->len = out_len;
    return 0;
}

static int load_cluster(struct kcfg *k, struct fy_node *cluster, const char *name,
                        struct kube_creds *c)
{
    bool bad = false;
    const char *server = scalar(cluster, "server", &bad);
    const char *insecure = scalar(cluster, "insecure-skip-tls-verify", &bad);
    const char *ca = scalar(cluster, "certificate-authority", &bad);
    const char *ca_data = scalar(cluster, "certificate-authority-data", &bad);
    char where[160];
    int r;

    if (bad)
        return kerr(k, -EINVAL, "cluster \"%.80s\": a field that should be text is not", name);
    if (insecure && strcmp(insecure, "false") != 0)
        return kerr(k, -EINVAL,
                    "cluster \"%.80s\" sets insecure-skip-tls-verify, which Vigil refuses: "
                    "without verifying the server's certificate, anyone on the path could take "
                    "the token and answer for the API server; give its CA instead",
                    name);
    if (!server)
        return kerr(k, -EINVAL, "cluster \"%.80s\" has no server", name);
    snprintf(where, sizeof(where), "kubeconfig %s: cluster \"%.80s\"", k->file, name);
    r = set_server(c, server, where, k->err, k->errlen);
    if (r < 0)
        return r;
    if (ca_data)
        return data_field(k, "certificate-authority-data", ca_data, &c->ca);
    if (ca)
        return path_field(k, "certificate-authority file", ca, &c->ca_file);
    return 0; /* the system's CA store, as kubectl */
}

static int load_user(struct kcfg *k, struct fy_node *user, const char *name, struct kube_creds *c)
{
    bool bad = false;
    const char *token = scalar(user, "token", &bad);
    const char *token_file = scalar(user, "tokenFile", &bad);
    const char *cert = scalar(user, "client-certificate", &bad);
    const char *cert_data = scalar(user, "client-certificate-data", &bad);
    const char *key = scalar(user, "client-key", &bad);
    const char *key_data = scalar(user, "client-key-data", &bad);
    int r;

    if (bad)
        return kerr(k, -EINVAL, "user \"%.80s\": a field that should be text is not", name);
    if (!vg_yaml_is_empty(lookup(user, "exec")) || !vg_yaml_is_empty(lookup(user, "auth-provider")))
        return kerr(k, -EINVAL,
                    "user \"%.80s\" gets its credentials from a program or plugin (exec, "
                    "auth-provider), which Vigil does not run; give it a token, a tokenFile or a "
                    "client certificate",
                    name);
    if (scalar(user, "password", &bad))
        return kerr(k, -EINVAL,
                    "user \"%.80s\" authenticates with a password, which Vigil does not send; "
                    "give it a token, a tokenFile or a client certificate",
                    name);
    if (token_file) {
        char *full = resolve(k, token_file);
        if (!full)
            return kerr(k, -ENOMEM, "out of memory");
        r = read_token(full, &c->token, k->err, k->errlen);
        free(full);
        if (r < 0)
            return r;
    } else if (token) {
        if (!token_ok(token))
            return kerr(k, -EINVAL, "user \"%.80s\": the token is not one line of visible ASCII",
                        name);
        c->token = strdup(token);
        if (!c->token)
            return kerr(k, -ENOMEM, "out of memory");
    }
    if ((cert || cert_data) != (key || key_data))
        return kerr(k, -EINVAL,
                    "user \"%.80s\" has a client certificate without its key, or a "
                    "key without its certificate",
                    name);
    if (cert_data)
        r = data_field(k, "client-certificate-data", cert_data, &c->cert);
    else if (cert)
        r = path_field(k, "client certificate", cert, &c->cert_file);
    else
        r = 0;
    if (r < 0)
        return r;
    if (key_data)
        r = data_field(k, "client-key-data", key_data, &c->key);
    else if (key)
        r = path_field(k, "client key", key, &c->key_file);
    if (r < 0)
        return r;
    if (!c->token && !c->cert_file && !c->cert.data)
        return kerr(k, -EINVAL, "user \"%.80s\" has no token, tokenFile or client certificate",
                    name);
    return 0;
}

static int from_kubeconfig(const struct kube_source *src, struct kube_creds *c, char *err,
                           size_t errlen)
{
    struct kcfg k = {.file = src->kubeconfig, .err = err, .errlen = errlen};
    struct fy_parse_cfg pcfg = {.flags = FYPCF_QUIET};
    struct fy_document *doc;
    struct fy_node *root, *ctx = NULL, *cluster = NULL, *user = NULL;
    struct fy_mark mark;
    const char *slash, *context, *cluster_name, *user_name;
    char *text = NULL;
    size_t len = 0;
    bool bad = false;
    int r;

    r = read_file(src->kubeconfig, KUBECONFIG_MAX, &text, &len);
    if (r < 0 || !text) {
        r = r < 0 ? r : -EIO;
        return kerr(&k, r, "cannot read it: %s", file_error(r));
    }
    slash = strrchr(src->kubeconfig, '/');
    k.dir = slash ? strndup(src->kubeconfig,
                            slash == src->kubeconfig ? 1 : (size_t)(slash - src->kubeconfig))
                  : strdup(".");
    if (!k.dir) {
        r = kerr(&k, -ENOMEM, "out of memory");
        goto err_free_text;
    }
    if (!vg_yaml_utf8_ok(text, len, &mark)) {
        r = kerr(&k, -EINVAL, "line %d: not UTF-8 text", mark.line + 1);
        goto err_free_dir;
    }
    pcfg.diag = vg_yaml_diag_new();
    if (!pcfg.diag) {
        r = kerr(&k, -ENOMEM, "out of memory");
        goto err_free_dir;
    }
    doc = fy_document_build_from_string(&pcfg, text, len);
    if (!doc) {
        if (!vg_yaml_parse_error(pcfg.diag, src->kubeconfig, err, errlen))
            kerr(&k, 0, "not YAML");
        r = -EINVAL;
        goto err_destroy_diag;
    }
    root = fy_document_root(doc);
    if (!root || !fy_node_is_mapping(root)) {
        r = kerr(&k, -EINVAL, "not a kubeconfig (a mapping of clusters, users and contexts)");
        goto err_destroy_doc;
    }
    context = empty(src->context) ? scalar(root, "current-context", &bad) : src->context;
    if (!context) {
        r = kerr(&k, -EINVAL, "no current-context, and the request names no kube.context");
        goto err_destroy_doc;
    }
    r = named(&k, root, "contexts", "context", context, &ctx);
    if (r < 0)
        goto err_destroy_doc;
    cluster_name = scalar(ctx, "cluster", &bad);
    user_name = scalar(ctx, "user", &bad);
    if (!cluster_name || !user_name) {
        r = kerr(&k, -EINVAL, "context \"%.80s\" needs a cluster and a user", context);
        goto err_destroy_doc;
    }
    r = named(&k, root, "clusters", "cluster", cluster_name, &cluster);
    if (r == 0)
        r = load_cluster(&k, cluster, cluster_name, c);
    if (r == 0)
        r = named(&k, root, "users", "user", user_name, &user);
    if (r == 0)
        r = load_user(&k, user, user_name, c);

err_destroy_doc:
    fy_document_destroy(doc);
err_destroy_diag:
    fy_diag_destroy(pcfg.diag);
err_free_dir:
    free(k.dir);
err_free_text:
    explicit_bzero(text, len);
    free(text);
    return r;
}

int kube_creds_load(const struct kube_source *src, struct kube_creds *ret, char *err, size_t errlen)
{
    struct kube_creds c = {0};
    int r;

    *ret = c;
    r = empty(src->kubeconfig) ? in_cluster(src, &c, err, errlen)
                               : from_kubeconfig(src, &c, err, errlen);
    if (r < 0) {
        kube_creds_clear(&c);
        return r;
    }
    *ret = c;
    return 0;
}

static void blob_clear(struct kube_blob *b)
{
    if (b->data)
        explicit_bzero(b->data, b->len);
    free(b->data);
    b->data = NULL;
    b->len = 0;
}

void kube_creds_clear(struct kube_creds *c)
{
    if (c->token)
        explicit_bzero(c->token, strlen(c->token));
    free(c->token);
    free(c->server);
    free(c->ca_file);
    free(c->cert_file);
    free(c->key_file);
    blob_clear(&c->ca);
    blob_clear(&c->cert);
    blob_clear(&c->key);
    *c = (struct kube_creds){0};
}
