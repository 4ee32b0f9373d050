// DOC: Overview
//
// The CPU side of the sim device. A page of a mirrored region is in one of
// three places: in RAM (the CPU page table maps it), absent (never touched,
// reads as zeros), or in a device frame. A page in a device frame has no CPU
// page at all (it was dropped with MADV_DONTNEED) and a *device-private
// entry* here, so the next CPU touch raises a userfaultfd MISSING fault whose
// handler copies the frame back (migrate_to_ram).
//
// DOC: Moving a page to the device (migrate_to_device)
//
//  1. enter a device-private entry in state kInbound (CPU faults on it wait);
//  2. write-protect the page: CPU writers now wait in a WP fault;
//  3. copy the bytes into the frame with process_vm_readv (never a plain
//     dereference: the application may unmap the page at any time);
//  4. mark the page as being dropped by us, MADV_DONTNEED it, unmark — the
//     reader tells our REMOVE events from the application's by that mark;
//  5. set the entry kResident and lift the write protection, which wakes the
//     waiting writers; they fault again and take the page back.
//
// DOC: Mapping events out of order
//
// munmap and mremap free their addresses under mmap_lock and only then queue
// their UNMAP/REMAP event (and wait until it is read), so another thread can
// map, mirror or mremap into those addresses and have its event read first.
// The kernel's userfaultfd context counts such changes in flight
// (mmap_changing) from before the addresses are freed until the event is
// read; two side-effect-free probes read it: mapping_change_in_flight() and
// registration(). With them:
//
//  * mirror() settles first: it waits until no change is in flight and every
//    event read is applied, so no event older than the registration follows;
//  * a REMAP whose target still has records first applies an older queued
//    move out of the target, then unmaps whatever is left there (the kernel
//    unmapped it before the move, whatever the event order says);
//  * an UNMAP spares the parts of a mirror a REMAP moved in that the kernel
//    still has registered: it is older than the move;
//  * place() writes a frame's bytes only where the page's entry still names
//    that frame and no event about the page is pending, checked again
//    before every retry of a copy that met a change in flight.
//
// DOC: Locking
//
// entries_mu_ (device-private entries, frame -> address) is a leaf lock.
// The reader holds only queue_mu_ and drop_mu_, both leaf locks, so it never
// waits on anything a faulting or dropping thread holds. The service thread
// calls MirrorClient::invalidate() with no lock of ours held; the runtime
// takes its notifier lock there. Frame locks are only ever trylocked here.
#include "runtime/backends/sim/cpu_mirror.hpp"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <sstream>

#include "runtime/backends/sim/cost_model.hpp"
#include "runtime/backends/sim/frame_pool.hpp"
#include "runtime/backends/sim/gpu_page_table.hpp"

#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif

namespace xesvm::sim {
namespace {

constexpr std::uint8_t kMsgFault = UFFD_EVENT_PAGEFAULT;
constexpr std::uint8_t kMsgRemap = UFFD_EVENT_REMAP;
constexpr std::uint8_t kMsgRemove = UFFD_EVENT_REMOVE;
constexpr std::uint8_t kMsgUnmap = UFFD_EVENT_UNMAP;

std::string errno_text(int e) { return std::string(std::strerror(e)); }

int open_uffd(bool user_mode_only) {
  int flags = O_CLOEXEC | O_NONBLOCK | (user_mode_only ? UFFD_USER_MODE_ONLY : 0);
  return static_cast<int>(syscall(SYS_userfaultfd, flags));
}

// Reads present/swapped bits of pages [start, start + n*4K) from pagemap.
void read_present(std::uint64_t start, std::size_t n, std::vector<bool>& present) {
  present.assign(n, true);
  int fd = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;  // conservative: treat all as present
  std::vector<std::uint64_t> ent(n);
  ssize_t want = static_cast<ssize_t>(n * sizeof(std::uint64_t));
  ssize_t got = pread(fd, ent.data(), static_cast<std::size_t>(want),
                      static_cast<off_t>((start >> kPageShift) * sizeof(std::uint64_t)));
  ::close(fd);
  if (got != want) return;
  // Present (bit 63) or swapped (bit 62). A swap entry carrying the uffd-wp
  // bit (57) is the marker UFFDIO_WRITEPROTECT leaves on an unpopulated page
  // (UFFD_FEATURE_WP_UNPOPULATED): no data, reads as zeros. Treating it as
  // present made migrate_to_device's process_vm_readv raise a MISSING fault
  // on its own kInbound page, which the service thread defers until the
  // migration ends: a deadlock on every never-touched page a GPU faulted on.
  // (A real page swapped out while write-protected would look the same; the
  // write protection lasts only for the copy, so that is not expected.)
  for (std::size_t i = 0; i < n; ++i) {
    const bool marker = ((ent[i] >> 62) & 1u) && ((ent[i] >> 57) & 1u) && !((ent[i] >> 63) & 1u);
    present[i] = ((ent[i] >> 62) & 3u) && !marker;
  }
}

// Sleeps in short steps while changing() holds, for at most 5 s (the
// changes waited for end once the reader has read their events; a loaded
// machine may not schedule the threads that made them for a while).
template <class F>
void wait_while(F changing) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (int i = 0; changing() && std::chrono::steady_clock::now() < deadline; ++i) {
    std::this_thread::sleep_for(std::chrono::microseconds(i < 20 ? 5 : 100));
  }
}

// An ioctl on the descriptor, retried while it fails with EAGAIN: that only
// means an event (often our own MADV_DONTNEED's REMOVE from another thread)
// is in flight and not read yet; the reader reads it within microseconds.
int ioctl_retry(int fd, unsigned long req, void* arg) {
  for (int i = 0;; ++i) {
    if (ioctl(fd, req, arg) == 0) return 0;
    if (errno != EAGAIN || i >= 2000) return -1;
    usleep(i < 10 ? 1 : 20);
  }
}

// Why [start, start+len) cannot be mirrored, or "" if it can: every byte
// must be mapped (no hole), by private anonymous mappings. A MAP_SHARED
// mapping (shmem) keeps its pages in the page cache: MADV_DONTNEED only
// drops the PTEs, so a CPU touch would map the old page again instead of
// faulting, and the device's bytes would never reach it. File mappings
// cannot be registered for missing faults at all. One pass over
// /proc/self/maps: no page-table walk, cheap enough for every mirror().
std::string unmirrorable_reason(std::uint64_t start, std::uint64_t len) {
  FILE* f = std::fopen("/proc/self/maps", "re");
  if (!f) return "";  // no procfs: leave it to UFFDIO_REGISTER
  std::uint64_t covered = start;
  const std::uint64_t end = start + len;
  std::string why;
  char line[4096];
  while (covered < end && std::fgets(line, sizeof line, f)) {
    unsigned long lo = 0, hi = 0;
    char perms[8] = {};
    int path_at = 0;
    if (std::sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &lo, &hi, perms, &path_at) < 3) continue;
    if (hi <= covered) continue;
    if (lo > covered) break;  // a hole at `covered`
    std::string path = path_at > 0 ? std::string(line + path_at) : std::string();
    while (!path.empty() && (path.back() == '\n' || path.back() == ' ')) path.pop_back();
    std::ostringstream at;
    at << std::hex << "0x" << lo << "-0x" << hi;
    if (perms[3] == 's') {
      why = "the mapping at " + at.str() + " is MAP_SHARED" + (path.empty() ? "" : " (" + path + ")") +
            "; the sim device mirrors only private anonymous memory (its pages stay in the page cache, "
            "so device-resident bytes could not reach the CPU)";
      break;
    }
    if (!path.empty() && path != "[heap]" && path != "[stack]" && path.rfind("[anon:", 0) != 0) {
      why = "the mapping at " + at.str() + " maps " + path + "; expected private anonymous memory";
      break;
    }
    covered = hi;
  }
  std::fclose(f);
  if (why.empty() && covered < end) {
    std::ostringstream os;
    os << std::hex << "nothing is mapped at 0x" << covered << "; expected the whole region to be mapped";
    why = os.str();
  }
  return why;
}

}  // namespace

std::string UffdFeatures::describe() const {
  std::ostringstream os;
  os << (kernel_faults ? "kernel-faults" : "user-mode-only") << (write_protect ? " wp" : "")
     << (wp_unpopulated ? " wp-unpopulated" : "") << (event_remove ? " event-remove" : "")
     << (event_unmap ? " event-unmap" : "") << (event_remap ? " event-remap" : "") << (move ? " move" : "");
  return os.str();
}

std::string CpuMirror::migration_path() const {
  // UFFDIO_MOVE would need the frames' memory registered with this
  // descriptor (its destination must be), which puts every frame access of
  // the engine behind the fault service thread: not done.
  return std::string("copy (write-protect, process_vm_readv, MADV_DONTNEED); UFFDIO_MOVE ") +
         (features_.move ? "offered by the kernel, not used" : "not offered by the kernel");
}

