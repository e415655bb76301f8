/*
 * Fuzz target: the agent's spool read back from disk (spool_open's recovery in agent/spool.c), as
 * after a crash, a full disk or a damaged file: segment files "<16 hex>.seg" of CRC-32C-checked
 * records and the "next-seq" state file, then the spool in use (send, ack, append) and reopened.
 *
 * The first input byte chooses: bit 0 = recompute every record's CRC-32C before opening
 * (random bytes never carry a valid one, so this reaches what follows the checks: seq order,
 * lengths, kinds, segment bases), bit 1 = ack the records as they are read. The rest is a set of
 * files (inputfiles.h: parts "<name>\n<content>" separated by INPUTFILES_SEPARATOR) that make
 * the spool directory.
 *
 * Oracles beyond "no crash, no sanitizer report" — the promises of spool.h: damaged files never
 * stop the agent from starting (open succeeds); unsent records come out in increasing seq order
 * with a valid kind; a new seq is above every seq on disk; what is appended is there after a
 * reopen, and everything acknowledged is gone.
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "inputfiles.h"
#include "log.h"
#include "spool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REC_MAGIC UINT32_C(0x52534756)
#define REC_HDR 25u
#define MAX_SEG (256 * 1024)

/* CRC-32C as spool.c computes it (reflected, polynomial 0x82f63b78). */
static uint32_t crc32c_update(uint32_t crc, const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (UINT32_C(0x82f63b78) & (0u - (crc & 1)));
    }
    return crc;
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Rewrites every record's CRC that the walk reaches (magic and length as they are). */
static void fix_segment(const char *path)
{
    static uint8_t buf[MAX_SEG];
    FILE *f = fopen(path, "r+b");
    if (!f)
        return;
    size_t len = fread(buf, 1, sizeof(buf), f);
    for (size_t off = 0; len - off >= REC_HDR && get_le32(buf + off) == REC_MAGIC;) {
        uint32_t plen = get_le32(buf + off + 4);
        if (plen > len - off - REC_HDR)
            break;
        uint32_t crc = crc32c_update(UINT32_C(0xffffffff), buf + off, 8);
        crc = crc32c_update(crc, buf + off + 12, REC_HDR - 12);
        crc = ~crc32c_update(crc, buf + off + REC_HDR, plen);
        for (int i = 0; i < 4; i++)
            buf[off + 8 + i] = (uint8_t)(crc >> (8 * i));
        off += REC_HDR + plen;
    }
    rewind(f);
    if (fwrite(buf, 1, len, f) != len)
        abort();
    fclose(f);
}

/* Fixes the segments' CRCs; false when the directory holds a subdirectory (then opening may
 * fail for a reason that is not the spool's). */
static bool prepare(bool fix)
{
    bool plain = true;
    DIR *d = opendir(inputfiles_dir());
    struct dirent *de;
    if (!d)
        abort();
    while ((de = readdir(d)) != NULL) {
        char path[4096];
        struct stat st;
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", inputfiles_dir(), de->d_name);
        if (lstat(path, &st) < 0)
            abort();
        if (S_ISDIR(st.st_mode))
            plain = false;
        else if (fix && strlen(de->d_name) == 20 && strcmp(de->d_name + 16, ".seg") == 0)
            fix_segment(path);
    }
    closedir(d);
    return plain;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct spool_limits limits = {
        .max_bytes = 64 * 1024, .segment_bytes = 4096, .fsync = false};
    char err[512];

    vg_log_init("fuzz_spool", VG_LOG_ERROR, false);
    if (size < 1)
        return 0;
    bool fix = data[0] & 1, ack = data[0] & 2;
    inputfiles_unpack(data + 1, size - 1);
    bool plain = prepare(fix);

    spool_t *sp = spool_open(inputfiles_dir(), &limits, err, sizeof(err));
    if (!sp) {
        if (plain)
            abort();
        return 0;
    }
    struct spool_entry e;
    uint64_t prev = 0, read = 0;
    int r;
    while ((r = spool_next_unsent(sp, &e)) == 0) {
        if (e.seq <= prev || e.kind < SPOOL_KIND_SIGNALS || e.kind > SPOOL_KIND_RESULT ||
            (e.len > 0 && !e.data) || ++read > 100000)
            abort();
        prev = e.seq;
        spool_mark_sent(sp, e.seq);
        if (ack && spool_ack(sp, e.seq, e.seq) < 0)
            abort();
    }
    if (r != -ENOENT && r != -EIO)
        abort();

    uint64_t seq;
    r = spool_reserve_seq(sp, &seq);
    if (r == 0) {
        if (seq == 0 || seq <= prev)
            abort();
        static const char payload[] = "after recovery";
        r = spool_append(sp, seq, SPOOL_KIND_EVIDENCE, 0, payload, sizeof(payload));
        if (r != 0 && r != -ENOSPC)
            abort();
        spool_requeue_inflight(sp);
        spool_destroy(&sp);

        sp = spool_open(inputfiles_dir(), &limits, err, sizeof(err));
        if (!sp)
            abort();
        bool found = false;
        while (spool_next_unsent(sp, &e) == 0) {
            if (e.seq == seq) {
                found = e.len == sizeof(payload) && memcmp(e.data, payload, e.len) == 0;
                if (!found)
                    abort();
            }
            spool_mark_sent(sp, e.seq);
        }
        if (r == 0 && !found)
            abort();
        if (spool_ack(sp, 1, UINT64_MAX) < 0)
            abort();
        struct spool_stats st;
        spool_stats(sp, &st);
        if (st.depth != 0 || st.inflight != 0)
            abort();
    } else if (r != -EOVERFLOW) {
        abort();
    }
    spool_destroy(&sp);
    return 0;
}
