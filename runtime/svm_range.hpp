// SVM ranges: the unit of migration, binding and eviction.
//
// A Range is a naturally aligned chunk of a mirrored region, 2 MiB, 64 KiB
// or 4 KiB: the largest that is aligned around the faulting address, fits
// inside the mirrored region and inside one notifier window, and overlaps no
// existing range (choose_chunk). Ranges are never split; a partial unmap
// removes the whole range and evicts what is left of it.
//
// RangeTree keeps ranges ordered by start address (a B-tree: O(log n)
// lookup) and, for the hot point lookups of the fault path and of a CPU
// fault's invalidation, an index from each 2 MiB block to the ranges inside
// it (a range never crosses a 2 MiB boundary: it is at most 2 MiB and
// naturally aligned): per page of the block, the range holding it. find()
// costs one hash probe of a table of blocks and one read of that page's
// entry; nothing it touches grows with the number of ranges but the
// (compact) table of blocks. NotifierWindows keeps one invalidation sequence number per
// naturally aligned window (512 MiB by default), the mmu_interval_notifier
// analogue: a bind is valid only if the window's sequence did not move since
// the pages were collected.
//
// Concurrency: RangeTree and NotifierWindows are not synchronized; the
// SvmManager guards the tree with its driver lock and the windows with its
// notifier lock. A Range's fields say which lock guards them.
#pragma once

#include <absl/container/btree_map.h>
#include <absl/container/flat_hash_map.h>
#include <absl/container/inlined_vector.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <memory_resource>
#include <mutex>
#include <optional>
#include <vector>

#include "runtime/backend.hpp"

namespace xesvm {

struct Range : std::enable_shared_from_this<Range> {
  Range(OwnerId id_, std::uint64_t start_, std::size_t size_)
      : id(id_), start(start_), end(start_ + size_), frames(size_ / kPageSize, kNoFrame) {}
  Range(const Range&) = delete;
  Range& operator=(const Range&) = delete;

  const OwnerId id;  ///< tag of this range's device frames
  const std::uint64_t start;
  const std::uint64_t end;

  std::size_t size() const { return end - start; }
  std::size_t pages() const { return size() / kPageSize; }
  bool contains(std::uint64_t a) const { return a >= start && a < end; }

  /// Serializes migrations (to device, eviction, removal) of this range.
  /// Lock order: migrate_mu -> frame locks -> notifier lock.
  std::mutex migrate_mu;

  // Guarded by the notifier lock. gpu_bound and bound_read_write are also
  // written under the shared notifier lock by the binder, which holds
  // migrate_mu: read them under migrate_mu or the exclusive notifier lock.
  /// Per page; kNoFrame = data in RAM. Inside the Range for ranges of up to
  /// 64 KiB (the many small ranges of a scattered workload), so their
  /// lookups read no second allocation.
  absl::InlinedVector<FrameId, 16> frames;
  bool unmapped = false;  ///< CPU mapping changed; queued for removal
  bool gpu_bound = false;
  bool bound_read_write = false;  ///< bound while the CPU mapped every page read-write

  // Guarded by the driver lock (advice) or atomic (policy bookkeeping).
  Advice advice{};
  std::atomic<std::uint64_t> last_gpu_use{0};    ///< last GPU use seen: a fault or a sweep (ns)
  std::atomic<std::uint64_t> arrival{0};         ///< order of its last migration to the device
  std::atomic<bool> swept{false};                ///< a CLOCK sweep has met it since its arrival
  std::atomic<bool> active{false};               ///< seen in use at two sweeps: protected
  std::atomic<std::uint64_t> evicted_at{0};      ///< last pressure eviction (ns)
  std::atomic<unsigned> refaults{0};             ///< evict+refault in the window
  std::atomic<std::uint64_t> cooldown_until{0};  ///< thrash: stay in RAM till then

  std::size_t device_pages() const {
    std::size_t n = 0;
    for (FrameId f : frames) n += f != kNoFrame;
    return n;
  }
};

using RangePtr = std::shared_ptr<Range>;

class RangeTree {
 public:
  /// The index's blocks come from `mem` (which must outlive the tree).
  explicit RangeTree(std::pmr::memory_resource* mem = std::pmr::new_delete_resource()) : mem_(mem) {}
  RangeTree(const RangeTree&) = delete;
  RangeTree& operator=(const RangeTree&) = delete;

  /// The range containing addr, or nullptr.
  RangePtr find(std::uint64_t addr) const;
  /// Ranges overlapping [start, end), in address order.
  std::vector<RangePtr> overlapping(std::uint64_t start, std::uint64_t end) const;
  /// REQUIRES: r overlaps no range in the tree.
  void insert(RangePtr r);
  /// Removes r if it is in the tree. Returns whether it was.
  bool erase(const Range& r);
  std::size_t size() const { return tree_.size(); }
  bool empty() const { return tree_.empty(); }
  std::vector<RangePtr> all() const;

  /// The chunk for a fault at `addr` inside the mirrored region [lo, hi):
  /// the largest of kChunkSizes whose aligned block around addr lies inside
  /// [lo, hi) and inside addr's notifier window, and overlaps no range here.
  /// Returns {start, size}, or nullopt if even 4 KiB does not fit (addr
  /// outside [lo, hi) or inside an existing range).
  std::optional<std::pair<std::uint64_t, std::size_t>> choose_chunk(std::uint64_t addr, std::uint64_t lo,
                                                                    std::uint64_t hi, std::size_t window) const;

 private:
  struct Block {
    // Page in block -> the range holding it (owned by tree_), or nullptr.
    // One array: a lookup reads one entry, not a slot and then a vector.
    std::array<Range*, 512> range_of_page{};
    std::uint32_t ranges = 0;  // ranges inside the block
  };
  static std::uint64_t block_of(std::uint64_t a) { return a >> 21; }
  static std::size_t page_in_block(std::uint64_t a) { return (a >> kPageShift) & 511; }
  struct BlockDeleter {
    std::pmr::memory_resource* mem = nullptr;
    void operator()(Block* b) const { std::pmr::polymorphic_allocator<Block>(mem).delete_object(b); }
  };
  using BlockPtr = std::unique_ptr<Block, BlockDeleter>;
  std::pmr::memory_resource* mem_;
  absl::btree_map<std::uint64_t, RangePtr> tree_;        // start -> range
  absl::flat_hash_map<std::uint64_t, BlockPtr> blocks_;  // 2 MiB block -> its ranges
};

class NotifierWindows {
 public:
  /// REQUIRES: window_size is a power of two and at least 2 MiB.
  explicit NotifierWindows(std::size_t window_size);
  std::size_t window_size() const { return size_; }
  /// Sequence of the window holding addr (0 for a window never invalidated).
  std::uint64_t seq(std::uint64_t addr) const;
  /// Bumps every window overlapping [start, end).
  void bump(std::uint64_t start, std::uint64_t end);
  std::uint64_t window_of(std::uint64_t addr) const { return addr & ~(std::uint64_t(size_) - 1); }

 private:
  std::size_t size_;
  absl::btree_map<std::uint64_t, std::uint64_t> seq_;  // window base -> seq
};

}  // namespace xesvm
