// Build-time proof that xe_uapi.hpp agrees with the system's xe_drm.h.
//
// Compiled with XESVM_XE_SYSTEM_UAPI_HEADER set to the header to compare
// against (<drm/xe_drm.h> from the kernel headers, or libdrm's <xe_drm.h>),
// when CMake found one. Every ioctl number, flag value, struct size and field
// offset that both declare must be equal. Names newer than the system header
// (CPU_ADDR_MIRROR in 6.15, MADVISE and QUERY_MEM_RANGE_ATTRS in 6.18) are
// compared only when it defines them. Without a system header this file
// compiles to nothing.
#include "runtime/backends/xe/xe_uapi.hpp"

#if defined(XESVM_XE_SYSTEM_UAPI_HEADER)
#include XESVM_XE_SYSTEM_UAPI_HEADER

// The guest suite (tests/xe/guest-suite.sh) compiles this file against the
// booted kernel's installed headers with XESVM_XE_UAPI_REQUIRE_SVM: that
// kernel must declare every SVM name, so a missing one fails too.
#if defined(XESVM_XE_UAPI_REQUIRE_SVM)
#if !defined(DRM_XE_QUERY_CONFIG_FLAG_HAS_CPU_ADDR_MIRROR) || !defined(DRM_XE_VM_BIND_FLAG_CPU_ADDR_MIRROR)
#error "the system xe_drm.h has no CPU address mirror"
#endif
#if !defined(DRM_IOCTL_XE_MADVISE) || !defined(DRM_IOCTL_XE_VM_QUERY_MEM_RANGE_ATTRS)
#error "the system xe_drm.h has no MADVISE / VM_QUERY_MEM_RANGE_ATTRS"
#endif
#endif

