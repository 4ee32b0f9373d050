// DOC: Overview
//
// SvmManager, the user-space SVM driver: the part that manages ranges and
// mirrors and implements the policy face. The GPU fault path and the bind
// step are in gpu_fault.cpp, invalidation and garbage collection in
// invalidation.cpp, eviction and the pressure policy in evict.cpp.
//
// DOC: What this file holds
//
//  - construction, teardown (detach, evict_all);
//  - the registry of mirrored regions and the range tree: find_or_insert()
//    (ranges are created on the first fault inside a mirror, sized by
//    RangeTree::choose_chunk), lock_live_range() (the range with its
//    migrate_mu, removing ranges whose CPU mapping changed on the way),
//    remove_range(), end_mirror();
//  - the policy face: advise, prefetch (to the device: the fault path's
//    migrate + bind per range; to system: evict by VA), evict (range
//    parallel on the copier's workers), residency, stats.
//
// DOC: Locking
//
// The order of svm_manager.hpp: fork_mu_ -> Range::migrate_mu -> frame locks
// -> driver_mu_ -> notifier lock. The registry and the tree are guarded by
// driver_mu_; Range::frames and the binding state by the notifier lock.
//
// DOC: Examples
//
//   SvmManager m(mech, options);
//   m.mirror(base, len);                       // GPU may now touch [base, +len)
//   engine.set_fault_handler(&m);              // GPU faults come here
//   m.prefetch(base, len, Location::kDevice);  // or let faults migrate
//   m.evict(base, len);                        // back to RAM
//   m.unmirror(base, len);
#include "runtime/svm_manager.hpp"

#include <algorithm>
#include <cstdio>
#include <sstream>
#include <thread>
#include <unordered_set>

