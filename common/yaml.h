/*
 * What every YAML reader of Vigil shares (common/config.c for configuration files,
 * coordinator/incidents/runbook_yaml.c for runbooks): positions for messages, quoting hostile text back,
 * typo suggestions, and libfyaml's parse errors as "file:line:col: message".
 *
 * Positions: libfyaml 0.7 marks scalar tokens only, so a mapping or sequence is placed at its
 * first scalar. fy_mark lines and columns are 0-based; messages print them 1-based.
 */
#ifndef VG_YAML_H
#define VG_YAML_H

#include <libfyaml.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#define VG_YAML_QUOTE_MAX 48 /* longest text quoted back in a message */

/* Copies text for quoting in a message: bounded ("..." when cut), control characters and
 * double quotes replaced by '?'. Returns buf. */
const char *vg_yaml_quotable(const char *text, size_t len, char *buf, size_t buflen);

/* Levenshtein distance, for "did you mean"; SIZE_MAX when either is longer than 128. */
size_t vg_edit_distance(const char *a, const char *b);

/* Where a scalar starts (a quoted one at its opening quote), or NULL. */
const struct fy_mark *vg_yaml_scalar_mark(struct fy_node *n, struct fy_mark *buf);

/* A node's position: a scalar's own, a mapping's first key's, a sequence's first item's;
 * fallback when none. */
const struct fy_mark *vg_yaml_node_mark(struct fy_node *n, struct fy_mark *buf,
                                        const struct fy_mark *fallback);

/* True for no node or a null scalar ("key:" with nothing after it). */
bool vg_yaml_is_empty(struct fy_node *n);

/* "a mapping", "a sequence", "an alias", "a scalar" or "nothing", for messages. */
const char *vg_yaml_kind_of(struct fy_node *n);

/* "file:line:col: message" (1-based) into err when mark is known, "file: message" otherwise. */
void vg_yaml_verror(char *err, size_t errlen, const char *file, const struct fy_mark *mark,
                    const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

/* True when text (len bytes) is UTF-8; otherwise false with *ret_mark (may be NULL) at the first
 * byte that is not. Every reader checks this before libfyaml sees the text: YAML is Unicode, and
 * libfyaml 0.7.12 loops forever on a directive line ("%" at the start of a line) holding bytes
 * that are not UTF-8. */
bool vg_yaml_utf8_ok(const char *text, size_t len, struct fy_mark *ret_mark);

/* A diagnostics object that collects errors instead of printing them. NULL on failure. */
struct fy_diag *vg_yaml_diag_new(void);

/* Writes libfyaml's first collected error as "file:line:col: message" into err; false when
 * there was none. */
bool vg_yaml_parse_error(struct fy_diag *diag, const char *file, char *err, size_t errlen);

#endif
