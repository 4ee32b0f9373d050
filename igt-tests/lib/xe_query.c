/*
 * xe_query.c - the two-call DEVICE_QUERY protocol and derived values.
 */
#include "xe_query.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "xe_device.h"

int xe_query_alloc(int fd, uint32_t query, void **out, uint32_t *size) {
  *out = NULL;
  *size = 0;
  struct drm_xe_device_query q = {.query = query};
  int ret = xe_ioctl(fd, DRM_IOCTL_XE_DEVICE_QUERY, &q);
  if (ret) return ret;
  if (q.size == 0) return 0;
  void *buf = calloc(1, q.size);
  if (!buf) return -ENOMEM;
  q.data = (uintptr_t)buf;
  ret = xe_ioctl(fd, DRM_IOCTL_XE_DEVICE_QUERY, &q);
  if (ret) {
    free(buf);
    return ret;
  }
  *out = buf;
  *size = q.size;
  return 0;
}

static int load_one(int fd, uint32_t query, size_t header, size_t elem, void **out) {
  uint32_t size;
  int ret = xe_query_alloc(fd, query, out, &size);
  if (ret) return ret;
  /* Every result starts with a u32 count followed by count elements. */
  if (size < header || size < header + (size_t)(*(uint32_t *)*out) * elem) {
    free(*out);
    *out = NULL;
    return -EPROTO;
  }
  return 0;
}

int xe_device_info_load(int fd, struct xe_device_info *info) {
  memset(info, 0, sizeof(*info));
  int ret = load_one(fd, DRM_XE_DEVICE_QUERY_CONFIG, sizeof(struct drm_xe_query_config), sizeof(uint64_t),
                     (void **)&info->config);
  if (!ret)
    ret = load_one(fd, DRM_XE_DEVICE_QUERY_ENGINES, sizeof(struct drm_xe_query_engines), sizeof(struct drm_xe_engine),
                   (void **)&info->engines);
  if (!ret)
    ret = load_one(fd, DRM_XE_DEVICE_QUERY_GT_LIST, sizeof(struct drm_xe_query_gt_list), sizeof(struct drm_xe_gt),
                   (void **)&info->gt_list);
  if (!ret)
    ret = load_one(fd, DRM_XE_DEVICE_QUERY_MEM_REGIONS, sizeof(struct drm_xe_query_mem_regions),
                   sizeof(struct drm_xe_mem_region), (void **)&info->mem_regions);
  if (ret) xe_device_info_free(info);
  return ret;
}

void xe_device_info_free(struct xe_device_info *info) {
  free(info->config);
  free(info->engines);
  free(info->gt_list);
  free(info->mem_regions);
  memset(info, 0, sizeof(*info));
}

uint64_t xe_info_config(const struct xe_device_info *info, unsigned index) {
  if (!info->config || index >= info->config->num_params) return 0;
  return info->config->info[index];
}

unsigned xe_info_va_bits(const struct xe_device_info *info) {
  return (unsigned)xe_info_config(info, DRM_XE_QUERY_CONFIG_VA_BITS);
}

bool xe_info_has_cpu_addr_mirror(const struct xe_device_info *info) {
  return xe_info_config(info, DRM_XE_QUERY_CONFIG_FLAGS) & DRM_XE_QUERY_CONFIG_FLAG_HAS_CPU_ADDR_MIRROR;
}

const struct drm_xe_gt *xe_info_gt(const struct xe_device_info *info, unsigned gt_id) {
  if (!info->gt_list) return NULL;
  for (uint32_t i = 0; i < info->gt_list->num_gt; i++)
    if (info->gt_list->gt_list[i].gt_id == gt_id) return &info->gt_list->gt_list[i];
  return NULL;
}

const struct drm_xe_mem_region *xe_info_region_by_bit(const struct xe_device_info *info, unsigned bit) {
  if (!info->mem_regions || bit >= info->mem_regions->num_mem_regions) return NULL;
  return &info->mem_regions->mem_regions[bit];
}

const struct drm_xe_mem_region *xe_info_near_vram(const struct xe_device_info *info, unsigned gt_id) {
  const struct drm_xe_gt *gt = xe_info_gt(info, gt_id);
  if (!gt || !gt->near_mem_regions) return NULL;
  const struct drm_xe_mem_region *r = xe_info_region_by_bit(info, (unsigned)__builtin_ctzll(gt->near_mem_regions));
  return r && r->mem_class == DRM_XE_MEM_REGION_CLASS_VRAM ? r : NULL;
}

uint64_t xe_info_vram_size(const struct xe_device_info *info, unsigned gt_id) {
  const struct drm_xe_mem_region *r = xe_info_near_vram(info, gt_id);
  if (!r) return 0;
  return r->cpu_visible_size ? r->cpu_visible_size : r->total_size;
}

uint16_t xe_info_pat_index_wb(const struct xe_device_info *info) {
  if (!info->gt_list) return 0;
  for (uint32_t i = 0; i < info->gt_list->num_gt; i++) {
    const struct drm_xe_gt *gt = &info->gt_list->gt_list[i];
    if (gt->type != DRM_XE_QUERY_GT_TYPE_MAIN) continue;
    if (gt->ip_ver_major >= 20) return 2;
    if (gt->ip_ver_major == 12 && gt->ip_ver_minor >= 60) return 3;
    return 0;
  }
  return 0;
}

const struct drm_xe_engine_class_instance *xe_info_engine(const struct xe_device_info *info, uint16_t engine_class) {
  if (!info->engines) return NULL;
  for (uint32_t i = 0; i < info->engines->num_engines; i++)
    if (info->engines->engines[i].instance.engine_class == engine_class) return &info->engines->engines[i].instance;
  return NULL;
}

unsigned xe_info_num_exec_engines(const struct xe_device_info *info) {
  unsigned n = 0;
  if (!info->engines) return 0;
  for (uint32_t i = 0; i < info->engines->num_engines; i++)
    if (info->engines->engines[i].instance.engine_class != DRM_XE_ENGINE_CLASS_VM_BIND) n++;
  return n;
}
