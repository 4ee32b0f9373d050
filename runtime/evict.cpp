// DOC: Overview
//
// Eviction moves device-resident data back to RAM without looking up any
// CPU mapping: the frames to move come from the device itself (by owner tag,
// or from a snapshot that reports our frames), and each frame's destination
// is the address the device's own migration entry records for it.
//
// DOC: The steps
//
//  1. collect: frames_of(range) (allocation entry) or a snapshot of the VA
//     span recording the notifier sequence (VA entry);
//  2. lock, under the notifier lock held shared: if the sequence moved since
//     the snapshot, re-collect; trylock every frame (lock order is frame
//     lock -> notifier lock, so only trylock is legal here); busy frames are
//     skipped; a locked frame is kept only if it still belongs to this range
//     (and, for the VA entry, still backs the address the snapshot saw) —
//     the sequence alone cannot prove that;
//  3. unmap, under the notifier lock held exclusive: the notifier windows of
//     the frames' current addresses are bumped (not only the range's own:
//     after an mremap the data lives at another range's addresses), GPU
//     mappings of the frames are zapped, and CPU touches of their pages
//     wait from here on;
//  4-6. copy + commit: BatchCopier places the bytes as the CPU pages in
//     coalesced runs over parallel workers (the sim's placement allocates
//     the RAM pages, so no CPU mapping is consulted);
//  7. finalize: placed frames become RAM pages, failed ones stay on the
//     device (still valid there), every frame is unlocked; then the books
//     are updated under the notifier lock held exclusive (sequence bumped,
//     so a racing bind retries) and the placed frames are freed.
// Busy frames: under pressure a bounded number of retries, then reported
// skipped — never a spin. Teardown and discard retry, sleeping, until every
// frame of the range is free.
//
// DOC: Victims (PressurePolicy)
//
// reclaim() runs before every migration to the device. It sweeps every
// resident range each time 1/16 of device memory has arrived since the last
// sweep, and again when the migration would cross the high watermark, then
// evicting down to the low one (CLOCK without a hand: a sweep is rare next to
// accesses, and one pass keeps the order exact). A sweep reads and clears
// the device's accessed bits of each range; a range seen in use at a sweep
// after the one that first met it becomes *active* (protected). A range that
// arrives on the device is on *probation* until then. Victims, in order:
//   0. probation, idle since the last sweep: newest arrival first. A cyclic
//      sweep or a stream larger than device memory thus recycles the last
//      pages it brought in and leaves the older resident subset alone, which
//      the next pass finds resident (what LRU cannot: it evicts exactly what
//      the next pass needs first);
//   1. probation, used since the last sweep: oldest arrival first;
//   2. active: least recently used (by sweep) first;
//   3. ranges advised to prefer the device: least recently used first.
// The faulting range is never a victim, and a range whose migrate_mu is held
// elsewhere is skipped. An evicted range loses its protection.
//
// DOC: Locking
//
// Eviction: the caller holds the range's migrate_mu. reclaim() holds the
// policy's mutex (one reclaim at a time), trylocks each victim's migrate_mu
// and holds nothing else while evicting. Here: the notifier lock (shared in step 2,
// exclusive in steps 3 and 7), frame trylocks. Nothing is held across the
// copy but the frame locks, so a CPU fault on a page being evicted simply
// waits for its placement.
#include "runtime/evict.hpp"

#include <algorithm>
#include <thread>
#include <unordered_set>

namespace xesvm {
namespace {

thread_local int eviction_depth = 0;

class PlacementEngine final : public CopyEngine {
 public:
  PlacementEngine(MechanismFace& mech, std::span<const FrameId> frames) : mech_(mech), frames_(frames) {}
  CopyStatus copy(const CopyRun& run) override { return mech_.place(run.dst, run.src, run.len); }
  std::uint64_t current_address(std::size_t index) override { return mech_.frame_address(frames_[index]); }

