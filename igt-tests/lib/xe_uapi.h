/*
 * xe_uapi.h - the subset of the Xe uAPI (upstream include/uapi/drm/xe_drm.h)
 * that SVM tests use: device queries, VM create/bind with the CPU address
 * mirror, exec queues, exec with user fences, user-fence waits, madvise and
 * the memory-range attribute query.
 *
 * Debian 12's linux-libc-dev (6.1) ships no xe_drm.h, and Linux 6.12's lacks
 * the SVM additions (CPU_ADDR_MIRROR, MADVISE, VM_QUERY_MEM_RANGE_ATTRS), so
 * the tests carry their own copy. Names, numbers and layouts are the upstream
 * ABI; every size and field offset is checked at compile time below and at
 * run time by tests/xe_lib_selftest.c. Do not include this together with a
 * system <drm/xe_drm.h>.
 */
#ifndef XESVM_IGT_XE_UAPI_H_
#define XESVM_IGT_XE_UAPI_H_

#include <linux/ioctl.h>
#include <linux/types.h>
#include <stddef.h>

#ifdef _UAPI_XE_DRM_H_
#error "xe_uapi.h duplicates <drm/xe_drm.h>; include only one of them"
#endif

/* ---- ioctl numbers: DRM_COMMAND_BASE 0x40 on the DRM type 'd' ---------- */
#define XE_DRM_IOCTL_BASE 'd'
#define XE_DRM_COMMAND_BASE 0x40

#define DRM_XE_DEVICE_QUERY 0x00
#define DRM_XE_GEM_CREATE 0x01
#define DRM_XE_GEM_MMAP_OFFSET 0x02
#define DRM_XE_VM_CREATE 0x03
#define DRM_XE_VM_DESTROY 0x04
#define DRM_XE_VM_BIND 0x05
#define DRM_XE_EXEC_QUEUE_CREATE 0x06
#define DRM_XE_EXEC_QUEUE_DESTROY 0x07
#define DRM_XE_EXEC_QUEUE_GET_PROPERTY 0x08
#define DRM_XE_EXEC 0x09
#define DRM_XE_WAIT_USER_FENCE 0x0a
#define DRM_XE_OBSERVATION 0x0b
#define DRM_XE_MADVISE 0x0c
#define DRM_XE_VM_QUERY_MEM_RANGE_ATTRS 0x0d

/* ---- DEVICE_QUERY ---------------------------------------------------------- */
struct drm_xe_device_query {
  __u64 extensions;
  __u32 query;
  __u32 size; /* in: 0 to learn the size, then the exact size; out: size */
  __u64 data; /* user pointer to a buffer of `size` bytes */
  __u64 reserved[2];
};

#define DRM_XE_DEVICE_QUERY_ENGINES 0
#define DRM_XE_DEVICE_QUERY_MEM_REGIONS 1
#define DRM_XE_DEVICE_QUERY_CONFIG 2
#define DRM_XE_DEVICE_QUERY_GT_LIST 3
#define DRM_XE_DEVICE_QUERY_HWCONFIG 4
#define DRM_XE_DEVICE_QUERY_GT_TOPOLOGY 5
#define DRM_XE_DEVICE_QUERY_ENGINE_CYCLES 6
#define DRM_XE_DEVICE_QUERY_UC_FW_VERSION 7
#define DRM_XE_DEVICE_QUERY_OA_UNITS 8
#define DRM_XE_DEVICE_QUERY_PXP_STATUS 9
#define DRM_XE_DEVICE_QUERY_EU_STALL 10

struct drm_xe_engine_class_instance {
#define DRM_XE_ENGINE_CLASS_RENDER 0
#define DRM_XE_ENGINE_CLASS_COPY 1
#define DRM_XE_ENGINE_CLASS_VIDEO_DECODE 2
#define DRM_XE_ENGINE_CLASS_VIDEO_ENHANCE 3
#define DRM_XE_ENGINE_CLASS_COMPUTE 4
#define DRM_XE_ENGINE_CLASS_VM_BIND 5
  __u16 engine_class;
  __u16 engine_instance;
  __u16 gt_id;
  __u16 pad;
};

struct drm_xe_engine {
  struct drm_xe_engine_class_instance instance;
  __u64 reserved[3];
};

struct drm_xe_query_engines {
  __u32 num_engines;
  __u32 pad;
  struct drm_xe_engine engines[];
};

