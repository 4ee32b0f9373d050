/*
 * xe_gt_stats.c - locating and parsing debugfs gt<N>/stats.
 */
#include "xe_gt_stats.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

int xe_gt_stats_read_file(const char *path, const char *name, int64_t *value) {
  FILE *f = fopen(path, "r");
  if (!f) return -errno;
  size_t name_len = strlen(name);
  char line[256];
  int ret = -ENOENT;
  while (fgets(line, sizeof(line), f)) {
    const char *p = line;
    while (*p == ' ' || *p == '\t') p++;
    if (strncmp(p, name, name_len) != 0 || p[name_len] != ':') continue;
    char *end;
    errno = 0;
    long long v = strtoll(p + name_len + 1, &end, 10);
    ret = (end == p + name_len + 1 || errno) ? -EPROTO : 0;
    if (!ret) *value = v;
    break;
  }
  fclose(f);
  return ret;
}

static int try_minor(unsigned minor, unsigned gt_id, char *buf, size_t len) {
  snprintf(buf, len, "%s/%u/gt%u/stats", XE_DEBUGFS_DRI_DIR, minor, gt_id);
  return access(buf, R_OK) == 0 ? 0 : -ENOENT;
}

int xe_gt_stats_path(int fd, unsigned gt_id, char *buf, size_t len) {
  struct stat st;
  if (fstat(fd, &st) || !S_ISCHR(st.st_mode)) return -ENOENT;
  if (try_minor(minor(st.st_rdev), gt_id, buf, len) == 0) return 0;
  /* The primary node of the same device: /sys/dev/char/M:m/device/drm/cardN. */
  char dir[128];
  snprintf(dir, sizeof(dir), "/sys/dev/char/%u:%u/device/drm", major(st.st_rdev), minor(st.st_rdev));
  DIR *d = opendir(dir);
  if (!d) return -ENOENT;
  int ret = -ENOENT;
  for (struct dirent *e; ret && (e = readdir(d));) {
    unsigned card;
    char tail;
    if (sscanf(e->d_name, "card%u%c", &card, &tail) == 1) ret = try_minor(card, gt_id, buf, len);
  }
  closedir(d);
  return ret;
}

int xe_gt_stats_get(int fd, unsigned gt_id, const char *name, int64_t *value) {
  char path[256];
  int ret = xe_gt_stats_path(fd, gt_id, path, sizeof(path));
  return ret ? ret : xe_gt_stats_read_file(path, name, value);
}
