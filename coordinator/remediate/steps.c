/* Runbook resolve steps as commands: the pure part (steps.h). */
#include "steps.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum steps_outcome steps_decide(enum rb_mode step_mode, enum vg_action_mode declared)
{
    if (step_mode == RB_MODE_MANUAL)
        return STEPS_MANUAL;
    if (step_mode == RB_MODE_AUTO && declared == VG_ACTION_MODE_AUTO)
        return STEPS_ISSUE;
    return STEPS_PENDING;
}

size_t steps_node_limit(const struct rb_action *step)
{
    if (step->max_nodes > 0)
        return (size_t)step->max_nodes;
    return step->mode == RB_MODE_AUTO ? 1 : 0;
}

const char *steps_mode_name(enum rb_mode mode)
{
    switch (mode) {
    case RB_MODE_AUTO:
        return "auto";
    case RB_MODE_APPROVE:
        return "approve";
    case RB_MODE_MANUAL:
        return "manual";
    }
    return "?";
}

/* ---- the limiter ---- */

struct limiter_entry {
    char *key; /* "<runbook>/<node>" */
    int64_t at_ms;
};

struct steps_limiter {
    int64_t interval_ms;
    struct limiter_entry *entries;
    size_t n;
};

steps_limiter_t *steps_limiter_new(int64_t interval_ms)
{
    steps_limiter_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->interval_ms = interval_ms;
    self->entries = calloc(STEPS_LIMITER_MAX, sizeof(*self->entries));
    if (!self->entries)
        steps_limiter_destroy(&self);
    return self;
}

void steps_limiter_destroy(steps_limiter_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    steps_limiter_t *self = *self_p;
    for (size_t i = 0; self->entries && i < self->n; i++)
        free(self->entries[i].key);
    free(self->entries);
    free(self);
    *self_p = NULL;
}

bool steps_limiter_allow(steps_limiter_t *self, const char *runbook, const char *node,
                         int64_t now_ms)
{
    size_t len = strlen(runbook) + strlen(node) + 2;
    char *key = malloc(len);
    if (!key)
        return false;
    snprintf(key, len, "%s/%s", runbook, node);
    struct limiter_entry *free_slot = NULL;
    for (size_t i = 0; i < self->n; i++) {
        struct limiter_entry *e = &self->entries[i];
        bool stale = now_ms - e->at_ms >= self->interval_ms;
        if (strcmp(e->key, key) == 0) {
            free(key);
            if (!stale)
                return false;
            e->at_ms = now_ms;
            return true;
        }
        if (stale && !free_slot)
            free_slot = e;
    }
    if (!free_slot && self->n < STEPS_LIMITER_MAX)
        free_slot = &self->entries[self->n++];
    else if (free_slot)
        free(free_slot->key);
    if (!free_slot) {
        free(key);
        return false;
    }
    free_slot->key = key;
    free_slot->at_ms = now_ms;
    return true;
}

/* ---- jobs ---- */

static char *dup_text(const char *s)
{
    return strdup(s ? s : "");
}

/* Copies nargs (key, value) pairs into s. 0 or -ENOMEM (s keeps what it has for destroy). */
static int copy_args(struct steps_step *s, size_t nargs, const char *(*key)(const void *, size_t),
                     const char *(*value)(const void *, size_t), const void *src)
{
    s->argv = calloc(nargs ? nargs : 1, sizeof(*s->argv));
    s->args = calloc(nargs ? nargs : 1, sizeof(Vigil__CommandArg *));
    if (!s->argv || !s->args)
        return -ENOMEM;
    for (; s->nargs < nargs; s->nargs++) {
        Vigil__CommandArg *arg = &s->argv[s->nargs];
        vigil__command_arg__init(arg);
        arg->key = dup_text(key(src, s->nargs));
        arg->value = dup_text(value(src, s->nargs));
        s->args[s->nargs] = arg;
        if (!arg->key || !arg->value) {
            s->nargs++;
            return -ENOMEM;
        }
    }
    return 0;
}

static const char *label_key(const void *src, size_t i)
{
    return ((const struct rb_label *)src)[i].key;
}

static const char *label_value(const void *src, size_t i)
{
    return ((const struct rb_label *)src)[i].value;
}

static const char *arg_key(const void *src, size_t i)
{
    return ((Vigil__CommandArg *const *)src)[i]->key;
}

static const char *arg_value(const void *src, size_t i)
{
    return ((Vigil__CommandArg *const *)src)[i]->value;
}

