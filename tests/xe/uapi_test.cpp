// The Xe uAPI subset against the reference values (upstream xe_drm.h,
// Linux 6.15-6.18, x86-64) and against libdrm's own ioctl encoding macros.
#include <gtest/gtest.h>
#include <xf86drm.h>

#include <cstddef>

#include "runtime/backends/xe/xe_uapi.hpp"

namespace u = xesvm::xe::uapi;

TEST(XeUapi, IoctlNumbersMatchReferenceValues) {
  EXPECT_EQ(u::kIoctlDeviceQuery, 0xc0286440ul);
  EXPECT_EQ(u::kIoctlVmCreate, 0xc0206443ul);
  EXPECT_EQ(u::kIoctlVmDestroy, 0x40186444ul);
  EXPECT_EQ(u::kIoctlVmBind, 0x40886445ul);
  EXPECT_EQ(u::kIoctlWaitUserFence, 0xc048644aul);
  EXPECT_EQ(u::kIoctlMadvise, 0x4040644cul);
  EXPECT_EQ(u::kIoctlVmQueryMemRangeAttrs, 0xc040644dul);
}

TEST(XeUapi, IoctlNumbersMatchLibdrmEncoding) {
  EXPECT_EQ(u::kIoctlDeviceQuery,
            static_cast<unsigned long>(DRM_IOWR(DRM_COMMAND_BASE + 0x00, u::drm_xe_device_query)));
  EXPECT_EQ(u::kIoctlVmCreate, static_cast<unsigned long>(DRM_IOWR(DRM_COMMAND_BASE + 0x03, u::drm_xe_vm_create)));
  EXPECT_EQ(u::kIoctlVmDestroy, static_cast<unsigned long>(DRM_IOW(DRM_COMMAND_BASE + 0x04, u::drm_xe_vm_destroy)));
  EXPECT_EQ(u::kIoctlVmBind, static_cast<unsigned long>(DRM_IOW(DRM_COMMAND_BASE + 0x05, u::drm_xe_vm_bind)));
  EXPECT_EQ(u::kIoctlWaitUserFence,
            static_cast<unsigned long>(DRM_IOWR(DRM_COMMAND_BASE + 0x0a, u::drm_xe_wait_user_fence)));
  EXPECT_EQ(u::kIoctlMadvise, static_cast<unsigned long>(DRM_IOW(DRM_COMMAND_BASE + 0x0c, u::drm_xe_madvise)));
  EXPECT_EQ(u::kIoctlVmQueryMemRangeAttrs,
            static_cast<unsigned long>(DRM_IOWR(DRM_COMMAND_BASE + 0x0d, u::drm_xe_vm_query_mem_range_attr)));
  EXPECT_EQ(u::kDrmCommandBase, static_cast<unsigned>(DRM_COMMAND_BASE));
  EXPECT_EQ(u::kDrmIoctlBase, static_cast<unsigned>(DRM_IOCTL_BASE));
}

TEST(XeUapi, IocHelpersDecode) {
  EXPECT_EQ(u::ioc_size(u::kIoctlVmBind), 136u);
  EXPECT_EQ(u::ioc_nr(u::kIoctlVmBind), 0x45u);
  EXPECT_EQ(u::ioc_size(u::kIoctlWaitUserFence), 72u);
}

