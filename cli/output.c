#include "output.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ERROR_LINE_MAX 1024
#define CELL_MAX 512

struct output_table {
    size_t ncols;
    size_t nrows; /* header included */
    size_t cap_rows;
    char **cells; /* nrows * ncols, row-major; row 0 is the header */
};

int output_format_parse(const char *text, enum output_format *ret_format)
{
    if (strcmp(text, "table") == 0) {
        *ret_format = OUTPUT_TABLE;
        return 0;
    }
    if (strcmp(text, "json") == 0) {
        *ret_format = OUTPUT_JSON;
        return 0;
    }
    return -EINVAL;
}

void output_error(const char *fmt, ...)
{
    char message[ERROR_LINE_MAX];
    char line[ERROR_LINE_MAX + 16];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    /* The message may quote the coordinator or a file: keep it one harmless line. */
    output_sanitize(message, line, sizeof(line));
    fprintf(stderr, "vigilctl: %s\n", line);
}

/*
 * Length of the valid UTF-8 sequence at s that encodes a printable character (not C0, DEL or
 * C1), or 0 if the byte at s must be replaced.
 */
static size_t printable_utf8_len(const unsigned char *s)
{
    uint32_t cp;
    size_t len;

    if (s[0] < 0x80)
        return (s[0] >= 0x20 && s[0] != 0x7f) ? 1 : 0;
    if ((s[0] & 0xe0) == 0xc0) {
        cp = s[0] & 0x1f;
        len = 2;
    } else if ((s[0] & 0xf0) == 0xe0) {
        cp = s[0] & 0x0f;
        len = 3;
    } else if ((s[0] & 0xf8) == 0xf0) {
        cp = s[0] & 0x07;
        len = 4;
    } else {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) /* also stops at the terminating NUL */
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    static const uint32_t min_for_len[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_for_len[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0; /* overlong, out of range or a surrogate */
    if (cp >= 0x80 && cp <= 0x9f)
        return 0; /* C1 controls act as escape sequences on some terminals */
    return len;
}

void output_sanitize(const char *text, char *buf, size_t buflen)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t used = 0;

    if (buflen == 0)
        return;
    while (*s != '\0') {
        size_t len = printable_utf8_len(s);
        if (len == 0) {
            if (used + 1 >= buflen)
                break;
            buf[used++] = '?';
            s++;
            continue;
        }
        if (used + len >= buflen)
            break;
        memcpy(buf + used, s, len);
        used += len;
        s += len;
    }
    buf[used] = '\0';
}

/* Display width: one column per code point (good enough for names and versions). */
static size_t display_width(const char *text)
{
    size_t width = 0;
    for (const unsigned char *s = (const unsigned char *)text; *s != '\0'; s++) {
        if ((*s & 0xc0) != 0x80)
            width++;
    }
    return width;
}

output_table_t *output_table_new(size_t ncols, const char *const *headers)
{
    output_table_t *self = calloc(1, sizeof(*self));
    if (self == NULL)
        return NULL;
    self->ncols = ncols;
    if (output_table_add_row(self, headers) < 0) {
        output_table_destroy(&self);
        return NULL;
    }
    return self;
}

void output_table_destroy(output_table_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    output_table_t *self = *self_p;
    if (self->cells != NULL) {
        for (size_t i = 0; i < self->nrows * self->ncols; i++)
            free(self->cells[i]);
    }
    free(self->cells);
    free(self);
    *self_p = NULL;
}

int output_table_add_row(output_table_t *self, const char *const *cells)
{
    if (self->nrows == self->cap_rows) {
        size_t cap = self->cap_rows == 0 ? 16 : self->cap_rows * 2;
        char **grown = reallocarray(self->cells, cap * self->ncols, sizeof(*grown));
        if (grown == NULL)
            return -ENOMEM;
        self->cells = grown;
        self->cap_rows = cap;
    }
    char **row = self->cells + self->nrows * self->ncols;
    for (size_t col = 0; col < self->ncols; col++) {
        char clean[CELL_MAX];
        output_sanitize(cells[col] != NULL ? cells[col] : "-", clean, sizeof(clean));
        row[col] = strdup(clean);
        if (row[col] == NULL) {
            while (col-- > 0) {
                free(row[col]);
                row[col] = NULL;
            }
            return -ENOMEM;
        }
    }
    self->nrows++;
    return 0;
}

int output_table_print(const output_table_t *self, FILE *out)
{
    size_t *widths = calloc(self->ncols, sizeof(*widths));
    if (widths == NULL)
        return -ENOMEM;
    for (size_t r = 0; r < self->nrows; r++) {
        for (size_t c = 0; c < self->ncols; c++) {
            size_t w = display_width(self->cells[r * self->ncols + c]);
            if (w > widths[c])
                widths[c] = w;
        }
    }
    for (size_t r = 0; r < self->nrows; r++) {
        for (size_t c = 0; c < self->ncols; c++) {
            const char *cell = self->cells[r * self->ncols + c];
            fputs(cell, out);
            if (c + 1 < self->ncols) {
                /* Pad to the column width, then the two-space gutter. */
                for (size_t pad = display_width(cell); pad < widths[c] + 2; pad++)
                    fputc(' ', out);
            }
        }
        fputc('\n', out);
    }
    free(widths);
    return ferror(out) ? -EIO : 0;
}

int output_json_print(json_t **value_p, FILE *out)
{
    if (*value_p == NULL)
        return -EINVAL;
    int rc = json_dumpf(*value_p, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(*value_p);
    *value_p = NULL;
    if (rc < 0)
        return -EIO;
    fputc('\n', out);
    return ferror(out) ? -EIO : 0;
}

json_t *output_json_string(const char *text)
{
    json_t *value = json_string(text);
    if (value != NULL)
        return value;

    size_t len = strlen(text);
    char *clean = malloc(len + 1);
    if (clean == NULL)
        return NULL;
    output_sanitize(text, clean, len + 1);
    value = json_string(clean);
    free(clean);
    return value;
}

int output_time_rfc3339(int64_t unix_ms, char *buf, size_t buflen)
{
    /* Floor division so times before 1970 still land on the right second. */
    time_t secs = (time_t)(unix_ms / 1000 - (unix_ms % 1000 < 0 ? 1 : 0));
    struct tm tm;

    if (gmtime_r(&secs, &tm) == NULL)
        return -EINVAL;
    if (strftime(buf, buflen, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        return -EINVAL;
    return 0;
}

json_t *output_json_time(int64_t unix_ms)
{
    char text[64];

    if (unix_ms == 0 || output_time_rfc3339(unix_ms, text, sizeof(text)) < 0)
        return json_null();
    return json_string(text);
}

void output_time_ago(int64_t then_ms, int64_t now_ms, char *buf, size_t buflen)
{
    if (then_ms == 0) {
        snprintf(buf, buflen, "never");
        return;
    }
    int64_t secs = (now_ms - then_ms) / 1000;
    if (secs < 0) /* the coordinator's clock is ahead of ours */
        secs = 0;
    if (secs < 60)
        snprintf(buf, buflen, "%llds ago", (long long)secs);
    else if (secs < 3600)
        snprintf(buf, buflen, "%lldm ago", (long long)(secs / 60));
    else if (secs < 86400)
        snprintf(buf, buflen, "%lldh ago", (long long)(secs / 3600));
    else
        snprintf(buf, buflen, "%lldd ago", (long long)(secs / 86400));
}
