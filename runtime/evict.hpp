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
// PressurePolicy decides what to evict and runs the victim loop: high/low
// watermarks on device memory, victims by GPU use (a CLOCK sweep over the
// device's accessed bits, scan resistant: a range must be seen in use at two
// sweeps before it is protected), ranges the application asked to keep on
// the device last, and thrash detection: a range evicted and re-faulted
// `thrash_threshold` times within `thrash_window_ns` stays in system memory
// for `thrash_cooldown_ns`.
//
// Concurrency: REQUIRES the caller to hold the range's migrate_mu for every
// per-range call. The engine takes the notifier lock itself (shared for the
// lock step, exclusive to update the books) and trylocks frames only.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
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
  /// A range that holds device pages, as reclaim() sees it.
  struct Resident {
    RangePtr range;
    bool keep = false;  ///< advised to prefer the device: evicted last
  };
  PressurePolicy(Options o, Counters& counters) : o_(o), counters_(counters) {}

  static std::uint64_t now_ns() {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
            .count());
  }

  /// The device's accessed bits, read and cleared by the CLOCK sweep of
  /// reclaim(). Without them (nullptr, the default) use is known only from
  /// faults: a range is "accessed" if it faulted since the last sweep.
  /// REQUIRES: no reclaim() running; `bits` outlives this policy.
  void set_accessed_bits(AccessedBits* bits) { bits_ = bits; }

  /// Bytes to evict so that `need` more bytes fit under the high watermark
  /// (evicting down to the low one), 0 if they fit already.
  std::uint64_t bytes_to_free(const DeviceMemoryUse& use, std::uint64_t need) const;

  /// The victim loop, called before every migration to the device. Sweeps
  /// the ranges `resident()` lists (accessed bits read and cleared) once a
  /// 1/kSweepsPerTurnover of device memory has arrived since the last sweep,
  /// and whenever `need` more device bytes do not fit under the high
  /// watermark; in that case it also orders them (see evict.cpp, DOC: Victims) and evicts them in
  /// that order, pressure mode, until enough is free. Never evicts
  /// `faulting`; skips ranges whose migrate_mu is held (never waits on
  /// another range: ABBA). One reclaim runs at a time. Returns the bytes
  /// freed. REQUIRES: the caller holds faulting's migrate_mu (if any) and no
  /// other range's, nor the driver or notifier lock (resident() may take
  /// them). Throws what the eviction throws.
  std::uint64_t reclaim(std::uint64_t need, const Range* faulting, MechanismFace& mech, EvictionEngine& evictor,
                        const std::function<std::vector<Resident>()>& resident);

  /// Notes that `bytes` of r were just migrated to the device: an arrival
  /// on probation, protected once a later sweep sees it used again.
  void on_migrated(Range& r, std::uint64_t bytes) {
    migrated_since_sweep_.fetch_add(bytes, std::memory_order_relaxed);
    r.arrival.store(arrivals_.fetch_add(1, std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    r.swept.store(false, std::memory_order_relaxed);
    r.last_gpu_use.store(now_ns(), std::memory_order_relaxed);
  }

  /// Notes a pressure eviction of r.
  void on_evicted(Range& r) const {
    r.evicted_at.store(now_ns(), std::memory_order_relaxed);
    r.active.store(false, std::memory_order_relaxed);
  }

  /// Notes that r is being migrated to the device again; returns true if
  /// that makes it a thrashing range (it then cools down in RAM).
  bool on_refault(Range& r) const;

  /// True while r must stay in system memory.
  bool cooling(const Range& r) const { return now_ns() < r.cooldown_until.load(std::memory_order_relaxed); }

  const Options& options() const { return o_; }
  /// A sweep runs each time this fraction of device memory has arrived.
  static constexpr std::uint64_t kSweepsPerTurnover = 16;
  /// CLOCK sweeps made so far.
  std::uint64_t sweeps() const { return sweeps_.load(std::memory_order_relaxed); }

 private:
  // The CLOCK sweep and the victim order of one reclaim. REQUIRES mu_.
  std::vector<RangePtr> sweep_and_order(std::vector<Resident> resident, const Range* faulting);

  Options o_;
  Counters& counters_;
  AccessedBits* bits_ = nullptr;
  std::mutex mu_;  // one reclaim at a time
  std::atomic<std::uint64_t> arrivals_{0};
  std::atomic<std::uint64_t> sweeps_{0};
  std::atomic<std::uint64_t> migrated_since_sweep_{0};
  std::uint64_t last_sweep_ns_ = 0;  // guarded by mu_
};

}  // namespace xesvm
