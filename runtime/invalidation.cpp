// DOC: Overview
//
// Invalidation and garbage collection of SvmManager: what the CPU side's
// changes do to ranges (the mmu_interval_notifier callback and the deferred
// removal of ranges whose CPU mapping changed).
//
// DOC: Data path
//
//   invalidate(inv), on the backend's service thread, in event order:
//    1. bump the notifier windows of [start, end) (a bind in flight retries);
//    2. for each range overlapping it: kMigratedToRam unbinds only the pages
//       that move and drops the moving frames from the books (the backend
//       holds their locks and copies them home itself); every other kind
//       marks the range unmapped and queues it for the gc;
//    3. munmap/mremap: the registry of mirrored regions follows the change.
//
// DOC: Who zaps the GPU PTEs
//
// One owner per kind of change (backend.hpp, Invalidation). For munmap,
// discard and mremap it is the backend: it zaps the event's span at the
// moment the change happens, before the thread that made it resumes, which
// is the only moment that keeps a GPU write through a stale PTE out of a
// mapping made after it; this callback comes later, on the service thread,
// so it does not zap again. A bind that raced the change is refused by the
// backend until this callback has run (MechanismFace::bind()), and the
// sequence bump below makes it retry. The rest of a range the change covers
// only in part still maps valid pages; it stays bound (and gpu_bound stays
// set, so the protection check still sees it) until the gc removes the
// range, which unbinds it. For kMigratedToRam the runtime is the owner: the
// backend calls before its copy, and the unbind happens here, under the
// notifier lock, in one step with the sequence bump.
//   gc thread: remove_range() of each queued range off the fault path,
//   evicting what device data it still holds to wherever the device says it
//   belongs now (after mremap, the new address).
//
// DOC: Locking
//
// invalidate() takes driver_mu_ then the notifier lock (exclusive) and
// nothing else, so it never waits for a fault in progress; gc_mu_ guards the
// queue only. The gc thread takes the range's migrate_mu in remove_range()
// and never throws (a range it could not remove stays marked unmapped: the
// next fault on it or the teardown removes it).
//
// Part of SvmManager: its header holds the contracts.
#include "runtime/svm_manager.hpp"

#include <cstdio>
#include <unordered_set>

namespace xesvm {

using detail::hex;

void SvmManager::invalidate(const Invalidation& inv) {
  counters_.invalidations.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lk(driver_mu_);
  std::unique_lock nl(notifier_.lock);
  notifier_.windows.bump(inv.start, inv.end);
  std::vector<RangePtr> hit = tree_.overlapping(inv.start, inv.end);
  std::unordered_set<FrameId> moving;  // kMigratedToRam: the frames going home
  bool queued = false;
  for (const RangePtr& r : hit) {
    if (inv.kind == InvalidationKind::kMigratedToRam) {
      // Only what moves loses its GPU mapping: the rest of the range stays
      // bound (a partly bound range keeps gpu_bound, so the protection check
      // still finds it).
      const std::uint64_t a = std::max(r->start, inv.start), b = std::min(r->end, inv.end);
      mech_.unbind(a, b);
      if (a == r->start && b == r->end) r->gpu_bound = false;
      if (moving.empty()) moving.insert(inv.frames.begin(), inv.frames.end());
      for (FrameId& f : r->frames) {
        if (f != kNoFrame && moving.count(f)) f = kNoFrame;
      }
      continue;
    }
    // The backend has zapped [inv.start, inv.end) already (see above).
    if (inv.start <= r->start && r->end <= inv.end) r->gpu_bound = false;
    if (!r->unmapped) {
      r->unmapped = true;
      std::lock_guard g(gc_mu_);
      gc_queue_.push_back(r);
      queued = true;
    }
  }
  if (inv.kind == InvalidationKind::kUnmap || inv.kind == InvalidationKind::kRemap) {
    // The registry of CPU mappings follows the change.
    std::vector<std::pair<std::uint64_t, std::uint64_t>> keep;
    bool moved = false;
    for (auto it = mirrors_.begin(); it != mirrors_.end();) {
      if (it->second <= inv.start || it->first >= inv.end) {
        ++it;
        continue;
      }
      if (it->first < inv.start) keep.emplace_back(it->first, inv.start);
      if (it->second > inv.end) keep.emplace_back(inv.end, it->second);
      moved = true;
      it = mirrors_.erase(it);
    }
    for (auto& [s, e] : keep) mirrors_[s] = e;
    if (inv.kind == InvalidationKind::kRemap && moved) {
      mirrors_[inv.new_start] = inv.new_start + (inv.end - inv.start);
    }
  }
  // Wake the gc only for work: a CPU fault's invalidation (kMigratedToRam)
  // queues nothing, and a wake-up per fault was a context switch for nothing.
  if (queued) gc_cv_.notify_one();
}

void SvmManager::collect_garbage() {
  for (;;) {
    RangePtr r;
    {
      std::lock_guard g(gc_mu_);
      if (gc_queue_.empty()) return;
      r = gc_queue_.front();
      gc_queue_.pop_front();
    }
    // No exception may end this thread (std::terminate). A range that could
    // not be removed stays marked unmapped: the next fault on it or the
    // teardown removes it.
    try {
      remove_range(r, EvictMode::kTeardown);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "xesvm: gc: removing the range at %s failed: %s\n", hex(r->start).c_str(), e.what());
    }
  }
}

void SvmManager::gc_loop(std::stop_token st) {
  while (!st.stop_requested()) {
    {
      std::unique_lock g(gc_mu_);
      // Paused (a test hook), a non-empty queue must not end the wait: the
      // loop would spin until it is resumed.
      gc_cv_.wait_for(g, std::chrono::milliseconds(50),
                      [&] { return (!gc_queue_.empty() && !gc_paused_.load()) || st.stop_requested(); });
    }
    if (!gc_paused_.load()) collect_garbage();
  }
}

}  // namespace xesvm
