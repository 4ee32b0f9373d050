/*
 * xe_vm.h - GPU virtual address spaces (VM_CREATE/VM_DESTROY) and the CPU
 * address mirror (VM_BIND OP_MAP with DRM_XE_VM_BIND_FLAG_CPU_ADDR_MIRROR).
 *
 * SVM needs a VM in LR_MODE | FAULT_MODE. Binding the mirror over a VA span
 * makes every CPU mapping inside it usable by the GPU at the same address:
 * a GPU access is served by a GPU page fault that looks up the CPU page
 * tables (and may migrate the page to VRAM). IGT binds the whole VA space,
 * [0, 1 << va_bits). Unbinding is OP_UNMAP over the same span; while GPU
 * mappings inside it are live the kernel refuses it with -EBUSY.
 *
 * All functions return 0 or the ioctl's -errno.
 */
#ifndef XESVM_IGT_XE_VM_H_
#define XESVM_IGT_XE_VM_H_

#include <stdint.h>

#include "xe_uapi.h"

#define XE_VM_FLAGS_SVM (DRM_XE_VM_CREATE_FLAG_LR_MODE | DRM_XE_VM_CREATE_FLAG_FAULT_MODE)

/* Creates a VM with `flags`; its id goes to *vm_id. */
int xe_vm_create(int fd, uint32_t flags, uint32_t *vm_id);
int xe_vm_destroy(int fd, uint32_t vm_id);

/* 0 when the device can create an LR | FAULT_MODE VM (the VM is destroyed
 * again), else the VM_CREATE error: IGT's xe_supports_faults(). */
int xe_vm_supports_faults(int fd);

/* One VM_BIND with `op` filled in and up to one sync (NULL for none). */
int xe_vm_bind_op(int fd, uint32_t vm_id, const struct drm_xe_vm_bind_op *op, struct drm_xe_sync *sync);

/* Binds the CPU address mirror over [start, start + range) with pat_index.
 * REQUIRES: start and range page aligned, inside the VM's VA bits. */
int xe_vm_bind_cpu_addr_mirror(int fd, uint32_t vm_id, uint64_t start, uint64_t range, uint16_t pat_index,
                               struct drm_xe_sync *sync);

/* Unmaps [start, start + range) (e.g. the mirror). -EBUSY while the span
 * still has GPU mappings the kernel will not drop. */
int xe_vm_unbind(int fd, uint32_t vm_id, uint64_t start, uint64_t range, struct drm_xe_sync *sync);

#endif /* XESVM_IGT_XE_VM_H_ */