TEST(XeUapi, StructSizes) {
  EXPECT_EQ(sizeof(u::drm_xe_device_query), 40u);
  EXPECT_EQ(sizeof(u::drm_xe_query_config), 8u);
  EXPECT_EQ(sizeof(u::drm_xe_query_mem_regions), 8u);
  EXPECT_EQ(sizeof(u::drm_xe_mem_region), 88u);
  EXPECT_EQ(sizeof(u::drm_xe_vm_create), 32u);
  EXPECT_EQ(sizeof(u::drm_xe_vm_destroy), 24u);
  EXPECT_EQ(sizeof(u::drm_xe_vm_bind_op), 80u);
  EXPECT_EQ(sizeof(u::drm_xe_vm_bind), 136u);
  EXPECT_EQ(sizeof(u::drm_xe_sync), 48u);
  EXPECT_EQ(sizeof(u::drm_xe_wait_user_fence), 72u);
  EXPECT_EQ(sizeof(u::drm_xe_madvise), 64u);
  EXPECT_EQ(sizeof(u::drm_xe_mem_range_attr), 64u);
  EXPECT_EQ(sizeof(u::drm_xe_vm_query_mem_range_attr), 64u);
}

TEST(XeUapi, VmBindOffsets) {
  EXPECT_EQ(offsetof(u::drm_xe_vm_bind_op, obj), 8u);
  EXPECT_EQ(offsetof(u::drm_xe_vm_bind_op, pat_index), 12u);
  EXPECT_EQ(offsetof(u::drm_xe_vm_bind_op, cpu_addr_mirror_offset), 16u);
  EXPECT_EQ(offsetof(u::drm_xe_vm_bind_op, range), 24u);
  EXPECT_EQ(offsetof(u::drm_xe_vm_bind_op, addr), 32u);
  EXPECT_EQ(offsetof(u::drm_xe_vm_bind_op, op), 40u);
  EXPECT_EQ(offsetof(u::drm_xe_vm_bind_op, flags), 44u);
  EXPECT_EQ(offsetof(u::drm_xe_vm_bind_op, prefetch_mem_region_instance), 48u);
  EXPECT_EQ(offsetof(u::drm_xe_vm_bind_op, reserved), 56u);
  EXPECT_EQ(offsetof(u::drm_xe_vm_bind, vm_id), 8u);
  EXPECT_EQ(offsetof(u::drm_xe_vm_bind, exec_queue_id), 12u);
  EXPECT_EQ(offsetof(u::drm_xe_vm_bind, num_binds), 20u);
  EXPECT_EQ(offsetof(u::drm_xe_vm_bind, bind), 24u);
  EXPECT_EQ(offsetof(u::drm_xe_vm_bind, pad2), 104u);
  EXPECT_EQ(offsetof(u::drm_xe_vm_bind, num_syncs), 108u);
  EXPECT_EQ(offsetof(u::drm_xe_vm_bind, syncs), 112u);
  EXPECT_EQ(offsetof(u::drm_xe_vm_bind, reserved), 120u);
}

