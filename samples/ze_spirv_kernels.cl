// The SPIR-V kernel of samples/ze_spirv_vector_add, compiled at build time
// with clang-15 -target spir64 and llvm-spirv-15 (as an application's
// build would compile it).

// c[i] = a[i] + b[i] for i < n: one element per work item.
kernel void vector_add(global const float* a, global const float* b, global float* c, uint n) {
  const size_t i = get_global_id(0);
  if (i < n) c[i] = a[i] + b[i];
}
