#include "collect.h"

#include <stdio.h>
#include <string.h>

void collect_series_key(char *buf, size_t size, const char *name, const struct sig_label *labels,
                        size_t nlabels)
{
    size_t used = 0;
    int n = snprintf(buf, size, "%s", name);
    if (n < 0 || (size_t)n >= size)
        return;
    used = (size_t)n;
    for (size_t i = 0; i < nlabels && used < size; i++) {
        n = snprintf(buf + used, size - used, "%c%s=%s", i == 0 ? '{' : ',', labels[i].key,
                     labels[i].value);
        if (n < 0)
            return;
        used += (size_t)n;
    }
    if (nlabels > 0 && used + 1 < size) {
        buf[used++] = '}';
        buf[used] = '\0';
    }
}

void collect_emit(struct collect_ctx *ctx, const char *name, double value, const char *unit,
                  const struct sig_label *labels, size_t nlabels)
{
    Vigil__SignalState state = VIGIL__SIGNAL_STATE__SIGNAL_STATE_NONE;
    bool changed = false;

    if (ctx->thresholds && thresholds_rule(ctx->thresholds, name)) {
        char key[512];
        collect_series_key(key, sizeof(key), name, labels, nlabels);
        state = thresholds_eval(ctx->thresholds, name, key, value, &changed);
    }
    if (sigbuf_add(ctx->batch, name, value, unit, ctx->now_ms, state, labels, nlabels) < 0) {
        ctx->errors++;
        return;
    }
    ctx->crossed |= changed;
}