#define DRM_XE_MEM_REGION_CLASS_SYSMEM 0
#define DRM_XE_MEM_REGION_CLASS_VRAM 1

struct drm_xe_mem_region {
  __u16 mem_class;
  __u16 instance;
  __u32 min_page_size;
  __u64 total_size;
  __u64 used;
  __u64 cpu_visible_size;
  __u64 cpu_visible_used;
  __u64 reserved[6];
};

struct drm_xe_query_mem_regions {
  __u32 num_mem_regions;
  __u32 pad;
  struct drm_xe_mem_region mem_regions[];
};

struct drm_xe_query_config {
  __u32 num_params;
  __u32 pad;
#define DRM_XE_QUERY_CONFIG_REV_AND_DEVICE_ID 0
#define DRM_XE_QUERY_CONFIG_FLAGS 1
#define DRM_XE_QUERY_CONFIG_FLAG_HAS_VRAM (1 << 0)
#define DRM_XE_QUERY_CONFIG_FLAG_HAS_LOW_LATENCY (1 << 1)
#define DRM_XE_QUERY_CONFIG_FLAG_HAS_CPU_ADDR_MIRROR (1 << 2)
#define DRM_XE_QUERY_CONFIG_MIN_ALIGNMENT 2
#define DRM_XE_QUERY_CONFIG_VA_BITS 3
#define DRM_XE_QUERY_CONFIG_MAX_EXEC_QUEUE_PRIORITY 4
  __u64 info[];
};

struct drm_xe_gt {
#define DRM_XE_QUERY_GT_TYPE_MAIN 0
#define DRM_XE_QUERY_GT_TYPE_MEDIA 1
  __u16 type;
  __u16 tile_id;
  __u16 gt_id;
  __u16 pad[3];
  __u32 reference_clock;
  __u64 near_mem_regions; /* bit i = mem_regions[i] of the MEM_REGIONS query */
  __u64 far_mem_regions;
  __u16 ip_ver_major;
  __u16 ip_ver_minor;
  __u16 ip_ver_rev;
  __u16 pad2;
  __u64 reserved[7];
};

struct drm_xe_query_gt_list {
  __u32 num_gt;
  __u32 pad;
  struct drm_xe_gt gt_list[];
};

/* ---- VM_CREATE / VM_DESTROY ----------------------------------------------- */
struct drm_xe_vm_create {
  __u64 extensions;
#define DRM_XE_VM_CREATE_FLAG_SCRATCH_PAGE (1 << 0)
#define DRM_XE_VM_CREATE_FLAG_LR_MODE (1 << 1)
#define DRM_XE_VM_CREATE_FLAG_FAULT_MODE (1 << 2)
  __u32 flags;
  __u32 vm_id; /* out */
  __u64 reserved[2];
};

struct drm_xe_vm_destroy {
  __u32 vm_id;
  __u32 pad;
  __u64 reserved[2];
};

/* ---- VM_BIND --------------------------------------------------------------- */
struct drm_xe_vm_bind_op {
  __u64 extensions;
  __u32 obj; /* GEM handle; must be zero for CPU_ADDR_MIRROR, UNMAP, PREFETCH */
  __u16 pat_index;
  __u16 pad;
  union {
    __u64 obj_offset;
    __u64 userptr;
    __s64 cpu_addr_mirror_offset; /* must be zero: GPU VA == CPU VA */
  };
  __u64 range;
  __u64 addr;
#define DRM_XE_VM_BIND_OP_MAP 0x0
#define DRM_XE_VM_BIND_OP_UNMAP 0x1
#define DRM_XE_VM_BIND_OP_MAP_USERPTR 0x2
#define DRM_XE_VM_BIND_OP_UNMAP_ALL 0x3
#define DRM_XE_VM_BIND_OP_PREFETCH 0x4
  __u32 op;
#define DRM_XE_VM_BIND_FLAG_READONLY (1 << 0)
#define DRM_XE_VM_BIND_FLAG_IMMEDIATE (1 << 1)
#define DRM_XE_VM_BIND_FLAG_NULL (1 << 2)
#define DRM_XE_VM_BIND_FLAG_DUMPABLE (1 << 3)
#define DRM_XE_VM_BIND_FLAG_CHECK_PXP (1 << 4)
#define DRM_XE_VM_BIND_FLAG_CPU_ADDR_MIRROR (1 << 5)
  __u32 flags;
#define DRM_XE_CONSULT_MEM_ADVISE_PREF_LOC (-1)
  __u32 prefetch_mem_region_instance; /* an instance, not a mask */
  __u32 pad2;
  __u64 reserved[3];
};

