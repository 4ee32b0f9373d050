// Kernels the runtime benchmarks share.
//
// Each returns an xesvm::Kernel (a copyable callable; it captures addresses
// by value and owns nothing) for Runtime::launch.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>

#include "xesvm/xesvm.hpp"

namespace xesvm::bench {

/// Work items that each read one byte of `base` at offset 12345 (inside its
/// first 2 MiB chunk). Launched with one work item: a GPU fault that
/// migrates that chunk, or, once it is bound, a launch that only touches it.
inline Kernel read_one_byte_kernel(const void* base) {
  const std::uint64_t a = reinterpret_cast<std::uint64_t>(base) + 12345;
  return [a](const WorkItem&, DeviceAccessor& acc) {
    std::uint8_t v;
    acc.read(a, &v, 1);
    benchmark::DoNotOptimize(v);
  };
}

}  // namespace xesvm::bench
