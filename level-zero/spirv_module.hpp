// SPIR-V modules on the sim device: zeModuleCreate with
// ZE_MODULE_FORMAT_IL_SPIRV.
//
// A module is validated (SPIRV-Tools), its capabilities and extensions are
// checked against what the device supports (level-zero/README.md), it is
// translated to LLVM IR (SPIRV-LLVM-Translator), lowered so that every
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
// Concurrency: build_spirv is thread-safe (builds are serialised; processes
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

}  // namespace xesvm::ze
