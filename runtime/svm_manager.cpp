// DOC: Overview
//
// The user-space SVM driver. See svm_manager.hpp for the lock order. This
// file holds the GPU fault path, migration to device memory, invalidation
// handling, and the garbage collection of ranges whose CPU mapping changed.
//
// DOC: GPU fault path
//
//  1. find or insert the range around the address (driver_mu_);
//  2. take the range's migrate_mu; decide placement: system while the range
//     cools down after thrashing or is advised to system, else device;
//  3. migrate: unbind the range's GPU mapping (bumping the sequence, as the
//     kernel's MMU_NOTIFY_MIGRATE would), make room under pressure, allocate
//     frames (one naturally aligned chunk of the range's size if the whole
//     range moves), move the system pages; if device memory cannot be had,
//     map the system pages instead;
//  4. get pages: record the window's sequence, snapshot the range;
//  5. bind under the notifier lock (shared): if the sequence moved, go back
//     to 4 and count a bind retry; else write the GPU page table.
//
// DOC: Invalidation
//
// The backend's service thread calls invalidate() in event order. Under the
// notifier lock (exclusive) the windows' sequences are bumped and the GPU
// mappings of the affected ranges are zapped. Ranges whose CPU mapping
// changed (munmap, mremap, madvise(DONTNEED)) are marked unmapped and queued
// for removal; the gc thread removes them off the fault path, evicting what
// device data they still hold to wherever the device says it belongs now
// (after mremap, the new address).
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
namespace {

std::string hex(std::uint64_t v) {
  std::ostringstream os;
  os << "0x" << std::hex << v;
  return os.str();
}

void check_span(std::uint64_t start, std::size_t len, const char* what) {
  if (len == 0) throw Error(Error::Code::kInvalidArgument, std::string(what) + ": length is 0; expected > 0");
  if (start % kPageSize || len % kPageSize) {
    throw Error(Error::Code::kInvalidArgument, std::string(what) + ": [" + hex(start) + ", +" + hex(len) +
                                                   ") is not page aligned; expected 4 KiB alignment");
  }
  if (start + len < start) throw Error(Error::Code::kInvalidArgument, std::string(what) + ": span wraps around");
}

}  // namespace

SvmManager::SvmManager(MechanismFace& mech, const RuntimeOptions& options)
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
  auto r = std::make_shared<Range>(next_id_++, chunk->first, chunk->second);
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

// ---------------------------------------------------------------------------
// Fault path

void SvmManager::make_room(std::uint64_t need, const Range* faulting) {
  std::lock_guard pl(pressure_mu_);
  std::uint64_t to_free = policy_.bytes_to_free(mech_.device_memory(), need);
  if (to_free == 0) return;
  std::vector<RangePtr> victims;
  {
    std::lock_guard lk(driver_mu_);  // order_victims reads advice
    std::vector<RangePtr> resident;
    {
      std::shared_lock nl(notifier_.lock);
      for (const RangePtr& r : tree_.all()) {
        if (r->device_pages()) resident.push_back(r);
      }
    }
    victims = policy_.order_victims(std::move(resident), faulting);
  }
  std::uint64_t freed = 0;
  for (const RangePtr& v : victims) {
    if (freed >= to_free) break;
    std::unique_lock m(v->migrate_mu, std::try_to_lock);
    if (!m.owns_lock()) continue;  // busy migrating: never wait on another range (ABBA)
    EvictResult res = evictor_.evict_allocation(*v, EvictMode::kPressure);
    if (res.pages_evicted) {
      policy_.on_evicted(*v);
      counters_.evictions.fetch_add(1, std::memory_order_relaxed);
    }
    freed += res.pages_evicted * kPageSize;
  }
}

