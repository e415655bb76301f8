/*
 * The log collector: the contract and the signals are in logtail.h.
 *
 * State lives in two places. `specs` is the configuration (name, path, format, patterns'
 * names): written once by logtail_new and only read afterwards, so logtail_tail may use it
 * from another thread. Everything else (the files being followed, the windows, the counters,
 * the saved offsets) belongs to the thread that calls logtail_run.
 *
 * One run:
 *   1. expand each spec's path; match every result to a followed file by (dev, inode), then by
 *      path (the path now names another inode: rotation, the old one drains); add new files;
 *      files no longer matched drain;
 *   2. read every followed file, draining ones first, at most max_read_per_run bytes each,
 *      through its line splitter into the spec's windows;
 *   3. drop drained files, save the offsets if they moved, emit.
 */
#include "logtail.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crilog.h"
#include "log.h"
#include "logparse.h"
#include "podmap.h"

#define READ_CHUNK (64 * 1024)
#define WINDOW_DEFAULT_MS 60000
#define WINDOW_KEYS 64        /* per spec: lines, patterns, requests, classes, denied */
#define LOGIN_SOURCES 1024    /* failed-login sources counted exactly per window */
#define LOGIN_KIND_SLOTS 1024 /* per-source kind memory for one-count-per-attempt */
#define MAX_READ_DEFAULT (4 * 1024 * 1024)
#define MAX_READ_MIN (64 * 1024)
#define OFFSETS_FILE_MAX (4 * 1024 * 1024)
#define ROTATE_WAIT_MS 5000 /* a drained file stays open this long: late writes to the old file */
#define NOTES_MAX 256       /* paths with a logged problem, to log each once */
#define OFFSETS_SAVE_INTERVAL_S 10
#define NAME_MAX_LEN 63

enum reason {
    R_SYMLINK,
    R_UNREADABLE,
    R_TOO_LONG,
    R_BINARY,
    R_TOO_MANY,
    R_BAD_NAME,
    R_NOT_CRI,
    R_COUNT
};
static const char *const reason_names[R_COUNT] = {
    "symlink", "unreadable", "too_long", "binary", "too_many_files", "bad_name", "not_cri"};

enum format { FORMAT_PLAIN, FORMAT_ACCESS, FORMAT_AUTH };

/* ---- Configuration tables --------------------------------------------------------------- */

const struct vg_cfg_key logtail_pattern_keys[] = {
    {.path = "name",
     .type = VG_CFG_STRING,
     .offset = offsetof(struct logtail_pattern_config, name),
     .max = NAME_MAX_LEN,
     .required = true,
     .help = "the pattern label of log.match_count and log.match_rate"},
    {.path = "regex",
     .type = VG_CFG_STRING,
     .offset = offsetof(struct logtail_pattern_config, regex),
     .max = 1024,
     .required = true,
     .help = "POSIX extended regular expression, matched against each line"},
};
const size_t logtail_pattern_nkeys = sizeof(logtail_pattern_keys) / sizeof(logtail_pattern_keys[0]);

const struct vg_cfg_key logtail_file_keys[] = {
    {.path = "name",
     .type = VG_CFG_STRING,
     .offset = offsetof(struct logtail_file_config, name),
     .max = NAME_MAX_LEN,
     .required = true,
     .help = "the file label of this log's signals; unique"},
    {.path = "path",
     .type = VG_CFG_STRING,
     .offset = offsetof(struct logtail_file_config, path),
     .max = PATH_MAX - 1,
     .help = "absolute path or glob of the log file(s); symlinks are refused; or namespace"},
    {.path = "namespace",
     .type = VG_CFG_STRING,
     .offset = offsetof(struct logtail_file_config, namespace),
     .max = 253,
     .help = "instead of path: the pods of namespaces matching this pattern (fnmatch), their "
             "CRI logs under kubernetes.pod_logs_dir"},
    {.path = "pod",
     .type = VG_CFG_STRING,
     .offset = offsetof(struct logtail_file_config, pod),
     .max = 253,
     .help = "with namespace: pod names matching this pattern (fnmatch); default every pod"},
    {.path = "container",
     .type = VG_CFG_STRING,
     .offset = offsetof(struct logtail_file_config, container),
     .max = 253,
     .help = "with namespace: container names matching this pattern (fnmatch); default every "
             "container"},
    {.path = "format",
     .type = VG_CFG_STRING,
     .offset = offsetof(struct logtail_file_config, format),
     .max = 16,
     .def = "plain",
     .help = "plain, access (nginx/Apache access log) or auth (sshd/PAM failed logins)"},
    {.path = "patterns",
     .type = VG_CFG_LIST,
     .offset = offsetof(struct logtail_file_config, patterns),
     .max = LOGPARSE_PATTERNS_MAX,
     .help = "named regular expressions whose matching lines are counted",
     .sub = logtail_pattern_keys,
     .nsub = sizeof(logtail_pattern_keys) / sizeof(logtail_pattern_keys[0]),
     .elem_size = sizeof(struct logtail_pattern_config)},
};
const size_t logtail_file_nkeys = sizeof(logtail_file_keys) / sizeof(logtail_file_keys[0]);

/* ---- State ------------------------------------------------------------------------------ */

/* One configured file: immutable after logtail_new (logtail_tail reads it from any thread). */
struct spec {
    char *name;
    char *path; /* NULL for pods */
    bool is_glob;
    /* Pods: the CRI logs of containers matching all three patterns (fnmatch). */
    bool pods;
    char *pod_namespace, *pod_name, *pod_container;
    enum format format;
    char **pattern_names;
    size_t npatterns;
};

struct login_kind {
    char addr[LOGPARSE_ADDR_MAX];
    uint8_t kind; /* enum logparse_login_kind, 0 = empty slot */
};

/* What logtail_run keeps per spec. */
struct spec_state {
    logparse_patterns_t *patterns;
    logparse_window_t *counts; /* "lines", "p<i>", "req", "c1".."c5", "denied" */
    logparse_window_t *logins; /* auth: per source address */
    struct login_kind *kinds;  /* auth: LOGIN_KIND_SLOTS */
    uint64_t errors[R_COUNT];
    uint64_t rotations, truncations;
    size_t followed;     /* files currently matched and followed */
    bool too_many_noted; /* logged; cleared after a run without the overflow */
    bool overflow;       /* this run */
};

/* One file being read. */
struct followed {
    size_t spec;
    char *path;         /* where it was last seen */
    char *renamed_from; /* during an expansion: the path before a rename within the glob */
    dev_t dev;
    ino_t ino;
    int fd;            /* -1 until opened */
    uint64_t read_off; /* next byte to read */
    uint64_t line_off; /* end of the last whole line read: what is saved */
    logparse_lines_t *lines;
    bool seen;         /* matched by this run's expansion */
    bool draining;     /* rotated away or gone from the glob: read to the end, then drop */
    bool skip_partial; /* started in the middle of a line: its rest is not a line */
    bool done;         /* drained: drop at the end of this run */
    bool unreadable;   /* open or read failed (logged) */
    bool logged_too_long, logged_binary, logged_not_cri;
    int64_t drain_since_ms;
    struct crilog_joiner cri; /* pods: partial records waiting for their end */
};

/* An offset read from offsets_path, used by the first run only. */
struct saved {
    char *spec;
    char *path;
    uintmax_t dev, ino;
    uint64_t offset;
};

struct logtail {
    struct spec *specs;
    struct spec_state *states;
    size_t nspecs;
    unsigned window_s;
    size_t max_line;
    size_t max_read;
    char *offsets_path; /* NULL: not kept */
    char *pods_dir;     /* where pods' specs look: kubernetes.pod_logs_dir */

    struct followed **files;
    size_t nfiles;

    struct saved *saved;
    size_t nsaved;

    char *buf; /* READ_CHUNK */
    bool started;
    int64_t last_wall_ms;
    int64_t clock_ms; /* advances with the wall clock, never backwards: the windows' time */
    bool offsets_dirty;
    int64_t offsets_saved_s; /* when the offsets file was last written; 0 = never */
    bool save_failed;        /* logged */
    uint64_t seed;

