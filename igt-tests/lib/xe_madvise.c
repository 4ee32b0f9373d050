/*
 * xe_madvise.c - MADVISE calls.
 */
#include "xe_madvise.h"

#include "xe_device.h"

int xe_madvise(int fd, const struct drm_xe_madvise *m) {
  struct drm_xe_madvise copy = *m;
  return xe_ioctl(fd, DRM_IOCTL_XE_MADVISE, &copy);
}

int xe_madvise_preferred_loc(int fd, uint32_t vm_id, uint64_t start, uint64_t range, int32_t devmem_fd,
                             uint16_t policy) {
  struct drm_xe_madvise m = {
      .start = start, .range = range, .vm_id = vm_id, .type = DRM_XE_MEM_RANGE_ATTR_PREFERRED_LOC};
  m.preferred_mem_loc.devmem_fd = (uint32_t)devmem_fd;
  m.preferred_mem_loc.migration_policy = policy;
  return xe_madvise(fd, &m);
}

int xe_madvise_atomic(int fd, uint32_t vm_id, uint64_t start, uint64_t range, uint32_t mode) {
  struct drm_xe_madvise m = {.start = start, .range = range, .vm_id = vm_id, .type = DRM_XE_MEM_RANGE_ATTR_ATOMIC};
  m.atomic.val = mode;
  return xe_madvise(fd, &m);
}

int xe_madvise_pat(int fd, uint32_t vm_id, uint64_t start, uint64_t range, uint32_t pat_index) {
  struct drm_xe_madvise m = {.start = start, .range = range, .vm_id = vm_id, .type = DRM_XE_MEM_RANGE_ATTR_PAT};
  m.pat_index.val = pat_index;
  return xe_madvise(fd, &m);
}
