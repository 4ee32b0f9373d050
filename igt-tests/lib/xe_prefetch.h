/*
 * xe_prefetch.h - VM_BIND OP_PREFETCH: move the pages of a mirrored range
 * to a memory region ahead of GPU use, so that the GPU's accesses need no
 * page fault (the region 0 = system memory, i.e. eviction on request).
 */
#ifndef XESVM_IGT_XE_PREFETCH_H_
#define XESVM_IGT_XE_PREFETCH_H_

#include <stdint.h>

#include "xe_uapi.h"

/* Prefetches [start, start + range) to region instance `region` (0 system,
 * n a VRAM instance, or (uint32_t)DRM_XE_CONSULT_MEM_ADVISE_PREF_LOC for the
 * range's preferred location). Completion is signalled on `sync` (may be
 * NULL). Returns 0 or the ioctl's -errno. REQUIRES: the range lies inside
 * the mirror and is page aligned. */
int xe_vm_prefetch(int fd, uint32_t vm_id, uint64_t start, uint64_t range, uint32_t region, struct drm_xe_sync *sync);

#endif /* XESVM_IGT_XE_PREFETCH_H_ */
