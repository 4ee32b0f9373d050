// Host support for userfaultfd: what the kernel offers, and the generic
// operations on a descriptor that know nothing of mirrors or device frames.
//
// Everything here is a free function over a descriptor the caller owns; none
// keeps state, takes a lock or starts a thread, so every function may be
// called from any thread. The descriptor is never closed here except by
// open_mirror_uffd() on its own failure paths.
//
// Part of the data path: CpuMirror opens its descriptor with
// open_mirror_uffd() at construction; the fault and event threads, the
// migrations and the placements then use the probes and ioctl_retry() below.
#pragma once

#include <sys/ioctl.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

namespace xesvm::sim {

/// What the kernel's userfaultfd offers this process.
struct UffdFeatures {
  bool kernel_faults = false;   ///< syscalls touching device data migrate it back
  bool write_protect = false;   ///< UFFD_FEATURE_PAGEFAULT_FLAG_WP
  bool wp_unpopulated = false;  ///< UFFD_FEATURE_WP_UNPOPULATED
  bool event_remove = false;
  bool event_unmap = false;
  bool event_remap = false;
  bool move = false;      ///< UFFD_FEATURE_MOVE (UFFDIO_MOVE, Linux 6.8+)
  std::uint64_t raw = 0;  ///< the feature mask the kernel reported
  /// The features as words for `xesvm info` ("kernel-faults wp ... move").
  std::string describe() const;
};

/// A descriptor ready for CpuMirror and what its kernel offers.
struct MirrorUffd {
  int fd = -1;  ///< owned by the caller: O_CLOEXEC | O_NONBLOCK, UFFDIO_API done
  UffdFeatures features;
};

/// Probes the kernel on a throwaway descriptor, then opens the descriptor
/// the sim device uses, with write-protect faults and the REMOVE, UNMAP and
/// REMAP events enabled (and UFFD_FEATURE_WP_UNPOPULATED where offered).
/// `allow_kernel_faults` false forces UFFD_USER_MODE_ONLY; true falls back
/// to it when the kernel refuses kernel-mode faults (EPERM).
/// Returns the open descriptor; the caller closes it. Throws Error
/// (kUnsupported) naming what is missing when userfaultfd, UFFDIO_API or a
/// required feature is unavailable; nothing is left open then.
MirrorUffd open_mirror_uffd(bool allow_kernel_faults);

/// True while the kernel has begun a mapping change (munmap, mremap,
/// MADV_DONTNEED, fork) of memory registered with userfaultfd descriptor
/// `uffd` whose event has not been read from it yet. The change's addresses
/// may already be free for reuse. No side effects: the request is one the
/// kernel refuses (EINVAL) once nothing is in flight.
bool mapping_change_in_flight(int uffd);

/// Whether userfaultfd registration covers [start, start+len) now, as the
/// kernel sees it. kChanging: a mapping change is in flight (see
/// mapping_change_in_flight()), ask again once it has been read.
/// kRegistered needs one VMA to cover the whole range and says nothing about
/// which descriptor registered it. Meant for private anonymous memory; on
/// registered shared memory the probe maps page-cache pages already there.
enum class Registration : std::uint8_t { kRegistered, kUnregistered, kChanging };
Registration registration(int uffd, std::uint64_t start, std::uint64_t len);

/// An ioctl on the descriptor, retried while it fails with EAGAIN: a
/// mapping change of registered memory (munmap, mremap, MADV_DONTNEED) is
/// in flight. The kernel clears that once the descriptor's reader has read
/// the change's event and the thread that made the change has resumed;
/// neither of them waits for the caller (the reader takes leaf locks only),
/// so the wait ends however long a loaded machine takes to schedule them,
/// and no count of tries or time bound is used: either would give up on a
/// change that is still progressing. The only bound is the reader's own
/// end: `reader_running()` is asked before every retry.
/// Returns 0 on success; -1 with errno set on any other failure, or with
/// errno EAGAIN once reader_running() returns false.
template <class F>
int ioctl_retry(int fd, unsigned long req, void* arg, F reader_running) {
  for (int i = 0;; ++i) {
    if (::ioctl(fd, req, arg) == 0) {
      return 0;
    }
    if (errno != EAGAIN || !reader_running()) {
      return -1;
    }
    // Short steps first (the reader usually reads the event within
    // microseconds), then longer ones, so a change that waits for a
    // descheduled thread does not keep a CPU busy.
    std::this_thread::sleep_for(std::chrono::microseconds(i < 10 ? 1 : (i < 100 ? 20 : 100)));
  }
}

/// strerror(e) as a string.
std::string errno_text(int e);

/// Sleeps in short steps while changing() holds, for at most 5 s (the
/// changes waited for end once the event reader has read their events; a
/// loaded machine may not schedule the threads that made them for a while).
/// Returns when changing() is false or the bound has passed; the caller asks
/// again if it needs to know which.
template <class F>
void wait_while(F changing) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (int i = 0; changing() && std::chrono::steady_clock::now() < deadline; ++i) {
    std::this_thread::sleep_for(std::chrono::microseconds(i < 20 ? 5 : 100));
  }
}

}  // namespace xesvm::sim
