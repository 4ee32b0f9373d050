/*
 * xesvm Level Zero kernel ABI: how native kernels for the xesvm Level Zero
 * driver (level-zero/) are written, packaged and launched.
 *
 * The sim device also compiles SPIR-V modules (level-zero/README.md). Its
 * "native binary" is a host shared library of kernels written in C or C++
 * against this header. The library exports one C symbol,
 * XESVM_ZE_MODULE_SYMBOL ("xesvm_ze_module"), a function returning a static
 * xesvm_ze_module_desc: the ABI version and a table of kernels, each with its
 * name, entry function and argument sizes.
 *
 * An application hands such a library to zeModuleCreate with
 * ZE_MODULE_FORMAT_NATIVE, in either of two forms:
 *   - a path:  pInputModule = "xesvm-kernels:/abs/path/libkernels.so",
 *     inputSize = its length (a trailing NUL is allowed);
 *   - the library image itself (the bytes of the .so file, starting with the
 *     ELF magic); the driver loads it from an anonymous memory file.
 *
 * A kernel's entry function is called once per work item, on the device's
 * engine workers, with
 *   item  the work item's ids (global, local, group; three dimensions),
 *   mem   the device accessor: the only way a kernel reaches memory,
 *   args  args[i] points to the bytes of argument i as set with
 *         zeKernelSetArgumentValue (a pointer argument: 8 bytes holding the
 *         pointer; an argument set with a NULL value: that many zero bytes).
 * A kernel must never dereference a pointer argument itself: shared, host and
 * device allocations are reached only through mem (xesvm_ze_load/store and
 * friends below), which walks the GPU page table and raises GPU faults that
 * migrate data, exactly as a GPU's loads and stores do. Kernel-private data
 * (locals, the bytes copied out of memory) is ordinary C.
 *
 * Errors: a failed access (an address that is not device-accessible memory)
 * returns non-zero, reads as zeros, and is sticky: every later access of the
 * same work item fails too. The kernel should return; the launch then fails
 * and zeCommandQueueSynchronize / zeCommandListHostSynchronize report
 * ZE_RESULT_ERROR_DEVICE_LOST, as a GPU reports a fatal page fault.
 *
 * Concurrency: work items run concurrently on several workers; memory
 * accesses of different work items are not ordered unless they use the
 * atomics below (atomic among work items of the device, not with the CPU).
 * Entry functions must be reentrant; static mutable data in a kernel library
 * is shared by all work items.
 */
#ifndef XESVM_ZE_KERNEL_H
#define XESVM_ZE_KERNEL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ABI version a library declares in xesvm_ze_module_desc.abi_version. */
#define XESVM_ZE_KERNEL_ABI_VERSION 1u
/* Version 2 (work groups: local memory, barriers) is declared in
 * xesvm/ze_work_group.h, installed with the Level Zero driver; the driver
 * accepts 1 and 2. */
/* Prefix of the path form of a native module blob. */
#define XESVM_ZE_NATIVE_PREFIX "xesvm-kernels:"
/* Name of the symbol a kernel library exports (type xesvm_ze_module_fn). */
#define XESVM_ZE_MODULE_SYMBOL "xesvm_ze_module"
/* Most arguments a kernel may declare. */
#define XESVM_ZE_MAX_KERNEL_ARGS 32u
/* Largest single argument, in bytes. */
#define XESVM_ZE_MAX_ARG_SIZE 256u

/* The ids of one work item. Linear ids count x fastest, then y, then z. */
typedef struct xesvm_ze_item {
  uint64_t global_id[3];   /* group_id * local_size + local_id */
  uint64_t global_size[3]; /* group_count * local_size */
  uint32_t local_id[3];
  uint32_t local_size[3]; /* zeKernelSetGroupSize */
  uint32_t group_id[3];
  uint32_t group_count[3]; /* ze_group_count_t of the launch */
  uint64_t global_linear_id;
  uint64_t global_linear_size;
} xesvm_ze_item;

