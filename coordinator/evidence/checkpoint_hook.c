/* Checkpoints to the audit channel: the contract is in checkpoint_hook.h. */
#include "checkpoint_hook.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "curl_multi.h"
#include "log.h"
#include "metrics.h"
#include "timeutil.h"

struct checkpoint_hook {
    char *url;
    pthread_t thread;
    bool started;
    CURLM *multi;
    CURL *easy;
    struct curl_slist *headers;
    atomic_bool stopping;
    /* Under lock: the bodies waiting, oldest first, and whether a post asked for a round. */
    pthread_mutex_t lock;
    char *pending[CHECKPOINT_HOOK_PENDING_MAX];
    size_t npending;
    uint64_t dropped; /* how many were ever taken off the front (sent or dropped) */
    bool kicked;
    bool failing; /* the sender's own: the last attempt failed (logged once per streak) */
};

static bool stopping(void *userdata)
{
    const checkpoint_hook_t *self = userdata;
    return atomic_load(&self->stopping);
}

static size_t discard(char *data, size_t size, size_t n, void *userdata)
{
    (void)data;
    (void)userdata;
    return size * n;
}

/* One POST of body. true when the receiver answered 2xx. */
static bool post(checkpoint_hook_t *self, const char *body)
{
    curl_easy_setopt(self->easy, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(self->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    const struct vg_curl_hooks hooks = {.cancel_fd = -1, .cancelled = stopping, .userdata = self};
    bool cancelled = false;
    CURLcode rc =
        vg_curl_multi_transfer(self->multi, self->easy, &hooks,
                               vg_mono_ms() + CHECKPOINT_HOOK_TIMEOUT_MS + 1000, &cancelled);
    if (cancelled)
        return false;
    long code = 0;
    curl_easy_getinfo(self->easy, CURLINFO_RESPONSE_CODE, &code);
    bool ok = rc == CURLE_OK && code >= 200 && code < 300;
    metrics_checkpoint_post(ok);
    if (!ok && !self->failing) {
        char why[64];
        snprintf(why, sizeof(why), "HTTP status %ld", code);
        vg_log(VG_LOG_WARN,
               "checkpoint webhook: %s failed: %s (sent again with the next checkpoint)", self->url,
               rc != CURLE_OK ? curl_easy_strerror(rc) : why);
    } else if (ok && self->failing) {
        vg_log(VG_LOG_INFO, "checkpoint webhook: %s answers again", self->url);
    }
    self->failing = !ok;
    return ok;
}

/* Sends what waits, oldest first, until one fails: it and those after wait for the next round. */
static void send_pending(checkpoint_hook_t *self)
{
    while (!atomic_load(&self->stopping)) {
        pthread_mutex_lock(&self->lock);
        char *body = self->npending ? strdup(self->pending[0]) : NULL;
        uint64_t dropped = self->dropped;
        pthread_mutex_unlock(&self->lock);
        if (!body)
            return; /* nothing left (or no memory for the copy: the next round tries again) */
        bool ok = post(self, body);
        free(body);
        if (!ok)
            return;
        pthread_mutex_lock(&self->lock);
        /* Unless a burst of posts dropped it meanwhile, it is still the oldest. */
        if (self->npending && self->dropped == dropped) {
            free(self->pending[0]);
            memmove(self->pending, self->pending + 1, (self->npending - 1) * sizeof(char *));
            self->npending--;
            self->dropped++;
        }
        pthread_mutex_unlock(&self->lock);
    }
}

static void *run(void *arg)
{
    checkpoint_hook_t *self = arg;
    while (!atomic_load(&self->stopping)) {
        pthread_mutex_lock(&self->lock);
        bool kicked = self->kicked;
        self->kicked = false;
        pthread_mutex_unlock(&self->lock);
        if (kicked)
            send_pending(self);
        /* Woken early by checkpoint_hook_post and checkpoint_hook_destroy (curl_multi_wakeup). */
        vg_curl_multi_step(self->multi, NULL, 1000, NULL);
    }
    return NULL;
}

checkpoint_hook_t *checkpoint_hook_start(const char *url, char *err, size_t errlen)
{
    checkpoint_hook_t *self = calloc(1, sizeof(*self));
    if (!self)
        goto err_oom;
    pthread_mutex_init(&self->lock, NULL);
    if (!(self->url = strdup(url)) || !(self->multi = curl_multi_init()) ||
        !(self->easy = curl_easy_init()) ||
        !(self->headers = curl_slist_append(NULL, "Content-Type: application/json")))
        goto err_oom;
    curl_easy_setopt(self->easy, CURLOPT_URL, self->url);
    curl_easy_setopt(self->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(self->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(self->easy, CURLOPT_TIMEOUT_MS, (long)CHECKPOINT_HOOK_TIMEOUT_MS);
    curl_easy_setopt(self->easy, CURLOPT_HTTPHEADER, self->headers);
    curl_easy_setopt(self->easy, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(self->easy, CURLOPT_USERAGENT, "vigil-coordinator checkpoints");
    int r = pthread_create(&self->thread, NULL, run, self);
    if (r != 0) {
        snprintf(err, errlen, "checkpoint webhook: cannot start its thread: %s", strerror(r));
        checkpoint_hook_destroy(&self);
        return NULL;
    }
    self->started = true;
    vg_log(VG_LOG_INFO, "checkpoint webhook: every checkpoint is also sent to %s", self->url);
    return self;

err_oom:
    snprintf(err, errlen, "checkpoint webhook: out of memory");
    checkpoint_hook_destroy(&self);
    return NULL;
}

void checkpoint_hook_post(checkpoint_hook_t *self, const char *text, int64_t issued_at_ms)
{
    if (!self || !text)
        return;
    json_t *doc = json_pack("{s:s, s:I, s:s}", "kind", "vigil.checkpoint", "issued_at_ms",
                            (json_int_t)issued_at_ms, "checkpoint", text);
    char *body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!body) {
        vg_log(VG_LOG_WARN,
               "checkpoint webhook: out of memory: checkpoint of %" PRId64
               " not sent (its file is written)",
               issued_at_ms);
        metrics_checkpoint_post(false);
        return;
    }
    pthread_mutex_lock(&self->lock);
    if (self->npending == CHECKPOINT_HOOK_PENDING_MAX) {
        vg_log(VG_LOG_WARN,
               "checkpoint webhook: %d checkpoints wait for %s; the oldest is dropped (its file "
               "in state_dir/checkpoints stays)",
               CHECKPOINT_HOOK_PENDING_MAX, self->url);
        free(self->pending[0]);
        memmove(self->pending, self->pending + 1, (self->npending - 1) * sizeof(char *));
        self->npending--;
        self->dropped++;
    }
    self->pending[self->npending++] = body;
    self->kicked = true;
    pthread_mutex_unlock(&self->lock);
    curl_multi_wakeup(self->multi);
}

void checkpoint_hook_destroy(checkpoint_hook_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    checkpoint_hook_t *self = *self_p;
    if (self->started) {
        atomic_store(&self->stopping, true);
        curl_multi_wakeup(self->multi);
        pthread_join(self->thread, NULL);
    }
    if (self->easy)
        curl_easy_cleanup(self->easy);
    if (self->multi)
        curl_multi_cleanup(self->multi);
    curl_slist_free_all(self->headers);
    for (size_t i = 0; i < self->npending; i++)
        free(self->pending[i]);
    pthread_mutex_destroy(&self->lock);
    free(self->url);
    free(self);
    *self_p = NULL;
}