TEST(XeUapi, OtherOffsets) {
  EXPECT_EQ(offsetof(u::drm_xe_device_query, query), 8u);
  EXPECT_EQ(offsetof(u::drm_xe_device_query, size), 12u);
  EXPECT_EQ(offsetof(u::drm_xe_device_query, data), 16u);
  EXPECT_EQ(offsetof(u::drm_xe_vm_create, flags), 8u);
  EXPECT_EQ(offsetof(u::drm_xe_vm_create, vm_id), 12u);
  EXPECT_EQ(offsetof(u::drm_xe_mem_region, instance), 2u);
  EXPECT_EQ(offsetof(u::drm_xe_mem_region, total_size), 8u);
  EXPECT_EQ(offsetof(u::drm_xe_mem_region, used), 16u);
  EXPECT_EQ(offsetof(u::drm_xe_sync, type), 8u);
  EXPECT_EQ(offsetof(u::drm_xe_sync, flags), 12u);
  EXPECT_EQ(offsetof(u::drm_xe_sync, addr), 16u);
  EXPECT_EQ(offsetof(u::drm_xe_sync, timeline_value), 24u);
  EXPECT_EQ(offsetof(u::drm_xe_wait_user_fence, addr), 8u);
  EXPECT_EQ(offsetof(u::drm_xe_wait_user_fence, op), 16u);
  EXPECT_EQ(offsetof(u::drm_xe_wait_user_fence, flags), 18u);
  EXPECT_EQ(offsetof(u::drm_xe_wait_user_fence, value), 24u);
  EXPECT_EQ(offsetof(u::drm_xe_wait_user_fence, mask), 32u);
  EXPECT_EQ(offsetof(u::drm_xe_wait_user_fence, timeout), 40u);
  EXPECT_EQ(offsetof(u::drm_xe_wait_user_fence, exec_queue_id), 48u);
  EXPECT_EQ(offsetof(u::drm_xe_madvise, vm_id), 24u);
  EXPECT_EQ(offsetof(u::drm_xe_madvise, type), 28u);
  EXPECT_EQ(offsetof(u::drm_xe_madvise, preferred_mem_loc.devmem_fd), 32u);
  EXPECT_EQ(offsetof(u::drm_xe_madvise, preferred_mem_loc.migration_policy), 36u);
  EXPECT_EQ(offsetof(u::drm_xe_madvise, preferred_mem_loc.region_instance), 38u);
  EXPECT_EQ(offsetof(u::drm_xe_madvise, atomic.val), 32u);
  EXPECT_EQ(offsetof(u::drm_xe_madvise, reserved), 48u);
  EXPECT_EQ(offsetof(u::drm_xe_mem_range_attr, preferred_mem_loc.devmem_fd), 24u);
  EXPECT_EQ(offsetof(u::drm_xe_mem_range_attr, preferred_mem_loc.migration_policy), 28u);
  EXPECT_EQ(offsetof(u::drm_xe_mem_range_attr, atomic.val), 32u);
  EXPECT_EQ(offsetof(u::drm_xe_mem_range_attr, pat_index.val), 40u);
  EXPECT_EQ(offsetof(u::drm_xe_vm_query_mem_range_attr, num_mem_ranges), 12u);
  EXPECT_EQ(offsetof(u::drm_xe_vm_query_mem_range_attr, sizeof_mem_range_attr), 32u);
  EXPECT_EQ(offsetof(u::drm_xe_vm_query_mem_range_attr, vector_of_mem_attr), 40u);
}

TEST(XeUapi, FlagAndEnumValues) {
  EXPECT_EQ(u::kVmCreateFlagLrMode, 2u);
  EXPECT_EQ(u::kVmCreateFlagFaultMode, 4u);
  EXPECT_EQ(u::kVmBindOpMap, 0u);
  EXPECT_EQ(u::kVmBindOpUnmap, 1u);
  EXPECT_EQ(u::kVmBindOpPrefetch, 4u);
  EXPECT_EQ(u::kVmBindFlagCpuAddrMirror, 0x20u);
  EXPECT_EQ(u::kConsultMemAdvisePrefLoc, static_cast<std::uint32_t>(-1));
  EXPECT_EQ(u::kQueryConfigFlagHasCpuAddrMirror, 4u);
  EXPECT_EQ(u::kQueryConfigVaBits, 3u);
  EXPECT_EQ(u::kDeviceQueryMemRegions, 1u);
  EXPECT_EQ(u::kDeviceQueryConfig, 2u);
  EXPECT_EQ(u::kSyncTypeUserFence, 2u);
  EXPECT_EQ(u::kSyncFlagSignal, 1u);
  EXPECT_EQ(u::kUfenceWaitOpGte, 3u);
  EXPECT_EQ(u::kMemRangeAttrPreferredLoc, 0u);
  EXPECT_EQ(u::kMemRangeAttrAtomic, 1u);
  EXPECT_EQ(u::kPreferredLocDefaultDevice, 0u);
  EXPECT_EQ(u::kPreferredLocDefaultSystem, static_cast<std::uint32_t>(-1));
  EXPECT_EQ(u::kAtomicDevice, 1u);
  EXPECT_EQ(u::kAtomicGlobal, 2u);
  EXPECT_EQ(u::kMemRegionClassVram, 1u);
}