/* The device accessor of one work item. Functions return 0 on success. */
typedef struct xesvm_ze_memory {
  void* ctx;
  /* Copies n bytes from device address src to dst (kernel-private). */
  int (*read)(void* ctx, uint64_t src, void* dst, size_t n);
  /* Copies n bytes from src (kernel-private) to device address dst. */
  int (*write)(void* ctx, uint64_t dst, const void* src, size_t n);
  /* Atomic fetch-add on a naturally aligned word; *old gets the old value
   * (old may be NULL). */
  int (*atomic_add_u32)(void* ctx, uint64_t addr, uint32_t v, uint32_t* old);
  int (*atomic_add_u64)(void* ctx, uint64_t addr, uint64_t v, uint64_t* old);
} xesvm_ze_memory;

/* A kernel entry: called once per work item. */
typedef void (*xesvm_ze_kernel_fn)(const xesvm_ze_item* item, const xesvm_ze_memory* mem, const void* const* args);

/* One kernel of a library. arg_sizes has num_args entries, each 1..
 * XESVM_ZE_MAX_ARG_SIZE bytes; zeKernelSetArgumentValue must pass exactly that
 * size. required_group_size may be all zero (no requirement) or the only
 * group size the kernel accepts. */
typedef struct xesvm_ze_kernel_desc {
  const char* name;
  xesvm_ze_kernel_fn fn;
  uint32_t num_args;
  const uint32_t* arg_sizes;
  uint32_t required_group_size[3];
} xesvm_ze_kernel_desc;

/* What XESVM_ZE_MODULE_SYMBOL returns; must stay valid while loaded. */
typedef struct xesvm_ze_module_desc {
  uint32_t abi_version; /* XESVM_ZE_KERNEL_ABI_VERSION */
  uint32_t num_kernels;
  const xesvm_ze_kernel_desc* kernels;
} xesvm_ze_module_desc;

typedef const xesvm_ze_module_desc* (*xesvm_ze_module_fn)(void);

/* Convenience accessors. Pointers are device addresses (the values the
 * application passed as arguments); nothing is dereferenced on the host.
 * xesvm_ze_read and xesvm_ze_write return what the accessor returns (0 on
 * success, non-zero for a failed access; see "Errors" above). The typed
 * loads return the value read, or 0 when the access failed; the stores and
 * xesvm_ze_atomic_add_u32 drop the code (it returns the old value, or 0 when
 * the access failed): the failure is sticky for the work item and fails the
 * launch, so a kernel may check only where it must stop early. */
static inline int xesvm_ze_read(const xesvm_ze_memory* m, const void* src, void* dst, size_t n) {
  return m->read(m->ctx, (uint64_t)(uintptr_t)src, dst, n);
}
static inline int xesvm_ze_write(const xesvm_ze_memory* m, void* dst, const void* src, size_t n) {
  return m->write(m->ctx, (uint64_t)(uintptr_t)dst, src, n);
}
static inline float xesvm_ze_load_f32(const xesvm_ze_memory* m, const float* p) {
  float v = 0;
  xesvm_ze_read(m, p, &v, sizeof v);
  return v;
}
static inline void xesvm_ze_store_f32(const xesvm_ze_memory* m, float* p, float v) {
  xesvm_ze_write(m, p, &v, sizeof v);
}
static inline uint32_t xesvm_ze_load_u32(const xesvm_ze_memory* m, const uint32_t* p) {
  uint32_t v = 0;
  xesvm_ze_read(m, p, &v, sizeof v);
  return v;
}
static inline void xesvm_ze_store_u32(const xesvm_ze_memory* m, uint32_t* p, uint32_t v) {
  xesvm_ze_write(m, p, &v, sizeof v);
}
static inline uint32_t xesvm_ze_atomic_add_u32(const xesvm_ze_memory* m, uint32_t* p, uint32_t v) {
  uint32_t old = 0;
  m->atomic_add_u32(m->ctx, (uint64_t)(uintptr_t)p, v, &old);
  return old;
}
/* The argument i of a kernel, as type T (C: *(const T*)args[i]). */
#define XESVM_ZE_ARG(T, args, i) (*(T const*)(args)[i])

#ifdef __cplusplus
}
#endif

#endif /* XESVM_ZE_KERNEL_H */
