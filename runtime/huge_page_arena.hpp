// HugePageArena: memory for the runtime's many small book-keeping objects
// (ranges, the range index's blocks) on transparent huge pages.
//
// A million 4 KiB ranges are a few hundred MB of book-keeping. A CPU
// invalidation touches a few of those objects at random, and on 4 KiB
// pages each touch is a TLB miss as well as a cache miss; on 2 MiB pages
// the whole set fits the TLB. The arena hands out memory from 2 MiB-aligned
// regions it maps with MADV_HUGEPAGE (a hint: where the kernel has
// transparent huge pages off, the regions are ordinary pages).
//
// It is the upstream of a pool resource (std::pmr::synchronized_pool_resource),
// which returns memory only when it is released or destroyed: deallocate()
// here therefore keeps the memory, and everything the arena mapped is
// unmapped when it is destroyed. Do not use it directly for objects that
// come and go.
//
// Concurrency: allocate() and deallocate() may be called from any thread
// (a mutex guards the current region).
#pragma once

#include <cstddef>
#include <memory_resource>
#include <mutex>
#include <utility>
#include <vector>

namespace xesvm {

/// True in ASan and TSan builds. Pools there would hide each object's
/// lifetime from the sanitizer (a use after free of a pooled object is a
/// read of live pool memory), so users of the arena fall back to
/// operator new in such builds.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitizedBuild = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr bool kSanitizedBuild = true;
#else
inline constexpr bool kSanitizedBuild = false;
#endif
#else
inline constexpr bool kSanitizedBuild = false;
#endif

class HugePageArena final : public std::pmr::memory_resource {
 public:
  HugePageArena() = default;
  /// Unmaps every region; memory handed out is invalid afterwards.
  ~HugePageArena() override;
  HugePageArena(const HugePageArena&) = delete;
  HugePageArena& operator=(const HugePageArena&) = delete;

 private:
  /// Returns `bytes` aligned to `align` (at most 2 MiB). Throws
  /// std::bad_alloc when the kernel refuses the mapping.
  void* do_allocate(std::size_t bytes, std::size_t align) override;
  /// Keeps the memory (see above).
  void do_deallocate(void*, std::size_t, std::size_t) override {}
  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override { return this == &other; }

  std::mutex mu_;
  std::vector<std::pair<void*, std::size_t>> regions_;  // mapped, to unmap
  char* next_ = nullptr;                                // free part of the last region
  std::size_t left_ = 0;
};

}  // namespace xesvm
