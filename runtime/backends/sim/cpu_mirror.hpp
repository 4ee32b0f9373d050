// The CPU side of the sim device, on userfaultfd.
//
// CpuMirror is the sim's stand-in for the kernel mm under a device driver:
// it registers mirrored regions with userfaultfd, keeps the "device-private
// entries" of pages whose data lives in device frames, moves system pages
// into frames (write-protect, copy, drop), serves CPU touches of
// device-resident pages (the MISSING fault handler is migrate_to_ram), and
// turns userfaultfd events (UNMAP, REMOVE, REMAP) into invalidations for the
// runtime, the mmu-notifier analogue.
//
// Threads and the sharp edges of userfaultfd:
//  * One *reader* thread reads the descriptor (O_NONBLOCK) and never takes
//    a runtime lock or touches managed memory: the thread that raised an
//    event resumes as soon as the event is read, and the sim's own
//    MADV_DONTNEED waits until its REMOVE event is read.
//  * One *service* thread applies what the reader read, strictly in order:
//    events update the device-private entries and call the runtime's
//    MirrorClient; page faults are served or deferred. It may block on the
//    runtime's notifier lock, never on a frame lock (trylock, then defer).
//  * Events arrive after the fact, so a placement (UFFDIO_COPY) that fails
//    with EAGAIN or ENOENT first drains every pending event (drain()) and
//    then looks up where the page lives now: its bytes may be needed at a
//    new address after mremap.
//  * Events of different threads arrive out of order: munmap and mremap
//    free addresses before queueing their event, so another thread's
//    mapping there, and its event, can come first. mirror() first settles
//    every change in flight (settle_mapping_changes()); a REMAP applies an
//    older move out of its target first and drops whatever else is recorded
//    there; an UNMAP spares what a REMAP moved in and the kernel still has
//    registered (registration()); place() only writes where the page's
//    entry still names the frame being evicted.
//
// Locking: entries_mu_ guards the device-private entries and the frame ->
// address table; it is a leaf lock held for table updates only, never
// across a system call that can wait on the reader.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "runtime/backend.hpp"

namespace xesvm::sim {

class FramePool;
class GpuPageTable;
class CostModel;

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
  std::string describe() const;
};

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

/// Counters of the CPU side.
struct CpuMirrorStats {
  std::uint64_t cpu_faults_device = 0;  ///< MISSING faults on device-resident pages
  std::uint64_t cpu_faults_zero = 0;    ///< MISSING faults on never-touched pages
  std::uint64_t pages_to_ram = 0;       ///< pages moved back by CPU faults (a fault moves its run)
  std::uint64_t events = 0;             ///< UNMAP/REMOVE/REMAP applied
  std::uint64_t deferred = 0;           ///< faults deferred on a busy frame
  std::uint64_t stale_unmaps = 0;       ///< UNMAP pieces older than a REMAP onto them, ignored
  std::uint64_t unreadable_runs = 0;    ///< runs left in RAM: a page could not be read
  std::uint64_t unmovable_runs = 0;     ///< runs (partly) left in RAM: MADV_DONTNEED refused (mlock)
  std::uint64_t fault_copy_errors = 0;  ///< CPU-fault copies that failed (page kept on the device, retried)
  std::uint64_t pagemap_reads = 0;      ///< reads of /proc/self/pagemap (snapshots, migrations)
};

class CpuMirror {
 public:
  /// Opens userfaultfd. `allow_kernel_faults` false forces
  /// UFFD_USER_MODE_ONLY even where kernel-mode faults are permitted.
  /// Throws Error (kUnsupported) if userfaultfd or its write-protect mode is
  /// unavailable, naming the missing feature.
  CpuMirror(FramePool& frames, GpuPageTable& gpu, CostModel& cost, bool allow_kernel_faults);
  ~CpuMirror();
  CpuMirror(const CpuMirror&) = delete;
  CpuMirror& operator=(const CpuMirror&) = delete;

  const UffdFeatures& features() const { return features_; }
  /// How a migration to the device moves a page's bytes, for `xesvm info`.
  std::string migration_path() const;
  CpuMirrorStats stats() const;

  /// MechanismFace::mirror / unmirror.
  void mirror(std::uint64_t start, std::size_t len, MirrorClient& client);
  void unmirror(std::uint64_t start, std::size_t len);
  /// MechanismFace::snapshot.
  void snapshot(std::uint64_t start, std::span<PageSnapshot> out);
  /// MechanismFace::snapshot_device: the entries only, no pagemap read.
  void snapshot_device(std::uint64_t start, std::span<PageSnapshot> out);
  /// MechanismFace::migrate_to_device.
  std::size_t migrate_to_device(std::span<const std::uint64_t> addrs, std::span<FrameId> frames);

  // Eviction primitives (frames locked by the caller).
  std::uint64_t frame_address(FrameId frame) const;
  void unmap(std::span<const FrameId> frames);
  /// Places len bytes from src (device frame memory) at CPU address addr.
  /// Returns the bytes placed from the start and, if not all, the errno
  /// that stopped it; on EAGAIN/ENOENT all pending events have been applied
  /// before it returns, so frame_address() tells where to retry the rest.
  CopyStatus place(std::uint64_t addr, const std::byte* src, std::size_t len);
  void finalize(std::span<const FrameId> frames, std::span<const std::uint8_t> committed);

