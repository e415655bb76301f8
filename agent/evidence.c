/*
 * Evidence on demand (see evidence.h).
 *
 * A request moves through three places, each with one owner:
 *   pending  (main thread -> worker, under the lock): accepted requests waiting to run;
 *   outbox   (worker or main -> main, under the lock): refusals, and captures that have a
 *            chunk to send or have finished, in the order they are to be sent;
 *   sending  (main thread only): the capture whose chunks are being appended to the spool.
 * A capture is written to an unlinked temporary file while its SHA-256 is computed, so the
 * agent never holds a large artifact in memory and the hash covers exactly the bytes sent.
 *
 * The sending overlaps the writing. The worker publishes, under the lock, how many bytes of
 * the file are written (`ready`), and wakes the main thread each time one more full chunk
 * lies behind the written end; the capture enters the outbox at its first such chunk (or when
 * it finishes, if it never has one). The main thread preads and spools every full chunk
 * followed by at least one more written byte, so the chunks are cut exactly as they would be
 * from the finished file and the last one is never empty unless the artifact is. That last
 * chunk, with total_size, sha256 and truncated, waits for `finished`; so does an error, which
 * then follows whatever chunks were already spooled as one chunk with no data and offset 0 (the
 * wire's rule for an error chunk). The result fields (size, sha256, truncated, error) are the
 * worker's until `finished` is set, and are read only after it. When the spool refuses a chunk,
 * the capture is `cancelled`: the worker's writes fail from its next chunk on.
 */
#include "evidence.h"

#include "digest.h"
#include "log.h"
#include "timeutil.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#define QUEUE_MAX 16      /* requests waiting for the worker */
#define CHUNKS_PER_POLL 8 /* spool appends per evidence_poll call */
#define ERROR_TEXT_MAX 512

struct capture {
    struct capture *next;
    uint64_t collection_id;
    char kind[VG_MAX_NAME_LEN + 1];
    struct evidence_args args;
    int64_t collected_at_ms; /* set before the capture enters the outbox */
    int fd;                  /* the artifact file, written by the worker; -1 for a refusal */
    /* result: the worker's until `finished` */
    uint64_t size;
    uint8_t sha256[VG_SHA256_LEN];
    bool truncated;
    char error[ERROR_TEXT_MAX]; /* non-empty: the capture failed or was refused */
    /* progress, under the lock */
    uint64_t ready; /* bytes of fd written, readable by the main thread */
    bool queued;    /* has entered the outbox */
    bool finished;  /* the worker is done with it: the result is final */
    bool cancelled; /* the main thread gave up on it: the worker stops writing */
    /* sending state (main thread) */
    uint64_t artifact; /* seq of the first chunk */
    uint64_t offset;   /* bytes spooled */
    bool dropped;      /* spooling failed: freed once finished, nothing more sent */
};

struct evidence {
    struct evidence_kind *kinds;
    size_t nkinds;
    struct evidence_options opt;
    char *work_dir;
    char *sender;
    int event_fd;

    pthread_t worker;
    bool worker_started;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
    struct capture *pending, *pending_tail; /* FIFO */
    size_t npending;
    struct capture *outbox, *outbox_tail; /* FIFO */
    struct evidence_stats stats;          /* under lock */

    struct capture *sending; /* main thread only */
    uint8_t *chunk_buf;      /* main thread only: chunk_bytes */
};

/* ---- arguments ---- */

const char *evidence_arg(const struct evidence_args *args, const char *key)
{
    for (size_t i = 0; i < args->count; i++)
        if (strcmp(args->key[i], key) == 0)
            return args->value[i];
    return NULL;
}

int evidence_args_check(const struct evidence_args *args, const char *const *allowed, char *err,
                        size_t errlen)
{
    for (size_t i = 0; i < args->count; i++) {
        char known[256] = "";
        bool ok = false;
        for (const char *const *a = allowed; a && *a; a++) {
            size_t used = strlen(known);
            ok = ok || strcmp(*a, args->key[i]) == 0;
            snprintf(known + used, sizeof(known) - used, "%s%s", used ? ", " : "", *a);
        }
        if (!ok) {
            snprintf(err, errlen, "unknown argument \"%s\" (%s)", args->key[i],
                     known[0] ? known : "this kind takes none");
            return -EINVAL;
        }
    }
    return 0;
}

