/*
 * xe_gt_stats.h - the GT statistics in debugfs, dri/<minor>/gt<N>/stats:
 * one "name: value" line per counter (upstream names, e.g.
 * svm_pagefault_count). Reading needs debugfs mounted and root.
 *
 * The directory is found as upstream IGT finds it (the minor of the fd's
 * device node), falling back to the minor of the primary node of the same
 * device (kernels whose render nodes have no debugfs directory).
 */
#ifndef XESVM_IGT_XE_GT_STATS_H_
#define XESVM_IGT_XE_GT_STATS_H_

#include <stddef.h>
#include <stdint.h>

#define XE_DEBUGFS_DRI_DIR "/sys/kernel/debug/dri"

/* Parses the stats file at `path` for the counter `name` (a whole name,
 * not a prefix). Returns 0 with the value in *value, -ENOENT when the file
 * or the counter is missing, -EPROTO for a line "name:" without a number,
 * or -errno of open. */
int xe_gt_stats_read_file(const char *path, const char *name, int64_t *value);

/* Writes the stats path of GT gt_id of the device behind fd into buf.
 * Returns 0, or -ENOENT when no candidate path exists (debugfs not
 * mounted, no permission, or a kernel without GT stats). */
int xe_gt_stats_path(int fd, unsigned gt_id, char *buf, size_t len);

/* xe_gt_stats_path() + xe_gt_stats_read_file(). */
int xe_gt_stats_get(int fd, unsigned gt_id, const char *name, int64_t *value);

#endif /* XESVM_IGT_XE_GT_STATS_H_ */
