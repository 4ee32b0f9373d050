// The functions kernels compiled from SPIR-V call (spirv_lowering.cpp
// rewrites the kernel's built-ins and its global, constant and generic
// memory accesses into calls of these): work-item ids, the group barrier,
// local memory, and every access of memory that is not the work item's own
// stack or its group's local memory, which goes through the device accessor
// (KernelMemory), so it walks the GPU page table and raises GPU faults.
//
// A compiled kernel's entry has the ABI 2 signature; it first calls
// __xesvm_enter, which makes the work item current on the calling thread
// (a thread-local pointer to an ItemEnv in the entry's frame). A barrier
// keeps it across the fiber switch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "xesvm/ze_work_group.h"

namespace xesvm::ze {

struct KernelMemory;

/// What the device calls of one work item need; lives in its entry's frame.
struct ItemEnv {
  const xesvm_ze_item* item;
  KernelMemory* mem;
  const xesvm_ze_group* group;
};

/// Work-item queries of __xesvm_work_item(which, dim).
enum class WorkItemQuery : std::uint32_t {
  kGlobalId,
  kLocalId,
  kGroupId,
  kGlobalSize,
  kLocalSize,
  kNumGroups,
  kGlobalOffset,
  kWorkDim,
  kGlobalLinearId,
  kLocalLinearId,
};

/// Makes base the address of the module's globals block
/// (__xesvm_globals_base, spirv_lowering.hpp) for the compiled kernels the
/// calling thread runs while the object lives: a launch sets it around each
/// of its work groups. Scopes nest (the previous address is restored).
class GlobalsScope {
 public:
  explicit GlobalsScope(std::uint64_t base);
  ~GlobalsScope();
  GlobalsScope(const GlobalsScope&) = delete;
  GlobalsScope& operator=(const GlobalsScope&) = delete;

 private:
  std::uint64_t prev_;
};

/// The device calls, as (symbol name, address) pairs for the JIT. Their
/// C signatures are listed in spirv_device_calls.cpp.
std::vector<std::pair<const char*, void*>> device_call_symbols();

}  // namespace xesvm::ze
