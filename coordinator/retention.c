/*
 * The retention thread (retention.h): a pass at start, then one every interval, until
 * retention_destroy. The thread owns the maintenance connection; the mutex and condition only
 * carry the stop request.
 */
#include "retention.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "metrics.h"
#include "store_retention.h"
#include "timeutil.h"

/* A pass removes at most this many artifacts' content; the rest wait for the next one. */
#define EVIDENCE_PER_PASS 1000
/* The default partition's rows are named in a warning at most this often. */
#define DEFAULT_WARN_MS (3600 * INT64_C(1000))

struct retention {
    struct retention_config cfg;
    store_t *store; /* the maintenance connection: the thread's own */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop; /* under lock */
    int64_t default_warned_mono;
    uint64_t default_rows_warned;
};

static void pass(struct retention *self)
{
    struct store_retention_policy policy = {
        .signals_ms = self->cfg.signals_ms,
        .evidence_ms = self->cfg.evidence_ms,
        .ahead_days = self->cfg.ahead_days,
        .evidence_max = EVIDENCE_PER_PASS,
    };
    struct store_retention_report rep;
    memset(&rep, 0, sizeof(rep));
    int64_t started = vg_mono_ms();
    int64_t now = vg_wall_ms();
    int rs = store_retention_signals(self->store, &policy, now, &rep);
    int re = store_retention_evidence(self->store, &policy, now, &rep);
    if (rs < 0 || re < 0)
        rep.failures++;

    struct metrics_retention m = {
        .partitions_created = rep.partitions_created,
        .partitions_dropped = rep.partitions_dropped,
        .signal_rows_dropped = rep.signal_rows_dropped + rep.default_rows_deleted,
        .signal_bytes_dropped = rep.signal_bytes_dropped,
        .evidence_removed = rep.evidence_removed,
        .evidence_bytes_removed = rep.evidence_bytes_removed,
        .failures = rep.failures,
        .default_rows = rep.default_rows_left,
        .pass_ok = rs == 0 && re == 0 && rep.failures == 0,
    };
    metrics_retention(&m);

    if (rep.default_rows_left > 0) {
        int64_t mono = vg_mono_ms();
        if (rep.default_rows_left != self->default_rows_warned &&
            (self->default_warned_mono == 0 ||
             mono - self->default_warned_mono >= DEFAULT_WARN_MS)) {
            char oldest[32] = "", newest[32] = "";
            vg_date_text(rep.default_oldest_ms, oldest, sizeof(oldest));
            vg_date_text(rep.default_newest_ms, newest, sizeof(newest));
            vg_log(VG_LOG_WARN,
                   "retention: signals_default holds %" PRIu64
                   " samples from %s to %s, days too far ahead to have a partition (an agent's "
                   "clock?); they move into their day's partition when it is made",
                   rep.default_rows_left, oldest, newest);
            self->default_warned_mono = mono;
            self->default_rows_warned = rep.default_rows_left;
        }
    }
    if (rep.partitions_dropped || rep.default_rows_deleted || rep.evidence_removed || rep.failures)
        vg_log(rep.failures ? VG_LOG_WARN : VG_LOG_INFO,
               "retention: pass partitions_created=%" PRIu64 " partitions_dropped=%" PRIu64
               " signal_rows=%" PRIu64 " signal_bytes=%" PRIu64 " evidence_removed=%" PRIu64
               " evidence_bytes=%" PRIu64 " failed_steps=%" PRIu64 " ms=%" PRId64,
               rep.partitions_created, rep.partitions_dropped,
               rep.signal_rows_dropped + rep.default_rows_deleted, rep.signal_bytes_dropped,
               rep.evidence_removed, rep.evidence_bytes_removed, rep.failures,
               vg_mono_ms() - started);
}

/* Uploads that never completed (011_evidence_incomplete.sql). */
static void purge(struct retention *self)
{
    uint64_t chunks = 0, bytes = 0;
    if (store_evidence_purge_incomplete(self->store, self->cfg.incomplete_grace_ms, &chunks,
                                        &bytes) == 0 &&
        chunks > 0) {
        vg_log(VG_LOG_INFO,
               "evidence: removed %" PRIu64 " chunks (%" PRIu64
               " bytes) of artifacts that never completed",
               chunks, bytes);
        metrics_evidence_purged(bytes);
    }
}

static void *retention_main(void *arg)
{
    struct retention *self = arg;
    int64_t next_pass = 0; /* monotonic: at once */
    pthread_mutex_lock(&self->lock);
    while (!self->stop) {
        pthread_mutex_unlock(&self->lock);
        if (vg_mono_ms() >= next_pass) {
            pass(self);
            next_pass = vg_mono_ms() + self->cfg.interval_ms;
        }
        purge(self);
        pthread_mutex_lock(&self->lock);
        int64_t wait_ms = next_pass - vg_mono_ms();
        if (wait_ms > RETENTION_PURGE_MS)
            wait_ms = RETENTION_PURGE_MS;
        if (wait_ms < 0)
            wait_ms = 0;
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        int64_t ns = (int64_t)until.tv_nsec + (wait_ms % 1000) * 1000000;
        until.tv_sec += (time_t)(wait_ms / 1000 + ns / 1000000000);
        until.tv_nsec = (long)(ns % 1000000000);
        while (!self->stop && pthread_cond_timedwait(&self->wake, &self->lock, &until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&self->lock);
    return NULL;
}

retention_t *retention_start(const store_t *main, const struct retention_config *cfg, char *err,
                             size_t errlen)
{
    pthread_condattr_t attr;
    struct retention *self = calloc(1, sizeof(*self));
    if (!self) {
        snprintf(err, errlen, "retention: out of memory");
        return NULL;
    }
    self->cfg = *cfg;
    self->store = store_connect_maintenance(main);
    if (!self->store) {
        snprintf(err, errlen, "retention: out of memory");
        goto err_free;
    }
    pthread_mutex_init(&self->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&self->wake, &attr);
    pthread_condattr_destroy(&attr);
    int r = pthread_create(&self->thread, NULL, retention_main, self);
    if (r != 0) {
        snprintf(err, errlen, "retention: cannot start its thread: %s", strerror(r));
        goto err_sync;
    }
    return self;

err_sync:
    pthread_cond_destroy(&self->wake);
    pthread_mutex_destroy(&self->lock);
    store_destroy(&self->store);
err_free:
    free(self);
    return NULL;
}

void retention_destroy(retention_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    struct retention *self = *self_p;
    pthread_mutex_lock(&self->lock);
    self->stop = true;
    pthread_cond_signal(&self->wake);
    pthread_mutex_unlock(&self->lock);
    pthread_join(self->thread, NULL);
    pthread_cond_destroy(&self->wake);
    pthread_mutex_destroy(&self->lock);
    store_destroy(&self->store);
    free(self);
    *self_p = NULL;
}