    uint64_t notes[NOTES_MAX]; /* hashes of (reason, path) already logged */
    size_t nnotes, next_note;

    logtail_line_hook line_hook; /* NULL: none */
    void *line_hook_data;
};

/* ---- Small helpers ---------------------------------------------------------------------- */

static bool is_glob(const char *path)
{
    return strpbrk(path, "*?[") != NULL;
}

static uint64_t hash_bytes(uint64_t seed, const char *s)
{
    uint64_t h = 1469598103934665603ULL ^ seed; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h;
}

/* A path as logged: file names are anyone's choice, so control bytes become '?' (no forged
 * log lines) and a long one is cut. Used as shown(path).text within one log call. */
#define SHOWN_MAX 512
struct shown {
    char text[SHOWN_MAX];
};

static struct shown shown(const char *path)
{
    struct shown s;
    size_t i = 0;
    for (; path[i] && i + 4 < sizeof(s.text); i++)
        s.text[i] = (unsigned char)path[i] < 0x20 || path[i] == 0x7f ? '?' : path[i];
    if (path[i])
        memcpy(s.text + i, "...", 4);
    else
        s.text[i] = '\0';
    return s;
}

/* True the first time (reason, path) is noted since it was last forgotten. */
static uint64_t note_key(const logtail_t *self, size_t spec, enum reason reason, const char *path)
{
    return hash_bytes(self->seed ^ (((uint64_t)spec << 8) | ((uint64_t)reason + 1)), path);
}

static bool note(logtail_t *self, size_t spec, enum reason reason, const char *path)
{
    uint64_t h = note_key(self, spec, reason, path);
    for (size_t i = 0; i < self->nnotes; i++) {
        if (self->notes[i] == h)
            return false;
    }
    if (self->nnotes < NOTES_MAX) {
        self->notes[self->nnotes++] = h;
    } else {
        self->notes[self->next_note] = h; /* full: forget the oldest-placed note */
        self->next_note = (self->next_note + 1) % NOTES_MAX;
    }
    return true;
}

static void forget(logtail_t *self, size_t spec, enum reason reason, const char *path)
{
    uint64_t h = note_key(self, spec, reason, path);
    for (size_t i = 0; i < self->nnotes; i++) {
        if (self->notes[i] == h) {
            self->notes[i] = self->notes[--self->nnotes];
            if (self->next_note >= self->nnotes)
                self->next_note = 0;
            return;
        }
    }
}

/* Counts a refused path once per episode, with one log line. */
static void refuse_path(logtail_t *self, size_t spec, enum reason reason, const char *path,
                        const char *why)
{
    if (!note(self, spec, reason, path))
        return;
    self->states[spec].errors[reason]++;
    vg_log(VG_LOG_WARN, "logs: file=%s path=%s refused (%s): %s", self->specs[spec].name,
           shown(path).text, reason_names[reason], why);
}

/* ---- Offsets file ----------------------------------------------------------------------- */

/* Bytes outside printable ASCII, spaces and '%' as %XX: one record per line, whatever the path. */
static void put_escaped(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= ' ' || *p >= 0x7f || *p == '%')
            fprintf(f, "%%%02X", *p);
        else
            fputc(*p, f);
    }
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decodes a %XX-escaped token in place; false for a bad escape or an encoded NUL. */
static bool unescape(char *s)
{
    char *out = s;
    for (const char *p = s; *p; p++) {
        if (*p != '%') {
            *out++ = *p;
            continue;
        }
        int hi = hex_value(p[1]), lo = hi < 0 ? -1 : hex_value(p[2]);
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
            return false;
        *out++ = (char)(hi * 16 + lo);
        p += 2;
    }
    *out = '\0';
    return true;
}

static bool parse_uint(const char *s, uintmax_t *ret)
{
    char *end;
    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    uintmax_t v = strtoumax(s, &end, 10);
    if (errno || *end)
        return false;
    *ret = v;
    return true;
}