bool SvmManager::migrate_range_to_device(Range& r, std::uint64_t* moved_bytes, std::uint64_t lo, std::uint64_t hi) {
  std::vector<PageSnapshot> snap(r.pages());
  mech_.snapshot_device(r.start, snap);  // which pages are on the device; migrate_to_device reads the rest
  std::vector<std::uint64_t> addrs;
  std::vector<std::size_t> stale;  // device pages of this range the books say are in RAM
  {
    std::shared_lock nl(notifier_.lock);
    for (std::size_t i = 0; i < snap.size(); ++i) {
      if (snap[i].place != PagePlace::kDevice) {
        addrs.push_back(r.start + i * kPageSize);
      } else if (r.frames[i] == kNoFrame) {
        stale.push_back(i);
      }
    }
  }
  if (!stale.empty()) {
    // A CPU fault that took pages off the books and then could not copy
    // them (a failed or interrupted placement) left them on the device:
    // the device's view is the truth. A frame that is locked may be on its
    // way home right now (the books are then right): only an idle frame
    // still tagged with this range is taken back.
    std::unique_lock nl(notifier_.lock);
    for (std::size_t i : stale) {
      const FrameId f = snap[i].frame;
      if (r.frames[i] != kNoFrame || !mech_.frame_trylock(f)) continue;
      if (mech_.frame_owner(f) == r.id) r.frames[i] = f;
      mech_.frame_unlock(f);
    }
  }
  if (addrs.empty()) return true;
  if (policy_.on_refault(r)) return false;  // thrashing: cool down in RAM

  // The GPU must stop reading the system pages before they go away.
  {
    std::unique_lock nl(notifier_.lock);
    notifier_.windows.bump(r.start, r.end);
    mech_.unbind(r.start, r.end);
    r.gpu_bound = false;
  }
  const std::uint64_t need = addrs.size() * kPageSize;
  make_room(need, &r);
  std::optional<std::vector<FrameId>> frames;
  if (addrs.size() == r.pages()) frames = mech_.alloc_frames(r.size(), r.size(), r.id);
  if (!frames) frames = mech_.alloc_frames(need, kPageSize, r.id);
  if (!frames) {
    make_room(need + r.size(), &r);  // one more try after a harder squeeze
    frames = mech_.alloc_frames(need, kPageSize, r.id);
    if (!frames) return false;
  }
  const std::vector<FrameId> allocated = *frames;
  std::size_t moved = mech_.migrate_to_device(addrs, *frames);
  std::vector<FrameId> unused;  // pages unmapped meanwhile: their frames go back
  {
    std::unique_lock nl(notifier_.lock);
    for (std::size_t i = 0; i < addrs.size(); ++i) {
      FrameId f = (*frames)[i];
      if (f == kNoFrame) {
        unused.push_back(allocated[i]);
        continue;
      }
      r.frames[(addrs[i] - r.start) / kPageSize] = f;
      if (moved_bytes) {
        const std::uint64_t a = std::max(addrs[i], lo), b = std::min(addrs[i] + kPageSize, hi);
        if (a < b) *moved_bytes += b - a;
      }
    }
  }
  if (!unused.empty()) mech_.free_frames(unused);
  if (moved) {
    counters_.migrations_to_device.fetch_add(1, std::memory_order_relaxed);
    counters_.bytes_to_device.fetch_add(moved * kPageSize, std::memory_order_relaxed);
  }
  return true;
}

namespace {

// Per page of [start, start + n pages): bit 0 the CPU may read it, bit 1 it
// may write it.
constexpr std::uint8_t kMayRead = 1, kMayWrite = 2;
std::vector<std::uint8_t> page_access(const std::vector<CpuProtection>& prot, std::uint64_t start, std::size_t n) {
  std::vector<std::uint8_t> acc(n, 0);
  for (const CpuProtection& p : prot) {
    const std::uint8_t bits = (p.readable ? kMayRead : 0) | (p.readable && p.writable ? kMayWrite : 0);
    for (std::uint64_t a = std::max(p.start, start); a < std::min(p.end, start + n * kPageSize); a += kPageSize) {
      acc[(a - start) / kPageSize] = bits;
    }
  }
  return acc;
}

}  // namespace

void SvmManager::check_cpu_protection() {
  std::vector<RangePtr> bound;
  std::uint64_t lo = ~std::uint64_t{0}, hi = 0;
  {
    std::lock_guard lk(driver_mu_);
    // Exclusive: a binder sets gpu_bound under the shared lock (its range's
    // migrate_mu keeps binders of one range apart), so a reader that holds
    // neither must exclude binders.
    std::unique_lock nl(notifier_.lock);
    for (const RangePtr& r : tree_.all()) {
      if (!r->gpu_bound) continue;
      bound.push_back(r);
      lo = std::min(lo, r->start);
      hi = std::max(hi, r->end);
    }
  }
  if (bound.empty()) return;
  const std::vector<CpuProtection> prot = mech_.cpu_protection(lo, hi);
  for (const RangePtr& r : bound) {
    // Read-write in full, as at its bind: nothing to do. Anything else may
    // have been tightened by mprotect() since (no event tells us): the next
    // access faults and binds what the mapping allows now.
    std::uint64_t covered = r->start;
    for (const CpuProtection& p : prot) {
      if (p.end <= covered || p.start > covered) continue;
      if (!p.readable || !p.writable) break;
      covered = p.end;
      if (covered >= r->end) break;
    }
    std::unique_lock nl(notifier_.lock);
    if (covered >= r->end && r->bound_read_write) continue;
    if (!r->gpu_bound) continue;
    notifier_.windows.bump(r->start, r->end);
    mech_.unbind(r->start, r->end);
    r->gpu_bound = false;
  }
}