/* ---- queues ---- */

static void push(struct capture **head, struct capture **tail, struct capture *c)
{
    c->next = NULL;
    if (*tail)
        (*tail)->next = c;
    else
        *head = c;
    *tail = c;
}

static struct capture *pop(struct capture **head, struct capture **tail)
{
    struct capture *c = *head;
    if (c) {
        *head = c->next;
        if (!*head)
            *tail = NULL;
        c->next = NULL;
    }
    return c;
}

static void capture_free(struct capture *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    free(c);
}

static void notify(struct evidence *self)
{
    uint64_t one = 1;
    ssize_t n = write(self->event_fd, &one, sizeof(one));
    (void)n; /* the counter saturating is harmless: the main loop drains everything */
}

/* Hands a finished capture (or refusal) to the main thread: the result is final, and the
 * capture is queued unless its chunks already are. The caller may not touch c after this: the
 * main thread can free it at once. Takes the lock. */
static void finish(struct evidence *self, struct capture *c)
{
    pthread_mutex_lock(&self->lock);
    c->finished = true;
    if (!c->queued) {
        c->queued = true;
        push(&self->outbox, &self->outbox_tail, c);
    }
    pthread_mutex_unlock(&self->lock);
    notify(self);
}

/* ---- the worker: capture into a hashed, size-capped temporary file ---- */

struct sink {
    struct evidence *self;
    struct capture *c;
    int fd;
    uint64_t size, max;
    uint64_t published; /* c->ready as last published */
    bool truncated;
    bool cancelled; /* the main thread gave up on this capture */
    struct vg_sha256 hash;
};

/* The chunks the main thread may send of a capture with `written` bytes so far: the full ones
 * with at least one more byte after them (the last chunk waits for the end). */
static uint64_t sendable_chunks(uint64_t written, uint64_t chunk_bytes)
{
    return written ? (written - 1) / chunk_bytes : 0;
}

/* Tells the main thread how far the file is written when that makes one more chunk sendable,
 * queueing the capture at its first; notices a cancellation. */
static void publish(struct sink *s)
{
    struct evidence *self = s->self;
    uint64_t chunk = self->opt.chunk_bytes;

    if (sendable_chunks(s->size, chunk) == sendable_chunks(s->published, chunk))
        return;
    pthread_mutex_lock(&self->lock);
    s->c->ready = s->size;
    s->cancelled = s->c->cancelled;
    if (!s->c->queued) {
        s->c->queued = true;
        push(&self->outbox, &self->outbox_tail, s->c);
    }
    pthread_mutex_unlock(&self->lock);
    s->published = s->size;
    notify(self);
}

static int sink_write(void *w, const void *data, size_t len)
{
    struct sink *s = w;
    const uint8_t *p = data;
    uint64_t room = s->max - s->size; /* size never passes max */
    size_t take = len;
    int r = 0;

    if (s->cancelled)
        return -ECANCELED;
    if (take > room) {
        take = (size_t)room;
        s->truncated = true;
        r = -EFBIG;
    }
    vg_sha256_update(&s->hash, p, take);
    s->size += take;
    while (take > 0) {
        ssize_t n = write(s->fd, p, take);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        take -= (size_t)n;
    }
    publish(s);
    return s->cancelled ? -ECANCELED : r;
}

static int temp_file(const char *dir)
{
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != ENOENT))
        return fd < 0 ? -errno : fd;
    /* Filesystems without O_TMPFILE: create and unlink at once. */
    char path[4096];
    snprintf(path, sizeof(path), "%s/capture.XXXXXX", dir);
    fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0)
        return -errno;
    unlink(path);
    return fd;
}

