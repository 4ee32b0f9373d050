/*
 * xe_lib_selftest: what igt-tests' Xe library does that can be checked
 * without a device. Command encodings against the reference dwords of
 * IGT's intel_gpu_commands.h / intel_reg.h, the uAPI struct sizes and field
 * offsets and ioctl request numbers against upstream's values (x86-64),
 * the values derived from query results, the debugfs stats parser and the
 * render-node scan.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "igt_core_abi.h"
#include "xe_batch.h"
#include "xe_device.h"
#include "xe_gt_stats.h"
#include "xe_query.h"
#include "xe_uapi.h"

struct layout {
  const char *what;
  size_t got, want;
};

#define SIZE(t, n) \
  { #t, sizeof(struct t), n }
#define OFF(t, f, n) \
  { #t "." #f, offsetof(struct t, f), n }

static const struct layout layouts[] = {
    SIZE(drm_xe_device_query, 40),
    OFF(drm_xe_device_query, query, 8),
    OFF(drm_xe_device_query, size, 12),
    OFF(drm_xe_device_query, data, 16),
    SIZE(drm_xe_engine_class_instance, 8),
    SIZE(drm_xe_engine, 32),
    OFF(drm_xe_query_engines, engines, 8),
    SIZE(drm_xe_gt, 96),
    OFF(drm_xe_gt, tile_id, 2),
    OFF(drm_xe_gt, gt_id, 4),
    OFF(drm_xe_gt, reference_clock, 12),
    OFF(drm_xe_gt, near_mem_regions, 16),
    OFF(drm_xe_gt, far_mem_regions, 24),
    OFF(drm_xe_gt, ip_ver_major, 32),
    OFF(drm_xe_gt, reserved, 40),
    OFF(drm_xe_query_gt_list, gt_list, 8),
    SIZE(drm_xe_mem_region, 88),
    OFF(drm_xe_mem_region, instance, 2),
    OFF(drm_xe_mem_region, min_page_size, 4),
    OFF(drm_xe_mem_region, total_size, 8),
    OFF(drm_xe_mem_region, used, 16),
    OFF(drm_xe_mem_region, cpu_visible_size, 24),
    OFF(drm_xe_mem_region, cpu_visible_used, 32),
    OFF(drm_xe_query_mem_regions, mem_regions, 8),
    OFF(drm_xe_query_config, info, 8),
    SIZE(drm_xe_vm_create, 32),
    OFF(drm_xe_vm_create, flags, 8),
    OFF(drm_xe_vm_create, vm_id, 12),
    SIZE(drm_xe_vm_destroy, 24),
    SIZE(drm_xe_vm_bind_op, 80),
    OFF(drm_xe_vm_bind_op, obj, 8),
    OFF(drm_xe_vm_bind_op, pat_index, 12),
    OFF(drm_xe_vm_bind_op, obj_offset, 16),
    OFF(drm_xe_vm_bind_op, cpu_addr_mirror_offset, 16),
    OFF(drm_xe_vm_bind_op, range, 24),
    OFF(drm_xe_vm_bind_op, addr, 32),
    OFF(drm_xe_vm_bind_op, op, 40),
    OFF(drm_xe_vm_bind_op, flags, 44),
    OFF(drm_xe_vm_bind_op, prefetch_mem_region_instance, 48),
    SIZE(drm_xe_vm_bind, 136),
    OFF(drm_xe_vm_bind, vm_id, 8),
    OFF(drm_xe_vm_bind, exec_queue_id, 12),
    OFF(drm_xe_vm_bind, num_binds, 20),
    OFF(drm_xe_vm_bind, bind, 24),
    OFF(drm_xe_vm_bind, pad2, 104),
    OFF(drm_xe_vm_bind, num_syncs, 108),
    OFF(drm_xe_vm_bind, syncs, 112),
    SIZE(drm_xe_exec_queue_create, 48),
    OFF(drm_xe_exec_queue_create, width, 8),
    OFF(drm_xe_exec_queue_create, num_placements, 10),
    OFF(drm_xe_exec_queue_create, vm_id, 12),
    OFF(drm_xe_exec_queue_create, flags, 16),
    OFF(drm_xe_exec_queue_create, exec_queue_id, 20),
    OFF(drm_xe_exec_queue_create, instances, 24),
    SIZE(drm_xe_exec_queue_destroy, 24),
    SIZE(drm_xe_sync, 48),
    OFF(drm_xe_sync, type, 8),
    OFF(drm_xe_sync, flags, 12),
    OFF(drm_xe_sync, addr, 16),
    OFF(drm_xe_sync, timeline_value, 24),
    SIZE(drm_xe_exec, 56),
    OFF(drm_xe_exec, exec_queue_id, 8),
    OFF(drm_xe_exec, num_syncs, 12),
    OFF(drm_xe_exec, syncs, 16),
    OFF(drm_xe_exec, address, 24),
    OFF(drm_xe_exec, num_batch_buffer, 32),
    SIZE(drm_xe_wait_user_fence, 72),
    OFF(drm_xe_wait_user_fence, addr, 8),
    OFF(drm_xe_wait_user_fence, op, 16),
    OFF(drm_xe_wait_user_fence, flags, 18),
    OFF(drm_xe_wait_user_fence, value, 24),
    OFF(drm_xe_wait_user_fence, mask, 32),
    OFF(drm_xe_wait_user_fence, timeout, 40),
    OFF(drm_xe_wait_user_fence, exec_queue_id, 48),
    SIZE(drm_xe_madvise, 64),
    OFF(drm_xe_madvise, start, 8),
    OFF(drm_xe_madvise, range, 16),
    OFF(drm_xe_madvise, vm_id, 24),
    OFF(drm_xe_madvise, type, 28),
    OFF(drm_xe_madvise, preferred_mem_loc.devmem_fd, 32),
    OFF(drm_xe_madvise, preferred_mem_loc.migration_policy, 36),
    OFF(drm_xe_madvise, atomic.val, 32),
    OFF(drm_xe_madvise, pat_index.val, 32),
    OFF(drm_xe_madvise, reserved, 48),
    SIZE(drm_xe_mem_range_attr, 64),
    OFF(drm_xe_mem_range_attr, start, 8),
    OFF(drm_xe_mem_range_attr, end, 16),
    OFF(drm_xe_mem_range_attr, preferred_mem_loc.devmem_fd, 24),
    OFF(drm_xe_mem_range_attr, preferred_mem_loc.migration_policy, 28),
    OFF(drm_xe_mem_range_attr, atomic.val, 32),
    OFF(drm_xe_mem_range_attr, pat_index.val, 40),
    OFF(drm_xe_mem_range_attr, reserved, 48),
    SIZE(drm_xe_vm_query_mem_range_attr, 64),
    OFF(drm_xe_vm_query_mem_range_attr, vm_id, 8),
    OFF(drm_xe_vm_query_mem_range_attr, num_mem_ranges, 12),
    OFF(drm_xe_vm_query_mem_range_attr, start, 16),
    OFF(drm_xe_vm_query_mem_range_attr, range, 24),
    OFF(drm_xe_vm_query_mem_range_attr, sizeof_mem_range_attr, 32),
    OFF(drm_xe_vm_query_mem_range_attr, vector_of_mem_attr, 40),
};

struct ioctl_number {
  const char *what;
  unsigned long got, want;
};

static const struct ioctl_number ioctl_numbers[] = {
    {"DEVICE_QUERY", DRM_IOCTL_XE_DEVICE_QUERY, 0xc0286440},
    {"VM_CREATE", DRM_IOCTL_XE_VM_CREATE, 0xc0206443},
    {"VM_DESTROY", DRM_IOCTL_XE_VM_DESTROY, 0x40186444},
    {"VM_BIND", DRM_IOCTL_XE_VM_BIND, 0x40886445},
    {"EXEC_QUEUE_CREATE", DRM_IOCTL_XE_EXEC_QUEUE_CREATE, 0xc0306446},
    {"EXEC_QUEUE_DESTROY", DRM_IOCTL_XE_EXEC_QUEUE_DESTROY, 0x40186447},
    {"EXEC", DRM_IOCTL_XE_EXEC, 0x40386449},
    {"WAIT_USER_FENCE", DRM_IOCTL_XE_WAIT_USER_FENCE, 0xc048644a},
    {"MADVISE", DRM_IOCTL_XE_MADVISE, 0x4040644c},
    {"VM_QUERY_MEM_RANGE_ATTRS", DRM_IOCTL_XE_VM_QUERY_MEM_RANGE_ATTRS, 0xc040644d},
};

static void assert_dwords(const struct xe_batch *b, const uint32_t *want, size_t n) {
  igt_assert_eq(b->error, 0);
  igt_assert_eq((int)b->len, (int)n);
  for (size_t i = 0; i < n; i++) igt_assert_f(b->dw[i] == want[i], "dword %zu: %#x, want %#x\n", i, b->dw[i], want[i]);
}

/* Synthetic query results: sysmem at bit 0, VRAM (instance 1) at bit 1. */
static struct xe_device_info device_info_of(uint64_t near, uint64_t vram_total, uint64_t vram_visible, uint64_t flags) {
  struct xe_device_info info;
  info.config = calloc(1, sizeof(*info.config) + 5 * sizeof(uint64_t));
  info.config->num_params = 5;
  info.config->info[DRM_XE_QUERY_CONFIG_FLAGS] = flags;
  info.config->info[DRM_XE_QUERY_CONFIG_VA_BITS] = 48;
  info.gt_list = calloc(1, sizeof(*info.gt_list) + sizeof(struct drm_xe_gt));
  info.gt_list->num_gt = 1;
  info.gt_list->gt_list[0].gt_id = 0;
  info.gt_list->gt_list[0].near_mem_regions = near;
  info.mem_regions = calloc(1, sizeof(*info.mem_regions) + 2 * sizeof(struct drm_xe_mem_region));
  info.mem_regions->num_mem_regions = 2;
  info.mem_regions->mem_regions[0].mem_class = DRM_XE_MEM_REGION_CLASS_SYSMEM;
  info.mem_regions->mem_regions[1].mem_class = DRM_XE_MEM_REGION_CLASS_VRAM;
  info.mem_regions->mem_regions[1].instance = 1;
  info.mem_regions->mem_regions[1].total_size = vram_total;
  info.mem_regions->mem_regions[1].cpu_visible_size = vram_visible;
  info.engines = calloc(1, sizeof(*info.engines) + 3 * sizeof(struct drm_xe_engine));
  info.engines->num_engines = 3;
  info.engines->engines[0].instance.engine_class = DRM_XE_ENGINE_CLASS_COPY;
  info.engines->engines[1].instance.engine_class = DRM_XE_ENGINE_CLASS_VM_BIND;
  info.engines->engines[2].instance.engine_class = DRM_XE_ENGINE_CLASS_COMPUTE;
  info.engines->engines[2].instance.engine_instance = 3;
  return info;
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  igt_assert(f);
  igt_assert(fputs(text, f) >= 0);
  igt_assert_eq(fclose(f), 0);
}