namespace xesvm {

std::string detail::hex(std::uint64_t v) {
  std::ostringstream os;
  os << "0x" << std::hex << v;
  return os.str();
}

using detail::hex;

namespace {

void check_span(std::uint64_t start, std::size_t len, const char* what) {
  if (len == 0) throw Error(Error::Code::kInvalidArgument, std::string(what) + ": length is 0; expected > 0");
  if (start % kPageSize || len % kPageSize) {
    throw Error(Error::Code::kInvalidArgument, std::string(what) + ": [" + hex(start) + ", +" + hex(len) +
                                                   ") is not page aligned; expected 4 KiB alignment");
  }
  if (start + len < start) throw Error(Error::Code::kInvalidArgument, std::string(what) + ": span wraps around");
}

}  // namespace

SvmManager::SvmManager(MechanismFace& mech, const RuntimeOptions& options, AccessedBits* accessed)
    : mech_(mech),
      options_(options),
      notifier_(options.notifier_window),
      copier_(BatchCopyOptions{std::max(1u, options.copy_workers), options.copy_serial_threshold, 2u << 20, true}),
      evictor_(mech, notifier_, copier_, counters_, options.evict_retries),
      policy_({options.high_watermark, options.low_watermark, options.thrash_threshold, options.thrash_window_ns,
               options.thrash_cooldown_ns},
              counters_) {
  if (!(options.low_watermark > 0 && options.low_watermark <= options.high_watermark &&
        options.high_watermark <= 1.0)) {
    throw Error(Error::Code::kInvalidArgument, "watermarks: expected 0 < low <= high <= 1");
  }
  policy_.set_accessed_bits(accessed);
  gc_ = std::jthread([this](std::stop_token st) { gc_loop(st); });
}

SvmManager::~SvmManager() {
  gc_.request_stop();
  gc_cv_.notify_all();
  if (gc_.joinable()) gc_.join();
}

void SvmManager::detach() {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> left;
  {
    std::lock_guard lk(driver_mu_);
    left.assign(mirrors_.begin(), mirrors_.end());
  }
  for (auto [start, end] : left) {
    try {
      end_mirror(start, end - start, EvictMode::kTeardown);
    } catch (const Error&) {  // unmapped or remapped meanwhile: nothing left to stop
    }
  }
  gc_.request_stop();
  gc_cv_.notify_all();
  if (gc_.joinable()) gc_.join();
}

// ---------------------------------------------------------------------------
// Ranges and mirrors

bool SvmManager::find_mirror(std::uint64_t addr, std::uint64_t* lo, std::uint64_t* hi) const {
  // The registry of CPU mappings: eviction must never come here.
  if (EvictionScope::active()) counters_.cpu_mapping_lookups_in_eviction.fetch_add(1);
  auto it = mirrors_.upper_bound(addr);
  if (it == mirrors_.begin()) return false;
  --it;
  if (addr >= it->second) return false;
  *lo = it->first;
  *hi = it->second;
  return true;
}

RangePtr SvmManager::find_or_insert(std::uint64_t addr) {
  std::lock_guard lk(driver_mu_);
  if (RangePtr r = tree_.find(addr)) return r;
  std::uint64_t lo, hi;
  if (!find_mirror(addr, &lo, &hi)) return nullptr;
  auto chunk = tree_.choose_chunk(addr, lo, hi, notifier_.windows.window_size());
  if (!chunk) return nullptr;
  auto r = std::allocate_shared<Range>(std::pmr::polymorphic_allocator<Range>(range_mem_), next_id_++, chunk->first,
                                       chunk->second);
  for (const AdviceSpan& a : advice_) {
    if (a.start <= r->start && r->start < a.end) r->advice = a.advice;
  }
  tree_.insert(r);
  return r;
}

std::vector<RangePtr> SvmManager::ranges_in(std::uint64_t start, std::uint64_t end) const {
  std::lock_guard lk(driver_mu_);
  return tree_.overlapping(start, end);
}

std::size_t SvmManager::range_count() const {
  std::lock_guard lk(driver_mu_);
  return tree_.size();
}

void SvmManager::mirror(std::uint64_t start, std::size_t len) {
  check_span(start, len, "mirror");
  // The backend first: it applies the CPU events still pending (an earlier
  // mapping at these addresses may have been unmapped without the runtime
  // having heard of it yet, which would make the check below see a stale
  // mirror) and refuses regions it mirrors already.
  mech_.mirror(start, len, *this);
  std::lock_guard lk(driver_mu_);
  auto it = mirrors_.upper_bound(start + len - 1);
  if (it != mirrors_.begin() && std::prev(it)->second > start) {
    const std::uint64_t other = std::prev(it)->first;
    mech_.unmirror(start, len);
    throw Error(Error::Code::kInvalidArgument, "mirror: [" + hex(start) + ", +" + hex(len) +
                                                   ") overlaps the mirrored region at " + hex(other) +
                                                   "; expected a region not mirrored yet");
  }
  mirrors_[start] = start + len;
}

void SvmManager::remove_range(const RangePtr& r, EvictMode mode) {
  std::lock_guard m(r->migrate_mu);
  {
    std::unique_lock nl(notifier_.lock);
    // A range whose CPU mapping changed (moved by mremap, say) may hold
    // bytes that now belong at other addresses: they are placed there, not
    // discarded, whoever frees the addresses the range was made for.
    if (r->unmapped && mode == EvictMode::kDiscard) mode = EvictMode::kTeardown;
    r->unmapped = true;
    notifier_.windows.bump(r->start, r->end);
    mech_.unbind(r->start, r->end);
    r->gpu_bound = false;
  }
  evictor_.evict_allocation(*r, mode);
  std::lock_guard lk(driver_mu_);
  tree_.erase(*r);
}

void SvmManager::require_mirror(std::uint64_t start, std::size_t len, const char* what) const {
  check_span(start, len, what);
  std::lock_guard lk(driver_mu_);
  auto it = mirrors_.find(start);
  if (it == mirrors_.end() || it->second != start + len) {
    throw Error(Error::Code::kInvalidArgument, std::string(what) + ": [" + hex(start) + ", +" + hex(len) +
                                                   ") is not a mirrored region; expected the exact "
                                                   "region passed to mirror()");
  }
}

// Ending a mirror: the region leaves the registry first, so that no GPU
// fault can insert a range there any more; then the ranges are torn down
// (each waits for a fault that holds it); then the backend stops mirroring.
// In the other order a fault between the last two steps re-inserted a range
// and migrated it, and the backend then dropped the frames' entries: the
// bytes were lost and the frames leaked.
void SvmManager::end_mirror(std::uint64_t start, std::size_t len, EvictMode mode) {
  {
    std::lock_guard lk(driver_mu_);
    mirrors_.erase(start);
  }
  for (const RangePtr& r : ranges_in(start, start + len)) remove_range(r, mode);
  if (before_unregister_) before_unregister_(start);
  mech_.unmirror(start, len);
}

void SvmManager::unmirror(std::uint64_t start, std::size_t len) {
  require_mirror(start, len, "unmirror");
  end_mirror(start, len, EvictMode::kTeardown);
}

void SvmManager::discard(std::uint64_t start, std::size_t len) {
  check_span(start, len, "discard");
  end_mirror(start, len, EvictMode::kDiscard);
}

void SvmManager::discard_mirror(std::uint64_t start, std::size_t len) {
  require_mirror(start, len, "discard");
  discard(start, len);
}

void SvmManager::evict_all() {
  for (const RangePtr& r : ranges_in(0, ~std::uint64_t{0})) {
    std::lock_guard m(r->migrate_mu);
    evictor_.evict_allocation(*r, EvictMode::kTeardown);
  }
}

RangePtr SvmManager::lock_live_range(std::uint64_t addr, std::unique_lock<std::mutex>& held) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    RangePtr r = find_or_insert(addr);
    if (!r) return nullptr;
    std::unique_lock m(r->migrate_mu);
    bool unmapped;
    {
      std::shared_lock nl(notifier_.lock);
      unmapped = r->unmapped;
    }
    if (!unmapped) {
      held = std::move(m);
      return r;
    }
    // Its CPU mapping changed; remove it now rather than wait for the gc.
    m.unlock();
    remove_range(r, EvictMode::kTeardown);
  }
  throw Error(Error::Code::kBusy, "range at " + hex(addr) + " kept being unmapped");
}