static const struct evidence_kind *find_kind(const struct evidence *self, const char *name)
{
    for (size_t i = 0; i < self->nkinds; i++)
        if (strcmp(self->kinds[i].name, name) == 0)
            return &self->kinds[i];
    return NULL;
}

/* Runs c's capture into a temporary file, publishing its progress as it goes; fills in the
 * result (error set on failure). c may already be in the outbox when this returns. */
static void run_capture(struct evidence *self, struct capture *c)
{
    const struct evidence_kind *kind = find_kind(self, c->kind);
    struct sink sink = {.self = self, .c = c, .max = self->opt.max_bytes};
    struct artifact_writer out = {sink_write, &sink};
    char err[ERROR_TEXT_MAX] = "";
    int r;

    c->collected_at_ms = vg_wall_ms();
    sink.fd = temp_file(self->work_dir);
    if (sink.fd < 0) {
        snprintf(c->error, sizeof(c->error), "cannot create a capture file in %s: %s",
                 self->work_dir, strerror(-sink.fd));
        return;
    }
    c->fd = sink.fd; /* closed with c, by the main thread: it may be reading it already */
    vg_sha256_init(&sink.hash);
    r = kind->capture(kind->userdata, &c->args, &out, err, sizeof(err));
    if (r == -EFBIG) { /* the size cap, here or the capture's own: a truncated artifact */
        sink.truncated = true;
        r = 0;
    }
    if (r == 0 && sink.cancelled)
        r = -ECANCELED; /* a capture that ignored the writer's error */
    if (r < 0) {
        uint8_t unused[VG_SHA256_LEN];
        vg_sha256_final(&sink.hash, unused); /* frees what init took */
        snprintf(c->error, sizeof(c->error), "%s", err[0] && r != -ECANCELED ? err : strerror(-r));
        return;
    }
    vg_sha256_final(&sink.hash, c->sha256);
    c->size = sink.size;
    c->truncated = sink.truncated;
}

static void *worker_main(void *arg)
{
    struct evidence *self = arg;

    pthread_mutex_lock(&self->lock);
    for (;;) {
        while (!self->stopping && !self->pending)
            pthread_cond_wait(&self->wake, &self->lock);
        if (self->stopping)
            break;
        struct capture *c = pop(&self->pending, &self->pending_tail);
        self->npending--;
        pthread_mutex_unlock(&self->lock);

        run_capture(self, c);
        pthread_mutex_lock(&self->lock);
        bool cancelled = c->cancelled; /* then the main thread has counted it failed */
        if (!cancelled && c->error[0])
            self->stats.failed++;
        else if (!cancelled && c->truncated)
            self->stats.truncated++;
        pthread_mutex_unlock(&self->lock);
        if (c->error[0] && !cancelled)
            vg_log(VG_LOG_WARN, "evidence collection=%llu kind=%s failed: %s",
                   (unsigned long long)c->collection_id, c->kind, c->error);
        finish(self, c);
        pthread_mutex_lock(&self->lock);
    }
    pthread_mutex_unlock(&self->lock);
    return NULL;
}

/* ---- main thread: requests ---- */

static void refuse(struct evidence *self, struct capture *c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void refuse(struct evidence *self, struct capture *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->error, sizeof(c->error), fmt, ap);
    va_end(ap);
    c->collected_at_ms = vg_wall_ms();
    vg_log(VG_LOG_WARN, "evidence collection=%llu kind=%s refused: %s",
           (unsigned long long)c->collection_id, c->kind, c->error);
    pthread_mutex_lock(&self->lock);
    self->stats.refused++;
    pthread_mutex_unlock(&self->lock);
    finish(self, c);
}

