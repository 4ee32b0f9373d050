// The device calls of compiled SPIR-V kernels (see spirv_device_calls.hpp).
#include "level-zero/spirv_device_calls.hpp"

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "level-zero/kernel_memory.hpp"
#include "level-zero/printf_format.hpp"
#include "level-zero/work_group.hpp"

namespace xesvm::ze {

namespace {

thread_local ItemEnv* tl_env = nullptr;
thread_local std::uint64_t tl_globals = 0;  // GlobalsScope

// True if [a, a+n) is memory of the work item itself (its stack) or of its
// group (local memory): host memory of the driver, reached directly. All
// other addresses are device addresses, reached through the accessor.
bool own_memory(std::uint64_t a, std::uint64_t n) {
  const xesvm_ze_group* g = tl_env->group;
  const auto local = reinterpret_cast<std::uint64_t>(g->local);
  if (a >= local && a + n <= local + g->local_size) return true;
  const auto [lo, hi] = WorkGroupRunner::current().item_stack();
  return a >= lo && a + n <= hi;
}

// void __xesvm_enter(ItemEnv* env, const xesvm_ze_item*, const xesvm_ze_memory*, const xesvm_ze_group*)
void enter(ItemEnv* env, const xesvm_ze_item* item, const xesvm_ze_memory* mem, const xesvm_ze_group* group) {
  env->item = item;
  env->mem = static_cast<KernelMemory*>(mem->ctx);
  env->group = group;
  tl_env = env;
}

// uint64_t __xesvm_work_item(uint32_t which, uint32_t dim)
std::uint64_t work_item(std::uint32_t which, std::uint32_t dim) {
  const xesvm_ze_item& it = *tl_env->item;
  const bool in = dim < 3;
  switch (static_cast<WorkItemQuery>(which)) {
    case WorkItemQuery::kGlobalId:
      return in ? it.global_id[dim] : 0;
    case WorkItemQuery::kLocalId:
      return in ? it.local_id[dim] : 0;
    case WorkItemQuery::kGroupId:
      return in ? it.group_id[dim] : 0;
    case WorkItemQuery::kGlobalSize:
      return in ? it.global_size[dim] : 1;
    case WorkItemQuery::kLocalSize:
      return in ? it.local_size[dim] : 1;
    case WorkItemQuery::kNumGroups:
      return in ? it.group_count[dim] : 1;
    case WorkItemQuery::kGlobalOffset:
      return 0;
    case WorkItemQuery::kWorkDim:
      return it.global_size[2] > 1 ? 3 : it.global_size[1] > 1 ? 2 : 1;
    case WorkItemQuery::kGlobalLinearId:
      return it.global_linear_id;
    case WorkItemQuery::kLocalLinearId:
      return it.local_id[0] + std::uint64_t(it.local_size[0]) * (it.local_id[1] + it.local_size[1] * it.local_id[2]);
  }
  return 0;
}

// void __xesvm_barrier(void)
void barrier() {
  ItemEnv* self = tl_env;
  self->group->barrier(self->group->ctx);
  tl_env = self;  // the other items of the group ran meanwhile
}

// void* __xesvm_local_base(void): the group's local memory.
void* local_base() { return tl_env->group->local; }

// uint64_t __xesvm_globals_base(void): the device address of the module's
// globals block.
std::uint64_t globals_base() { return tl_globals; }

// void __xesvm_load(uint64_t addr, void* dst, uint64_t n)
void load(std::uint64_t addr, void* dst, std::uint64_t n) {
  if (own_memory(addr, n)) {
    std::memcpy(dst, reinterpret_cast<const void*>(addr), n);
  } else {
    tl_env->mem->read(addr, dst, n);
  }
}

// void __xesvm_store(uint64_t addr, const void* src, uint64_t n)
void store(std::uint64_t addr, const void* src, std::uint64_t n) {
  if (own_memory(addr, n)) {
    std::memcpy(reinterpret_cast<void*>(addr), src, n);
  } else {
    tl_env->mem->write(addr, src, n);
  }
}

// void __xesvm_copy(uint64_t dst, uint64_t src, uint64_t n): memcpy/memmove
// where either side may be device memory.
void copy(std::uint64_t dst, std::uint64_t src, std::uint64_t n) {
  std::byte buf[512];
  const bool fwd = dst <= src || dst >= src + n;  // memmove order
  for (std::uint64_t done = 0; done < n;) {
    const std::uint64_t c = std::min<std::uint64_t>(sizeof buf, n - done);
    const std::uint64_t off = fwd ? done : n - done - c;
    load(src + off, buf, c);
    store(dst + off, buf, c);
    done += c;
  }
}

// void __xesvm_fill(uint64_t dst, uint8_t v, uint64_t n)
void fill(std::uint64_t dst, std::uint8_t v, std::uint64_t n) {
  std::byte buf[512];
  std::memset(buf, v, sizeof buf);
  for (std::uint64_t done = 0; done < n;) {
    const std::uint64_t c = std::min<std::uint64_t>(sizeof buf, n - done);
    store(dst + done, buf, c);
    done += c;
  }
}

// uint64_t __xesvm_atomic(uint64_t addr, uint32_t op | size << 8, uint64_t v, uint64_t cmp)
std::uint64_t atomic(std::uint64_t addr, std::uint32_t op_size, std::uint64_t v, std::uint64_t cmp) {
  const auto op = static_cast<AtomicOp>(op_size & 0xff);
  const std::uint32_t size = op_size >> 8;
  if (size == 4) {
    if (own_memory(addr, 4)) {
      return apply_atomic(reinterpret_cast<std::uint32_t*>(addr), op, static_cast<std::uint32_t>(v),
                          static_cast<std::uint32_t>(cmp));
    }
    std::uint32_t old = 0;
    tl_env->mem->atomic<std::uint32_t>(addr, op, static_cast<std::uint32_t>(v), static_cast<std::uint32_t>(cmp), &old);
    return old;
  }
  if (own_memory(addr, 8)) return apply_atomic(reinterpret_cast<std::uint64_t*>(addr), op, v, cmp);
  std::uint64_t old = 0;
  tl_env->mem->atomic<std::uint64_t>(addr, op, v, cmp, &old);
  return old;
}

// int32_t __xesvm_printf(const char* format, const uint64_t* slots, uint32_t n):
// the format (module constant data) was checked when the module was built;
// the whole line goes to stdout in one write, so the output of one work
// item is in its program order and no two calls interleave.
std::int32_t print(const char* format, const std::uint64_t* slots, std::uint32_t) {
  std::vector<PrintfPiece> pieces;
  std::string why;
  if (!parse_printf_format(format, &pieces, &why)) return -1;
  const std::string out = format_printf(pieces, slots);
  flockfile(stdout);
  const bool ok = std::fwrite(out.data(), 1, out.size(), stdout) == out.size() && std::fflush(stdout) == 0;
  funlockfile(stdout);
  return ok ? 0 : -1;
}

}  // namespace

GlobalsScope::GlobalsScope(std::uint64_t base) : prev_(tl_globals) { tl_globals = base; }
GlobalsScope::~GlobalsScope() { tl_globals = prev_; }

std::vector<std::pair<const char*, void*>> device_call_symbols() {
  return {
      {"__xesvm_enter", reinterpret_cast<void*>(&enter)},
      {"__xesvm_work_item", reinterpret_cast<void*>(&work_item)},
      {"__xesvm_barrier", reinterpret_cast<void*>(&barrier)},
      {"__xesvm_local_base", reinterpret_cast<void*>(&local_base)},
      {"__xesvm_globals_base", reinterpret_cast<void*>(&globals_base)},
      {"__xesvm_load", reinterpret_cast<void*>(&load)},
      {"__xesvm_store", reinterpret_cast<void*>(&store)},
      {"__xesvm_copy", reinterpret_cast<void*>(&copy)},
      {"__xesvm_fill", reinterpret_cast<void*>(&fill)},
      {"__xesvm_atomic", reinterpret_cast<void*>(&atomic)},
      {"__xesvm_printf", reinterpret_cast<void*>(&print)},
  };
}

}  // namespace xesvm::ze
