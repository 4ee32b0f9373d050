/*
 * xe_mem_range_attrs.h - DRM_IOCTL_XE_VM_QUERY_MEM_RANGE_ATTRS: read back
 * the attributes (madvise state) of the ranges covering a VA span.
 *
 * Two-call protocol: the first call (no vector) returns the number of
 * ranges and the element size; the second fills a vector of that many
 * elements. -ENOSPC from the second call means the ranges changed in
 * between; the query then starts over.
 */
#ifndef XESVM_IGT_XE_MEM_RANGE_ATTRS_H_
#define XESVM_IGT_XE_MEM_RANGE_ATTRS_H_

#include <stdint.h>

#include "xe_uapi.h"

/* Queries [start, start + range) of vm_id. On success returns 0 and a
 * malloc'd array of *num ranges in *attrs (the caller frees it). Returns
 * -errno of the ioctl, -EPROTO when the kernel's element size is smaller
 * than struct drm_xe_mem_range_attr, or -EAGAIN after 16 restarts. Elements
 * larger than the struct are compacted to it. */
int xe_query_mem_range_attrs(int fd, uint32_t vm_id, uint64_t start, uint64_t range,
                             struct drm_xe_mem_range_attr **attrs, uint32_t *num);

#endif /* XESVM_IGT_XE_MEM_RANGE_ATTRS_H_ */
