/* The dead-man's switch: the contract is in watchdog.h. */
#include "watchdog.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "curl_multi.h"
#include "log.h"
#include "metrics.h"
#include "timeutil.h"

#define CALL_TIMEOUT_MAX_MS 10000

struct watchdog {
    char *url;
    int64_t interval_ms;
    pthread_t thread;
    CURLM *multi;
    CURL *easy;
    atomic_bool stopping;
    atomic_llong healthy_at_ms; /* mono ms of the main loop's last "healthy"; 0 = not healthy */
    bool failing;               /* the last call failed (logged once per streak) */
};

static bool stopping(void *userdata)
{
    const watchdog_t *self = userdata;
    return atomic_load(&self->stopping);
}

static size_t discard(char *data, size_t size, size_t n, void *userdata)
{
    (void)data;
    (void)userdata;
    return size * n;
}

/* One call of the URL; logs a failure once per streak, the recovery once. */
static void call(watchdog_t *self)
{
    int64_t timeout =
        self->interval_ms < CALL_TIMEOUT_MAX_MS ? self->interval_ms : CALL_TIMEOUT_MAX_MS;
    curl_easy_setopt(self->easy, CURLOPT_TIMEOUT_MS, (long)timeout);
    const struct vg_curl_hooks hooks = {.cancel_fd = -1, .cancelled = stopping, .userdata = self};
    bool cancelled = false;
    CURLcode rc = vg_curl_multi_transfer(self->multi, self->easy, &hooks,
                                         vg_mono_ms() + timeout + 1000, &cancelled);
    if (cancelled)
        return;
    long code = 0;
    curl_easy_getinfo(self->easy, CURLINFO_RESPONSE_CODE, &code);
    bool ok = rc == CURLE_OK && code >= 200 && code < 300;
    metrics_watchdog_call(ok ? "ok" : "failed");
    if (!ok && !self->failing)
        vg_log(VG_LOG_WARN, "watchdog: %s failed: %s", self->url,
               rc != CURLE_OK ? curl_easy_strerror(rc) : "HTTP status not 2xx");
    else if (ok && self->failing)
        vg_log(VG_LOG_INFO, "watchdog: %s answers again", self->url);
    self->failing = !ok;
}

static void *run(void *arg)
{
    watchdog_t *self = arg;
    int64_t next = vg_mono_ms();
    while (!atomic_load(&self->stopping)) {
        int64_t now = vg_mono_ms();
        if (now >= next) {
            long long healthy_at = atomic_load(&self->healthy_at_ms);
            /* Healthy, said recently: a main loop that stopped saying so stops the calls. */
            if (healthy_at > 0 && now - healthy_at <= self->interval_ms)
                call(self);
            else
                metrics_watchdog_call("skipped");
            next = now + self->interval_ms;
            continue;
        }
        /* Woken early by watchdog_destroy (curl_multi_wakeup). */
        vg_curl_multi_step(self->multi, NULL, next - now < 1000 ? next - now : 1000, NULL);
    }
    return NULL;
}

watchdog_t *watchdog_start(const char *url, int64_t interval_ms, char *err, size_t errlen)
{
    watchdog_t *self = calloc(1, sizeof(*self));
    if (!self || !(self->url = strdup(url)) || !(self->multi = curl_multi_init()) ||
        !(self->easy = curl_easy_init())) {
        snprintf(err, errlen, "watchdog: out of memory");
        watchdog_destroy(&self);
        return NULL;
    }
    self->interval_ms = interval_ms;
    curl_easy_setopt(self->easy, CURLOPT_URL, self->url);
    curl_easy_setopt(self->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(self->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(self->easy, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(self->easy, CURLOPT_USERAGENT, "vigil-coordinator watchdog");
    int r = pthread_create(&self->thread, NULL, run, self);
    if (r != 0) {
        snprintf(err, errlen, "watchdog: cannot start its thread: %s", strerror(r));
        curl_easy_cleanup(self->easy);
        curl_multi_cleanup(self->multi);
        free(self->url);
        free(self);
        return NULL;
    }
    vg_log(VG_LOG_INFO, "watchdog: calling %s every %lld ms while healthy", self->url,
           (long long)interval_ms);
    return self;
}

void watchdog_set_healthy(watchdog_t *self, bool healthy)
{
    if (self)
        atomic_store(&self->healthy_at_ms, healthy ? vg_mono_ms() : 0);
}

void watchdog_destroy(watchdog_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    watchdog_t *self = *self_p;
    if (self->thread) {
        atomic_store(&self->stopping, true);
        curl_multi_wakeup(self->multi);
        pthread_join(self->thread, NULL);
    }
    if (self->easy)
        curl_easy_cleanup(self->easy);
    if (self->multi)
        curl_multi_cleanup(self->multi);
    free(self->url);
    free(self);
    *self_p = NULL;
}
