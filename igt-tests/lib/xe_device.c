/*
 * xe_device.c - render-node scan by driver name, and the retrying ioctl.
 */
#include "xe_device.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <xf86drm.h>

bool xe_device_driver_is(int fd, const char *name) {
  drmVersionPtr v = drmGetVersion(fd);
  if (!v) return false;
  bool match = v->name && strcmp(v->name, name) == 0;
  drmFreeVersion(v);
  return match;
}

int xe_device_open_in(const char *dri_dir, char *why, size_t why_len) {
  if (why && why_len) why[0] = '\0';
  for (int minor = XE_DEVICE_RENDER_MINOR_FIRST; minor <= XE_DEVICE_RENDER_MINOR_LAST; minor++) {
    char path[512];
    snprintf(path, sizeof(path), "%s/renderD%d", dri_dir, minor);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      if (errno != ENOENT && why && why_len) snprintf(why, why_len, "%s: %s", path, strerror(errno));
      continue;
    }
    if (xe_device_driver_is(fd, "xe")) return fd;
    close(fd);
  }
  return -ENODEV;
}

int xe_device_open(char *why, size_t why_len) { return xe_device_open_in(XE_DEVICE_DRI_DIR, why, why_len); }

int xe_ioctl(int fd, unsigned long request, void *arg) {
  int ret;
  do {
    ret = ioctl(fd, request, arg);
  } while (ret == -1 && (errno == EINTR || errno == EAGAIN));
  return ret == -1 ? -errno : 0;
}
