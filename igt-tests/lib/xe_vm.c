/*
 * xe_vm.c - VM create/destroy, the mirror bind and unbind.
 */
#include "xe_vm.h"

#include "xe_device.h"

int xe_vm_create(int fd, uint32_t flags, uint32_t *vm_id) {
  struct drm_xe_vm_create c = {.flags = flags};
  int ret = xe_ioctl(fd, DRM_IOCTL_XE_VM_CREATE, &c);
  if (!ret) *vm_id = c.vm_id;
  return ret;
}

int xe_vm_destroy(int fd, uint32_t vm_id) {
  struct drm_xe_vm_destroy d = {.vm_id = vm_id};
  return xe_ioctl(fd, DRM_IOCTL_XE_VM_DESTROY, &d);
}

int xe_vm_supports_faults(int fd) {
  uint32_t vm;
  int ret = xe_vm_create(fd, XE_VM_FLAGS_SVM, &vm);
  if (!ret) xe_vm_destroy(fd, vm);
  return ret;
}

int xe_vm_bind_op(int fd, uint32_t vm_id, const struct drm_xe_vm_bind_op *op, struct drm_xe_sync *sync) {
  struct drm_xe_vm_bind b = {
      .vm_id = vm_id,
      .num_binds = 1,
      .bind = *op,
      .num_syncs = sync ? 1 : 0,
      .syncs = (uintptr_t)sync,
  };
  return xe_ioctl(fd, DRM_IOCTL_XE_VM_BIND, &b);
}

int xe_vm_bind_cpu_addr_mirror(int fd, uint32_t vm_id, uint64_t start, uint64_t range, uint16_t pat_index,
                               struct drm_xe_sync *sync) {
  struct drm_xe_vm_bind_op op = {
      .pat_index = pat_index,
      .range = range,
      .addr = start,
      .op = DRM_XE_VM_BIND_OP_MAP,
      .flags = DRM_XE_VM_BIND_FLAG_CPU_ADDR_MIRROR,
  };
  return xe_vm_bind_op(fd, vm_id, &op, sync);
}

int xe_vm_unbind(int fd, uint32_t vm_id, uint64_t start, uint64_t range, struct drm_xe_sync *sync) {
  struct drm_xe_vm_bind_op op = {.range = range, .addr = start, .op = DRM_XE_VM_BIND_OP_UNMAP};
  return xe_vm_bind_op(fd, vm_id, &op, sync);
}