 private:
  MechanismFace& mech_;
  std::span<const FrameId> frames_;
};

}  // namespace

EvictionScope::EvictionScope() { ++eviction_depth; }
EvictionScope::~EvictionScope() { --eviction_depth; }
bool EvictionScope::active() { return eviction_depth > 0; }

EvictionEngine::EvictionEngine(MechanismFace& mech, Notifier& notifier, BatchCopier& copier, Counters& counters,
                               unsigned retries)
    : mech_(mech), notifier_(notifier), copier_(copier), counters_(counters), retries_(retries) {}

std::vector<EvictionEngine::Candidate> EvictionEngine::pass(Range& r, const std::vector<Candidate>& cands, bool discard,
                                                            std::uint64_t seq, bool check_seq, bool* seq_moved,
                                                            EvictResult& res) {
  std::vector<Candidate> busy;
  std::vector<FrameId> frames;
  {
    std::shared_lock nl(notifier_.lock);
    if (check_seq && notifier_.windows.seq(r.start) != seq) {
      *seq_moved = true;
      return cands;
    }
    for (const Candidate& c : cands) {
      if (!mech_.frame_trylock(c.frame)) {
        busy.push_back(c);
        continue;
      }
      if (mech_.frame_owner(c.frame) != r.id || (c.expected_addr && mech_.frame_address(c.frame) != c.expected_addr)) {
        mech_.frame_unlock(c.frame);  // freed or reused meanwhile: not ours
        continue;
      }
      frames.push_back(c.frame);
    }
  }
  if (frames.empty()) return busy;

  // Step 3 is the MMU_NOTIFY_MIGRATE invalidation of migrate_device. A
  // frame's data need not sit inside r: after an mremap the old range is
  // evicted into the addresses the data moved to, where a new range may be
  // binding these very frames (its snapshot reports them as device pages).
  // So the windows bumped are those of each frame's current address, as the
  // device's migration entry records it, and the bump and the zap are one
  // step under the notifier lock: a bind that raced either finds its
  // sequence moved or is zapped; one that starts later sees the pages in
  // migration (system pages, which wait for the placement).
  std::vector<std::uint64_t> addrs(frames.size());
  {
    std::unique_lock nl(notifier_.lock);
    std::vector<std::uint64_t> windows;
    for (std::size_t i = 0; i < frames.size(); ++i) {
      addrs[i] = mech_.frame_address(frames[i]);
      const std::uint64_t w = notifier_.windows.window_of(addrs[i]);
      if (addrs[i] && (windows.empty() || windows.back() != w)) windows.push_back(w);
    }
    std::sort(windows.begin(), windows.end());
    windows.erase(std::unique(windows.begin(), windows.end()), windows.end());
    for (std::uint64_t w : windows) notifier_.windows.bump(w, w + 1);
    mech_.unmap(frames);
  }

  std::vector<std::uint8_t> done(frames.size(), 0);
  if (discard) {
    std::fill(done.begin(), done.end(), 1);
  } else {
    std::vector<CopyPage> pages(frames.size());
    // The addresses read at unmap: placement checks each against the
    // frame's entry and retries where the data lives by then.
    for (std::size_t i = 0; i < frames.size(); ++i) pages[i] = CopyPage{mech_.frame_bytes(frames[i]).data(), addrs[i]};
    PlacementEngine engine(mech_, frames);
    if (before_copy_) before_copy_(r.start);
    copier_.copy(pages, engine, done);
  }
  mech_.finalize(frames, done);

  std::vector<FrameId> freed;
  for (std::size_t i = 0; i < frames.size(); ++i) {
    if (done[i]) freed.push_back(frames[i]);
  }
  {
    std::unique_lock nl(notifier_.lock);
    notifier_.windows.bump(r.start, r.end);
    std::unordered_set<FrameId> gone(freed.begin(), freed.end());
    for (FrameId& f : r.frames) {
      if (f != kNoFrame && gone.count(f)) f = kNoFrame;
    }
  }
  if (after_finalize_) after_finalize_(freed);
  // Unlocked now and off the books: another range's pass may still trylock
  // one of these frames for a moment (a stale candidate of its snapshot; it
  // lets go when it sees the owner), and a free that meets such a lock
  // fails as a whole. Retry it: giving up would leak the frames, and on the
  // gc thread the throw would end the process.
  for (unsigned attempt = 0; !freed.empty(); ++attempt) {
    try {
      mech_.free_frames(freed);
      break;
    } catch (const Error&) {
      if (attempt >= 1'000'000) throw;
      std::this_thread::yield();
    }
  }
  res.pages_evicted += freed.size();
  counters_.pages_evicted.fetch_add(freed.size(), std::memory_order_relaxed);
  if (!discard && !freed.empty()) {
    counters_.migrations_to_system.fetch_add(1, std::memory_order_relaxed);
    counters_.bytes_to_system.fetch_add(freed.size() * kPageSize, std::memory_order_relaxed);
  }
  // Frames whose copy failed stay on the device; report them like busy ones.
  for (std::size_t i = 0; i < frames.size(); ++i) {
    if (!done[i]) busy.push_back(Candidate{frames[i], 0});
  }
  return busy;
}

EvictResult EvictionEngine::evict_allocation(Range& r, EvictMode mode) {
  EvictionScope scope;
  EvictResult res;
  const bool discard = mode == EvictMode::kDiscard;
  auto collect = [&] {
    std::vector<Candidate> c;
    for (FrameId f : mech_.frames_of(r.id)) c.push_back({f, 0});
    return c;
  };
  std::vector<Candidate> cands = collect();
  for (unsigned attempt = 0; !cands.empty(); ++attempt) {
    bool unused = false;
    std::vector<Candidate> busy = pass(r, cands, discard, 0, false, &unused, res);
    if (busy.empty()) {
      if (mode == EvictMode::kPressure) break;
      cands = collect();  // teardown ends only when the range owns nothing
      if (cands.empty()) break;
    } else if (mode == EvictMode::kPressure) {
      if (attempt >= retries_) {
        res.pages_skipped += busy.size();
        counters_.pages_evict_skipped.fetch_add(busy.size(), std::memory_order_relaxed);
        break;
      }
      cands = std::move(busy);
    } else {
      cands = collect();
    }
    ++res.retries;
    counters_.evict_retries.fetch_add(1, std::memory_order_relaxed);
    std::this_thread::sleep_for(mode == EvictMode::kPressure ? std::chrono::microseconds(50)
                                                             : std::chrono::milliseconds(1));
  }
  return res;
}

EvictResult EvictionEngine::evict_va(Range& r, std::uint64_t start, std::uint64_t end) {
  EvictionScope scope;
  EvictResult res;
  start = std::max(start, r.start);
  end = std::min(end, r.end);
  if (start >= end) return res;
  std::vector<PageSnapshot> snap((end - start) / kPageSize);
  unsigned busy_attempts = 0;
  for (unsigned round = 0; round < 1000; ++round) {
    std::uint64_t seq;
    {
      std::shared_lock nl(notifier_.lock);
      seq = notifier_.windows.seq(r.start);
    }
    mech_.snapshot_device(start, snap);  // only device pages are candidates
    std::vector<Candidate> cands;
    for (std::size_t i = 0; i < snap.size(); ++i) {
      if (snap[i].place == PagePlace::kDevice) cands.push_back({snap[i].frame, start + i * kPageSize});
    }
    if (cands.empty()) break;
    bool moved = false;
    std::vector<Candidate> busy = pass(r, cands, false, seq, true, &moved, res);
    if (!moved && busy.empty()) break;
    ++res.retries;
    counters_.evict_retries.fetch_add(1, std::memory_order_relaxed);
    if (!moved && ++busy_attempts > retries_) {
      res.pages_skipped += busy.size();
      counters_.pages_evict_skipped.fetch_add(busy.size(), std::memory_order_relaxed);
      break;
    }
    if (!moved) std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  return res;
}

std::uint64_t PressurePolicy::bytes_to_free(const DeviceMemoryUse& use, std::uint64_t need) const {
  const double total = static_cast<double>(use.total);
  if (static_cast<double>(use.used + need) <= o_.high * total) return 0;
  const double target = o_.low * total;
  const double excess = static_cast<double>(use.used + need) - target;
  return static_cast<std::uint64_t>(std::max(excess, static_cast<double>(need)));
}

std::vector<RangePtr> PressurePolicy::sweep_and_order(std::vector<Resident> resident, const Range* faulting) {
  const std::uint64_t now = now_ns();
  sweeps_.fetch_add(1, std::memory_order_relaxed);
  struct Victim {
    RangePtr r;
    int cls;
    std::uint64_t key;  // ascending within a class
  };
  std::vector<Victim> order;
  order.reserve(resident.size());
  for (Resident& c : resident) {
    Range& r = *c.range;
    if (&r == faulting) continue;
    // The sweep: read and clear the accessed bits (without them, a fault
    // since the last sweep counts as use).
    const bool used = bits_ ? bits_->test_and_clear_accessed(r.start, r.end)
                            : r.last_gpu_use.load(std::memory_order_relaxed) > last_sweep_ns_;
    if (used && bits_) r.last_gpu_use.store(now, std::memory_order_relaxed);
    const bool seen_before = r.swept.exchange(true, std::memory_order_relaxed);
    if (used && seen_before) r.active.store(true, std::memory_order_relaxed);
    const std::uint64_t arrival = r.arrival.load(std::memory_order_relaxed);
    int cls;
    std::uint64_t key;
    if (c.keep) {
      cls = 3, key = r.last_gpu_use.load(std::memory_order_relaxed);
    } else if (r.active.load(std::memory_order_relaxed)) {
      cls = 2, key = r.last_gpu_use.load(std::memory_order_relaxed);
    } else if (!used) {
      cls = 0, key = ~arrival;  // probation, idle since the last sweep: newest arrival first
    } else {
      cls = 1, key = arrival;  // probation, in use now: oldest arrival first
    }
    order.push_back({std::move(c.range), cls, key});
  }
  last_sweep_ns_ = now;
  std::stable_sort(order.begin(), order.end(),
                   [](const Victim& x, const Victim& y) { return x.cls != y.cls ? x.cls < y.cls : x.key < y.key; });
  std::vector<RangePtr> out;
  out.reserve(order.size());
  for (Victim& v : order) out.push_back(std::move(v.r));
  return out;
}

std::uint64_t PressurePolicy::reclaim(std::uint64_t need, const Range* faulting, MechanismFace& mech,
                                      EvictionEngine& evictor, const std::function<std::vector<Resident>()>& resident) {
  std::lock_guard pl(mu_);
  const DeviceMemoryUse use = mech.device_memory();
  const std::uint64_t to_free = bytes_to_free(use, need);
  const bool sweep_due = migrated_since_sweep_.load(std::memory_order_relaxed) >= use.total / kSweepsPerTurnover;
  if (to_free == 0 && !sweep_due) return 0;
  migrated_since_sweep_.store(0, std::memory_order_relaxed);
  const std::vector<RangePtr> victims = sweep_and_order(resident(), faulting);
  std::uint64_t freed = 0;
  for (const RangePtr& v : victims) {
    if (freed >= to_free) break;
    std::unique_lock m(v->migrate_mu, std::try_to_lock);
    if (!m.owns_lock()) continue;  // busy migrating: never wait on another range (ABBA)
    const EvictResult res = evictor.evict_allocation(*v, EvictMode::kPressure);
    if (res.pages_evicted) {
      on_evicted(*v);
      counters_.evictions.fetch_add(1, std::memory_order_relaxed);
    }
    freed += res.pages_evicted * kPageSize;
  }
  return freed;
}

bool PressurePolicy::on_refault(Range& r) const {
  const std::uint64_t ev = r.evicted_at.load(std::memory_order_relaxed);
  if (ev == 0) return false;
  const std::uint64_t now = now_ns();
  if (now - ev > o_.thrash_window_ns) {
    r.refaults.store(0, std::memory_order_relaxed);
    return false;
  }
  if (r.refaults.fetch_add(1, std::memory_order_relaxed) + 1 < o_.thrash_threshold) return false;
  r.refaults.store(0, std::memory_order_relaxed);
  r.cooldown_until.store(now + o_.thrash_cooldown_ns, std::memory_order_relaxed);
  counters_.thrash_events.fetch_add(1, std::memory_order_relaxed);
  return true;
}

}  // namespace xesvm