/* One record "SPEC DEV INO OFFSET PATH" (line NUL-terminated, modified in place). */
static bool parse_saved(char *line, struct saved *ret)
{
    char *fields[5];
    char *save = NULL;
    uintmax_t off;
    size_t n = 0;

    for (char *tok = strtok_r(line, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        if (n == 5)
            return false;
        fields[n++] = tok;
    }
    if (n != 5 || !unescape(fields[0]) || !unescape(fields[4]) ||
        !parse_uint(fields[1], &ret->dev) || !parse_uint(fields[2], &ret->ino) ||
        !parse_uint(fields[3], &off) || off > INT64_MAX)
        return false;
    ret->offset = off;
    ret->spec = strdup(fields[0]);
    ret->path = strdup(fields[4]);
    if (!ret->spec || !ret->path) {
        free(ret->spec);
        free(ret->path);
        return false;
    }
    return true;
}

static void load_offsets(logtail_t *self)
{
    char *text = NULL;
    size_t len = 0, bad = 0;
    int fd = open(self->offsets_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno != ENOENT)
            vg_log(VG_LOG_WARN, "logs: cannot read saved offsets %s: %s; files start at their end",
                   self->offsets_path, strerror(errno));
        return;
    }
    text = malloc(OFFSETS_FILE_MAX + 1);
    if (!text)
        goto out;
    while (len < OFFSETS_FILE_MAX) {
        ssize_t n = read(fd, text + len, OFFSETS_FILE_MAX - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            vg_log(VG_LOG_WARN, "logs: cannot read saved offsets %s: %s", self->offsets_path,
                   strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    text[len] = '\0';

    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (!next) {
            bad++; /* no newline: cut off (the file is written whole, so damaged) */
            break;
        }
        *next++ = '\0';
        if (line[0] == '#' || line[0] == '\0')
            continue;
        if (self->nsaved >= LOGTAIL_FILES_MAX) {
            bad++;
            continue;
        }
        struct saved s = {0};
        if (!parse_saved(line, &s)) {
            bad++;
            continue;
        }
        self->saved[self->nsaved++] = s;
    }
    if (bad)
        vg_log(VG_LOG_WARN, "logs: %zu damaged records in saved offsets %s ignored", bad,
               self->offsets_path);
out:
    free(text);
    close(fd);
}

static void free_saved(logtail_t *self)
{
    for (size_t i = 0; i < self->nsaved; i++) {
        free(self->saved[i].spec);
        free(self->saved[i].path);
    }
    free(self->saved);
    self->saved = NULL;
    self->nsaved = 0;
}

static int write_offsets(const logtail_t *self, const char *tmp)
{
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -errno;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        int r = -errno;
        close(fd);
        return r;
    }
    fputs("# vigil-agent log offsets: file dev inode offset path\n", f);
    for (size_t i = 0; i < self->nfiles; i++) {
        const struct followed *t = self->files[i];
        if (t->done)
            continue;
        put_escaped(f, self->specs[t->spec].name);
        fprintf(f, " %ju %ju %" PRIu64 " ", (uintmax_t)t->dev, (uintmax_t)t->ino, t->line_off);
        put_escaped(f, t->path);
        fputc('\n', f);
    }
    int r = 0;
    if (fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0)
        r = errno ? -errno : -EIO;
    if (fclose(f) != 0 && r == 0)
        r = -errno;
    return r;
}

/* Temporary file, fsync, rename: a crash leaves the old offsets or the new ones, whole.
 * Written at most every OFFSETS_SAVE_INTERVAL_S (an fsync every second costs more CPU than
 * reading the logs; a crash then re-counts at most that many seconds of lines) and at exit.
 * ctx may be NULL (at exit). */
static void save_offsets(logtail_t *self, struct collect_ctx *ctx, int64_t now_s)
{
    char tmp[PATH_MAX];
    if (!self->offsets_path || !self->offsets_dirty)
        return;
    if (self->offsets_saved_s && now_s - self->offsets_saved_s < OFFSETS_SAVE_INTERVAL_S)
        return;
    self->offsets_saved_s = now_s;
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp", self->offsets_path);
    int r = n < 0 || (size_t)n >= sizeof(tmp) ? -ENAMETOOLONG : write_offsets(self, tmp);
    if (r == 0 && rename(tmp, self->offsets_path) != 0)
        r = -errno;
    if (r < 0) {
        unlink(tmp);
        if (ctx)
            ctx->errors++;
        if (!self->save_failed)
            vg_log(VG_LOG_WARN,
                   "logs: cannot save offsets to %s: %s; a restart may re-read or skip lines",
                   self->offsets_path, strerror(-r));
        self->save_failed = true;
        return;
    }
    if (self->save_failed)
        vg_log(VG_LOG_INFO, "logs: offsets saved to %s again", self->offsets_path);
    self->save_failed = false;
    self->offsets_dirty = false;
}

/* ---- Lifecycle -------------------------------------------------------------------------- */

static int parse_format(const char *text, enum format *ret)
{
    if (!text || !*text || strcmp(text, "plain") == 0)
        *ret = FORMAT_PLAIN;
    else if (strcmp(text, "access") == 0)
        *ret = FORMAT_ACCESS;
    else if (strcmp(text, "auth") == 0)
        *ret = FORMAT_AUTH;
    else
        return -EINVAL;
    return 0;
}

static int check_options(const struct logtail_options *opt, logtail_t *self, char *err,
                         size_t errlen)
{
    int64_t window = opt && opt->window_ms ? opt->window_ms : WINDOW_DEFAULT_MS;
    int64_t line = opt && opt->max_line_bytes ? opt->max_line_bytes : LOGPARSE_LINE_CAP_DEFAULT;
    int64_t read = opt && opt->max_read_per_run ? opt->max_read_per_run : MAX_READ_DEFAULT;

    if (window < 1000 || window > (int64_t)LOGPARSE_WINDOW_SECONDS_MAX * 1000) {
        vg_set_err(err, errlen, "logs: window must be between 1s and 1h (got %" PRId64 "ms)",
                   window);
        return -EINVAL;
    }
    if (line < 1 || line > (int64_t)LOGPARSE_LINE_CAP_MAX) {
        vg_set_err(err, errlen,
                   "logs: max line length must be between 1 byte and 64MiB (got %" PRId64 ")",
                   line);
        return -EINVAL;
    }
    if (read < MAX_READ_MIN || read > INT32_MAX) {
        vg_set_err(err, errlen,
                   "logs: read per run must be between 64KiB and 2GiB (got %" PRId64 ")", read);
        return -EINVAL;
    }
    self->window_s = (unsigned)(window / 1000);
    self->max_line = (size_t)line;
    self->max_read = (size_t)read;
    return 0;
}

static int init_spec(logtail_t *self, size_t i, const struct logtail_file_config *c, char *err,
                     size_t errlen)
{
    struct spec *s = &self->specs[i];
    struct spec_state *st = &self->states[i];
    char why[256];

    if (!c->name || !*c->name || strlen(c->name) > NAME_MAX_LEN) {
        vg_set_err(err, errlen, "log file %zu: name must be 1 to %d characters", i + 1,
                   NAME_MAX_LEN);
        return -EINVAL;
    }
    for (size_t j = 0; j < i; j++) {
        if (strcmp(self->specs[j].name, c->name) == 0) {
            vg_set_err(err, errlen, "log file \"%s\": the name is used twice", c->name);
            return -EINVAL;
        }
    }
    bool pods =
        (c->namespace && *c->namespace) || (c->pod && *c->pod) || (c->container && *c->container);
    if (pods && ((c->path && *c->path) || !c->namespace || !*c->namespace)) {
        vg_set_err(err, errlen,
                   "log file \"%s\": give either path, or namespace (with pod and container "
                   "patterns if you like), not both",
                   c->name);
        return -EINVAL;
    }
    if (!pods && (!c->path || c->path[0] != '/' || strlen(c->path) >= PATH_MAX)) {
        vg_set_err(err, errlen,
                   "log file \"%s\": path must be an absolute path or glob (got \"%s\")", c->name,
                   c->path ? c->path : "");
        return -EINVAL;
    }
    if (parse_format(c->format, &s->format) < 0) {
        vg_set_err(err, errlen,
                   "log file \"%s\": format must be plain, access or auth (got \"%s\")", c->name,
                   c->format);
        return -EINVAL;
    }
    if (c->patterns.count > LOGPARSE_PATTERNS_MAX) {
        vg_set_err(err, errlen, "log file \"%s\": at most %d patterns", c->name,
                   LOGPARSE_PATTERNS_MAX);
        return -EINVAL;
    }
    s->name = strdup(c->name);
    s->pods = pods;
    if (pods) {
        s->pod_namespace = strdup(c->namespace);
        s->pod_name = strdup(c->pod && *c->pod ? c->pod : "*");
        s->pod_container = strdup(c->container && *c->container ? c->container : "*");
        if (!s->pod_namespace || !s->pod_name || !s->pod_container)
            goto err_nomem;
    } else {
        s->path = strdup(c->path);
        s->is_glob = is_glob(c->path);
        if (!s->path)
            goto err_nomem;
    }
    s->pattern_names = calloc(c->patterns.count + 1, sizeof(char *));
    st->patterns = logparse_patterns_new();
    st->counts = logparse_window_new(self->window_s, WINDOW_KEYS);
    if (!s->name || !s->pattern_names || !st->patterns || !st->counts)
        goto err_nomem;
    for (size_t j = 0; j < c->patterns.count; j++) {
        const struct logtail_pattern_config *p =
            VG_CFG_ITEM(c->patterns, const struct logtail_pattern_config, j);
        int r = logparse_patterns_add(st->patterns, p->name, p->regex, why, sizeof(why));
        if (r < 0) {
            vg_set_err(err, errlen, "log file \"%s\": pattern \"%s\": %s", c->name,
                       p->name ? p->name : "", r == -ENOMEM ? "out of memory" : why);
            return r;
        }
        s->pattern_names[j] = strdup(p->name);
        if (!s->pattern_names[j])
            goto err_nomem;
        s->npatterns++;
    }
    if (s->format == FORMAT_AUTH) {
        st->logins = logparse_window_new(self->window_s, LOGIN_SOURCES);
        st->kinds = calloc(LOGIN_KIND_SLOTS, sizeof(*st->kinds));
        if (!st->logins || !st->kinds)
            goto err_nomem;
    }
    return 0;

err_nomem:
    vg_set_err(err, errlen, "log file \"%s\": out of memory", c->name);
    return -ENOMEM;
}

logtail_t *logtail_new(const struct logtail_file_config *files, size_t nfiles,
                       const struct logtail_options *opt, const char *offsets_path, char *err,
                       size_t errlen)
{
    if (nfiles > LOGTAIL_CONFIGS_MAX || (nfiles && !files)) {
        vg_set_err(err, errlen, "logs: at most %d files may be configured", LOGTAIL_CONFIGS_MAX);
        return NULL;
    }
    logtail_t *self = calloc(1, sizeof(*self));
    if (!self) {
        vg_set_err(err, errlen, "logs: out of memory");
        return NULL;
    }
    if (check_options(opt, self, err, errlen) < 0)
        goto err_free;
    self->specs = calloc(nfiles + 1, sizeof(*self->specs));
    self->states = calloc(nfiles + 1, sizeof(*self->states));
    self->files = calloc(LOGTAIL_FILES_MAX, sizeof(struct followed *));
    self->saved = calloc(LOGTAIL_FILES_MAX, sizeof(*self->saved));
    self->buf = malloc(READ_CHUNK);
    if (!self->specs || !self->states || !self->files || !self->saved || !self->buf) {
        vg_set_err(err, errlen, "logs: out of memory");
        goto err_free;
    }
    for (size_t i = 0; i < nfiles; i++) {
        self->nspecs = i + 1; /* so destroy frees a half-built spec */
        if (init_spec(self, i, &files[i], err, errlen) < 0)
            goto err_free;
    }
    self->pods_dir =
        strdup(opt && opt->pods_dir && *opt->pods_dir ? opt->pods_dir : PODMAP_POD_LOGS_DIR);
    if (!self->pods_dir) {
        vg_set_err(err, errlen, "logs: out of memory");
        goto err_free;
    }
    self->nspecs = nfiles;
    if (getrandom(&self->seed, sizeof(self->seed), GRND_NONBLOCK) != (ssize_t)sizeof(self->seed))
        self->seed = (uint64_t)(uintptr_t)self ^ (uint64_t)getpid();
    if (offsets_path && *offsets_path) {
        self->offsets_path = strdup(offsets_path);
        if (!self->offsets_path) {
            vg_set_err(err, errlen, "logs: out of memory");
            goto err_free;
        }
        load_offsets(self);
    }
    return self;

err_free:
    logtail_destroy(&self);
    return NULL;
}

static void followed_free(struct followed **f_p)
{
    struct followed *f = *f_p;
    if (!f)
        return;
    if (f->fd >= 0)
        close(f->fd);
    logparse_lines_destroy(&f->lines);
    crilog_joiner_free(&f->cri);
    free(f->path);
    free(f->renamed_from);
    free(f);
    *f_p = NULL;
}

void logtail_destroy(logtail_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    logtail_t *self = *self_p;
    save_offsets(self, NULL, INT64_MAX); /* what was read last is not read again */
    for (size_t i = 0; i < self->nspecs; i++) {
        struct spec *s = &self->specs[i];
        struct spec_state *st = &self->states[i];
        for (size_t j = 0; s->pattern_names && s->pattern_names[j]; j++)
            free(s->pattern_names[j]);
        free(s->pattern_names);
        free(s->name);
        free(s->path);
        free(s->pod_namespace);
        free(s->pod_name);
        free(s->pod_container);
        logparse_patterns_destroy(&st->patterns);
        logparse_window_destroy(&st->counts);
        logparse_window_destroy(&st->logins);
        free(st->kinds);
    }
    for (size_t i = 0; i < self->nfiles; i++)
        followed_free(&self->files[i]);
    free(self->files);
    free_saved(self);
    free(self->specs);
    free(self->states);
    free(self->offsets_path);
    free(self->pods_dir);
    free(self->buf);
    free(self);
    *self_p = NULL;
}

/* ---- Finding files ---------------------------------------------------------------------- */

static struct followed *find_by_inode(const logtail_t *self, size_t spec, dev_t dev, ino_t ino)
{
    for (size_t i = 0; i < self->nfiles; i++) {
        struct followed *f = self->files[i];
        if (f->spec == spec && f->dev == dev && f->ino == ino && !f->done)
            return f;
    }
    return NULL;
}

static void start_draining(logtail_t *self, struct followed *f)
{
    if (f->draining)
        return;
    f->draining = true;
    f->drain_since_ms = self->clock_ms;
}

/* The byte before off is not a newline: reading from off starts mid-line. */
static bool starts_mid_line(const char *path, uint64_t off)
{
    char c;
    if (off == 0)
        return false;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = pread(fd, &c, 1, (off_t)off - 1);
    close(fd);
    return n == 1 && c != '\n';
}

/* Where a file found by the first run starts: saved offset, 0 after a rotation while the agent
 * was down, else its end. */
static uint64_t start_offset(logtail_t *self, size_t spec, const char *path, const struct stat *st,
                             bool *ret_skip_partial)
{
    const char *name = self->specs[spec].name;
    bool path_known = false;

    *ret_skip_partial = false;
    for (size_t i = 0; i < self->nsaved; i++) {
        const struct saved *s = &self->saved[i];
        if (strcmp(s->spec, name) != 0)
            continue;
        if (s->dev == (uintmax_t)st->st_dev && s->ino == (uintmax_t)st->st_ino) {
            if (s->offset <= (uint64_t)st->st_size)
                return s->offset;
            self->states[spec].truncations++; /* truncated while the agent was down */
            vg_log(VG_LOG_INFO,
                   "logs: file=%s path=%s truncated while the agent was stopped; "
                   "reading from the start",
                   name, shown(path).text);
            return 0;
        }
        path_known |= strcmp(s->path, path) == 0;
    }
    if (path_known) {
        self->states[spec].rotations++;
        vg_log(VG_LOG_INFO,
               "logs: file=%s path=%s rotated while the agent was stopped; "
               "reading the new file from the start",
               name, shown(path).text);
        return 0;
    }
    *ret_skip_partial = starts_mid_line(path, (uint64_t)st->st_size);
    return (uint64_t)st->st_size;
}

static void add_file(logtail_t *self, size_t spec, const char *path, const struct stat *st)
{
    struct spec_state *state = &self->states[spec];

    if (self->nfiles >= LOGTAIL_FILES_MAX) {
        state->overflow = true;
        if (!state->too_many_noted) {
            state->errors[R_TOO_MANY]++;
            vg_log(VG_LOG_WARN,
                   "logs: file=%s path=%s not followed: %d files are followed "
                   "already",
                   self->specs[spec].name, shown(path).text, LOGTAIL_FILES_MAX);
        }
        state->too_many_noted = true;
        return;
    }
    struct followed *f = calloc(1, sizeof(*f));
    if (!f)
        return;
    f->fd = -1;
    f->spec = spec;
    f->dev = st->st_dev;
    f->ino = st->st_ino;
    f->seen = true;
    f->path = strdup(path);
    f->lines = logparse_lines_new(self->max_line);
    (void)crilog_joiner_init(&f->cri, self->max_line); /* max_line is within its bounds */
    if (!f->path || !f->lines) {
        followed_free(&f);
        return;
    }
    if (!self->started) {
        f->read_off = start_offset(self, spec, path, st, &f->skip_partial);
        f->line_off = f->read_off;
    }
    self->files[self->nfiles++] = f;
    self->offsets_dirty = true;
    vg_log(VG_LOG_DEBUG, "logs: file=%s path=%s followed from offset %" PRIu64,
           self->specs[spec].name, shown(path).text, f->read_off);
}

/* A path of a spec's expansion, checked: a regular file to follow (true), or refused. */
static bool candidate(logtail_t *self, size_t spec, const char *path, struct stat *st)
{
    if (lstat(path, st) != 0) {
        if (errno != ENOENT && errno != ENOTDIR)
            refuse_path(self, spec, R_UNREADABLE, path, strerror(errno));
        return false; /* ENOENT: gone between the listing and the lstat */
    }
    if (S_ISLNK(st->st_mode)) {
        refuse_path(self, spec, R_SYMLINK, path, "a symbolic link (not followed)");
        return false;
    }
    forget(self, spec, R_SYMLINK, path);
    if (!S_ISREG(st->st_mode)) {
        refuse_path(self, spec, R_UNREADABLE, path, "not a regular file");
        return false;
    }
    return true;
}

/* Pass 1: a file already followed, maybe under another name now (renamed within the glob). */
static bool match_known(logtail_t *self, size_t spec, const char *path, const struct stat *st)
{
    struct followed *f = find_by_inode(self, spec, st->st_dev, st->st_ino);
    if (!f)
        return false;
    f->seen = true;
    f->draining = false; /* matched again (renamed back, or to another matching name) */
    if (strcmp(f->path, path) != 0) {
        char *copy = strdup(path);
        if (copy) {
            free(f->renamed_from);
            f->renamed_from = f->path;
            f->path = copy;
            self->offsets_dirty = true;
        }
    }
    return true;
}

/* Pass 2: a file not followed yet. If its path named another file before, that is a rotation
 * (rename, or delete and create): the old file, if not matched elsewhere, drains. */
static void match_new(logtail_t *self, size_t spec, const char *path, const struct stat *st)
{
    bool rotated = false;
    for (size_t i = 0; i < self->nfiles; i++) {
        struct followed *f = self->files[i];
        if (f->spec != spec || f->done)
            continue;
        if (!f->seen && !f->draining && strcmp(f->path, path) == 0) {
            start_draining(self, f);
            rotated = true;
        } else if (f->renamed_from && strcmp(f->renamed_from, path) == 0) {
            rotated = true;
        }
    }
    if (rotated) {
        self->states[spec].rotations++;
        vg_log(VG_LOG_INFO,
               "logs: file=%s path=%s rotated; the old file is finished, the new one "
               "read from the start",
               self->specs[spec].name, shown(path).text);
    }
    add_file(self, spec, path, st);
}

/* ---- Pods' files under pods_dir ----------------------------------------------------------- */

struct path_list {
    char **v;
    size_t n, cap;
};

static void path_list_free(struct path_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static int path_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "0.log", "12.log": the container's current and earlier runs. "0.log.20240501-120000" (a
 * rotated file) and "0.log.gz" are not: a rotated file leaves the list and drains. */
static bool restart_log_name(const char *name)
{
    size_t i = 0;
    while (name[i] >= '0' && name[i] <= '9' && i < 9)
        i++;
    return i > 0 && strcmp(name + i, ".log") == 0;
}

/* An entry of a directory opened with O_NOFOLLOW: a directory, not a link to one. */
static DIR *open_subdir(int dir_fd, const char *name)
{
    int fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d && fd >= 0)
        close(fd);
    return d;
}

