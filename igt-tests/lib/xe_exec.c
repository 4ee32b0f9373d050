/*
 * xe_exec.c - EXEC with user-fence syncs.
 */
#include "xe_exec.h"

#include "xe_device.h"
#include "xe_user_fence.h"

int xe_exec(int fd, uint32_t exec_queue_id, uint64_t batch_addr, struct drm_xe_sync *syncs, uint32_t num_syncs) {
  struct drm_xe_exec e = {
      .exec_queue_id = exec_queue_id,
      .num_syncs = num_syncs,
      .syncs = (uintptr_t)syncs,
      .address = batch_addr,
      .num_batch_buffer = 1,
  };
  return xe_ioctl(fd, DRM_IOCTL_XE_EXEC, &e);
}

int xe_exec_with_user_fence(int fd, uint32_t exec_queue_id, uint64_t batch_addr, uint64_t *fence, uint64_t value) {
  struct drm_xe_sync sync = xe_user_fence_sync(fence, value);
  return xe_exec(fd, exec_queue_id, batch_addr, &sync, 1);
}
