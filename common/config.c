/*
 * Table-driven YAML configuration loader (see config.h).
 *
 * The file is parsed into a libfyaml document, then walked: every mapping key is appended to
 * the dotted path of its parent, and the path must be either a declared key (its value is
 * converted and stored) or a prefix of declared keys (its value must be a mapping, walked in
 * turn). Anything else is an error that names the file, line and column.
 *
 * Positions: libfyaml 0.7 exposes marks for scalar tokens only, so errors about a scalar value
 * point at the value, and errors about a mapping or sequence point at the key that holds it.
 * fy_mark lines and columns are 0-based; diagnostics collected from the parser are already
 * 1-based. Messages print 1-based positions.
 */
#include "config.h"

#include "log.h"
#include "yaml.h"

#include <errno.h>
#include <inttypes.h>
#include <libfyaml.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#define STRING_MAX_DEFAULT 4096
#define PATH_MAX_LEN 256     /* longest dotted key path we look up */
#define VALUE_TEXT_MAX 64    /* longest non-string value text we parse */
#define VG_YAML_QUOTE_MAX 48 /* longest value text quoted back in a message */

#define MS_PER_S INT64_C(1000)
#define MS_PER_M (60 * MS_PER_S)
#define MS_PER_H (60 * MS_PER_M)
#define MS_PER_D (24 * MS_PER_H)

struct seen {
    bool set;
    int line; /* 1-based line where the file set the key */
};

struct loader {
    const char *file;
    const char *ctx; /* "http.targets[2]" inside a list element, "" at the top level */
    char shown_path[2][PATH_MAX_LEN + 64]; /* full key paths for messages (see full_path) */
    const struct vg_cfg_key *keys;
    size_t nkeys;
    void *target;
    struct seen *seen;
    char *err;
    size_t errlen;
};

/* A converted value, before it is stored in the target struct. */
struct value {
    int64_t num;
    double real;
    bool flag;
    char *str;
};

/* "file:line:col: message" when the position is known, "file: message" otherwise. */
static void loc_err(struct loader *ld, const struct fy_mark *mark, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void loc_err(struct loader *ld, const struct fy_mark *mark, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vg_yaml_verror(ld->err, ld->errlen, ld->file, mark, fmt, ap);
    va_end(ap);
}

/* ---- typed value parsers ---- */

/* Unsigned decimal digits at the start of text; *end is set past them. */
static int parse_digits(const char *text, uint64_t *ret, const char **end)
{
    uint64_t v = 0;
    const char *p = text;

    if (*p < '0' || *p > '9')
        return -EINVAL;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    *ret = v;
    *end = p;
    return 0;
}

/* A value with a unit suffix: digits, then exactly one of units[] (an empty suffix allowed
 * only when listed). A leading '-' before digits is refused as -ERANGE. */
struct unit {
    const char *suffix;
    int64_t scale;
};

static int parse_with_unit(const char *text, const struct unit *units, size_t nunits, int64_t *ret)
{
    uint64_t n;
    const char *end;
    int r;

    if (!text)
        return -EINVAL;
    if (text[0] == '-')
        return (text[1] >= '0' && text[1] <= '9') ? -ERANGE : -EINVAL;
    r = parse_digits(text, &n, &end);
    if (r < 0)
        return r;
    for (size_t i = 0; i < nunits; i++) {
        if (strcmp(end, units[i].suffix) != 0)
            continue;
        if (n > (uint64_t)(INT64_MAX / units[i].scale))
            return -ERANGE;
        *ret = (int64_t)n * units[i].scale;
        return 0;
    }
    return -EINVAL;
}

int vg_parse_duration_ms(const char *text, int64_t *ret_ms)
{
    static const struct unit units[] = {
        {"ms", 1},       {"s", MS_PER_S}, {"m", MS_PER_M},
        {"h", MS_PER_H}, {"d", MS_PER_D}, {"", MS_PER_S}, /* bare integer = seconds */
    };
    return parse_with_unit(text, units, sizeof(units) / sizeof(units[0]), ret_ms);
}

int vg_parse_size(const char *text, int64_t *ret_bytes)
{
    static const struct unit units[] = {
        {"", 1},
        {"B", 1},
        {"KiB", INT64_C(1) << 10},
        {"MiB", INT64_C(1) << 20},
        {"GiB", INT64_C(1) << 30},
        {"KB", INT64_C(1000)},
        {"MB", INT64_C(1000000)},
        {"GB", INT64_C(1000000000)},
    };
    return parse_with_unit(text, units, sizeof(units) / sizeof(units[0]), ret_bytes);
}

int vg_parse_bool(const char *text, bool *ret)
{
    static const char *const truthy[] = {"true", "yes", "on"};
    static const char *const falsy[] = {"false", "no", "off"};

    if (!text)
        return -EINVAL;
    for (size_t i = 0; i < sizeof(truthy) / sizeof(truthy[0]); i++) {
        if (strcasecmp(text, truthy[i]) == 0) {
            *ret = true;
            return 0;
        }
        if (strcasecmp(text, falsy[i]) == 0) {
            *ret = false;
            return 0;
        }
    }
    return -EINVAL;
}

int vg_parse_int(const char *text, int64_t *ret)
{
    uint64_t n;
    const char *end;
    bool negative = false;
    int r;

    if (!text)
        return -EINVAL;
    if (*text == '-' || *text == '+') {
        negative = *text == '-';
        text++;
    }
    r = parse_digits(text, &n, &end);
    if (r < 0)
        return r;
    if (*end != '\0')
        return -EINVAL;
    if (negative) {
        if (n > (uint64_t)INT64_MAX + 1)
            return -ERANGE;
        *ret = n == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)n;
    } else {
        if (n > (uint64_t)INT64_MAX)
            return -ERANGE;
        *ret = (int64_t)n;
    }
    return 0;
}

