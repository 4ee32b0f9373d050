// DOC: Overview
//
// The CPU fault service: what the service thread does with a userfaultfd
// page fault on mirrored memory (the migrate_to_ram analogue of a
// device-private page's dev_pagemap_ops).
//
//  * WP fault: a writer met the write protection of a migration to the
//    device. While the page's entry is kInbound it waits (deferred); a stale
//    protection is lifted.
//  * MISSING fault, no entry: a never-touched or discarded page gets a zero
//    page.
//  * MISSING fault on a device-resident page: the run around it is claimed
//    (DeviceEntries::claim_run), the runtime is told (kMigratedToRam; it
//    zaps the GPU PTEs of the run: the zap is the runtime's, cpu_mirror.hpp),
//    the bytes are copied home with UFFDIO_COPY in pieces of contiguous
//    frames, the entries of placed pages are released and their frames
//    freed, and the waiting threads are woken.
//
// DOC: Locking
//
// Runs on the service thread. The entries' lock only inside DeviceEntries;
// the run's frame locks (trylocked by claim_run) are held across the
// runtime's callback and the copy, and released before the frames are
// freed. A busy frame defers the fault instead of waiting.
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <thread>

#include "runtime/backends/sim/cost_model.hpp"
#include "runtime/backends/sim/cpu_mirror.hpp"
#include "runtime/backends/sim/frame_pool.hpp"

