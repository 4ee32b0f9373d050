// SPIR-V modules on the sim device: zeModuleCreate with
// ZE_MODULE_FORMAT_IL_SPIRV.
//
// A module is validated (SPIRV-Tools), its capabilities and extensions are
// checked against what the device supports (level-zero/README.md), it is
// translated to LLVM IR (SPIRV-LLVM-Translator, in the translator program
// xesvm-spirv-translate: spirv_translator_process.hpp), lowered so that every
// access of global, constant or generic memory goes through the device
// accessor (spirv_lowering.hpp), optimized (O2) and compiled to host code by
// LLVM's ORC JIT. Its kernels follow kernel ABI 2 (work groups with local
// memory and barriers) and run on the engine's workers like native ones.
//
// Compiled modules are cached by the SHA-1 of the SPIR-V, the build flags,
// the specialization constants and the toolchain (LLVM version, cache entry
// format, device calls, host CPU and its features): in memory (64 modules),
// and on disk when XESVM_KERNEL_CACHE names a directory, one file per
// module holding its host object file and its kernels' interface, written
// atomically. Creating the same module again, in this process or another,
// compiles nothing. A corrupt or foreign disk entry is ignored (a line of
// the build log says why) and the module is compiled and stored again; the
// disk cache never fails a build. XESVM_ZE_STATS=1 prints the build
// counters (compiled, cache hits, disk writes, ignored entries) as one JSON
// line on stderr at exit.
//
// Program-scope variables (global and constant address spaces) live in one
// block of device memory per module (instantiate_spirv), reached by the
// module's kernels through the device accessor like any device memory.
//
// Concurrency: build_spirv, instantiate_spirv and the queries are
// thread-safe (builds are serialised; processes
// sharing a cache directory may write the same entry, the last rename
// wins, each is whole).
#pragma once

#include <level_zero/ze_api.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "level-zero/driver.hpp"

namespace xesvm::ze {

/// True if the driver was built with SPIR-V support.
bool spirv_supported();

/// Builds the program of a SPIR-V module. On success *log gets the build
/// log (what was compiled, or that the cache had it). Throws ZeError
/// (MODULE_BUILD_FAILURE, or UNSUPPORTED_FEATURE without SPIR-V support)
/// whose what is the build log: what was wrong, by name.
std::shared_ptr<const Program> build_spirv(const std::uint8_t* il, std::size_t size, const char* flags,
                                           const ze_module_constants_t* constants, std::string* log);

/// The program of one module made from a program build_spirv returned:
/// compiled itself if its SPIR-V has no program-scope variables, else a
/// program of the same kernels that owns the module's own block of them (a
/// device allocation of ctx on dev, initialised now through the device
/// accessor; freed when the last reference to the program goes: the module,
/// its kernels, launches in flight). Two modules never share a block. Throws
/// ZeError (the allocation's or the device's error).
std::shared_ptr<const Program> instantiate_spirv(Context& ctx, Device& dev, std::shared_ptr<const Program> compiled);

/// The device address of the globals block of p (what compiled kernels of
/// p reach as __xesvm_globals_base), or 0 if p has none.
std::uint64_t spirv_globals_base(const Program& p);

/// A program-scope variable of a module.
struct SpirvGlobal {
  std::uint64_t address = 0;  ///< a device address in the module's block
  std::size_t size = 0;       ///< bytes
};

/// Finds the variable of p's module exported (SPIR-V linkage Export) as
/// name. Returns false if there is none.
bool find_spirv_global(const Program& p, const std::string& name, SpirvGlobal* out);

}  // namespace xesvm::ze
