/*
 * The agent's disk spool: the contract (file layout, overflow policy) is in spool.h.
 *
 * On disk, in the spool directory:
 *   "<base, 16 hex>.seg"  segments; base is the seq of the first record ever written to the file
 *                         (the name stays when the file is rewritten), so names sort like seqs.
 *                         A segment is nothing but records, back to back, so its size is exactly
 *                         the sum of its records' sizes (25-byte header + payload).
 *   "next-seq"            text: the sequence ceiling and the cumulative dropped counters,
 *                         replaced atomically (tmp + fsync + rename + fsync of the directory).
 * Record header, little-endian: magic u32 @0, payload length u32 @4, CRC-32C u32 @8 (over bytes
 * 0..7 and 12..24 of the header, then the payload), seq u64 @12, kind u8 @20, samples u32 @21.
 *
 * Sequence numbers: "next-seq" holds a ceiling C meaning "no seq >= C was ever sent", and after
 * a restart the counter resumes at C, or above the highest seq found in a segment if that is
 * larger. A seq is sent only once its record is in a segment; with limits.fsync that record is
 * on disk before the append returns, so the record itself proves its seq was used, and C needs
 * writing only when a record leaves the disk while it is the newest: before the newest segment
 * is deleted or rewritten, C is raised past every seq handed out (ceiling_cover). Without fsync
 * a record may not survive a crash, so C = seq + 1 is written (tmp + fsync + rename) before
 * every reservation returns. Either way a seq the coordinator saw is never reused, and the
 * sequence an agent sends has no holes of its own making: the coordinator can read any gap in
 * the stored sequence as a lost or dropped message. (Reserving ahead in blocks would save the
 * write but make every restart look like a loss.) A seq reserved but never written or sent may
 * be handed out again after a restart; nobody saw it.
 *
 * The dropped counters are written to "next-seq" after each overflow event, once the dropped
 * records have been removed from disk: a crash between the two undercounts, never overcounts.
 *
 * In memory: one 16-byte index entry per record (seq delta, offset, length, samples, kind,
 * state, sent once), grouped by segment; payloads stay on disk and are read into one reusable
 * buffer. Acks live only in memory (see spool.h): a segment file goes when every record in it is
 * acknowledged, discarded or dropped.
 *
 * Overflow works a segment at a time, oldest first: a segment holding only signals (and done
 * records) is deleted; one that also holds evidence or results is rewritten without its signals
 * and done records. That frees a batch at once instead of rewriting a segment on every append.
 */
#include "spool.h"

#include "crc32c.h"

#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define REC_MAGIC UINT32_C(0x52534756) /* "VGSR" in file order */
#define REC_HDR 25u
#define SEQ_BLOCK UINT64_C(1)       /* see "Sequence numbers" above */
#define SEG_MAX (UINT64_C(1) << 28) /* offsets and lengths fit the index's 28/32-bit fields */
#define REC_DELTA_MAX ((UINT64_C(1) << 31) - 1) /* the index's seq delta is 31 bits */
#define SEG_MIN UINT64_C(256)
#define SEG_DEFAULT_MIN (UINT64_C(64) << 10)
#define SEG_DEFAULT_MAX (UINT64_C(4) << 20)
#define MAX_BYTES_DEFAULT (UINT64_C(64) << 20)
#define IO_CHUNK (64u << 10) /* read-ahead at open, copy unit when a segment is rewritten */
#define STATE_FILE "next-seq"
#define STATE_TMP "next-seq.tmp"
#define STATE_HEADER "vigil-spool 1"
#define STATE_ROOM 4096u /* what rewriting the state file may take from a full filesystem */
#define SEG_NAME_LEN 32

enum rec_state {
    REC_UNSENT = 0,
    REC_INFLIGHT = 1,
    REC_DONE = 2, /* acknowledged, discarded or dropped: no longer counted anywhere */
};

struct rec {
    uint32_t delta : 31;   /* seq - segment base (REC_DELTA_MAX) */
    uint32_t sent : 1;     /* sent at least once: it may have arrived even if dropped since */
    uint32_t off;          /* of the header in the segment file */
    uint32_t samples;      /* as appended */
    unsigned int len : 28; /* payload bytes */
    unsigned int kind : 2;
    unsigned int state : 2;
};
_Static_assert(sizeof(struct rec) == 16, "the index entry must stay compact");

struct segment {
    uint64_t base;
    uint64_t size;       /* bytes of the file, an unreadable tail of an older segment included */
    uint64_t keep_bytes; /* bytes of live records that overflow may not drop */
    struct rec *recs;    /* in file order (= seq order) */
    uint32_t nrecs;
    uint32_t cap;
    uint32_t live;      /* unsent + in flight */
    uint32_t live_keep; /* live records that are not SPOOL_KIND_SIGNALS */
};

struct spool {
    int dirfd;
    struct spool_limits limits;
    struct segment *segs; /* sorted by base */
    size_t nsegs;
    size_t segcap;
    int active_fd; /* >= 0: segs[nsegs - 1] takes appends */
    int read_fd;   /* cached read-only descriptor of the segment named read_base */
    uint64_t read_base;
    uint8_t *buf; /* the payload returned by spool_next_unsent, copy buffer */
    size_t bufcap;
    uint64_t next_seq;
    uint64_t ceiling; /* last written to "next-seq" (see "Sequence numbers") */
    uint64_t last_appended;
    uint64_t unsent_hint; /* no unsent record has a smaller seq */
    uint64_t bytes;
    uint64_t keep_bytes;
    uint64_t depth;
    uint64_t inflight;
    uint64_t dropped_messages;
    uint64_t dropped_samples;
    /* Of dropped_messages, those dropped while in flight: sent, not acknowledged. The
       coordinator may have stored them still, so a count of losses is at most the one and at
       least the other minus this. */
    uint64_t dropped_in_flight;
};

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

struct rec_header {
    uint32_t magic;
    uint32_t len;
    uint32_t crc;
    uint64_t seq;
    uint8_t kind;
    uint32_t samples;
};

static void header_decode(const uint8_t *p, struct rec_header *ret)
{
    ret->magic = get_le32(p);
    ret->len = get_le32(p + 4);
    ret->crc = get_le32(p + 8);
    ret->seq = get_le64(p + 12);
    ret->kind = p[20];
    ret->samples = get_le32(p + 21);
}

