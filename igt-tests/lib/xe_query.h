/*
 * xe_query.h - DEVICE_QUERY: what an Xe device has (config, engines, GTs,
 * memory regions), and the values SVM tests derive from it.
 *
 * Every query uses the two-call size protocol: a first call with size 0
 * learns the size, a second with a buffer of exactly that size fills it.
 * struct xe_device_info owns the four result buffers; the derived helpers
 * are pure functions of them (tests/xe_lib_selftest.c checks them on
 * synthetic buffers).
 *
 * Thread safety: a loaded xe_device_info is immutable and may be read from
 * any thread; load and free it from one thread.
 */
#ifndef XESVM_IGT_XE_QUERY_H_
#define XESVM_IGT_XE_QUERY_H_

#include <stdbool.h>
#include <stdint.h>

#include "xe_uapi.h"

struct xe_device_info {
  struct drm_xe_query_config *config;
  struct drm_xe_query_engines *engines;
  struct drm_xe_query_gt_list *gt_list;
  struct drm_xe_query_mem_regions *mem_regions;
};

/* Runs query `query` with the two-call protocol. On success returns 0 and
 * a malloc'd buffer in *out (the caller frees it; NULL when the size is 0)
 * of *size bytes. On failure returns -errno of the failing call and leaves
 * *out NULL. */
int xe_query_alloc(int fd, uint32_t query, void **out, uint32_t *size);

/* Loads CONFIG, ENGINES, GT_LIST and MEM_REGIONS. Returns 0, -errno of the
 * first failing query, or -EPROTO when a result is shorter than the counts
 * it states. On failure nothing stays allocated. */
int xe_device_info_load(int fd, struct xe_device_info *info);
void xe_device_info_free(struct xe_device_info *info);

/* CONFIG values; 0 when the device reports fewer params. */
uint64_t xe_info_config(const struct xe_device_info *info, unsigned index);
unsigned xe_info_va_bits(const struct xe_device_info *info);
bool xe_info_has_cpu_addr_mirror(const struct xe_device_info *info);

/* The GT entry with gt_id, or NULL. */
const struct drm_xe_gt *xe_info_gt(const struct xe_device_info *info, unsigned gt_id);

/* The memory region named by bit `bit` of a near/far mask (= index into
 * mem_regions[]), or NULL when out of range. */
const struct drm_xe_mem_region *xe_info_region_by_bit(const struct xe_device_info *info, unsigned bit);

/* The VRAM region nearest to gt_id: the lowest bit of its near_mem_regions
 * when that region is of class VRAM. NULL for an integrated (system-memory
 * near) GT, an unknown GT or a GT with no near region. */
const struct drm_xe_mem_region *xe_info_near_vram(const struct xe_device_info *info, unsigned gt_id);

/* Size of that VRAM region: cpu_visible_size, or total_size when the
 * visible size is 0 (IGT's xe_visible_vram_size()). 0 without VRAM. */
uint64_t xe_info_vram_size(const struct xe_device_info *info, unsigned gt_id);

/* The write-back PAT index for the device's main GT, by graphics IP
 * version as IGT's intel_get_pat_idx_wb() picks it: 2 for Xe2/Xe3 (IP 20,
 * 30), 3 for PVC (12.60) and MTL/ARL (12.70, 12.71), else 0 (also for an
 * IP version IGT does not know, e.g. 0.0). */
uint16_t xe_info_pat_index_wb(const struct xe_device_info *info);

/* First engine of `engine_class` (DRM_XE_ENGINE_CLASS_*), or NULL. */
const struct drm_xe_engine_class_instance *xe_info_engine(const struct xe_device_info *info, uint16_t engine_class);

/* Number of engines that run batches (every class but VM_BIND). */
unsigned xe_info_num_exec_engines(const struct xe_device_info *info);

#endif /* XESVM_IGT_XE_QUERY_H_ */