/* Adds dir/a/b/c to l; false when the list is full (LOGTAIL_FILES_MAX + 1: the overflow shows)
 * or memory ran out. */
static bool path_list_add(struct path_list *l, const char *dir, const char *a, const char *b,
                          const char *c)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/%s/%s/%s", dir, a, b, c);
    if (n < 0 || (size_t)n >= sizeof(path))
        return true; /* cannot be a real path: skipped */
    if (l->n == l->cap) {
        if (l->cap > LOGTAIL_FILES_MAX)
            return false;
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **more = realloc(l->v, cap * sizeof(*more));
        if (!more)
            return false;
        l->v = more;
        l->cap = cap;
    }
    if (!(l->v[l->n] = strdup(path)))
        return false;
    l->n++;
    return true;
}

/* What one listing of pods_dir needs. counter: the collector, which counts and logs refused
 * names; NULL for the evidence thread, which must not touch the collector's state. */
struct pod_listing {
    const char *pods_dir;
    const struct spec *s;
    logtail_t *counter;
    size_t spec;
    size_t refused; /* this listing: past BAD_NAMES_NOTED, names are skipped unnoted */
};

/* Bad names noted per listing: thousands of stray directories would otherwise cycle through
 * the notes and be logged again every run. */
#define BAD_NAMES_NOTED 16

