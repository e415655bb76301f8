/*
 * Runbook loader: the runbooks/ directory (or one file) into a struct rb_set (see
 * runbook_load.h; format: docs/runbook-format.md).
 *
 * The loader is split by concern, one job a file:
 *   runbook_load.c       files and the directory: read a file whole (bounded), parse it into a
 *                        libfyaml document, the set-level checks, freeing and lookup;
 *   runbook_parse.c      one runbook document: top-level fields, investigate, resolve;
 *   runbook_condition.c  symptoms and verify entries (signal, ratio, absent, promql);
 *   runbook_yaml.c       keys checked against the keys a place allows (unknown keys are errors,
 *                        with the closest allowed key suggested) and typed values, every error
 *                        as "file:line:col: message";
 * and runbook_signals.c lists the signals a runbook may name.
 *
 * A runbook is built directly in its final struct; on any error everything built so far is
 * freed, and a directory load returns the whole set or nothing.
 */
#include "runbook_load.h"

#include "log.h"
#include "runbook_parse.h"
#include "runbook_yaml.h"
#include "yaml.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libfyaml.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- freeing ---- */

static void free_labels(struct rb_label **labels_p, size_t *n_p)
{
    struct rb_label *labels = *labels_p;

    for (size_t i = 0; labels && i < *n_p; i++) {
        free(labels[i].key);
        free(labels[i].value);
    }
    free(labels);
    *labels_p = NULL;
    *n_p = 0;
}

static void free_match(struct rb_match *m)
{
    free(m->signal);
    m->signal = NULL;
    free_labels(&m->labels, &m->nlabels);
}

static void free_condition(struct rb_condition *c)
{
    free_match(&c->match);
    free_match(&c->numerator);
    free_match(&c->denominator);
    free(c->promql);
    c->promql = NULL;
}

static void free_runbook(struct rb_runbook *rb)
{
    free(rb->id);
    free(rb->title);
    free(rb->doc);
    free(rb->policy);
    free(rb->file);
    for (size_t i = 0; rb->depends_on && i < rb->ndepends; i++)
        free(rb->depends_on[i]);
    free(rb->depends_on);
    for (size_t i = 0; rb->symptoms && i < rb->nsymptoms; i++) {
        free(rb->symptoms[i].id);
        free_condition(&rb->symptoms[i].cond);
    }
    free(rb->symptoms);
    for (size_t i = 0; rb->combinations && i < rb->ncombinations; i++)
        free(rb->combinations[i].symptoms);
    free(rb->combinations);
    for (size_t i = 0; rb->investigate && i < rb->ninvestigate; i++) {
        free(rb->investigate[i].kind);
        free_labels(&rb->investigate[i].args, &rb->investigate[i].nargs);
    }
    free(rb->investigate);
    for (size_t i = 0; rb->resolve && i < rb->nresolve; i++) {
        free(rb->resolve[i].name);
        free_labels(&rb->resolve[i].args, &rb->resolve[i].nargs);
    }
    free(rb->resolve);
    for (size_t i = 0; rb->verify && i < rb->nverify; i++)
        free_condition(&rb->verify[i].cond);
    free(rb->verify);
    memset(rb, 0, sizeof(*rb));
}