/* ---- formatting values back in the key's own units ---- */

static void format_value(enum vg_cfg_type type, int64_t v, char *buf, size_t buflen)
{
    if (type == VG_CFG_DURATION_MS) {
        if (v == 0)
            snprintf(buf, buflen, "0s");
        else if (v % MS_PER_H == 0)
            snprintf(buf, buflen, "%" PRId64 "h", v / MS_PER_H);
        else if (v % MS_PER_M == 0)
            snprintf(buf, buflen, "%" PRId64 "m", v / MS_PER_M);
        else if (v % MS_PER_S == 0)
            snprintf(buf, buflen, "%" PRId64 "s", v / MS_PER_S);
        else
            snprintf(buf, buflen, "%" PRId64 "ms", v);
    } else if (type == VG_CFG_SIZE) {
        if (v != 0 && v % (INT64_C(1) << 30) == 0)
            snprintf(buf, buflen, "%" PRId64 "GiB", v >> 30);
        else if (v != 0 && v % (INT64_C(1) << 20) == 0)
            snprintf(buf, buflen, "%" PRId64 "MiB", v >> 20);
        else if (v != 0 && v % (INT64_C(1) << 10) == 0)
            snprintf(buf, buflen, "%" PRId64 "KiB", v >> 10);
        else
            snprintf(buf, buflen, "%" PRId64 " bytes", v);
    } else {
        snprintf(buf, buflen, "%" PRId64, v);
    }
}

/* min == max == 0 declares no bounds (durations and sizes still refuse negative values). */
static bool has_bounds(const struct vg_cfg_key *k)
{
    return !(k->min == 0 && k->max == 0);
}

static void range_msg(const struct vg_cfg_key *k, const char *got, char *msg, size_t msglen)
{
    char lo[32], hi[32];

    if (!has_bounds(k)) {
        snprintf(msg, msglen, "is out of range (got \"%s\")", got);
        return;
    }
    format_value(k->type, k->min, lo, sizeof(lo));
    format_value(k->type, k->max, hi, sizeof(hi));
    if (k->max == INT64_MAX)
        snprintf(msg, msglen, "must be at least %s (got \"%s\")", lo, got);
    else
        snprintf(msg, msglen, "must be between %s and %s (got \"%s\")", lo, hi, got);
}

static const char *type_noun(enum vg_cfg_type type)
{
    switch (type) {
    case VG_CFG_STRING:
        return "a string";
    case VG_CFG_INT:
        return "an integer";
    case VG_CFG_DURATION_MS:
        return "a duration";
    case VG_CFG_SIZE:
        return "a size";
    case VG_CFG_BOOL:
        return "true or false";
    case VG_CFG_NUMBER:
        return "a number";
    case VG_CFG_STRINGS:
        return "a string or a sequence of strings";
    case VG_CFG_LIST:
        return "a sequence of mappings";
    }
    return "a value";
}

