/*
 * xe_mem_range_attrs.c - the two-call VM_QUERY_MEM_RANGE_ATTRS protocol.
 */
#include "xe_mem_range_attrs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "xe_device.h"

int xe_query_mem_range_attrs(int fd, uint32_t vm_id, uint64_t start, uint64_t range,
                             struct drm_xe_mem_range_attr **attrs, uint32_t *num) {
  *attrs = NULL;
  *num = 0;
  for (int attempt = 0; attempt < 16; attempt++) {
    struct drm_xe_vm_query_mem_range_attr q = {.vm_id = vm_id, .start = start, .range = range};
    int ret = xe_ioctl(fd, DRM_IOCTL_XE_VM_QUERY_MEM_RANGE_ATTRS, &q);
    if (ret) return ret;
    if (q.num_mem_ranges == 0) return 0;
    if (q.sizeof_mem_range_attr < sizeof(struct drm_xe_mem_range_attr)) return -EPROTO;
    size_t elem = q.sizeof_mem_range_attr;
    uint32_t n = q.num_mem_ranges;
    char *buf = calloc(n, elem);
    if (!buf) return -ENOMEM;
    q.vector_of_mem_attr = (uintptr_t)buf;
    ret = xe_ioctl(fd, DRM_IOCTL_XE_VM_QUERY_MEM_RANGE_ATTRS, &q);
    if (ret == -ENOSPC) {
      free(buf);
      continue;
    }
    if (ret) {
      free(buf);
      return ret;
    }
    if (q.num_mem_ranges < n) n = q.num_mem_ranges;
    for (uint32_t i = 1; i < n && elem != sizeof(struct drm_xe_mem_range_attr); i++)
      memmove(buf + i * sizeof(struct drm_xe_mem_range_attr), buf + i * elem, sizeof(struct drm_xe_mem_range_attr));
    *attrs = (struct drm_xe_mem_range_attr *)buf;
    *num = n;
    return 0;
  }
  return -EAGAIN;
}
