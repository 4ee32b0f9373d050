/*
 * Kernels of the Level Zero samples, written against the xesvm kernel ABI
 * (include/xesvm/ze_kernel.h): a host shared library the xesvm Level Zero
 * driver loads as a ZE_MODULE_FORMAT_NATIVE module. Kernels reach memory only
 * through the device accessor, so every access can raise a GPU fault that
 * migrates data.
 */
#include "xesvm/ze_kernel.h"

/* c[i] = a[i] + b[i] for i < n: one element per work item. */
static void vector_add(const xesvm_ze_item* it, const xesvm_ze_memory* m, const void* const* args) {
  const float* a = XESVM_ZE_ARG(const float*, args, 0);
  const float* b = XESVM_ZE_ARG(const float*, args, 1);
  float* c = XESVM_ZE_ARG(float*, args, 2);
  const uint32_t n = XESVM_ZE_ARG(uint32_t, args, 3);
  const uint64_t i = it->global_linear_id;
  if (i >= n) return;
  xesvm_ze_store_f32(m, c + i, xesvm_ze_load_f32(m, a + i) + xesvm_ze_load_f32(m, b + i));
}

/* x[k] = x[k] * s + 1 over one 4 KiB block per work item (1024 floats):
 * a streaming kernel that touches every page once per launch. */
static void stream_scale(const xesvm_ze_item* it, const xesvm_ze_memory* m, const void* const* args) {
  float* x = XESVM_ZE_ARG(float*, args, 0);
  const float s = XESVM_ZE_ARG(float, args, 1);
  float block[1024];
  float* p = x + it->global_linear_id * 1024;
  if (xesvm_ze_read(m, p, block, sizeof block) != 0) return;
  for (int k = 0; k < 1024; ++k) block[k] = block[k] * s + 1.0f;
  xesvm_ze_write(m, p, block, sizeof block);
}

static const uint32_t k_vadd_args[] = {8, 8, 8, 4};
static const uint32_t k_scale_args[] = {8, 4};

static const xesvm_ze_kernel_desc k_kernels[] = {
    {"vector_add", vector_add, 4, k_vadd_args, {0, 0, 0}},
    {"stream_scale", stream_scale, 2, k_scale_args, {0, 0, 0}},
};

static const xesvm_ze_module_desc k_module = {XESVM_ZE_KERNEL_ABI_VERSION, 2, k_kernels};

__attribute__((visibility("default"))) const xesvm_ze_module_desc* xesvm_ze_module(void) { return &k_module; }
