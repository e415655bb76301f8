/*
 * Replacing a small file whole: readers see the old contents or the new, never a part. Used for
 * files other programs read while the daemon rewrites them (the agent's status file for its
 * probes, the coordinator's published checkpoints).
 */
#ifndef VG_ATOMICFILE_H
#define VG_ATOMICFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Writes len bytes to "<path>.part" (created with mode, not through a symlink), fsyncs it when
 * durable, and renames it over path. 0, or a negative errno with the .part file removed. */
int vg_file_replace(const char *path, const void *data, size_t len, mode_t mode, bool durable);

#endif