  /// Maps a zero-filled page at each page of `pages` that has no CPU page
  /// yet. In user-mode-only mode the kernel does not resolve a missing page
  /// for the GPU's process_vm_readv/writev (EFAULT), so a bind of absent
  /// system pages must populate them first. Pages that exist are left alone.
  void populate_absent(std::span<const std::uint64_t> pages);
  /// Waits until every event the kernel has queued so far is applied.
  void drain();
  /// Waits (bounded) until no mapping change of mirrored memory is in flight
  /// (begun by the kernel, event not read yet), then applies every event
  /// read: afterwards no event older than the call is still to come.
  void settle_mapping_changes();
  /// True while the kernel has begun an munmap, mremap, MADV_DONTNEED or
  /// fork touching mirrored memory whose event is not read yet.
  bool mapping_change_in_flight() const;
  /// True while a mapping event (UNMAP, REMOVE, REMAP) is read but not applied.
  bool events_pending() const { return events_applied_.load() < events_read_.load(); }
  /// Test hook: the next n copies of the CPU fault service
  /// (migrate_to_ram) fail with ENOMEM.
  void inject_fault_copy_failures(unsigned n) { fault_copy_failures_.store(n); }
  /// Test hook: the next n placements fail with EIO.
  void inject_place_failures(unsigned n) { place_failures_.store(n); }
  /// Test hook: the next placement of more than `pages` pages places only
  /// the first `pages` of them, then fails with EIO (a copy that stops
  /// partway through a run).
  void inject_short_placement(std::size_t pages) { short_placement_.store(pages); }

 private:
  enum class EntryState : std::uint8_t { kInbound, kResident, kEvicting };
  struct Entry {
    FrameId frame;
    EntryState state;
  };
  struct Mirror {
    std::uint64_t end;
    MirrorClient* client;
    bool moved;  // put here by a REMAP, not by mirror()
  };
  struct Message {
    std::uint8_t event;
    std::uint64_t a, b, c;  // address/flags or start/end/new
  };

  void reader_loop(std::stop_token st);
  void service_loop(std::stop_token st);
  void apply(const Message& m);
  bool serve_fault(std::uint64_t page, std::uint64_t flags);  // false: defer
  void notify(const Invalidation& inv);
  void move_entries(std::uint64_t from, std::uint64_t to, std::uint64_t len);
  void unmap_span(std::uint64_t start, std::uint64_t end);
  bool placement_current(std::uint64_t addr, const std::byte* src, std::size_t len);
  std::optional<Message> take_queued_move_from(std::uint64_t start, std::uint64_t end);
  // Waits until the reader has finished two passes that began after the
  // call: everything the kernel queued before it is then in queue_.
  // REQUIRES: lk holds queue_mu_ (released while waiting).
  void await_reader_passes(std::unique_lock<std::mutex>& lk);
  std::vector<std::pair<std::uint64_t, std::uint64_t>> live_moved_pieces(std::uint64_t start, std::uint64_t end);
  void drop_entries(std::uint64_t start, std::uint64_t end);
  bool is_dropping(std::uint64_t start, std::uint64_t end);
  int zero_page(std::uint64_t page);
  void wake(std::uint64_t page);
  void wake_range(std::uint64_t start, std::uint64_t end);

  FramePool& frames_;
  GpuPageTable& gpu_;
  CostModel& cost_;
  int uffd_ = -1;
  int wake_fd_ = -1;  // eventfd: wakes the reader (drain, shutdown)
  UffdFeatures features_;

  mutable std::mutex entries_mu_;
  std::unordered_map<std::uint64_t, Entry> entries_;  // page -> device-private entry
  std::vector<std::uint64_t> frame_addr_;             // frame -> page (0 = none)
  std::atomic<std::uint64_t> placements_{0};          // entries erased once their page was placed in RAM

  std::mutex mirrors_mu_;
  std::map<std::uint64_t, Mirror> mirrors_;  // start -> mirror

  std::mutex drop_mu_;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> dropping_;  // own DONTNEEDs in flight

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;    // reads done, messages applied (drain(), migrations)
  std::condition_variable service_cv_;  // messages queued for the service thread (or stop)
  std::deque<Message> queue_;
  std::vector<Message> deferred_;
  std::uint64_t read_count_ = 0;     // messages queued (queue_mu_)
  std::uint64_t applied_count_ = 0;  // messages applied (queue_mu_)
  std::uint64_t empty_passes_ = 0;   // reader passes that found the fd empty
  // True if a mapping event overlapping [start, end) was read after the
  // reader had seen `since` mapping events.
  bool mapping_changed_since(std::uint64_t since, std::uint64_t start, std::uint64_t end);
  std::mutex recent_mu_;
  std::deque<std::tuple<std::uint64_t, std::uint64_t, std::uint64_t>> recent_;  // (seq, start, end)
  std::atomic<std::uint64_t> events_read_{0};                                   // mapping events seen by the reader
  std::atomic<std::uint64_t> events_applied_{0};                                // ... and applied by the service thread
  std::atomic<std::uint64_t> reads_started_{0};                                 // read() calls begun by the reader
  std::atomic<std::uint64_t> reads_done_{0};                                    // ... and fully processed

  std::atomic<std::uint64_t> cpu_faults_device_{0}, cpu_faults_zero_{0}, pages_to_ram_{0}, events_{0},
      deferred_count_{0}, stale_unmaps_{0}, unreadable_runs_{0}, unmovable_runs_{0}, fault_copy_errors_{0},
      pagemap_reads_{0};
  std::atomic<unsigned> place_failures_{0};
  std::atomic<unsigned> fault_copy_failures_{0};
  std::atomic<std::size_t> short_placement_{0};

  std::jthread reader_;
  std::jthread service_;
};

}  // namespace xesvm::sim
