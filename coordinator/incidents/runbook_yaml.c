/*
 * Typed values from a runbook's YAML (see runbook_yaml.h; format: docs/runbook-format.md).
 *
 * Positions: libfyaml 0.7 exposes marks for scalar tokens only, so errors about a scalar point
 * at it, and errors about a mapping or sequence point at the key that holds it (or, for a
 * mapping without a parent key, at its first key). Marks are 0-based; messages are 1-based.
 */
#include "runbook_yaml.h"

#include "config.h"
#include "yaml.h"

#include <errno.h>
#include <inttypes.h>
#include <libfyaml.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NUMBER_TEXT_MAX 64

void rb_yaml_fail(struct rb_loader *ld, const struct fy_mark *mark, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vg_yaml_verror(ld->err, ld->errlen, ld->file, mark, fmt, ap);
    va_end(ap);
}

/* ---- severities ---- */

/* Declared in runbook_load.h; here beside the reader of severities. */
const char *rb_severity_name(enum rb_severity s)
{
    switch (s) {
    case RB_SEV1:
        return "SEV1";
    case RB_SEV2:
        return "SEV2";
    case RB_SEV3:
        return "SEV3";
    case RB_SEV4:
        return "SEV4";
    case RB_SEV_NONE:
        break;
    }
    return "none";
}

/* ---- marks and keys ---- */

const struct fy_mark *rb_yaml_value_mark(const struct rb_field *f, struct fy_mark *buf)
{
    const struct fy_mark *m = vg_yaml_scalar_mark(f->value, buf);
    return m ? m : &f->key_mark;
}

static void join_path(char *buf, size_t len, const char *parent, const char *key)
{
    snprintf(buf, len, "%s%s%s", parent, parent[0] ? "." : "", key);
}

int rb_yaml_take_keys(struct rb_loader *ld, struct fy_node *map, const char *path,
                      const struct fy_mark *where, const char *const *names, size_t n,
                      uint32_t allowed, struct rb_field *fields)
{
    struct fy_node_pair *pair;
    void *iter = NULL;

    for (size_t i = 0; i < n; i++) {
        memset(&fields[i], 0, sizeof(fields[i]));
        join_path(fields[i].path_buf, sizeof(fields[i].path_buf), path, names[i]);
        fields[i].path = fields[i].path_buf;
    }
    if (!map || !fy_node_is_mapping(map)) {
        rb_yaml_fail(ld, where, "\"%s\": must be a mapping, not %s", path[0] ? path : "runbook",
                     vg_yaml_kind_of(map));
        return -EINVAL;
    }
    while ((pair = fy_node_mapping_iterate(map, &iter))) {
        struct fy_node *key = fy_node_pair_key(pair);
        struct fy_mark kbuf;
        const struct fy_mark *km = vg_yaml_scalar_mark(key, &kbuf);
        const char *name;
        size_t len = 0, best_d = 3;
        const char *hint = NULL;
        char shown[VG_YAML_QUOTE_MAX + 1], whole[RB_PATH_TEXT_MAX + VG_YAML_QUOTE_MAX + 2];
        bool found = false;

        if (!key || !fy_node_is_scalar(key) || fy_node_is_alias(key) ||
            !(name = fy_node_get_scalar(key, &len))) {
            rb_yaml_fail(ld, km ? km : where, "keys must be plain strings");
            return -EINVAL;
        }
        for (size_t i = 0; i < n; i++) {
            if (!(allowed & (UINT32_C(1) << i)) || strlen(names[i]) != len ||
                memcmp(names[i], name, len) != 0)
                continue;
            fields[i].key = key;
            fields[i].value = fy_node_pair_value(pair);
            if (km)
                fields[i].key_mark = *km;
            found = true;
            break;
        }
        if (found)
            continue;
        vg_yaml_quotable(name, len, shown, sizeof(shown));
        for (size_t i = 0; i < n; i++) {
            size_t d;
            if (!(allowed & (UINT32_C(1) << i)))
                continue;
            d = vg_edit_distance(shown, names[i]);
            if (d < best_d && d < len) {
                best_d = d;
                hint = names[i];
            }
        }
        join_path(whole, sizeof(whole), path, shown);
        if (hint)
            rb_yaml_fail(ld, km, "unknown key \"%s\" (did you mean \"%s\"?)", whole, hint);
        else
            rb_yaml_fail(ld, km, "unknown key \"%s\"", whole);
        return -EINVAL;
    }
    return 0;
}

