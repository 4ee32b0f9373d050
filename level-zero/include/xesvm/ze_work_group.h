/*
 * xesvm Level Zero kernel ABI version 2: kernels that see their work group.
 *
 * Version 1 (include/xesvm/ze_kernel.h) calls a kernel once per work item
 * with no way for the items of a group to share data or wait for each
 * other. Version 2 adds what an OpenCL or SYCL work group has:
 *   - group-local memory: one arena per work group, shared by its work
 *     items and private to it, of at most the device's
 *     ze_device_compute_properties_t.maxSharedLocalMemory bytes;
 *   - a group barrier: xesvm_ze_barrier() returns in a work item only when
 *     every work item of its group has called it; local-memory writes made
 *     before the barrier are seen by every item of the group after it.
 *
 * A version 2 library exports XESVM_ZE_MODULE_SYMBOL as in version 1, but
 * the function returns a xesvm_ze_module_desc2 (cast to the version 1 type;
 * the driver reads abi_version first). Version 1 libraries keep working
 * unchanged; the item, memory and argument conventions of ze_kernel.h hold
 * for version 2 too.
 *
 * Local memory: the arena holds first the kernel's own local data
 * (local_mem_size bytes of xesvm_ze_kernel_desc2, at offset 0), then one
 * block per argument declared XESVM_ZE_ARG_LOCAL, in argument order, each
 * aligned to 64 bytes. The application sets such an argument with
 * zeKernelSetArgumentValue(k, i, size, NULL): size is the bytes of local
 * memory it wants; args[i] then points to 8 bytes holding the block's
 * address. Local memory is ordinary host memory of the driver: a kernel
 * reads and writes it directly (not through the device accessor). Its
 * contents are unspecified when a group starts.
 *
 * Execution: the work items of one group run on one engine worker, as
 * cooperatively scheduled fibers when the kernel declares
 * XESVM_ZE_KERNEL_BARRIERS (each with its own stack of at least
 * XESVM_ZE_MIN_ITEM_STACK bytes), one after the other otherwise. Groups run
 * concurrently on the engine's workers. Every work item of a group must
 * reach each barrier; a group whose items diverge (some return while others
 * wait) ends the launch with ZE_RESULT_ERROR_DEVICE_LOST. A barrier in a
 * kernel that did not declare XESVM_ZE_KERNEL_BARRIERS does the same.
 */
#ifndef XESVM_ZE_WORK_GROUP_H
#define XESVM_ZE_WORK_GROUP_H

#include <stddef.h>
#include <stdint.h>

#include "xesvm/ze_kernel.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ABI version a version 2 library declares in abi_version. */
#define XESVM_ZE_KERNEL_ABI_VERSION_2 2u
/* Stack each work item of a barrier kernel has at least. */
#define XESVM_ZE_MIN_ITEM_STACK (128u << 10)

/* xesvm_ze_kernel_desc2.flags */
#define XESVM_ZE_KERNEL_BARRIERS 1u /* the kernel calls xesvm_ze_barrier */

/* xesvm_ze_kernel_desc2.arg_kinds[i] */
#define XESVM_ZE_ARG_VALUE 0u /* bytes set by zeKernelSetArgumentValue */
#define XESVM_ZE_ARG_LOCAL 1u /* a block of local memory (arg_sizes[i] must be 8) */

/* The work group of a work item. */
typedef struct xesvm_ze_group {
  void* local;       /* the group's local-memory arena, 64-byte aligned */
  size_t local_size; /* its bytes: local_mem_size + the local arguments */
  void* ctx;
  void (*barrier)(void* ctx);
} xesvm_ze_group;

/* A version 2 kernel entry: called once per work item. */
typedef void (*xesvm_ze_group_kernel_fn)(const xesvm_ze_item* item, const xesvm_ze_memory* mem, const void* const* args,
                                         const xesvm_ze_group* group);

/* One kernel of a version 2 library; name, num_args, arg_sizes and
 * required_group_size as in xesvm_ze_kernel_desc. */
typedef struct xesvm_ze_kernel_desc2 {
  const char* name;
  xesvm_ze_group_kernel_fn fn;
  uint32_t num_args;
  const uint32_t* arg_sizes;
  uint32_t required_group_size[3];
  uint32_t flags;            /* XESVM_ZE_KERNEL_* */
  uint32_t local_mem_size;   /* local memory the kernel itself uses, bytes */
  const uint32_t* arg_kinds; /* NULL (all XESVM_ZE_ARG_VALUE) or num_args entries */
} xesvm_ze_kernel_desc2;

/* What a version 2 library's XESVM_ZE_MODULE_SYMBOL returns. */
typedef struct xesvm_ze_module_desc2 {
  uint32_t abi_version; /* XESVM_ZE_KERNEL_ABI_VERSION_2 */
  uint32_t num_kernels;
  const xesvm_ze_kernel_desc2* kernels;
} xesvm_ze_module_desc2;

/* Waits until every work item of the group has called it. */
static inline void xesvm_ze_barrier(const xesvm_ze_group* g) { g->barrier(g->ctx); }

#ifdef __cplusplus
}
#endif

#endif /* XESVM_ZE_WORK_GROUP_H */
