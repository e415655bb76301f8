/*
 * The executor's replay cache: the contract is in replay.h.
 *
 * On disk, in the cache directory, one file "replay.log":
 *   header   16 bytes: "vigil-replay-v1\n"
 *   records  32 bytes each, appended one per accepted nonce:
 *            nonce (16) | not_after_ms (8, big-endian two's complement) |
 *            check (8: the first 8 bytes of SHA-256 over the 24 bytes before it)
 * An append is one write() of one record followed by fdatasync(), so a crash leaves at most
 * one incomplete record, and only at the end: open cuts a short or unreadable last record off
 * (its nonce was never accepted: the call that wrote it had not returned). A record that does
 * not check anywhere else means the file was damaged, and open refuses it (-EBADMSG): reading
 * past it could forget an unexpired nonce, and refusing every command until someone looks is the
 * safe failure. Removing the file is then the operator's decision (safe once every capsule
 * issued before the damage has expired: 15 minutes).
 *
 * Compaction: expired entries leave memory on every call; the file keeps their records until
 * they are at least as many as the live ones (and at least COMPACT_MIN_STALE), then it is
 * rewritten with only the live ones (tmp file, fdatasync, rename, fsync of the directory), so
 * the file stays within about twice the live entries and a rewrite costs O(1) per append
 * amortised. A failed rewrite leaves the old file in place and changes nothing.
 *
 * In memory: an unsorted array of (nonce, not_after); lookups are linear. The executor sees a
 * few commands a minute and at most max_entries live ones, so a scan costs microseconds.
 */
#include "replay.h"

#include "digest.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_NAME "replay.log"
#define TMP_NAME "replay.log.tmp"
#define HEADER "vigil-replay-v1\n"
#define HEADER_LEN 16
#define CHECK_LEN 8
#define REC_LEN (REPLAY_NONCE_LEN + 8 + CHECK_LEN)
#define COMPACT_MIN_STALE 32
#define READ_CHUNK_RECORDS 2048

_Static_assert(sizeof(HEADER) - 1 == HEADER_LEN, "the header is 16 bytes");
_Static_assert(REC_LEN == 32, "a record is 32 bytes");

struct entry {
    unsigned char nonce[REPLAY_NONCE_LEN];
    int64_t not_after_ms;
};

struct replay {
    int dirfd;
    int fd; /* replay.log, O_APPEND */
    struct entry *entries;
    size_t n;
    size_t cap;
    size_t max_entries;
    uint64_t file_records; /* records in the file: live ones plus expired ones not yet compacted */
    bool broken;           /* a failed append could not be undone: refuse until reopened */
};