/* The checksum state after the header's covered bytes; continue it over the payload. */
static uint32_t header_crc_start(const uint8_t *p)
{
    uint32_t crc = crc32c_update(UINT32_C(0xffffffff), p, 8);
    return crc32c_update(crc, p + 12, REC_HDR - 12);
}

static void header_encode(uint8_t *p, uint64_t seq, uint8_t kind, uint32_t samples,
                          const void *data, uint32_t len)
{
    put_le32(p, REC_MAGIC);
    put_le32(p + 4, len);
    put_le64(p + 12, seq);
    p[20] = kind;
    put_le32(p + 21, samples);
    uint32_t crc = crc32c_update(header_crc_start(p), data, len);
    put_le32(p + 8, ~crc);
}

static bool kind_valid(unsigned int kind)
{
    return kind >= SPOOL_KIND_SIGNALS && kind <= SPOOL_KIND_RESULT;
}

static uint64_t rec_size(const struct rec *r)
{
    return REC_HDR + (uint64_t)r->len;
}

static uint64_t rec_seq(const struct segment *seg, const struct rec *r)
{
    return seg->base + r->delta;
}

static void seg_name(char *name, uint64_t base)
{
    snprintf(name, SEG_NAME_LEN, "%016" PRIx64 ".seg", base);
}

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t errlen, const char *fmt,
                                                          ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- plain I/O ---- */