static void refuse_name(struct pod_listing *p, const char *a, const char *b, const char *why)
{
    char where[PATH_MAX];
    if (!p->counter || p->refused++ >= BAD_NAMES_NOTED)
        return;
    snprintf(where, sizeof(where), "%s/%s%s%s", p->pods_dir, a, b ? "/" : "", b ? b : "");
    refuse_path(p->counter, p->spec, R_BAD_NAME, where, why);
}

/* The N.log files of one pod's matching containers. */
static bool list_pod(struct pod_listing *p, int pods_fd, const char *pod_dir,
                     struct path_list *l)
{
    const struct spec *s = p->s;
    DIR *pod = open_subdir(pods_fd, pod_dir);
    if (!pod)
        return true; /* gone since the listing, or not a directory */
    bool room = true;
    struct dirent *c;
    while (room && (c = readdir(pod)) != NULL) {
        if (strcmp(c->d_name, ".") == 0 || strcmp(c->d_name, "..") == 0)
            continue;
        if (!podmap_container_name_valid(c->d_name)) {
            refuse_name(p, pod_dir, c->d_name, "not a container's name");
            continue;
        }
        if (fnmatch(s->pod_container, c->d_name, 0) != 0)
            continue;
        DIR *container = open_subdir(dirfd(pod), c->d_name);
        if (!container)
            continue;
        struct dirent *f;
        while (room && (f = readdir(container)) != NULL) {
            if (restart_log_name(f->d_name))
                room = path_list_add(l, p->pods_dir, pod_dir, c->d_name, f->d_name);
        }
        closedir(container);
    }
    closedir(pod);
    return room;
}

/* Every file a pods spec follows, in name order, like a glob's matches. */
static void list_pod_files(struct pod_listing *p, struct path_list *l)
{
    const struct spec *s = p->s;
    DIR *pods = opendir(p->pods_dir);
    if (!pods) {
        if (errno != ENOENT && p->counter)
            refuse_path(p->counter, p->spec, R_UNREADABLE, p->pods_dir, strerror(errno));
        return; /* no pods on this node (yet): nothing to follow */
    }
    if (p->counter)
        forget(p->counter, p->spec, R_UNREADABLE, p->pods_dir);
    bool room = true;
    struct dirent *de;
    while (room && (de = readdir(pods)) != NULL) {
        struct pod_identity id;
        if (de->d_name[0] == '.')
            continue;
        if (podmap_parse_pod_dir(de->d_name, &id) < 0) {
            refuse_name(p, de->d_name, NULL, "not <namespace>_<pod>_<uid>");
            continue;
        }
        if (fnmatch(s->pod_namespace, id.namespace, 0) == 0 && fnmatch(s->pod_name, id.pod, 0) == 0)
            room = list_pod(p, dirfd(pods), de->d_name, l);
    }
    closedir(pods);
    if (l->n > 1)
        qsort(l->v, l->n, sizeof(*l->v), path_cmp);
}

static void expand(logtail_t *self, size_t spec)
{
    const struct spec *s = &self->specs[spec];
    char *single[1] = {s->path};
    char **paths = single;
    size_t n = 1;
    glob_t g = {0};
    struct path_list pod_files = {0};

    if (s->pods) {
        struct pod_listing listing = {self->pods_dir, s, self, spec, 0};
        list_pod_files(&listing, &pod_files);
        paths = pod_files.v;
        n = pod_files.n;
    } else if (s->is_glob) {
        int r = glob(s->path, 0, NULL, &g);
        if (r != 0 && r != GLOB_NOMATCH)
            vg_log(VG_LOG_DEBUG, "logs: file=%s glob %s failed (%d)", s->name, s->path, r);
        paths = g.gl_pathv;
        n = r == 0 ? g.gl_pathc : 0;
    }
    if (n > LOGTAIL_FILES_MAX) {
        self->states[spec].overflow = true;
        if (!self->states[spec].too_many_noted) {
            self->states[spec].errors[R_TOO_MANY]++;
            vg_log(VG_LOG_WARN, "logs: file=%s %s matches %zu files; the first %d are followed",
                   s->name, s->path, n, LOGTAIL_FILES_MAX);
        }
        self->states[spec].too_many_noted = true;
        n = LOGTAIL_FILES_MAX;
    }
    struct stat *st = calloc(n ? n : 1, sizeof(*st));
    bool *todo = calloc(n ? n : 1, sizeof(*todo));
    if (st && todo) {
        for (size_t i = 0; i < n; i++)
            todo[i] = candidate(self, spec, paths[i], &st[i]) &&
                      !match_known(self, spec, paths[i], &st[i]);
        for (size_t i = 0; i < n; i++) {
            if (todo[i])
                match_new(self, spec, paths[i], &st[i]);
        }
    }
    free(st);
    free(todo);
    if (s->is_glob)
        globfree(&g);
    path_list_free(&pod_files);
    for (size_t i = 0; i < self->nfiles; i++) {
        free(self->files[i]->renamed_from);
        self->files[i]->renamed_from = NULL;
    }
}

/* ---- Reading ---------------------------------------------------------------------------- */

struct reading {
    logtail_t *self;
    struct followed *f;
    int64_t now_s;
};

static void count_key(logparse_window_t *w, const char *key, int64_t now_s)
{
    (void)logparse_window_add(w, key, now_s); /* -ERANGE cannot happen: time never goes back */
}

struct match_ctx {
    const struct reading *r;
    const struct spec *spec;
    logparse_window_t *counts;
};

static void count_match(const char *name, void *userdata)
{
    const struct match_ctx *m = userdata;
    char key[24];
    for (size_t i = 0; i < m->spec->npatterns; i++) {
        if (strcmp(m->spec->pattern_names[i], name) == 0) {
            snprintf(key, sizeof(key), "p%zu", i);
            count_key(m->counts, key, m->r->now_s);
            return;
        }
    }
}

