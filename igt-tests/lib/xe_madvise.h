/*
 * xe_madvise.h - DRM_IOCTL_XE_MADVISE: memory attributes of a mirrored VA
 * range (preferred location, atomic access mode, PAT index). The fault and
 * prefetch paths honour them: e.g. a preferred location of system memory
 * means GPU faults map the pages where they are and migrate nothing.
 *
 * All functions return 0 or the ioctl's -errno.
 */
#ifndef XESVM_IGT_XE_MADVISE_H_
#define XESVM_IGT_XE_MADVISE_H_

#include <stdint.h>

#include "xe_uapi.h"

/* One MADVISE call with `m` as given (vm_id, start, range, type, union). */
int xe_madvise(int fd, const struct drm_xe_madvise *m);

/* Preferred location: devmem_fd DRM_XE_PREFERRED_LOC_DEFAULT_DEVICE (the
 * faulting tile's VRAM), DRM_XE_PREFERRED_LOC_DEFAULT_SYSTEM, or a device
 * fd; policy DRM_XE_MIGRATE_ALL_PAGES or _ONLY_SYSTEM_PAGES. */
int xe_madvise_preferred_loc(int fd, uint32_t vm_id, uint64_t start, uint64_t range, int32_t devmem_fd,
                             uint16_t policy);

/* Atomic mode DRM_XE_ATOMIC_{UNDEFINED,DEVICE,GLOBAL,CPU}. */
int xe_madvise_atomic(int fd, uint32_t vm_id, uint64_t start, uint64_t range, uint32_t mode);

int xe_madvise_pat(int fd, uint32_t vm_id, uint64_t start, uint64_t range, uint32_t pat_index);

#endif /* XESVM_IGT_XE_MADVISE_H_ */