// ---------------------------------------------------------------------------
// Policy face: advice, prefetch, evict, residency

bool SvmManager::any_mirror_in(std::uint64_t start, std::uint64_t end) const {
  std::lock_guard lk(driver_mu_);
  auto it = mirrors_.lower_bound(end);
  return (it != mirrors_.begin() && std::prev(it)->second > start) || !tree_.overlapping(start, end).empty();
}

bool SvmManager::advise(std::uint64_t start, std::size_t len, const Advice& advice) {
  check_span(start, len, "advise");
  if (advice.preferred != Location::kNone && advice.preferred != Location::kSystem &&
      advice.preferred != Location::kDevice) {
    throw Error(Error::Code::kInvalidArgument, "advise: preferred location " +
                                                   std::to_string(static_cast<unsigned>(advice.preferred)) +
                                                   " is not none, system or device; expected a Location value");
  }
  if (!any_mirror_in(start, start + len)) {
    throw Error(Error::Code::kInvalidArgument,
                "advise: [" + hex(start) + ", +" + hex(len) + ") is not in a mirrored region; expected SVM memory");
  }
  std::lock_guard lk(driver_mu_);
  advice_.push_back({start, start + len, advice});
  for (const RangePtr& r : tree_.overlapping(start, start + len)) r->advice = advice;
  // Preferred location and atomic placement are applied; read-mostly would
  // need a duplicate in system memory that stays valid for CPU reads while
  // the device holds the range, which the sim cannot keep coherent.
  return !advice.read_mostly;
}

std::uint64_t SvmManager::prefetch(std::uint64_t start, std::size_t len, Location where) {
  check_span(start, len, "prefetch");
  return prefetch_bytes(start, start + len, where);
}

std::uint64_t SvmManager::prefetch_bytes(std::uint64_t first, std::uint64_t last, Location where) {
  if (where != Location::kSystem && where != Location::kDevice) {
    throw Error(Error::Code::kInvalidArgument,
                "prefetch: location " +
                    (where == Location::kNone ? std::string("none") : std::to_string(static_cast<unsigned>(where))) +
                    " is not device or system; expected Location::kDevice or "
                    "Location::kSystem");
  }
  const std::uint64_t start = first & ~std::uint64_t(kPageSize - 1);
  const std::uint64_t end = (last + kPageSize - 1) & ~std::uint64_t(kPageSize - 1);
  check_span(start, end - start, "prefetch");
  if (where == Location::kSystem) {
    // Counted in whole pages; the partial pages at the edges are evicted
    // on their own so that only their share of [first, last) is counted.
    if (!any_mirror_in(start, end)) {
      throw Error(Error::Code::kInvalidArgument, "prefetch: [" + hex(first) + ", +" + hex(last - first) +
                                                     ") is not in a mirrored region; expected SVM memory");
    }
    std::uint64_t moved = 0;
    auto part = [&](std::uint64_t a, std::uint64_t b) {
      if (a >= b) return;
      const std::uint64_t pa = a & ~std::uint64_t(kPageSize - 1);
      const std::uint64_t pb = (b + kPageSize - 1) & ~std::uint64_t(kPageSize - 1);
      const EvictResult res = evict(pa, pb - pa);
      moved += (pb - pa == kPageSize) ? (res.pages_evicted ? b - a : 0) : res.pages_evicted * kPageSize;
    };
    const std::uint64_t head_end = std::min(last, start + kPageSize);
    part(first, head_end);
    if (head_end < last) {
      const std::uint64_t tail_start = std::max(head_end, (last - 1) & ~std::uint64_t(kPageSize - 1));
      part(head_end, tail_start);
      part(tail_start, last);
    }
    return moved;
  }
  std::shared_lock fork_guard(fork_mu_);
  std::uint64_t moved = 0;
  bool any = false;
  for (std::uint64_t a = start; a < end;) {
    std::unique_lock<std::mutex> m;
    RangePtr r = lock_live_range(a, m);
    if (!r) {
      // Pages outside every mirror (such as the partial edge pages of a
      // mirrored malloc'd buffer) stay in system memory.
      a += kPageSize;
      continue;
    }
    any = true;
    r->cooldown_until.store(0, std::memory_order_relaxed);  // an explicit request wins over heuristics
    r->evicted_at.store(0, std::memory_order_relaxed);
    if (!migrate_range_to_device(*r, &moved, first, last)) {
      throw Error(Error::Code::kOutOfMemory, "prefetch: device memory exhausted at " + hex(a) + "; expected room for " +
                                                 hex(r->size()) + " bytes");
    }
    get_pages_and_bind(*r);
    r->last_gpu_use.store(PressurePolicy::now_ns(), std::memory_order_relaxed);
    a = r->end;
  }
  if (!any) {
    throw Error(Error::Code::kInvalidArgument, "prefetch: [" + hex(first) + ", +" + hex(last - first) +
                                                   ") is not in a mirrored region; expected SVM memory");
  }
  return moved;
}

