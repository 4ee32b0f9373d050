/*
 * ABI version 2 kernels for the Level Zero driver tests
 * (level-zero/include/xesvm/ze_work_group.h): work items of a group that
 * share local memory and meet at barriers.
 */
#include "xesvm/ze_work_group.h"

/* Static local memory of reduce: the group's tag, written by item 0. */
#define TAG_BYTES 64u

/*
 * out[group] = sum of in[group * n .. group * n + n) where n is the group's
 * size (a power of two), by a tree reduction in the local argument `scratch`
 * (n words) with a barrier per level. Every item also checks, after the
 * first barrier, that the static local tag holds its own group's id (local
 * memory is per group); each mismatch adds 1 to *errors.
 *   args: in, out, scratch (local), errors
 */
static void reduce(const xesvm_ze_item* it, const xesvm_ze_memory* m, const void* const* args,
                   const xesvm_ze_group* g) {
  const uint32_t* in = XESVM_ZE_ARG(const uint32_t*, args, 0);
  uint32_t* out = XESVM_ZE_ARG(uint32_t*, args, 1);
  uint32_t* scratch = XESVM_ZE_ARG(uint32_t*, args, 2);
  uint32_t* errors = XESVM_ZE_ARG(uint32_t*, args, 3);
  uint32_t* tag = (uint32_t*)g->local;
  const uint32_t lid = it->local_id[0], n = it->local_size[0];
  if (lid == 0) *tag = it->group_id[0];
  scratch[lid] = xesvm_ze_load_u32(m, in + it->global_id[0]);
  xesvm_ze_barrier(g);
  if (*tag != it->group_id[0]) xesvm_ze_atomic_add_u32(m, errors, 1);
  for (uint32_t half = n / 2; half > 0; half /= 2) {
    if (lid < half) scratch[lid] += scratch[lid + half];
    xesvm_ze_barrier(g);
  }
  if (lid == 0) xesvm_ze_store_u32(m, out + it->group_id[0], scratch[0]);
}

/*
 * Fills every byte of the local argument `block` (size bytes) with a value
 * of the group, then, after a barrier, checks the bytes another item wrote;
 * each wrong byte adds 1 to *errors.
 *   args: block (local), size, errors
 */
static void fill_local(const xesvm_ze_item* it, const xesvm_ze_memory* m, const void* const* args,
                       const xesvm_ze_group* g) {
  unsigned char* block = XESVM_ZE_ARG(unsigned char*, args, 0);
  const uint32_t size = XESVM_ZE_ARG(uint32_t, args, 1);
  uint32_t* errors = XESVM_ZE_ARG(uint32_t*, args, 2);
  const uint32_t lid = it->local_id[0], n = it->local_size[0];
  const unsigned char v = (unsigned char)(it->group_id[0] * 7u + 1u);
  for (uint32_t i = lid; i < size; i += n) block[i] = (unsigned char)(v + i);
  xesvm_ze_barrier(g);
  uint32_t bad = 0;
  for (uint32_t i = (lid + 1) % n; i < size; i += n) bad += block[i] != (unsigned char)(v + i);
  if (bad) xesvm_ze_atomic_add_u32(m, errors, bad);
}

/* Item 0 returns at once; the others wait at a barrier that never fills. */
static void diverge(const xesvm_ze_item* it, const xesvm_ze_memory* m, const void* const* args,
                    const xesvm_ze_group* g) {
  (void)m;
  (void)args;
  if (it->local_id[0] == 0) return;
  xesvm_ze_barrier(g);
}

static const uint32_t k_reduce_sizes[] = {8, 8, 8, 8};
static const uint32_t k_reduce_kinds[] = {XESVM_ZE_ARG_VALUE, XESVM_ZE_ARG_VALUE, XESVM_ZE_ARG_LOCAL,
                                          XESVM_ZE_ARG_VALUE};
static const uint32_t k_fill_sizes[] = {8, 4, 8};
static const uint32_t k_fill_kinds[] = {XESVM_ZE_ARG_LOCAL, XESVM_ZE_ARG_VALUE, XESVM_ZE_ARG_VALUE};

static const xesvm_ze_kernel_desc2 k_kernels[] = {
    {"reduce", reduce, 4, k_reduce_sizes, {0, 0, 0}, XESVM_ZE_KERNEL_BARRIERS, TAG_BYTES, k_reduce_kinds},
    {"fill_local", fill_local, 3, k_fill_sizes, {0, 0, 0}, XESVM_ZE_KERNEL_BARRIERS, 0, k_fill_kinds},
    {"diverge", diverge, 0, 0, {0, 0, 0}, XESVM_ZE_KERNEL_BARRIERS, 0, 0},
    /* The same code without XESVM_ZE_KERNEL_BARRIERS: its barrier is an error. */
    {"undeclared_barrier", diverge, 0, 0, {0, 0, 0}, 0, 0, 0},
};

static const xesvm_ze_module_desc2 k_module = {XESVM_ZE_KERNEL_ABI_VERSION_2, sizeof k_kernels / sizeof k_kernels[0],
                                               k_kernels};

__attribute__((visibility("default"))) const xesvm_ze_module_desc* xesvm_ze_module(void) {
  return (const xesvm_ze_module_desc*)&k_module;
}