static void encode_record(const struct entry *e, unsigned char rec[REC_LEN])
{
    unsigned char digest[VG_SHA256_LEN];
    uint64_t v = (uint64_t)e->not_after_ms;

    memcpy(rec, e->nonce, REPLAY_NONCE_LEN);
    for (int i = 7; i >= 0; i--) {
        rec[REPLAY_NONCE_LEN + i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
    vg_sha256(rec, REPLAY_NONCE_LEN + 8, digest);
    memcpy(rec + REPLAY_NONCE_LEN + 8, digest, CHECK_LEN);
}

/* false when the record's check does not match. */
static bool decode_record(const unsigned char rec[REC_LEN], struct entry *ret)
{
    unsigned char digest[VG_SHA256_LEN];
    uint64_t v = 0;

    vg_sha256(rec, REPLAY_NONCE_LEN + 8, digest);
    if (memcmp(digest, rec + REPLAY_NONCE_LEN + 8, CHECK_LEN) != 0)
        return false;
    memcpy(ret->nonce, rec, REPLAY_NONCE_LEN);
    for (int i = 0; i < 8; i++)
        v = (v << 8) | rec[REPLAY_NONCE_LEN + i];
    ret->not_after_ms = (int64_t)v;
    return true;
}

static int write_full(int fd, const void *data, size_t len)
{
    const unsigned char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static int entries_reserve(replay_t *self, size_t want)
{
    if (want <= self->cap)
        return 0;
    size_t cap = self->cap ? self->cap : 64;
    while (cap < want)
        cap *= 2;
    struct entry *grown = realloc(self->entries, cap * sizeof(*grown));
    if (!grown)
        return -ENOMEM;
    self->entries = grown;
    self->cap = cap;
    return 0;
}

static int open_log(replay_t *self, int flags)
{
    int fd =
        openat(self->dirfd, FILE_NAME, flags | O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    return fd < 0 ? -errno : fd;
}

/* Reads the file into memory; cuts off an incomplete last record. */
static int load(replay_t *self, const char *dir, char *err, size_t errlen)
{
    unsigned char header[HEADER_LEN];
    unsigned char *buf;
    struct stat st;
    uint64_t records, good = 0;
    off_t off = HEADER_LEN;
    int r = 0;

    if (fstat(self->fd, &st) < 0) {
        r = -errno;
        vg_set_err(err, errlen, "replay cache %s/%s: %s", dir, FILE_NAME, strerror(-r));
        return r;
    }
    if (!S_ISREG(st.st_mode)) {
        vg_set_err(err, errlen, "replay cache %s/%s is not a regular file", dir, FILE_NAME);
        return -EINVAL;
    }
    if (st.st_size < HEADER_LEN) {
        /* New, or created by a crash before its header was complete: no record was ever
         * accepted into it. */
        r = st.st_size > 0 && ftruncate(self->fd, 0) < 0 ? -errno : 0;
        if (r == 0)
            r = write_full(self->fd, HEADER, HEADER_LEN);
        if (r == 0 && fdatasync(self->fd) < 0)
            r = -errno;
        if (r == 0 && fsync(self->dirfd) < 0)
            r = -errno;
        if (r < 0)
            vg_set_err(err, errlen, "replay cache %s/%s: cannot write: %s", dir, FILE_NAME,
                       strerror(-r));
        return r;
    }
    if (pread(self->fd, header, HEADER_LEN, 0) != HEADER_LEN ||
        memcmp(header, HEADER, HEADER_LEN) != 0) {
        vg_set_err(err, errlen, "replay cache %s/%s is not a Vigil replay cache (bad header)", dir,
                   FILE_NAME);
        return -EBADMSG;
    }
    records = ((uint64_t)st.st_size - HEADER_LEN) / REC_LEN;
    buf = malloc((size_t)READ_CHUNK_RECORDS * REC_LEN);
    if (!buf) {
        vg_set_err(err, errlen, "replay cache %s: out of memory", dir);
        return -ENOMEM;
    }
    while (good < records) {
        size_t want =
            (size_t)(records - good < READ_CHUNK_RECORDS ? records - good : READ_CHUNK_RECORDS);
        ssize_t got = pread(self->fd, buf, want * REC_LEN, off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 || (size_t)got != want * REC_LEN) {
            r = got < 0 ? -errno : -EIO;
            vg_set_err(err, errlen, "replay cache %s/%s: cannot read: %s", dir, FILE_NAME,
                       strerror(-r));
            goto out_free;
        }
        r = entries_reserve(self, self->n + want);
        if (r < 0) {
            vg_set_err(err, errlen, "replay cache %s: out of memory", dir);
            goto out_free;
        }
        for (size_t i = 0; i < want; i++) {
            if (!decode_record(buf + i * REC_LEN, &self->entries[self->n])) {
                if (good + i + 1 == records && ((uint64_t)st.st_size - HEADER_LEN) % REC_LEN == 0)
                    goto out_cut; /* the last write: an append cut short by a crash */
                vg_set_err(err, errlen,
                           "replay cache %s/%s is damaged (record %" PRIu64 " of %" PRIu64
                           " does not check); refusing to forget nonces: remove it only once "
                           "every capsule issued before the damage has expired",
                           dir, FILE_NAME, good + i + 1, records);
                r = -EBADMSG;
                goto out_free;
            }
            self->n++;
        }
        good += want;
        off += (off_t)(want * REC_LEN);
    }
out_cut:
    self->file_records = self->n;
    if ((uint64_t)st.st_size != HEADER_LEN + self->n * (uint64_t)REC_LEN) {
        off_t keep = (off_t)(HEADER_LEN + self->n * (uint64_t)REC_LEN);
        vg_log(VG_LOG_DEBUG, "replay: cutting an incomplete record dir=%s size=%jd keep=%jd", dir,
               (intmax_t)st.st_size, (intmax_t)keep);
        if (ftruncate(self->fd, keep) < 0 || fdatasync(self->fd) < 0) {
            r = -errno;
            vg_set_err(err, errlen, "replay cache %s/%s: cannot cut an incomplete record: %s", dir,
                       FILE_NAME, strerror(-r));
            goto out_free;
        }
    }
    r = 0;
out_free:
    free(buf);
    return r;
}

replay_t *replay_open(const char *dir, size_t max_entries, char *err, size_t errlen)
{
    replay_t *self;
    int r;

    if (max_entries > REPLAY_MAX_ENTRIES_LIMIT) {
        vg_set_err(err, errlen, "replay cache %s: at most %d entries", dir,
                   REPLAY_MAX_ENTRIES_LIMIT);
        return NULL;
    }
    self = calloc(1, sizeof(*self));
    if (!self) {
        vg_set_err(err, errlen, "replay cache %s: out of memory", dir);
        return NULL;
    }
    self->dirfd = -1;
    self->fd = -1;
    self->max_entries = max_entries ? max_entries : REPLAY_MAX_ENTRIES_DEFAULT;

    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        vg_set_err(err, errlen, "cannot create replay cache directory %s: %s", dir,
                   strerror(errno));
        goto err_destroy;
    }
    self->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (self->dirfd < 0) {
        vg_set_err(err, errlen, "cannot open replay cache directory %s: %s", dir, strerror(errno));
        goto err_destroy;
    }
    /* Two executors sharing a cache would each accept the other's nonces once more. */
    if (flock(self->dirfd, LOCK_EX | LOCK_NB) < 0) {
        vg_set_err(err, errlen, "replay cache directory %s: %s", dir,
                   errno == EWOULDBLOCK ? "in use by another process" : strerror(errno));
        goto err_destroy;
    }
    (void)unlinkat(self->dirfd, TMP_NAME, 0); /* a compaction that a crash interrupted */
    self->fd = open_log(self, O_CREAT);
    if (self->fd < 0) {
        vg_set_err(err, errlen, "replay cache %s/%s: cannot open: %s", dir, FILE_NAME,
                   strerror(-self->fd));
        goto err_destroy;
    }
    r = load(self, dir, err, errlen);
    if (r < 0)
        goto err_destroy;
    vg_log(VG_LOG_DEBUG, "replay: opened dir=%s entries=%zu max=%zu", dir, self->n,
           self->max_entries);
    return self;

err_destroy:
    replay_destroy(&self);
    return NULL;
}

void replay_destroy(replay_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    replay_t *self = *self_p;
    if (self->fd >= 0)
        close(self->fd);
    if (self->dirfd >= 0)
        close(self->dirfd); /* releases the lock */
    free(self->entries);
    self->entries = NULL;
    free(self);
    *self_p = NULL;
}

size_t replay_count(const replay_t *self)
{
    return self ? self->n : 0;
}

static void purge_expired(replay_t *self, int64_t now_ms)
{
    for (size_t i = 0; i < self->n;) {
        if (self->entries[i].not_after_ms <= now_ms)
            self->entries[i] = self->entries[--self->n];
        else
            i++;
    }
}

/* Rewrites the file with the live entries only. On failure the old file stays as it was. */
static int compact(replay_t *self)
{
    unsigned char rec[REC_LEN];
    int fd, r;

    fd = openat(self->dirfd, TMP_NAME, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -errno;
    r = write_full(fd, HEADER, HEADER_LEN);
    for (size_t i = 0; r == 0 && i < self->n; i++) {
        encode_record(&self->entries[i], rec);
        r = write_full(fd, rec, REC_LEN);
    }
    if (r == 0 && fdatasync(fd) < 0)
        r = -errno;
    if (close(fd) < 0 && r == 0)
        r = -errno;
    if (r == 0 && renameat(self->dirfd, TMP_NAME, self->dirfd, FILE_NAME) < 0)
        r = -errno;
    if (r < 0) {
        (void)unlinkat(self->dirfd, TMP_NAME, 0);
        return r;
    }
    /* The rename is done: from here the new file is the cache, whatever else fails. */
    (void)fsync(self->dirfd);
    fd = open_log(self, 0);
    if (fd < 0) {
        self->broken = true; /* cannot append to the file that now holds the entries */
        return fd;
    }
    close(self->fd);
    self->fd = fd;
    vg_log(VG_LOG_DEBUG, "replay: compacted records=%" PRIu64 " live=%zu", self->file_records,
           self->n);
    self->file_records = self->n;
    return 0;
}

static int append(replay_t *self, const struct entry *e)
{
    unsigned char rec[REC_LEN];
    off_t before = (off_t)(HEADER_LEN + self->file_records * (uint64_t)REC_LEN);
    int r;

    encode_record(e, rec);
    r = write_full(self->fd, rec, REC_LEN);
    if (r == 0 && fdatasync(self->fd) < 0)
        r = -errno;
    if (r < 0) {
        /* Undo a partial record, or the next append would land out of step. */
        if (ftruncate(self->fd, before) < 0)
            self->broken = true;
        return r;
    }
    self->file_records++;
    return 0;
}

int replay_seen_or_add(replay_t *self, const unsigned char nonce[REPLAY_NONCE_LEN],
                       int64_t not_after_ms, int64_t now_ms)
{
    int r;

    if (!self || !nonce)
        return -EINVAL;
    if (self->broken)
        return -EIO;
    purge_expired(self, now_ms);
    for (size_t i = 0; i < self->n; i++) {
        if (memcmp(self->entries[i].nonce, nonce, REPLAY_NONCE_LEN) == 0)
            return -EALREADY;
    }
    if (not_after_ms <= now_ms)
        return -EINVAL;
    if (self->n >= self->max_entries)
        return -ENOSPC;
    r = entries_reserve(self, self->n + 1);
    if (r < 0)
        return r;

    uint64_t stale = self->file_records - self->n;
    if (stale >= COMPACT_MIN_STALE && stale >= self->n) {
        r = compact(self);
        if (r < 0) {
            vg_log(VG_LOG_DEBUG, "replay: compaction failed error=\"%s\"", strerror(-r));
            if (self->broken)
                return r;
        }
    }

    struct entry e;
    memcpy(e.nonce, nonce, REPLAY_NONCE_LEN);
    e.not_after_ms = not_after_ms;
    r = append(self, &e);
    if (r < 0)
        return r;
    self->entries[self->n++] = e;
    return 0;
}
