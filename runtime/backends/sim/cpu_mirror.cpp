// DOC: Overview
//
// The CPU side of the sim device (see cpu_mirror.hpp for the file map). A
// page of a mirrored region is in one of three places: in RAM (the CPU page
// table maps it), absent (never touched, reads as zeros), or in a device
// frame. A page in a device frame has no CPU page at all (it was dropped
// with MADV_DONTNEED) and a *device-private entry* (DeviceEntries), so the
// next CPU touch raises a userfaultfd MISSING fault whose handler copies the
// frame back (migrate_to_ram.cpp).
//
// This file holds the front of CpuMirror: construction (the descriptor, the
// eventfd that wakes the reader and tells it to quit, the two threads),
// mirror/unmirror, settling mapping changes before a registration, and
// notify(), which finds the MirrorClient of a change.
//
// DOC: Locking
//
// mirrors_mu_ guards the mirror records; it is a leaf lock, never held
// while calling the client. notify() looks the client up under it and
// calls MirrorClient::invalidate() with no lock of ours held.
#include "runtime/backends/sim/cpu_mirror.hpp"

#include <linux/userfaultfd.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <sstream>
#include <utility>

#include "runtime/backends/sim/process_memory.hpp"

namespace xesvm::sim {

std::string CpuMirror::migration_path() const {
  // UFFDIO_MOVE would need the frames' memory registered with this
  // descriptor (its destination must be), which puts every frame access of
  // the engine behind the fault service thread: not done.
  return std::string("copy (write-protect, process_vm_readv, MADV_DONTNEED); UFFDIO_MOVE ") +
         (features_.move ? "offered by the kernel, not used" : "not offered by the kernel");
}

CpuMirror::CpuMirror(FramePool& frames, GpuPageTable& gpu, CostModel& cost, bool allow_kernel_faults)
    : frames_(frames), gpu_(gpu), cost_(cost), entries_(frames) {
  MirrorUffd opened = open_mirror_uffd(allow_kernel_faults);
  uffd_ = opened.fd;
  features_ = opened.features;
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) {
    int e = errno;
    ::close(uffd_);
    throw Error(Error::Code::kBackend, "sim device: eventfd failed: " + errno_text(e));
  }
  service_ = std::jthread([this](std::stop_token st) { service_loop(std::move(st)); });
  reader_ = std::jthread([this](const std::stop_token& st) { reader_loop(st); });
}

CpuMirror::~CpuMirror() {
  reader_.request_stop();
  service_.request_stop();
  std::uint64_t one = 1;
  [[maybe_unused]] auto r = write(wake_fd_, &one, sizeof one);
  queue_cv_.notify_all();
  service_cv_.notify_all();
  reader_.join();
  service_.join();
  ::close(uffd_);
  ::close(wake_fd_);
}

CpuMirrorStats CpuMirror::stats() const {
  CpuMirrorStats s;
  s.cpu_faults_device = cpu_faults_device_.load();
  s.cpu_faults_zero = cpu_faults_zero_.load();
  s.pages_to_ram = pages_to_ram_.load();
  s.events = events_.load();
  s.deferred = deferred_count_.load();
  s.stale_unmaps = stale_unmaps_.load();
  s.unreadable_runs = unreadable_runs_.load();
  s.unmovable_runs = unmovable_runs_.load();
  s.fault_copy_errors = fault_copy_errors_.load();
  s.pagemap_reads = pagemap_reads_.load();
  return s;
}

// ---------------------------------------------------------------------------
// Mirrors

