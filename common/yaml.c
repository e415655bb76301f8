/* YAML helpers shared by the configuration and runbook loaders (see yaml.h). */
#include "yaml.h"

#include "log.h"
#include "utf8.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define SUGGEST_MAX_LEN 128

const char *vg_yaml_quotable(const char *text, size_t len, char *buf, size_t buflen)
{
    bool cut = len > buflen - 1;
    size_t n = cut ? buflen - 1 : len;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        buf[i] = (c < 0x20 || c == 0x7f || c == '"') ? '?' : (char)c;
    }
    buf[n] = '\0';
    if (cut && n >= 3)
        memcpy(buf + n - 3, "...", 3);
    return buf;
}

size_t vg_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t row[SUGGEST_MAX_LEN + 1];

    if (la > SUGGEST_MAX_LEN || lb > SUGGEST_MAX_LEN)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const struct fy_mark *vg_yaml_scalar_mark(struct fy_node *n, struct fy_mark *buf)
{
    struct fy_token *t = n && fy_node_is_scalar(n) ? fy_node_get_scalar_token(n) : NULL;
    const struct fy_mark *m = t ? fy_token_start_mark(t) : NULL;
    enum fy_node_style style;

    if (!m)
        return NULL;
    *buf = *m;
    /* libfyaml marks a quoted scalar after its opening quote: point at the quote typed. */
    style = fy_node_get_style(n);
    if ((style == FYNS_SINGLE_QUOTED || style == FYNS_DOUBLE_QUOTED) && buf->column > 0)
        buf->column--;
    return buf;
}

const struct fy_mark *vg_yaml_node_mark(struct fy_node *n, struct fy_mark *buf,
                                        const struct fy_mark *fallback)
{
    const struct fy_mark *m = NULL;
    void *iter = NULL;

    if (!n)
        return fallback;
    if (fy_node_is_scalar(n)) {
        m = vg_yaml_scalar_mark(n, buf);
    } else if (fy_node_is_mapping(n)) {
        struct fy_node_pair *first = fy_node_mapping_iterate(n, &iter);
        m = first ? vg_yaml_scalar_mark(fy_node_pair_key(first), buf) : NULL;
    } else if (fy_node_is_sequence(n)) {
        struct fy_node *first = fy_node_sequence_iterate(n, &iter);
        m = first ? vg_yaml_node_mark(first, buf, NULL) : NULL;
    }
    return m ? m : fallback;
}

bool vg_yaml_is_empty(struct fy_node *n)
{
    return !n || (fy_node_is_scalar(n) && !fy_node_is_alias(n) && fy_node_is_null(n));
}

const char *vg_yaml_kind_of(struct fy_node *n)
{
    if (vg_yaml_is_empty(n))
        return "nothing";
    if (fy_node_is_alias(n))
        return "an alias";
    if (fy_node_is_mapping(n))
        return "a mapping";
    if (fy_node_is_sequence(n))
        return "a sequence";
    return "a scalar";
}

static void diag_discard(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
    (void)diag;
    (void)user;
    (void)buf;
    (void)len;
}

struct fy_diag *vg_yaml_diag_new(void)
{
    struct fy_diag_cfg dcfg;
    struct fy_diag *diag;

    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL;
    dcfg.output_fn = diag_discard;
    dcfg.level = FYET_ERROR;
    dcfg.colorize = false;
    diag = fy_diag_create(&dcfg);
    if (diag)
        fy_diag_set_collect_errors(diag, true);
    return diag;
}

bool vg_yaml_utf8_ok(const char *text, size_t len, struct fy_mark *ret_mark)
{
    int line = 0, column = 0;

    for (size_t i = 0; i < len;) {
        size_t n = (unsigned char)text[i] < 0x80 ? 1 : vg_utf8_char_len(text + i, len - i);
        if (n == 0) {
            if (ret_mark)
                *ret_mark = (struct fy_mark){.input_pos = i, .line = line, .column = column};
            return false;
        }
        if (text[i] == '\n') {
            line++;
            column = 0;
        } else {
            column++;
        }
        i += n;
    }
    return true;
}

bool vg_yaml_parse_error(struct fy_diag *diag, const char *file, char *err, size_t errlen)
{
    struct fy_diag_error *e;
    void *iter = NULL;

    while ((e = fy_diag_errors_iterate(diag, &iter))) {
        if (e->type < FYET_ERROR)
            continue;
        const char *msg = e->msg ? e->msg : "YAML syntax error";
        const char *tok = NULL;
        size_t tok_len = 0;

        /* "duplicate key" is clearer with the key's name. */
        if (strcmp(msg, "duplicate key") == 0 && e->fyt)
            tok = fy_token_get_text(e->fyt, &tok_len);
        if (tok) {
            char shown[VG_YAML_QUOTE_MAX + 1];
            vg_set_err(err, errlen, "%s:%d:%d: %s \"%s\"", file, e->line, e->column, msg,
                       vg_yaml_quotable(tok, tok_len, shown, sizeof(shown)));
        } else if (e->line > 0) {
            vg_set_err(err, errlen, "%s:%d:%d: %s", file, e->line, e->column, msg);
        } else {
            vg_set_err(err, errlen, "%s: %s", file, msg);
        }
        return true;
    }
    return false;
}

void vg_yaml_verror(char *err, size_t errlen, const char *file, const struct fy_mark *mark,
                    const char *fmt, va_list ap)
{
    char msg[512];

    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (mark)
        vg_set_err(err, errlen, "%s:%d:%d: %s", file, mark->line + 1, mark->column + 1, msg);
    else
        vg_set_err(err, errlen, "%s: %s", file, msg);
}