void SvmManager::get_pages_and_bind(Range& r, const std::vector<CpuProtection>* prot) {
  std::vector<PageSnapshot> snap(r.pages());
  // mprotect() raises no event: the protection is read at every fault (the
  // caller may pass what it read), and each launch drops binds it no longer
  // allows (check_cpu_protection()).
  const std::vector<std::uint8_t> access =
      page_access(prot ? *prot : mech_.cpu_protection(r.start, r.end), r.start, r.pages());
  const bool read_write =
      std::all_of(access.begin(), access.end(), [](std::uint8_t a) { return a == (kMayRead | kMayWrite); });
  for (unsigned attempt = 0; attempt < 10000; ++attempt) {
    std::uint64_t seq;
    {
      std::shared_lock nl(notifier_.lock);
      if (r.unmapped) return;
      seq = notifier_.windows.seq(r.start);
    }
    mech_.snapshot(r.start, snap);
    if (before_bind_) before_bind_(r.start);
    std::shared_lock nl(notifier_.lock);
    if (r.unmapped) return;
    if (notifier_.windows.seq(r.start) != seq) {
      counters_.bind_retries.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (mech_.cpu_events_pending()) {
      // A mapping change is on its way to invalidate(): the snapshot may
      // describe a mapping that is gone. Let it arrive, then start over.
      nl.unlock();
      counters_.bind_retries.fetch_add(1, std::memory_order_relaxed);
      std::this_thread::sleep_for(std::chrono::microseconds(20));
      continue;
    }
    if (read_write) {
      mech_.bind(r.start, snap);
    } else {
      // Pages the CPU may not read stay unbound (an access faults and is
      // refused); read-only pages are bound read-only.
      for (std::size_t i = 0; i < snap.size(); ++i) snap[i].writable = snap[i].writable && (access[i] & kMayWrite);
      for (std::size_t i = 0; i < snap.size();) {
        if (!(access[i] & kMayRead)) {
          ++i;
          continue;
        }
        std::size_t j = i + 1;
        while (j < snap.size() && (access[j] & kMayRead)) ++j;
        mech_.bind(r.start + i * kPageSize, std::span<const PageSnapshot>(snap).subspan(i, j - i));
        i = j;
      }
    }
    r.gpu_bound = true;
    r.bound_read_write = read_write;
    return;
  }
  throw Error(Error::Code::kBusy, "GPU fault: range at " + hex(r.start) + " kept changing while binding");
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

bool SvmManager::handle_gpu_fault(std::uint64_t addr, Access access) {
  (void)access;
  counters_.gpu_faults.fetch_add(1, std::memory_order_relaxed);
  std::shared_lock fork_guard(fork_mu_);
  std::unique_lock<std::mutex> m;
  RangePtr r = lock_live_range(addr, m);
  // Not SVM memory -- unless a mapping change (mremap to here, a new mirror)
  // is still on its way to invalidate(). Wait for it, bounded.
  for (unsigned waits = 0; !r && mech_.cpu_events_pending() && waits < 50000; ++waits) {
    std::this_thread::sleep_for(std::chrono::microseconds(20));
    r = lock_live_range(addr, m);
  }
  if (!r) return false;
  // Device access obeys the CPU mapping's protection, as HMM's does: a
  // GPU access the mapping does not allow is a fatal GPU fault.
  // One read of the range's protection serves the check and the bind.
  const std::uint64_t page = addr & ~std::uint64_t(kPageSize - 1);
  const std::vector<CpuProtection> range_prot = mech_.cpu_protection(r->start, r->end);
  std::vector<CpuProtection> prot;
  for (const CpuProtection& p : range_prot) {
    if (p.start <= page && page < p.end) prot.push_back(p);
  }
  if (!prot.empty()) {  // no mapping at all: the migration finds nothing to move
    const char* what = access == Access::kRead ? "read" : access == Access::kWrite ? "write" : "atomic";
    if (!prot[0].readable) {
      throw Error(Error::Code::kDeviceLost, std::string("GPU ") + what + " at " + hex(addr) +
                                                ": the CPU maps the page PROT_NONE; a GPU access the CPU "
                                                "mapping does not allow is a fatal GPU fault");
    }
    if (access != Access::kRead && !prot[0].writable) {
      throw Error(Error::Code::kDeviceLost, std::string("GPU ") + what + " at " + hex(addr) +
                                                ": the CPU maps the page read-only; a GPU write to read-only "
                                                "memory is a fatal GPU fault");
    }
  }
  Advice advice;
  {
    std::lock_guard lk(driver_mu_);
    advice = r->advice;
  }
  // Atomic advice places the range on the device whatever else holds (the
  // make_device_exclusive analogue: device atomics then act on frames).
  const bool to_device = advice.atomic || (!policy_.cooling(*r) && advice.preferred != Location::kSystem);
  if (to_device) migrate_range_to_device(*r);  // false: fall back to system pages
  get_pages_and_bind(*r, &range_prot);
  r->last_gpu_use.store(PressurePolicy::now_ns(), std::memory_order_relaxed);
  return true;
}

// ---------------------------------------------------------------------------
// Invalidation and garbage collection

void SvmManager::invalidate(const Invalidation& inv) {
  counters_.invalidations.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lk(driver_mu_);
  std::unique_lock nl(notifier_.lock);
  notifier_.windows.bump(inv.start, inv.end);
  std::vector<RangePtr> hit = tree_.overlapping(inv.start, inv.end);
  std::unordered_set<FrameId> moving;  // kMigratedToRam: the frames going home
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
    mech_.unbind(r->start, r->end);
    r->gpu_bound = false;
    if (!r->unmapped) {
      r->unmapped = true;
      std::lock_guard g(gc_mu_);
      gc_queue_.push_back(r);
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
  gc_cv_.notify_one();
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
