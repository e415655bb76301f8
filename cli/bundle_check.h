/*
 * `vigilctl evidence verify-bundle FILE`: an export bundle (common/bundle.h) checked offline, from
 * the tar alone, with no coordinator.
 *
 * One pass over the tar hashes every file as it is read (an artifact is never held whole); the
 * manifest, its signature, the checkpoint, the public key and the chain rows are kept (each
 * bounded). Then, in order, the first failure ending the check:
 *   1. the tar: one top directory, regular files only, paths inside it (no '..', nothing
 *      absolute, no links or devices), each path once, bounded sizes and counts;
 *   2. MANIFEST parses and MANIFEST.sig is the signature of it by the key it names;
 *   3. every file the manifest lists is there with that SHA-256, and nothing else is there;
 *   4. coordinator.pem holds that key; checkpoint.txt verifies and is signed by it;
 *   5. every chain link the manifest lists recomputes from the files (an artifact's vault chain
 *      from its bytes and its meta file; a timeline row's or report's link from its row file),
 *      no place lies past the checkpoint's head, a place at the head has the head's hash, and
 *      consecutive places link to each other.
 * What the bundle cannot show: places between those it holds (rows of other incidents) —
 * comparing the checkpoint with the coordinator's database does (`vigilctl evidence verify
 * --checkpoint`).
 *
 * Every input is hostile: the tar, the manifest, every name and size in them.
 */
#ifndef CTL_BUNDLE_CHECK_H
#define CTL_BUNDLE_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bundle.h"
#include "checkpoint.h"

#define BUNDLE_KEPT_FILE_MAX (1024 * 1024)        /* a chain row, meta, pem or checkpoint */
#define BUNDLE_KEPT_TOTAL_MAX (256 * 1024 * 1024) /* all of them together */
#define BUNDLE_ENTRY_MAX ((int64_t)1 << 30)       /* one file (an artifact's limit) */

struct bundle_report {
    char dir[VG_BUNDLE_PATH_MAX + 1]; /* the top directory */
    uint64_t incident_id;
    int64_t exported_at_ms;
    char exported_by[VG_BUNDLE_ACTOR_MAX + 1];
    char key_b64[VG_SIGN_PUBLIC_B64_LEN + 1];
    struct vg_checkpoint checkpoint;
    size_t files; /* listed and matching */
    uint64_t artifacts, artifact_bytes;
    size_t links[VG_CHAINS]; /* links recomputed, per chain */
    /* On failure: the file to blame ("" = the bundle as a whole) and why. */
    char file[VG_BUNDLE_PATH_MAX + 1];
    char error[768];
};

/* Checks the tar at path ("-" = standard input). 0 when the bundle holds; -EBADMSG when a file
 * or a signature does not (report->file and ->error say which and why); -EINVAL when it is not
 * a bundle; -EIO or -ENOENT when it cannot be read. */
int bundle_check_path(const char *path, struct bundle_report *report);
/* The same for a tar in memory (tests, the fuzz target). */
int bundle_check_memory(const void *data, size_t len, struct bundle_report *report);

#endif
