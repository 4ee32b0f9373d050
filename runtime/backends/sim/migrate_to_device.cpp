// DOC: Overview
//
// Snapshots (the hmm_range_fault analogue) and the migration of system
// pages to device frames. Both read the device-private entries
// (DeviceEntries) and, where needed, /proc/self/pagemap (process_memory.hpp).
//
// DOC: Moving a page to the device (migrate_to_device)
//
//  1. enter a device-private entry in state kInbound (CPU faults on it wait);
//  2. write-protect the page: CPU writers now wait in a WP fault;
//  3. copy the bytes into the frame with process_vm_readv (never a plain
//     dereference: the application may unmap the page at any time);
//  4. mark the page as being dropped by us, MADV_DONTNEED it, retire the
//     mark — the reader tells our REMOVE events from the application's by
//     that mark, and forgets a retired mark before the first read that
//     cannot carry its events;
//  5. set the entry kResident and lift the write protection, which wakes the
//     waiting writers; they fault again and take the page back.
//
// DOC: Locking
//
// The entries' lock is taken inside DeviceEntries, for each table update
// only; drop_mu_ around the mark of step 4 and its retirement. Nothing
// waits for the reader after the drop, and no lock is held across
// write-protect, copy or madvise.
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "runtime/backends/sim/cost_model.hpp"
#include "runtime/backends/sim/cpu_mirror.hpp"
#include "runtime/backends/sim/frame_pool.hpp"
#include "runtime/backends/sim/process_memory.hpp"

