// DOC: Overview
//
// The mechanism of eviction (MechanismFace's eviction primitives), the
// migrate_vma analogue run by the runtime's eviction engine on frames it
// has locked:
//
//  * frame_address(): the migration entry, where a frame's data belongs now
//    (it follows mremap once the event is applied);
//  * unmap(): entries become kEvicting (CPU touches wait, snapshots report
//    the CPU page) and the frames' GPU PTEs are zapped — the runtime calls
//    it under its notifier lock, so that zap is the runtime's (cpu_mirror.hpp);
//  * place(): UFFDIO_COPY of the bytes as the CPU pages, only where the
//    entries still name these frames and no event about the pages is
//    pending; events arrive after the fact, so a copy that meets a change
//    drains the events before it reports the error;
//  * finalize(): placed frames lose their entries, the rest go back to
//    kResident; the frames are unlocked and deferred CPU faults retried.
//
// DOC: Locking
//
// The entries' lock inside DeviceEntries only; frame locks are the
// caller's. place() may wait for the reader (drain()) with no lock held.
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>

#include "runtime/backends/sim/cpu_mirror.hpp"
#include "runtime/backends/sim/frame_pool.hpp"
#include "runtime/backends/sim/gpu_page_table.hpp"

namespace xesvm::sim {

std::uint64_t CpuMirror::frame_address(FrameId frame) const { return entries_.frame_address(frame); }

void CpuMirror::unmap(std::span<const FrameId> frames) {
  entries_.mark_evicting(frames);
  gpu_.zap_frames(frames);
}

CopyStatus CpuMirror::place(std::uint64_t addr, const std::byte* src, std::size_t len) {
  for (unsigned n = place_failures_.load(); n > 0;) {
    if (place_failures_.compare_exchange_weak(n, n - 1)) {
      return {0, EIO};
    }
  }
  if (std::size_t k = short_placement_.load();
      k && len > k * kPageSize && short_placement_.compare_exchange_strong(k, 0)) {
    const CopyStatus head = place(addr, src, k * kPageSize);
    return {head.bytes, head.error ? head.error : EIO};
  }
  // The address comes from the frame's device-private entry, which follows
  // mapping events only once they are applied: after an munmap (or a move
  // away) whose event is read but not applied, or applied since the caller
  // looked the address up, another mapping may already sit there, and
  // UFFDIO_COPY would put these bytes into it. Place only where each page's
  // entry is still this frame's migration entry, with no event about the
  // pages pending. (A change made between this check and the copy below
  // keeps mmap_changing raised until its event is read: the copy fails with
  // EAGAIN. Only a change whose event is also read in those few
  // instructions escapes; user space cannot close that window.) The check
  // is repeated before every retry: a copy that met EAGAIN waits for an
  // event to be read, and once it is, the addresses may belong to another
  // mapping — even a new mirror, whose registration applied the event.
  std::size_t done = 0;
  int eagain = 0;
  while (done < len) {
    if (!placement_current(addr + done, src + done, len - done)) {
      drain();
      return {done, ENOENT};
    }
    uffdio_copy c{};
    c.dst = addr + done;
    c.src = reinterpret_cast<std::uint64_t>(src + done);
    c.len = len - done;
    if (ioctl(uffd_, UFFDIO_COPY, &c) == 0) {
      return {len, 0};
    }
    int e = errno;
    if (c.copy > 0) {
      done += static_cast<std::size_t>(c.copy);
      continue;
    }
    if (e == EAGAIN && ++eagain < 100) {
      usleep(eagain < 10 ? 1 : 20);  // an event in flight; the reader takes it at once
      continue;
    }
    if (e == EAGAIN || e == ENOENT) {
      drain();
    }
    return {done, e};
  }
  return {done, 0};
}

bool CpuMirror::placement_current(std::uint64_t addr, const std::byte* src, std::size_t len) {
  std::vector<FrameId> frames((len + kPageSize - 1) / kPageSize);
  for (std::size_t i = 0; i < frames.size(); ++i) {
    frames[i] = frames_.frame_at(src + i * kPageSize);
  }
  if (!entries_.all_evicting(addr, frames)) {
    return false;
  }
  // Events read are applied in order, so those past the applied count are
  // pending; any of them touching these pages may move or drop them.
  return !mapping_changed_since(events_applied_.load(), addr, addr + len);
}

void CpuMirror::finalize(std::span<const FrameId> frames, std::span<const std::uint8_t> committed) {
  entries_.finalize(frames, committed);
  for (FrameId f : frames) {
    frames_.unlock(f);
  }
  service_cv_.notify_one();  // deferred CPU faults may proceed now
}

}  // namespace xesvm::sim
