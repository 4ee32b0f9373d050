// OpenCL C kernels of the SPIR-V tests (ze_spirv_test.cpp), compiled at
// build time with clang-15 -target spir64 and llvm-spirv-15.

// c[i] = a[i] + b[i] for i < n.
kernel void vector_add(global const float* a, global const float* b, global float* c, uint n) {
  size_t i = get_global_id(0);
  if (i < n) c[i] = a[i] + b[i];
}

// out[group] = the sum of the group's elements of in, by a tree reduction
// in the local argument scratch with a barrier per level. tag, a local
// variable, holds the group's id: each item checks it after the first
// barrier (local memory is per group) and counts mismatches in *errors.
kernel void reduce(global const uint* in, global uint* out, local uint* scratch, global uint* errors) {
  local uint tag;
  const uint lid = get_local_id(0), n = get_local_size(0);
  if (lid == 0) tag = (uint)get_group_id(0);
  scratch[lid] = in[get_global_id(0)];
  barrier(CLK_LOCAL_MEM_FENCE);
  if (tag != (uint)get_group_id(0)) atomic_inc(errors);
  for (uint step = n / 2; step > 0; step /= 2) {
    if (lid < step) scratch[lid] += scratch[lid + step];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (lid == 0) out[get_group_id(0)] = scratch[0];
}

// Global atomics: c[0] counts the work items, c[1] is the largest global id,
// c[2] the smallest, wide[0] sums the ids, and c[3] is claimed (0 -> id + 1)
// by exactly one item, found by compare-and-swap. Local atomics: each group
// counts its items in a local counter; item 0 adds it to c[4].
kernel void atomics(global uint* c, global ulong* wide) {
  local uint group_count;
  const uint id = (uint)get_global_id(0);
  if (get_local_id(0) == 0) group_count = 0;
  barrier(CLK_LOCAL_MEM_FENCE);
  atomic_inc(&group_count);
  atomic_inc(&c[0]);
  atomic_max(&c[1], id);
  atomic_min(&c[2], id);
  atom_add(&wide[0], (ulong)id);
  atomic_cmpxchg(&c[3], 0u, id + 1);
  barrier(CLK_LOCAL_MEM_FENCE);
  if (get_local_id(0) == 0) atomic_add(&c[4], group_count);
}

// p[i] = p[i] * 3 + i over n words: reads and writes every word.
kernel void touch(global uint* p, ulong n) {
  const size_t i = get_global_id(0);
  if (i < n) p[i] = p[i] * 3u + (uint)i;
}

// Reads the word at an address given as a number (a GPU fault when it is
// not device-accessible memory).
kernel void load_at(ulong address, global uint* out) { out[0] = *(global const uint*)address; }

// Math built-ins through the host's libm.
kernel void math(global const float* x, global float* y) {
  const size_t i = get_global_id(0);
  y[i] = sqrt(x[i]) + fabs(-x[i]) + floor(x[i] / 3.0f) + fmax(x[i], 2.0f) + exp(0.0f) + mad(x[i], 2.0f, 1.0f);
}
