/*
 * xe_device.h - finding and talking to an Xe DRM device.
 *
 * An Xe device is a DRM render node whose driver reports the name "xe"
 * (DRM_IOCTL_VERSION), exactly as IGT's drm_open_driver(DRIVER_XE) and Mesa
 * find it; nothing here looks at PCI ids, so the software Xe device and real
 * Xe hardware are found the same way.
 *
 * Thread safety: all functions are safe to call concurrently; an fd may be
 * shared between threads and across fork() like any DRM fd.
 */
#ifndef XESVM_IGT_XE_DEVICE_H_
#define XESVM_IGT_XE_DEVICE_H_

#include <stdbool.h>
#include <stddef.h>

/* The directory scanned by xe_device_open() and the render minors tried. */
#define XE_DEVICE_DRI_DIR "/dev/dri"
#define XE_DEVICE_RENDER_MINOR_FIRST 128
#define XE_DEVICE_RENDER_MINOR_LAST 191

/* Opens the first render node renderD128..renderD191 in `dri_dir` whose DRM
 * driver is "xe". Returns the fd (O_RDWR | O_CLOEXEC; the caller closes
 * it), or -ENODEV when no such node exists, or when none could be opened
 * (then `why`, if not NULL, holds the last open error, e.g. "renderD128:
 * Permission denied"). REQUIRES: dri_dir != NULL. */
int xe_device_open_in(const char *dri_dir, char *why, size_t why_len);

/* xe_device_open_in(XE_DEVICE_DRI_DIR, ...). */
int xe_device_open(char *why, size_t why_len);

/* True when fd is a DRM device whose driver name is exactly `name`. */
bool xe_device_driver_is(int fd, const char *name);

/* ioctl(2) that retries on EINTR and EAGAIN. Returns 0 on success or
 * -errno (the ioctl's own error) on failure. */
int xe_ioctl(int fd, unsigned long request, void *arg);

#endif /* XESVM_IGT_XE_DEVICE_H_ */
