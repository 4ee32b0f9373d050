/*
 * xe_user_fence.c - user-fence syncs and WAIT_USER_FENCE.
 */
#include "xe_user_fence.h"

#include "xe_device.h"

struct drm_xe_sync xe_user_fence_sync(uint64_t *addr, uint64_t value) {
  struct drm_xe_sync s = {
      .type = DRM_XE_SYNC_TYPE_USER_FENCE,
      .flags = DRM_XE_SYNC_FLAG_SIGNAL,
      .addr = (uintptr_t)addr,
      .timeline_value = value,
  };
  return s;
}

int xe_wait_user_fence(int fd, uint64_t *addr, uint64_t value, uint32_t exec_queue_id, int64_t timeout_ns) {
  struct drm_xe_wait_user_fence w = {
      .addr = (uintptr_t)addr,
      .op = DRM_XE_UFENCE_WAIT_OP_EQ,
      .value = value,
      .mask = ~0ull,
      .timeout = timeout_ns,
      .exec_queue_id = exec_queue_id,
  };
  return xe_ioctl(fd, DRM_IOCTL_XE_WAIT_USER_FENCE, &w);
}