CpuMirror::CpuMirror(FramePool& frames, GpuPageTable& gpu, CostModel& cost, bool allow_kernel_faults)
    : frames_(frames), gpu_(gpu), cost_(cost) {
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
  const std::uint64_t have = api.features;
  features_.raw = have;
  features_.kernel_faults = !user_only;
  features_.write_protect = have & UFFD_FEATURE_PAGEFAULT_FLAG_WP;
  features_.wp_unpopulated = have & UFFD_FEATURE_WP_UNPOPULATED;
  features_.event_remove = have & UFFD_FEATURE_EVENT_REMOVE;
  features_.event_unmap = have & UFFD_FEATURE_EVENT_UNMAP;
  features_.event_remap = have & UFFD_FEATURE_EVENT_REMAP;
  constexpr std::uint64_t kFeatureMove = std::uint64_t{1} << 16;  // UFFD_FEATURE_MOVE (uapi, Linux 6.8)
  features_.move = have & kFeatureMove;
  if (!features_.write_protect || !features_.event_remove || !features_.event_unmap || !features_.event_remap) {
    throw Error(Error::Code::kUnsupported,
                "sim device: userfaultfd lacks a required feature (have: " + features_.describe() +
                    "; need wp, event-remove, event-unmap, event-remap)");
  }

  uffd_ = open_uffd(user_only);
  if (uffd_ < 0) {
    throw Error(Error::Code::kUnsupported, "sim device: userfaultfd() failed: " + errno_text(errno));
  }
  uffdio_api want{};
  want.api = UFFD_API;
  want.features = UFFD_FEATURE_PAGEFAULT_FLAG_WP | UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP |
                  UFFD_FEATURE_EVENT_REMAP | (features_.wp_unpopulated ? UFFD_FEATURE_WP_UNPOPULATED : 0);
  if (ioctl(uffd_, UFFDIO_API, &want) < 0) {
    int e = errno;
    ::close(uffd_);
    throw Error(Error::Code::kUnsupported, "sim device: UFFDIO_API failed: " + errno_text(e));
  }
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) {
    int e = errno;
    ::close(uffd_);
    throw Error(Error::Code::kBackend, "sim device: eventfd failed: " + errno_text(e));
  }
  frame_addr_.assign(frames_.frame_count(), 0);
  service_ = std::jthread([this](std::stop_token st) { service_loop(st); });
  reader_ = std::jthread([this](std::stop_token st) { reader_loop(st); });
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
    if (prev->second.end > start) it = prev;
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
  if (ioctl(uffd, UFFDIO_CONTINUE, &probe) == 0) return Registration::kRegistered;
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
    if (i > 4) std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  // Read but maybe not applied yet: apply it (drain() costs a reader pass;
  // skip it when nothing is pending: the descriptor has nothing to read, no
  // read is in progress, and everything read has been applied).
  const bool idle = [&] {
    pollfd p{uffd_, POLLIN, 0};
    if (poll(&p, 1, 0) != 0) return false;
    std::lock_guard q(queue_mu_);
    return reads_started_.load() == reads_done_.load() && applied_count_ == read_count_ && queue_.empty();
  }();
  if (!idle) drain();
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
  drop_entries(start, start + len);
}

// ---------------------------------------------------------------------------
// Snapshot and migration to the device

// A page with a device-private entry that is not being moved home: a device
// page. Being moved to RAM (the migration entry): its frame is about to be
// freed, so a GPU binding must not point at it; the CPU page is reported
// instead, and an access through it waits for the placement, like
// hmm_range_fault waiting on a migration entry.
void CpuMirror::snapshot_device(std::uint64_t start, std::span<PageSnapshot> out) {
  std::lock_guard lk(entries_mu_);
  for (std::size_t i = 0; i < out.size(); ++i) {
    auto it = entries_.find(start + i * kPageSize);
    if (it != entries_.end() && it->second.state != EntryState::kEvicting) {
      out[i] = {PagePlace::kDevice, true, it->second.frame};
    } else {
      out[i] = {PagePlace::kSystem, true, kNoFrame};
    }
  }
}

void CpuMirror::snapshot(std::uint64_t start, std::span<PageSnapshot> out) {
  {
    // Every page in a device frame (a range on the device, the usual bind
    // after a migration): the entries say it all, no page-table read.
    std::lock_guard lk(entries_mu_);
    bool all_device = true;
    for (std::size_t i = 0; i < out.size() && all_device; ++i) {
      auto it = entries_.find(start + i * kPageSize);
      all_device = it != entries_.end() && it->second.state != EntryState::kEvicting;
      if (all_device) out[i] = {PagePlace::kDevice, true, it->second.frame};
    }
    if (all_device) return;
  }
  // The page tables are read before the entries: a page moved to RAM in
  // between (placed, then its entry erased) would look absent with no entry.
  // Such moves bump placements_; read again if one happened meanwhile.
  std::vector<bool> present;
  std::unique_lock lk(entries_mu_, std::defer_lock);
  for (unsigned attempt = 0;; ++attempt) {
    const std::uint64_t before = placements_.load();
    read_present(start, out.size(), present);
    pagemap_reads_.fetch_add(1, std::memory_order_relaxed);
    lk.lock();
    if (placements_.load() == before || attempt == 8) break;
    lk.unlock();
  }
  for (std::size_t i = 0; i < out.size(); ++i) {
    auto it = entries_.find(start + i * kPageSize);
    if (it != entries_.end() && it->second.state != EntryState::kEvicting) {
      out[i] = {PagePlace::kDevice, true, it->second.frame};
    } else if (it != entries_.end()) {
      // Being moved to RAM (the migration entry): its frame is about to be
      // freed, so a GPU binding must not point at it. Report the CPU page;
      // an access through it waits for the placement, like hmm_range_fault
      // waiting on a migration entry.
      out[i] = {PagePlace::kSystem, true, kNoFrame};
    } else {
      out[i] = {present[i] ? PagePlace::kSystem : PagePlace::kAbsent, true, kNoFrame};
    }
  }
}