static void invalid_msg(const struct vg_cfg_key *k, const char *got, char *msg, size_t msglen)
{
    switch (k->type) {
    case VG_CFG_BOOL:
        snprintf(msg, msglen, "must be true/false, yes/no or on/off (got \"%s\")", got);
        break;
    case VG_CFG_DURATION_MS:
        snprintf(msg, msglen, "must be a duration such as 250ms, 5s, 2m, 1h or 1d (got \"%s\")",
                 got);
        break;
    case VG_CFG_SIZE:
        snprintf(msg, msglen, "must be a size such as 512, 64KiB, 16MiB or 1GB (got \"%s\")", got);
        break;
    default:
        snprintf(msg, msglen, "must be an integer (got \"%s\")", got);
        break;
    }
}

/*
 * Converts text (len bytes, not necessarily NUL-terminated) for key k. On failure writes a
 * message without location or key name ("must be ... (got ...)") into msg.
 */
static int convert(const struct vg_cfg_key *k, const char *text, size_t len, struct value *out,
                   char *msg, size_t msglen)
{
    char got[VG_YAML_QUOTE_MAX + 1];
    char buf[VALUE_TEXT_MAX + 1];
    int r;

    vg_yaml_quotable(text, len, got, sizeof(got));
    if (memchr(text, '\0', len)) {
        snprintf(msg, msglen, "must not contain a NUL character (got \"%s\")", got);
        return -EINVAL;
    }

    if (k->type == VG_CFG_STRING) {
        size_t max = k->max > 0 ? (size_t)k->max : STRING_MAX_DEFAULT;
        if (len > max) {
            snprintf(msg, msglen, "must be at most %zu characters long (got %zu)", max, len);
            return -ERANGE;
        }
        out->str = strndup(text, len);
        if (!out->str) {
            snprintf(msg, msglen, "out of memory");
            return -ENOMEM;
        }
        return 0;
    }

    /* Every other type is short text: anything longer cannot be valid. */
    if (len > VALUE_TEXT_MAX) {
        invalid_msg(k, got, msg, msglen);
        return -EINVAL;
    }
    memcpy(buf, text, len);
    buf[len] = '\0';

    switch (k->type) {
    case VG_CFG_BOOL:
        r = vg_parse_bool(buf, &out->flag);
        break;
    case VG_CFG_INT:
        r = vg_parse_int(buf, &out->num);
        break;
    case VG_CFG_DURATION_MS:
        r = vg_parse_duration_ms(buf, &out->num);
        break;
    case VG_CFG_SIZE:
        r = vg_parse_size(buf, &out->num);
        break;
    case VG_CFG_NUMBER: {
        char *end;
        errno = 0;
        out->real = strtod(buf, &end);
        r = (end == buf || *end || errno || out->real != out->real || out->real > 1e300 ||
             out->real < -1e300)
                ? -EINVAL
                : 0;
        if (r < 0) {
            snprintf(msg, msglen, "must be a number (got \"%s\")", got);
            return r;
        }
        return 0;
    }
    case VG_CFG_STRING:
    case VG_CFG_STRINGS:
    case VG_CFG_LIST:
    default:
        snprintf(msg, msglen, "has an unknown type %d in the key table", (int)k->type);
        return -EINVAL;
    }
    if (r == -EINVAL) {
        invalid_msg(k, got, msg, msglen);
        return r;
    }
    if (r == 0 && k->type != VG_CFG_BOOL && has_bounds(k) &&
        (out->num < k->min || out->num > k->max))
        r = -ERANGE;
    if (r < 0)
        range_msg(k, got, msg, msglen);
    return r;
}

/* Stores a converted value; takes ownership of v->str. Frees a string set earlier. */
static void store(const struct vg_cfg_key *k, void *target, struct value *v)
{
    unsigned char *field = (unsigned char *)target + k->offset;

    switch (k->type) {
    case VG_CFG_STRING: {
        char *old;
        memcpy(&old, field, sizeof(old));
        free(old);
        memcpy(field, &v->str, sizeof(v->str));
        v->str = NULL;
        break;
    }
    case VG_CFG_BOOL:
        memcpy(field, &v->flag, sizeof(v->flag));
        break;
    case VG_CFG_INT:
    case VG_CFG_DURATION_MS:
    case VG_CFG_SIZE:
        memcpy(field, &v->num, sizeof(v->num));
        break;
    case VG_CFG_NUMBER:
        memcpy(field, &v->real, sizeof(v->real));
        break;
    case VG_CFG_STRINGS:
    case VG_CFG_LIST:
        break; /* stored by set_strings / set_list */
    }
}

