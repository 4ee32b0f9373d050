// OpenCL C 2.0 kernels of the SPIR-V tests (ze_spirv_test.cpp) for the
// built-ins real applications use: vector loads and stores, sub-groups,
// the *_explicit and float atomics. Compiled at build time with clang-15
// -cl-std=CL2.0 -target spir64 and llvm-spirv-15
// --spirv-ext=+SPV_EXT_shader_atomic_float_add.

// b[i] = 2 * a[i] as float4 vectors (vload4/vstore4), and the element
// triplets of a, reversed, into c (vload3/vstore3 on uchar: unaligned to
// the vector).
kernel void vectors(global const float* a, global float* b, global const uchar* x, global uchar* c) {
  const size_t i = get_global_id(0);
  vstore4(vload4(i, a) * 2.0f, i, b);
  const uchar3 t = vload3(i, x);
  vstore3(t.zyx, i, c);
}

// Per item: the sub-group queries and collectives (sub-groups are one item
// wide on the device).
kernel void sub_groups(global uint* o) {
  const uint i = (uint)get_global_id(0);
  global uint* r = o + i * 12;
  r[0] = get_sub_group_size();
  r[1] = get_max_sub_group_size();
  r[2] = get_num_sub_groups();
  r[3] = get_sub_group_id();
  r[4] = get_sub_group_local_id();
  r[5] = sub_group_reduce_add(i + 1);
  r[6] = sub_group_broadcast(i + 2, 0);
  r[7] = sub_group_scan_inclusive_max(i + 3);
  r[8] = sub_group_scan_exclusive_add(i);
  r[9] = sub_group_scan_exclusive_min(i);
  r[10] = sub_group_all(i % 2) + 2 * sub_group_any(i % 3);
  sub_group_barrier(CLK_GLOBAL_MEM_FENCE);
  r[11] = (uint)sub_group_reduce_max((int)i - 5);
}

// The OpenCL 2.0 explicit atomics on global and local memory, and float
// additions: c[0] counts the items, c[1] is the largest id, c[2] is claimed
// once by compare-exchange, c[3] the last exchange of 9 (read back with an
// acquire load into c[4]), c[5] sums the local counters. f[0] sums 0.5 per
// item, d[0] sums 0.25 per item; fl sums the local float adds.
kernel void explicit_atomics(global atomic_uint* c, global atomic_float* f, global atomic_double* d,
                             global float* fl) {
  local atomic_uint counter;
  local atomic_float fsum;
  const uint id = (uint)get_global_id(0);
  if (get_local_id(0) == 0) {
    atomic_init(&counter, 0);
    atomic_init(&fsum, 0.0f);
  }
  work_group_barrier(CLK_LOCAL_MEM_FENCE);
  atomic_fetch_add_explicit(&c[0], 1u, memory_order_relaxed, memory_scope_device);
  atomic_fetch_max_explicit(&c[1], id, memory_order_relaxed, memory_scope_device);
  uint expected = 0;
  atomic_compare_exchange_strong_explicit(&c[2], &expected, id + 1, memory_order_seq_cst, memory_order_relaxed,
                                          memory_scope_device);
  atomic_store_explicit(&c[3], 9u, memory_order_release, memory_scope_device);
  const uint seen = atomic_load_explicit(&c[3], memory_order_acquire, memory_scope_device);
  atomic_fetch_or_explicit(&c[4], seen, memory_order_relaxed, memory_scope_device);
  atomic_fetch_add_explicit(&counter, 1u, memory_order_relaxed, memory_scope_work_group);
  atomic_fetch_add_explicit(f, 0.5f, memory_order_relaxed, memory_scope_device);
  atomic_fetch_add_explicit(d, 0.25, memory_order_relaxed, memory_scope_device);
  atomic_fetch_add_explicit(&fsum, 1.0f, memory_order_relaxed, memory_scope_work_group);
  work_group_barrier(CLK_LOCAL_MEM_FENCE);
  if (get_local_id(0) == 0) {
    atomic_fetch_add_explicit(&c[5], atomic_load_explicit(&counter, memory_order_relaxed, memory_scope_work_group),
                              memory_order_relaxed, memory_scope_device);
    fl[get_group_id(0)] = atomic_load_explicit(&fsum, memory_order_relaxed, memory_scope_work_group);
  }
}

// Two lines per item, in this order: every conversion OpenCL C printf has
// but vectors, then a second line, so the test can check each item's order.
kernel void print_items(global const float* a, int n) {
  const int i = (int)get_global_id(0);
  printf("item %d/%d: %u %5.2f %e %s %ld %lu %c %x %X %o %%\n", i, n, (uint)i * 3u, a[i], (double)a[i] * 1e10,
         "str", (long)i - 100, (ulong)i << 40, 'a' + i % 26, 255u + i, 0xabcu, 8u);
  printf("done %03d\n", i);
}

// The address of a private variable of each item: items that run one
// after the other on a worker share its stack (the same address), items
// run as fibers (a kernel that may wait at a barrier) each have their own.
kernel void stack_address(global ulong* out) {
  volatile int x = (int)get_global_id(0);
  out[get_global_id(0)] = (ulong)&x + (ulong)(x - x);
}
kernel void stack_address_with_barrier(global ulong* out) {
  volatile int x = (int)get_global_id(0);
  barrier(CLK_GLOBAL_MEM_FENCE);
  out[get_global_id(0)] = (ulong)&x + (ulong)(x - x);
}
