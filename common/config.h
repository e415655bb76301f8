/*
 * Table-driven YAML configuration (libfyaml).
 *
 * Each program declares its keys once, in a table of struct vg_cfg_key: a dotted path
 * ("store.url"), a type, bounds, a default and a one-line help text. The loader fills a
 * struct at the given offsets, applies defaults for keys the file does not set, and refuses
 * unknown keys, wrong types and out-of-range values with an error that names the place:
 *
 *   agent.yaml:12:5: "link.heartbeat": must be between 1s and 1h (got "0s")
 *
 * Nested YAML mappings map to dotted paths: "store: {url: x}" sets "store.url".
 */
#ifndef VG_CONFIG_H
#define VG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum vg_cfg_type {
    VG_CFG_STRING,      /* char * (owned; freed by vg_config_free); max = max length, 0 = 4096 */
    VG_CFG_INT,         /* int64_t, within [min, max] */
    VG_CFG_DURATION_MS, /* int64_t milliseconds; text "250ms", "5s", "2m", "1h", "1d"; bare integer
                           = s */
    VG_CFG_SIZE,    /* int64_t bytes; text "512", "64KiB", "16MiB", "1GiB" (also KB/MB/GB = 1000) */
    VG_CFG_BOOL,    /* bool; true/false/yes/no/on/off */
    VG_CFG_NUMBER,  /* double; decimal or exponent notation, finite; no bounds */
    VG_CFG_STRINGS, /* struct vg_cfg_strings: a sequence of strings (or one string);
                       max = most items, 0 = 64; each at most 4096 characters */
    VG_CFG_LIST,    /* struct vg_cfg_list: a sequence of mappings, each loaded with the
                       key table `sub` into an element of `elem_size` bytes; max = most
                       items, 0 = 64. Errors name the element: "http.targets[1].url" */
};

/* The stored form of VG_CFG_STRINGS. */
struct vg_cfg_strings {
    char **items;
    size_t count;
};

/* The stored form of VG_CFG_LIST: count elements of the key's elem_size, zeroed, then
 * defaults and file values applied from its sub table. */
struct vg_cfg_list {
    void *items;
    size_t count;
};

struct vg_cfg_key {
    const char *path; /* dotted key path */
    enum vg_cfg_type type;
    size_t offset;    /* offsetof(target struct, field) */
    int64_t min, max; /* bounds (INT, DURATION_MS, SIZE); for STRING max is the max length */
    const char *def;  /* default in the same text form the file uses; NULL = no default */
    bool required;    /* the file must set it */
    const char *help; /* one line for documentation and errors */
    /* VG_CFG_LIST only: the key table of one element and the element's size. */
    const struct vg_cfg_key *sub;
    size_t nsub;
    const size_t *nsub_ref; /* instead of nsub, when sub is defined in another file */
    size_t elem_size;
};

/* Element i of a loaded VG_CFG_LIST, typed by the caller. */
#define VG_CFG_ITEM(list, type, i) (&((type *)(list).items)[i])

/* Sets every key with a default. Strings are strdup'd. Returns 0 or negative errno. */
int vg_config_defaults(const struct vg_cfg_key *keys, size_t nkeys, void *target, char *err,
                       size_t errlen);

/*
 * Loads path into target: defaults first, then the file. On failure returns a negative errno
 * and writes "file:line:col: message" (or "file: message") into err. target keeps defaults
 * for keys that were not reached; call vg_config_free on it either way.
 */
int vg_config_load(const char *path, const struct vg_cfg_key *keys, size_t nkeys, void *target,
                   char *err, size_t errlen);

/* Frees the strings, string lists and lists the loader allocated and nulls them. */
void vg_config_free(const struct vg_cfg_key *keys, size_t nkeys, void *target);

/* Exposed for reuse and tests: parse one typed value. Return 0 or -EINVAL / -ERANGE. */
int vg_parse_duration_ms(const char *text, int64_t *ret_ms);
int vg_parse_size(const char *text, int64_t *ret_bytes);
int vg_parse_bool(const char *text, bool *ret);
int vg_parse_int(const char *text, int64_t *ret);

#endif
