// Eviction to RAM and the memory-pressure policy.
//
// EvictionEngine moves a range's device-resident data back to RAM over the
// backend's mechanism face, in the steps of DESIGN.md:
//   collect -> lock -> unmap -> copy (parallel pfn batches) -> commit -> finalize
// with two entry points, like the kernel's:
//   * evict_allocation(): the frames of one range, listed by the device from
//     their owner tag: no VA, no CPU mapping lookup (memory pressure and
//     teardown use it);
//   * evict_va(): a snapshot of a VA span that reports our device frames,
//     guarded by the notifier sequence (prefetch to system, evict()).
// It never consults the runtime's registry of CPU mappings.
//
// PressurePolicy decides what to evict: high/low watermarks on device
// memory, victims by recency of GPU use (LRU), ranges the application asked
// to keep on the device last, and thrash detection: a range evicted and
// re-faulted `thrash_threshold` times within `thrash_window_ns` stays in
// system memory for `thrash_cooldown_ns`.
//
// Concurrency: REQUIRES the caller to hold the range's migrate_mu for every
// per-range call. The engine takes the notifier lock itself (shared for the
// lock step, exclusive to update the books) and trylocks frames only.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <shared_mutex>
#include <vector>

#include "runtime/backend.hpp"
#include "runtime/batch_copy.hpp"
#include "runtime/svm_range.hpp"

namespace xesvm {

/// The notifier lock and the sequence numbers it guards.
struct Notifier {
  explicit Notifier(std::size_t window) : windows(window) {}
  std::shared_mutex lock;
  NotifierWindows windows;
};

/// Counters shared by the fault path and eviction.
struct Counters {
  std::atomic<std::uint64_t> gpu_faults{0}, migrations_to_device{0}, bytes_to_device{0}, migrations_to_system{0},
      bytes_to_system{0}, evictions{0}, pages_evicted{0}, pages_evict_skipped{0}, evict_retries{0}, invalidations{0},
      bind_retries{0}, thrash_events{0}, cpu_mapping_lookups_in_eviction{0};
};

/// Marks the calling thread as running eviction while alive: a lookup of
/// the CPU-mapping registry made meanwhile is counted as a violation.
class EvictionScope {
 public:
  EvictionScope();
  ~EvictionScope();
  EvictionScope(const EvictionScope&) = delete;
  EvictionScope& operator=(const EvictionScope&) = delete;
  static bool active();
};

enum class EvictMode : std::uint8_t {
  kPressure,  ///< bounded retries of busy frames, then report them skipped
  kTeardown,  ///< sleep and retry until every frame is free
  kDiscard,   ///< like teardown, but the bytes are not wanted (free())
};

class EvictionEngine {
 public:
  EvictionEngine(MechanismFace& mech, Notifier& notifier, BatchCopier& copier, Counters& counters, unsigned retries);
  EvictionEngine(const EvictionEngine&) = delete;
  EvictionEngine& operator=(const EvictionEngine&) = delete;

  /// Allocation entry: evicts every frame tagged with r.id.
  /// REQUIRES: r.migrate_mu held.
  EvictResult evict_allocation(Range& r, EvictMode mode);

  /// VA entry: evicts r's device pages inside [start, end).
  /// REQUIRES: r.migrate_mu held.
  EvictResult evict_va(Range& r, std::uint64_t start, std::uint64_t end);
  /// Test hook: called after finalize unlocked the frames, before the
  /// placed ones (the argument) are freed.
  void set_after_finalize_hook(std::function<void(std::span<const FrameId>)> hook) {
    after_finalize_ = std::move(hook);
  }
  /// Test hook: called with the range's start when a pass has unmapped its
  /// frames and is about to copy them (the range's migrate_mu held).
  void set_before_copy_hook(std::function<void(std::uint64_t range_start)> hook) { before_copy_ = std::move(hook); }

 private:
  struct Candidate {
    FrameId frame;
    std::uint64_t expected_addr;  // VA entry: where the snapshot saw it; 0: any
  };
  // One pass of lock -> unmap -> copy -> finalize. Returns frames left busy.
  std::vector<Candidate> pass(Range& r, const std::vector<Candidate>& cands, bool discard, std::uint64_t seq,
                              bool check_seq, bool* seq_moved, EvictResult& res);

  MechanismFace& mech_;
  Notifier& notifier_;
  BatchCopier& copier_;
  Counters& counters_;
  unsigned retries_;
  std::function<void(std::span<const FrameId>)> after_finalize_;
  std::function<void(std::uint64_t)> before_copy_;
};

class PressurePolicy {
 public:
  struct Options {
    double high = 0.95, low = 0.85;
    unsigned thrash_threshold = 3;
    std::uint64_t thrash_window_ns = 200'000'000, thrash_cooldown_ns = 500'000'000;
  };
  PressurePolicy(Options o, Counters& counters) : o_(o), counters_(counters) {}

  static std::uint64_t now_ns() {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
            .count());
  }

  /// Bytes to evict so that `need` more bytes fit under the high watermark
  /// (evicting down to the low one), 0 if they fit already.
  std::uint64_t bytes_to_free(const DeviceMemoryUse& use, std::uint64_t need) const;

  /// Orders victim candidates: least recently used first; ranges advised to
  /// prefer the device last. Ranges without device pages are dropped.
  std::vector<RangePtr> order_victims(std::vector<RangePtr> ranges, const Range* faulting) const;

  /// Notes a pressure eviction of r.
  void on_evicted(Range& r) const { r.evicted_at.store(now_ns(), std::memory_order_relaxed); }

  /// Notes that r is being migrated to the device again; returns true if
  /// that makes it a thrashing range (it then cools down in RAM).
  bool on_refault(Range& r) const;

  /// True while r must stay in system memory.
  bool cooling(const Range& r) const { return now_ns() < r.cooldown_until.load(std::memory_order_relaxed); }

  const Options& options() const { return o_; }

 private:
  Options o_;
  Counters& counters_;
};

}  // namespace xesvm