static int write_all(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int pread_all(int fd, void *buf, size_t len, uint64_t off)
{
    uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -ENODATA;
        p += n;
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    return 0;
}

static int pwrite_record(int fd, const uint8_t *hdr, const void *data, size_t len, uint64_t off)
{
    struct iovec iov[2] = {
        {.iov_base = (void *)hdr, .iov_len = REC_HDR},
        {.iov_base = (void *)data, .iov_len = len},
    };
    int iovcnt = len > 0 ? 2 : 1;
    struct iovec *cur = iov;

    while (iovcnt > 0) {
        ssize_t n = pwritev(fd, cur, iovcnt, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        off += (uint64_t)n;
        while (iovcnt > 0 && (size_t)n >= cur->iov_len) {
            n -= (ssize_t)cur->iov_len;
            cur++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            cur->iov_base = (uint8_t *)cur->iov_base + n;
            cur->iov_len -= (size_t)n;
        }
    }
    return 0;
}

static int fsync_dir(const spool_t *self)
{
    return fsync(self->dirfd) < 0 ? -errno : 0;
}

static int buf_reserve(spool_t *self, size_t need)
{
    if (self->bufcap >= need)
        return 0;
    uint8_t *grown = realloc(self->buf, need);
    if (!grown)
        return -ENOMEM;
    self->buf = grown;
    self->bufcap = need;
    return 0;
}

/* ---- the "next-seq" state file ---- */

static int state_write(spool_t *self, uint64_t ceiling)
{
    char text[256];
    int n =
        snprintf(text, sizeof(text),
                 STATE_HEADER "\nseq_ceiling %" PRIu64 "\ndropped_messages %" PRIu64
                              "\ndropped_samples %" PRIu64 "\ndropped_in_flight %" PRIu64 "\n",
                 ceiling, self->dropped_messages, self->dropped_samples, self->dropped_in_flight);
    if (n < 0 || (size_t)n >= sizeof(text))
        return -EOVERFLOW;

    int fd = openat(self->dirfd, STATE_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int ret = write_all(fd, text, (size_t)n);
    if (ret == 0 && fsync(fd) < 0)
        ret = -errno;
    if (close(fd) < 0 && ret == 0)
        ret = -errno;
    if (ret == 0 && renameat(self->dirfd, STATE_TMP, self->dirfd, STATE_FILE) < 0)
        ret = -errno;
    if (ret < 0) {
        unlinkat(self->dirfd, STATE_TMP, 0);
        return ret;
    }
    return fsync_dir(self);
}

/* Writes "next-seq" with a ceiling past every seq handed out so far (and the counters). */
static int state_persist(spool_t *self)
{
    uint64_t ceiling = self->ceiling > self->next_seq ? self->ceiling : self->next_seq;
    int ret = state_write(self, ceiling);
    if (ret == 0)
        self->ceiling = ceiling;
    return ret;
}

/* Before segment si loses records: when it is the newest, its last record may be the only
 * proof on disk that its seq was used (see "Sequence numbers" above). */
static int ceiling_cover(spool_t *self, size_t si)
{
    if (si + 1 < self->nsegs || self->ceiling >= self->next_seq)
        return 0;
    return state_persist(self);
}

static bool parse_u64(const char *text, uint64_t *ret)
{
    char *end;

    if (*text < '0' || *text > '9')
        return false;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *ret = v;
    return true;
}

/* 0, -ENOENT when there is no state file, -EBADMSG when it is not ours, or an I/O error. */
static int state_read(spool_t *self, uint64_t *ret_ceiling, uint64_t *ret_messages,
                      uint64_t *ret_samples, uint64_t *ret_in_flight)
{
    char text[512];
    size_t used = 0;
    int fd = openat(self->dirfd, STATE_FILE, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    for (;;) {
        ssize_t n = read(fd, text + used, sizeof(text) - 1 - used);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int ret = -errno;
            close(fd);
            return ret;
        }
        if (n == 0)
            break;
        used += (size_t)n;
        if (used == sizeof(text) - 1) {
            close(fd);
            return -EBADMSG; /* far longer than anything state_write produces */
        }
    }
    close(fd);
    text[used] = '\0';

    uint64_t ceiling = 0, messages = 0, samples = 0, in_flight = 0;
    unsigned int seen = 0;
    char *line = text;
    bool first = true;
    while (*line != '\0') {
        char *nl = strchr(line, '\n');
        if (!nl)
            return -EBADMSG; /* every line, the last included, ends with a newline */
        *nl = '\0';
        if (first) {
            if (strcmp(line, STATE_HEADER) != 0)
                return -EBADMSG;
            first = false;
        } else {
            char *sp = strchr(line, ' ');
            uint64_t v;
            if (!sp)
                return -EBADMSG;
            *sp = '\0';
            if (!parse_u64(sp + 1, &v))
                return -EBADMSG;
            if (strcmp(line, "seq_ceiling") == 0) {
                ceiling = v;
                seen |= 1u;
            } else if (strcmp(line, "dropped_messages") == 0) {
                messages = v;
                seen |= 2u;
            } else if (strcmp(line, "dropped_samples") == 0) {
                samples = v;
                seen |= 4u;
            } else if (strcmp(line, "dropped_in_flight") == 0) {
                in_flight = v; /* optional: state files from before it have none */
            } else {
                return -EBADMSG;
            }
        }
        line = nl + 1;
    }
    if (seen != 7u)
        return -EBADMSG;
    *ret_ceiling = ceiling;
    *ret_messages = messages;
    *ret_samples = samples;
    *ret_in_flight = in_flight;
    return 0;
}

/* ---- the index ---- */

static int seg_push(spool_t *self, uint64_t base)
{
    if (self->nsegs == self->segcap) {
        size_t cap = self->segcap ? self->segcap * 2 : 8;
        struct segment *grown = realloc(self->segs, cap * sizeof(*grown));
        if (!grown)
            return -ENOMEM;
        self->segs = grown;
        self->segcap = cap;
    }
    self->segs[self->nsegs] = (struct segment){.base = base};
    self->nsegs++;
    return 0;
}

/* Room for one more index entry, reserved before the record is written. */
static int seg_reserve_rec(struct segment *seg)
{
    if (seg->nrecs < seg->cap)
        return 0;
    if (seg->cap >= UINT32_MAX / 2)
        return -ENOMEM;
    uint32_t cap = seg->cap ? seg->cap * 2 : 64;
    struct rec *grown = realloc(seg->recs, (size_t)cap * sizeof(*grown));
    if (!grown)
        return -ENOMEM;
    seg->recs = grown;
    seg->cap = cap;
    return 0;
}

/* Counts a record that was just added to seg as live (unsent). */
static void rec_account(spool_t *self, struct segment *seg, const struct rec *r)
{
    seg->live++;
    self->depth++;
    if (r->kind != SPOOL_KIND_SIGNALS) {
        seg->live_keep++;
        seg->keep_bytes += rec_size(r);
        self->keep_bytes += rec_size(r);
    }
}

/* A live record is acknowledged, discarded or dropped. */
static void rec_finish(spool_t *self, struct segment *seg, struct rec *r)
{
    if (r->state == REC_INFLIGHT)
        self->inflight--;
    r->state = REC_DONE;
    seg->live--;
    self->depth--;
    if (r->kind != SPOOL_KIND_SIGNALS) {
        seg->live_keep--;
        seg->keep_bytes -= rec_size(r);
        self->keep_bytes -= rec_size(r);
    }
}

/* The segment that would hold seq: the last whose base <= seq (0 when none is). */
static size_t seg_for(const spool_t *self, uint64_t seq)
{
    size_t lo = 0, hi = self->nsegs;

    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (self->segs[mid].base <= seq)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* Index of the first record of seg whose seq >= seq. */
static uint32_t rec_lower(const struct segment *seg, uint64_t seq)
{
    if (seq <= seg->base)
        return 0;
    if (seq - seg->base > UINT32_MAX)
        return seg->nrecs;
    uint32_t delta = (uint32_t)(seq - seg->base);
    uint32_t lo = 0, hi = seg->nrecs;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (seg->recs[mid].delta < delta)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static struct rec *rec_find(spool_t *self, uint64_t seq, struct segment **ret_seg)
{
    if (self->nsegs == 0)
        return NULL;
    struct segment *seg = &self->segs[seg_for(self, seq)];
    uint32_t i = rec_lower(seg, seq);
    if (i == seg->nrecs || rec_seq(seg, &seg->recs[i]) != seq)
        return NULL;
    *ret_seg = seg;
    return &seg->recs[i];
}

static bool seg_is_active(const spool_t *self, size_t si)
{
    return self->active_fd >= 0 && si == self->nsegs - 1;
}

static void close_active(spool_t *self)
{
    if (self->active_fd >= 0) {
        close(self->active_fd);
        self->active_fd = -1;
    }
}

static void close_reader(spool_t *self)
{
    if (self->read_fd >= 0) {
        close(self->read_fd);
        self->read_fd = -1;
    }
}

/* A descriptor to read segment si (borrowed). */
static int seg_fd(spool_t *self, size_t si, int *ret_fd)
{
    const struct segment *seg = &self->segs[si];
    char name[SEG_NAME_LEN];

    if (seg_is_active(self, si)) {
        *ret_fd = self->active_fd;
        return 0;
    }
    if (self->read_fd >= 0 && self->read_base == seg->base) {
        *ret_fd = self->read_fd;
        return 0;
    }
    close_reader(self);
    seg_name(name, seg->base);
    int fd = openat(self->dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    self->read_fd = fd;
    self->read_base = seg->base;
    *ret_fd = fd;
    return 0;
}

/* Deletes segment si's file and its index. Live records in it must be accounted by the caller. */
static int seg_remove(spool_t *self, size_t si)
{
    struct segment *seg = &self->segs[si];
    char name[SEG_NAME_LEN];

    int ret = ceiling_cover(self, si);
    if (ret < 0)
        return ret;
    if (seg_is_active(self, si))
        close_active(self);
    if (self->read_fd >= 0 && self->read_base == seg->base)
        close_reader(self);
    seg_name(name, seg->base);
    if (unlinkat(self->dirfd, name, 0) < 0 && errno != ENOENT)
        return -errno;
    self->bytes -= seg->size;
    free(seg->recs);
    memmove(&self->segs[si], &self->segs[si + 1], (self->nsegs - si - 1) * sizeof(*self->segs));
    self->nsegs--;
    return 0;
}

/* Deletes every segment with no live record left, the active one included. */
static int reap(spool_t *self)
{
    int ret = 0;

    for (size_t si = 0; si < self->nsegs;) {
        if (self->segs[si].live == 0) {
            char name[SEG_NAME_LEN];
            seg_name(name, self->segs[si].base);
            int r = seg_remove(self, si);
            if (r == 0)
                continue;
            vg_log(VG_LOG_WARN, "spool: cannot delete segment=%s: %s", name, strerror(-r));
            ret = r;
        }
        si++;
    }
    return ret;
}

/* ---- overflow ---- */

/* The filesystem under the spool has no room left (as opposed to the spool's own bound). */
static bool disk_full(int err)
{
    return err == -ENOSPC || err == -EDQUOT;
}

/* Drops a segment that holds no record overflow must keep: deletes the file. */
static int seg_drop(spool_t *self, size_t si)
{
    const struct segment *seg = &self->segs[si];
    uint64_t messages = 0, samples = 0, inflight = 0, sent = 0;

    for (uint32_t i = 0; i < seg->nrecs; i++) {
        const struct rec *r = &seg->recs[i];
        if (r->state == REC_DONE)
            continue;
        messages++;
        samples += r->samples;
        inflight += r->state == REC_INFLIGHT;
        sent += r->sent;
    }
    int ret = seg_remove(self, si);
    if (ret < 0)
        return ret;
    self->dropped_messages += messages;
    self->dropped_samples += samples;
    self->dropped_in_flight += sent;
    self->depth -= messages;
    self->inflight -= inflight;
    return 0;
}

static int copy_range(spool_t *self, int src, uint64_t off, uint64_t len, int dst)
{
    int ret = buf_reserve(self, IO_CHUNK);
    if (ret < 0)
        return ret;
    while (len > 0) {
        size_t n = len < IO_CHUNK ? (size_t)len : IO_CHUNK;
        ret = pread_all(src, self->buf, n, off);
        if (ret < 0)
            return ret == -ENODATA ? -EIO : ret;
        ret = write_all(dst, self->buf, n);
        if (ret < 0)
            return ret;
        off += n;
        len -= n;
    }
    return 0;
}

static bool rec_kept_by_rewrite(const struct rec *r)
{
    return r->state != REC_DONE && r->kind != SPOOL_KIND_SIGNALS;
}

/* Rewrites segment si with only its live evidence and results (tmp + fsync + rename). */
static int seg_rewrite(spool_t *self, size_t si)
{
    struct segment *seg = &self->segs[si];
    char name[SEG_NAME_LEN], tmp[SEG_NAME_LEN + 4];
    int src = -1, ret;

    seg_name(name, seg->base);
    snprintf(tmp, sizeof(tmp), "%s.tmp", name);
    ret = seg_fd(self, si, &src);
    if (ret < 0)
        return ret;
    int dst = openat(self->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (dst < 0)
        return -errno;

    /* Copy runs of adjacent kept records in one go. */
    uint64_t run_off = 0, run_len = 0;
    for (uint32_t i = 0; i < seg->nrecs && ret == 0; i++) {
        const struct rec *r = &seg->recs[i];
        if (!rec_kept_by_rewrite(r))
            continue;
        if (run_len > 0 && run_off + run_len == r->off) {
            run_len += rec_size(r);
            continue;
        }
        if (run_len > 0)
            ret = copy_range(self, src, run_off, run_len, dst);
        run_off = r->off;
        run_len = rec_size(r);
    }
    if (ret == 0 && run_len > 0)
        ret = copy_range(self, src, run_off, run_len, dst);
    /* Always fsync: the file replaces one that holds records the spool promised to keep. */
    if (ret == 0 && fsync(dst) < 0)
        ret = -errno;
    if (close(dst) < 0 && ret == 0)
        ret = -errno;
    if (ret == 0)
        ret = ceiling_cover(self, si);
    if (ret == 0 && renameat(self->dirfd, tmp, self->dirfd, name) < 0)
        ret = -errno;
    if (ret < 0) {
        unlinkat(self->dirfd, tmp, 0);
        return ret;
    }
    ret = fsync_dir(self);
    if (ret < 0)
        vg_log(VG_LOG_WARN, "spool: fsync of the spool directory failed: %s", strerror(-ret));

    /* The new file is in place: the index follows it. */
    uint32_t kept = 0;
    uint64_t off = 0;
    for (uint32_t i = 0; i < seg->nrecs; i++) {
        struct rec r = seg->recs[i];
        if (rec_kept_by_rewrite(&r)) {
            r.off = (uint32_t)off;
            off += rec_size(&r);
            seg->recs[kept++] = r;
        } else if (r.state != REC_DONE) {
            self->dropped_messages++;
            self->dropped_samples += r.samples;
            self->depth--;
            if (r.state == REC_INFLIGHT)
                self->inflight--;
            if (r.sent)
                self->dropped_in_flight++;
        }
    }
    seg->nrecs = kept;
    seg->live = kept;
    self->bytes -= seg->size - off;
    seg->size = off;
    if (seg->cap > 64 && kept < seg->cap / 4) {
        struct rec *shrunk = realloc(seg->recs, (size_t)(seg->cap / 2) * sizeof(*shrunk));
        if (shrunk) {
            seg->recs = shrunk;
            seg->cap /= 2;
        }
    }

    if (self->read_fd >= 0 && self->read_base == seg->base)
        close_reader(self); /* it reads the old, unlinked file */
    if (seg_is_active(self, si)) {
        close_active(self);
        int fd = openat(self->dirfd, name, O_RDWR | O_CLOEXEC);
        if (fd < 0)
            vg_log(VG_LOG_WARN, "spool: cannot reopen segment=%s: %s; starting a new one", name,
                   strerror(errno));
        self->active_fd = fd;
    }
    return 0;
}

/* Drops the oldest signals a segment at a time until the spool holds at most limit bytes;
 * -ENOSPC when every droppable record is gone first. */
static int drop_down_to(spool_t *self, uint64_t limit)
{
    uint64_t messages_before = self->dropped_messages;
    uint64_t samples_before = self->dropped_samples;
    size_t si = 0;
    int ret = 0;

    while (self->bytes > limit) {
        while (si < self->nsegs && self->segs[si].size == self->segs[si].keep_bytes)
            si++; /* nothing to reclaim there */
        if (si == self->nsegs) {
            ret = -ENOSPC;
            break;
        }
        if (self->segs[si].live_keep == 0) {
            ret = seg_drop(self, si);
        } else {
            ret = seg_rewrite(self, si);
            si++;
            /* A rewrite needs room for its copy, which a full filesystem may not have: the
             * next segment may be one that can simply be deleted. */
            if (disk_full(ret)) {
                ret = 0;
                continue;
            }
        }
        if (ret < 0) {
            vg_log(VG_LOG_WARN, "spool: making room failed: %s", strerror(-ret));
            break;
        }
    }

    if (self->dropped_messages != messages_before) {
        vg_log(VG_LOG_WARN,
               "spool: full, dropped oldest signals messages=%" PRIu64 " samples=%" PRIu64
               " dropped_messages_total=%" PRIu64 " dropped_samples_total=%" PRIu64,
               self->dropped_messages - messages_before, self->dropped_samples - samples_before,
               self->dropped_messages, self->dropped_samples);
        int r = state_persist(self);
        if (r < 0)
            vg_log(VG_LOG_WARN, "spool: cannot persist dropped counters: %s", strerror(-r));
    }
    return ret;
}

/* Drops the oldest signals a segment at a time until need more bytes fit. The caller checked
 * that they fit once every droppable record is gone. */
static int make_room(spool_t *self, uint64_t need)
{
    return drop_down_to(self, self->limits.max_bytes - need);
}

/*
 * The filesystem is full before max_bytes is reached (a small disk, or another writer filled
 * it): the same policy as the spool's own bound — the oldest signals go first, counted — frees
 * at least need bytes. 0 when anything was freed (the caller tries its write again), -ENOSPC
 * when nothing could be. Without it a full disk lost every later message, evidence and command
 * reports included, and the signals without a count (issue 19's spool-full fault).
 */
static int make_room_on_disk(spool_t *self, uint64_t need)
{
    uint64_t before = self->bytes;
    drop_down_to(self, before > need ? before - need : 0);
    return self->bytes < before ? 0 : -ENOSPC;
}

/* A signals record with nowhere to go — no older signals left to drop — is dropped itself and
 * counted like any other overflow: its seq is reserved already, so the coordinator sees the
 * gap, and the count must explain it. */
static void drop_unwritten(spool_t *self, uint32_t samples)
{
    self->dropped_messages++;
    self->dropped_samples += samples;
    vg_log(VG_LOG_WARN,
           "spool: full, dropped the newest signals messages=1 samples=%" PRIu32
           " dropped_messages_total=%" PRIu64 " dropped_samples_total=%" PRIu64,
           samples, self->dropped_messages, self->dropped_samples);
    int r = state_persist(self);
    if (r < 0)
        vg_log(VG_LOG_WARN, "spool: cannot persist dropped counters: %s", strerror(-r));
}

/* ---- recovery ---- */

struct reader {
    int fd;
    uint8_t *buf;
    size_t cap;
    size_t pos;
    size_t end;
    uint64_t buf_off; /* file offset of buf[0] */
};

/* Makes n (<= cap) bytes available at rd->buf + rd->pos. -ENODATA at end of file. */
static int reader_fill(struct reader *rd, size_t n)
{
    if (rd->end - rd->pos >= n)
        return 0;
    memmove(rd->buf, rd->buf + rd->pos, rd->end - rd->pos);
    rd->buf_off += rd->pos;
    rd->end -= rd->pos;
    rd->pos = 0;
    while (rd->end < n) {
        ssize_t got = read(rd->fd, rd->buf + rd->end, rd->cap - rd->end);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (got == 0)
            return -ENODATA;
        rd->end += (size_t)got;
    }
    return 0;
}

/* Parses one record at the reader's position. 0, -EBADMSG with *why set, or an I/O error. */
static int scan_record(struct reader *rd, uint64_t file_size, uint64_t base, uint64_t prev_seq,
                       struct rec *ret, const char **why)
{
    uint64_t off = rd->buf_off + rd->pos;
    struct rec_header h;
    int r;

    if (file_size - off < REC_HDR) {
        *why = "short header";
        return -EBADMSG;
    }
    r = reader_fill(rd, REC_HDR);
    if (r < 0)
        return r;
    const uint8_t *p = rd->buf + rd->pos;
    header_decode(p, &h);
    if (h.magic != REC_MAGIC) {
        *why = "bad magic";
        return -EBADMSG;
    }
    if (h.len > file_size - off - REC_HDR || off + REC_HDR + h.len > SEG_MAX) {
        *why = "length past the end";
        return -EBADMSG;
    }
    if (!kind_valid(h.kind)) {
        *why = "bad kind";
        return -EBADMSG;
    }
    if (h.seq < base || h.seq - base > REC_DELTA_MAX || h.seq <= prev_seq) {
        *why = "seq out of order";
        return -EBADMSG;
    }
    uint32_t crc = header_crc_start(p);
    rd->pos += REC_HDR;
    for (uint32_t left = h.len; left > 0;) {
        size_t n = left < rd->cap ? left : rd->cap;
        r = reader_fill(rd, n);
        if (r < 0)
            return r;
        crc = crc32c_update(crc, rd->buf + rd->pos, n);
        rd->pos += n;
        left -= (uint32_t)n;
    }
    if (~crc != h.crc) {
        *why = "checksum mismatch";
        return -EBADMSG;
    }
    *ret = (struct rec){
        .delta = (uint32_t)(h.seq - base),
        .off = (uint32_t)off,
        .samples = h.samples,
        .len = h.len,
        .kind = h.kind,
        .state = REC_UNSENT,
    };
    return 0;
}

/* Rebuilds segment si's index from its file. The last segment loses a torn or corrupt tail;
 * an older one keeps its records before the damage and the rest is skipped. */
static int seg_scan(spool_t *self, size_t si, bool last, struct reader *rd, uint64_t *prev_seq)
{
    struct segment *seg = &self->segs[si];
    char name[SEG_NAME_LEN];
    struct stat st;
    const char *why = NULL;
    int ret = 0;

    seg_name(name, seg->base);
    int fd = openat(self->dirfd, name, (last ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        ret = -errno;
        goto out_close;
    }
    uint64_t size = (uint64_t)st.st_size;
    *rd = (struct reader){.fd = fd, .buf = rd->buf, .cap = rd->cap};

    for (;;) {
        uint64_t off = rd->buf_off + rd->pos;
        struct rec r;
        if (off == size)
            break;
        ret = scan_record(rd, size, seg->base, *prev_seq, &r, &why);
        if (ret == -ENODATA) { /* the file shrank under us */
            why = "short read";
            ret = -EBADMSG;
        }
        if (ret == -EBADMSG) {
            ret = 0;
            if (last) {
                vg_log(VG_LOG_WARN,
                       "spool: segment=%s torn or corrupt record at offset=%" PRIu64
                       " (%s): cutting %" PRIu64 " bytes",
                       name, off, why, size - off);
                if (ftruncate(fd, (off_t)off) < 0 || fsync(fd) < 0) {
                    ret = -errno;
                    goto out_close;
                }
                size = off;
            } else {
                vg_log(VG_LOG_WARN,
                       "spool: segment=%s corrupt record at offset=%" PRIu64
                       " (%s): skipping the remaining %" PRIu64 " bytes of the segment",
                       name, off, why, size - off);
            }
            break;
        }
        if (ret < 0)
            goto out_close;
        ret = seg_reserve_rec(seg);
        if (ret < 0)
            goto out_close;
        seg->recs[seg->nrecs++] = r;
        rec_account(self, seg, &r);
        *prev_seq = rec_seq(seg, &r);
    }
    seg->size = size;
    self->bytes += size;

out_close:
    close(fd);
    return ret;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static bool parse_seg_name(const char *name, uint64_t *ret_base)
{
    uint64_t base = 0;

    if (strlen(name) != 20 || strcmp(name + 16, ".seg") != 0)
        return false;
    for (int i = 0; i < 16; i++) {
        char c = name[i];
        unsigned int digit;
        if (c >= '0' && c <= '9')
            digit = (unsigned int)(c - '0');
        else if (c >= 'a' && c <= 'f')
            digit = (unsigned int)(c - 'a' + 10);
        else
            return false;
        base = (base << 4) | digit;
    }
    *ret_base = base;
    return true;
}

/* Lists segment bases in order; removes leftovers of interrupted rewrites. */
static int list_segments(spool_t *self, uint64_t **ret_bases, size_t *ret_n)
{
    int fd = dup(self->dirfd);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        int ret = -errno;
        close(fd);
        return ret;
    }
    rewinddir(d);

    uint64_t *bases = NULL;
    size_t n = 0, cap = 0;
    int ret = 0;
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        uint64_t base;
        if (len > 4 && strcmp(de->d_name + len - 4, ".tmp") == 0) {
            unlinkat(self->dirfd, de->d_name, 0);
        } else if (parse_seg_name(de->d_name, &base)) {
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                uint64_t *grown = realloc(bases, cap * sizeof(*grown));
                if (!grown) {
                    ret = -ENOMEM;
                    break;
                }
                bases = grown;
            }
            bases[n++] = base;
        }
        errno = 0;
    }
    if (ret == 0 && errno != 0)
        ret = -errno;
    closedir(d);
    if (ret < 0) {
        free(bases);
        return ret;
    }
    if (n > 0)
        qsort(bases, n, sizeof(*bases), cmp_u64);
    *ret_bases = bases;
    *ret_n = n;
    return 0;
}

static int recover(spool_t *self, char *err, size_t errlen)
{
    uint64_t *bases = NULL;
    size_t nbases = 0;
    uint64_t prev_seq = 0;
    struct reader rd = {.cap = IO_CHUNK};
    int ret;

    ret = list_segments(self, &bases, &nbases);
    if (ret < 0) {
        set_err(err, errlen, "cannot list the spool directory: %s", strerror(-ret));
        return ret;
    }
    rd.buf = malloc(rd.cap);
    if (!rd.buf) {
        ret = -ENOMEM;
        set_err(err, errlen, "out of memory");
        goto out_free;
    }
    for (size_t i = 0; i < nbases; i++) {
        char name[SEG_NAME_LEN];
        seg_name(name, bases[i]);
        ret = seg_push(self, bases[i]);
        if (ret == 0)
            ret = seg_scan(self, self->nsegs - 1, i == nbases - 1, &rd, &prev_seq);
        if (ret < 0) {
            set_err(err, errlen, "cannot read spool segment %s: %s", name, strerror(-ret));
            goto out_free;
        }
        if (self->segs[self->nsegs - 1].nrecs == 0) {
            if (self->segs[self->nsegs - 1].size > 0)
                vg_log(VG_LOG_WARN, "spool: segment=%s holds no readable record: deleting it",
                       name);
            ret = seg_remove(self, self->nsegs - 1);
            if (ret < 0) {
                set_err(err, errlen, "cannot delete spool segment %s: %s", name, strerror(-ret));
                goto out_free;
            }
        }
    }
    self->last_appended = prev_seq;

    uint64_t ceiling = 0, messages = 0, samples = 0, in_flight = 0;
    ret = state_read(self, &ceiling, &messages, &samples, &in_flight);
    uint64_t on_disk = ret == 0 ? ceiling : 0;
    if (ret == 0) {
        self->dropped_messages = messages;
        self->dropped_samples = samples;
        self->dropped_in_flight = in_flight;
    } else if (ret == -ENOENT && self->nsegs == 0) {
        ceiling = 1; /* a new spool: seq 0 is never used */
    } else if (ret == -ENOENT && self->limits.fsync) {
        ceiling = prev_seq + 1; /* not needed yet: the records prove their seqs */
    } else if (ret == -ENOENT || ret == -EBADMSG) {
        /* Seqs up to a block past the last record may have been handed out. */
        vg_log(VG_LOG_WARN,
               "spool: %s " STATE_FILE " file: resuming seqs a block above the last record"
               " seq=%" PRIu64 ", dropped counters restart at 0",
               ret == -ENOENT ? "missing" : "unreadable", prev_seq);
        ceiling = prev_seq + 1 + SEQ_BLOCK;
    } else {
        set_err(err, errlen, "cannot read %s: %s", STATE_FILE, strerror(-ret));
        goto out_free;
    }
    self->next_seq = ceiling > prev_seq ? ceiling : prev_seq + 1;
    self->ceiling = on_disk; /* what "next-seq" says; raised when needed ("Sequence numbers") */
    ret = 0;

out_free:
    free(rd.buf);
    free(bases);
    return ret;
}

/* ---- public ---- */

static void limits_normalize(struct spool_limits *l)
{
    if (l->max_bytes == 0)
        l->max_bytes = MAX_BYTES_DEFAULT;
    if (l->max_bytes < SEG_MIN)
        l->max_bytes = SEG_MIN;
    if (l->segment_bytes == 0) {
        l->segment_bytes = l->max_bytes / 8;
        if (l->segment_bytes > SEG_DEFAULT_MAX)
            l->segment_bytes = SEG_DEFAULT_MAX;
        if (l->segment_bytes < SEG_DEFAULT_MIN)
            l->segment_bytes = SEG_DEFAULT_MIN;
    }
    if (l->segment_bytes > SEG_MAX)
        l->segment_bytes = SEG_MAX;
    if (l->segment_bytes > l->max_bytes)
        l->segment_bytes = l->max_bytes;
    if (l->segment_bytes < SEG_MIN)
        l->segment_bytes = SEG_MIN;
}

uint64_t spool_record_max(const struct spool_limits *limits)
{
    struct spool_limits l = *limits;
    limits_normalize(&l);
    return l.segment_bytes - REC_HDR;
}

spool_t *spool_open(const char *dir, const struct spool_limits *limits, char *err, size_t errlen)
{
    spool_t *self = calloc(1, sizeof(*self));
    if (!self) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    self->dirfd = -1;
    self->active_fd = -1;
    self->read_fd = -1;
    if (limits)
        self->limits = *limits;
    limits_normalize(&self->limits);

    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        set_err(err, errlen, "cannot create spool directory %s: %s", dir, strerror(errno));
        goto err_free;
    }
    self->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (self->dirfd < 0) {
        set_err(err, errlen, "cannot open spool directory %s: %s", dir, strerror(errno));
        goto err_free;
    }
    /* Two agents sharing a spool would reuse each other's seqs. */
    if (flock(self->dirfd, LOCK_EX | LOCK_NB) < 0) {
        set_err(err, errlen, "spool directory %s: %s", dir,
                errno == EWOULDBLOCK ? "in use by another process" : strerror(errno));
        goto err_free;
    }
    if (recover(self, err, errlen) < 0)
        goto err_free;
    vg_log(VG_LOG_DEBUG,
           "spool: opened dir=%s segments=%zu records=%" PRIu64 " bytes=%" PRIu64
           " next_seq=%" PRIu64,
           dir, self->nsegs, self->depth, self->bytes, self->next_seq);
    return self;

err_free:
    spool_destroy(&self);
    return NULL;
}

void spool_destroy(spool_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    spool_t *self = *self_p;
    close_active(self);
    close_reader(self);
    if (self->dirfd >= 0)
        close(self->dirfd);
    for (size_t i = 0; i < self->nsegs; i++)
        free(self->segs[i].recs);
    free(self->segs);
    free(self->buf);
    free(self);
    *self_p = NULL;
}

int spool_reserve_seq(spool_t *self, uint64_t *ret_seq)
{
    if (self->next_seq == UINT64_MAX)
        return -EOVERFLOW;
    /* With fsync, the record written for this seq is what proves it used. */
    if (!self->limits.fsync && self->next_seq >= self->ceiling) {
        uint64_t ceiling = self->next_seq + 1;
        ceiling = UINT64_MAX - ceiling < SEQ_BLOCK ? UINT64_MAX : ceiling + SEQ_BLOCK - 1;
        int ret = state_write(self, ceiling);
        /* The state file needs a block of its own: on a full filesystem older signals make
         * way for it. */
        while (disk_full(ret) && make_room_on_disk(self, STATE_ROOM) == 0)
            ret = state_write(self, ceiling);
        if (ret < 0)
            return ret;
        self->ceiling = ceiling;
    }
    *ret_seq = self->next_seq++;
    return 0;
}

/* Makes segs[nsegs - 1] a new, empty, active segment named after seq. */
static int seg_create(spool_t *self, uint64_t seq)
{
    char name[SEG_NAME_LEN];
    int ret;

    seg_name(name, seq);
    int fd = openat(self->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    ret = self->limits.fsync ? fsync_dir(self) : 0;
    if (ret == 0)
        ret = seg_push(self, seq);
    if (ret < 0) {
        close(fd);
        unlinkat(self->dirfd, name, 0);
        return ret;
    }
    self->active_fd = fd;
    return 0;
}

/* Writes one record at the end of the active segment (a new one when it is full) and indexes
 * it. On failure nothing is left behind, so the write can be tried again. */
static int write_record(spool_t *self, uint64_t seq, enum spool_kind kind, uint32_t samples,
                        const void *data, size_t len)
{
    uint64_t need = REC_HDR + (uint64_t)len;
    int ret;

    if (self->active_fd >= 0) {
        const struct segment *act = &self->segs[self->nsegs - 1];
        if (act->size + need > self->limits.segment_bytes || seq - act->base > UINT32_MAX)
            close_active(self);
    }
    if (self->active_fd < 0) {
        ret = seg_create(self, seq);
        if (ret < 0)
            return ret;
    }
    struct segment *act = &self->segs[self->nsegs - 1];
    ret = seg_reserve_rec(act);
    if (ret < 0)
        return ret;

    uint8_t hdr[REC_HDR];
    header_encode(hdr, seq, (uint8_t)kind, samples, data, (uint32_t)len);
    ret = pwrite_record(self->active_fd, hdr, data, len, act->size);
    if (ret == 0 && self->limits.fsync && fdatasync(self->active_fd) < 0)
        ret = -errno;
    if (ret < 0) {
        /* Leave no partial record behind for the next append to follow. */
        if (ftruncate(self->active_fd, (off_t)act->size) < 0)
            close_active(self); /* never append after garbage: the next record opens a new file */
        return ret;
    }

    struct rec r = {
        .delta = (uint32_t)(seq - act->base),
        .off = (uint32_t)act->size,
        .samples = samples,
        .len = (unsigned int)len,
        .kind = (unsigned int)kind,
        .state = REC_UNSENT,
    };
    act->recs[act->nrecs++] = r;
    rec_account(self, act, &r);
    act->size += need;
    self->bytes += need;
    self->last_appended = seq;
    return 0;
}

int spool_append(spool_t *self, uint64_t seq, enum spool_kind kind, uint32_t samples,
                 const void *data, size_t len)
{
    int ret;

    if (!kind_valid((unsigned int)kind) || (len > 0 && !data))
        return -EINVAL;
    if (seq >= self->next_seq || seq <= self->last_appended)
        return -EINVAL; /* not reserved, or not in increasing order */
    if (len > self->limits.segment_bytes - REC_HDR)
        return -EMSGSIZE;
    uint64_t need = REC_HDR + (uint64_t)len;

    if (self->bytes + need > self->limits.max_bytes) {
        if (self->keep_bytes + need > self->limits.max_bytes) {
            if (kind != SPOOL_KIND_SIGNALS)
                return -ENOSPC;
            drop_unwritten(self, samples);
            return 0;
        }
        ret = make_room(self, need);
        if (ret < 0)
            return ret;
    }

    /* A full filesystem below max_bytes: older signals make way, as for the bound above. */
    while (disk_full(ret = write_record(self, seq, kind, samples, data, len)) &&
           make_room_on_disk(self, need) == 0)
        ;
    if (disk_full(ret) && kind == SPOOL_KIND_SIGNALS) {
        drop_unwritten(self, samples);
        return 0;
    }
    return ret;
}

int spool_next_unsent(spool_t *self, struct spool_entry *ret)
{
    for (;;) {
        size_t si = self->nsegs ? seg_for(self, self->unsent_hint) : 0;
        uint32_t ri = si < self->nsegs ? rec_lower(&self->segs[si], self->unsent_hint) : 0;
        struct segment *seg = NULL;
        struct rec *r = NULL;

        for (; si < self->nsegs; si++, ri = 0) {
            seg = &self->segs[si];
            if (seg->live == 0)
                continue;
            for (; ri < seg->nrecs && seg->recs[ri].state != REC_UNSENT; ri++)
                ;
            if (ri < seg->nrecs) {
                r = &seg->recs[ri];
                break;
            }
        }
        if (!r) {
            self->unsent_hint = self->last_appended + 1;
            return -ENOENT;
        }
        uint64_t seq = rec_seq(seg, r);
        self->unsent_hint = seq;

        int fd = -1;
        int err = seg_fd(self, si, &fd);
        if (err == 0)
            err = buf_reserve(self, rec_size(r));
        if (err == 0)
            err = pread_all(fd, self->buf, rec_size(r), r->off);
        if (err == -ENOENT)
            return -EIO; /* the segment vanished: -ENOENT would read as "nothing to send" */
        if (err < 0 && err != -ENODATA)
            return err;

        struct rec_header h;
        bool intact = false;
        if (err == 0) {
            header_decode(self->buf, &h);
            uint32_t crc = crc32c_update(header_crc_start(self->buf), self->buf + REC_HDR, r->len);
            intact = h.magic == REC_MAGIC && h.len == r->len && h.seq == seq && h.kind == r->kind &&
                     h.samples == r->samples && ~crc == h.crc;
        }
        if (intact) {
            *ret = (struct spool_entry){
                .seq = seq,
                .kind = (enum spool_kind)r->kind,
                .samples = r->samples,
                .data = self->buf + REC_HDR,
                .len = r->len,
            };
            return 0;
        }
        char name[SEG_NAME_LEN];
        seg_name(name, seg->base);
        vg_log(VG_LOG_ERROR,
               "spool: record seq=%" PRIu64 " segment=%s offset=%" PRIu32
               " is damaged on disk (%s): discarding it",
               seq, name, r->off, err == 0 ? "checksum mismatch" : "short file");
        rec_finish(self, seg, r);
        reap(self);
    }
}

void spool_mark_sent(spool_t *self, uint64_t seq)
{
    struct segment *seg;
    struct rec *r = rec_find(self, seq, &seg);

    if (r && r->state == REC_UNSENT) {
        r->state = REC_INFLIGHT;
        r->sent = 1;
        self->inflight++;
    }
}

void spool_requeue_inflight(spool_t *self)
{
    for (size_t si = 0; si < self->nsegs && self->inflight > 0; si++) {
        struct segment *seg = &self->segs[si];
        for (uint32_t i = 0; i < seg->nrecs && self->inflight > 0; i++) {
            struct rec *r = &seg->recs[i];
            if (r->state != REC_INFLIGHT)
                continue;
            r->state = REC_UNSENT;
            self->inflight--;
            if (rec_seq(seg, r) < self->unsent_hint)
                self->unsent_hint = rec_seq(seg, r);
        }
    }
}

uint64_t spool_oldest_inflight(const spool_t *self)
{
    for (size_t si = 0; si < self->nsegs && self->inflight > 0; si++) {
        const struct segment *seg = &self->segs[si];
        if (seg->live == 0)
            continue;
        for (uint32_t i = 0; i < seg->nrecs; i++) {
            if (seg->recs[i].state == REC_INFLIGHT)
                return rec_seq(seg, &seg->recs[i]);
        }
    }
    return 0;
}

int spool_ack(spool_t *self, uint64_t first, uint64_t last)
{
    uint64_t removed = 0;

    if (first > last || self->nsegs == 0)
        return 0;
    for (size_t si = seg_for(self, first); si < self->nsegs; si++) {
        struct segment *seg = &self->segs[si];
        if (seg->base > last)
            break;
        if (seg->live == 0)
            continue;
        for (uint32_t i = rec_lower(seg, first); i < seg->nrecs; i++) {
            struct rec *r = &seg->recs[i];
            if (rec_seq(seg, r) > last)
                break;
            if (r->state == REC_DONE)
                continue;
            rec_finish(self, seg, r);
            removed++;
        }
    }
    int ret = reap(self);
    if (ret < 0)
        return ret;
    return removed > INT_MAX ? INT_MAX : (int)removed;
}

int spool_discard(spool_t *self, uint64_t seq)
{
    struct segment *seg;
    struct rec *r = rec_find(self, seq, &seg);

    if (!r || r->state == REC_DONE)
        return -ENOENT;
    rec_finish(self, seg, r);
    return reap(self);
}

void spool_stats(const spool_t *self, struct spool_stats *ret)
{
    *ret = (struct spool_stats){
        .depth = self->depth,
        .bytes = self->bytes,
        .inflight = self->inflight,
        .dropped_messages = self->dropped_messages,
        .dropped_samples = self->dropped_samples,
        .next_seq = self->next_seq,
    };
}
