// Helpers shared by the runtime suites.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "runtime/runtime_impl.hpp"
#include "xesvm/xesvm.hpp"

namespace xesvm::test {

/// A byte pattern that differs per address and per generation.
inline std::uint8_t pattern(std::uint64_t offset, std::uint32_t gen) {
  std::uint64_t x = (offset + 1) * 0x9E3779B97F4A7C15ull ^ (std::uint64_t(gen) << 32 | gen);
  return static_cast<std::uint8_t>(x >> 56);
}

inline void fill(void* p, std::size_t n, std::uint32_t gen) {
  auto* b = static_cast<std::uint8_t*>(p);
  for (std::size_t i = 0; i < n; ++i) b[i] = pattern(i, gen);
}

/// Number of bytes of [p, p+n) that differ from the pattern of `gen`.
inline std::size_t mismatches(const void* p, std::size_t n, std::uint32_t gen) {
  const auto* b = static_cast<const std::uint8_t*>(p);
  std::size_t bad = 0;
  for (std::size_t i = 0; i < n; ++i) bad += b[i] != pattern(i, gen);
  return bad;
}

/// A GPU kernel that reads one word per page and adds `delta` to one word
/// per page, touching every page of [base, base+bytes).
inline Kernel touch_pages_kernel(void* base, std::size_t bytes, std::uint32_t delta, bool write) {
  const std::uint64_t b = reinterpret_cast<std::uint64_t>(base);
  return [=](const WorkItem& wi, DeviceAccessor& acc) {
    std::uint64_t a = b + wi.global_id * 4096;
    if (a >= b + bytes) return;
    std::uint32_t v = 0;
    acc.read(a, &v, sizeof v);
    if (write) {
      v += delta;
      acc.write(a, &v, sizeof v);
    }
  };
}

inline std::size_t pages(std::size_t bytes) { return (bytes + 4095) / 4096; }

}  // namespace xesvm::test
