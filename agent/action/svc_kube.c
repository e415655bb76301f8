/*
 * The kubernetes service actions (svc.h): what the runbooks' kubectl steps do, as the cluster
 * agent's ServiceAccount, through the API server's REST interface (libcurl, jansson).
 *
 * Each op reads the object first and writes its account to out: the request line and status of
 * every call, the fields the op touches before and after (compact JSON), and the arguments that
 * would undo it. What each op sends (and the Role verbs it needs):
 *
 * - restart: GET the deployment; PATCH it, strategic merge, with the template annotation
 *   kubectl.kubernetes.io/restartedAt = now, as kubectl rollout restart (get, patch deployments).
 * - scale: GET the deployment; PATCH deployments/NAME/scale, merge patch {"spec":{"replicas":N}},
 *   as kubectl scale (get deployments, patch deployments/scale).
 * - set-env, set-resources: GET the deployment; PATCH it, strategic merge, with the container's
 *   env entry or resources.limits, as the runbooks' kubectl patch (get, patch deployments).
 * - block, unblock: GET the networkpolicy; PATCH it, strategic merge, with the whole spec.ingress
 *   (a list without a merge key: replaced) where the CIDR is added to (removed from) the except
 *   list of every ipBlock holding it, the annotation vigil.dev/blocked (Vigil's blocks) and the
 *   resourceVersion read, so that a change made between the read and the write fails with 409
 *   instead of being lost (get, patch networkpolicies).
 * - isolate-pod: GET the pod; PATCH its label vigil.dev/isolated=true; GET the NetworkPolicy
 *   vigil-isolate and POST it when missing: labelled pods talk to namespace vigil only (get,
 *   patch pods; get, create networkpolicies).
 * - release-pod: GET the pod; PATCH the label to null; list the pods still labelled, and when
 *   none is, DELETE vigil-isolate if it is Vigil's (app.kubernetes.io/managed-by=vigil), with its
 *   uid and resourceVersion as preconditions (get, patch, list pods; get, delete
 *   networkpolicies). An object Vigil does not own is never deleted.
 *
 * What the ops decide from the objects read, without a server (the fields shown before and after,
 * the CIDR arithmetic, the block/unblock patch), is in kube_policy.c, for unit tests and fuzzing.
 *
 * Writes carry ?fieldManager=vigil, so the object's managedFields name Vigil as the writer.
 * The whole run is bounded by timeout_ms. Answers are read up to 4 MiB.
 */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kube_policy.h"
#include "kube_tls.h"
#include "kubeconfig.h"
#include "svc.h"
#include "timeutil.h"

#define RESPONSE_MAX (4 * 1024 * 1024)
#define FIELD_MANAGER "vigil"
#define VIGIL_NAMESPACE "vigil" /* Vigil's own namespace: isolation lets its traffic through */
#define ISOLATE_LABEL "vigil.dev/isolated"
#define ISOLATE_POLICY "vigil-isolate"
#define MANAGED_BY "app.kubernetes.io/managed-by"

#define CT_JSON "application/json"
#define CT_MERGE "application/merge-patch+json"
#define CT_STRATEGIC "application/strategic-merge-patch+json"

#define API_APPS "/apis/apps/v1"
#define API_NET "/apis/networking.k8s.io/v1"
#define API_CORE "/api/v1"

struct kube {
    CURL *curl;
    struct kube_creds creds;
    int64_t deadline_ms;
    int64_t timeout_ms;
    FILE *out;
    char *err;
    size_t errlen;
    char curl_err[CURL_ERROR_SIZE];
};

/* An object the op reads or writes: for paths, messages and the Role hint. */
struct obj {
    const char *api;      /* API_APPS, API_NET, API_CORE */
    const char *kind;     /* "deployment", for messages */
    const char *resource; /* "deployments", the Role's resource */
    const char *ns;
    const char *name; /* NULL for the collection */
};

struct body {
    char *data;
    size_t len;
    bool too_big;
};

static int fail(struct kube *k, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct kube *k, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(k->err, k->errlen, fmt, ap);
    va_end(ap);
    return code;
}

/* Text from the API server for err: bounded, control characters replaced. */
static void plain(const char *text, char *buf, size_t buflen)
{
    size_t i = 0;

    for (; text[i] && i + 1 < buflen; i++)
        buf[i] = (unsigned char)text[i] < 0x20 || text[i] == 0x7f ? '?' : text[i];
    buf[i] = '\0';
}

/* ---- HTTP ---- */