bool rb_yaml_present(const struct rb_field *f)
{
    return f->key != NULL;
}

int rb_yaml_need(struct rb_loader *ld, const struct rb_field *f, const struct fy_mark *where)
{
    if (rb_yaml_present(f))
        return 0;
    rb_yaml_fail(ld, where, "\"%s\": required key is missing", f->path);
    return -EINVAL;
}

/* ---- typed values ---- */

const char *rb_yaml_scalar_text(struct rb_loader *ld, const struct rb_field *f, const char *noun,
                                size_t *len)
{
    struct fy_mark buf;
    const char *text;

    if (vg_yaml_is_empty(f->value) || !fy_node_is_scalar(f->value) || fy_node_is_alias(f->value)) {
        rb_yaml_fail(ld, rb_yaml_value_mark(f, &buf), "\"%s\": must be %s, not %s", f->path, noun,
                     vg_yaml_kind_of(f->value));
        return NULL;
    }
    text = fy_node_get_scalar(f->value, len);
    if (!text || *len == 0) {
        rb_yaml_fail(ld, rb_yaml_value_mark(f, &buf), "\"%s\": must not be empty", f->path);
        return NULL;
    }
    if (memchr(text, '\0', *len)) {
        rb_yaml_fail(ld, rb_yaml_value_mark(f, &buf), "\"%s\": must not contain a NUL character",
                     f->path);
        return NULL;
    }
    return text;
}