namespace xesvm::xe::uapi_check {
namespace u = ::xesvm::xe::uapi;

#define XESVM_SAME_LAYOUT(type, field) \
  static_assert(offsetof(::type, field) == offsetof(u::type, field), #type "." #field " offset differs")
#define XESVM_SAME_SIZE(type) static_assert(sizeof(::type) == sizeof(u::type), #type " size differs")
#define XESVM_SAME_VALUE(name, ours) static_assert((name) == (ours), #name " differs")

XESVM_SAME_VALUE(DRM_IOCTL_XE_DEVICE_QUERY, u::kIoctlDeviceQuery);
XESVM_SAME_VALUE(DRM_IOCTL_XE_VM_CREATE, u::kIoctlVmCreate);
XESVM_SAME_VALUE(DRM_IOCTL_XE_VM_DESTROY, u::kIoctlVmDestroy);
XESVM_SAME_VALUE(DRM_IOCTL_XE_VM_BIND, u::kIoctlVmBind);
XESVM_SAME_VALUE(DRM_IOCTL_XE_WAIT_USER_FENCE, u::kIoctlWaitUserFence);
XESVM_SAME_VALUE(DRM_IOCTL_XE_EXEC_QUEUE_CREATE, u::kIoctlExecQueueCreate);
XESVM_SAME_VALUE(DRM_IOCTL_XE_EXEC_QUEUE_DESTROY, u::kIoctlExecQueueDestroy);
XESVM_SAME_VALUE(DRM_IOCTL_XE_EXEC, u::kIoctlExec);

XESVM_SAME_SIZE(drm_xe_engine_class_instance);
XESVM_SAME_LAYOUT(drm_xe_engine_class_instance, engine_class);
XESVM_SAME_LAYOUT(drm_xe_engine_class_instance, engine_instance);
XESVM_SAME_LAYOUT(drm_xe_engine_class_instance, gt_id);
XESVM_SAME_VALUE(DRM_XE_ENGINE_CLASS_COPY, u::kEngineClassCopy);
XESVM_SAME_VALUE(DRM_XE_ENGINE_CLASS_COMPUTE, u::kEngineClassCompute);
XESVM_SAME_SIZE(drm_xe_exec_queue_create);
XESVM_SAME_LAYOUT(drm_xe_exec_queue_create, width);
XESVM_SAME_LAYOUT(drm_xe_exec_queue_create, num_placements);
XESVM_SAME_LAYOUT(drm_xe_exec_queue_create, vm_id);
XESVM_SAME_LAYOUT(drm_xe_exec_queue_create, flags);
XESVM_SAME_LAYOUT(drm_xe_exec_queue_create, exec_queue_id);
XESVM_SAME_LAYOUT(drm_xe_exec_queue_create, instances);
XESVM_SAME_SIZE(drm_xe_exec_queue_destroy);
XESVM_SAME_SIZE(drm_xe_exec);
XESVM_SAME_LAYOUT(drm_xe_exec, exec_queue_id);
XESVM_SAME_LAYOUT(drm_xe_exec, num_syncs);
XESVM_SAME_LAYOUT(drm_xe_exec, syncs);
XESVM_SAME_LAYOUT(drm_xe_exec, address);
XESVM_SAME_LAYOUT(drm_xe_exec, num_batch_buffer);

XESVM_SAME_SIZE(drm_xe_device_query);
XESVM_SAME_LAYOUT(drm_xe_device_query, query);
XESVM_SAME_LAYOUT(drm_xe_device_query, size);
XESVM_SAME_LAYOUT(drm_xe_device_query, data);
XESVM_SAME_LAYOUT(drm_xe_device_query, reserved);
XESVM_SAME_VALUE(DRM_XE_DEVICE_QUERY_MEM_REGIONS, u::kDeviceQueryMemRegions);
XESVM_SAME_VALUE(DRM_XE_DEVICE_QUERY_CONFIG, u::kDeviceQueryConfig);
XESVM_SAME_VALUE(DRM_XE_QUERY_CONFIG_REV_AND_DEVICE_ID, u::kQueryConfigRevAndDeviceId);
XESVM_SAME_VALUE(DRM_XE_QUERY_CONFIG_FLAGS, u::kQueryConfigFlags);
XESVM_SAME_VALUE(DRM_XE_QUERY_CONFIG_MIN_ALIGNMENT, u::kQueryConfigMinAlignment);
XESVM_SAME_VALUE(DRM_XE_QUERY_CONFIG_VA_BITS, u::kQueryConfigVaBits);
XESVM_SAME_VALUE(DRM_XE_QUERY_CONFIG_FLAG_HAS_VRAM, u::kQueryConfigFlagHasVram);
#if defined(DRM_XE_QUERY_CONFIG_FLAG_HAS_CPU_ADDR_MIRROR)
XESVM_SAME_VALUE(DRM_XE_QUERY_CONFIG_FLAG_HAS_CPU_ADDR_MIRROR, u::kQueryConfigFlagHasCpuAddrMirror);
#endif
static_assert(offsetof(::drm_xe_query_config, info) == u::kQueryConfigInfoOffset);
static_assert(offsetof(::drm_xe_query_mem_regions, mem_regions) == u::kQueryMemRegionsArrayOffset);

XESVM_SAME_SIZE(drm_xe_mem_region);
XESVM_SAME_LAYOUT(drm_xe_mem_region, mem_class);
XESVM_SAME_LAYOUT(drm_xe_mem_region, instance);
XESVM_SAME_LAYOUT(drm_xe_mem_region, min_page_size);
XESVM_SAME_LAYOUT(drm_xe_mem_region, total_size);
XESVM_SAME_LAYOUT(drm_xe_mem_region, used);
XESVM_SAME_LAYOUT(drm_xe_mem_region, cpu_visible_size);
XESVM_SAME_LAYOUT(drm_xe_mem_region, cpu_visible_used);
XESVM_SAME_VALUE(DRM_XE_MEM_REGION_CLASS_SYSMEM, u::kMemRegionClassSysmem);
XESVM_SAME_VALUE(DRM_XE_MEM_REGION_CLASS_VRAM, u::kMemRegionClassVram);

XESVM_SAME_SIZE(drm_xe_vm_create);
XESVM_SAME_LAYOUT(drm_xe_vm_create, flags);
XESVM_SAME_LAYOUT(drm_xe_vm_create, vm_id);
XESVM_SAME_LAYOUT(drm_xe_vm_create, reserved);
XESVM_SAME_VALUE(DRM_XE_VM_CREATE_FLAG_SCRATCH_PAGE, u::kVmCreateFlagScratchPage);
XESVM_SAME_VALUE(DRM_XE_VM_CREATE_FLAG_LR_MODE, u::kVmCreateFlagLrMode);
XESVM_SAME_VALUE(DRM_XE_VM_CREATE_FLAG_FAULT_MODE, u::kVmCreateFlagFaultMode);

XESVM_SAME_SIZE(drm_xe_vm_destroy);
XESVM_SAME_LAYOUT(drm_xe_vm_destroy, vm_id);
XESVM_SAME_LAYOUT(drm_xe_vm_destroy, reserved);

XESVM_SAME_SIZE(drm_xe_vm_bind_op);
XESVM_SAME_LAYOUT(drm_xe_vm_bind_op, obj);
XESVM_SAME_LAYOUT(drm_xe_vm_bind_op, pat_index);
XESVM_SAME_LAYOUT(drm_xe_vm_bind_op, obj_offset);
XESVM_SAME_LAYOUT(drm_xe_vm_bind_op, userptr);
XESVM_SAME_LAYOUT(drm_xe_vm_bind_op, range);
XESVM_SAME_LAYOUT(drm_xe_vm_bind_op, addr);
XESVM_SAME_LAYOUT(drm_xe_vm_bind_op, op);
XESVM_SAME_LAYOUT(drm_xe_vm_bind_op, flags);
XESVM_SAME_LAYOUT(drm_xe_vm_bind_op, prefetch_mem_region_instance);
XESVM_SAME_LAYOUT(drm_xe_vm_bind_op, reserved);
XESVM_SAME_VALUE(DRM_XE_VM_BIND_OP_MAP, u::kVmBindOpMap);
XESVM_SAME_VALUE(DRM_XE_VM_BIND_OP_UNMAP, u::kVmBindOpUnmap);
XESVM_SAME_VALUE(DRM_XE_VM_BIND_OP_MAP_USERPTR, u::kVmBindOpMapUserptr);
XESVM_SAME_VALUE(DRM_XE_VM_BIND_OP_UNMAP_ALL, u::kVmBindOpUnmapAll);
XESVM_SAME_VALUE(DRM_XE_VM_BIND_OP_PREFETCH, u::kVmBindOpPrefetch);
XESVM_SAME_VALUE(DRM_XE_VM_BIND_FLAG_READONLY, u::kVmBindFlagReadonly);
XESVM_SAME_VALUE(DRM_XE_VM_BIND_FLAG_IMMEDIATE, u::kVmBindFlagImmediate);
XESVM_SAME_VALUE(DRM_XE_VM_BIND_FLAG_NULL, u::kVmBindFlagNull);
XESVM_SAME_VALUE(DRM_XE_VM_BIND_FLAG_DUMPABLE, u::kVmBindFlagDumpable);
#if defined(DRM_XE_VM_BIND_FLAG_CHECK_PXP)
XESVM_SAME_VALUE(DRM_XE_VM_BIND_FLAG_CHECK_PXP, u::kVmBindFlagCheckPxp);
#endif
#if defined(DRM_XE_VM_BIND_FLAG_CPU_ADDR_MIRROR)
XESVM_SAME_VALUE(DRM_XE_VM_BIND_FLAG_CPU_ADDR_MIRROR, u::kVmBindFlagCpuAddrMirror);
XESVM_SAME_LAYOUT(drm_xe_vm_bind_op, cpu_addr_mirror_offset);
#endif
#if defined(DRM_XE_CONSULT_MEM_ADVISE_PREF_LOC)
XESVM_SAME_VALUE(static_cast<std::uint32_t>(DRM_XE_CONSULT_MEM_ADVISE_PREF_LOC), u::kConsultMemAdvisePrefLoc);
#endif

XESVM_SAME_SIZE(drm_xe_vm_bind);
XESVM_SAME_LAYOUT(drm_xe_vm_bind, vm_id);
XESVM_SAME_LAYOUT(drm_xe_vm_bind, exec_queue_id);
XESVM_SAME_LAYOUT(drm_xe_vm_bind, num_binds);
XESVM_SAME_LAYOUT(drm_xe_vm_bind, bind);
XESVM_SAME_LAYOUT(drm_xe_vm_bind, vector_of_binds);
XESVM_SAME_LAYOUT(drm_xe_vm_bind, num_syncs);
XESVM_SAME_LAYOUT(drm_xe_vm_bind, syncs);
XESVM_SAME_LAYOUT(drm_xe_vm_bind, reserved);

XESVM_SAME_SIZE(drm_xe_sync);
XESVM_SAME_LAYOUT(drm_xe_sync, type);
XESVM_SAME_LAYOUT(drm_xe_sync, flags);
XESVM_SAME_LAYOUT(drm_xe_sync, handle);
XESVM_SAME_LAYOUT(drm_xe_sync, addr);
XESVM_SAME_LAYOUT(drm_xe_sync, timeline_value);
XESVM_SAME_LAYOUT(drm_xe_sync, reserved);
XESVM_SAME_VALUE(DRM_XE_SYNC_TYPE_SYNCOBJ, u::kSyncTypeSyncobj);
XESVM_SAME_VALUE(DRM_XE_SYNC_TYPE_TIMELINE_SYNCOBJ, u::kSyncTypeTimelineSyncobj);
XESVM_SAME_VALUE(DRM_XE_SYNC_TYPE_USER_FENCE, u::kSyncTypeUserFence);
XESVM_SAME_VALUE(DRM_XE_SYNC_FLAG_SIGNAL, u::kSyncFlagSignal);

XESVM_SAME_SIZE(drm_xe_wait_user_fence);
XESVM_SAME_LAYOUT(drm_xe_wait_user_fence, addr);
XESVM_SAME_LAYOUT(drm_xe_wait_user_fence, op);
XESVM_SAME_LAYOUT(drm_xe_wait_user_fence, flags);
XESVM_SAME_LAYOUT(drm_xe_wait_user_fence, value);
XESVM_SAME_LAYOUT(drm_xe_wait_user_fence, mask);
XESVM_SAME_LAYOUT(drm_xe_wait_user_fence, timeout);
XESVM_SAME_LAYOUT(drm_xe_wait_user_fence, exec_queue_id);
XESVM_SAME_LAYOUT(drm_xe_wait_user_fence, reserved);
XESVM_SAME_VALUE(DRM_XE_UFENCE_WAIT_OP_EQ, u::kUfenceWaitOpEq);
XESVM_SAME_VALUE(DRM_XE_UFENCE_WAIT_OP_NEQ, u::kUfenceWaitOpNeq);
XESVM_SAME_VALUE(DRM_XE_UFENCE_WAIT_OP_GT, u::kUfenceWaitOpGt);
XESVM_SAME_VALUE(DRM_XE_UFENCE_WAIT_OP_GTE, u::kUfenceWaitOpGte);
XESVM_SAME_VALUE(DRM_XE_UFENCE_WAIT_OP_LT, u::kUfenceWaitOpLt);
XESVM_SAME_VALUE(DRM_XE_UFENCE_WAIT_OP_LTE, u::kUfenceWaitOpLte);
XESVM_SAME_VALUE(DRM_XE_UFENCE_WAIT_FLAG_ABSTIME, u::kUfenceWaitFlagAbstime);

#if defined(DRM_IOCTL_XE_MADVISE)
XESVM_SAME_VALUE(DRM_IOCTL_XE_MADVISE, u::kIoctlMadvise);
XESVM_SAME_SIZE(drm_xe_madvise);
XESVM_SAME_LAYOUT(drm_xe_madvise, start);
XESVM_SAME_LAYOUT(drm_xe_madvise, range);
XESVM_SAME_LAYOUT(drm_xe_madvise, vm_id);
XESVM_SAME_LAYOUT(drm_xe_madvise, type);
XESVM_SAME_LAYOUT(drm_xe_madvise, preferred_mem_loc.devmem_fd);
XESVM_SAME_LAYOUT(drm_xe_madvise, preferred_mem_loc.migration_policy);
XESVM_SAME_LAYOUT(drm_xe_madvise, atomic.val);
XESVM_SAME_LAYOUT(drm_xe_madvise, pat_index.val);
XESVM_SAME_LAYOUT(drm_xe_madvise, reserved);
XESVM_SAME_VALUE(DRM_XE_MEM_RANGE_ATTR_PREFERRED_LOC, u::kMemRangeAttrPreferredLoc);
XESVM_SAME_VALUE(DRM_XE_MEM_RANGE_ATTR_ATOMIC, u::kMemRangeAttrAtomic);
XESVM_SAME_VALUE(DRM_XE_MEM_RANGE_ATTR_PAT, u::kMemRangeAttrPat);
XESVM_SAME_VALUE(static_cast<std::uint32_t>(DRM_XE_PREFERRED_LOC_DEFAULT_DEVICE), u::kPreferredLocDefaultDevice);
XESVM_SAME_VALUE(static_cast<std::uint32_t>(DRM_XE_PREFERRED_LOC_DEFAULT_SYSTEM), u::kPreferredLocDefaultSystem);
XESVM_SAME_VALUE(DRM_XE_MIGRATE_ALL_PAGES, u::kMigrateAllPages);
XESVM_SAME_VALUE(DRM_XE_ATOMIC_UNDEFINED, u::kAtomicUndefined);
XESVM_SAME_VALUE(DRM_XE_ATOMIC_DEVICE, u::kAtomicDevice);
XESVM_SAME_VALUE(DRM_XE_ATOMIC_GLOBAL, u::kAtomicGlobal);
XESVM_SAME_VALUE(DRM_XE_ATOMIC_CPU, u::kAtomicCpu);
#endif

#if defined(DRM_IOCTL_XE_VM_QUERY_MEM_RANGE_ATTRS)
XESVM_SAME_VALUE(DRM_IOCTL_XE_VM_QUERY_MEM_RANGE_ATTRS, u::kIoctlVmQueryMemRangeAttrs);
XESVM_SAME_SIZE(drm_xe_vm_query_mem_range_attr);
XESVM_SAME_LAYOUT(drm_xe_vm_query_mem_range_attr, vm_id);
XESVM_SAME_LAYOUT(drm_xe_vm_query_mem_range_attr, num_mem_ranges);
XESVM_SAME_LAYOUT(drm_xe_vm_query_mem_range_attr, start);
XESVM_SAME_LAYOUT(drm_xe_vm_query_mem_range_attr, range);
XESVM_SAME_LAYOUT(drm_xe_vm_query_mem_range_attr, sizeof_mem_range_attr);
XESVM_SAME_LAYOUT(drm_xe_vm_query_mem_range_attr, vector_of_mem_attr);
XESVM_SAME_LAYOUT(drm_xe_vm_query_mem_range_attr, reserved);
XESVM_SAME_SIZE(drm_xe_mem_range_attr);
XESVM_SAME_LAYOUT(drm_xe_mem_range_attr, start);
XESVM_SAME_LAYOUT(drm_xe_mem_range_attr, end);
XESVM_SAME_LAYOUT(drm_xe_mem_range_attr, preferred_mem_loc.devmem_fd);
XESVM_SAME_LAYOUT(drm_xe_mem_range_attr, preferred_mem_loc.migration_policy);
XESVM_SAME_LAYOUT(drm_xe_mem_range_attr, atomic.val);
XESVM_SAME_LAYOUT(drm_xe_mem_range_attr, pat_index.val);
XESVM_SAME_LAYOUT(drm_xe_mem_range_attr, reserved);
#endif

#undef XESVM_SAME_LAYOUT
#undef XESVM_SAME_SIZE
#undef XESVM_SAME_VALUE

}  // namespace xesvm::xe::uapi_check
#endif  // XESVM_XE_SYSTEM_UAPI_HEADER
