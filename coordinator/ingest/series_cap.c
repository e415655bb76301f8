/* Distinct signal series per agent, bounded: see series_cap.h. */
#include "series_cap.h"

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* One agent's series: hashes in an open-addressing table, 0 = empty slot. */
struct agent_series {
    uint64_t *slots;
    size_t cap;    /* a power of two, or 0 */
    size_t n;      /* series in the table */
    bool refusing; /* the bound was reached (logged once) */
};

struct series_cap {
    size_t max_per_agent;
    zhashx_t *agents; /* agent id -> struct agent_series */
};

static void agent_series_free(void **item)
{
    struct agent_series *s = *item;
    if (s) {
        free(s->slots);
        free(s);
    }
    *item = NULL;
}

series_cap_t *series_cap_new(size_t max_per_agent)
{
    series_cap_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->max_per_agent = max_per_agent;
    self->agents = zhashx_new();
    if (!self->agents) {
        free(self);
        return NULL;
    }
    zhashx_set_destructor(self->agents, agent_series_free);
    return self;
}

void series_cap_destroy(series_cap_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zhashx_destroy(&(*self_p)->agents);
    free(*self_p);
    *self_p = NULL;
}

static uint64_t fnv1a(uint64_t h, const char *text)
{
    for (const unsigned char *p = (const unsigned char *)(text ? text : ""); *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* The series of a sample: its name, plus each label pair (summed, so their order does not
 * matter, as it does not in the store). Never 0, which marks an empty slot. */
static uint64_t series_hash(const Vigil__Signal *s)
{
    const uint64_t basis = 0xcbf29ce484222325ULL;
    uint64_t h = fnv1a(basis, s->name);
    for (size_t i = 0; i < s->n_labels; i++) {
        uint64_t pair = fnv1a(fnv1a(basis, s->labels[i]->key), "=");
        h += fnv1a(pair, s->labels[i]->value) * 0x9e3779b97f4a7c15ULL;
    }
    return h ? h : 1;
}

/* The slot of h, or the empty slot where it would go. */
static size_t find(const struct agent_series *s, uint64_t h)
{
    size_t i = (size_t)h & (s->cap - 1);
    while (s->slots[i] != 0 && s->slots[i] != h)
        i = (i + 1) & (s->cap - 1);
    return i;
}

static bool grow(struct agent_series *s)
{
    size_t cap = s->cap ? s->cap * 2 : 64;
    uint64_t *slots = calloc(cap, sizeof(*slots));
    if (!slots)
        return false;
    struct agent_series bigger = {.slots = slots, .cap = cap};
    for (size_t i = 0; i < s->cap; i++) {
        if (s->slots[i])
            slots[find(&bigger, s->slots[i])] = s->slots[i];
    }
    free(s->slots);
    s->slots = slots;
    s->cap = cap;
    return true;
}

/* true when h is one of the agent's series, or became one. */
static bool admit(const series_cap_t *self, struct agent_series *s, uint64_t h)
{
    if (s->cap && s->slots[find(s, h)] == h)
        return true;
    if (s->n >= self->max_per_agent)
        return false;
    if ((s->n + 1) * 2 > s->cap && !grow(s))
        return false;
    s->slots[find(s, h)] = h;
    s->n++;
    return true;
}

size_t series_cap_filter(series_cap_t *self, const char *agent_id, Vigil__SignalBatch *batch,
                         bool *ret_first_refusal)
{
    *ret_first_refusal = false;
    if (!batch || batch->n_signals == 0)
        return 0;
    struct agent_series *s = zhashx_lookup(self->agents, agent_id);
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s || zhashx_insert(self->agents, agent_id, s) != 0) {
            free(s);
            return 0; /* out of memory: let the batch through rather than lose it */
        }
    }
    size_t kept = 0, dropped = 0;
    for (size_t i = 0; i < batch->n_signals; i++) {
        Vigil__Signal *sig = batch->signals[i];
        if (admit(self, s, series_hash(sig))) {
            batch->signals[kept++] = sig;
            continue;
        }
        vigil__signal__free_unpacked(sig, NULL);
        dropped++;
    }
    batch->n_signals = kept;
    if (dropped && !s->refusing) {
        s->refusing = true;
        *ret_first_refusal = true;
    }
    return dropped;
}

void series_cap_forget(series_cap_t *self, const char *agent_id)
{
    zhashx_delete(self->agents, agent_id);
}