struct steps_job *steps_job_inverse(uint64_t incident_id, const char *runbook, const char *node,
                                    const char *action, Vigil__CommandArg *const *args,
                                    size_t nargs)
{
    struct steps_job *job = calloc(1, sizeof(*job));
    if (!job)
        return NULL;
    job->incident_id = incident_id;
    job->runbook = dup_text(runbook);
    job->verify_node = dup_text("");
    job->nodes = calloc(1, sizeof(char *));
    job->steps = calloc(1, sizeof(*job->steps));
    if (!job->runbook || !job->verify_node || !job->nodes || !job->steps)
        goto err_destroy;
    job->nodes[0] = dup_text(node);
    job->nnodes = 1;
    job->nsteps = 1;
    struct steps_step *s = &job->steps[0];
    s->mode = RB_MODE_AUTO;
    s->max_nodes = 1;
    s->inverse = true;
    s->action = dup_text(action);
    if (!job->nodes[0] || !s->action || copy_args(s, nargs, arg_key, arg_value, args) < 0)
        goto err_destroy;
    return job;
err_destroy:
    steps_job_destroy(&job);
    return NULL;
}

struct steps_job *steps_job_after_canary(uint64_t incident_id, const char *runbook,
                                         const char *verify_node, const char *rest,
                                         const char *action, Vigil__CommandArg *const *args,
                                         size_t nargs, int64_t within_ms)
{
    size_t n = 0;
    for (const char *p = rest; *p; p += strcspn(p, "\n"), p += *p == '\n')
        n++;
    struct steps_job *job = calloc(1, sizeof(*job));
    if (!job)
        return NULL;
    job->incident_id = incident_id;
    job->runbook = dup_text(runbook);
    job->verify_node = dup_text(verify_node);
    job->nodes = calloc(n ? n : 1, sizeof(char *));
    job->steps = calloc(1, sizeof(*job->steps));
    if (!job->runbook || !job->verify_node || !job->nodes || !job->steps)
        goto err_destroy;
    for (const char *p = rest; *p && job->nnodes < n;) {
        size_t len = strcspn(p, "\n");
        job->nodes[job->nnodes] = strndup(p, len);
        if (!job->nodes[job->nnodes])
            goto err_destroy;
        job->nnodes++;
        p += len;
        if (*p == '\n')
            p++;
    }
    job->nsteps = 1;
    struct steps_step *s = &job->steps[0];
    s->mode = RB_MODE_AUTO;
    s->max_nodes = (int)job->nnodes;
    s->verify_within_ms = within_ms;
    s->after_canary = true;
    s->action = dup_text(action);
    if (!s->action || copy_args(s, nargs, arg_key, arg_value, args) < 0)
        goto err_destroy;
    return job;
err_destroy:
    steps_job_destroy(&job);
    return NULL;
}

struct steps_job *steps_job_new(uint64_t incident_id, const struct rb_runbook *rb,
                                const char *verify_node, const char *const *nodes, size_t n)
{
    struct steps_job *job = calloc(1, sizeof(*job));
    if (!job)
        return NULL;
    job->incident_id = incident_id;
    job->verify_node = dup_text(verify_node);
    job->runbook = dup_text(rb->id);
    job->nodes = calloc(n ? n : 1, sizeof(char *));
    job->steps = calloc(rb->nresolve ? rb->nresolve : 1, sizeof(*job->steps));
    job->investigate = calloc(rb->ninvestigate ? rb->ninvestigate : 1, sizeof(*job->investigate));
    if (!job->runbook || !job->verify_node || !job->nodes || !job->steps || !job->investigate)
        goto err_destroy;
    for (size_t i = 0; i < rb->ninvestigate; i++) {
        const struct rb_evidence *e = &rb->investigate[i];
        struct steps_step *s = &job->investigate[i];
        s->action = dup_text(e->kind);
        s->on_cluster = e->on_cluster;
        job->ninvestigate++;
        if (!s->action || copy_args(s, e->nargs, label_key, label_value, e->args) < 0)
            goto err_destroy;
    }
    for (; job->nnodes < n; job->nnodes++) {
        job->nodes[job->nnodes] = dup_text(nodes[job->nnodes]);
        if (!job->nodes[job->nnodes])
            goto err_destroy;
    }
    for (size_t i = 0; i < rb->nresolve; i++) {
        const struct rb_action *a = &rb->resolve[i];
        struct steps_step *s = &job->steps[i];
        s->mode = a->mode;
        s->max_nodes = a->max_nodes;
        s->verify_within_ms = a->verify_within_ms;
        s->on_cluster = a->on_cluster;
        s->action = dup_text(a->name);
        job->nsteps++;
        if (!s->action || copy_args(s, a->nargs, label_key, label_value, a->args) < 0)
            goto err_destroy;
    }
    return job;
err_destroy:
    steps_job_destroy(&job);
    return NULL;
}

static void steps_free(struct steps_step *steps, size_t n)
{
    for (size_t i = 0; steps && i < n; i++) {
        struct steps_step *s = &steps[i];
        for (size_t k = 0; s->argv && k < s->nargs; k++) {
            free(s->argv[k].key);
            free(s->argv[k].value);
        }
        free(s->argv);
        free(s->args);
        free(s->action);
    }
    free(steps);
}