void evidence_request(evidence_t *self, const Vigil__CollectRequest *req)
{
    struct capture *c = calloc(1, sizeof(*c));

    pthread_mutex_lock(&self->lock);
    self->stats.requests++;
    pthread_mutex_unlock(&self->lock);
    if (!c) {
        vg_log(VG_LOG_ERROR, "evidence: out of memory for collection=%llu",
               (unsigned long long)req->collection_id);
        return;
    }
    c->fd = -1;
    c->collection_id = req->collection_id;
    snprintf(c->kind, sizeof(c->kind), "%s", req->kind ? req->kind : "");

    if (req->expires_at_ms && req->expires_at_ms < vg_wall_ms()) {
        /* The coordinator has already given up on it; an answer would only be noise. */
        vg_log(VG_LOG_WARN, "evidence collection=%llu kind=%s expired before it arrived",
               (unsigned long long)c->collection_id, c->kind);
        pthread_mutex_lock(&self->lock);
        self->stats.refused++;
        pthread_mutex_unlock(&self->lock);
        free(c);
        return;
    }
    if (req->n_args > EVIDENCE_MAX_ARGS) {
        refuse(self, c, "too many arguments (%zu, at most %d)", req->n_args, EVIDENCE_MAX_ARGS);
        return;
    }
    for (size_t i = 0; i < req->n_args; i++) {
        const char *k = req->args[i]->key ? req->args[i]->key : "";
        const char *v = req->args[i]->value ? req->args[i]->value : "";
        if (!k[0] || strlen(k) >= EVIDENCE_ARG_KEY_MAX || strlen(v) >= EVIDENCE_ARG_VALUE_MAX) {
            refuse(self, c, "argument %zu: empty or too long", i + 1);
            return;
        }
        memcpy(c->args.key[i], k, strlen(k) + 1);
        memcpy(c->args.value[i], v, strlen(v) + 1);
        c->args.count++;
    }
    if (!find_kind(self, c->kind)) {
        char known[256] = "";
        for (size_t i = 0; i < self->nkinds; i++) {
            size_t used = strlen(known);
            snprintf(known + used, sizeof(known) - used, "%s%s", i ? ", " : "",
                     self->kinds[i].name);
        }
        refuse(self, c, "unknown kind \"%s\" (this agent collects: %s)", c->kind, known);
        return;
    }

    pthread_mutex_lock(&self->lock);
    if (self->npending >= QUEUE_MAX) {
        pthread_mutex_unlock(&self->lock);
        refuse(self, c, "busy: %d captures are already waiting", QUEUE_MAX);
        return;
    }
    push(&self->pending, &self->pending_tail, c);
    self->npending++;
    pthread_cond_signal(&self->wake);
    pthread_mutex_unlock(&self->lock);
}

/* ---- main thread: chunks into the spool ---- */

/* One EvidenceChunk envelope with data (len bytes at the capture's offset) into the spool. */
static int append_chunk(struct evidence *self, spool_t *spool, struct capture *c,
                        const uint8_t *data, size_t len, bool last)
{
    Vigil__Envelope env = VIGIL__ENVELOPE__INIT;
    Vigil__EvidenceChunk chunk = VIGIL__EVIDENCE_CHUNK__INIT;
    Vigil__Label labels[EVIDENCE_MAX_ARGS];
    Vigil__Label *label_ptrs[EVIDENCE_MAX_ARGS];
    uint64_t seq;
    int r;

    r = spool_reserve_seq(spool, &seq);
    if (r < 0)
        return r;
    if (c->offset == 0)
        c->artifact = seq;
    for (size_t i = 0; i < c->args.count; i++) {
        vigil__label__init(&labels[i]);
        labels[i].key = c->args.key[i];
        labels[i].value = c->args.value[i];
        label_ptrs[i] = &labels[i];
    }
    chunk.collection_id = c->collection_id;
    chunk.artifact = c->artifact;
    chunk.kind = c->kind;
    chunk.n_args = c->args.count;
    chunk.args = label_ptrs;
    chunk.collected_at_ms = c->collected_at_ms;
    chunk.offset = last && c->error[0] ? 0 : c->offset; /* an error carries nothing else */
    chunk.data.data = (uint8_t *)data;
    chunk.data.len = len;
    chunk.last = last;
    if (last && c->error[0]) {
        chunk.error = c->error;
    } else if (last) {
        chunk.total_size = c->size;
        chunk.sha256.data = c->sha256;
        chunk.sha256.len = VG_SHA256_LEN;
        chunk.truncated = c->truncated;
    }
    env.version = VG_PROTOCOL_VERSION;
    env.sender = (char *)self->sender;
    env.seq = seq;
    env.sent_at_ms = vg_wall_ms();
    env.body_case = VIGIL__ENVELOPE__BODY_EVIDENCE;
    env.evidence = &chunk;

    size_t size = vigil__envelope__get_packed_size(&env);
    uint8_t *buf = malloc(size);
    if (!buf)
        return -ENOMEM;
    vigil__envelope__pack(&env, buf);
    r = spool_append(spool, seq, SPOOL_KIND_EVIDENCE, 0, buf, size);
    free(buf);
    return r;
}