void runbooks_free(struct rb_set **set_p)
{
    struct rb_set *set = set_p ? *set_p : NULL;

    if (!set)
        return;
    *set_p = NULL;
    if (__atomic_sub_fetch(&set->refs, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    for (size_t i = 0; set->runbooks && i < set->n; i++)
        free_runbook(&set->runbooks[i]);
    free(set->runbooks);
    free(set);
}

const struct rb_set *runbooks_ref(const struct rb_set *set)
{
    /* The count is the one mutable field of an immutable set (rb_set.refs). */
    if (set)
        __atomic_add_fetch(&((struct rb_set *)set)->refs, 1, __ATOMIC_RELAXED);
    return set;
}

void runbooks_release(const struct rb_set **set_p)
{
    struct rb_set *set = set_p ? (struct rb_set *)*set_p : NULL;
    if (set_p)
        *set_p = NULL;
    runbooks_free(&set);
}

const struct rb_runbook *runbooks_find(const struct rb_set *set, const char *id)
{
    for (size_t i = 0; set && id && i < set->n; i++)
        if (strcmp(set->runbooks[i].id, id) == 0)
            return &set->runbooks[i];
    return NULL;
}

/* ---- files and directories ---- */

/* Reads a whole regular file of at most RB_FILE_MAX_BYTES into a new buffer. */
static int read_file(struct rb_loader *ld, char **ret_buf, size_t *ret_len)
{
    struct stat st;
    char *buf = NULL;
    size_t len = 0;
    int fd = open(ld->file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    int r;

    if (fd < 0) {
        r = -errno;
        rb_yaml_fail(ld, NULL, "cannot open: %s", strerror(-r));
        return r;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rb_yaml_fail(ld, NULL, "not a regular file");
        r = -EINVAL;
        goto err_close;
    }
    if (st.st_size > RB_FILE_MAX_BYTES) {
        rb_yaml_fail(ld, NULL, "too large (%lld bytes; at most %d)", (long long)st.st_size,
                     RB_FILE_MAX_BYTES);
        r = -EFBIG;
        goto err_close;
    }
    buf = malloc(RB_FILE_MAX_BYTES + 1);
    if (!buf) {
        rb_yaml_fail(ld, NULL, "out of memory");
        r = -ENOMEM;
        goto err_close;
    }
    /* Read to the bound, not to st_size: the file may grow between fstat and read. */
    for (;;) {
        ssize_t n = read(fd, buf + len, RB_FILE_MAX_BYTES + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = -errno;
            rb_yaml_fail(ld, NULL, "cannot read: %s", strerror(-r));
            goto err_free;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > RB_FILE_MAX_BYTES) {
            rb_yaml_fail(ld, NULL, "too large (more than %d bytes)", RB_FILE_MAX_BYTES);
            r = -EFBIG;
            goto err_free;
        }
    }
    close(fd);
    *ret_buf = buf;
    *ret_len = len;
    return 0;

err_free:
    free(buf);
err_close:
    close(fd);
    return r;
}

/* Parses one file into rb (zeroed by the caller; freed by the caller on error). */
static int load_one(struct rb_loader *ld, struct rb_runbook *rb)
{
    struct fy_parse_cfg pcfg = {0};
    struct fy_diag *diag;
    struct fy_parser *parser = NULL;
    struct fy_document *doc = NULL, *extra = NULL;
    char *text = NULL;
    size_t len = 0;
    struct fy_mark mark;
    int r = read_file(ld, &text, &len);

    if (r < 0)
        return r;
    if (!vg_yaml_utf8_ok(text, len, &mark)) {
        rb_yaml_fail(ld, &mark, "not UTF-8 text (a runbook is UTF-8)");
        r = -EINVAL;
        goto err_free_text;
    }
    diag = vg_yaml_diag_new();
    if (!diag) {
        rb_yaml_fail(ld, NULL, "cannot create the YAML diagnostics object");
        r = -ENOMEM;
        goto err_free_text;
    }
    pcfg.flags = FYPCF_QUIET;
    pcfg.diag = diag;
    parser = fy_parser_create(&pcfg);
    if (!parser || fy_parser_set_string(parser, text, len) != 0) {
        rb_yaml_fail(ld, NULL, "cannot create the YAML parser");
        r = -ENOMEM;
        goto err_destroy_parser;
    }
    doc = fy_parse_load_document(parser);
    if (doc && (extra = fy_parse_load_document(parser))) {
        struct fy_document_state *fyds = fy_document_get_document_state(extra);
        rb_yaml_fail(ld, fyds ? fy_document_state_start_mark(fyds) : NULL,
                     "only one YAML document (one runbook) is allowed in a file");
        r = -EINVAL;
        goto err_destroy_docs;
    }
    if (fy_parser_get_stream_error(parser) || fy_diag_got_error(diag)) {
        if (!vg_yaml_parse_error(diag, ld->file, ld->err, ld->errlen))
            rb_yaml_fail(ld, NULL, "cannot parse the YAML");
        r = -EINVAL;
        goto err_destroy_docs;
    }
    if (!doc || vg_yaml_is_empty(fy_document_root(doc))) {
        rb_yaml_fail(ld, NULL, "empty: a runbook needs at least id, title, severity and symptoms");
        r = -EINVAL;
        goto err_destroy_docs;
    }
    r = rb_parse_runbook(ld, fy_document_root(doc), rb);
    if (r == 0 && !(rb->file = strdup(ld->file))) {
        rb_yaml_fail(ld, NULL, "out of memory");
        r = -ENOMEM;
    }

err_destroy_docs:
    if (extra)
        fy_parse_document_destroy(parser, extra);
    if (doc)
        fy_parse_document_destroy(parser, doc);
err_destroy_parser:
    if (parser)
        fy_parser_destroy(parser);
    fy_diag_destroy(diag);
err_free_text:
    free(text);
    return r;
}

static struct rb_set *set_new(size_t capacity)
{
    struct rb_set *set = calloc(1, sizeof(*set));

    if (set)
        set->refs = 1; /* the loader's caller's */
    if (set && capacity > 0 && !(set->runbooks = calloc(capacity, sizeof(*set->runbooks)))) {
        free(set);
        set = NULL;
    }
    return set;
}

struct rb_set *runbooks_load_file(const char *path, char *err, size_t errlen)
{
    struct rb_loader ld = {.file = path, .err = err, .errlen = errlen};
    struct rb_set *set = set_new(1);

    if (!set) {
        rb_yaml_fail(&ld, NULL, "out of memory");
        return NULL;
    }
    set->n = 1;
    if (load_one(&ld, &set->runbooks[0]) < 0)
        runbooks_free(&set);
    return set;
}

static int yaml_name(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return d->d_name[0] != '.' && n > 5 && strcmp(d->d_name + n - 5, ".yaml") == 0;
}

/* Depth-first search for a depends_on cycle through runbook i; state 1 = on the path. */
static bool has_cycle(const struct rb_set *set, size_t i, unsigned char *state)
{
    if (state[i] == 1)
        return true;
    if (state[i] == 2)
        return false;
    state[i] = 1;
    for (size_t d = 0; d < set->runbooks[i].ndepends; d++) {
        const struct rb_runbook *dep = runbooks_find(set, set->runbooks[i].depends_on[d]);
        if (dep && has_cycle(set, (size_t)(dep - set->runbooks), state))
            return true;
    }
    state[i] = 2;
    return false;
}

/* The set-level checks: unique ids, depends_on resolvable, no cycles. */
static int check_set(const struct rb_set *set, const struct rb_marks *marks, char *err,
                     size_t errlen)
{
    unsigned char state[RB_SET_MAX_RUNBOOKS];

    for (size_t i = 0; i < set->n; i++) {
        const struct rb_runbook *rb = &set->runbooks[i];
        struct rb_loader ld = {.file = rb->file, .err = err, .errlen = errlen};

        for (size_t j = 0; j < i; j++) {
            if (strcmp(rb->id, set->runbooks[j].id) == 0) {
                rb_yaml_fail(&ld, &marks[i].id, "\"id\": runbook \"%s\" is already defined in %s",
                             rb->id, set->runbooks[j].file);
                return -EINVAL;
            }
        }
        for (size_t d = 0; d < rb->ndepends; d++) {
            if (!runbooks_find(set, rb->depends_on[d])) {
                rb_yaml_fail(&ld, &marks[i].depends[d],
                             "\"depends_on[%zu]\": no runbook \"%s\" in the set", d,
                             rb->depends_on[d]);
                return -EINVAL;
            }
        }
    }
    for (size_t i = 0; i < set->n; i++) {
        memset(state, 0, sizeof(state));
        if (has_cycle(set, i, state)) {
            struct rb_loader ld = {.file = set->runbooks[i].file, .err = err, .errlen = errlen};
            rb_yaml_fail(&ld, &marks[i].id,
                         "\"depends_on\": runbook \"%s\" depends on itself through "
                         "other runbooks",
                         set->runbooks[i].id);
            return -EINVAL;
        }
    }
    return 0;
}

struct rb_set *runbooks_load_dir(const char *dir, char *err, size_t errlen)
{
    struct dirent **names = NULL;
    struct rb_marks *marks = NULL;
    struct rb_set *set = NULL;
    int n = scandir(dir, &names, yaml_name, alphasort);
    int r = 0;

    if (n < 0) {
        vg_set_err(err, errlen, "%s: cannot read the runbook directory: %s", dir, strerror(errno));
        return NULL;
    }
    if (n > RB_SET_MAX_RUNBOOKS) {
        vg_set_err(err, errlen, "%s: too many runbooks (%d; at most %d)", dir, n,
                   RB_SET_MAX_RUNBOOKS);
        goto out;
    }
    set = set_new((size_t)n);
    marks = calloc(n > 0 ? (size_t)n : 1, sizeof(*marks));
    if (!set || !marks) {
        vg_set_err(err, errlen, "%s: out of memory", dir);
        runbooks_free(&set);
        goto out;
    }
    for (int i = 0; i < n && r == 0; i++) {
        char path[4096];
        struct rb_loader ld = {.file = path, .err = err, .errlen = errlen};

        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name) >= sizeof(path)) {
            vg_set_err(err, errlen, "%s: path too long", dir);
            r = -ENAMETOOLONG;
            break;
        }
        set->n++;
        r = load_one(&ld, &set->runbooks[i]);
        marks[i] = ld.marks;
    }
    if (r == 0)
        r = check_set(set, marks, err, errlen);
    if (r < 0)
        runbooks_free(&set);
    else
        vg_log(VG_LOG_DEBUG, "runbooks loaded dir=%s count=%zu", dir, set->n);
out:
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(marks);
    return set;
}
