/*
 * xe_exec_queue.c - EXEC_QUEUE_CREATE / EXEC_QUEUE_DESTROY.
 */
#include "xe_exec_queue.h"

#include "xe_device.h"

int xe_exec_queue_create(int fd, uint32_t vm_id, const struct drm_xe_engine_class_instance *eci,
                         uint32_t *exec_queue_id) {
  struct drm_xe_engine_class_instance instance = *eci;
  struct drm_xe_exec_queue_create c = {
      .width = 1,
      .num_placements = 1,
      .vm_id = vm_id,
      .instances = (uintptr_t)&instance,
  };
  int ret = xe_ioctl(fd, DRM_IOCTL_XE_EXEC_QUEUE_CREATE, &c);
  if (!ret) *exec_queue_id = c.exec_queue_id;
  return ret;
}

int xe_exec_queue_destroy(int fd, uint32_t exec_queue_id) {
  struct drm_xe_exec_queue_destroy d = {.exec_queue_id = exec_queue_id};
  return xe_ioctl(fd, DRM_IOCTL_XE_EXEC_QUEUE_DESTROY, &d);
}