int rb_yaml_get_string(struct rb_loader *ld, const struct rb_field *f, size_t max, char **out)
{
    struct fy_mark buf;
    size_t len = 0;
    const char *text = rb_yaml_scalar_text(ld, f, "a string", &len);

    if (!text)
        return -EINVAL;
    if (len > max) {
        rb_yaml_fail(ld, rb_yaml_value_mark(f, &buf),
                     "\"%s\": must be at most %zu characters long (got %zu)", f->path, max, len);
        return -ERANGE;
    }
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f) {
            rb_yaml_fail(ld, rb_yaml_value_mark(f, &buf),
                         "\"%s\": must not contain control characters", f->path);
            return -EINVAL;
        }
    }
    *out = strndup(text, len);
    if (!*out) {
        rb_yaml_fail(ld, NULL, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

static bool id_shaped(const char *s)
{
    if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')))
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
            return false;
    return true;
}

int rb_yaml_get_id(struct rb_loader *ld, const struct rb_field *f, char **out)
{
    struct fy_mark buf;
    int r = rb_yaml_get_string(ld, f, RB_ID_MAX_LEN, out);

    if (r < 0)
        return r;
    if (!id_shaped(*out)) {
        char shown[VG_YAML_QUOTE_MAX + 1];
        rb_yaml_fail(ld, rb_yaml_value_mark(f, &buf),
                     "\"%s\": must be lower-case letters, digits, '-' and '_' (got \"%s\")",
                     f->path, vg_yaml_quotable(*out, strlen(*out), shown, sizeof(shown)));
        free(*out);
        *out = NULL;
        return -EINVAL;
    }
    return 0;
}

/* A short scalar (a number, a duration) as a C string in text[NUMBER_TEXT_MAX + 1]; false when
 * it is longer than any such value can be. */
static bool number_text(const char *s, size_t len, char *text)
{
    if (len > NUMBER_TEXT_MAX)
        return false;
    memcpy(text, s, len);
    text[len] = '\0';
    return true;
}

int rb_yaml_get_number(struct rb_loader *ld, const struct rb_field *f, double *out)
{
    struct fy_mark buf;
    char text[NUMBER_TEXT_MAX + 1], shown[VG_YAML_QUOTE_MAX + 1];
    size_t len = 0;
    const char *s = rb_yaml_scalar_text(ld, f, "a number", &len);
    char *end;
    double v;

    if (!s)
        return -EINVAL;
    vg_yaml_quotable(s, len, shown, sizeof(shown));
    if (!number_text(s, len, text)) {
        rb_yaml_fail(ld, rb_yaml_value_mark(f, &buf), "\"%s\": must be a number (got \"%s\")",
                     f->path, shown);
        return -EINVAL;
    }
    errno = 0;
    v = strtod(text, &end);
    if (end == text || *end != '\0' || errno == ERANGE || !isfinite(v)) {
        rb_yaml_fail(ld, rb_yaml_value_mark(f, &buf), "\"%s\": must be a number (got \"%s\")",
                     f->path, shown);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

static void format_duration(int64_t v, char *buf, size_t len)
{
    if (v == 0)
        snprintf(buf, len, "0s");
    else if (v % RB_MS_PER_D == 0)
        snprintf(buf, len, "%" PRId64 "d", v / RB_MS_PER_D);
    else if (v % RB_MS_PER_H == 0)
        snprintf(buf, len, "%" PRId64 "h", v / RB_MS_PER_H);
    else if (v % RB_MS_PER_M == 0)
        snprintf(buf, len, "%" PRId64 "m", v / RB_MS_PER_M);
    else if (v % RB_MS_PER_S == 0)
        snprintf(buf, len, "%" PRId64 "s", v / RB_MS_PER_S);
    else
        snprintf(buf, len, "%" PRId64 "ms", v);
}

int rb_yaml_get_duration(struct rb_loader *ld, const struct rb_field *f, int64_t min, int64_t max,
                         int64_t *out)
{
    struct fy_mark buf;
    char text[NUMBER_TEXT_MAX + 1], shown[VG_YAML_QUOTE_MAX + 1], lo[32], hi[32];
    size_t len = 0;
    const char *s = rb_yaml_scalar_text(ld, f, "a duration", &len);
    int64_t v = 0;
    int r = -EINVAL;

    if (!s)
        return -EINVAL;
    vg_yaml_quotable(s, len, shown, sizeof(shown));
    if (number_text(s, len, text))
        r = vg_parse_duration_ms(text, &v);
    format_duration(min, lo, sizeof(lo));
    format_duration(max, hi, sizeof(hi));
    if (r == -EINVAL) {
        rb_yaml_fail(ld, rb_yaml_value_mark(f, &buf),
                     "\"%s\": must be a duration such as 30s, 5m or 1h (got \"%s\")", f->path,
                     shown);
        return r;
    }
    if (r < 0 || v < min || v > max) {
        rb_yaml_fail(ld, rb_yaml_value_mark(f, &buf),
                     "\"%s\": must be between %s and %s (got \"%s\")", f->path, lo, hi, shown);
        return -ERANGE;
    }
    *out = v;
    return 0;
}

int rb_yaml_get_int(struct rb_loader *ld, const struct rb_field *f, int64_t min, int64_t max,
                    int *out)
{
    struct fy_mark buf;
    char text[NUMBER_TEXT_MAX + 1], shown[VG_YAML_QUOTE_MAX + 1];
    size_t len = 0;
    const char *s = rb_yaml_scalar_text(ld, f, "an integer", &len);
    int64_t v = 0;
    int r = -EINVAL;

    if (!s)
        return -EINVAL;
    vg_yaml_quotable(s, len, shown, sizeof(shown));
    if (number_text(s, len, text))
        r = vg_parse_int(text, &v);
    if (r < 0 || v < min || v > max) {
        rb_yaml_fail(ld, rb_yaml_value_mark(f, &buf),
                     "\"%s\": must be an integer between %" PRId64 " and %" PRId64 " (got \"%s\")",
                     f->path, min, max, shown);
        return -EINVAL;
    }
    *out = (int)v;
    return 0;
}

int rb_yaml_get_severity(struct rb_loader *ld, const struct rb_field *f, enum rb_severity *out)
{
    static const enum rb_severity all[] = {RB_SEV1, RB_SEV2, RB_SEV3, RB_SEV4};
    struct fy_mark buf;
    char shown[VG_YAML_QUOTE_MAX + 1];
    size_t len = 0;
    const char *s = rb_yaml_scalar_text(ld, f, "a severity", &len);

    if (!s)
        return -EINVAL;
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (len == 4 && memcmp(s, rb_severity_name(all[i]), 4) == 0) {
            *out = all[i];
            return 0;
        }
    }
    rb_yaml_fail(ld, rb_yaml_value_mark(f, &buf),
                 "\"%s\": must be SEV1, SEV2, SEV3 or SEV4 (got \"%s\")", f->path,
                 vg_yaml_quotable(s, len, shown, sizeof(shown)));
    return -EINVAL;
}

/* A sequence of at most max items (an empty value is an empty sequence). */
static int get_sequence(struct rb_loader *ld, const struct rb_field *f, size_t max, size_t *count)
{
    *count = 0;
    if (vg_yaml_is_empty(f->value))
        return 0;
    if (!fy_node_is_sequence(f->value)) {
        rb_yaml_fail(ld, &f->key_mark, "\"%s\": must be a sequence, not %s", f->path,
                     vg_yaml_kind_of(f->value));
        return -EINVAL;
    }
    *count = (size_t)fy_node_sequence_item_count(f->value);
    if (*count > max) {
        rb_yaml_fail(ld, &f->key_mark, "\"%s\": at most %zu entries (got %zu)", f->path, max,
                     *count);
        return -ERANGE;
    }
    return 0;
}

int rb_yaml_get_labels(struct rb_loader *ld, const struct rb_field *f, struct rb_label **out,
                       size_t *nout)
{
    struct fy_node_pair *pair;
    void *iter = NULL;
    size_t n;
    int r = 0;

    if (vg_yaml_is_empty(f->value))
        return 0;
    if (!fy_node_is_mapping(f->value)) {
        rb_yaml_fail(ld, &f->key_mark, "\"%s\": must be a mapping of names to values, not %s",
                     f->path, vg_yaml_kind_of(f->value));
        return -EINVAL;
    }
    n = (size_t)fy_node_mapping_item_count(f->value);
    if (n > RB_MAX_LABELS) {
        rb_yaml_fail(ld, &f->key_mark, "\"%s\": at most %d entries (got %zu)", f->path,
                     RB_MAX_LABELS, n);
        return -ERANGE;
    }
    if (n == 0)
        return 0;
    *out = calloc(n, sizeof(**out));
    if (!*out) {
        rb_yaml_fail(ld, NULL, "out of memory");
        return -ENOMEM;
    }
    while (r == 0 && (pair = fy_node_mapping_iterate(f->value, &iter))) {
        struct rb_field kf = {.value = fy_node_pair_key(pair), .key_mark = f->key_mark};
        struct rb_field vf = {.value = fy_node_pair_value(pair), .key_mark = f->key_mark};
        struct rb_label *l = &(*out)[*nout];
        struct fy_mark buf;

        kf.path = vf.path = f->path;
        if (vg_yaml_scalar_mark(kf.value, &buf))
            vf.key_mark = buf;
        (*nout)++;
        r = rb_yaml_get_string(ld, &kf, RB_LABEL_KEY_MAX_LEN, &l->key);
        if (r == 0)
            r = rb_yaml_get_string(ld, &vf, RB_LABEL_VALUE_MAX_LEN, &l->value);
    }
    return r;
}

int rb_yaml_get_items(struct rb_loader *ld, const struct rb_field *f, size_t max, size_t elem_size,
                      void **items, size_t *count, rb_yaml_item_fn *one)
{
    size_t n;
    void *iter = NULL;
    struct fy_node *item;
    int r = get_sequence(ld, f, max, &n);

    if (r < 0 || n == 0)
        return r;
    *items = calloc(n, elem_size);
    if (!*items) {
        rb_yaml_fail(ld, NULL, "out of memory");
        return -ENOMEM;
    }
    while ((item = fy_node_sequence_iterate(f->value, &iter))) {
        char path[RB_PATH_TEXT_MAX];
        size_t i = *count;

        snprintf(path, sizeof(path), "%s[%zu]", f->path, i);
        (*count)++;
        r = one(ld, item, path, &f->key_mark, i, (unsigned char *)*items + i * elem_size);
        if (r < 0)
            return r;
    }
    return 0;
}
