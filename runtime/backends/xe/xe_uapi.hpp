// The subset of the Xe kernel driver's uAPI (upstream include/uapi/drm/xe_drm.h,
// Linux 6.15-6.18 and later) that shared virtual memory needs: device queries,
// long-running fault-mode VMs, VM_BIND with CPU address mirroring and
// PREFETCH, user fences, MADVISE and QUERY_MEM_RANGE_ATTRS.
//
// It is the project's own declaration of an ABI, not a copy of the kernel
// header: Debian 12's libdrm 2.4.114 predates xe_drm.h and Linux 6.12's header
// lacks CPU_ADDR_MIRROR, MADVISE and QUERY_MEM_RANGE_ATTRS. Every struct
// carries static assertions on its size and on the offset of every field, and
// every ioctl number is asserted against the literal value the upstream
// macros produce on x86-64. Where the system has <drm/xe_drm.h> (or libdrm's
// xe_drm.h), xe_uapi_check.cpp proves at build time that both agree.
//
// Struct names follow upstream (struct drm_xe_*) inside namespace
// xesvm::xe::uapi, so the two can be compared side by side. Constants are
// constexpr values, never macros, named after the upstream macro without its
// DRM_XE_ prefix (DRM_XE_VM_BIND_FLAG_CPU_ADDR_MIRROR is kVmBindFlagCpuAddrMirror,
// DRM_IOCTL_XE_VM_BIND is kIoctlVmBind), so this header and the system's may
// be included in one translation unit.
//
// Concurrency: declarations only.
#pragma once

#include <cstddef>
#include <cstdint>

