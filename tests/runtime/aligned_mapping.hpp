// Aligned anonymous memory for tests and benchmarks (no test framework
// needed: bench/ includes it too).
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>

namespace xesvm::test {

/// `bytes` of private anonymous read-write memory aligned to `align` (a
/// power of two), the caller's to munmap(); nullptr if mmap fails.
inline void* map_aligned(std::size_t bytes, std::size_t align = 2u << 20) {
  void* raw = mmap(nullptr, bytes + align, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const auto r = reinterpret_cast<std::uint64_t>(raw);
  const std::uint64_t base = (r + align - 1) & ~(std::uint64_t(align) - 1);
  if (base > r) munmap(raw, base - r);
  const std::uint64_t end = r + bytes + align;
  if (end > base + bytes) munmap(reinterpret_cast<void*>(base + bytes), end - (base + bytes));
  return reinterpret_cast<void*>(base);
}

}  // namespace xesvm::test
