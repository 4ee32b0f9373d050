// SvmManager: the user-space SVM driver over a mechanism face.
//
// For backends whose memory management lives in user space (the sim), the
// runtime itself plays the kernel driver: SvmManager implements the policy
// face (mirror, advise, prefetch, evict, residency) on top of the mechanism
// face, resolves GPU faults (GpuFaultHandler) and receives CPU-side
// invalidations (MirrorClient).
//
// GPU fault path (gpu_fault.cpp): find or insert the range around the
// address -> decide placement (advice, thrash cool-down) -> migrate to device
// memory, the pressure policy evicting victims first if memory is short
// (evict.cpp) -> get pages (a snapshot, recording the notifier sequence) ->
// bind under the notifier lock, going back to get pages if the sequence
// moved. Invalidations and the gc of ranges whose CPU mapping changed:
// invalidation.cpp. Ranges, mirrors and the policy face: svm_manager.cpp.
//
// Locks, in the order they may be taken:
//   fork_mu_ (shared by faults and prefetch, exclusive around fork())
//   -> Range::migrate_mu (victims only ever trylocked)
//   -> frame locks (trylock only)
//   -> driver_mu_ (range tree, mirrors, advice; never held across a wait)
//   -> Notifier::lock (sequences, Range::frames, GPU binding)
// Invalidations arrive on the backend's service thread and take driver_mu_
// and the notifier lock only, so nothing that waits for that thread may hold
// either.
//
// Not copyable. Destroying it evicts nothing: the Runtime unmirrors first.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <memory_resource>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "runtime/backend.hpp"
#include "runtime/batch_copy.hpp"
#include "runtime/evict.hpp"
#include "runtime/huge_page_arena.hpp"
#include "runtime/svm_range.hpp"

namespace xesvm {

namespace detail {
/// "0x..." of an address, for error messages of the SvmManager files.
std::string hex(std::uint64_t v);
}  // namespace detail

class SvmManager final : public PolicyFace, public GpuFaultHandler, public MirrorClient {
 public:
  /// `accessed`: the GPU page table's accessed bits for victim choice, or
  /// nullptr (victims by their last fault). Must outlive this manager.
  SvmManager(MechanismFace& mech, const RuntimeOptions& options, AccessedBits* accessed = nullptr);
  ~SvmManager() override;

  // PolicyFace
  void mirror(std::uint64_t start, std::size_t len) override;
  void unmirror(std::uint64_t start, std::size_t len) override;
  bool advise(std::uint64_t start, std::size_t len, const Advice& advice) override;
  std::uint64_t prefetch(std::uint64_t start, std::size_t len, Location where) override;
  EvictResult evict(std::uint64_t start, std::size_t len) override;
  Residency residency(std::uint64_t start, std::size_t len) override;
  DeviceMemoryUse device_memory() override { return mech_.device_memory(); }
  void wait() override {}

  /// Like unmirror(), but the bytes are not wanted (the memory is freed).
  /// Only bytes that still live at [start, start+len) are dropped: a range
  /// there whose mapping moved away (mremap; its gc not done yet) is torn
  /// down, its bytes placed where they live now.
  void discard(std::uint64_t start, std::size_t len);
  /// Runtime::discard(): discard() of exactly a region passed to mirror().
  /// Throws Error (kInvalidArgument) for any other span.
  void discard_mirror(std::uint64_t start, std::size_t len);
  /// Runtime::prefetch(): like prefetch(), for the byte range [first, end)
  /// (the pages covering it move); returns the bytes of [first, end) that
  /// this call moved to `where` (at most end - first).
  std::uint64_t prefetch_bytes(std::uint64_t first, std::uint64_t end, Location where);
  /// Drops GPU bindings that the CPU mappings' protection may no longer
  /// allow (mprotect() raises no event). Called before every launch.
  void check_cpu_protection();
  /// Brings every device-resident byte back to RAM (teardown mode).
  void evict_all();
  /// Runtime teardown: unmirrors every region still mirrored (application
  /// mirrors; their bytes come back to RAM), tolerating regions the
  /// application unmapped meanwhile, and stops the gc thread. The backend
  /// may then be destroyed (joining its service thread, which may still
  /// call invalidate()) before this manager is.
  void detach();

  // GpuFaultHandler
  bool handle_gpu_fault(std::uint64_t addr, Access access) override;
  // MirrorClient
  void invalidate(const Invalidation& inv) override;

  /// Fills the counters this layer keeps.
  void add_stats(Stats& s) const;
  std::size_t range_count() const;

