/* Post-load checks on configuration files: positions by YAML path, root ownership (cfgcheck.h). */
#include "cfgcheck.h"

#include <errno.h>
#include <libfyaml.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "yaml.h"

#define YPATH_MAX 512

struct cfgcheck_doc {
    char *file;
    struct fy_document *doc;
};

cfgcheck_doc_t *cfgcheck_doc_open(const char *path)
{
    struct fy_parse_cfg pcfg = {.flags = FYPCF_QUIET};
    cfgcheck_doc_t *self = calloc(1, sizeof(*self));

    if (!self)
        return NULL;
    self->file = strdup(path);
    self->doc = fy_document_build_from_file(&pcfg, path);
    if (!self->file || !self->doc) {
        cfgcheck_doc_close(&self);
        return NULL;
    }
    return self;
}

void cfgcheck_doc_close(cfgcheck_doc_t **self_p)
{
    cfgcheck_doc_t *self = self_p ? *self_p : NULL;

    if (!self)
        return;
    if (self->doc)
        fy_document_destroy(self->doc);
    free(self->file);
    free(self);
    *self_p = NULL;
}

static struct fy_node *lookup(const cfgcheck_doc_t *doc, const char *ypath)
{
    struct fy_node *root = doc ? fy_document_root(doc->doc) : NULL;

    if (!root || !ypath || !ypath[0])
        return NULL;
    return fy_node_by_path(root, ypath, FY_NT, FYNWF_DONT_FOLLOW);
}

bool cfgcheck_has(const cfgcheck_doc_t *doc, const char *ypath)
{
    return lookup(doc, ypath) != NULL;
}

/* A node's position; for one without its own (a null or empty value), the key that holds it. */
static const struct fy_mark *node_or_key_mark(struct fy_node *n, struct fy_mark *buf)
{
    struct fy_node *parent = n ? fy_node_get_parent(n) : NULL;
    const struct fy_mark *mark = vg_yaml_node_mark(n, buf, NULL);
    struct fy_node_pair *pair;
    void *iter = NULL;

    if (mark || !parent || !fy_node_is_mapping(parent))
        return mark;
    while ((pair = fy_node_mapping_iterate(parent, &iter)))
        if (fy_node_pair_value(pair) == n)
            return vg_yaml_scalar_mark(fy_node_pair_key(pair), buf);
    return NULL;
}

int cfgcheck_fail(const cfgcheck_doc_t *doc, const char *file, const char *ypath, char *err,
                  size_t errlen, const char *fmt, ...)
{
    const struct fy_mark *mark = NULL;
    struct fy_mark buf;
    char path[YPATH_MAX];
    char msg[768];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    snprintf(path, sizeof(path), "%s", ypath ? ypath : "");
    while (doc && path[0] && !mark) {
        char *slash;

        mark = node_or_key_mark(lookup(doc, path), &buf);
        slash = strrchr(path, '/');
        if (!slash || slash == path)
            break; /* the top level itself places nothing */
        *slash = '\0';
    }
    if (!file)
        file = doc ? doc->file : "configuration";
    if (mark)
        vg_set_err(err, errlen, "%s:%d:%d: %s", file, mark->line + 1, mark->column + 1, msg);
    else
        vg_set_err(err, errlen, "%s: %s", file, msg);
    return -EINVAL;
}

int cfgcheck_root_owned(const char *path, const char *kind, struct stat *ret_st, char *err,
                        size_t errlen)
{
    struct stat st;

    if (stat(path, &st) != 0) {
        int r = -errno;
        vg_set_err(err, errlen, "%s: cannot read the %s: %s", path, kind, strerror(-r));
        return r;
    }
    if (!S_ISREG(st.st_mode)) {
        vg_set_err(err, errlen, "%s: the %s must be a regular file", path, kind);
        return -EPERM;
    }
    if (st.st_uid != 0) {
        vg_set_err(err, errlen,
                   "%s: the %s is owned by uid %u, not by root: it decides what may run on this "
                   "node, so only root may own it (chown root %s)",
                   path, kind, (unsigned)st.st_uid, path);
        return -EPERM;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        vg_set_err(err, errlen,
                   "%s: the %s is writable by %s (mode %04o): it decides what may run on this "
                   "node, so only root may write it (chmod go-w %s)",
                   path, kind,
                   (st.st_mode & S_IWGRP) && (st.st_mode & S_IWOTH) ? "group and others"
                   : (st.st_mode & S_IWGRP)                         ? "its group"
                                                                    : "others",
                   (unsigned)(st.st_mode & 07777), path);
        return -EPERM;
    }
    if (ret_st)
        *ret_st = st;
    return 0;
}

bool cfgcheck_same_file(const char *path, const struct stat *st)
{
    struct stat now;

    return stat(path, &now) == 0 && now.st_dev == st->st_dev && now.st_ino == st->st_ino &&
           now.st_uid == st->st_uid && now.st_mode == st->st_mode;
}