struct drm_xe_vm_bind {
  __u64 extensions;
  __u32 vm_id;
  __u32 exec_queue_id; /* 0: the VM's default bind queue */
  __u32 pad;
  __u32 num_binds;
  union {
    struct drm_xe_vm_bind_op bind;
    __u64 vector_of_binds; /* user pointer when num_binds > 1 */
  };
  __u32 pad2;
  __u32 num_syncs;
  __u64 syncs; /* user pointer to struct drm_xe_sync[num_syncs] */
  __u64 reserved[2];
};

/* ---- EXEC_QUEUE_CREATE / DESTROY ------------------------------------------ */
struct drm_xe_exec_queue_create {
  __u64 extensions;
  __u16 width;
  __u16 num_placements;
  __u32 vm_id;
  __u32 flags;
  __u32 exec_queue_id; /* out */
  __u64 instances;     /* user pointer to drm_xe_engine_class_instance[] */
  __u64 reserved[2];
};

struct drm_xe_exec_queue_destroy {
  __u32 exec_queue_id;
  __u32 pad;
  __u64 reserved[2];
};

/* ---- syncs, EXEC, WAIT_USER_FENCE ----------------------------------------- */
struct drm_xe_sync {
  __u64 extensions;
#define DRM_XE_SYNC_TYPE_SYNCOBJ 0x0
#define DRM_XE_SYNC_TYPE_TIMELINE_SYNCOBJ 0x1
#define DRM_XE_SYNC_TYPE_USER_FENCE 0x2
  __u32 type;
#define DRM_XE_SYNC_FLAG_SIGNAL (1 << 0)
  __u32 flags;
  union {
    __u32 handle;
    __u64 addr; /* user fence: 8-byte aligned address the value is written to */
  };
  __u64 timeline_value; /* user fence: the value written */
  __u64 reserved[2];
};

struct drm_xe_exec {
  __u64 extensions;
  __u32 exec_queue_id;
#define DRM_XE_MAX_SYNCS 1024
  __u32 num_syncs;
  __u64 syncs;
  __u64 address; /* GPU VA of the batch (or pointer to addresses if width > 1) */
  __u16 num_batch_buffer;
  __u16 pad[3];
  __u64 reserved[2];
};

struct drm_xe_wait_user_fence {
  __u64 extensions;
  __u64 addr;
#define DRM_XE_UFENCE_WAIT_OP_EQ 0x0
#define DRM_XE_UFENCE_WAIT_OP_NEQ 0x1
#define DRM_XE_UFENCE_WAIT_OP_GT 0x2
#define DRM_XE_UFENCE_WAIT_OP_GTE 0x3
#define DRM_XE_UFENCE_WAIT_OP_LT 0x4
#define DRM_XE_UFENCE_WAIT_OP_LTE 0x5
  __u16 op;
#define DRM_XE_UFENCE_WAIT_FLAG_ABSTIME (1 << 0)
  __u16 flags;
  __u32 pad;
  __u64 value;
  __u64 mask;
  __s64 timeout; /* ns; relative unless ABSTIME; negative waits forever */
  __u32 exec_queue_id;
  __u32 pad2;
  __u64 reserved[2];
};

/* ---- MADVISE and VM_QUERY_MEM_RANGE_ATTRS --------------------------------- */
struct drm_xe_madvise {
  __u64 extensions;
  __u64 start;
  __u64 range;
  __u32 vm_id;
#define DRM_XE_MEM_RANGE_ATTR_PREFERRED_LOC 0
#define DRM_XE_MEM_RANGE_ATTR_ATOMIC 1
#define DRM_XE_MEM_RANGE_ATTR_PAT 2
  __u32 type;
  union {
    struct {
#define DRM_XE_PREFERRED_LOC_DEFAULT_DEVICE 0
#define DRM_XE_PREFERRED_LOC_DEFAULT_SYSTEM -1
      __u32 devmem_fd;
#define DRM_XE_MIGRATE_ALL_PAGES 0
#define DRM_XE_MIGRATE_ONLY_SYSTEM_PAGES 1
      __u16 migration_policy;
      __u16 pad;
      __u64 reserved;
    } preferred_mem_loc;
    struct {
#define DRM_XE_ATOMIC_UNDEFINED 0
#define DRM_XE_ATOMIC_DEVICE 1
#define DRM_XE_ATOMIC_GLOBAL 2
#define DRM_XE_ATOMIC_CPU 3
      __u32 val;
      __u32 pad;
      __u64 reserved;
    } atomic;
    struct {
      __u32 val;
      __u32 pad;
      __u64 reserved;
    } pat_index;
  };
  __u64 reserved[2];
};