/* Appends the chunks of c that can go now while *budget lasts: 1 when c is complete, 0 when
 * more remain (the budget ran out, or the worker has not written them yet), <0 on error.
 * ready and finished are c's progress as read under the lock. */
static int send_some(struct evidence *self, spool_t *spool, struct capture *c, uint64_t ready,
                     bool finished, int *budget)
{
    if (finished && c->error[0]) { /* after the chunks already spooled, if any */
        (*budget)--;
        int r = append_chunk(self, spool, c, NULL, 0, true);
        return r < 0 ? r : 1;
    }
    while (*budget > 0) {
        uint64_t left = (finished ? c->size : ready) - c->offset;
        if (!finished && left <= self->opt.chunk_bytes)
            return 0; /* the next chunk is not written yet, or may be the last */
        (*budget)--;
        size_t want = left < self->opt.chunk_bytes ? (size_t)left : (size_t)self->opt.chunk_bytes;
        size_t got = 0;
        while (got < want) {
            ssize_t n = pread(c->fd, self->chunk_buf + got, want - got, (off_t)(c->offset + got));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return n < 0 ? -errno : -EIO; /* the file shrank under us: cannot happen */
            got += (size_t)n;
        }
        bool last = finished && c->offset + got == c->size;
        int r = append_chunk(self, spool, c, self->chunk_buf, got, last);
        if (r < 0)
            return r;
        c->offset += got;
        if (last)
            return 1;
    }
    return 0;
}

/* Spooling c failed (r): the chunks already spooled stay and the coordinator times the
 * collection out. A capture still being written is cancelled: its writes fail from now on. */
static void give_up(struct evidence *self, struct capture *c, bool finished, int r)
{
    vg_log(VG_LOG_ERROR, "evidence collection=%llu kind=%s: spooling failed after %llu bytes: %s",
           (unsigned long long)c->collection_id, c->kind, (unsigned long long)c->offset,
           strerror(-r));
    pthread_mutex_lock(&self->lock);
    if (!(finished && c->error[0])) /* a failure or refusal is counted already */
        self->stats.failed++;
    c->cancelled = true;
    pthread_mutex_unlock(&self->lock);
    c->dropped = true;
}

bool evidence_poll(evidence_t *self, spool_t *spool)
{
    uint64_t counter;
    int budget = CHUNKS_PER_POLL;

    while (read(self->event_fd, &counter, sizeof(counter)) == sizeof(counter))
        ;
    while (budget > 0) {
        pthread_mutex_lock(&self->lock);
        if (!self->sending)
            self->sending = pop(&self->outbox, &self->outbox_tail);
        struct capture *c = self->sending;
        uint64_t ready = c ? c->ready : 0;
        bool finished = c && c->finished;
        pthread_mutex_unlock(&self->lock);
        if (!c)
            return false;
        if (!c->dropped) {
            int r = send_some(self, spool, c, ready, finished, &budget);
            if (r == 0)
                return budget <= 0; /* else the worker's next chunk or its finish wakes us */
            if (r < 0) {
                give_up(self, c, finished, r);
            } else if (!c->error[0]) {
                vg_log(VG_LOG_INFO, "evidence collection=%llu kind=%s artifact=%llu size=%llu%s",
                       (unsigned long long)c->collection_id, c->kind,
                       (unsigned long long)c->artifact, (unsigned long long)c->size,
                       c->truncated ? " (truncated)" : "");
                pthread_mutex_lock(&self->lock);
                self->stats.stored++;
                self->stats.bytes += c->size;
                pthread_mutex_unlock(&self->lock);
            }
        }
        if (!finished)
            return false; /* dropped, still being written: the worker's finish wakes us */
        capture_free(c);
        self->sending = NULL;
    }
    pthread_mutex_lock(&self->lock);
    bool more = self->outbox != NULL;
    pthread_mutex_unlock(&self->lock);
    return more;
}