namespace xesvm::sim {

// A page with a device-private entry that is not being moved home: a device
// page. Being moved to RAM (the migration entry): its frame is about to be
// freed, so a GPU binding must not point at it; the CPU page is reported
// instead, and an access through it waits for the placement, like
// hmm_range_fault waiting on a migration entry.
void CpuMirror::snapshot_device(std::uint64_t start, std::span<PageSnapshot> out) {
  entries_.fill_snapshot(start, out, nullptr, std::nullopt);
}

void CpuMirror::snapshot(std::uint64_t start, std::span<PageSnapshot> out) {
  // Every page in a device frame (a range on the device, the usual bind
  // after a migration): the entries say it all, no page-table read.
  if (entries_.snapshot_all_device(start, out)) {
    return;
  }
  // The page tables are read before the entries: a page moved to RAM in
  // between (placed, then its entry erased) would look absent with no entry.
  // Such moves bump the placement count; read again if one happened
  // meanwhile (at most 8 times, then the last read stands).
  std::vector<bool> present;
  for (unsigned attempt = 0;; ++attempt) {
    const std::uint64_t before = entries_.placements();
    read_present(start, out.size(), present);
    pagemap_reads_.fetch_add(1, std::memory_order_relaxed);
    if (entries_.fill_snapshot(start, out, &present,
                               attempt == 8 ? std::nullopt : std::optional<std::uint64_t>(before))) {
      return;
    }
  }
}

std::size_t CpuMirror::migrate_to_device(std::span<const std::uint64_t> addrs, std::span<FrameId> frames) {
  const std::size_t n = addrs.size();
  std::vector<bool> ok = entries_.begin_inbound(addrs, frames);
  // Runs of consecutive addresses.
  std::vector<std::pair<std::size_t, std::size_t>> runs;  // [first, count)
  for (std::size_t i = 0; i < n;) {
    if (!ok[i]) {
      ++i;
      continue;
    }
    std::size_t j = i + 1;
    while (j < n && ok[j] && addrs[j] == addrs[j - 1] + kPageSize) {
      ++j;
    }
    runs.emplace_back(i, j - i);
    i = j;
  }
  std::uint64_t bytes = 0;
  std::vector<bool> present;
  for (auto [first, count] : runs) {
    const std::uint64_t start = addrs[first];
    const std::uint64_t len = count * kPageSize;
    // Which pages exist, read *before* write-protecting: protecting a page
    // that was never touched leaves a uffd-wp marker that pagemap reports as
    // swapped, and reading such a page would fault back into us. The pages
    // cannot change state meanwhile: every fault on them waits (kInbound).
    read_present(start, count, present);
    pagemap_reads_.fetch_add(1, std::memory_order_relaxed);
    const std::uint64_t events_before = events_read_.load();
    uffdio_writeprotect wp{{start, len}, UFFDIO_WRITEPROTECT_MODE_WP};
    if (uffd_ioctl(UFFDIO_WRITEPROTECT, &wp) < 0) {
      for (std::size_t k = first; k < first + count; ++k) {
        ok[k] = false;
      }
      continue;
    }
    std::vector<iovec> local, remote;
    for (std::size_t k = 0; k < count; ++k) {
      std::byte* dst = frames_.data(frames[first + k]);
      if (!present[k]) {
        std::memset(dst, 0, kPageSize);
        continue;
      }
      local.push_back({dst, kPageSize});
      // The application's address, read by the kernel: never dereferenced here.
      remote.push_back(
          {reinterpret_cast<void*>(start + k * kPageSize), kPageSize});  // NOLINT(performance-no-int-to-ptr)
    }
    // process_vm_readv takes at most IOV_MAX vectors per call.
    for (std::size_t off = 0; off < local.size(); off += 512) {
      std::size_t cnt = std::min<std::size_t>(512, local.size() - off);
      ssize_t got = process_vm_readv(getpid(), local.data() + off, cnt, remote.data() + off, cnt, 0);
      std::size_t good = got < 0 ? 0 : static_cast<std::size_t>(got) / kPageSize;
      for (std::size_t v = good; v < cnt; ++v) {
        std::uint64_t a = reinterpret_cast<std::uint64_t>(remote[off + v].iov_base);
        ok[first + (a - start) / kPageSize] = false;
      }
    }
    // The pages may have been unmapped meanwhile and something new mapped
    // there (events arrive after the fact): never drop someone else's pages.
    // Nor drop pages whose bytes did not reach their frame: a run with an
    // unreadable page stays in RAM as a whole.
    const bool all_read =
        std::all_of(ok.begin() + static_cast<std::ptrdiff_t>(first),
                    ok.begin() + static_cast<std::ptrdiff_t>(first + count), [](bool b) { return b; });
    if (!all_read) {
      unreadable_runs_.fetch_add(1, std::memory_order_relaxed);
    }
    if (!all_read || mapping_changed_since(events_before, start, start + len)) {
      for (std::size_t k = first; k < first + count; ++k) {
        ok[k] = false;
      }
      continue;
    }
    {
      std::lock_guard lk(drop_mu_);
      dropping_.push_back({start, start + len, kDropLive});
    }
    const bool dropped =
        madvise(reinterpret_cast<void*>(start), len, MADV_DONTNEED) == 0;  // NOLINT(performance-no-int-to-ptr)
    // madvise returns once the reader has *read* every REMOVE event of the
    // drop (one per VMA), each in a read numbered at most what
    // reads_started_ says now; the reader may not have looked at the mark
    // yet. Retire the mark instead of waiting: the reader forgets it before
    // a later read, and this thread goes on at once.
    {
      const std::uint64_t last_read = reads_started_.load();
      std::lock_guard lk(drop_mu_);
      for (Drop& d : dropping_) {
        if (d.start == start && d.end == start + len && d.retired_after == kDropLive) {
          d.retired_after = last_read;
          break;
        }
      }
    }
    if (!dropped) {
      // The kernel refuses MADV_DONTNEED on mlock()ed memory (EINVAL), and
      // stops at the first such VMA of the run: pages still present were
      // not dropped and stay in RAM (their frames are not used); only the
      // ones that are gone now live on the device. Nothing can populate a
      // page of the run meanwhile: writers wait (write-protect) and
      // readers of absent pages wait on the inbound entry.
      unmovable_runs_.fetch_add(1, std::memory_order_relaxed);
      read_present(start, count, present);
      pagemap_reads_.fetch_add(1, std::memory_order_relaxed);
      std::size_t kept = 0;
      for (std::size_t k = 0; k < count; ++k) {
        if (present[k]) {
          ok[first + k] = false;
          ++kept;
        }
      }
      bytes += (count - kept) * kPageSize;
      continue;
    }
    bytes += len;
  }
  const std::size_t moved = entries_.finish_inbound(addrs, frames, ok);
  for (auto [first, count] : runs) {
    uffdio_writeprotect wp{{addrs[first], count * kPageSize}, 0};  // wakes waiting writers
    uffd_ioctl(UFFDIO_WRITEPROTECT, &wp);
  }
  cost_.charge_migration(Migration::kToDevice, bytes, runs.size());
  return moved;
}

}  // namespace xesvm::sim