struct drm_xe_mem_range_attr {
  __u64 extensions;
  __u64 start;
  __u64 end;
  struct {
    __u32 devmem_fd;
    __u32 migration_policy;
  } preferred_mem_loc;
  struct {
    __u32 val;
    __u32 reserved;
  } atomic;
  struct {
    __u32 val;
    __u32 reserved;
  } pat_index;
  __u64 reserved[2];
};

struct drm_xe_vm_query_mem_range_attr {
  __u64 extensions;
  __u32 vm_id;
  __u32 num_mem_ranges; /* in/out */
  __u64 start;
  __u64 range;
  __u64 sizeof_mem_range_attr; /* out */
  __u64 vector_of_mem_attr;    /* user pointer, NULL on the first call */
  __u64 reserved[2];
};

#define DRM_IOCTL_XE_DEVICE_QUERY \
  _IOWR(XE_DRM_IOCTL_BASE, XE_DRM_COMMAND_BASE + DRM_XE_DEVICE_QUERY, struct drm_xe_device_query)
#define DRM_IOCTL_XE_VM_CREATE _IOWR(XE_DRM_IOCTL_BASE, XE_DRM_COMMAND_BASE + DRM_XE_VM_CREATE, struct drm_xe_vm_create)
#define DRM_IOCTL_XE_VM_DESTROY \
  _IOW(XE_DRM_IOCTL_BASE, XE_DRM_COMMAND_BASE + DRM_XE_VM_DESTROY, struct drm_xe_vm_destroy)
#define DRM_IOCTL_XE_VM_BIND _IOW(XE_DRM_IOCTL_BASE, XE_DRM_COMMAND_BASE + DRM_XE_VM_BIND, struct drm_xe_vm_bind)
#define DRM_IOCTL_XE_EXEC_QUEUE_CREATE \
  _IOWR(XE_DRM_IOCTL_BASE, XE_DRM_COMMAND_BASE + DRM_XE_EXEC_QUEUE_CREATE, struct drm_xe_exec_queue_create)
#define DRM_IOCTL_XE_EXEC_QUEUE_DESTROY \
  _IOW(XE_DRM_IOCTL_BASE, XE_DRM_COMMAND_BASE + DRM_XE_EXEC_QUEUE_DESTROY, struct drm_xe_exec_queue_destroy)
#define DRM_IOCTL_XE_EXEC _IOW(XE_DRM_IOCTL_BASE, XE_DRM_COMMAND_BASE + DRM_XE_EXEC, struct drm_xe_exec)
#define DRM_IOCTL_XE_WAIT_USER_FENCE \
  _IOWR(XE_DRM_IOCTL_BASE, XE_DRM_COMMAND_BASE + DRM_XE_WAIT_USER_FENCE, struct drm_xe_wait_user_fence)
#define DRM_IOCTL_XE_MADVISE _IOW(XE_DRM_IOCTL_BASE, XE_DRM_COMMAND_BASE + DRM_XE_MADVISE, struct drm_xe_madvise)
#define DRM_IOCTL_XE_VM_QUERY_MEM_RANGE_ATTRS \
  _IOWR(XE_DRM_IOCTL_BASE, XE_DRM_COMMAND_BASE + DRM_XE_VM_QUERY_MEM_RANGE_ATTRS, struct drm_xe_vm_query_mem_range_attr)

