#include "output.h"

#include <errno.h>
#include <math.h>
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

/* ---- Values ----------------------------------------------------------------------------- */

/* |v| below 1e15 is printed without an exponent; 1e15 B is ~0.9 PiB, 1e15 s 31 million years. */
#define PLAIN_MAX 1e15
#define PLAIN_MIN 1e-9

/* v with at most decimals decimals, trailing zeros and a bare point dropped, never "-0". */
static void fixed(double v, int decimals, char *buf, size_t buflen)
{
    snprintf(buf, buflen, "%.*f", decimals, v);
    if (strchr(buf, '.') != NULL) {
        size_t n = strlen(buf);
        while (n > 0 && buf[n - 1] == '0')
            buf[--n] = '\0';
        if (n > 0 && buf[n - 1] == '.')
            buf[--n] = '\0';
    }
    if (strcmp(buf, "-0") == 0)
        snprintf(buf, buflen, "0");
}

/* Decimals that show three significant digits of a (0 < a < 1): 0.5 -> 3, 0.0012 -> 5. */
static int decimals_for_3_digits(double a)
{
    int decimals = 2;
    while (a < 1 && decimals < 12) {
        a *= 10;
        decimals++;
    }
    return decimals;
}

static void plain_number(double v, char *buf, size_t buflen)
{
    double a = v < 0 ? -v : v;

    if (a >= PLAIN_MAX || (a > 0 && a < PLAIN_MIN))
        snprintf(buf, buflen, "%.4g", v);
    else if (v == (double)(long long)v)
        fixed(v, 0, buf, buflen);
    else if (a >= 1)
        fixed(v, 3, buf, buflen);
    else
        fixed(v, decimals_for_3_digits(a), buf, buflen);
}

/* "23.2 GiB": powers of 1024, one decimal below 100 of a unit; suffix after the unit ("/s"). */
static void bytes(double v, const char *suffix, char *buf, size_t buflen)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    const size_t nunits = sizeof(units) / sizeof(units[0]);
    double a = v < 0 ? -v : v;
    size_t u = 0;
    char number[64];

    /* Past 1023.95 the number would round to "1024.0": that is the next unit's 1. */
    while (u + 1 < nunits && a >= 1023.95) {
        a /= 1024;
        u++;
    }
    if (u == 0 || a >= PLAIN_MAX)
        plain_number(a, number, sizeof(number)); /* whole bytes, a rate's fraction, or huge */
    else
        fixed(a, a < 99.95 ? 1 : 0, number, sizeof(number));
    snprintf(buf, buflen, "%s%s %s%s", v < 0 && strcmp(number, "0") != 0 ? "-" : "", number,
             units[u], suffix);
}

/* Milliseconds, a >= 0: "350 ms", "23.5 ms", "2.35 ms", "0.123 ms". */
static void milliseconds(double a, char *buf, size_t buflen)
{
    char number[32]; /* a < 1000: a few digits */
    if (a == 0)
        fixed(0, 0, number, sizeof(number));
    else if (a >= 1)
        fixed(a, a >= 99.95 ? 0 : a >= 9.995 ? 1 : 2, number, sizeof(number));
    else
        plain_number(a, number, sizeof(number));
    snprintf(buf, buflen, "%s ms", number);
}

/* A duration in seconds, a >= 0: below a second in ms, then "1.2 s", "5 min 12 s", "3 h 25
 * min", "3 d 4 h"; the smaller part is left out when it is 0. */
static void seconds(double a, const char *sign, char *buf, size_t buflen)
{
    static const struct {
        long long size;
        const char *name, *part;
        long long part_size;
    } spans[] = {{86400, "d", "h", 3600}, {3600, "h", "min", 60}, {60, "min", "s", 1}};
    char number[64];

    if (a > 0 && a < 0.9995) {
        milliseconds(a * 1000, number, sizeof(number));
        snprintf(buf, buflen, "%s%s", sign, number);
        return;
    }
    if (a < 59.95) {
        fixed(a, 1, number, sizeof(number));
        snprintf(buf, buflen, "%s%s s", strcmp(number, "0") != 0 ? sign : "", number);
        return;
    }
    long long whole = (long long)(a + 0.5);
    for (size_t i = 0; i < sizeof(spans) / sizeof(spans[0]); i++) {
        if (whole < spans[i].size)
            continue;
        long long big = whole / spans[i].size;
        long long small = whole % spans[i].size / spans[i].part_size;
        if (small == 0)
            snprintf(buf, buflen, "%s%lld %s", sign, big, spans[i].name);
        else
            snprintf(buf, buflen, "%s%lld %s %lld %s", sign, big, spans[i].name, small,
                     spans[i].part);
        return;
    }
    snprintf(buf, buflen, "%s%lld s", sign, whole); /* not reached: a >= 59.95 */
}

static bool unit_is(const char *unit, const char *const *names)
{
    for (; *names != NULL; names++) {
        if (strcmp(unit, *names) == 0)
            return true;
    }
    return false;
}

void output_value(double value, const char *unit, char *buf, size_t buflen)
{
    static const char *const byte_units[] = {"bytes", "B", NULL};
    static const char *const byte_rate_units[] = {"bytes/s", "B/s", NULL};
    static const char *const percent_units[] = {"percent", "%", NULL};
    static const char *const ms_units[] = {"ms", "milliseconds", NULL};
    static const char *const s_units[] = {"s", "sec", "seconds", NULL};
    static const char *const day_units[] = {"d", "days", NULL};
    double a = value < 0 ? -value : value;
    const char *sign = value < 0 ? "-" : "";

    if (buflen == 0)
        return;
    if (unit == NULL)
        unit = "";
    if (isnan(value)) {
        snprintf(buf, buflen, "nan");
    } else if (isinf(value)) {
        snprintf(buf, buflen, "%sinf", sign);
    } else if (unit_is(unit, byte_units)) {
        bytes(value, "", buf, buflen);
    } else if (unit_is(unit, byte_rate_units)) {
        bytes(value, "/s", buf, buflen);
    } else if (a >= PLAIN_MAX) {
        plain_number(value, buf, buflen); /* no duration or percentage is meant to be this */
    } else if (unit_is(unit, percent_units)) {
        char number[64];
        snprintf(number, sizeof(number), "%.1f", value);
        snprintf(buf, buflen, "%s %%", strcmp(number, "-0.0") == 0 ? "0.0" : number);
    } else if (unit_is(unit, ms_units)) {
        if (a >= 999.5) {
            seconds(a / 1000, sign, buf, buflen);
        } else {
            char text[64];
            milliseconds(a, text, sizeof(text));
            snprintf(buf, buflen, "%s%s", strncmp(text, "0 ", 2) == 0 ? "" : sign, text);
        }
    } else if (unit_is(unit, s_units)) {
        seconds(a, sign, buf, buflen);
    } else if (unit_is(unit, day_units)) {
        seconds(a * 86400, sign, buf, buflen);
    } else {
        plain_number(value, buf, buflen);
    }
}