static void count_access(struct spec_state *st, const char *line, size_t len, int64_t now_s)
{
    struct logparse_access a;
    if (logparse_access(line, len, &a) < 0)
        return;
    int cls = logparse_status_class(a.status);
    count_key(st->counts, "req", now_s);
    if (cls >= 1 && cls <= 5) {
        char key[4] = "c0";
        key[1] = (char)('0' + cls);
        count_key(st->counts, key, now_s);
    }
    if (a.status == 401 || a.status == 403)
        count_key(st->counts, "denied", now_s);
}

/* One count per attempt: see logparse_failed_login_kind. */
static void count_login(const logtail_t *self, struct spec_state *st, const char *line, size_t len,
                        int64_t now_s)
{
    char addr[LOGPARSE_ADDR_MAX];
    enum logparse_login_kind kind;
    if (!logparse_failed_login_kind(line, len, addr, sizeof(addr), NULL, 0, &kind))
        return;
    struct login_kind *slot = &st->kinds[hash_bytes(self->seed, addr) % LOGIN_KIND_SLOTS];
    if (slot->kind == 0 || strcmp(slot->addr, addr) != 0) {
        memcpy(slot->addr, addr, sizeof(addr));
        slot->kind = (uint8_t)kind;
    } else if ((uint8_t)kind > slot->kind) {
        slot->kind = (uint8_t)kind; /* the attempt was counted by its first line */
        return;
    } else if ((uint8_t)kind < slot->kind) {
        return; /* a lesser line of an attempt counted by its "Failed password" */
    }
    count_key(st->logins, addr, now_s);
}

/* One line as the rules see it: a file's line, or a pod log's message (CRI decoded, joined). */
static void on_message(const char *line, size_t len, bool truncated, void *userdata)
{
    const struct reading *r = userdata;
    logtail_t *self = r->self;
    struct followed *f = r->f;
    const struct spec *spec = &self->specs[f->spec];
    struct spec_state *st = &self->states[f->spec];

    if (memchr(line, '\0', len)) {
        st->errors[R_BINARY]++;
        if (!f->logged_binary)
            vg_log(VG_LOG_WARN,
                   "logs: file=%s path=%s a line with NUL bytes near offset %" PRIu64
                   " skipped (binary data; later ones are counted in log.errors, not logged)",
                   spec->name, shown(f->path).text, f->read_off);
        f->logged_binary = true;
        return;
    }
    if (truncated) {
        st->errors[R_TOO_LONG]++;
        if (!f->logged_too_long)
            vg_log(VG_LOG_WARN,
                   "logs: file=%s path=%s a line over %zu bytes near offset %" PRIu64
                   ": its start is counted, the rest skipped (later ones are counted in "
                   "log.errors, not logged)",
                   spec->name, shown(f->path).text, self->max_line, f->read_off);
        f->logged_too_long = true;
    }
    count_key(st->counts, "lines", r->now_s);
    if (self->line_hook)
        self->line_hook(self->line_hook_data, spec->name, line, len);
    if (spec->npatterns) {
        struct match_ctx m = {.r = r, .spec = spec, .counts = st->counts};
        (void)logparse_patterns_match(st->patterns, line, len, count_match, &m);
    }
    if (spec->format == FORMAT_ACCESS)
        count_access(st, line, len, r->now_s);
    else if (spec->format == FORMAT_AUTH)
        count_login(self, st, line, len, r->now_s);
}

static void on_line(const char *line, size_t len, bool truncated, void *userdata)
{
    const struct reading *r = userdata;
    logtail_t *self = r->self;
    struct followed *f = r->f;
    const struct spec *spec = &self->specs[f->spec];

    if (f->skip_partial) {
        f->skip_partial = false; /* the rest of a line that was there before we started */
        return;
    }
    if (!spec->pods) {
        on_message(line, len, truncated, userdata);
        return;
    }
    /* A pod's log: the runtime's record around the line the container wrote. */
    struct crilog_record rec;
    if (crilog_parse(line, len, &rec) < 0) {
        self->states[f->spec].errors[R_NOT_CRI]++;
        if (!f->logged_not_cri)
            vg_log(VG_LOG_WARN,
                   "logs: file=%s path=%s a line that is not a CRI log record near offset %" PRIu64
                   " skipped (later ones are counted in log.errors, not logged)",
                   spec->name, shown(f->path).text, f->read_off);
        f->logged_not_cri = true;
        return;
    }
    if (crilog_joiner_add(&f->cri, &rec, truncated, on_message, userdata) == -ENOMEM)
        vg_log(VG_LOG_WARN, "logs: file=%s out of memory joining a partial line", spec->name);
}

static void mark_unreadable(logtail_t *self, struct followed *f, int err, const char *what)
{
    char why[128];
    snprintf(why, sizeof(why), "%s: %s", what, strerror(err));
    refuse_path(self, f->spec, R_UNREADABLE, f->path, why);
    f->unreadable = true;
}

/* Opens f's path and checks it is still the file found by the expansion. */
static int open_followed(logtail_t *self, struct followed *f)
{
    struct stat st;
    int fd = open(f->path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ELOOP)
            refuse_path(self, f->spec, R_SYMLINK, f->path, "replaced by a symbolic link");
        else if (e != ENOENT)
            mark_unreadable(self, f, e, "open");
        return -e;
    }
    if (fstat(fd, &st) != 0 || st.st_dev != f->dev || st.st_ino != f->ino || !S_ISREG(st.st_mode)) {
        close(fd); /* replaced between the expansion and the open: the next run sorts it out */
        return -ESTALE;
    }
    if (f->unreadable) {
        forget(self, f->spec, R_UNREADABLE, f->path);
        vg_log(VG_LOG_INFO, "logs: file=%s path=%s readable again", self->specs[f->spec].name,
               shown(f->path).text);
    }
    f->unreadable = false;
    f->fd = fd;
    return 0;
}

static void read_followed(logtail_t *self, struct followed *f, int64_t now_s)
{
    struct reading r = {.self = self, .f = f, .now_s = now_s};
    struct stat st;

    if (f->fd < 0 && open_followed(self, f) < 0) {
        if (f->draining)
            f->done = true; /* gone before it could be read again */
        return;
    }
    if (fstat(f->fd, &st) != 0) {
        mark_unreadable(self, f, errno, "fstat");
        return;
    }
    if ((uint64_t)st.st_size < f->read_off) {
        /* Truncated in place (copytruncate): whatever was pending belongs to the old content. */
        logparse_lines_flush(f->lines, NULL, NULL);
        crilog_joiner_flush(&f->cri, NULL, NULL);
        self->states[f->spec].truncations++;
        vg_log(VG_LOG_INFO,
               "logs: file=%s path=%s truncated (%jd < %" PRIu64 " bytes); reading from the start",
               self->specs[f->spec].name, shown(f->path).text, (intmax_t)st.st_size, f->read_off);
        f->read_off = f->line_off = 0;
        f->skip_partial = false;
        self->offsets_dirty = true;
    }

    size_t budget = self->max_read;
    bool at_eof = false;
    while (budget > 0) {
        size_t want = budget < READ_CHUNK ? budget : READ_CHUNK;
        ssize_t n = pread(f->fd, self->buf, want, (off_t)f->read_off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            mark_unreadable(self, f, errno, "read");
            if (f->draining)
                f->done = true; /* an old file that cannot be read any more is given up */
            return;
        }
        if (n == 0) {
            at_eof = true;
            break;
        }
        logparse_lines_feed(f->lines, self->buf, (size_t)n, on_line, &r);
        const char *nl = memrchr(self->buf, '\n', (size_t)n);
        if (nl) {
            f->line_off = f->read_off + (uint64_t)(nl - self->buf) + 1;
            self->offsets_dirty = true;
        }
        f->read_off += (uint64_t)n;
        budget -= (size_t)n;
        if ((size_t)n < want && !f->draining) {
            at_eof = true; /* short read of a regular file: its end for now */
            break;
        }
    }
    if (f->draining && at_eof && self->clock_ms - f->drain_since_ms >= ROTATE_WAIT_MS) {
        /* The old file is finished: its last line may lack the newline, and a container that
         * died mid-line leaves partial records without their end. */
        logparse_lines_flush(f->lines, on_line, &r);
        crilog_joiner_flush(&f->cri, on_message, &r);
        f->done = true;
        self->offsets_dirty = true;
    }
}

