/*
 * Private to the runbook loader (runbook_load.c, runbook_parse.c, runbook_condition.c):
 * reading typed values out of a runbook's YAML, with every error as "file:line:col: message".
 *
 * A mapping is read in two steps: rb_yaml_take_keys checks its keys against the keys that place
 * allows (an unknown key is an error, with the closest allowed key suggested) and fills one
 * struct rb_field per allowed key; then each present field is converted and checked by one of
 * the rb_yaml_get_* readers. Every reader returns 0, or a negative errno with the message in
 * the loader's err; its output is set only on success, except where noted (an allocated array
 * is filled as far as it got, so the caller frees exactly what exists).
 */
#ifndef COORDINATOR_RUNBOOK_YAML_H
#define COORDINATOR_RUNBOOK_YAML_H

#include "runbook_load.h"

#include <libfyaml.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RB_PATH_TEXT_MAX 160 /* "symptoms[12].ratio.numerator.labels" and the like */
#define RB_SIGNAL_MAX_LEN 128
#define RB_LABEL_KEY_MAX_LEN 64
#define RB_LABEL_VALUE_MAX_LEN 256

#define RB_MS_PER_S INT64_C(1000)
#define RB_MS_PER_M (60 * RB_MS_PER_S)
#define RB_MS_PER_H (60 * RB_MS_PER_M)
#define RB_MS_PER_D (24 * RB_MS_PER_H)

/* Where one runbook's cross-file references sit in its file, for the set-level checks. */
struct rb_marks {
    struct fy_mark id;
    struct fy_mark depends[RB_MAX_DEPENDS];
};

/* One file being loaded: where messages go and what the set-level checks need later. */
struct rb_loader {
    const char *file;
    char *err;
    size_t errlen;
    struct rb_marks marks;
    enum rb_severity severity; /* the runbook's, for its symptoms' checks */
    const struct rb_runbook *runbook; /* the one being parsed: combinations name its symptoms */
};

/* One key of a mapping, after rb_yaml_take_keys: NULL key = not present. */
struct rb_field {
    struct fy_node *key;
    struct fy_node *value;
    struct fy_mark key_mark;
    const char *path; /* "symptoms[0].for", for messages */
    char path_buf[RB_PATH_TEXT_MAX];
};

/* "file:line:col: message" into the loader's err (mark NULL: "file: message"). */
void rb_yaml_fail(struct rb_loader *ld, const struct fy_mark *mark, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Where a field's value is: the scalar itself, else the key that holds it. */
const struct fy_mark *rb_yaml_value_mark(const struct rb_field *f, struct fy_mark *buf);

/*
 * Checks map's keys against names[] (only those whose bit is set in allowed) and fills
 * fields[i] for each present key. path names the mapping in messages ("" at the top); where
 * places the message when map is not a mapping.
 */
int rb_yaml_take_keys(struct rb_loader *ld, struct fy_node *map, const char *path,
                      const struct fy_mark *where, const char *const *names, size_t n,
                      uint32_t allowed, struct rb_field *fields);

bool rb_yaml_present(const struct rb_field *f);

/* -EINVAL with "required key is missing" unless f is present. */
int rb_yaml_need(struct rb_loader *ld, const struct rb_field *f, const struct fy_mark *where);

/* The scalar text of a field (len in *len); NULL (error set) when it is not a non-empty scalar
 * without NUL characters. noun says what was expected ("a number"). */
const char *rb_yaml_scalar_text(struct rb_loader *ld, const struct rb_field *f, const char *noun,
                                size_t *len);

/* A string of at most max characters, no control characters; *out is the caller's to free. */
int rb_yaml_get_string(struct rb_loader *ld, const struct rb_field *f, size_t max, char **out);

/* An id, a policy or an action name: [a-z0-9][a-z0-9_-]*, at most RB_ID_MAX_LEN. */
int rb_yaml_get_id(struct rb_loader *ld, const struct rb_field *f, char **out);

/* A finite number. */
int rb_yaml_get_number(struct rb_loader *ld, const struct rb_field *f, double *out);

/* A duration ("30s", "5m", "1h") between min and max milliseconds. */
int rb_yaml_get_duration(struct rb_loader *ld, const struct rb_field *f, int64_t min, int64_t max,
                         int64_t *out);

/* An integer between min and max. */
int rb_yaml_get_int(struct rb_loader *ld, const struct rb_field *f, int64_t min, int64_t max,
                    int *out);

/* SEV1..SEV4. */
int rb_yaml_get_severity(struct rb_loader *ld, const struct rb_field *f, enum rb_severity *out);

/* A mapping of names to scalar values (labels, args), at most RB_MAX_LABELS; an empty value is
 * none. *out grows with *nout as entries are read: on failure the caller frees what exists. */
int rb_yaml_get_labels(struct rb_loader *ld, const struct rb_field *f, struct rb_label **out,
                       size_t *nout);

/* Reads one item of a sequence (the index-th, at path "f.path[index]") into item. */
typedef int rb_yaml_item_fn(struct rb_loader *ld, struct fy_node *node, const char *path,
                            const struct fy_mark *where, size_t index, void *item);

/* Allocates and fills an array of elem_size items from a sequence field of at most max entries
 * (an empty value is an empty sequence); *count grows as items are built so a failure frees
 * exactly what exists. */
int rb_yaml_get_items(struct rb_loader *ld, const struct rb_field *f, size_t max, size_t elem_size,
                      void **items, size_t *count, rb_yaml_item_fn *one);

#endif
