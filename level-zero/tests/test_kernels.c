/*
 * Kernels for the Level Zero driver tests, written against the xesvm kernel
 * ABI (include/xesvm/ze_kernel.h) and loaded by zeModuleCreate as a native
 * module. Every kernel reaches memory only through the device accessor.
 */
#include "xesvm/ze_kernel.h"

/* c[i] = a[i] + b[i] for i < n. */
static void vector_add(const xesvm_ze_item* it, const xesvm_ze_memory* m, const void* const* args) {
  const float* a = XESVM_ZE_ARG(const float*, args, 0);
  const float* b = XESVM_ZE_ARG(const float*, args, 1);
  float* c = XESVM_ZE_ARG(float*, args, 2);
  uint32_t n = XESVM_ZE_ARG(uint32_t, args, 3);
  uint64_t i = it->global_linear_id;
  if (i >= n) return;
  xesvm_ze_store_f32(m, c + i, xesvm_ze_load_f32(m, a + i) + xesvm_ze_load_f32(m, b + i));
}

/* p[i] = p[i] * 2 + i. */
static void scale(const xesvm_ze_item* it, const xesvm_ze_memory* m, const void* const* args) {
  uint32_t* p = XESVM_ZE_ARG(uint32_t*, args, 0);
  uint64_t i = it->global_linear_id;
  xesvm_ze_store_u32(m, p + i, xesvm_ze_load_u32(m, p + i) * 2u + (uint32_t)i);
}

/* out[linear] = x | y << 10 | z << 20 of the global id. */
static void ids3d(const xesvm_ze_item* it, const xesvm_ze_memory* m, const void* const* args) {
  uint32_t* out = XESVM_ZE_ARG(uint32_t*, args, 0);
  uint32_t v = (uint32_t)it->global_id[0] | (uint32_t)it->global_id[1] << 10 | (uint32_t)it->global_id[2] << 20;
  xesvm_ze_store_u32(m, out + it->global_linear_id, v);
}

/* Every work item adds 1 to *counter. */
static void count(const xesvm_ze_item* it, const xesvm_ze_memory* m, const void* const* args) {
  (void)it;
  xesvm_ze_atomic_add_u32(m, XESVM_ZE_ARG(uint32_t*, args, 0), 1);
}

/* Reads 4 bytes at an arbitrary address (a fatal GPU fault if it is not
 * device-accessible memory). */
static void load_at(const xesvm_ze_item* it, const xesvm_ze_memory* m, const void* const* args) {
  (void)it;
  uint32_t v;
  if (xesvm_ze_read(m, XESVM_ZE_ARG(const void*, args, 0), &v, sizeof v) != 0) return;
}

static const uint32_t k_vadd_args[] = {8, 8, 8, 4};
static const uint32_t k_ptr_arg[] = {8};

static const xesvm_ze_kernel_desc k_kernels[] = {
    {"vector_add", vector_add, 4, k_vadd_args, {0, 0, 0}},
    {"scale", scale, 1, k_ptr_arg, {0, 0, 0}},
    {"ids3d", ids3d, 1, k_ptr_arg, {0, 0, 0}},
    {"count", count, 1, k_ptr_arg, {0, 0, 0}},
    {"load_at", load_at, 1, k_ptr_arg, {0, 0, 0}},
    {"fixed_group", count, 1, k_ptr_arg, {4, 2, 1}},
};

static const xesvm_ze_module_desc k_module = {XESVM_ZE_KERNEL_ABI_VERSION, sizeof k_kernels / sizeof k_kernels[0],
                                              k_kernels};

__attribute__((visibility("default"))) const xesvm_ze_module_desc* xesvm_ze_module(void) { return &k_module; }
