/*
 * xe_prefetch.c - OP_PREFETCH binds.
 */
#include "xe_prefetch.h"

#include "xe_vm.h"

int xe_vm_prefetch(int fd, uint32_t vm_id, uint64_t start, uint64_t range, uint32_t region, struct drm_xe_sync *sync) {
  struct drm_xe_vm_bind_op op = {
      .range = range,
      .addr = start,
      .op = DRM_XE_VM_BIND_OP_PREFETCH,
      .prefetch_mem_region_instance = region,
  };
  return xe_vm_bind_op(fd, vm_id, &op, sync);
}