/* ---- compile-time layout checks (x86-64, upstream sizes) ------------------ */
#define XE_UAPI_LAYOUT(type, size) _Static_assert(sizeof(struct type) == (size), #type " is " #size " bytes")
#define XE_UAPI_FIELD(type, field, off) \
  _Static_assert(offsetof(struct type, field) == (off), #type "." #field " is at " #off)
XE_UAPI_LAYOUT(drm_xe_device_query, 40);
XE_UAPI_LAYOUT(drm_xe_engine_class_instance, 8);
XE_UAPI_LAYOUT(drm_xe_engine, 32);
XE_UAPI_LAYOUT(drm_xe_query_engines, 8);
XE_UAPI_LAYOUT(drm_xe_mem_region, 88);
XE_UAPI_LAYOUT(drm_xe_query_mem_regions, 8);
XE_UAPI_LAYOUT(drm_xe_query_config, 8);
XE_UAPI_LAYOUT(drm_xe_gt, 96);
XE_UAPI_LAYOUT(drm_xe_query_gt_list, 8);
XE_UAPI_LAYOUT(drm_xe_vm_create, 32);
XE_UAPI_LAYOUT(drm_xe_vm_destroy, 24);
XE_UAPI_LAYOUT(drm_xe_vm_bind_op, 80);
XE_UAPI_LAYOUT(drm_xe_vm_bind, 136);
XE_UAPI_LAYOUT(drm_xe_exec_queue_create, 48);
XE_UAPI_LAYOUT(drm_xe_exec_queue_destroy, 24);
XE_UAPI_LAYOUT(drm_xe_sync, 48);
XE_UAPI_LAYOUT(drm_xe_exec, 56);
XE_UAPI_LAYOUT(drm_xe_wait_user_fence, 72);
XE_UAPI_LAYOUT(drm_xe_madvise, 64);
XE_UAPI_LAYOUT(drm_xe_mem_range_attr, 64);
XE_UAPI_LAYOUT(drm_xe_vm_query_mem_range_attr, 64);
XE_UAPI_FIELD(drm_xe_gt, reference_clock, 12);
XE_UAPI_FIELD(drm_xe_gt, near_mem_regions, 16);
XE_UAPI_FIELD(drm_xe_gt, ip_ver_major, 32);
XE_UAPI_FIELD(drm_xe_mem_region, total_size, 8);
XE_UAPI_FIELD(drm_xe_mem_region, cpu_visible_size, 24);
XE_UAPI_FIELD(drm_xe_vm_bind_op, range, 24);
XE_UAPI_FIELD(drm_xe_vm_bind_op, op, 40);
XE_UAPI_FIELD(drm_xe_vm_bind_op, prefetch_mem_region_instance, 48);
XE_UAPI_FIELD(drm_xe_vm_bind, bind, 24);
XE_UAPI_FIELD(drm_xe_vm_bind, num_syncs, 108);
XE_UAPI_FIELD(drm_xe_vm_bind, syncs, 112);
XE_UAPI_FIELD(drm_xe_exec_queue_create, exec_queue_id, 20);
XE_UAPI_FIELD(drm_xe_exec_queue_create, instances, 24);
XE_UAPI_FIELD(drm_xe_sync, addr, 16);
XE_UAPI_FIELD(drm_xe_sync, timeline_value, 24);
XE_UAPI_FIELD(drm_xe_exec, address, 24);
XE_UAPI_FIELD(drm_xe_exec, num_batch_buffer, 32);
XE_UAPI_FIELD(drm_xe_wait_user_fence, op, 16);
XE_UAPI_FIELD(drm_xe_wait_user_fence, timeout, 40);
XE_UAPI_FIELD(drm_xe_wait_user_fence, exec_queue_id, 48);
XE_UAPI_FIELD(drm_xe_madvise, vm_id, 24);
XE_UAPI_FIELD(drm_xe_madvise, preferred_mem_loc.migration_policy, 36);
XE_UAPI_FIELD(drm_xe_madvise, atomic.val, 32);
XE_UAPI_FIELD(drm_xe_madvise, reserved, 48);
XE_UAPI_FIELD(drm_xe_mem_range_attr, preferred_mem_loc.migration_policy, 28);
XE_UAPI_FIELD(drm_xe_mem_range_attr, atomic.val, 32);
XE_UAPI_FIELD(drm_xe_mem_range_attr, pat_index.val, 40);
XE_UAPI_FIELD(drm_xe_vm_query_mem_range_attr, sizeof_mem_range_attr, 32);
XE_UAPI_FIELD(drm_xe_vm_query_mem_range_attr, vector_of_mem_attr, 40);

#endif /* XESVM_IGT_XE_UAPI_H_ */