/* ---- lifecycle ---- */

evidence_t *evidence_new(const struct evidence_kind *kinds, size_t nkinds,
                         const struct evidence_options *opt, char *err, size_t errlen)
{
    struct evidence *self = calloc(1, sizeof(*self));

    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->event_fd = -1;
    pthread_mutex_init(&self->lock, NULL);
    pthread_cond_init(&self->wake, NULL);
    if (opt->chunk_bytes == 0 || opt->chunk_bytes > VG_MAX_MESSAGE_BYTES / 2 ||
        opt->max_bytes == 0) {
        snprintf(err, errlen, "evidence: chunk size must be between 1 and %d bytes",
                 VG_MAX_MESSAGE_BYTES / 2);
        goto fail;
    }
    self->opt = *opt;
    self->kinds = calloc(nkinds ? nkinds : 1, sizeof(*kinds));
    self->work_dir = strdup(opt->work_dir);
    self->sender = strdup(opt->sender);
    self->chunk_buf = malloc(opt->chunk_bytes);
    if (!self->kinds || !self->work_dir || !self->sender || !self->chunk_buf) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    memcpy(self->kinds, kinds, nkinds * sizeof(*kinds));
    self->nkinds = nkinds;
    if (mkdir(self->work_dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "evidence: cannot create %s: %s", self->work_dir, strerror(errno));
        goto fail;
    }
    self->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (self->event_fd < 0) {
        snprintf(err, errlen, "evidence: eventfd: %s", strerror(errno));
        goto fail;
    }
    /* The capture thread needs little stack: captures stream through small buffers. */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    int r = pthread_create(&self->worker, &attr, worker_main, self);
    pthread_attr_destroy(&attr);
    if (r != 0) {
        snprintf(err, errlen, "evidence: cannot start the capture thread: %s", strerror(r));
        goto fail;
    }
    self->worker_started = true;
    return self;

fail:
    evidence_destroy(&self);
    return NULL;
}

void evidence_destroy(evidence_t **self_p)
{
    struct evidence *self = *self_p;
    struct capture *c;

    if (!self)
        return;
    if (self->worker_started) {
        pthread_mutex_lock(&self->lock);
        self->stopping = true;
        pthread_cond_signal(&self->wake);
        pthread_mutex_unlock(&self->lock);
        /* A capture in progress finishes first; captures are bounded by their own
         * timeouts (probes) or by local reads. */
        pthread_join(self->worker, NULL);
    }
    while ((c = pop(&self->pending, &self->pending_tail)))
        capture_free(c);
    while ((c = pop(&self->outbox, &self->outbox_tail)))
        capture_free(c);
    capture_free(self->sending);
    if (self->event_fd >= 0)
        close(self->event_fd);
    pthread_mutex_destroy(&self->lock);
    pthread_cond_destroy(&self->wake);
    free(self->chunk_buf);
    free(self->kinds);
    free(self->work_dir);
    free(self->sender);
    free(self);
    *self_p = NULL;
}

int evidence_fd(const evidence_t *self)
{
    return self->event_fd;
}

void evidence_stats(evidence_t *self, struct evidence_stats *ret)
{
    pthread_mutex_lock(&self->lock);
    *ret = self->stats;
    pthread_mutex_unlock(&self->lock);
}