EvictResult SvmManager::evict(std::uint64_t start, std::size_t len) {
  check_span(start, len, "evict");
  const std::vector<RangePtr> rs = ranges_in(start, start + len);
  if (rs.empty() && !any_mirror_in(start, start + len)) {
    throw Error(Error::Code::kInvalidArgument,
                "evict: [" + hex(start) + ", +" + hex(len) + ") is not in a mirrored region; expected SVM memory");
  }
  std::vector<EvictResult> res(rs.size());
  auto one = [&](std::size_t i) {
    std::lock_guard m(rs[i]->migrate_mu);
    res[i] = evictor_.evict_va(*rs[i], start, start + len);
  };
  // Ranges are independent (each has its own lock and frames), and one
  // range is often one 2 MiB run, which the batch copy cannot split: a span
  // of many ranges is evicted range-parallel on the copier's workers.
  // Those workers are also where every eviction copies, and a thread that
  // holds a range's migrate_mu (a fault evicting a victim, another evict())
  // waits for them to copy: a task there that waited for such a lock could
  // fill every worker and never be released. So the tasks only trylock;
  // ranges busy at that moment are evicted afterwards on this thread,
  // outside the workers, where waiting for their lock is harmless.
  std::uint64_t span = 0;
  for (const RangePtr& r : rs) span += std::min(r->end, start + len) - std::max(r->start, start);
  if (rs.size() > 1 && span >= copier_.options().serial_threshold) {
    std::vector<std::uint8_t> busy(rs.size(), 0);
    copier_.for_each(rs.size(), [&](std::size_t i) {
      std::unique_lock m(rs[i]->migrate_mu, std::try_to_lock);
      if (!m.owns_lock()) {
        busy[i] = 1;
        return;
      }
      res[i] = evictor_.evict_va(*rs[i], start, start + len);
    });
    for (std::size_t i = 0; i < rs.size(); ++i) {
      if (busy[i]) one(i);
    }
  } else {
    for (std::size_t i = 0; i < rs.size(); ++i) one(i);
  }
  EvictResult total;
  for (const EvictResult& r : res) {
    total.pages_evicted += r.pages_evicted;
    total.pages_skipped += r.pages_skipped;
    total.retries += r.retries;
  }
  return total;
}

Residency SvmManager::residency(std::uint64_t start, std::size_t len) {
  Residency res;
  std::vector<RangePtr> rs = ranges_in(start, start + len);
  std::shared_lock nl(notifier_.lock);
  for (const RangePtr& r : rs) {
    for (std::size_t i = 0; i < r->pages(); ++i) {
      std::uint64_t a = r->start + i * kPageSize;
      if (a >= start && a < start + len && r->frames[i] != kNoFrame) res.device_bytes += kPageSize;
    }
  }
  res.system_bytes = len - std::min<std::uint64_t>(len, res.device_bytes);
  return res;
}

void SvmManager::add_stats(Stats& s) const {
  s.gpu_faults = counters_.gpu_faults;
  s.migrations_to_device = counters_.migrations_to_device;
  s.bytes_to_device = counters_.bytes_to_device;
  s.migrations_to_system = counters_.migrations_to_system;
  s.bytes_to_system = counters_.bytes_to_system;
  s.evictions = counters_.evictions;
  s.pages_evicted = counters_.pages_evicted;
  s.pages_evict_skipped = counters_.pages_evict_skipped;
  s.invalidations = counters_.invalidations;
  s.bind_retries = counters_.bind_retries;
  s.thrash_events = counters_.thrash_events;
  s.cpu_mapping_lookups_in_eviction = counters_.cpu_mapping_lookups_in_eviction;
  DeviceMemoryUse use = mech_.device_memory();
  s.device_bytes_in_use = use.used;
  s.device_bytes_high_water = use.high_water;
  s.device_bytes_total = use.total;
}

}  // namespace xesvm