static size_t on_data(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct body *b = userdata;
    size_t n = size * nmemb;

    if (b->len + n > RESPONSE_MAX) {
        b->too_big = true;
        return 0;
    }
    char *grown = realloc(b->data, b->len + n + 1);
    if (!grown)
        return 0;
    b->data = grown;
    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* The path of o (plus sub, e.g. "scale"), its segments escaped; NULL when out of memory. */
static char *obj_path(struct kube *k, const struct obj *o, const char *sub)
{
    char *ns = curl_easy_escape(k->curl, o->ns, 0);
    char *name = o->name ? curl_easy_escape(k->curl, o->name, 0) : NULL;
    char *path = NULL;

    if (ns && (name || !o->name) &&
        asprintf(&path, "%s/namespaces/%s/%s%s%s%s%s", o->api, ns, o->resource, name ? "/" : "",
                 name ? name : "", sub ? "/" : "", sub ? sub : "") < 0)
        path = NULL;
    curl_free(ns);
    curl_free(name);
    return path;
}

static bool is_2xx(long status)
{
    return status >= 200 && status < 300;
}

/*
 * Sends method path (query appended when not NULL) with body (NULL: none) as ctype, and writes
 * the request line to out. SVC_EXIT_OK with the status and the answer's JSON (NULL when it was
 * not JSON) for any HTTP answer; SVC_EXIT_UNREACHABLE or SVC_EXIT_FAILED with err set when there
 * was none.
 */
static int call(struct kube *k, const char *method, const char *path, const char *query,
                const char *ctype, json_t *body, long *ret_status, json_t **ret_json)
{
    struct curl_slist *headers = NULL, *grown;
    struct body answer = {0};
    char *url = NULL, *payload = NULL, *auth = NULL;
    int64_t left = k->deadline_ms - vg_mono_ms();
    long status = 0;
    CURLcode rc;
    int r;

    *ret_json = NULL;
    if (left <= 0)
        return fail(k, SVC_EXIT_UNREACHABLE, "timed out: the run took longer than %lld ms",
                    (long long)k->timeout_ms);
    if (asprintf(&url, "%s%s%s%s", k->creds.server, path, query ? "?" : "", query ? query : "") <
        0) {
        url = NULL;
        r = fail(k, SVC_EXIT_FAILED, "out of memory");
        goto out;
    }
    if (body) {
        payload = json_dumps(body, JSON_COMPACT);
        if (!payload) {
            r = fail(k, SVC_EXIT_FAILED, "out of memory");
            goto out;
        }
    }
    /* "Expect:" drops curl's 100-continue round trip for larger bodies. */
    char content_type[96];
    snprintf(content_type, sizeof(content_type), "Content-Type: %s", ctype ? ctype : CT_JSON);
    const char *fixed[] = {"Accept: " CT_JSON, "Expect:", content_type};
    for (size_t i = 0; i < (payload ? 3 : 2); i++) {
        grown = curl_slist_append(headers, fixed[i]);
        if (!grown) {
            r = fail(k, SVC_EXIT_FAILED, "out of memory");
            goto out;
        }
        headers = grown;
    }
    if (k->creds.token) {
        if (asprintf(&auth, "Authorization: Bearer %s", k->creds.token) < 0) {
            auth = NULL;
            r = fail(k, SVC_EXIT_FAILED, "out of memory");
            goto out;
        }
        grown = curl_slist_append(headers, auth);
        explicit_bzero(auth, strlen(auth));
        if (!grown) {
            r = fail(k, SVC_EXIT_FAILED, "out of memory");
            goto out;
        }
        headers = grown;
    }

    k->curl_err[0] = '\0';
    curl_easy_setopt(k->curl, CURLOPT_URL, url);
    curl_easy_setopt(k->curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(k->curl, CURLOPT_HTTPGET, 1L); /* clears a previous call's body */
    if (payload) {
        curl_easy_setopt(k->curl, CURLOPT_POSTFIELDS, payload);
        curl_easy_setopt(k->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(payload));
    }
    curl_easy_setopt(k->curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(k->curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(k->curl, CURLOPT_WRITEDATA, &answer);
    curl_easy_setopt(k->curl, CURLOPT_TIMEOUT_MS, (long)left);
    curl_easy_setopt(k->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)left);
    rc = curl_easy_perform(k->curl);
    curl_easy_setopt(k->curl, CURLOPT_HTTPHEADER, NULL);
    if (rc == CURLE_WRITE_ERROR && answer.too_big) {
        fprintf(k->out, "%s %s -> answer larger than %d MiB\n", method, path, RESPONSE_MAX >> 20);
        r = fail(k, SVC_EXIT_FAILED, "the API server's answer to %s %s is larger than %d MiB",
                 method, path, RESPONSE_MAX >> 20);
        goto out;
    }
    if (rc != CURLE_OK) {
        const char *why = k->curl_err[0] ? k->curl_err : curl_easy_strerror(rc);
        fprintf(k->out, "%s %s -> no answer (%s)\n", method, path, why);
        /* The node's own TLS files that libcurl could not load are not the server's fault. */
        if (rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_SSL_CACERT_BADFILE ||
            rc == CURLE_OUT_OF_MEMORY)
            r = fail(k, SVC_EXIT_FAILED, "cannot use the TLS credentials for %s: %s",
                     k->creds.server, why);
        else
            r = fail(k, SVC_EXIT_UNREACHABLE, "cannot reach the API server at %s: %s",
                     k->creds.server, why);
        goto out;
    }
    curl_easy_getinfo(k->curl, CURLINFO_RESPONSE_CODE, &status);
    if (payload)
        fprintf(k->out, "%s %s%s%s (%s) -> %ld\n", method, path, query ? "?" : "",
                query ? query : "", ctype, status);
    else
        fprintf(k->out, "%s %s%s%s -> %ld\n", method, path, query ? "?" : "", query ? query : "",
                status);
    if (answer.len > 0)
        *ret_json = json_loadb(answer.data, answer.len, 0, NULL);
    *ret_status = status;
    r = SVC_EXIT_OK;
out:
    curl_slist_free_all(headers);
    if (auth)
        explicit_bzero(auth, strlen(auth));
    free(auth);
    free(payload);
    free(answer.data);
    free(url);
    return r;
}

/* err and the exit status for a failed answer to verb on o (its name in messages). */
static int refused(struct kube *k, long status, json_t *answer, const char *verb,
                   const struct obj *o, const char *sub)
{
    const char *msg = json_string_value(json_object_get(answer, "message"));
    char shown[512], what[600];

    plain(msg ? msg : "(no message)", shown, sizeof(shown));
    if (o->name)
        snprintf(what, sizeof(what), "%s %s/%s", o->kind, o->ns, o->name);
    else
        snprintf(what, sizeof(what), "%s in namespace %s", o->resource, o->ns);
    if (status == 403)
        return fail(k, SVC_EXIT_FAILED,
                    "the API server refused: %s (does the ServiceAccount's Role allow %s %s%s%s "
                    "in %s?)",
                    shown, verb, o->resource, sub ? "/" : "", sub ? sub : "", o->ns);
    /* 401 is the credentials, not the Role: the token expired, was revoked or is another
     * cluster's. */
    if (status == 401)
        return fail(k, SVC_EXIT_FAILED,
                    "the API server refused: %s (it did not accept the credentials: is the "
                    "token current, the ServiceAccount's, and for this cluster?)",
                    shown);
    if (status == 404 && o->name)
        return fail(k, SVC_EXIT_FAILED, "%s not found", what);
    if (status == 404)
        return fail(k, SVC_EXIT_FAILED, "namespace %s not found (%s)", o->ns, shown);
    if (status == 409 || status == 422)
        return fail(k, SVC_EXIT_FAILED, "the API server rejected the change to %s: %s", what,
                    shown);
    return fail(k, SVC_EXIT_FAILED, "the API server answered %s %s with HTTP %ld: %s", verb, what,
                status, shown);
}

/*
 * verb (the Role's word) on o: method to its path (plus sub and query), body as ctype. A 2xx
 * answer that is a JSON object: SVC_EXIT_OK with it in *ret (the caller's to json_decref).
 * With ret_status set, any HTTP answer is SVC_EXIT_OK (the caller judges the status).
 */
static int api(struct kube *k, const char *verb, const char *method, const struct obj *o,
               const char *sub, const char *query, const char *ctype, json_t *body,
               long *ret_status, json_t **ret)
{
    char *path = obj_path(k, o, sub);
    json_t *answer = NULL;
    long status = 0;
    int r;

    *ret = NULL;
    if (!path)
        return fail(k, SVC_EXIT_FAILED, "out of memory");
    r = call(k, method, path, query, ctype, body, &status, &answer);
    free(path);
    if (r != SVC_EXIT_OK)
        return r;
    if (ret_status) {
        *ret_status = status;
        *ret = answer;
        return SVC_EXIT_OK;
    }
    if (!is_2xx(status)) {
        r = refused(k, status, answer, verb, o, sub);
        json_decref(answer);
        return r;
    }
    if (!json_is_object(answer)) {
        json_decref(answer);
        return fail(k, SVC_EXIT_FAILED, "the API server's answer to %s %s %s/%s is not JSON", verb,
                    o->kind, o->ns, o->name ? o->name : "");
    }
    *ret = answer;
    return SVC_EXIT_OK;
}

/* ---- JSON ---- */

/* Writes "label: JSON" (compact; null for NULL). */
static void show(struct kube *k, const char *label, json_t *v)
{
    char *text = json_dumps(v ? v : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);

    fprintf(k->out, "%s: %s\n", label, text ? text : "(out of memory)");
    free(text);
}

/* value as one word of a restore line: as it is, or JSON-quoted when it holds spaces, quotes or
 * control characters, or is empty. Returns what to print (freed by the caller via *tofree). */
static const char *word(const char *value, char **tofree)
{
    bool plain_word = value[0] != '\0';

    *tofree = NULL;
    for (const char *p = value; *p && plain_word; p++)
        plain_word = (unsigned char)*p > 0x20 && *p != '"' && *p != '\\' && *p != 0x7f;
    if (plain_word)
        return value;
    json_t *s = json_string(value);
    *tofree = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
    json_decref(s);
    return *tofree ? *tofree : "\"?\"";
}

static void restore_pair(struct kube *k, const char *name, const char *value, bool first)
{
    char *tofree;

    fprintf(k->out, "%s%s=%s", first ? "restore: " : " ", name, word(value, &tofree));
    free(tofree);
}

/* json_object_set_new that reports failure (every builder below checks the total). */
static int put(json_t *o, const char *key, json_t *v)
{
    return v ? json_object_set_new(o, key, v) : -1;
}

/* {k1: {k2: ... {kN: leaf}}}: the nesting of a patch (keys NULL-terminated). Takes leaf.
 * NEST(leaf, "spec", "replicas"). */
static json_t *nest_path(json_t *leaf, const char *const *keys)
{
    size_t n = 0;

    while (keys[n])
        n++;
    for (size_t i = n; i-- > 0 && leaf;) {
        json_t *o = json_object();
        if (!o) {
            json_decref(leaf);
            return NULL;
        }
        if (put(o, keys[i], leaf) < 0) { /* json_object_set_new took leaf */
            json_decref(o);
            return NULL;
        }
        leaf = o;
    }
    return leaf;
}
#define NEST(leaf, ...) nest_path((leaf), (const char *const[]){__VA_ARGS__, NULL})

/* ---- request ---- */

/* arg.NAME, a name for a path segment when segment is set. */
static int arg(struct kube *k, const struct svc_request *r, const char *name, bool segment,
               const char **ret)
{
    char key[64];
    const char *v;

    snprintf(key, sizeof(key), "arg.%s", name);
    v = svc_get(r, key);
    if (!v) {
        fail(k, SVC_EXIT_BAD_REQUEST, "the request has no %s", key);
        return SVC_EXIT_BAD_REQUEST;
    }
    if (segment && (!v[0] || strlen(v) > 253 || strcmp(v, ".") == 0 || strcmp(v, "..") == 0)) {
        fail(k, SVC_EXIT_BAD_REQUEST, "%s is not a Kubernetes name", key);
        return SVC_EXIT_BAD_REQUEST;
    }
    *ret = v;
    return SVC_EXIT_OK;
}

static struct obj deployment(const char *ns, const char *name)
{
    return (struct obj){API_APPS, "deployment", "deployments", ns, name};
}

/* ---- restart, scale, set-env, set-resources ---- */

static int op_restart(struct kube *k, const struct svc_request *req)
{
    const char *ns = NULL, *name = NULL;
    json_t *dep = NULL, *after = NULL, *patch, *before;
    char now[32];
    struct tm tm;
    time_t t = time(NULL);
    int r;

    if ((r = arg(k, req, "namespace", true, &ns)) || (r = arg(k, req, "deployment", true, &name)))
        return r;
    struct obj o = deployment(ns, name);
    r = api(k, "get", "GET", &o, NULL, NULL, NULL, NULL, NULL, &dep);
    if (r)
        return r;
    before = kube_fields(KUBE_OP_RESTART, dep, NULL, NULL);
    show(k, "before", before);
    json_decref(before);
    json_decref(dep);

    gmtime_r(&t, &tm);
    strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
    patch =
        NEST(json_string(now), "spec", "template", "metadata", "annotations", KUBE_RESTARTED_AT);
    if (!patch)
        return fail(k, SVC_EXIT_FAILED, "out of memory");
    r = api(k, "patch", "PATCH", &o, NULL, "fieldManager=" FIELD_MANAGER, CT_STRATEGIC, patch, NULL,
            &after);
    json_decref(patch);
    if (r)
        return r;
    json_t *shown = kube_fields(KUBE_OP_RESTART, after, NULL, NULL);
    show(k, "after", shown);
    json_decref(shown);
    json_decref(after);
    fprintf(k->out, "restore: none (a restart is not undone)\n");
    return SVC_EXIT_OK;
}

static int op_scale(struct kube *k, const struct svc_request *req)
{
    const char *ns = NULL, *name = NULL, *text = NULL;
    json_t *dep = NULL, *after = NULL, *patch, *before, *old;
    char *end;
    long long replicas;
    int r;

    if ((r = arg(k, req, "namespace", true, &ns)) || (r = arg(k, req, "deployment", true, &name)) ||
        (r = arg(k, req, "replicas", false, &text)))
        return r;
    errno = 0;
    replicas = strtoll(text, &end, 10);
    if (errno || end == text || *end || replicas < 0 || replicas > INT32_MAX)
        return fail(k, SVC_EXIT_BAD_REQUEST, "arg.replicas is not a count (got \"%.32s\")", text);
    struct obj o = deployment(ns, name);
    r = api(k, "get", "GET", &o, NULL, NULL, NULL, NULL, NULL, &dep);
    if (r)
        return r;
    before = kube_fields(KUBE_OP_SCALE, dep, NULL, NULL);
    json_decref(dep);
    show(k, "before", before);
    old = json_object_get(before, "replicas");

    patch = NEST(json_integer(replicas), "spec", "replicas");
    if (!patch) {
        json_decref(before);
        return fail(k, SVC_EXIT_FAILED, "out of memory");
    }
    r = api(k, "patch", "PATCH", &o, "scale", "fieldManager=" FIELD_MANAGER, CT_MERGE, patch, NULL,
            &after);
    json_decref(patch);
    if (r) {
        json_decref(before);
        return r;
    }
    json_t *shown = kube_fields(KUBE_OP_SCALE, after, NULL, NULL);
    show(k, "after", shown);
    json_decref(shown);
    json_decref(after);
    if (json_is_integer(old))
        fprintf(k->out, "restore: replicas=%lld\n", (long long)json_integer_value(old));
    else
        fprintf(k->out, "restore: -\n");
    json_decref(before);
    return SVC_EXIT_OK;
}

/* GET the deployment, which must have the container cname: *ret_dep (caller's). */
static int read_container(struct kube *k, const struct obj *o, const char *cname, json_t **ret_dep)
{
    char names[256];
    json_t *dep = NULL;
    int r = api(k, "get", "GET", o, NULL, NULL, NULL, NULL, NULL, &dep);

    if (r)
        return r;
    if (!kube_container(dep, cname, names, sizeof(names))) {
        json_decref(dep);
        return fail(k, SVC_EXIT_FAILED, "deployment %s/%s has no container \"%s\" (it has: %s)",
                    o->ns, o->name, cname, names[0] ? names : "none");
    }
    *ret_dep = dep;
    return SVC_EXIT_OK;
}

/* {"spec":{"template":{"spec":{"containers":[{"name":cname, key: value}]}}}}: the documents'
 * kubectl patch. Takes value. */
static json_t *container_patch(const char *cname, const char *key, json_t *value)
{
    json_t *c = json_pack("{s:s,s:o}", "name", cname, key, value); /* takes value */
    json_t *list = c ? json_pack("[o]", c) : NULL;                 /* takes c */

    return list ? NEST(list, "spec", "template", "spec", "containers") : NULL;
}

static int op_set_env(struct kube *k, const struct svc_request *req)
{
    const char *ns = NULL, *name = NULL, *cname = NULL, *var = NULL, *value = NULL;
    json_t *dep = NULL, *after = NULL, *old, *entry, *list, *patch, *shown;
    char *old_value = NULL;
    bool old_from = false;
    int r;

    if ((r = arg(k, req, "namespace", true, &ns)) || (r = arg(k, req, "deployment", true, &name)) ||
        (r = arg(k, req, "container", false, &cname)) ||
        (r = arg(k, req, "variable", false, &var)) || (r = arg(k, req, "value", false, &value)))
        return r;
    struct obj o = deployment(ns, name);
    r = read_container(k, &o, cname, &dep);
    if (r)
        return r;
    old = kube_fields(KUBE_OP_SET_ENV, dep, cname, var);
    json_decref(dep);
    show(k, "before", old);
    if (json_is_string(json_object_get(old, "value")))
        old_value = strdup(json_string_value(json_object_get(old, "value")));
    old_from = json_object_get(old, "valueFrom") != NULL;
    json_decref(old);

    /* A variable that came from valueFrom gets a value instead: valueFrom goes (null deletes a
     * field in a strategic merge patch), or the API server refuses an entry holding both. */
    entry = json_object();
    list = json_array();
    if (!entry || !list || put(entry, "name", json_string(var)) < 0 ||
        put(entry, "value", json_string(value)) < 0 ||
        (old_from && put(entry, "valueFrom", json_null()) < 0) ||
        json_array_append(list, entry) < 0) {
        json_decref(entry);
        json_decref(list);
        free(old_value);
        return fail(k, SVC_EXIT_FAILED, "out of memory");
    }
    json_decref(entry);
    patch = container_patch(cname, "env", list);
    if (!patch) {
        free(old_value);
        return fail(k, SVC_EXIT_FAILED, "out of memory");
    }
    r = api(k, "patch", "PATCH", &o, NULL, "fieldManager=" FIELD_MANAGER, CT_STRATEGIC, patch, NULL,
            &after);
    json_decref(patch);
    if (r) {
        free(old_value);
        return r;
    }
    shown = kube_fields(KUBE_OP_SET_ENV, after, cname, var);
    show(k, "after", shown);
    json_decref(shown);
    json_decref(after);
    if (old_value) {
        restore_pair(k, "value", old_value, true);
        fputc('\n', k->out);
    } else {
        fprintf(k->out, "restore: - (%s had %s)\n", var,
                old_from ? "its value from valueFrom, which set-env cannot give back"
                         : "no value before");
    }
    free(old_value);
    return SVC_EXIT_OK;
}

static int op_set_resources(struct kube *k, const struct svc_request *req)
{
    const char *ns = NULL, *name = NULL, *cname = NULL;
    const char *cpu = svc_get(req, "arg.cpu"), *memory = svc_get(req, "arg.memory");
    json_t *dep = NULL, *after = NULL, *before, *shown, *limits, *patch, *old_limits;
    int r;

    if ((r = arg(k, req, "namespace", true, &ns)) || (r = arg(k, req, "deployment", true, &name)) ||
        (r = arg(k, req, "container", false, &cname)))
        return r;
    if ((!cpu || !cpu[0]) && (!memory || !memory[0]))
        return fail(k, SVC_EXIT_BAD_REQUEST, "the request has neither arg.cpu nor arg.memory");
    struct obj o = deployment(ns, name);
    r = read_container(k, &o, cname, &dep);
    if (r)
        return r;
    before = kube_fields(KUBE_OP_SET_RESOURCES, dep, cname, NULL);
    json_decref(dep);
    show(k, "before", before);
    old_limits = json_deep_copy(json_object_get(before, "limits"));
    json_decref(before);

    /* The document's order: memory, then cpu. */
    limits = json_object();
    if (!limits || (memory && memory[0] && put(limits, "memory", json_string(memory)) < 0) ||
        (cpu && cpu[0] && put(limits, "cpu", json_string(cpu)) < 0)) {
        json_decref(limits);
        json_decref(old_limits);
        return fail(k, SVC_EXIT_FAILED, "out of memory");
    }
    patch = container_patch(cname, "resources", NEST(limits, "limits"));
    if (!patch) {
        json_decref(old_limits);
        return fail(k, SVC_EXIT_FAILED, "out of memory");
    }
    r = api(k, "patch", "PATCH", &o, NULL, "fieldManager=" FIELD_MANAGER, CT_STRATEGIC, patch, NULL,
            &after);
    json_decref(patch);
    if (r) {
        json_decref(old_limits);
        return r;
    }
    shown = kube_fields(KUBE_OP_SET_RESOURCES, after, cname, NULL);
    show(k, "after", shown);
    json_decref(shown);
    json_decref(after);

    /* What set-resources would be given to put the limits back: the old value of each limit it
     * changed; "-" for one that was not set (set-resources cannot remove a limit). */
    bool first = true;
    const char *names[] = {"cpu", "memory"};
    const char *given[] = {cpu, memory};
    for (size_t i = 0; i < 2; i++) {
        if (!given[i] || !given[i][0])
            continue;
        const char *v = json_string_value(json_object_get(old_limits, names[i]));
        restore_pair(k, names[i], v ? v : "-", first);
        first = false;
    }
    fputc('\n', k->out);
    json_decref(old_limits);
    return SVC_EXIT_OK;
}

/* ---- block, unblock ---- */

static int op_block(struct kube *k, const struct svc_request *req, bool block)
{
    const char *ns = NULL, *name = NULL, *text = NULL;
    json_t *pol = NULL, *after = NULL, *patch = NULL, *shown;
    struct kube_cidr target;
    char canon[KUBE_CIDR_TEXT_MAX], msg[1024];
    int r;

    if ((r = arg(k, req, "namespace", true, &ns)) || (r = arg(k, req, "policy", true, &name)) ||
        (r = arg(k, req, "cidr", false, &text)))
        return r;
    r = kube_cidr_parse(text, true, &target);
    if (r == -EDOM)
        return fail(k, SVC_EXIT_BAD_REQUEST,
                    "arg.cidr %.64s has bits set past its prefix length, which a NetworkPolicy "
                    "refuses",
                    text);
    if (r < 0)
        return fail(k, SVC_EXIT_BAD_REQUEST, "arg.cidr is not an address or a CIDR (got \"%.64s\")",
                    text);
    kube_cidr_format(&target, canon, sizeof(canon));
    struct obj o = {API_NET, "networkpolicy", "networkpolicies", ns, name};
    r = api(k, "get", "GET", &o, NULL, NULL, NULL, NULL, NULL, &pol);
    if (r)
        return r;
    shown = kube_fields(block ? KUBE_OP_BLOCK : KUBE_OP_UNBLOCK, pol, NULL, NULL);
    show(k, "before", shown);
    json_decref(shown);

    r = kube_policy_edit(pol, &target, block, ns, name, &patch, msg, sizeof(msg));
    json_decref(pol);
    if (r < 0)
        return fail(k, SVC_EXIT_FAILED, "%s", msg);
    if (!patch) {
        fprintf(k->out, "%s\n", msg);
        return SVC_EXIT_OK;
    }
    r = api(k, "patch", "PATCH", &o, NULL, "fieldManager=" FIELD_MANAGER, CT_STRATEGIC, patch, NULL,
            &after);
    json_decref(patch);
    if (r)
        return r;
    shown = kube_fields(block ? KUBE_OP_BLOCK : KUBE_OP_UNBLOCK, after, NULL, NULL);
    show(k, "after", shown);
    json_decref(shown);
    json_decref(after);
    fprintf(k->out, "restore: op=%s cidr=%s\n", block ? "unblock" : "block", canon);
    return SVC_EXIT_OK;
}

/* ---- isolate-pod, release-pod ---- */

static bool managed_by_vigil(json_t *o)
{
    const char *v = json_string_value(KUBE_AT(o, "metadata", "labels", MANAGED_BY));
    return v && strcmp(v, "vigil") == 0;
}

/* The NetworkPolicy vigil-isolate: pods labelled vigil.dev/isolated=true talk to namespace
 * vigil only, in both directions (Vigil's own traffic excepted; DNS too is cut). */
static json_t *isolate_policy(const char *ns)
{
    return json_pack("{s:s,s:s,s:{s:s,s:s,s:{s:s}},s:{s:{s:{s:s}},s:[s,s],s:[{s:[{s:{s:{s:s}}}]}],"
                     "s:[{s:[{s:{s:{s:s}}}]}]}}",
                     "apiVersion", "networking.k8s.io/v1", "kind", "NetworkPolicy", "metadata",
                     "name", ISOLATE_POLICY, "namespace", ns, "labels", MANAGED_BY, "vigil", "spec",
                     "podSelector", "matchLabels", ISOLATE_LABEL, "true", "policyTypes", "Ingress",
                     "Egress", "ingress", "from", "namespaceSelector", "matchLabels",
                     "kubernetes.io/metadata.name", VIGIL_NAMESPACE, "egress", "to",
                     "namespaceSelector", "matchLabels", "kubernetes.io/metadata.name",
                     VIGIL_NAMESPACE);
}

/* PATCH the pod's label to value (NULL: remove it), showing the labels before and after. */
static int label_pod(struct kube *k, const struct obj *pod, const char *value)
{
    enum kube_op op = value ? KUBE_OP_ISOLATE_POD : KUBE_OP_RELEASE_POD;
    json_t *cur = NULL, *after = NULL, *patch, *shown;
    int r = api(k, "get", "GET", pod, NULL, NULL, NULL, NULL, NULL, &cur);

    if (r)
        return r;
    shown = kube_fields(op, cur, NULL, NULL);
    show(k, "before", shown);
    json_decref(shown);
    json_decref(cur);
    patch = NEST(value ? json_string(value) : json_null(), "metadata", "labels", ISOLATE_LABEL);
    if (!patch)
        return fail(k, SVC_EXIT_FAILED, "out of memory");
    r = api(k, "patch", "PATCH", pod, NULL, "fieldManager=" FIELD_MANAGER, CT_STRATEGIC, patch,
            NULL, &after);
    json_decref(patch);
    if (r)
        return r;
    shown = kube_fields(op, after, NULL, NULL);
    show(k, "after", shown);
    json_decref(shown);
    json_decref(after);
    return SVC_EXIT_OK;
}

/* Makes sure the NetworkPolicy vigil-isolate exists in ns and is Vigil's; writes its spec. A
 * concurrent isolate-pod may create it between the read and the create (409): read again. */
static int ensure_isolate_policy(struct kube *k, const char *ns)
{
    struct obj policy = {API_NET, "networkpolicy", "networkpolicies", ns, ISOLATE_POLICY};
    struct obj all = {API_NET, "networkpolicy", "networkpolicies", ns, NULL};
    json_t *pol = NULL;
    long status = 0;

    for (int attempt = 0; attempt < 2; attempt++) {
        int r = api(k, "get", "GET", &policy, NULL, NULL, NULL, NULL, &status, &pol);
        if (r)
            return r;
        if (is_2xx(status)) {
            bool ours = managed_by_vigil(pol);
            show(k, ours ? "policy (Vigil's, exists)" : "policy (not Vigil's)",
                 KUBE_AT(pol, "spec"));
            json_decref(pol);
            if (!ours)
                return fail(k, SVC_EXIT_FAILED,
                            "networkpolicy %s/%s exists and is not Vigil's (no %s=vigil label): "
                            "Vigil left it as it is, so the pod may not be isolated; check that "
                            "policy",
                            ns, ISOLATE_POLICY, MANAGED_BY);
            return SVC_EXIT_OK;
        }
        if (status != 404) {
            r = refused(k, status, pol, "get", &policy, NULL);
            json_decref(pol);
            return r;
        }
        json_decref(pol);
        pol = NULL;
        json_t *body = isolate_policy(ns);
        if (!body)
            return fail(k, SVC_EXIT_FAILED, "out of memory");
        r = api(k, "create", "POST", &all, NULL, "fieldManager=" FIELD_MANAGER, CT_JSON, body,
                &status, &pol);
        json_decref(body);
        if (r)
            return r;
        if (is_2xx(status)) {
            show(k, "policy (created)", KUBE_AT(pol, "spec"));
            json_decref(pol);
            return SVC_EXIT_OK;
        }
        if (status != 409 || attempt > 0) {
            r = refused(k, status, pol, "create", &all, NULL);
            json_decref(pol);
            return r;
        }
        json_decref(pol);
        pol = NULL;
    }
    return fail(k, SVC_EXIT_FAILED, "networkpolicy %s/%s could not be created", ns, ISOLATE_POLICY);
}

static int op_isolate(struct kube *k, const struct svc_request *req)
{
    const char *ns = NULL, *name = NULL;
    int r;

    if ((r = arg(k, req, "namespace", true, &ns)) || (r = arg(k, req, "pod", true, &name)))
        return r;
    struct obj pod = {API_CORE, "pod", "pods", ns, name};
    r = label_pod(k, &pod, "true");
    if (r)
        return r;
    r = ensure_isolate_policy(k, ns);
    if (r) {
        /* Say what is left behind: the label, without the policy that gives it meaning. */
        size_t used = strlen(k->err);
        snprintf(k->err + used, k->errlen - used,
                 " (pod %s/%s is labelled %s=true; release-pod takes the label off)", ns, name,
                 ISOLATE_LABEL);
        return r;
    }
    fprintf(k->out, "restore: op=release-pod pod=%s\n", name);
    return SVC_EXIT_OK;
}

static int op_release(struct kube *k, const struct svc_request *req)
{
    const char *ns = NULL, *name = NULL;
    json_t *list = NULL, *pol = NULL, *gone = NULL, *opts;
    long status = 0;
    char *selector;
    int r;

    if ((r = arg(k, req, "namespace", true, &ns)) || (r = arg(k, req, "pod", true, &name)))
        return r;
    struct obj pod = {API_CORE, "pod", "pods", ns, name};
    struct obj pods = {API_CORE, "pod", "pods", ns, NULL};
    struct obj policy = {API_NET, "networkpolicy", "networkpolicies", ns, ISOLATE_POLICY};
    r = label_pod(k, &pod, NULL);
    if (r)
        return r;

    char *escaped = curl_easy_escape(k->curl, ISOLATE_LABEL "=true", 0);
    if (!escaped || asprintf(&selector, "labelSelector=%s", escaped) < 0) {
        curl_free(escaped);
        return fail(k, SVC_EXIT_FAILED, "out of memory");
    }
    curl_free(escaped);
    r = api(k, "list", "GET", &pods, NULL, selector, NULL, NULL, NULL, &list);
    free(selector);
    if (r)
        return r;
    size_t still = json_array_size(json_object_get(list, "items"));
    json_decref(list);
    if (still > 0) {
        fprintf(k->out, "policy: %s/%s kept: %zu pod%s still isolated\n", ns, ISOLATE_POLICY, still,
                still == 1 ? "" : "s");
        goto done;
    }
    r = api(k, "get", "GET", &policy, NULL, NULL, NULL, NULL, &status, &pol);
    if (r)
        return r;
    if (status == 404) {
        json_decref(pol);
        fprintf(k->out, "policy: %s/%s does not exist\n", ns, ISOLATE_POLICY);
        goto done;
    }
    if (!is_2xx(status)) {
        r = refused(k, status, pol, "get", &policy, NULL);
        json_decref(pol);
        return r;
    }
    if (!managed_by_vigil(pol)) {
        json_decref(pol);
        fprintf(k->out, "policy: %s/%s kept: it is not Vigil's (no %s=vigil label)\n", ns,
                ISOLATE_POLICY, MANAGED_BY);
        goto done;
    }
    /* Preconditions: delete the very object just read, not one put in its place since. */
    opts = json_pack("{s:s,s:s,s:{s:O?,s:O?}}", "apiVersion", "v1", "kind", "DeleteOptions",
                     "preconditions", "uid", KUBE_AT(pol, "metadata", "uid"), "resourceVersion",
                     KUBE_AT(pol, "metadata", "resourceVersion"));
    json_decref(pol);
    if (!opts)
        return fail(k, SVC_EXIT_FAILED, "out of memory");
    r = api(k, "delete", "DELETE", &policy, NULL, NULL, CT_JSON, opts, NULL, &gone);
    json_decref(opts);
    json_decref(gone);
    if (r)
        return r;
    fprintf(k->out, "policy: %s/%s deleted (no pod isolated any more)\n", ns, ISOLATE_POLICY);
done:
    fprintf(k->out, "restore: op=isolate-pod pod=%s\n", name);
    return SVC_EXIT_OK;
}

/* ---- the module ---- */

static int setup(struct kube *k, const struct svc_request *req)
{
    struct kube_source src = {
        .kubeconfig = svc_get(req, "kube.kubeconfig"),
        .context = svc_get(req, "kube.context"),
        .server = svc_get(req, "kube.server"),
        .token_file = svc_get(req, "kube.token_file"),
        .ca_file = svc_get(req, "kube.ca_file"),
        .token = svc_get(req, "kube.token"),
        .ca_pem = svc_get(req, "kube.ca_pem"),
    };
    int64_t ms;
    int code = svc_timeout_ms(req, &ms, k->err, k->errlen);

    if (code != SVC_EXIT_OK)
        return code;
    k->timeout_ms = ms;
    k->deadline_ms = vg_mono_ms() + ms;

    if (kube_creds_load(&src, &k->creds, k->err, k->errlen) < 0)
        return SVC_EXIT_FAILED;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return fail(k, SVC_EXIT_FAILED, "cannot initialise libcurl");
    k->curl = curl_easy_init();
    if (!k->curl)
        return fail(k, SVC_EXIT_FAILED, "cannot initialise libcurl");

    curl_easy_setopt(k->curl, CURLOPT_ERRORBUFFER, k->curl_err);
    CURLcode rc = kube_tls_setup(k->curl, &k->creds, "vigil-agent-action/" VIGIL_VERSION);
    if (rc != CURLE_OK)
        return fail(k, SVC_EXIT_FAILED, "libcurl refused the TLS settings: %s",
                    curl_easy_strerror(rc));
    return SVC_EXIT_OK;
}

int svc_kube_run(const struct svc_request *r, FILE *out, char *err, size_t errlen)
{
    struct kube k = {.out = out, .err = err, .errlen = errlen};
    const char *op = svc_get_or(r, "op", "");
    int rc;

    rc = setup(&k, r);
    if (rc != SVC_EXIT_OK)
        goto out;
    if (strcmp(op, "restart") == 0)
        rc = op_restart(&k, r);
    else if (strcmp(op, "scale") == 0)
        rc = op_scale(&k, r);
    else if (strcmp(op, "set-env") == 0)
        rc = op_set_env(&k, r);
    else if (strcmp(op, "set-resources") == 0)
        rc = op_set_resources(&k, r);
    else if (strcmp(op, "block") == 0)
        rc = op_block(&k, r, true);
    else if (strcmp(op, "unblock") == 0)
        rc = op_block(&k, r, false);
    else if (strcmp(op, "isolate-pod") == 0)
        rc = op_isolate(&k, r);
    else if (strcmp(op, "release-pod") == 0)
        rc = op_release(&k, r);
    else
        rc = fail(&k, SVC_EXIT_BAD_REQUEST, "unknown kubernetes op \"%.40s\"", op);
out:
    if (k.curl)
        curl_easy_cleanup(k.curl);
    k.curl = NULL;
    kube_creds_clear(&k.creds);
    return rc;
}