int igt_main() {
  igt_subtest("uapi-struct-layouts-match-upstream") {
    for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++)
      igt_assert_f(layouts[i].got == layouts[i].want, "%s: %zu, upstream %zu\n", layouts[i].what, layouts[i].got,
                   layouts[i].want);
  }

  igt_subtest("uapi-ioctl-numbers-match-upstream") {
    for (size_t i = 0; i < sizeof(ioctl_numbers) / sizeof(ioctl_numbers[0]); i++)
      igt_assert_f(ioctl_numbers[i].got == ioctl_numbers[i].want, "DRM_IOCTL_XE_%s: %#lx, upstream %#lx\n",
                   ioctl_numbers[i].what, ioctl_numbers[i].got, ioctl_numbers[i].want);
  }

  igt_subtest("uapi-constants-match-upstream") {
    igt_assert_eq(DRM_XE_VM_CREATE_FLAG_LR_MODE | DRM_XE_VM_CREATE_FLAG_FAULT_MODE, 0x6);
    igt_assert_eq(DRM_XE_VM_BIND_FLAG_CPU_ADDR_MIRROR, 0x20);
    igt_assert_eq(DRM_XE_VM_BIND_OP_PREFETCH, 4);
    igt_assert_eq_u32((uint32_t)DRM_XE_CONSULT_MEM_ADVISE_PREF_LOC, 0xffffffffu);
    igt_assert_eq_u32((uint32_t)DRM_XE_PREFERRED_LOC_DEFAULT_SYSTEM, 0xffffffffu);
    igt_assert_eq(DRM_XE_QUERY_CONFIG_FLAG_HAS_CPU_ADDR_MIRROR, 4);
    igt_assert_eq(DRM_XE_SYNC_TYPE_USER_FENCE, 2);
    igt_assert_eq(DRM_XE_ENGINE_CLASS_COMPUTE, 4);
  }

  igt_subtest("batch-store-dword-encoding") {
    uint32_t dw[8];
    struct xe_batch b;
    xe_batch_init(&b, dw, 8);
    igt_assert_eq(xe_batch_store_dword(&b, 0x7f12345678a0ull, 0xc0ffee), 0);
    igt_assert_eq(xe_batch_end(&b), 0);
    const uint32_t want[] = {0x10000002, 0x345678a0, 0x7f12, 0xc0ffee, 0x05000000};
    assert_dwords(&b, want, 5);
  }

  igt_subtest("batch-atomic-inc-encoding") {
    uint32_t dw[4];
    struct xe_batch b;
    xe_batch_init(&b, dw, 4);
    igt_assert_eq(xe_batch_atomic_inc(&b, 0x00007ffc00001004ull), 0);
    igt_assert_eq(xe_batch_end(&b), 0);
    const uint32_t want[] = {0x17800501, 0x00001004, 0x7ffc, 0x05000000};
    assert_dwords(&b, want, 4);
  }

  igt_subtest("batch-mem-copy-encoding-splits-rows") {
    /* 256 KiB + 16 bytes: one full row and one 16-byte row. */
    uint32_t dw[32];
    struct xe_batch b;
    xe_batch_init(&b, dw, 32);
    uint64_t src = 0x7f0000000000ull, dst = 0x7e00fffc0000ull;
    igt_assert_eq((int)xe_batch_mem_copy_dwords((256 << 10) + 16), 20);
    igt_assert_eq(xe_batch_mem_copy(&b, src, dst, (256 << 10) + 16), 0);
    igt_assert_eq(xe_batch_end(&b), 0);
    const uint32_t want[] = {0x56800008, 0x3ffff,    0,      0x3ffff,    0x3ffff, 0x00000000, 0x7f00,
                             0xfffc0000, 0x7e00,     0,      0x56800008, 15,      0,          15,
                             15,         0x00040000, 0x7f00, 0x00000000, 0x7e01,  0,          0x05000000};
    assert_dwords(&b, want, 21);
  }

  igt_subtest("batch-mem-set-encoding") {
    uint32_t dw[16];
    struct xe_batch b;
    xe_batch_init(&b, dw, 16);
    igt_assert_eq(xe_batch_mem_set(&b, 0x7f00deadb000ull, 4096, 0xa5), 0);
    igt_assert_eq(xe_batch_end(&b), 0);
    const uint32_t want[] = {0x56c00005, 4095, 0, 4095, 0xdeadb000, 0x7f00, 0xa5000000, 0x05000000};
    assert_dwords(&b, want, 8);
  }

  igt_subtest("batch-overflow-and-bad-arguments-are-reported") {
    uint32_t dw[6] = {0};
    struct xe_batch b;
    xe_batch_init(&b, dw, 6);
    igt_assert_eq(xe_batch_store_dword(&b, 0x1000, 1), 0);
    igt_assert_eq(xe_batch_store_dword(&b, 0x2000, 2), -ENOSPC);
    igt_assert_eq(xe_batch_end(&b), -ENOSPC); /* sticky */
    igt_assert_eq((int)b.len, 4);
    igt_assert_eq_u32(dw[4], 0); /* nothing written past the failure */
    xe_batch_init(&b, dw, 6);
    igt_assert_eq(xe_batch_store_dword(&b, 0x1002, 1), -EINVAL); /* misaligned */
    xe_batch_init(&b, dw, 6);
    igt_assert_eq(xe_batch_atomic_inc(&b, 1ull << 48), -EINVAL); /* beyond 48 bits */
    xe_batch_init(&b, dw, 6);
    igt_assert_eq(xe_batch_mem_copy(&b, 0, 0x1000, 0), -EINVAL);
    xe_batch_init(&b, dw, 6);
    igt_assert_eq(xe_batch_mem_set(&b, 0x1000, 4096, 0), -ENOSPC); /* 7 dwords > 6 */
    igt_assert_eq((int)b.len, 0);
  }

  igt_subtest("query-derived-values-discrete") {
    struct xe_device_info info = device_info_of(
        0x2, 256ull << 20, 0, DRM_XE_QUERY_CONFIG_FLAG_HAS_VRAM | DRM_XE_QUERY_CONFIG_FLAG_HAS_CPU_ADDR_MIRROR);
    igt_assert_eq((int)xe_info_va_bits(&info), 48);
    igt_assert(xe_info_has_cpu_addr_mirror(&info));
    igt_assert(xe_info_near_vram(&info, 0) == &info.mem_regions->mem_regions[1]);
    /* No visible size reported: the total size counts (IGT's rule). */
    igt_assert_eq_u64(xe_info_vram_size(&info, 0), 256ull << 20);
    info.mem_regions->mem_regions[1].cpu_visible_size = 64ull << 20;
    igt_assert_eq_u64(xe_info_vram_size(&info, 0), 64ull << 20);
    igt_assert(xe_info_gt(&info, 1) == NULL);
    igt_assert_eq_u64(xe_info_vram_size(&info, 1), 0);
    igt_assert(xe_info_region_by_bit(&info, 2) == NULL);
    igt_assert_eq((int)xe_info_engine(&info, DRM_XE_ENGINE_CLASS_COMPUTE)->engine_instance, 3);
    igt_assert(xe_info_engine(&info, DRM_XE_ENGINE_CLASS_RENDER) == NULL);
    igt_assert_eq((int)xe_info_num_exec_engines(&info), 2);
    igt_assert_eq_u64(xe_info_config(&info, 5), 0);     /* beyond num_params */
    igt_assert_eq((int)xe_info_pat_index_wb(&info), 0); /* IP 0.0: IGT's default table */
    info.gt_list->gt_list[0].ip_ver_major = 20;
    igt_assert_eq((int)xe_info_pat_index_wb(&info), 2); /* Xe2 */
    info.gt_list->gt_list[0].ip_ver_major = 12;
    info.gt_list->gt_list[0].ip_ver_minor = 60;
    igt_assert_eq((int)xe_info_pat_index_wb(&info), 3); /* PVC */
    info.gt_list->gt_list[0].ip_ver_minor = 55;
    igt_assert_eq((int)xe_info_pat_index_wb(&info), 0);
    xe_device_info_free(&info);
    igt_assert(info.config == NULL);
  }

  igt_subtest("query-derived-values-integrated") {
    struct xe_device_info info = device_info_of(0x1, 256ull << 20, 0, 0);
    igt_assert(!xe_info_has_cpu_addr_mirror(&info));
    igt_assert(xe_info_near_vram(&info, 0) == NULL);
    igt_assert_eq_u64(xe_info_vram_size(&info, 0), 0);
    info.gt_list->gt_list[0].near_mem_regions = 0;
    igt_assert_eq_u64(xe_info_vram_size(&info, 0), 0);
    xe_device_info_free(&info);
  }

  igt_subtest("gt-stats-parse") {
    char dir[] = "/tmp/xe_lib_selftest.XXXXXX";
    igt_assert(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/stats", dir);
    write_file(path,
               "svm_pagefault_count: 42\n"
               "svm_pagefault_count_extra: 7\n"
               "tlb_inval_count: 0\n"
               "svm_migrate_to_vram_bytes: 8589934592\n"
               "broken:\n");
    int64_t v = -1;
    igt_assert_eq(xe_gt_stats_read_file(path, "svm_pagefault_count", &v), 0);
    igt_assert_eq_s64(v, 42);
    igt_assert_eq(xe_gt_stats_read_file(path, "svm_pagefault_count_extra", &v), 0);
    igt_assert_eq_s64(v, 7);
    igt_assert_eq(xe_gt_stats_read_file(path, "svm_migrate_to_vram_bytes", &v), 0);
    igt_assert_eq_s64(v, 8589934592ll);
    igt_assert_eq(xe_gt_stats_read_file(path, "svm_pagefault", &v), -ENOENT); /* a prefix is not a name */
    igt_assert_eq(xe_gt_stats_read_file(path, "broken", &v), -EPROTO);
    unlink(path);
    igt_assert_eq(xe_gt_stats_read_file(path, "svm_pagefault_count", &v), -ENOENT);
    rmdir(dir);
  }

  igt_subtest("device-scan-without-xe-nodes-finds-none") {
    char dir[] = "/tmp/xe_lib_selftest.XXXXXX";
    igt_assert(mkdtemp(dir));
    char why[256];
    igt_assert_eq(xe_device_open_in(dir, why, sizeof(why)), -ENODEV);
    igt_assert_eq((int)strlen(why), 0);
    /* A node that exists but is no DRM device is passed over. */
    char node[128];
    snprintf(node, sizeof(node), "%s/renderD128", dir);
    write_file(node, "not a device\n");
    igt_assert_eq(xe_device_open_in(dir, why, sizeof(why)), -ENODEV);
    unlink(node);
    rmdir(dir);
  }
}
