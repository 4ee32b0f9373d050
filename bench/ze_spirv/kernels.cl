// The SPIR-V kernels of ze_spirv_bench (compiled at build time with
// clang-15 -target spir64 and llvm-spirv-15); samples/ze_sample_kernels.c
// has the same computation as a native module.

// c[i] = a[i] + b[i] for i < n.
kernel void vector_add(global const float* a, global const float* b, global float* c, uint n) {
  size_t i = get_global_id(0);
  if (i < n) c[i] = a[i] + b[i];
}
