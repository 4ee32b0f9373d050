// DOC: Overview
//
// The GPU fault path of SvmManager, and the bind step it shares with
// prefetch: what happens between a GPU access that found no usable PTE and
// the retry that finds one.
//
// DOC: Data path (one way)
//
//   handle_gpu_fault(addr)
//    1. range:     lock_live_range() finds or inserts the range around addr
//                  (driver_mu_) and takes its migrate_mu;
//    2. check:     the CPU mapping's protection of the range, read once,
//                  refuses accesses the CPU mapping does not allow (fatal);
//    3. placement: device, unless the range cools down after thrashing or
//                  is advised to system memory (atomic advice overrides);
//    4. migrate:   migrate_range_to_device(): snapshot which pages are on
//                  the device, unbind the range (sequence bumped, the
//                  MMU_NOTIFY_MIGRATE analogue), make_room() (the pressure
//                  policy's victim loop, evict.cpp), allocate frames (one
//                  naturally aligned chunk when the whole range moves),
//                  move the system pages; device memory that cannot be had
//                  leaves the pages in RAM;
//    5. pages:     get_pages_and_bind(): record the window's sequence,
//                  snapshot the range (one page-table walk);
//    6. bind:      under the notifier lock (shared), retry from 5 if the
//                  sequence moved or a CPU mapping change is in flight;
//                  else write the GPU PTEs, read-only or not at all where
//                  the CPU mapping says so; the backend refuses the write
//                  (retry from 5) if it zapped a mapping change since.
//
// DOC: Locking
//
// Held across the path: fork_mu_ (shared) and the range's migrate_mu. Taken
// inside: driver_mu_ (advice, briefly), the notifier lock (shared for the
// sequence and the bind, exclusive for the books), the policy's mutex inside
// make_room() (victims only trylocked). Nothing waits for the backend's
// service thread while holding driver_mu_ or the notifier lock.
//
// Part of SvmManager: its header holds the contracts.
#include "runtime/svm_manager.hpp"

#include <algorithm>
#include <thread>

namespace xesvm {

using detail::hex;

void SvmManager::make_room(std::uint64_t need, const Range* faulting) {
  policy_.reclaim(need, faulting, mech_, evictor_, [this] {
    std::vector<PressurePolicy::Resident> resident;
    std::lock_guard lk(driver_mu_);  // advice
    std::shared_lock nl(notifier_.lock);
    for (const RangePtr& r : tree_.all()) {
      if (r->device_pages()) resident.push_back({r, r->advice.preferred == Location::kDevice});
    }
    return resident;
  });
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
    policy_.on_migrated(r, moved * kPageSize);
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
    bool written = true;
    if (read_write) {
      written = mech_.bind(r.start, snap);
    } else {
      // Pages the CPU may not read stay unbound (an access faults and is
      // refused); read-only pages are bound read-only.
      for (std::size_t i = 0; i < snap.size(); ++i) snap[i].writable = snap[i].writable && (access[i] & kMayWrite);
      for (std::size_t i = 0; i < snap.size() && written;) {
        if (!(access[i] & kMayRead)) {
          ++i;
          continue;
        }
        std::size_t j = i + 1;
        while (j < snap.size() && (access[j] & kMayRead)) ++j;
        written = mech_.bind(r.start + i * kPageSize, std::span<const PageSnapshot>(snap).subspan(i, j - i));
        i = j;
      }
    }
    if (!written) {
      // The backend zapped a CPU mapping change after the check above (its
      // zap, not ours: backend.hpp's Invalidation). What was written before
      // the refusal lies in a span the zap cleared or stays valid; start
      // over once the change is delivered.
      r.gpu_bound = true;  // pieces written before the refusal may stay mapped
      nl.unlock();
      counters_.bind_retries.fetch_add(1, std::memory_order_relaxed);
      std::this_thread::sleep_for(std::chrono::microseconds(20));
      continue;
    }
    r.gpu_bound = true;
    r.bound_read_write = read_write;
    return;
  }
  throw Error(Error::Code::kBusy, "GPU fault: range at " + hex(r.start) + " kept changing while binding");
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

}  // namespace xesvm
