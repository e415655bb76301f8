#include "sigbuf.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"
#include "wire.h"

/* Strings live in one growing arena, referenced by offset until encoding, so a realloc of the
 * arena never leaves a dangling pointer. */
struct sample {
    size_t name, unit; /* arena offsets */
    size_t command;    /* arena offset of the command id, or NO_COMMAND */
    size_t labels;     /* index of the first label in the label table */
    size_t nlabels;
    double value;
    int64_t ts_ms;
    Vigil__SignalState state;
};

struct label_ref {
    size_t key, value;
};

struct sigbuf {
    struct sample *samples;
    size_t nsamples, cap_samples;
    struct label_ref *labels;
    size_t nlabels, cap_labels;
    char *arena;
    size_t arena_len, arena_cap;
    uint64_t escaped; /* strings with bytes escaped since sigbuf_new; never cleared */
    char command[VG_MAX_COMMAND_ID_LEN + 1]; /* sigbuf_set_command; "" = none */
};

#define NO_COMMAND SIZE_MAX

sigbuf_t *sigbuf_new(void)
{
    return calloc(1, sizeof(sigbuf_t));
}

void sigbuf_destroy(sigbuf_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sigbuf_t *self = *self_p;
    free(self->samples);
    free(self->labels);
    free(self->arena);
    free(self);
    *self_p = NULL;
}

static int grow(void **buf, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t cap_new = *cap ? *cap : 16;
    while (cap_new < need)
        cap_new *= 2;
    void *p = realloc(*buf, cap_new * elem);
    if (!p)
        return -ENOMEM;
    *buf = p;
    *cap = cap_new;
    return 0;
}

/*
 * Copies text into the arena. Bytes that are not UTF-8 (a mount point or a process name is
 * whatever bytes the kernel holds) are written as \xNN and counted: the coordinator's store
 * accepts only UTF-8, and a record it refuses is lost. -E2BIG past max bytes after escaping.
 */
static int intern(sigbuf_t *self, const char *text, size_t max, size_t *ret_off)
{
    const char *t = text ? text : "";
    size_t len = strlen(t);
    if (len > max)
        return -E2BIG;
    size_t room = len * 4 + 1; /* every byte escaped, and the NUL */
    int r = grow((void **)&self->arena, &self->arena_cap, self->arena_len + room, 1);
    if (r < 0)
        return r;
    bool escaped = false;
    size_t n = vg_utf8_escape(t, self->arena + self->arena_len, room, &escaped);
    if (n > max)
        return -E2BIG;
    if (escaped)
        self->escaped++;
    *ret_off = self->arena_len;
    self->arena_len += n + 1;
    return 0;
}

int sigbuf_add(sigbuf_t *self, const char *name, double value, const char *unit, int64_t ts_ms,
               Vigil__SignalState state, const struct sig_label *labels, size_t nlabels)
{
    size_t arena_mark = self->arena_len, labels_mark = self->nlabels;
    struct sample s = {.value = value,
                       .ts_ms = ts_ms,
                       .state = state,
                       .labels = self->nlabels,
                       .nlabels = nlabels,
                       .command = NO_COMMAND};
    int r;

    if (self->nsamples >= VG_MAX_SIGNALS_PER_BATCH || nlabels > VG_MAX_LABELS_PER_SIGNAL)
        return -E2BIG;
    if ((r = grow((void **)&self->samples, &self->cap_samples, self->nsamples + 1,
                  sizeof(struct sample))) < 0 ||
        (r = grow((void **)&self->labels, &self->cap_labels, self->nlabels + nlabels,
                  sizeof(struct label_ref))) < 0 ||
        (r = intern(self, name, VG_MAX_NAME_LEN, &s.name)) < 0 ||
        (r = intern(self, unit, VG_MAX_NAME_LEN, &s.unit)) < 0 ||
        (self->command[0] &&
         (r = intern(self, self->command, VG_MAX_COMMAND_ID_LEN, &s.command)) < 0))
        goto undo;
    for (size_t i = 0; i < nlabels; i++) {
        struct label_ref *l = &self->labels[self->nlabels];
        if ((r = intern(self, labels[i].key, VG_MAX_NAME_LEN, &l->key)) < 0 ||
            (r = intern(self, labels[i].value, VG_MAX_VALUE_LEN, &l->value)) < 0)
            goto undo;
        self->nlabels++;
    }
    self->samples[self->nsamples++] = s;
    return 0;

undo:
    self->arena_len = arena_mark;
    self->nlabels = labels_mark;
    return r;
}

void sigbuf_set_command(sigbuf_t *self, const char *request_id)
{
    snprintf(self->command, sizeof(self->command), "%s", request_id ? request_id : "");
}

uint64_t sigbuf_escaped(const sigbuf_t *self)
{
    return self->escaped;
}

size_t sigbuf_count(const sigbuf_t *self)
{
    return self->nsamples;
}

void sigbuf_clear(sigbuf_t *self)
{
    self->nsamples = 0;
    self->nlabels = 0;
    self->arena_len = 0;
}

int sigbuf_encode(const sigbuf_t *self, const char *sender, uint64_t seq, uint8_t **ret,
                  size_t *ret_len)
{
    size_t n = self->nsamples;
    Vigil__Signal *sigs = calloc(n ? n : 1, sizeof(*sigs));
    Vigil__Signal **sig_ptrs = calloc(n ? n : 1, sizeof(Vigil__Signal *));
    Vigil__Label *labels = calloc(self->nlabels ? self->nlabels : 1, sizeof(*labels));
    Vigil__Label **label_ptrs = calloc(self->nlabels ? self->nlabels : 1, sizeof(Vigil__Label *));
    int r = -ENOMEM;

    if (!sigs || !sig_ptrs || !labels || !label_ptrs)
        goto out;
    for (size_t i = 0; i < self->nlabels; i++) {
        vigil__label__init(&labels[i]);
        labels[i].key = self->arena + self->labels[i].key;
        labels[i].value = self->arena + self->labels[i].value;
        label_ptrs[i] = &labels[i];
    }
    for (size_t i = 0; i < n; i++) {
        const struct sample *s = &self->samples[i];
        vigil__signal__init(&sigs[i]);
        sigs[i].name = self->arena + s->name;
        sigs[i].unit = self->arena + s->unit;
        sigs[i].value = s->value;
        sigs[i].ts_ms = s->ts_ms;
        sigs[i].state = s->state;
        sigs[i].labels = s->nlabels ? &label_ptrs[s->labels] : NULL;
        sigs[i].n_labels = s->nlabels;
        if (s->command != NO_COMMAND)
            sigs[i].command_id = self->arena + s->command;
        sig_ptrs[i] = &sigs[i];
    }
    Vigil__SignalBatch batch = VIGIL__SIGNAL_BATCH__INIT;
    batch.signals = sig_ptrs;
    batch.n_signals = n;
    Vigil__Envelope env;
    vg_envelope_init(&env, sender, seq);
    env.body_case = VIGIL__ENVELOPE__BODY_SIGNALS;
    env.signals = &batch;
    r = vg_envelope_encode(&env, ret, ret_len);
out:
    free(sigs);
    free(sig_ptrs);
    free(labels);
    free(label_ptrs);
    return r;
}
