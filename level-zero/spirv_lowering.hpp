// Lowers the LLVM IR of a SPIR-V module (as SPIRV-LLVM-Translator reads it:
// OpenCL 1.2 built-in calls, address spaces 0 private, 1 global, 2
// constant, 3 local, 4 generic) to IR the host can run as a device kernel:
//   - every load, store, memory intrinsic and atomic whose address is in
//     the global, constant or generic address space becomes a call of the
//     device calls (spirv_device_calls.hpp), which resolve the address at
//     run time: the work item's stack and its group's local memory directly,
//     every other address through the device accessor;
//   - program-scope variables (global and constant address spaces) move
//     into one block of device memory per module (GlobalsLayout): a use
//     becomes __xesvm_globals_base() + its offset, a device address, so
//     their accesses go through the accessor like any other. Only the
//     string constants printf reads on the host stay module data;
//   - local (address space 3) variables move into the group's arena;
//   - work-item functions, barriers, fences, atomics and math built-ins
//     become device calls, CPU atomics (local and private memory) or LLVM
//     intrinsics;
//   - each kernel gets an ABI 2 entry, "__xesvm_entry.<name>".
// Anything else the module needs from outside (an unsupported built-in) is
// an error naming it.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace llvm {
class Module;
}

namespace xesvm::ze {

/// A kernel of a lowered module.
struct LoweredKernel {
  std::string name;
  std::string entry;  ///< the symbol of its ABI 2 entry
  std::vector<std::uint32_t> arg_sizes;
  std::vector<bool> arg_local;  ///< a local-memory pointer argument
  std::uint32_t required_group_size[3] = {0, 0, 0};
  std::uint32_t required_sub_group_size = 0;  ///< intel_reqd_sub_group_size, or 0
  /// Bytes of the group's arena this kernel needs: up to the end of the
  /// last local variable the kernel (or a function it calls) uses.
  std::uint32_t local_mem_size = 0;
  bool barriers = false;  ///< the kernel (or a function it calls) may wait at a barrier
};

/// What lowering found wrong with a module (the build log's text).
struct LoweringError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// A program-scope variable of the module, in its globals block.
struct GlobalVariableInfo {
  std::string name;
  std::uint64_t offset = 0;  ///< in the block
  std::uint64_t size = 0;    ///< bytes
  bool exported = false;     ///< SPIR-V linkage Export (zeModuleGetGlobalPointer finds it)
};

/// The module's program-scope variables: one block of device memory each
/// module instance allocates, initialised from image with every pointer of
/// relocs patched to the block's address.
struct GlobalsLayout {
  std::vector<GlobalVariableInfo> vars;
  std::string image;  ///< the block's initial bytes (its size is the block's)
  /// (offset in the image of a 64-bit pointer, the block offset it points to)
  std::vector<std::pair<std::uint64_t, std::uint64_t>> relocs;
  std::uint64_t align = 1;  ///< the largest alignment of a variable
};

struct LoweredModule {
  std::vector<LoweredKernel> kernels;
  GlobalsLayout globals;
  std::uint32_t local_mem_size = 0;  ///< bytes of the module's local variables
  bool barriers = false;             ///< some kernel may call a barrier
};

/// Lowers m in place (its data layout must be the host's). Throws
/// LoweringError naming what is not supported.
LoweredModule lower_for_device(llvm::Module& m);

/// Checks that no access of global, constant or generic memory is left in
/// m (after optimization). Throws LoweringError naming the first one.
void check_lowered(const llvm::Module& m);

}  // namespace xesvm::ze