void CpuMirror::mirror(std::uint64_t start, std::size_t len, MirrorClient& client) {
  if (start % kPageSize || len % kPageSize || len == 0) {
    throw Error(Error::Code::kInvalidArgument, "sim device: mirror region must be page aligned and non-empty");
  }
  // Events arrive after the fact: an UNMAP or REMAP of an earlier mapping
  // at these addresses may still be on its way. Applied after this
  // registration it would tear down (or move away) the new mirror, so
  // settle every mapping change first.
  settle_mapping_changes();
  std::lock_guard lk(mirrors_mu_);
  auto it = mirrors_.upper_bound(start);
  if (it != mirrors_.begin()) {
    auto prev = std::prev(it);
    if (prev->second.end > start) {
      it = prev;
    }
  }
  if (it != mirrors_.end() && it->first < start + len) {
    throw Error(
        Error::Code::kInvalidArgument, "sim device: region overlaps an existing mirror at 0x" + [&] {
          std::ostringstream os;
          os << std::hex << it->first;
          return os.str();
        }());
  }
  auto region = [&] {
    std::ostringstream os;
    os << std::hex << "[0x" << start << ", +0x" << len << ")";
    return os.str();
  };
  if (const std::string why = unmirrorable_reason(start, len); !why.empty()) {
    throw Error(Error::Code::kInvalidArgument, "sim device: cannot mirror " + region() + ": " + why);
  }
  uffdio_register reg{};
  reg.range.start = start;
  reg.range.len = len;
  reg.mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP;
  if (ioctl(uffd_, UFFDIO_REGISTER, &reg) < 0) {
    int e = errno;
    if (e == EBUSY) {
      // The VMA is registered with another userfaultfd descriptor.
      throw Error(Error::Code::kInvalidArgument,
                  "sim device: cannot mirror " + region() +
                      ": another live Runtime (or another userfaultfd user in this process) already mirrors "
                      "it; expected memory no other runtime owns (unmirror it there first)");
    }
    throw Error(Error::Code::kInvalidArgument, "sim device: cannot mirror " + region() + " (" + errno_text(e) +
                                                   "): expected private anonymous memory that is mapped in full");
  }
  mirrors_[start] = Mirror{start + len, &client, /*moved=*/false};
}

bool CpuMirror::mapping_change_in_flight() const { return sim::mapping_change_in_flight(uffd_); }

void CpuMirror::settle_mapping_changes() {
  using Clock = std::chrono::steady_clock;
  // Bounded: other threads' unmaps (and the sim's own MADV_DONTNEED) may
  // keep the count raised for a while, but each is read within
  // microseconds; a mapping this call must wait for was changed before it
  // started.
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  for (unsigned i = 0; mapping_change_in_flight() && Clock::now() < deadline; ++i) {
    drain();
    if (i > 4) {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
  // Read but maybe not applied yet: apply it (drain() costs a reader pass;
  // skip it when nothing is pending: the descriptor has nothing to read, no
  // read is in progress, and everything read has been applied).
  const bool idle = [&] {
    pollfd p{uffd_, POLLIN, 0};
    if (poll(&p, 1, 0) != 0) {
      return false;
    }
    std::lock_guard q(queue_mu_);
    return reads_started_.load() == reads_done_.load() && applied_count_ == read_count_ && queue_.empty();
  }();
  if (!idle) {
    drain();
  }
}

void CpuMirror::unmirror(std::uint64_t start, std::size_t len) {
  {
    std::lock_guard lk(mirrors_mu_);
    auto it = mirrors_.find(start);
    if (it == mirrors_.end() || it->second.end != start + len) {
      throw Error(Error::Code::kInvalidArgument, "sim device: unmirror of a region that is not mirrored as a whole");
    }
    mirrors_.erase(it);
  }
  uffdio_range r{start, len};
  ioctl(uffd_, UFFDIO_UNREGISTER, &r);  // ENOENT/EINVAL: the mapping is gone already
  entries_.drop(start, start + len);
}

void CpuMirror::notify(const Invalidation& inv) {
  // The client of any mirror the change touches: an munmap may begin below
  // the mirror it ends.
  MirrorClient* c = nullptr;
  {
    std::lock_guard lk(mirrors_mu_);
    auto it = mirrors_.upper_bound(inv.start);
    if (it != mirrors_.begin() && std::prev(it)->second.end > inv.start) {
      --it;
    }
    if (it != mirrors_.end() && it->first < std::max(inv.end, inv.start + 1)) {
      c = it->second.client;
    }
  }
  if (c) {
    c->invalidate(inv);
  }
}

}  // namespace xesvm::sim
