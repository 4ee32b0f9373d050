/*
 * The native-module kernels of ze_spirv_bench: the same computations as
 * kernels.cl, written against the xesvm kernel ABI (xesvm/ze_kernel.h), so
 * the benchmark compares SPIR-V code against native code that reaches memory
 * the same way (the device accessor).
 */
#include "xesvm/ze_kernel.h"

/* c[i] = a[i] + b[i] for i < n. */
static void vector_add(const xesvm_ze_item* it, const xesvm_ze_memory* m, const void* const* args) {
  const float* a = XESVM_ZE_ARG(const float*, args, 0);
  const float* b = XESVM_ZE_ARG(const float*, args, 1);
  float* c = XESVM_ZE_ARG(float*, args, 2);
  const uint32_t n = XESVM_ZE_ARG(uint32_t, args, 3);
  const uint64_t i = it->global_linear_id;
  if (i >= n) return;
  xesvm_ze_store_f32(m, c + i, xesvm_ze_load_f32(m, a + i) + xesvm_ze_load_f32(m, b + i));
}

static const uint32_t k_vadd_args[] = {8, 8, 8, 4};
static const xesvm_ze_kernel_desc k_kernels[] = {{"vector_add", vector_add, 4, k_vadd_args, {0, 0, 0}}};
static const xesvm_ze_module_desc k_module = {XESVM_ZE_KERNEL_ABI_VERSION, 1, k_kernels};

__attribute__((visibility("default"))) const xesvm_ze_module_desc* xesvm_ze_module(void) { return &k_module; }