int vg_config_defaults(const struct vg_cfg_key *keys, size_t nkeys, void *target, char *err,
                       size_t errlen)
{
    for (size_t i = 0; i < nkeys; i++) {
        const struct vg_cfg_key *k = &keys[i];
        struct value v = {0};
        char msg[256];
        int r;

        if (!k->def || k->type == VG_CFG_STRINGS || k->type == VG_CFG_LIST)
            continue; /* sequences default to empty */
        r = convert(k, k->def, strlen(k->def), &v, msg, sizeof(msg));
        if (r < 0) {
            vg_set_err(err, errlen, "built-in default of \"%s\" %s", k->path, msg);
            return r;
        }
        store(k, target, &v);
    }
    return 0;
}

static void free_strings(struct vg_cfg_strings *sv)
{
    for (size_t i = 0; i < sv->count; i++)
        free(sv->items[i]);
    free(sv->items);
    sv->items = NULL;
    sv->count = 0;
}

/* The number of keys in a VG_CFG_LIST key's element table. */
static size_t sub_count(const struct vg_cfg_key *k)
{
    return k->nsub_ref ? *k->nsub_ref : k->nsub;
}

static void free_list(const struct vg_cfg_key *k, struct vg_cfg_list *list)
{
    for (size_t i = 0; i < list->count; i++)
        vg_config_free(k->sub, sub_count(k), (unsigned char *)list->items + i * k->elem_size);
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

void vg_config_free(const struct vg_cfg_key *keys, size_t nkeys, void *target)
{
    if (!target)
        return;
    for (size_t i = 0; i < nkeys; i++) {
        unsigned char *field = (unsigned char *)target + keys[i].offset;
        if (keys[i].type == VG_CFG_STRINGS) {
            struct vg_cfg_strings sv;
            memcpy(&sv, field, sizeof(sv));
            free_strings(&sv);
            memcpy(field, &sv, sizeof(sv));
        } else if (keys[i].type == VG_CFG_LIST) {
            struct vg_cfg_list list;
            memcpy(&list, field, sizeof(list));
            free_list(&keys[i], &list);
            memcpy(field, &list, sizeof(list));
        } else if (keys[i].type == VG_CFG_STRING) {
            char *s;
            memcpy(&s, field, sizeof(s));
            free(s);
            s = NULL;
            memcpy(field, &s, sizeof(s));
        }
    }
}

/* ---- walking the document ---- */

/* The key path as the user reads it: "collectors.http.targets[1].url" inside a list element.
 * slot picks one of two buffers so a message can show two paths. */
static const char *full_path(struct loader *ld, int slot, const char *path)
{
    if (!ld->ctx || !ld->ctx[0])
        return path;
    snprintf(ld->shown_path[slot], sizeof(ld->shown_path[slot]), "%s.%s", ld->ctx, path);
    return ld->shown_path[slot];
}

static ssize_t find_key(const struct loader *ld, const char *path)
{
    for (size_t i = 0; i < ld->nkeys; i++)
        if (strcmp(ld->keys[i].path, path) == 0)
            return (ssize_t)i;
    return -1;
}

/* True when some declared key lies under path ("store" for "store.url"). */
static bool is_prefix(const struct loader *ld, const char *path)
{
    size_t n = strlen(path);

    for (size_t i = 0; i < ld->nkeys; i++)
        if (strncmp(ld->keys[i].path, path, n) == 0 && ld->keys[i].path[n] == '.')
            return true;
    return false;
}

/* The declared key closest to path, if it is close enough to be a likely typo. */
static const char *suggest(const struct loader *ld, const char *path)
{
    const char *best = NULL;
    size_t best_d = 3; /* at most two edits */

    for (size_t i = 0; i < ld->nkeys; i++) {
        size_t d = vg_edit_distance(path, ld->keys[i].path);
        if (d < best_d && d < strlen(path)) {
            best = ld->keys[i].path;
            best_d = d;
        }
    }
    return best;
}

#define SEQUENCE_MAX_DEFAULT 64

static int walk_mapping(struct loader *ld, struct fy_node *map, const char *prefix,
                        const struct fy_mark *map_mark);
static int check_required(struct loader *ld, const struct fy_mark *mark);

static size_t sequence_max(const struct vg_cfg_key *k)
{
    return k->max > 0 ? (size_t)k->max : SEQUENCE_MAX_DEFAULT;
}

/* The mark of a sequence item, for messages: a scalar's own mark, a mapping's first key's
 * (libfyaml 0.7 marks scalars only), else the fallback. */
static const struct fy_mark *item_mark(struct fy_node *item, struct fy_mark *buf,
                                       const struct fy_mark *fallback)
{
    const struct fy_mark *m = NULL;

    if (item && fy_node_is_scalar(item)) {
        m = vg_yaml_scalar_mark(item, buf);
    } else if (item && fy_node_is_mapping(item)) {
        void *iter = NULL;
        struct fy_node_pair *first = fy_node_mapping_iterate(item, &iter);
        m = first ? vg_yaml_scalar_mark(fy_node_pair_key(first), buf) : NULL;
    }
    return m ? m : fallback;
}

/* VG_CFG_STRINGS: one scalar, or a sequence of scalars. */
static int set_strings(struct loader *ld, const struct vg_cfg_key *k,
                       const struct fy_mark *key_mark, struct fy_node *value)
{
    struct vg_cfg_key item_key = *k;
    struct vg_cfg_strings sv = {0};
    unsigned char *field = (unsigned char *)ld->target + k->offset;
    size_t n = 0;
    int r = 0;

    item_key.type = VG_CFG_STRING;
    item_key.max = 0;
    if (!vg_yaml_is_empty(value)) {
        if (fy_node_is_alias(value) || fy_node_is_mapping(value)) {
            loc_err(ld, key_mark, "\"%s\": must be %s, not %s", full_path(ld, 0, k->path),
                    type_noun(k->type), vg_yaml_kind_of(value));
            return -EINVAL;
        }
        n = fy_node_is_sequence(value) ? (size_t)fy_node_sequence_item_count(value) : 1;
    }
    if (n > sequence_max(k)) {
        loc_err(ld, key_mark, "\"%s\": at most %zu items (got %zu)", full_path(ld, 0, k->path),
                sequence_max(k), n);
        return -ERANGE;
    }
    if (n > 0 && !(sv.items = calloc(n, sizeof(*sv.items)))) {
        loc_err(ld, key_mark, "out of memory");
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        struct fy_node *item =
            fy_node_is_sequence(value) ? fy_node_sequence_get_by_index(value, (int)i) : value;
        struct fy_mark buf;
        const struct fy_mark *mark = item_mark(item, &buf, key_mark);
        struct value v = {0};
        const char *text;
        size_t len = 0;
        char msg[256];

        if (!item || !fy_node_is_scalar(item) || fy_node_is_alias(item) ||
            !(text = fy_node_get_scalar(item, &len))) {
            loc_err(ld, mark, "\"%s[%zu]\": must be a string", full_path(ld, 0, k->path), i);
            r = -EINVAL;
            break;
        }
        r = convert(&item_key, text, len, &v, msg, sizeof(msg));
        if (r < 0) {
            loc_err(ld, mark, "\"%s[%zu]\": %s", full_path(ld, 0, k->path), i, msg);
            break;
        }
        sv.items[sv.count++] = v.str;
    }
    if (r < 0) {
        free_strings(&sv);
        return r;
    }
    memcpy(field, &sv, sizeof(sv));
    return 0;
}

/* VG_CFG_LIST: a sequence of mappings, each loaded with the key's sub table. */
static int set_list(struct loader *ld, const struct vg_cfg_key *k, const struct fy_mark *key_mark,
                    struct fy_node *value)
{
    struct vg_cfg_list list = {0};
    unsigned char *field = (unsigned char *)ld->target + k->offset;
    size_t n = 0;
    int r = 0;

    if (!vg_yaml_is_empty(value)) {
        if (!fy_node_is_sequence(value)) {
            loc_err(ld, key_mark, "\"%s\": must be %s, not %s", full_path(ld, 0, k->path),
                    type_noun(k->type), vg_yaml_kind_of(value));
            return -EINVAL;
        }
        n = (size_t)fy_node_sequence_item_count(value);
    }
    if (n > sequence_max(k)) {
        loc_err(ld, key_mark, "\"%s\": at most %zu items (got %zu)", full_path(ld, 0, k->path),
                sequence_max(k), n);
        return -ERANGE;
    }
    if (n > 0 && !(list.items = calloc(n, k->elem_size))) {
        loc_err(ld, key_mark, "out of memory");
        return -ENOMEM;
    }
    for (size_t i = 0; i < n && r == 0; i++) {
        struct fy_node *item = fy_node_sequence_get_by_index(value, (int)i);
        void *elem = (unsigned char *)list.items + i * k->elem_size;
        struct fy_mark buf;
        const struct fy_mark *mark = item_mark(item, &buf, key_mark);
        char ctx[sizeof(ld->shown_path[0]) + 32];
        struct loader sub = {
            .file = ld->file,
            .ctx = ctx,
            .keys = k->sub,
            .nkeys = sub_count(k),
            .target = elem,
            .err = ld->err,
            .errlen = ld->errlen,
        };

        snprintf(ctx, sizeof(ctx), "%s[%zu]", full_path(ld, 0, k->path), i);
        list.count = i + 1; /* so free_list frees what this element allocated */
        if (!item || !fy_node_is_mapping(item)) {
            loc_err(ld, mark, "\"%s\": must be a mapping, not %s", ctx,
                    item ? vg_yaml_kind_of(item) : "nothing");
            r = -EINVAL;
            break;
        }
        r = vg_config_defaults(k->sub, sub.nkeys, elem, ld->err, ld->errlen);
        if (r < 0)
            break;
        sub.seen = calloc(sub.nkeys ? sub.nkeys : 1, sizeof(*sub.seen));
        if (!sub.seen) {
            r = -ENOMEM;
            break;
        }
        r = walk_mapping(&sub, item, "", mark);
        if (r == 0)
            r = check_required(&sub, mark);
        free(sub.seen);
    }
    if (r < 0) {
        free_list(k, &list);
        return r;
    }
    memcpy(field, &list, sizeof(list));
    return 0;
}

static int set_key(struct loader *ld, size_t idx, const struct fy_mark *key_mark,
                   struct fy_node *value)
{
    const struct vg_cfg_key *k = &ld->keys[idx];
    const struct fy_mark *mark = key_mark;
    struct fy_mark value_mark;
    const char *text = "";
    size_t len = 0;
    struct value v = {0};
    char msg[256];
    int r;

    if (ld->seen[idx].set) {
        loc_err(ld, key_mark, "\"%s\": set twice (first at line %d)", full_path(ld, 0, k->path),
                ld->seen[idx].line);
        return -EINVAL;
    }
    if (k->type == VG_CFG_STRINGS || k->type == VG_CFG_LIST) {
        r = k->type == VG_CFG_LIST ? set_list(ld, k, key_mark, value)
                                   : set_strings(ld, k, key_mark, value);
        if (r == 0) {
            ld->seen[idx].set = true;
            ld->seen[idx].line = key_mark ? key_mark->line + 1 : 0;
        }
        return r;
    }
    if (!vg_yaml_is_empty(value)) {
        if (!fy_node_is_scalar(value) || fy_node_is_alias(value)) {
            loc_err(ld, key_mark, "\"%s\": must be %s, not %s", full_path(ld, 0, k->path),
                    type_noun(k->type), vg_yaml_kind_of(value));
            return -EINVAL;
        }
        text = fy_node_get_scalar(value, &len);
        if (!text) {
            loc_err(ld, key_mark, "\"%s\": cannot read the value", full_path(ld, 0, k->path));
            return -EINVAL;
        }
        if (vg_yaml_scalar_mark(value, &value_mark))
            mark = &value_mark;
    }
    if (k->type == VG_CFG_STRING && k->required && len == 0) {
        loc_err(ld, mark, "\"%s\": must not be empty", full_path(ld, 0, k->path));
        return -EINVAL;
    }
    r = convert(k, text, len, &v, msg, sizeof(msg));
    if (r < 0) {
        loc_err(ld, mark, "\"%s\": %s", full_path(ld, 0, k->path), msg);
        return r;
    }
    store(k, ld->target, &v);
    ld->seen[idx].set = true;
    ld->seen[idx].line = key_mark ? key_mark->line + 1 : 0;
    return 0;
}

static int walk_mapping(struct loader *ld, struct fy_node *map, const char *prefix,
                        const struct fy_mark *map_mark)
{
    struct fy_node_pair *pair;
    void *iter = NULL;

    while ((pair = fy_node_mapping_iterate(map, &iter))) {
        struct fy_node *key = fy_node_pair_key(pair);
        struct fy_node *value = fy_node_pair_value(pair);
        struct fy_mark key_mark_buf;
        const struct fy_mark *key_mark = vg_yaml_scalar_mark(key, &key_mark_buf);
        const char *name;
        size_t name_len = 0;
        char path[PATH_MAX_LEN];
        char shown[VG_YAML_QUOTE_MAX + 1];
        ssize_t idx;
        int n, r;

        if (!key || !fy_node_is_scalar(key) || fy_node_is_alias(key) ||
            !(name = fy_node_get_scalar(key, &name_len))) {
            loc_err(ld, key_mark ? key_mark : map_mark, "keys must be plain strings");
            return -EINVAL;
        }
        if (memchr(name, '\0', name_len) || name_len >= sizeof(path)) {
            loc_err(ld, key_mark, "unknown key \"%s\"",
                    vg_yaml_quotable(name, name_len, shown, sizeof(shown)));
            return -EINVAL;
        }
        n = snprintf(path, sizeof(path), "%s%s%.*s", prefix, prefix[0] ? "." : "", (int)name_len,
                     name);
        if (n < 0 || (size_t)n >= sizeof(path)) {
            loc_err(ld, key_mark, "unknown key \"%s\"",
                    vg_yaml_quotable(name, name_len, shown, sizeof(shown)));
            return -EINVAL;
        }

        idx = find_key(ld, path);
        if (idx >= 0) {
            r = set_key(ld, (size_t)idx, key_mark, value);
        } else if (is_prefix(ld, path)) {
            if (vg_yaml_is_empty(value))
                continue; /* "store:" with everything below commented out */
            if (!fy_node_is_mapping(value)) {
                loc_err(ld, key_mark, "\"%s\": is a section and must be a mapping, not %s",
                        full_path(ld, 0, path), vg_yaml_kind_of(value));
                return -EINVAL;
            }
            r = walk_mapping(ld, value, path, key_mark);
        } else {
            const char *hint = suggest(ld, path);
            const char *whole = full_path(ld, 0, path);
            if (hint)
                loc_err(ld, key_mark, "unknown key \"%s\" (did you mean \"%s\"?)",
                        vg_yaml_quotable(whole, strlen(whole), shown, sizeof(shown)),
                        full_path(ld, 1, hint));
            else
                loc_err(ld, key_mark, "unknown key \"%s\"",
                        vg_yaml_quotable(whole, strlen(whole), shown, sizeof(shown)));
            return -EINVAL;
        }
        if (r < 0)
            return r;
    }
    return 0;
}

static int check_required(struct loader *ld, const struct fy_mark *mark)
{
    for (size_t i = 0; i < ld->nkeys; i++) {
        if (ld->keys[i].required && !ld->seen[i].set) {
            loc_err(ld, mark, "\"%s\": required key is missing",
                    full_path(ld, 0, ld->keys[i].path));
            return -EINVAL;
        }
    }
    return 0;
}

static int walk_document(struct loader *ld, struct fy_document *doc)
{
    struct fy_node *root = fy_document_root(doc);
    struct fy_mark mark;

    if (vg_yaml_is_empty(root))
        return 0;
    if (!fy_node_is_mapping(root)) {
        loc_err(ld, vg_yaml_scalar_mark(root, &mark),
                "the top level must be a mapping of keys, not %s", vg_yaml_kind_of(root));
        return -EINVAL;
    }
    return walk_mapping(ld, root, "", NULL);
}

/* The whole of fp into *ret_text (malloc'd, NUL-terminated) and *ret_len. 0 or -errno. */
static int read_text(FILE *fp, char **ret_text, size_t *ret_len)
{
    size_t len = 0, cap = 4096;
    char *text = malloc(cap);

    if (!text)
        return -ENOMEM;
    for (;;) {
        if (cap - len < 2) {
            char *grown = cap > SIZE_MAX / 2 ? NULL : realloc(text, cap * 2);
            if (!grown) {
                free(text);
                return -ENOMEM;
            }
            text = grown;
            cap *= 2;
        }
        size_t n = fread(text + len, 1, cap - len - 1, fp);
        len += n;
        if (n == 0) {
            if (ferror(fp)) {
                free(text);
                return -EIO;
            }
            break;
        }
    }
    text[len] = '\0';
    *ret_text = text;
    *ret_len = len;
    return 0;
}

int vg_config_load(const char *path, const struct vg_cfg_key *keys, size_t nkeys, void *target,
                   char *err, size_t errlen)
{
    struct loader ld = {
        .file = path,
        .keys = keys,
        .nkeys = nkeys,
        .target = target,
        .err = err,
        .errlen = errlen,
    };
    struct fy_parse_cfg pcfg = {0};
    struct fy_diag *diag = NULL;
    struct fy_parser *parser = NULL;
    struct fy_document *doc = NULL, *extra = NULL;
    struct stat st;
    struct fy_mark mark;
    char *text = NULL;
    size_t len = 0;
    FILE *fp;
    int r;

    r = vg_config_defaults(keys, nkeys, target, err, errlen);
    if (r < 0)
        return r;

    fp = fopen(path, "re");
    if (!fp) {
        r = -errno;
        vg_set_err(err, errlen, "%s: cannot open: %s", path, strerror(-r));
        return r;
    }
    if (fstat(fileno(fp), &st) == 0 && S_ISDIR(st.st_mode)) {
        vg_set_err(err, errlen, "%s: is a directory, not a configuration file", path);
        r = -EISDIR;
        goto err_close_file;
    }
    r = read_text(fp, &text, &len);
    if (r < 0) {
        vg_set_err(err, errlen, "%s: cannot read: %s", path, strerror(-r));
        goto err_close_file;
    }
    if (!vg_yaml_utf8_ok(text, len, &mark)) {
        loc_err(&ld, &mark, "not UTF-8 text (a configuration file is UTF-8)");
        r = -EINVAL;
        goto err_free_text;
    }

    ld.seen = calloc(nkeys ? nkeys : 1, sizeof(*ld.seen));
    if (!ld.seen) {
        vg_set_err(err, errlen, "%s: out of memory", path);
        r = -ENOMEM;
        goto err_free_text;
    }

    /* Collect parse errors instead of printing them, so they can carry file:line:col. */
    diag = vg_yaml_diag_new();
    if (!diag) {
        vg_set_err(err, errlen, "%s: cannot create the YAML diagnostics object", path);
        r = -ENOMEM;
        goto err_free_seen;
    }
    pcfg.flags = FYPCF_QUIET;
    pcfg.diag = diag;
    parser = fy_parser_create(&pcfg);
    if (!parser || fy_parser_set_string(parser, text, len) != 0) {
        vg_set_err(err, errlen, "%s: cannot create the YAML parser", path);
        r = -ENOMEM;
        goto err_destroy_parser;
    }

    doc = fy_parse_load_document(parser);
    if (doc) {
        /* A second document would be silently ignored: refuse it. */
        extra = fy_parse_load_document(parser);
        if (extra) {
            struct fy_document_state *fyds = fy_document_get_document_state(extra);
            loc_err(&ld, fyds ? fy_document_state_start_mark(fyds) : NULL,
                    "only one YAML document is allowed in a configuration file");
            r = -EINVAL;
            goto err_destroy_docs;
        }
    }
    if (fy_parser_get_stream_error(parser) || fy_diag_got_error(diag)) {
        if (!vg_yaml_parse_error(diag, ld.file, ld.err, ld.errlen))
            vg_set_err(err, errlen, "%s: cannot parse the YAML", path);
        r = -EINVAL;
        goto err_destroy_docs;
    }

    /* No document at all (empty file, only comments): all defaults. */
    if (doc) {
        r = walk_document(&ld, doc);
        if (r < 0)
            goto err_destroy_docs;
    }
    r = check_required(&ld, NULL);
    if (r == 0)
        vg_log(VG_LOG_DEBUG, "config loaded file=%s", path);

err_destroy_docs:
    if (extra)
        fy_parse_document_destroy(parser, extra);
    if (doc)
        fy_parse_document_destroy(parser, doc);
err_destroy_parser:
    if (parser)
        fy_parser_destroy(parser);
    fy_diag_destroy(diag);
err_free_seen:
    free(ld.seen);
err_free_text:
    free(text);
err_close_file:
    fclose(fp);
    return r;
}