  /// Test hook: called between get-pages and bind on the fault path.
  void set_before_bind_hook(std::function<void(std::uint64_t range_start)> hook) { before_bind_ = std::move(hook); }
  /// Test hook: while paused, the gc thread leaves its queue alone (ranges
  /// whose mapping changed stay in the tree until a fault or a teardown
  /// meets them).
  void set_gc_paused(bool paused) {
    gc_paused_.store(paused);
    gc_cv_.notify_one();
  }
  /// Test hook: called when unmirror()/discard() has taken the region out
  /// of the registry and torn its ranges down, before the backend stops
  /// mirroring it.
  void set_before_unregister_hook(std::function<void(std::uint64_t start)> hook) {
    before_unregister_ = std::move(hook);
  }
  /// Test hook: see EvictionEngine::set_after_finalize_hook.
  void set_after_finalize_hook(std::function<void(std::span<const FrameId>)> hook) {
    evictor_.set_after_finalize_hook(std::move(hook));
  }
  /// Test hook: see EvictionEngine::set_before_copy_hook.
  void set_before_copy_hook(std::function<void(std::uint64_t range_start)> hook) {
    evictor_.set_before_copy_hook(std::move(hook));
  }
  /// Serializes against fork(): held exclusive from prepare to parent/child.
  std::shared_mutex& fork_lock() { return fork_mu_; }

 private:
  RangePtr find_or_insert(std::uint64_t addr);
  // The range around addr with its migrate_mu held in `held`, or nullptr if
  // addr is not in a mirror. Ranges whose CPU mapping changed are removed on
  // the way (the fault path does not wait for the gc).
  RangePtr lock_live_range(std::uint64_t addr, std::unique_lock<std::mutex>& held);
  // Throws unless [start, start+len) is exactly a mirrored region.
  void require_mirror(std::uint64_t start, std::size_t len, const char* what) const;
  // True if a mirror or a range overlaps [start, end).
  bool any_mirror_in(std::uint64_t start, std::uint64_t end) const;
  bool find_mirror(std::uint64_t addr, std::uint64_t* lo, std::uint64_t* hi) const;
  // REQUIRES r->migrate_mu. Returns false if device memory could not be had.
  // Adds to *moved (if given) the bytes of [lo, hi) this call moved.
  bool migrate_range_to_device(Range& r, std::uint64_t* moved = nullptr, std::uint64_t lo = 0,
                               std::uint64_t hi = ~std::uint64_t{0});
  // REQUIRES r->migrate_mu. Snapshot + bind with the sequence check, under
  // the CPU protection `prot` of the range if given (else read here).
  void get_pages_and_bind(Range& r, const std::vector<CpuProtection>* prot = nullptr);
  void make_room(std::uint64_t need, const Range* faulting);
  void remove_range(const RangePtr& r, EvictMode mode);
  void end_mirror(std::uint64_t start, std::size_t len, EvictMode mode);
  std::vector<RangePtr> ranges_in(std::uint64_t start, std::uint64_t end) const;
  void gc_loop(std::stop_token st);
  void collect_garbage();

  // The ranges' memory and that of the range index's blocks: pools of
  // same-sized blocks on huge pages (huge_page_arena.hpp), so ranges made
  // one after another lie side by side and a lookup among a million of
  // them touches few cache lines and misses no TLB entry. First members:
  // they outlive every RangePtr the other members hold. Blocks up to 8 KiB
  // are pooled (a Block of the index is 4 KiB); freed ones are reused.
  HugePageArena range_arena_;
  std::pmr::synchronized_pool_resource range_pool_{std::pmr::pool_options{0, 8192}, &range_arena_};
  // The pool, or operator new in sanitizer builds (kSanitizedBuild).
  std::pmr::memory_resource* const range_mem_ =
      kSanitizedBuild ? std::pmr::new_delete_resource() : static_cast<std::pmr::memory_resource*>(&range_pool_);
  MechanismFace& mech_;
  RuntimeOptions options_;
  mutable Counters counters_;
  Notifier notifier_;
  BatchCopier copier_;
  EvictionEngine evictor_;
  PressurePolicy policy_;

  std::shared_mutex fork_mu_;

  mutable std::mutex driver_mu_;
  RangeTree tree_{range_mem_};
  std::map<std::uint64_t, std::uint64_t> mirrors_;  // start -> end
  struct AdviceSpan {
    std::uint64_t start, end;
    Advice advice;
  };
  std::vector<AdviceSpan> advice_;
  OwnerId next_id_ = 1;

  std::mutex gc_mu_;
  std::condition_variable gc_cv_;
  std::deque<RangePtr> gc_queue_;
  std::function<void(std::uint64_t)> before_bind_;
  std::function<void(std::uint64_t)> before_unregister_;
  std::atomic<bool> gc_paused_{false};
  std::jthread gc_;
};

}  // namespace xesvm