static void drop_done(logtail_t *self)
{
    size_t kept = 0;
    for (size_t i = 0; i < self->nfiles; i++) {
        if (self->files[i]->done)
            followed_free(&self->files[i]);
        else
            self->files[kept++] = self->files[i];
    }
    for (size_t i = kept; i < self->nfiles; i++)
        self->files[i] = NULL;
    self->nfiles = kept;
}

/* ---- Emitting --------------------------------------------------------------------------- */

/* The pod and container of a file under pods_dir/NS_POD_UID/C/. */
static bool pod_of_path(const char *pods_dir, const char *path, struct pod_identity *ret)
{
    size_t n = strlen(pods_dir);
    struct pod_identity id;
    char dir[NAME_MAX + 1], container[NAME_MAX + 1];
    if (strncmp(path, pods_dir, n) != 0 || path[n] != '/' ||
        sscanf(path + n + 1, "%255[^/]/%255[^/]/", dir, container) != 2 ||
        podmap_parse_pod_dir(dir, &id) < 0 || !podmap_container_name_valid(container))
        return false;
    memcpy(id.container, container, strlen(container) + 1); /* valid: at most 63 bytes */
    *ret = id;
    return true;
}

/* The files' directory: "pods_dir/NS_POD_UID/C" of ".../C/N.log". */
static size_t dir_len(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? (size_t)(slash - path) : 0;
}

/* log.pod{file,namespace,pod,container,pod_uid}: the files followed per container. */
static void emit_pods(const logtail_t *self, size_t spec, struct collect_ctx *ctx)
{
    for (size_t i = 0; i < self->nfiles; i++) {
        const struct followed *f = self->files[i];
        if (f->spec != spec || f->draining || f->done)
            continue;
        size_t len = dir_len(f->path);
        bool first = true;
        size_t files = 0;
        for (size_t j = 0; j < self->nfiles; j++) {
            const struct followed *g = self->files[j];
            if (g->spec != spec || g->draining || g->done || dir_len(g->path) != len ||
                memcmp(g->path, f->path, len) != 0)
                continue;
            first &= j >= i;
            files++;
        }
        struct pod_identity id;
        if (!first || !pod_of_path(self->pods_dir, f->path, &id))
            continue;
        const struct sig_label l[5] = {{"file", self->specs[spec].name},
                                       {"namespace", id.namespace},
                                       {"pod", id.pod},
                                       {"container", id.container},
                                       {"pod_uid", id.uid}};
        collect_emit(ctx, "log.pod", (double)files, "count", l, 5);
    }
}

static void emit_spec(const logtail_t *self, size_t i, struct collect_ctx *ctx, int64_t now_s)
{
    const struct spec *s = &self->specs[i];
    const struct spec_state *st = &self->states[i];
    struct sig_label l[2] = {{"file", s->name}, {NULL, NULL}};
    char key[24];

    collect_emit(ctx, "log.files", (double)st->followed, "count", l, 1);
    collect_emit(ctx, "log.lines", (double)logparse_window_count(st->counts, "lines", now_s),
                 "lines", l, 1);
    for (size_t p = 0; p < s->npatterns; p++) {
        snprintf(key, sizeof(key), "p%zu", p);
        double count = (double)logparse_window_count(st->counts, key, now_s);
        l[1] = (struct sig_label){"pattern", s->pattern_names[p]};
        collect_emit(ctx, "log.match_count", count, "lines", l, 2);
        collect_emit(ctx, "log.match_rate", count * 60.0 / self->window_s, "per_min", l, 2);
    }
    for (int r = 0; r < R_COUNT; r++) {
        l[1] = (struct sig_label){"reason", reason_names[r]};
        collect_emit(ctx, "log.errors", (double)st->errors[r], "count", l, 2);
    }
    collect_emit(ctx, "log.rotations", (double)st->rotations, "count", l, 1);
    collect_emit(ctx, "log.truncations", (double)st->truncations, "count", l, 1);
    if (s->pods)
        emit_pods(self, i, ctx);

    if (s->format == FORMAT_ACCESS) {
        static const char *const classes[] = {"2xx", "3xx", "4xx", "5xx"};
        uint64_t requests = logparse_window_count(st->counts, "req", now_s);
        uint64_t errors5 = logparse_window_count(st->counts, "c5", now_s);
        collect_emit(ctx, "log.http.requests", (double)requests, "requests", l, 1);
        for (int c = 0; c < 4; c++) {
            snprintf(key, sizeof(key), "c%d", c + 2);
            l[1] = (struct sig_label){"class", classes[c]};
            collect_emit(ctx, "log.http.status",
                         (double)logparse_window_count(st->counts, key, now_s), "requests", l, 2);
        }
        if (requests > 0)
            collect_emit(ctx, "log.error_rate_pct", (double)errors5 * 100.0 / (double)requests,
                         "percent", l, 1);
        collect_emit(ctx, "log.http.denied",
                     (double)logparse_window_count(st->counts, "denied", now_s), "requests", l, 1);
    } else if (s->format == FORMAT_AUTH) {
        struct logparse_window_entry top[LOGTAIL_TOP_SOURCES];
        collect_emit(ctx, "log.failed_logins", (double)logparse_window_total(st->logins, now_s),
                     "count", l, 1);
        size_t n = logparse_window_top(st->logins, now_s, top, LOGTAIL_TOP_SOURCES);
        for (size_t k = 0; k < n; k++) {
            l[1] = (struct sig_label){"source", top[k].key};
            collect_emit(ctx, "log.failed_logins", (double)top[k].count, "count", l, 2);
        }
    }
}

/* ---- One run ---------------------------------------------------------------------------- */

void logtail_run(logtail_t *self, struct collect_ctx *ctx)
{
    if (!self || !ctx)
        return;
    if (!self->started)
        self->last_wall_ms = ctx->now_ms;
    if (ctx->now_ms > self->last_wall_ms)
        self->clock_ms += ctx->now_ms - self->last_wall_ms;
    self->last_wall_ms = ctx->now_ms;
    int64_t now_s = self->clock_ms / 1000;

    for (size_t i = 0; i < self->nfiles; i++)
        self->files[i]->seen = false;
    for (size_t s = 0; s < self->nspecs; s++) {
        self->states[s].overflow = false;
        expand(self, s);
        if (!self->states[s].overflow)
            self->states[s].too_many_noted = false;
    }
    for (size_t i = 0; i < self->nfiles; i++) {
        if (!self->files[i]->seen)
            start_draining(self, self->files[i]); /* deleted, or renamed out of the glob */
    }
    /* The old file of a rotation first, so lines are counted in the order written. */
    for (size_t i = 0; i < self->nfiles; i++) {
        if (self->files[i]->draining)
            read_followed(self, self->files[i], now_s);
    }
    for (size_t i = 0; i < self->nfiles; i++) {
        if (!self->files[i]->draining)
            read_followed(self, self->files[i], now_s);
    }
    drop_done(self);

    for (size_t s = 0; s < self->nspecs; s++)
        self->states[s].followed = 0;
    for (size_t i = 0; i < self->nfiles; i++) {
        if (!self->files[i]->draining)
            self->states[self->files[i]->spec].followed++;
    }
    if (!self->started) {
        free_saved(self); /* only files found at start-up resume from saved offsets */
        self->started = true;
    }
    save_offsets(self, ctx, now_s);
    for (size_t s = 0; s < self->nspecs; s++)
        emit_spec(self, s, ctx, now_s);
}

/* ---- Evidence --------------------------------------------------------------------------- */

static int write_text(const struct artifact_writer *out, const char *text)
{
    return out->write(out->w, text, strlen(text));
}

