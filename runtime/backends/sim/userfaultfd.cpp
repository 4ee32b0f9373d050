// DOC: Overview
//
// Host support for userfaultfd (see userfaultfd.hpp): the feature probe that
// decides whether the sim device can run at all, the two side-effect-free
// probes of the descriptor's mmap_changing count that the event ordering
// rules rely on (mapping_events.cpp); the EAGAIN retry every ioctl of the
// data path goes through is a template in the header. No state, no locks, no threads.
#include "runtime/backends/sim/userfaultfd.hpp"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>

#include "runtime/backend.hpp"

#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif

namespace xesvm::sim {
namespace {

int open_uffd(bool user_mode_only) {
  int flags = O_CLOEXEC | O_NONBLOCK | (user_mode_only ? UFFD_USER_MODE_ONLY : 0);
  return static_cast<int>(syscall(SYS_userfaultfd, flags));
}

}  // namespace

std::string errno_text(int e) { return std::string(std::strerror(e)); }

std::string UffdFeatures::describe() const {
  std::ostringstream os;
  os << (kernel_faults ? "kernel-faults" : "user-mode-only") << (write_protect ? " wp" : "")
     << (wp_unpopulated ? " wp-unpopulated" : "") << (event_remove ? " event-remove" : "")
     << (event_unmap ? " event-unmap" : "") << (event_remap ? " event-remap" : "") << (move ? " move" : "");
  return os.str();
}

MirrorUffd open_mirror_uffd(bool allow_kernel_faults) {
  // Probe what the kernel offers on a throwaway descriptor: UFFDIO_API may be
  // called once per descriptor, and asking for an unknown feature fails.
  bool user_only = !allow_kernel_faults;
  int probe = open_uffd(user_only);
  if (probe < 0 && errno == EPERM && !user_only) {
    user_only = true;
    probe = open_uffd(true);
  }
  if (probe < 0) {
    throw Error(Error::Code::kUnsupported,
                "sim device: userfaultfd() failed: " + errno_text(errno) +
                    " (expected a kernel with CONFIG_USERFAULTFD; unprivileged processes need "
                    "vm.unprivileged_userfaultfd=1 or UFFD_USER_MODE_ONLY support)");
  }
  uffdio_api api{};
  api.api = UFFD_API;
  if (ioctl(probe, UFFDIO_API, &api) < 0) {
    int e = errno;
    ::close(probe);
    throw Error(Error::Code::kUnsupported, "sim device: UFFDIO_API failed: " + errno_text(e));
  }
  ::close(probe);
  MirrorUffd out;
  UffdFeatures& f = out.features;
  const std::uint64_t have = api.features;
  f.raw = have;
  f.kernel_faults = !user_only;
  f.write_protect = have & UFFD_FEATURE_PAGEFAULT_FLAG_WP;
  f.wp_unpopulated = have & UFFD_FEATURE_WP_UNPOPULATED;
  f.event_remove = have & UFFD_FEATURE_EVENT_REMOVE;
  f.event_unmap = have & UFFD_FEATURE_EVENT_UNMAP;
  f.event_remap = have & UFFD_FEATURE_EVENT_REMAP;
  constexpr std::uint64_t kFeatureMove = std::uint64_t{1} << 16;  // UFFD_FEATURE_MOVE (uapi, Linux 6.8)
  f.move = have & kFeatureMove;
  if (!f.write_protect || !f.event_remove || !f.event_unmap || !f.event_remap) {
    throw Error(Error::Code::kUnsupported, "sim device: userfaultfd lacks a required feature (have: " + f.describe() +
                                               "; need wp, event-remove, event-unmap, event-remap)");
  }

  out.fd = open_uffd(user_only);
  if (out.fd < 0) {
    throw Error(Error::Code::kUnsupported, "sim device: userfaultfd() failed: " + errno_text(errno));
  }
  uffdio_api want{};
  want.api = UFFD_API;
  want.features = UFFD_FEATURE_PAGEFAULT_FLAG_WP | UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP |
                  UFFD_FEATURE_EVENT_REMAP | (f.wp_unpopulated ? UFFD_FEATURE_WP_UNPOPULATED : 0);
  if (ioctl(out.fd, UFFDIO_API, &want) < 0) {
    int e = errno;
    ::close(out.fd);
    throw Error(Error::Code::kUnsupported, "sim device: UFFDIO_API failed: " + errno_text(e));
  }
  return out;
}

// The kernel frees an unmapped (or moved) range's addresses before it even
// queues the UNMAP/REMAP event, so another thread can map the same
// addresses and ask for a mirror while the event is still to come: poll()
// and the reader see nothing yet. What does see it is the descriptor's
// mmap_changing count, raised under mmap_lock before the addresses are freed
// and dropped only once the event has been read; every UFFDIO_WRITEPROTECT
// checks it first and fails with EAGAIN while it is raised. An invalid mode
// turns that check into a pure probe: EAGAIN while a change is in flight,
// EINVAL (the mode check that follows) once none is.
bool mapping_change_in_flight(int uffd) {
  uffdio_writeprotect probe{};
  probe.range = {0, kPageSize};
  probe.mode = ~std::uint64_t{0};
  return ioctl(uffd, UFFDIO_WRITEPROTECT, &probe) < 0 && errno == EAGAIN;
}

// UFFDIO_CONTINUE finds the VMA first and fails with ENOENT unless one VMA
// registered with userfaultfd covers the whole range; it checks
// mmap_changing before that (EAGAIN), and on private anonymous memory it
// then always fails with EINVAL (CONTINUE is for shared memory): no side
// effects on the memory we mirror.
Registration registration(int uffd, std::uint64_t start, std::uint64_t len) {
  uffdio_continue probe{};
  probe.range = {start, len};
  probe.mode = UFFDIO_CONTINUE_MODE_DONTWAKE;
  if (ioctl(uffd, UFFDIO_CONTINUE, &probe) == 0) {
    return Registration::kRegistered;
  }
  switch (errno) {
    case EAGAIN:
      return Registration::kChanging;
    case EINVAL:
    case EEXIST:
      return Registration::kRegistered;
    default:
      return Registration::kUnregistered;
  }
}

}  // namespace xesvm::sim
