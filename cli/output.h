/*
 * vigilctl output: the error line, aligned tables for people, JSON for programs.
 *
 * Every command prints through here so they all look alike: `-o table` (the default) is a
 * header row and space-aligned columns; `-o json` is one JSON document on stdout. Text that
 * came from the network (node names, error strings) is made safe for a terminal before it is
 * printed in a table or an error line; JSON output is escaped by jansson.
 */
#ifndef CTL_OUTPUT_H
#define CTL_OUTPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

enum output_format {
    OUTPUT_TABLE,
    OUTPUT_JSON,
};

/* "table" or "json". Returns 0 or -EINVAL. */
int output_format_parse(const char *text, enum output_format *ret_format);

/* Prints "vigilctl: <message>" as one line on stderr. */
void output_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Copies text into buf, replacing control characters and invalid bytes with '?'. */
void output_sanitize(const char *text, char *buf, size_t buflen);

typedef struct output_table output_table_t;

/* A table with ncols columns and these headers (copied). NULL on allocation failure. */
output_table_t *output_table_new(size_t ncols, const char *const *headers);
void output_table_destroy(output_table_t **self_p);

/* Appends a row of ncols cells (copied, sanitized; NULL prints as "-"). 0 or -ENOMEM. */
int output_table_add_row(output_table_t *self, const char *const *cells);

/* Prints the header and rows, columns separated by two spaces. 0 or -EIO. */
int output_table_print(const output_table_t *self, FILE *out);

/* Prints value as indented JSON and a newline, then drops the reference. 0 or -EIO/-EINVAL. */
int output_json_print(json_t **value_p, FILE *out);

/* JSON string of text; bytes that are not valid UTF-8 become '?' (the text came from the network
 * and jansson refuses invalid UTF-8). NULL only when out of memory. */
json_t *output_json_string(const char *text);

/* Unix milliseconds as RFC 3339 UTC ("2024-05-01T12:00:03Z"). 0 or -EINVAL. */
int output_time_rfc3339(int64_t unix_ms, char *buf, size_t buflen);

/* JSON string with the RFC 3339 time, or JSON null when unix_ms is 0 (never). */
json_t *output_json_time(int64_t unix_ms);

/* How long ago then_ms was, seen at now_ms: "3s ago", "5m ago", "2h ago", "4d ago", "never"
 * for 0. */
void output_time_ago(int64_t then_ms, int64_t now_ms, char *buf, size_t buflen);

/*
 * A signal's value as a person reads it in a table, from its unit:
 *   "bytes"            512 B, 23.2 GiB (powers of 1024, one decimal below 100)
 *   "bytes/s"          1.5 MiB/s
 *   "percent"          42.5 %
 *   "ms"               350 ms, 2.5 ms, 1.2 s
 *   "s", "seconds"     350 ms, 1.2 s, 5 min 12 s, 3 h 25 min, 3 d 4 h
 *   "days"             13 d 12 h
 *   anything else      the number: integers whole (1234567), other values with at most three
 *                      decimals, or three significant digits below 1 (0.000123)
 * Never exponent notation, but for magnitudes of 1e15 and more or below 1e-9. NaN and
 * infinities print as "nan", "inf", "-inf". JSON output keeps the exact number instead.
 */
void output_value(double value, const char *unit, char *buf, size_t buflen);

#endif