std::size_t CpuMirror::migrate_to_device(std::span<const std::uint64_t> addrs, std::span<FrameId> frames) {
  const std::size_t n = addrs.size();
  std::vector<bool> ok(n, false);
  {
    std::lock_guard lk(entries_mu_);
    for (std::size_t i = 0; i < n; ++i) {
      if (frames[i] == kNoFrame || entries_.count(addrs[i])) {
        frames[i] = kNoFrame;
        continue;
      }
      entries_[addrs[i]] = Entry{frames[i], EntryState::kInbound};
      frame_addr_[frames[i]] = addrs[i];
      ok[i] = true;
    }
  }
  // Runs of consecutive addresses.
  std::vector<std::pair<std::size_t, std::size_t>> runs;  // [first, count)
  for (std::size_t i = 0; i < n;) {
    if (!ok[i]) {
      ++i;
      continue;
    }
    std::size_t j = i + 1;
    while (j < n && ok[j] && addrs[j] == addrs[j - 1] + kPageSize) ++j;
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
    if (ioctl_retry(uffd_, UFFDIO_WRITEPROTECT, &wp) < 0) {
      for (std::size_t k = first; k < first + count; ++k) ok[k] = false;
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
      remote.push_back({reinterpret_cast<void*>(start + k * kPageSize), kPageSize});
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
    if (!all_read) unreadable_runs_.fetch_add(1, std::memory_order_relaxed);
    if (!all_read || mapping_changed_since(events_before, start, start + len)) {
      for (std::size_t k = first; k < first + count; ++k) ok[k] = false;
      continue;
    }
    {
      std::lock_guard lk(drop_mu_);
      dropping_.emplace_back(start, start + len);
    }
    const bool dropped = madvise(reinterpret_cast<void*>(start), len, MADV_DONTNEED) == 0;
    // madvise returns once the reader has *read* our REMOVE event, maybe
    // before it looked at the mark: wait until that read is processed.
    {
      const std::uint64_t started = reads_started_.load();
      std::unique_lock lk(queue_mu_);
      queue_cv_.wait(lk, [&] { return reads_done_.load() >= started; });
    }
    {
      std::lock_guard lk(drop_mu_);
      dropping_.erase(
          std::find(dropping_.begin(), dropping_.end(), std::pair<std::uint64_t, std::uint64_t>{start, start + len}));
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
  std::size_t moved = 0;
  {
    std::lock_guard lk(entries_mu_);
    for (std::size_t i = 0; i < n; ++i) {
      if (frames[i] == kNoFrame) continue;
      auto it = entries_.find(addrs[i]);
      // The entry is gone if the application discarded or unmapped the page
      // meanwhile (its event was applied): then the frame is not used.
      if (ok[i] && it != entries_.end() && it->second.frame == frames[i]) {
        it->second.state = EntryState::kResident;
        ++moved;
      } else {
        if (it != entries_.end() && it->second.frame == frames[i]) entries_.erase(it);
        frame_addr_[frames[i]] = 0;
        frames[i] = kNoFrame;
      }
    }
  }
  for (auto [first, count] : runs) {
    uffdio_writeprotect wp{{addrs[first], count * kPageSize}, 0};  // wakes waiting writers
    ioctl_retry(uffd_, UFFDIO_WRITEPROTECT, &wp);
  }
  if (bytes) cost_.charge_link(bytes, runs.size());
  return moved;
}

// ---------------------------------------------------------------------------
// Eviction primitives

std::uint64_t CpuMirror::frame_address(FrameId frame) const {
  std::lock_guard lk(entries_mu_);
  return frame_addr_[frame];
}

void CpuMirror::unmap(std::span<const FrameId> frames) {
  {
    std::lock_guard lk(entries_mu_);
    for (FrameId f : frames) {
      std::uint64_t a = frame_addr_[f];
      if (!a) continue;
      auto it = entries_.find(a);
      if (it != entries_.end()) it->second.state = EntryState::kEvicting;
    }
  }
  gpu_.zap_frames(frames);
}

CopyStatus CpuMirror::place(std::uint64_t addr, const std::byte* src, std::size_t len) {
  for (unsigned n = place_failures_.load(); n > 0;) {
    if (place_failures_.compare_exchange_weak(n, n - 1)) return {0, EIO};
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
    if (ioctl(uffd_, UFFDIO_COPY, &c) == 0) return {len, 0};
    int e = errno;
    if (c.copy > 0) {
      done += static_cast<std::size_t>(c.copy);
      continue;
    }
    if (e == EAGAIN && ++eagain < 100) {
      usleep(eagain < 10 ? 1 : 20);  // an event in flight; the reader takes it at once
      continue;
    }
    if (e == EAGAIN || e == ENOENT) drain();
    return {done, e};
  }
  return {done, 0};
}

bool CpuMirror::placement_current(std::uint64_t addr, const std::byte* src, std::size_t len) {
  {
    std::lock_guard lk(entries_mu_);
    for (std::size_t off = 0; off < len; off += kPageSize) {
      const FrameId f = frames_.frame_at(src + off);
      auto it = entries_.find(addr + off);
      if (f == kNoFrame || it == entries_.end() || it->second.frame != f || it->second.state != EntryState::kEvicting) {
        return false;
      }
    }
  }
  // Events read are applied in order, so those past the applied count are
  // pending; any of them touching these pages may move or drop them.
  return !mapping_changed_since(events_applied_.load(), addr, addr + len);
}

void CpuMirror::finalize(std::span<const FrameId> frames, std::span<const std::uint8_t> committed) {
  {
    std::lock_guard lk(entries_mu_);
    for (std::size_t i = 0; i < frames.size(); ++i) {
      FrameId f = frames[i];
      std::uint64_t a = frame_addr_[f];
      if (committed[i]) {
        if (a && entries_.erase(a)) placements_.fetch_add(1);
        frame_addr_[f] = 0;
      } else if (a) {
        auto it = entries_.find(a);
        if (it != entries_.end()) it->second.state = EntryState::kResident;
      }
    }
  }
  for (FrameId f : frames) frames_.unlock(f);
  service_cv_.notify_one();  // deferred CPU faults may proceed now
}

// ---------------------------------------------------------------------------
// Event reader and service thread

bool CpuMirror::mapping_changed_since(std::uint64_t since, std::uint64_t start, std::uint64_t end) {
  if (events_read_.load() == since) return false;
  std::lock_guard lk(recent_mu_);
  if (!recent_.empty() && std::get<0>(recent_.front()) > since + 1) return true;  // ring overrun: assume so
  for (auto& [seq, s, e] : recent_) {
    if (seq > since && s < end && start < e) return true;
  }
  return false;
}

bool CpuMirror::is_dropping(std::uint64_t start, std::uint64_t end) {
  std::lock_guard lk(drop_mu_);
  for (auto [s, e] : dropping_) {
    if (s <= start && end <= e) return true;
  }
  return false;
}

void CpuMirror::reader_loop(std::stop_token st) {
  std::array<pollfd, 2> fds{pollfd{uffd_, POLLIN, 0}, pollfd{wake_fd_, POLLIN, 0}};
  std::array<uffd_msg, 64> msgs;
  while (!st.stop_requested()) {
    poll(fds.data(), fds.size(), 100);
    if (fds[1].revents & POLLIN) {
      std::uint64_t v;
      [[maybe_unused]] auto r = read(wake_fd_, &v, sizeof v);
    }
    for (;;) {
      const std::uint64_t this_read = reads_started_.fetch_add(1) + 1;
      // No GPU write to system memory may land between an munmap's event
      // being read (the unmapping thread resumes and may map something new
      // there) and the zap of the PTEs below.
      SystemWriteGate& gate = gpu_.write_gate();
      gate.close(std::chrono::microseconds(200));
      ssize_t got = read(uffd_, msgs.data(), sizeof msgs);
      if (got < 0) {
        const int e = errno;
        gate.open();
        {
          std::lock_guard lk(queue_mu_);
          reads_done_.store(this_read);
        }
        queue_cv_.notify_all();
        if (e == EINTR) continue;
        break;  // EAGAIN: empty
      }
      // Classify each message once: mapping events zap the GPU's PTEs now,
      // while the gate is closed, and are counted as pending until applied.
      std::size_t count = static_cast<std::size_t>(got) / sizeof(uffd_msg);
      std::vector<Message> batch;
      batch.reserve(count);
      for (std::size_t i = 0; i < count; ++i) {
        const uffd_msg& m = msgs[i];
        switch (m.event) {
          case UFFD_EVENT_PAGEFAULT:
            batch.push_back({kMsgFault, m.arg.pagefault.address, m.arg.pagefault.flags, 0});
            break;
          case UFFD_EVENT_REMOVE:
          case UFFD_EVENT_UNMAP:
            if (m.event == UFFD_EVENT_REMOVE && is_dropping(m.arg.remove.start, m.arg.remove.end)) break;
            gpu_.unbind(m.arg.remove.start, m.arg.remove.end);
            {
              std::lock_guard lk(recent_mu_);
              recent_.emplace_back(events_read_.fetch_add(1) + 1, m.arg.remove.start, m.arg.remove.end);
              if (recent_.size() > 256) recent_.pop_front();
            }
            batch.push_back(
                {m.event == UFFD_EVENT_UNMAP ? kMsgUnmap : kMsgRemove, m.arg.remove.start, m.arg.remove.end, 0});
            break;
          case UFFD_EVENT_REMAP:
            gpu_.unbind(m.arg.remap.from, m.arg.remap.from + m.arg.remap.len);
            {
              std::lock_guard lk(recent_mu_);
              recent_.emplace_back(events_read_.fetch_add(1) + 1, m.arg.remap.from, m.arg.remap.from + m.arg.remap.len);
              if (recent_.size() > 256) recent_.pop_front();
            }
            batch.push_back({kMsgRemap, m.arg.remap.from, m.arg.remap.to, m.arg.remap.len});
            break;
          default:
            break;
        }
      }
      gate.open();
      {
        std::lock_guard lk(queue_mu_);
        for (auto& b : batch) queue_.push_back(b);
        read_count_ += batch.size();
        reads_done_.store(this_read);
      }
      queue_cv_.notify_all();
      // The service thread only when there is something to serve: a
      // migration's own REMOVE is read and dropped here, and waking the
      // service thread for it was a context switch per fault for nothing.
      if (!batch.empty()) service_cv_.notify_one();
    }
    {
      std::lock_guard lk(queue_mu_);
      ++empty_passes_;
    }
    queue_cv_.notify_all();
  }
}

void CpuMirror::await_reader_passes(std::unique_lock<std::mutex>& lk) {
  const std::uint64_t target = empty_passes_ + 2;
  lk.unlock();
  std::uint64_t one = 1;
  [[maybe_unused]] auto r = write(wake_fd_, &one, sizeof one);
  lk.lock();
  // The pass the first wake-up starts may have begun before the caller's
  // events were queued; the second must start after it. Wake the reader for
  // it too instead of waiting out its poll timeout (100 ms per drain).
  queue_cv_.wait(lk, [&] { return empty_passes_ + 1 >= target || reader_.get_stop_token().stop_requested(); });
  lk.unlock();
  r = write(wake_fd_, &one, sizeof one);
  lk.lock();
  queue_cv_.wait(lk, [&] { return empty_passes_ >= target || reader_.get_stop_token().stop_requested(); });
}

void CpuMirror::drain() {
  std::unique_lock lk(queue_mu_);
  await_reader_passes(lk);
  const std::uint64_t read = read_count_;
  queue_cv_.wait(lk, [&] { return applied_count_ >= read || service_.get_stop_token().stop_requested(); });
}

void CpuMirror::service_loop(std::stop_token st) {
  using namespace std::chrono_literals;
  std::unique_lock lk(queue_mu_);
  while (!st.stop_requested()) {
    if (queue_.empty()) {
      service_cv_.wait_for(lk, deferred_.empty() ? 100ms : 200us,
                           [&] { return !queue_.empty() || st.stop_requested(); });
      if (queue_.empty() && !deferred_.empty()) {
        std::vector<Message> retry;
        retry.swap(deferred_);
        lk.unlock();
        std::vector<Message> again;
        for (auto& m : retry) {
          if (!serve_fault(m.a & ~(kPageSize - 1), m.b)) again.push_back(m);
        }
        lk.lock();
        deferred_.insert(deferred_.end(), again.begin(), again.end());
      }
      continue;
    }
    Message m = queue_.front();
    queue_.pop_front();
    lk.unlock();
    bool deferred = false;
    if (m.event == kMsgFault) {
      deferred = !serve_fault(m.a & ~(kPageSize - 1), m.b);
      if (deferred) deferred_count_.fetch_add(1, std::memory_order_relaxed);
    } else {
      apply(m);
      events_applied_.fetch_add(1);
    }
    lk.lock();
    if (deferred) deferred_.push_back(m);
    ++applied_count_;
    queue_cv_.notify_all();
  }
}

void CpuMirror::notify(const Invalidation& inv) {
  // The client of any mirror the change touches: an munmap may begin below
  // the mirror it ends.
  MirrorClient* c = nullptr;
  {
    std::lock_guard lk(mirrors_mu_);
    auto it = mirrors_.upper_bound(inv.start);
    if (it != mirrors_.begin() && std::prev(it)->second.end > inv.start) --it;
    if (it != mirrors_.end() && it->first < std::max(inv.end, inv.start + 1)) c = it->second.client;
  }
  if (c) c->invalidate(inv);
}

void CpuMirror::drop_entries(std::uint64_t start, std::uint64_t end) {
  std::lock_guard lk(entries_mu_);
  for (std::uint64_t a = start; a < end; a += kPageSize) {
    auto it = entries_.find(a);
    if (it == entries_.end()) continue;
    frame_addr_[it->second.frame] = 0;  // the data is no longer wanted anywhere
    entries_.erase(it);
  }
}

void CpuMirror::move_entries(std::uint64_t from, std::uint64_t to, std::uint64_t len) {
  std::lock_guard lk(entries_mu_);
  std::vector<std::pair<std::uint64_t, Entry>> moved;
  for (std::uint64_t off = 0; off < len; off += kPageSize) {
    auto it = entries_.find(from + off);
    if (it == entries_.end()) continue;
    moved.emplace_back(to + off, it->second);
    entries_.erase(it);
  }
  for (auto& [a, e] : moved) {
    entries_[a] = e;
    frame_addr_[e.frame] = a;
  }
}

// Forgets [start, end) of every mirror: the mapping there is gone.
void CpuMirror::unmap_span(std::uint64_t start, std::uint64_t end) {
  drop_entries(start, end);
  notify({InvalidationKind::kUnmap, start, end, 0, {}});
  std::lock_guard lk(mirrors_mu_);
  std::vector<std::pair<std::uint64_t, Mirror>> keep;
  for (auto it = mirrors_.begin(); it != mirrors_.end();) {
    const std::uint64_t s = it->first, e = it->second.end;
    if (e <= start || s >= end) {
      ++it;
      continue;
    }
    if (s < start) keep.emplace_back(s, Mirror{start, it->second.client, it->second.moved});
    if (e > end) keep.emplace_back(end, Mirror{e, it->second.client, it->second.moved});
    it = mirrors_.erase(it);
  }
  for (auto& k : keep) mirrors_[k.first] = k.second;
}

// Pieces of [start, end) that a REMAP moved a mirror to and that the kernel
// still has registered: an UNMAP over them is older than the move.
std::vector<std::pair<std::uint64_t, std::uint64_t>> CpuMirror::live_moved_pieces(std::uint64_t start,
                                                                                  std::uint64_t end) {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> moved;
  {
    std::lock_guard lk(mirrors_mu_);
    auto it = mirrors_.upper_bound(start);
    if (it != mirrors_.begin()) --it;
    for (; it != mirrors_.end() && it->first < end; ++it) {
      if (it->second.end <= start || !it->second.moved) continue;
      moved.emplace_back(std::max(it->first, start), std::min(it->second.end, end));
    }
  }
  std::vector<std::pair<std::uint64_t, std::uint64_t>> live;
  for (auto [s, e] : moved) {
    Registration reg = registration(uffd_, s, e - s);
    // A change in flight may be what settles it (the move's own mremap
    // thread has not resumed yet, or another unmap is on its way): wait
    // for it to be read. Only the reader is needed for that, never this
    // thread, so the wait ends; the bound is for a stopped reader.
    wait_while([&] { return (reg = registration(uffd_, s, e - s)) == Registration::kChanging; });
    if (reg == Registration::kRegistered) live.emplace_back(s, e);
  }
  return live;
}

std::optional<CpuMirror::Message> CpuMirror::take_queued_move_from(std::uint64_t start, std::uint64_t end) {
  // Let every change in flight be read and queued: the mremap that freed
  // these addresses may not have queued its event yet (the thread of the
  // move being applied holds the count too until it resumes). The reader
  // never waits for this thread.
  wait_while([&] { return mapping_change_in_flight(); });
  std::unique_lock lk(queue_mu_);
  await_reader_passes(lk);
  for (auto it = queue_.begin(); it != queue_.end(); ++it) {
    if (it->event == kMsgRemap && it->a < end && it->a + it->c > start) {
      Message m = *it;
      queue_.erase(it);
      return m;
    }
  }
  return std::nullopt;
}

void CpuMirror::apply(const Message& m) {
  events_.fetch_add(1, std::memory_order_relaxed);
  if (m.event == kMsgRemove) {
    drop_entries(m.a, m.b);
    notify({InvalidationKind::kDiscard, m.a, m.b, 0, {}});
    return;
  }
  if (m.event == kMsgUnmap) {
    // Events of different threads can arrive out of order: munmap frees
    // the addresses before it queues its event, so another thread may map
    // them and mremap a mirror there, and that REMAP can be read first.
    // Such a stale UNMAP must not tear down the mirror that moved in: the
    // parts the kernel still has registered are left alone. (A mirror
    // registered by mirror() needs no such check: mirror() settles every
    // change in flight before it registers.)
    std::uint64_t a = m.a;
    for (auto [s, e] : live_moved_pieces(m.a, m.b)) {
      stale_unmaps_.fetch_add(1, std::memory_order_relaxed);
      if (a < s) unmap_span(a, s);
      a = e;
    }
    if (a < m.b) unmap_span(a, m.b);
    return;
  }
  if (m.event == kMsgRemap) {
    const std::uint64_t from = m.a, to = m.b, len = m.c;
    // The kernel unmapped whatever was at the target before the move (an
    // MREMAP_FIXED over it, or an earlier munmap whose UNMAP event is
    // still to come): anything still recorded there is dead.
    bool target_taken = false;
    {
      std::lock_guard lk(mirrors_mu_);
      auto it = mirrors_.upper_bound(to);
      if (it != mirrors_.begin() && std::prev(it)->second.end > to) --it;
      target_taken = it != mirrors_.end() && it->first < to + len;
    }
    if (target_taken) {
      // Usually the mapping recorded there moved away first and its REMAP
      // is queued behind this one, or still in flight (mremap frees the
      // source before queueing its event, so this move could reuse the
      // addresses). Apply that older move first; what is left is dead.
      while (const auto older = take_queued_move_from(to, to + len)) {
        apply(*older);
        events_applied_.fetch_add(1);
        std::lock_guard q(queue_mu_);
        ++applied_count_;
      }
      unmap_span(to, to + len);
    }
    move_entries(from, to, len);
    // The runtime hears of the move before the mirror record moves, so it can
    // find its client by the old address.
    notify({InvalidationKind::kRemap, from, from + len, to, {}});
    std::lock_guard lk(mirrors_mu_);
    std::vector<std::pair<std::uint64_t, Mirror>> keep;
    MirrorClient* moved_client = nullptr;
    for (auto it = mirrors_.begin(); it != mirrors_.end();) {
      std::uint64_t s = it->first, e = it->second.end;
      if (e <= from || s >= from + len) {
        ++it;
        continue;
      }
      moved_client = it->second.client;
      if (s < from) keep.emplace_back(s, Mirror{from, moved_client, it->second.moved});
      if (e > from + len) keep.emplace_back(from + len, Mirror{e, moved_client, it->second.moved});
      it = mirrors_.erase(it);
    }
    for (auto& k : keep) mirrors_[k.first] = k.second;
    if (moved_client) mirrors_[to] = Mirror{to + len, moved_client, /*moved=*/true};
  }
}

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
  if (ioctl(uffd_, UFFDIO_ZEROPAGE, &z) == 0) return 0;
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
    {
      std::lock_guard lk(entries_mu_);
      auto it = entries_.find(page);
      if (it != entries_.end() && it->second.state == EntryState::kInbound) return false;
    }
    // A stale protection (the migration that set it is over): lift and wake.
    uffdio_writeprotect wp{{page, kPageSize}, 0};
    if (ioctl_retry(uffd_, UFFDIO_WRITEPROTECT, &wp) < 0) wake(page);
    return true;
  }
  // The unit of migrate_to_ram: the faulting page and the device-resident
  // pages around it that belong to the same range (same owner tag; a range
  // never crosses a 2 MiB boundary), as far as they are contiguous in the
  // address space and their frames can be locked now.
  std::uint64_t lo = page, hi = page + kPageSize;
  std::vector<FrameId> run;
  {
    std::lock_guard lk(entries_mu_);
    auto it = entries_.find(page);
    if (it == entries_.end()) {
      // Never touched, or discarded: a zero page. EAGAIN: the mapping is
      // changing under an event we have not applied yet; retry after it.
      cpu_faults_zero_.fetch_add(1, std::memory_order_relaxed);
      return zero_page(page) != EAGAIN;
    }
    const Entry e = it->second;
    if (e.state != EntryState::kResident) return false;  // migrating: wait
    if (!frames_.trylock(e.frame)) return false;         // busy frame: defer
    it->second.state = EntryState::kEvicting;
    const OwnerId owner = frames_.owner(e.frame);
    const std::uint64_t block = page & ~std::uint64_t(kChunkSizes[0] - 1);
    auto join = [&](std::uint64_t a) {
      auto j = entries_.find(a);
      if (j == entries_.end() || j->second.state != EntryState::kResident) return false;
      const FrameId f = j->second.frame;
      if (frames_.owner(f) != owner || !frames_.trylock(f)) return false;
      if (frames_.owner(f) != owner) {  // freed and reused before the lock: not ours
        frames_.unlock(f);
        return false;
      }
      j->second.state = EntryState::kEvicting;
      return true;
    };
    while (lo > block && join(lo - kPageSize)) lo -= kPageSize;
    while (hi < block + kChunkSizes[0] && join(hi)) hi += kPageSize;
    run.reserve((hi - lo) / kPageSize);
    for (std::uint64_t a = lo; a < hi; a += kPageSize) run.push_back(entries_.find(a)->second.frame);
  }
  // migrate_to_ram: the runtime hears first (it bumps its sequence and zaps
  // its GPU mapping of these pages only), then the pages are copied back and
  // the frames freed.
  notify(Invalidation{InvalidationKind::kMigratedToRam, lo, hi, 0, run});
  gpu_.zap_frames(run);
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
    while (j < n && frames_.data(run[j]) == frames_.data(run[j - 1]) + kPageSize) ++j;
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
      for (std::size_t k = done; k < done + got; ++k) placed[k] = 1;
      done += got;
      if (rc == 0 || got > 0) continue;
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
      if (rc != EAGAIN && rc != ENOENT) hard_error = true;
      break;
    }
    i = j;
  }
  if (hard_error) fault_copy_errors_.fetch_add(1, std::memory_order_relaxed);
  std::vector<FrameId> freed;
  {
    std::lock_guard lk(entries_mu_);
    for (std::size_t k = 0; k < n; ++k) {
      const std::uint64_t a = lo + k * kPageSize;
      auto it = entries_.find(a);
      const bool ours = it != entries_.end() && it->second.frame == run[k];
      if (!placed[k]) {
        if (ours) it->second.state = EntryState::kResident;
        continue;
      }
      if (ours) {
        entries_.erase(it);
        placements_.fetch_add(1);
      }
      frame_addr_[run[k]] = 0;
      freed.push_back(run[k]);
    }
  }
  // A placed frame still carries its range's owner tag, so an eviction that
  // trylocks it between our unlock and free would take it for its own (and
  // free it too, or make our free fail on its lock). Retag it first, while
  // locked: an evictor that locks it now sees a foreign owner and lets go,
  // so a free that met such a brief lock is simply retried.
  constexpr OwnerId kBeingFreed = ~OwnerId{0};
  for (std::size_t k = 0; k < n; ++k) {
    if (placed[k]) frames_.set_owner(run[k], kBeingFreed);
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
    cost_.charge_link(moved * kPageSize, pieces);
    pages_to_ram_.fetch_add(moved, std::memory_order_relaxed);
  }
  const bool any_placed = std::find(placed.begin(), placed.end(), 1) != placed.end();
  if (!placed[(page - lo) / kPageSize]) {
    if (any_placed) wake_range(lo, hi);  // other threads may wait on pages that did move
    return false;
  }
  cpu_faults_device_.fetch_add(1, std::memory_order_relaxed);
  wake_range(lo, hi);
  return true;
}

}  // namespace xesvm::sim