namespace xesvm::xe::uapi {

// --- ioctl request encoding (asm-generic/ioctl.h, as used on x86-64) ---------

inline constexpr unsigned kIocNone = 0u;
inline constexpr unsigned kIocWrite = 1u;
inline constexpr unsigned kIocRead = 2u;

/// _IOC(dir, type, nr, size): dir in bits 30-31, size in 16-29, type 8-15, nr 0-7.
constexpr unsigned long ioc(unsigned dir, unsigned type, unsigned nr, std::size_t size) {
  return (static_cast<unsigned long>(dir) << 30) | (static_cast<unsigned long>(size) << 16) |
         (static_cast<unsigned long>(type) << 8) | static_cast<unsigned long>(nr);
}
/// The argument size encoded in a request (_IOC_SIZE).
constexpr std::size_t ioc_size(unsigned long request) { return (request >> 16) & 0x3fffu; }
/// The command number encoded in a request (_IOC_NR).
constexpr unsigned ioc_nr(unsigned long request) { return request & 0xffu; }

inline constexpr unsigned kDrmIoctlBase = 'd';     ///< DRM_IOCTL_BASE
inline constexpr unsigned kDrmCommandBase = 0x40;  ///< DRM_COMMAND_BASE

// --- command numbers (offsets from DRM_COMMAND_BASE) -------------------------

inline constexpr unsigned kXeDeviceQuery = 0x00;
inline constexpr unsigned kXeVmCreate = 0x03;
inline constexpr unsigned kXeVmDestroy = 0x04;
inline constexpr unsigned kXeVmBind = 0x05;
inline constexpr unsigned kXeExecQueueCreate = 0x06;
inline constexpr unsigned kXeExecQueueDestroy = 0x07;
inline constexpr unsigned kXeExec = 0x09;
inline constexpr unsigned kXeWaitUserFence = 0x0a;
inline constexpr unsigned kXeMadvise = 0x0c;
inline constexpr unsigned kXeVmQueryMemRangeAttrs = 0x0d;

// --- structs -------------------------------------------------------------------

/// DRM_IOCTL_XE_DEVICE_QUERY argument. Two-call protocol: size = 0 learns
/// the size, the second call fills `data` (size must then match exactly).
struct drm_xe_device_query {
  std::uint64_t extensions;
  std::uint32_t query;
  std::uint32_t size;
  std::uint64_t data;
  std::uint64_t reserved[2];
};

inline constexpr std::uint32_t kDeviceQueryEngines = 0;
inline constexpr std::uint32_t kDeviceQueryMemRegions = 1;
inline constexpr std::uint32_t kDeviceQueryConfig = 2;
inline constexpr std::uint32_t kDeviceQueryGtList = 3;

/// Reply of DEVICE_QUERY_CONFIG: this header, then num_params u64 values.
struct drm_xe_query_config {
  std::uint32_t num_params;
  std::uint32_t pad;
  // std::uint64_t info[num_params] follows at offset 8.
};
inline constexpr std::size_t kQueryConfigInfoOffset = 8;

inline constexpr std::uint32_t kQueryConfigRevAndDeviceId = 0;
inline constexpr std::uint32_t kQueryConfigFlags = 1;
inline constexpr std::uint32_t kQueryConfigMinAlignment = 2;
inline constexpr std::uint32_t kQueryConfigVaBits = 3;
inline constexpr std::uint32_t kQueryConfigMaxExecQueuePriority = 4;

inline constexpr std::uint64_t kQueryConfigFlagHasVram = 1u << 0;
inline constexpr std::uint64_t kQueryConfigFlagHasLowLatency = 1u << 1;
inline constexpr std::uint64_t kQueryConfigFlagHasCpuAddrMirror = 1u << 2;

/// One entry of DEVICE_QUERY_MEM_REGIONS.
struct drm_xe_mem_region {
  std::uint16_t mem_class;
  std::uint16_t instance;  ///< the region instance PREFETCH takes
  std::uint32_t min_page_size;
  std::uint64_t total_size;
  std::uint64_t used;  ///< 0 without CAP_PERFMON / CAP_SYS_ADMIN
  std::uint64_t cpu_visible_size;
  std::uint64_t cpu_visible_used;
  std::uint64_t reserved[6];
};

inline constexpr std::uint16_t kMemRegionClassSysmem = 0;
inline constexpr std::uint16_t kMemRegionClassVram = 1;

/// Reply of DEVICE_QUERY_MEM_REGIONS: this header, then the regions.
struct drm_xe_query_mem_regions {
  std::uint32_t num_mem_regions;
  std::uint32_t pad;
  // drm_xe_mem_region mem_regions[num_mem_regions] follows at offset 8.
};
inline constexpr std::size_t kQueryMemRegionsArrayOffset = 8;

/// DRM_IOCTL_XE_VM_CREATE argument; vm_id is written by the kernel.
struct drm_xe_vm_create {
  std::uint64_t extensions;
  std::uint32_t flags;
  std::uint32_t vm_id;
  std::uint64_t reserved[2];
};

inline constexpr std::uint32_t kVmCreateFlagScratchPage = 1u << 0;
inline constexpr std::uint32_t kVmCreateFlagLrMode = 1u << 1;
inline constexpr std::uint32_t kVmCreateFlagFaultMode = 1u << 2;

/// DRM_IOCTL_XE_VM_DESTROY argument.
struct drm_xe_vm_destroy {
  std::uint32_t vm_id;
  std::uint32_t pad;
  std::uint64_t reserved[2];
};

/// One VM_BIND operation.
struct drm_xe_vm_bind_op {
  std::uint64_t extensions;
  std::uint32_t obj;  ///< GEM handle; MBZ for CPU_ADDR_MIRROR, PREFETCH of a mirror
  std::uint16_t pat_index;
  std::uint16_t pad;
  union {
    std::uint64_t obj_offset;
    std::uint64_t userptr;
    std::int64_t cpu_addr_mirror_offset;  ///< MBZ: GPU VA == CPU VA
  };
  std::uint64_t range;
  std::uint64_t addr;
  std::uint32_t op;
  std::uint32_t flags;
  std::uint32_t prefetch_mem_region_instance;  ///< an instance, not a mask
  std::uint32_t pad2;
  std::uint64_t reserved[3];
};

inline constexpr std::uint32_t kVmBindOpMap = 0x0;
inline constexpr std::uint32_t kVmBindOpUnmap = 0x1;
inline constexpr std::uint32_t kVmBindOpMapUserptr = 0x2;
inline constexpr std::uint32_t kVmBindOpUnmapAll = 0x3;
inline constexpr std::uint32_t kVmBindOpPrefetch = 0x4;

inline constexpr std::uint32_t kVmBindFlagReadonly = 1u << 0;
inline constexpr std::uint32_t kVmBindFlagImmediate = 1u << 1;
inline constexpr std::uint32_t kVmBindFlagNull = 1u << 2;
inline constexpr std::uint32_t kVmBindFlagDumpable = 1u << 3;
inline constexpr std::uint32_t kVmBindFlagCheckPxp = 1u << 4;
inline constexpr std::uint32_t kVmBindFlagCpuAddrMirror = 1u << 5;

/// prefetch_mem_region_instance value: use the range's MADVISE preferred location.
inline constexpr std::uint32_t kConsultMemAdvisePrefLoc = 0xffffffffu;  // (u32)-1

/// DRM_IOCTL_XE_VM_BIND argument (num_binds == 1 uses `bind` in place).
struct drm_xe_vm_bind {
  std::uint64_t extensions;
  std::uint32_t vm_id;
  std::uint32_t exec_queue_id;  ///< 0: the VM's default bind queue
  std::uint32_t pad;
  std::uint32_t num_binds;
  union {
    drm_xe_vm_bind_op bind;
    std::uint64_t vector_of_binds;
  };
  std::uint32_t pad2;
  std::uint32_t num_syncs;
  std::uint64_t syncs;  ///< user pointer to drm_xe_sync[num_syncs]
  std::uint64_t reserved[2];
};

/// A sync entry of VM_BIND / EXEC.
struct drm_xe_sync {
  std::uint64_t extensions;
  std::uint32_t type;
  std::uint32_t flags;
  union {
    std::uint32_t handle;
    std::uint64_t addr;  ///< USER_FENCE: 8-byte aligned host address
  };
  std::uint64_t timeline_value;  ///< USER_FENCE: the value written on signal
  std::uint64_t reserved[2];
};

inline constexpr std::uint32_t kSyncTypeSyncobj = 0;
inline constexpr std::uint32_t kSyncTypeTimelineSyncobj = 1;
inline constexpr std::uint32_t kSyncTypeUserFence = 2;
inline constexpr std::uint32_t kSyncFlagSignal = 1u << 0;

/// An engine: class, instance, GT (ENGINES query element; EXEC_QUEUE_CREATE placement).
struct drm_xe_engine_class_instance {
  std::uint16_t engine_class;
  std::uint16_t engine_instance;
  std::uint16_t gt_id;
  std::uint16_t pad;
};

inline constexpr std::uint16_t kEngineClassRender = 0;
inline constexpr std::uint16_t kEngineClassCopy = 1;
inline constexpr std::uint16_t kEngineClassCompute = 4;

/// DRM_IOCTL_XE_EXEC_QUEUE_CREATE argument.
struct drm_xe_exec_queue_create {
  std::uint64_t extensions;
  std::uint16_t width;
  std::uint16_t num_placements;
  std::uint32_t vm_id;
  std::uint32_t flags;
  std::uint32_t exec_queue_id;  ///< out
  std::uint64_t instances;      ///< width * num_placements drm_xe_engine_class_instance
  std::uint64_t reserved[2];
};

/// DRM_IOCTL_XE_EXEC_QUEUE_DESTROY argument.
struct drm_xe_exec_queue_destroy {
  std::uint32_t exec_queue_id;
  std::uint32_t pad;
  std::uint64_t reserved[2];
};

/// DRM_IOCTL_XE_EXEC argument.
struct drm_xe_exec {
  std::uint64_t extensions;
  std::uint32_t exec_queue_id;
  std::uint32_t num_syncs;
  std::uint64_t syncs;
  std::uint64_t address;  ///< GPU VA of the batch (num_batch_buffer == 1)
  std::uint16_t num_batch_buffer;
  std::uint16_t pad[3];
  std::uint64_t reserved[2];
};

/// DRM_IOCTL_XE_WAIT_USER_FENCE argument.
struct drm_xe_wait_user_fence {
  std::uint64_t extensions;
  std::uint64_t addr;
  std::uint16_t op;
  std::uint16_t flags;
  std::uint32_t pad;
  std::uint64_t value;
  std::uint64_t mask;
  std::int64_t timeout;  ///< ns; relative unless ABSTIME
  std::uint32_t exec_queue_id;
  std::uint32_t pad2;
  std::uint64_t reserved[2];
};

inline constexpr std::uint16_t kUfenceWaitOpEq = 0;
inline constexpr std::uint16_t kUfenceWaitOpNeq = 1;
inline constexpr std::uint16_t kUfenceWaitOpGt = 2;
inline constexpr std::uint16_t kUfenceWaitOpGte = 3;
inline constexpr std::uint16_t kUfenceWaitOpLt = 4;
inline constexpr std::uint16_t kUfenceWaitOpLte = 5;
inline constexpr std::uint16_t kUfenceWaitFlagAbstime = 1u << 0;

/// DRM_IOCTL_XE_MADVISE argument (Linux 6.18).
struct drm_xe_madvise {
  std::uint64_t extensions;
  std::uint64_t start;
  std::uint64_t range;
  std::uint32_t vm_id;
  std::uint32_t type;
  union {
    struct {
      std::uint32_t devmem_fd;
      std::uint16_t migration_policy;
      std::uint16_t region_instance;  ///< MBZ when devmem_fd <= DEFAULT_DEVICE
      std::uint64_t reserved;
    } preferred_mem_loc;
    struct {
      std::uint32_t val;
      std::uint32_t pad;
      std::uint64_t reserved;
    } atomic;
    struct {
      std::uint32_t val;
      std::uint32_t pad;
      std::uint64_t reserved;
    } pat_index;
  };
  std::uint64_t reserved[2];
};

inline constexpr std::uint32_t kMemRangeAttrPreferredLoc = 0;
inline constexpr std::uint32_t kMemRangeAttrAtomic = 1;
inline constexpr std::uint32_t kMemRangeAttrPat = 2;

inline constexpr std::uint32_t kPreferredLocDefaultDevice = 0;
inline constexpr std::uint32_t kPreferredLocDefaultSystem = 0xffffffffu;  // (u32)-1
inline constexpr std::uint16_t kMigrateAllPages = 0;
inline constexpr std::uint16_t kMigrateOnlySystemPages = 1;

inline constexpr std::uint32_t kAtomicUndefined = 0;
inline constexpr std::uint32_t kAtomicDevice = 1;
inline constexpr std::uint32_t kAtomicGlobal = 2;
inline constexpr std::uint32_t kAtomicCpu = 3;

/// One element of the QUERY_MEM_RANGE_ATTRS reply.
struct drm_xe_mem_range_attr {
  std::uint64_t extensions;
  std::uint64_t start;
  std::uint64_t end;
  struct {
    std::uint32_t devmem_fd;
    std::uint32_t migration_policy;  ///< u32 here, u16 in drm_xe_madvise
  } preferred_mem_loc;
  struct {
    std::uint32_t val;
    std::uint32_t reserved;
  } atomic;
  struct {
    std::uint32_t val;
    std::uint32_t reserved;
  } pat_index;
  std::uint64_t reserved[2];
};

/// DRM_IOCTL_XE_VM_QUERY_MEM_RANGE_ATTRS argument (Linux 6.18). Two-call
/// protocol: num_mem_ranges = 0 and no vector learns the count and element
/// size; the second call fills the vector; -ENOSPC means the ranges changed
/// in between (start over).
struct drm_xe_vm_query_mem_range_attr {
  std::uint64_t extensions;
  std::uint32_t vm_id;
  std::uint32_t num_mem_ranges;
  std::uint64_t start;
  std::uint64_t range;
  std::uint64_t sizeof_mem_range_attr;
  std::uint64_t vector_of_mem_attr;
  std::uint64_t reserved[2];
};

// --- ioctl requests ------------------------------------------------------------

inline constexpr unsigned long kIoctlDeviceQuery =
    ioc(kIocRead | kIocWrite, kDrmIoctlBase, kDrmCommandBase + kXeDeviceQuery, sizeof(drm_xe_device_query));
inline constexpr unsigned long kIoctlVmCreate =
    ioc(kIocRead | kIocWrite, kDrmIoctlBase, kDrmCommandBase + kXeVmCreate, sizeof(drm_xe_vm_create));
inline constexpr unsigned long kIoctlVmDestroy =
    ioc(kIocWrite, kDrmIoctlBase, kDrmCommandBase + kXeVmDestroy, sizeof(drm_xe_vm_destroy));
inline constexpr unsigned long kIoctlVmBind =
    ioc(kIocWrite, kDrmIoctlBase, kDrmCommandBase + kXeVmBind, sizeof(drm_xe_vm_bind));
inline constexpr unsigned long kIoctlExecQueueCreate =
    ioc(kIocRead | kIocWrite, kDrmIoctlBase, kDrmCommandBase + kXeExecQueueCreate, sizeof(drm_xe_exec_queue_create));
inline constexpr unsigned long kIoctlExecQueueDestroy =
    ioc(kIocWrite, kDrmIoctlBase, kDrmCommandBase + kXeExecQueueDestroy, sizeof(drm_xe_exec_queue_destroy));
inline constexpr unsigned long kIoctlExec =
    ioc(kIocWrite, kDrmIoctlBase, kDrmCommandBase + kXeExec, sizeof(drm_xe_exec));
inline constexpr unsigned long kIoctlWaitUserFence =
    ioc(kIocRead | kIocWrite, kDrmIoctlBase, kDrmCommandBase + kXeWaitUserFence, sizeof(drm_xe_wait_user_fence));
inline constexpr unsigned long kIoctlMadvise =
    ioc(kIocWrite, kDrmIoctlBase, kDrmCommandBase + kXeMadvise, sizeof(drm_xe_madvise));
inline constexpr unsigned long kIoctlVmQueryMemRangeAttrs =
    ioc(kIocRead | kIocWrite, kDrmIoctlBase, kDrmCommandBase + kXeVmQueryMemRangeAttrs,
        sizeof(drm_xe_vm_query_mem_range_attr));

// --- the ABI, asserted ------------------------------------------------------------

static_assert(kIoctlDeviceQuery == 0xc0286440ul);
static_assert(kIoctlVmCreate == 0xc0206443ul);
static_assert(kIoctlVmDestroy == 0x40186444ul);
static_assert(kIoctlVmBind == 0x40886445ul);
static_assert(kIoctlWaitUserFence == 0xc048644aul);
static_assert(kIoctlExecQueueCreate == 0xc0306446ul);
static_assert(kIoctlExecQueueDestroy == 0x40186447ul);
static_assert(kIoctlExec == 0x40386449ul);
static_assert(kIoctlMadvise == 0x4040644cul);
static_assert(kIoctlVmQueryMemRangeAttrs == 0xc040644dul);

static_assert(sizeof(drm_xe_device_query) == 40);
static_assert(offsetof(drm_xe_device_query, extensions) == 0);
static_assert(offsetof(drm_xe_device_query, query) == 8);
static_assert(offsetof(drm_xe_device_query, size) == 12);
static_assert(offsetof(drm_xe_device_query, data) == 16);
static_assert(offsetof(drm_xe_device_query, reserved) == 24);

static_assert(sizeof(drm_xe_query_config) == 8);
static_assert(offsetof(drm_xe_query_config, num_params) == 0);
static_assert(offsetof(drm_xe_query_config, pad) == 4);

static_assert(sizeof(drm_xe_query_mem_regions) == 8);
static_assert(offsetof(drm_xe_query_mem_regions, num_mem_regions) == 0);
static_assert(sizeof(drm_xe_mem_region) == 88);
static_assert(offsetof(drm_xe_mem_region, mem_class) == 0);
static_assert(offsetof(drm_xe_mem_region, instance) == 2);
static_assert(offsetof(drm_xe_mem_region, min_page_size) == 4);
static_assert(offsetof(drm_xe_mem_region, total_size) == 8);
static_assert(offsetof(drm_xe_mem_region, used) == 16);
static_assert(offsetof(drm_xe_mem_region, cpu_visible_size) == 24);
static_assert(offsetof(drm_xe_mem_region, cpu_visible_used) == 32);
static_assert(offsetof(drm_xe_mem_region, reserved) == 40);

static_assert(sizeof(drm_xe_vm_create) == 32);
static_assert(offsetof(drm_xe_vm_create, extensions) == 0);
static_assert(offsetof(drm_xe_vm_create, flags) == 8);
static_assert(offsetof(drm_xe_vm_create, vm_id) == 12);
static_assert(offsetof(drm_xe_vm_create, reserved) == 16);

static_assert(sizeof(drm_xe_vm_destroy) == 24);
static_assert(offsetof(drm_xe_vm_destroy, vm_id) == 0);
static_assert(offsetof(drm_xe_vm_destroy, pad) == 4);
static_assert(offsetof(drm_xe_vm_destroy, reserved) == 8);

static_assert(sizeof(drm_xe_vm_bind_op) == 80);
static_assert(offsetof(drm_xe_vm_bind_op, extensions) == 0);
static_assert(offsetof(drm_xe_vm_bind_op, obj) == 8);
static_assert(offsetof(drm_xe_vm_bind_op, pat_index) == 12);
static_assert(offsetof(drm_xe_vm_bind_op, pad) == 14);
static_assert(offsetof(drm_xe_vm_bind_op, obj_offset) == 16);
static_assert(offsetof(drm_xe_vm_bind_op, userptr) == 16);
static_assert(offsetof(drm_xe_vm_bind_op, cpu_addr_mirror_offset) == 16);
static_assert(offsetof(drm_xe_vm_bind_op, range) == 24);
static_assert(offsetof(drm_xe_vm_bind_op, addr) == 32);
static_assert(offsetof(drm_xe_vm_bind_op, op) == 40);
static_assert(offsetof(drm_xe_vm_bind_op, flags) == 44);
static_assert(offsetof(drm_xe_vm_bind_op, prefetch_mem_region_instance) == 48);
static_assert(offsetof(drm_xe_vm_bind_op, pad2) == 52);
static_assert(offsetof(drm_xe_vm_bind_op, reserved) == 56);

static_assert(sizeof(drm_xe_vm_bind) == 136);
static_assert(offsetof(drm_xe_vm_bind, extensions) == 0);
static_assert(offsetof(drm_xe_vm_bind, vm_id) == 8);
static_assert(offsetof(drm_xe_vm_bind, exec_queue_id) == 12);
static_assert(offsetof(drm_xe_vm_bind, pad) == 16);
static_assert(offsetof(drm_xe_vm_bind, num_binds) == 20);
static_assert(offsetof(drm_xe_vm_bind, bind) == 24);
static_assert(offsetof(drm_xe_vm_bind, vector_of_binds) == 24);
static_assert(offsetof(drm_xe_vm_bind, pad2) == 104);
static_assert(offsetof(drm_xe_vm_bind, num_syncs) == 108);
static_assert(offsetof(drm_xe_vm_bind, syncs) == 112);
static_assert(offsetof(drm_xe_vm_bind, reserved) == 120);

static_assert(sizeof(drm_xe_sync) == 48);
static_assert(offsetof(drm_xe_sync, extensions) == 0);
static_assert(offsetof(drm_xe_sync, type) == 8);
static_assert(offsetof(drm_xe_sync, flags) == 12);
static_assert(offsetof(drm_xe_sync, handle) == 16);
static_assert(offsetof(drm_xe_sync, addr) == 16);
static_assert(offsetof(drm_xe_sync, timeline_value) == 24);
static_assert(offsetof(drm_xe_sync, reserved) == 32);

static_assert(sizeof(drm_xe_wait_user_fence) == 72);
static_assert(offsetof(drm_xe_wait_user_fence, extensions) == 0);
static_assert(offsetof(drm_xe_wait_user_fence, addr) == 8);
static_assert(offsetof(drm_xe_wait_user_fence, op) == 16);
static_assert(offsetof(drm_xe_wait_user_fence, flags) == 18);
static_assert(offsetof(drm_xe_wait_user_fence, pad) == 20);
static_assert(offsetof(drm_xe_wait_user_fence, value) == 24);
static_assert(offsetof(drm_xe_wait_user_fence, mask) == 32);
static_assert(offsetof(drm_xe_wait_user_fence, timeout) == 40);
static_assert(offsetof(drm_xe_wait_user_fence, exec_queue_id) == 48);
static_assert(offsetof(drm_xe_wait_user_fence, pad2) == 52);
static_assert(offsetof(drm_xe_wait_user_fence, reserved) == 56);

static_assert(sizeof(drm_xe_engine_class_instance) == 8);
static_assert(offsetof(drm_xe_engine_class_instance, engine_instance) == 2);
static_assert(offsetof(drm_xe_engine_class_instance, gt_id) == 4);

static_assert(sizeof(drm_xe_exec_queue_create) == 48);
static_assert(offsetof(drm_xe_exec_queue_create, width) == 8);
static_assert(offsetof(drm_xe_exec_queue_create, num_placements) == 10);
static_assert(offsetof(drm_xe_exec_queue_create, vm_id) == 12);
static_assert(offsetof(drm_xe_exec_queue_create, flags) == 16);
static_assert(offsetof(drm_xe_exec_queue_create, exec_queue_id) == 20);
static_assert(offsetof(drm_xe_exec_queue_create, instances) == 24);
static_assert(offsetof(drm_xe_exec_queue_create, reserved) == 32);

static_assert(sizeof(drm_xe_exec_queue_destroy) == 24);
static_assert(offsetof(drm_xe_exec_queue_destroy, reserved) == 8);

static_assert(sizeof(drm_xe_exec) == 56);
static_assert(offsetof(drm_xe_exec, exec_queue_id) == 8);
static_assert(offsetof(drm_xe_exec, num_syncs) == 12);
static_assert(offsetof(drm_xe_exec, syncs) == 16);
static_assert(offsetof(drm_xe_exec, address) == 24);
static_assert(offsetof(drm_xe_exec, num_batch_buffer) == 32);
static_assert(offsetof(drm_xe_exec, pad) == 34);
static_assert(offsetof(drm_xe_exec, reserved) == 40);

static_assert(sizeof(drm_xe_madvise) == 64);
static_assert(offsetof(drm_xe_madvise, extensions) == 0);
static_assert(offsetof(drm_xe_madvise, start) == 8);
static_assert(offsetof(drm_xe_madvise, range) == 16);
static_assert(offsetof(drm_xe_madvise, vm_id) == 24);
static_assert(offsetof(drm_xe_madvise, type) == 28);
static_assert(offsetof(drm_xe_madvise, preferred_mem_loc) == 32);
static_assert(offsetof(drm_xe_madvise, preferred_mem_loc.devmem_fd) == 32);
static_assert(offsetof(drm_xe_madvise, preferred_mem_loc.migration_policy) == 36);
static_assert(offsetof(drm_xe_madvise, preferred_mem_loc.region_instance) == 38);
static_assert(offsetof(drm_xe_madvise, preferred_mem_loc.reserved) == 40);
static_assert(offsetof(drm_xe_madvise, atomic.val) == 32);
static_assert(offsetof(drm_xe_madvise, atomic.pad) == 36);
static_assert(offsetof(drm_xe_madvise, atomic.reserved) == 40);
static_assert(offsetof(drm_xe_madvise, pat_index.val) == 32);
static_assert(offsetof(drm_xe_madvise, reserved) == 48);

static_assert(sizeof(drm_xe_mem_range_attr) == 64);
static_assert(offsetof(drm_xe_mem_range_attr, extensions) == 0);
static_assert(offsetof(drm_xe_mem_range_attr, start) == 8);
static_assert(offsetof(drm_xe_mem_range_attr, end) == 16);
static_assert(offsetof(drm_xe_mem_range_attr, preferred_mem_loc.devmem_fd) == 24);
static_assert(offsetof(drm_xe_mem_range_attr, preferred_mem_loc.migration_policy) == 28);
static_assert(offsetof(drm_xe_mem_range_attr, atomic.val) == 32);
static_assert(offsetof(drm_xe_mem_range_attr, atomic.reserved) == 36);
static_assert(offsetof(drm_xe_mem_range_attr, pat_index.val) == 40);
static_assert(offsetof(drm_xe_mem_range_attr, pat_index.reserved) == 44);
static_assert(offsetof(drm_xe_mem_range_attr, reserved) == 48);

static_assert(sizeof(drm_xe_vm_query_mem_range_attr) == 64);
static_assert(offsetof(drm_xe_vm_query_mem_range_attr, extensions) == 0);
static_assert(offsetof(drm_xe_vm_query_mem_range_attr, vm_id) == 8);
static_assert(offsetof(drm_xe_vm_query_mem_range_attr, num_mem_ranges) == 12);
static_assert(offsetof(drm_xe_vm_query_mem_range_attr, start) == 16);
static_assert(offsetof(drm_xe_vm_query_mem_range_attr, range) == 24);
static_assert(offsetof(drm_xe_vm_query_mem_range_attr, sizeof_mem_range_attr) == 32);
static_assert(offsetof(drm_xe_vm_query_mem_range_attr, vector_of_mem_attr) == 40);
static_assert(offsetof(drm_xe_vm_query_mem_range_attr, reserved) == 48);

}  // namespace xesvm::xe::uapi