/* Where the last `lines` lines within the last `bytes` bytes of [0, size) start. */
static int tail_start(int fd, off_t size, size_t lines, size_t bytes, char *buf, off_t *ret_start)
{
    off_t lo = size > (off_t)bytes ? size - (off_t)bytes : 0;
    off_t end = size;
    size_t found = 0;
    bool skip_last = true; /* the file's final newline ends the last line, it separates none */

    if (lines == 0) {
        *ret_start = lo;
        return 0;
    }
    while (end > lo) {
        size_t want = end - lo > READ_CHUNK ? READ_CHUNK : (size_t)(end - lo);
        off_t at = end - (off_t)want;
        ssize_t n = pread(fd, buf, want, at);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if ((size_t)n != want)
            return -EIO; /* shrank under us */
        for (size_t i = want; i-- > 0;) {
            if (buf[i] != '\n')
                continue;
            if (skip_last && at + (off_t)i == size - 1)
                continue;
            if (++found == lines) {
                *ret_start = at + (off_t)i + 1;
                return 0;
            }
        }
        skip_last = false;
        end = at;
    }
    *ret_start = lo;
    return 0;
}

/* " (namespace=NS pod=POD container=C)" for a file under pods_dir/NS_POD_UID/C/, else "". */
static void pod_note(const char *pods_dir, const char *path, char *buf, size_t cap)
{
    struct pod_identity id;
    buf[0] = '\0';
    if (pod_of_path(pods_dir, path, &id))
        snprintf(buf, cap, " (namespace=%s pod=%s container=%s)", id.namespace, id.pod,
                 id.container);
}

/* One file's tail. header: a glob's match, preceded by "==> PATH <==" and never fatal. note
 * follows PATH in the header ("" for none). */
static int tail_file(const char *path, bool header, const char *note, size_t lines, size_t bytes,
                     const struct artifact_writer *out, char *buf, char *err, size_t errlen)
{
    struct stat st;
    int r, fd = -1;
    const char *refusal = NULL;

    if (header) {
        if ((r = write_text(out, "==> ")) < 0 || (r = write_text(out, path)) < 0 ||
            (r = write_text(out, note)) < 0 || (r = write_text(out, " <==\n")) < 0)
            return r;
    }
    if (lstat(path, &st) != 0) {
        r = -errno;
        refusal = strerror(errno);
    } else if (S_ISLNK(st.st_mode)) {
        r = -ELOOP;
        refusal = "symlink";
    } else if (!S_ISREG(st.st_mode)) {
        r = -EINVAL;
        refusal = "not a regular file";
    } else if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) < 0) {
        r = -errno;
        refusal = errno == ELOOP ? "symlink" : strerror(errno);
    } else if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        r = -EINVAL;
        refusal = "not a regular file";
    }
    if (refusal) {
        if (fd >= 0)
            close(fd);
        if (!header) {
            vg_set_err(err, errlen, "%s: %s", path, refusal);
            return r;
        }
        if ((r = write_text(out, "(refused: ")) < 0 || (r = write_text(out, refusal)) < 0 ||
            (r = write_text(out, ")\n")) < 0)
            return r;
        return 0;
    }

    off_t size = st.st_size, at = 0;
    r = tail_start(fd, size, lines, bytes, buf, &at);
    char last = '\n';
    while (r == 0 && at < size) {
        size_t want = size - at > READ_CHUNK ? READ_CHUNK : (size_t)(size - at);
        ssize_t n = pread(fd, buf, want, at);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            r = n < 0 ? -errno : 0; /* shrank: what was there is sent */
            break;
        }
        r = out->write(out->w, buf, (size_t)n);
        last = buf[n - 1];
        at += n;
    }
    close(fd);
    if (r < 0) {
        vg_set_err(err, errlen, "%s: %s", path, strerror(-r));
        return r;
    }
    if (header && last != '\n')
        return write_text(out, "\n");
    return 0;
}

/* A glob's matches, each with its header; at most LOGTAIL_TAIL_FILES_MAX of them. pods_dir:
 * name the pod of each (NULL: plain files). */
static int tail_matches(char *const *paths, size_t count, const char *pods_dir, size_t lines,
                        size_t bytes, const struct artifact_writer *out, char *buf, char *err,
                        size_t errlen)
{
    size_t n = count;
    int r = 0;
    char which[PODMAP_NAMESPACE_MAX + PODMAP_POD_MAX + PODMAP_CONTAINER_MAX + 48] = "";
    if (n > LOGTAIL_TAIL_FILES_MAX)
        n = LOGTAIL_TAIL_FILES_MAX;
    for (size_t i = 0; i < n && r == 0; i++) {
        if (pods_dir)
            pod_note(pods_dir, paths[i], which, sizeof(which));
        r = tail_file(paths[i], true, which, lines, bytes, out, buf, err, errlen);
    }
    if (r == 0 && count > n) {
        char more[96];
        snprintf(more, sizeof(more), "==> %zu more files not shown <==\n", count - n);
        r = write_text(out, more);
    }
    return r;
}

int logtail_tail(const logtail_t *self, const char *name, size_t lines, size_t bytes,
                 const struct artifact_writer *out, char *err, size_t errlen)
{
    const struct spec *s = NULL;
    int r = 0;

    if (!self || !name || !out || !out->write) {
        vg_set_err(err, errlen, "log tail: bad arguments");
        return -EINVAL;
    }
    for (size_t i = 0; i < self->nspecs; i++) {
        if (strcmp(self->specs[i].name, name) == 0)
            s = &self->specs[i];
    }
    if (!s) {
        vg_set_err(err, errlen, "no log file named \"%s\" is configured", name);
        return -ENOENT;
    }
    if (bytes == 0 || bytes > LOGTAIL_TAIL_BYTES_MAX)
        bytes = LOGTAIL_TAIL_BYTES_MAX;
    char *buf = malloc(READ_CHUNK);
    if (!buf) {
        vg_set_err(err, errlen, "log tail: out of memory");
        return -ENOMEM;
    }
    if (s->pods) {
        struct pod_listing listing = {self->pods_dir, s, NULL, 0, 0};
        struct path_list files = {0};
        list_pod_files(&listing, &files);
        if (files.n == 0) {
            vg_set_err(err, errlen, "log file \"%s\": no pod's log under %s matches", name,
                       self->pods_dir);
            r = -ENOENT;
        } else {
            r = tail_matches(files.v, files.n, self->pods_dir, lines, bytes, out, buf, err, errlen);
        }
        path_list_free(&files);
        free(buf);
        return r;
    }
    if (!s->is_glob) {
        r = tail_file(s->path, false, "", lines, bytes, out, buf, err, errlen);
        if (r == -ENOENT)
            vg_set_err(err, errlen, "log file \"%s\": %s does not exist", name, s->path);
        free(buf);
        return r;
    }
    glob_t g;
    int gr = glob(s->path, 0, NULL, &g);
    if (gr == GLOB_NOMATCH) {
        vg_set_err(err, errlen, "log file \"%s\": nothing matches %s", name, s->path);
        r = -ENOENT;
    } else if (gr != 0) {
        vg_set_err(err, errlen, "log file \"%s\": cannot expand %s", name, s->path);
        r = gr == GLOB_NOSPACE ? -ENOMEM : -EIO;
    } else {
        r = tail_matches(g.gl_pathv, g.gl_pathc, NULL, lines, bytes, out, buf, err, errlen);
    }
    if (gr != GLOB_NOMATCH)
        globfree(&g);
    free(buf);
    return r;
}

/* ---- The collector interface (collect.h) ----------------------------------------------------- */

static void collector_run(void *self, struct collect_ctx *ctx)
{
    logtail_run(self, ctx);
}

static void collector_destroy(void **self_p)
{
    logtail_t *self = *self_p;
    logtail_destroy(&self);
    *self_p = NULL;
}

void logtail_set_line_hook(logtail_t *self, logtail_line_hook fn, void *userdata)
{
    self->line_hook = fn;
    self->line_hook_data = userdata;
}

struct collector logtail_collector(logtail_t **self_p, int64_t interval_ms)
{
    struct collector c = {
        .name = "logs",
        .interval_ms = interval_ms,
        .run = collector_run,
        .destroy = collector_destroy,
        .self = *self_p,
    };
    *self_p = NULL;
    return c;
}