namespace xesvm::sim {

void CpuMirror::populate_absent(std::span<const std::uint64_t> pages) {
  static const std::array<std::byte, kPageSize> zeros{};
  for (std::uint64_t page : pages) {
    // A private writable page (UFFDIO_ZEROPAGE would map the shared zero
    // page, and the GPU's first write would then have to break COW).
    uffdio_copy c{};
    c.dst = page;
    c.src = reinterpret_cast<std::uint64_t>(zeros.data());
    c.len = kPageSize;
    // EEXIST: populated meanwhile; EAGAIN/ENOENT: a mapping change is in
    // flight, and the access after it faults again.
    ioctl(uffd_, UFFDIO_COPY, &c);
  }
}

int CpuMirror::zero_page(std::uint64_t page) {
  uffdio_zeropage z{};
  z.range.start = page;
  z.range.len = kPageSize;
  if (ioctl(uffd_, UFFDIO_ZEROPAGE, &z) == 0) {
    return 0;
  }
  int e = errno;
  if (e == EEXIST) {
    wake(page);
    return 0;
  }
  return e == ENOENT ? 0 : e;
}

void CpuMirror::wake(std::uint64_t page) { wake_range(page, page + kPageSize); }

void CpuMirror::wake_range(std::uint64_t start, std::uint64_t end) {
  uffdio_range r{start, end - start};
  ioctl(uffd_, UFFDIO_WAKE, &r);
}

bool CpuMirror::serve_fault(std::uint64_t page, std::uint64_t flags) {
  if (flags & UFFD_PAGEFAULT_FLAG_WP) {
    if (const auto e = entries_.lookup(page); e && e->state == DeviceEntries::State::kInbound) {
      return false;
    }
    // A stale protection (the migration that set it is over): lift and wake.
    uffdio_writeprotect wp{{page, kPageSize}, 0};
    if (uffd_ioctl(UFFDIO_WRITEPROTECT, &wp) < 0) {
      wake(page);
    }
    return true;
  }
  // The unit of migrate_to_ram: the faulting page and the device-resident
  // pages around it that belong to the same range (same owner tag; a range
  // never crosses a 2 MiB boundary), as far as they are contiguous in the
  // address space and their frames can be locked now.
  const DeviceEntries::Run claimed = entries_.claim_run(page);
  if (claimed.outcome == DeviceEntries::Run::Outcome::kNoEntry) {
    // Never touched, or discarded: a zero page. EAGAIN: the mapping is
    // changing under an event we have not applied yet; retry after it.
    cpu_faults_zero_.fetch_add(1, std::memory_order_relaxed);
    return zero_page(page) != EAGAIN;
  }
  if (claimed.outcome == DeviceEntries::Run::Outcome::kBusy) {
    return false;  // migrating or locked: defer
  }
  const std::uint64_t lo = claimed.lo, hi = claimed.hi;
  const std::vector<FrameId>& run = claimed.frames;
  // migrate_to_ram: the runtime hears first; it bumps its sequence and zaps
  // its GPU mapping of these pages only, in one step under its notifier
  // lock, so a bind racing this fault either retries or is zapped. That zap
  // is the only one (cpu_mirror.hpp): a zap here, after the runtime's,
  // would find nothing left to clear. Then the pages are copied back and
  // the frames freed.
  notify(Invalidation{InvalidationKind::kMigratedToRam, lo, hi, 0, run});
  const std::size_t n = run.size();
  // Per page: placed in RAM (by us, or a CPU page is there already), or
  // kept on the device (its copy failed; the fault is retried).
  std::vector<std::uint8_t> placed(n, 0);
  std::size_t pieces = 0;
  bool hard_error = false;
  for (std::size_t i = 0; i < n;) {
    // Pieces of frames contiguous in device memory: one UFFDIO_COPY each
    // (a range that moved as one chunk is one piece).
    std::size_t j = i + 1;
    while (j < n && frames_.data(run[j]) == frames_.data(run[j - 1]) + kPageSize) {
      ++j;
    }
    ++pieces;
    std::size_t done = i;
    bool per_page = false;
    while (done < j) {
      uffdio_copy c{};
      c.dst = lo + done * kPageSize;
      c.src = reinterpret_cast<std::uint64_t>(frames_.data(run[done]));
      c.len = (per_page ? 1 : j - done) * kPageSize;
      // Do not wake the faulting thread yet: it must find the books (frames
      // freed, counters) already updated when it resumes.
      c.mode = UFFDIO_COPY_MODE_DONTWAKE;
      int rc = 0;
      if (unsigned k = fault_copy_failures_.load(); k > 0 && fault_copy_failures_.compare_exchange_strong(k, k - 1)) {
        rc = ENOMEM;  // test hook
        c.copy = 0;
      } else if (ioctl(uffd_, UFFDIO_COPY, &c) == 0) {
        c.copy = static_cast<std::int64_t>(c.len);
      } else {
        rc = errno;
      }
      const std::size_t got = c.copy > 0 ? static_cast<std::size_t>(c.copy) / kPageSize : 0;
      for (std::size_t k = done; k < done + got; ++k) {
        placed[k] = 1;
      }
      done += got;
      if (rc == 0 || got > 0) {
        continue;
      }
      if (rc == EEXIST) {
        // A CPU page is there already: it wins (the device copy is stale).
        placed[done++] = 1;
        continue;
      }
      if (rc == ENOENT && !per_page && j - done > 1) {
        // UFFDIO_COPY wants one VMA: a run that mprotect() split in two
        // (or whose tail was unmapped) goes page by page.
        per_page = true;
        continue;
      }
      // EAGAIN/ENOENT: the mapping is changing or went away under an event
      // not applied yet: after mremap the bytes are needed at the new
      // address, so the frames keep them; the event is applied before the
      // retry. Anything else (ENOMEM and the like): the pages were not
      // placed, their bytes are only in the frames; they stay on the device
      // and the fault is retried (dropping the entries would hand the CPU
      // zero pages).
      if (rc != EAGAIN && rc != ENOENT) {
        hard_error = true;
      }
      break;
    }
    i = j;
  }
  if (hard_error) {
    fault_copy_errors_.fetch_add(1, std::memory_order_relaxed);
  }
  std::vector<FrameId> freed = entries_.release_run(claimed, placed);
  // A placed frame still carries its range's owner tag, so an eviction that
  // trylocks it between our unlock and free would take it for its own (and
  // free it too, or make our free fail on its lock). Retag it first, while
  // locked: an evictor that locks it now sees a foreign owner and lets go,
  // so a free that met such a brief lock is simply retried.
  constexpr OwnerId kBeingFreed = ~OwnerId{0};
  for (std::size_t k = 0; k < n; ++k) {
    if (placed[k]) {
      frames_.set_owner(run[k], kBeingFreed);
    }
    frames_.unlock(run[k]);
  }
  while (!freed.empty()) {
    try {
      frames_.free(freed);  // all or nothing
      break;
    } catch (const Error&) {
      std::this_thread::yield();  // an evictor holds one for its owner check
    }
  }
  if (const std::size_t moved = n - static_cast<std::size_t>(std::count(placed.begin(), placed.end(), 0))) {
    cost_.charge_migration(Migration::kToRam, moved * kPageSize, pieces);
    pages_to_ram_.fetch_add(moved, std::memory_order_relaxed);
  }
  const bool any_placed = std::find(placed.begin(), placed.end(), 1) != placed.end();
  if (!placed[(page - lo) / kPageSize]) {
    if (any_placed) {
      wake_range(lo, hi);  // other threads may wait on pages that did move
    }
    return false;
  }
  cpu_faults_device_.fetch_add(1, std::memory_order_relaxed);
  wake_range(lo, hi);
  return true;
}

}  // namespace xesvm::sim