struct steps_job *steps_job_joined(uint64_t incident_id, const struct rb_runbook *rb,
                                   const char *const *nodes, size_t n)
{
    struct steps_job *job = steps_job_new(incident_id, rb, "", nodes, n);
    if (job) {
        steps_free(job->steps, job->nsteps);
        job->steps = NULL;
        job->nsteps = 0;
        job->joined = true;
    }
    return job;
}

struct steps_job *steps_job_flight(uint64_t incident_id, const struct rb_runbook *rb,
                                   const char *const *nodes, size_t n)
{
    struct steps_job *job = steps_job_new(incident_id, rb, "", nodes, n);
    if (job) {
        steps_free(job->steps, job->nsteps);
        job->steps = NULL;
        job->nsteps = 0;
        steps_free(job->investigate, job->ninvestigate);
        job->investigate = NULL;
        job->ninvestigate = 0;
        job->flight = true;
    }
    return job;
}

void steps_job_destroy(struct steps_job **self_p)
{
    if (!self_p || !*self_p)
        return;
    struct steps_job *job = *self_p;
    for (size_t i = 0; job->nodes && i < job->nnodes; i++)
        free(job->nodes[i]);
    free(job->nodes);
    steps_free(job->steps, job->nsteps);
    steps_free(job->investigate, job->ninvestigate);
    free(job->runbook);
    free(job->verify_node);
    free(job);
    *self_p = NULL;
}

/* ---- verify-then-inverse ---- */

bool steps_verifies_per_node(const struct rb_runbook *rb)
{
    if (!rb || rb->nverify == 0)
        return false;
    for (size_t i = 0; i < rb->nverify; i++) {
        if (rb->verify[i].cond.scope.kind != RB_SCOPE_NODE)
            return false;
    }
    return true;
}

enum steps_canary steps_canary_judge(const char *state, bool has_exit, int exit_status,
                                     bool per_node, int node_verified, int64_t now_ms,
                                     int64_t done_at_ms, int64_t within_ms)
{
    /* The canary's own verdict, as for any watched command, with its node as the incident. */
    enum steps_verdict v = steps_judge(state, has_exit, exit_status, per_node ? node_verified : 1,
                                       now_ms, done_at_ms, within_ms);
    switch (v) {
    case STEPS_VERIFIED:
        return STEPS_CANARY_GO;
    case STEPS_FAILED:
    case STEPS_NOT_VERIFIED:
        return STEPS_CANARY_STOP;
    case STEPS_WAIT:
    default:
        return STEPS_CANARY_WAIT;
    }
}

enum steps_verdict steps_judge(const char *state, bool has_exit, int exit_status, int verified,
                               int64_t now_ms, int64_t done_at_ms, int64_t within_ms)
{
    if (strcmp(state, "done") == 0) {
        if (has_exit && exit_status != 0)
            return STEPS_FAILED;
        if (verified > 0)
            return STEPS_VERIFIED;
        if (done_at_ms > 0 && now_ms - done_at_ms >= within_ms)
            return STEPS_NOT_VERIFIED;
        return STEPS_WAIT;
    }
    if (strcmp(state, "failed") == 0 || strcmp(state, "refused") == 0 ||
        strcmp(state, "lost") == 0 || strcmp(state, "expired") == 0 ||
        strcmp(state, "cancelled") == 0)
        return STEPS_FAILED;
    return STEPS_WAIT;
}

struct steps_watchlist {
    pthread_mutex_t lock;
    struct steps_watch *w;
    size_t n, cap;
};

steps_watchlist_t *steps_watchlist_new(void)
{
    steps_watchlist_t *self = calloc(1, sizeof(*self));
    if (self)
        pthread_mutex_init(&self->lock, NULL);
    return self;
}

void steps_watchlist_destroy(steps_watchlist_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    steps_watchlist_t *self = *self_p;
    pthread_mutex_destroy(&self->lock);
    free(self->w);
    free(self);
    *self_p = NULL;
}

int steps_watchlist_add(steps_watchlist_t *self, const struct steps_watch *w)
{
    int r = 0;
    pthread_mutex_lock(&self->lock);
    if (self->n == self->cap) {
        size_t cap = self->cap ? 2 * self->cap : 16;
        struct steps_watch *grown = realloc(self->w, cap * sizeof(*grown));
        if (grown) {
            self->w = grown;
            self->cap = cap;
        } else {
            r = -ENOMEM;
        }
    }
    if (r == 0)
        self->w[self->n++] = *w;
    pthread_mutex_unlock(&self->lock);
    return r;
}

void steps_watchlist_check(steps_watchlist_t *self,
                           bool (*check)(struct steps_watch *w, void *userdata), void *userdata)
{
    pthread_mutex_lock(&self->lock);
    for (size_t i = 0; i < self->n;) {
        if (check(&self->w[i], userdata))
            self->w[i] = self->w[--self->n];
        else
            i++;
    }
    pthread_mutex_unlock(&self->lock);
}
