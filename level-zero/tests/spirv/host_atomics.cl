// An atomic of memory_scope_all_svm_devices: atomic with the host too,
// which the device's atomics are not (the build must fail naming it).
kernel void host_counter(global atomic_int* c) {
  atomic_fetch_add_explicit(c, 1, memory_order_relaxed, memory_scope_all_svm_devices);
}
