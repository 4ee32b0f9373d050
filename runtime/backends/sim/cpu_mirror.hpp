// The CPU side of the sim device, on userfaultfd.
//
// CpuMirror is the sim's stand-in for the kernel mm under a device driver:
// it registers mirrored regions with userfaultfd, keeps the "device-private
// entries" of pages whose data lives in device frames (DeviceEntries), moves
// system pages into frames (write-protect, copy, drop), serves CPU touches
// of device-resident pages (the MISSING fault handler is migrate_to_ram),
// and turns userfaultfd events (UNMAP, REMOVE, REMAP) into invalidations
// for the runtime, the mmu-notifier analogue.
//
// The class is one object; its parts live in the files named after them:
//   userfaultfd.{hpp,cpp}      host support: feature probe, the descriptor's
//                              side-effect-free probes, ioctl retry
//   process_memory.{hpp,cpp}   procfs: which pages exist, what maps a region
//   device_entries.{hpp,cpp}   the entries table, with its own lock
//   cpu_mirror.cpp             construction, mirrors, settling, notification
//   mapping_events.cpp         the event reader, the service thread and the
//                              ordering rules of UNMAP, REMOVE and REMAP
//   migrate_to_device.cpp      snapshots and the migration to the device
//   migrate_to_ram.cpp         the CPU fault service (and zero pages)
//   eviction_primitives.cpp    unmap, place, finalize: eviction's mechanism
//
// Threads and the sharp edges of userfaultfd:
//  * One *reader* thread reads the descriptor (O_NONBLOCK) and never takes
//    a runtime lock or touches managed memory: the thread that raised an
//    event resumes as soon as the event is read, and the sim's own
//    MADV_DONTNEED waits until its REMOVE event is read. Its wake-up and
//    quit signal is an eventfd (the reader polls both descriptors).
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
// Who zaps GPU page-table entries. Each CPU-side change has exactly one
// owner of the zap of the PTEs it makes stale, the party that runs at the
// moment the kernel would call the driver's mmu notifier:
//  * munmap, MADV_DONTNEED, mremap: the event reader, while the write gate
//    is closed and before the thread that made the change resumes (the
//    runtime hears later, on the service thread; until it has, binds are
//    refused: SimDevice::bind() checks cpu_events_pending() under the GPU
//    page table's lock, which the reader's zap takes too, so a bind from a
//    snapshot older than the zap never lands after it). Nothing else zaps
//    the event's span: the runtime's invalidate() does not.
//  * a CPU touch of device data (migrate_to_ram): the runtime, in
//    MirrorClient::invalidate(kMigratedToRam), which the service thread
//    calls before the copy with the run's frames locked; the runtime bumps
//    its sequence and zaps in one step under its notifier lock, so a bind
//    racing the fault either retries or is zapped. CpuMirror does not zap.
//  * eviction: the runtime, under its notifier lock, through unmap(), whose
//    contract is to zap the frames' PTEs.
// The entries say where each frame's data belongs, and a device PTE may
// name a frame only at that page (check_books() in sim_device.hpp).
//
// Locking: DeviceEntries' mutex is a leaf lock held for table updates only,
// never across a system call that can wait on the reader. The reader holds
// only queue_mu_, recent_mu_ and drop_mu_, all leaf locks, so it never waits
// on anything a faulting or dropping thread holds. The service thread calls
// MirrorClient::invalidate() with no lock of ours held (for
// kMigratedToRam, holding the run's frame locks). Frame locks are only ever
// trylocked here.
#pragma once

#include <atomic>
#include <chrono>
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
#include "runtime/backends/sim/device_entries.hpp"
#include "runtime/backends/sim/userfaultfd.hpp"

namespace xesvm::sim {

class FramePool;
class GpuPageTable;
class CostModel;

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

/// The sim's CPU side. Thread-safe: every public method may be called from
/// any thread (the contracts of MechanismFace in runtime/backend.hpp apply
/// to the methods that implement it). Owns two threads and one userfaultfd
/// descriptor. Not copyable.
class CpuMirror {
 public:
  /// Opens userfaultfd (open_mirror_uffd()) and starts the reader and the
  /// service thread. `allow_kernel_faults` false forces
  /// UFFD_USER_MODE_ONLY even where kernel-mode faults are permitted.
  /// Throws Error (kUnsupported) if userfaultfd or one of its required
  /// features is unavailable, naming the missing feature; (kBackend) if the
  /// eventfd cannot be made. Nothing is left open when it throws. The pool,
  /// table and cost model must outlive the mirror.
  CpuMirror(FramePool& frames, GpuPageTable& gpu, CostModel& cost, bool allow_kernel_faults);
  /// Stops and joins both threads, then closes the descriptors. Faults still
  /// waiting on mirrored memory are not served afterwards: unmirror first.
  ~CpuMirror();
  CpuMirror(const CpuMirror&) = delete;
  CpuMirror& operator=(const CpuMirror&) = delete;

  const UffdFeatures& features() const { return features_; }
  /// How a migration to the device moves a page's bytes, for `xesvm info`.
  std::string migration_path() const;
  /// A snapshot of the counters (each read atomically, not all at once).
  CpuMirrorStats stats() const;

  /// MechanismFace::mirror. Settles every mapping change in flight first.
  /// Throws Error (kInvalidArgument) if the region is unaligned or empty,
  /// overlaps a mirror, is not mapped in full by private anonymous memory
  /// (the message names the mapping), or is registered with another
  /// userfaultfd descriptor; nothing is registered then.
  void mirror(std::uint64_t start, std::size_t len, MirrorClient& client);
  /// MechanismFace::unmirror: unregisters the region and drops its entries.
  /// Throws Error (kInvalidArgument) unless [start, start+len) is one mirror
  /// as a whole (a mirror split by munmap is unmirrored piece by piece).
  void unmirror(std::uint64_t start, std::size_t len);
  /// MechanismFace::snapshot: the entries, plus one pagemap read unless
  /// every page is device-resident.
  void snapshot(std::uint64_t start, std::span<PageSnapshot> out);
  /// MechanismFace::snapshot_device: the entries only, no pagemap read.
  void snapshot_device(std::uint64_t start, std::span<PageSnapshot> out);
  /// MechanismFace::migrate_to_device. Returns the pages moved; the frames
  /// of pages that did not move are set to kNoFrame (the caller frees them).
  /// A page does not move if it has an entry already, its run could not be
  /// write-protected or read, a mapping change touched the run meanwhile, or
  /// MADV_DONTNEED left it in RAM (mlock). Never throws for such pages.
  std::size_t migrate_to_device(std::span<const std::uint64_t> addrs, std::span<FrameId> frames);

  // Eviction primitives (MechanismFace; frames locked by the caller).

  /// The page the frame's data belongs to (its migration entry), 0 if none.
  std::uint64_t frame_address(FrameId frame) const;
  /// Marks the frames' entries kEvicting (CPU touches wait, snapshots report
  /// the CPU page) and zaps every GPU PTE that maps one of them.
  void unmap(std::span<const FrameId> frames);
  /// Places len bytes from src (device frame memory) at CPU address addr.
  /// Returns the bytes placed from the start and, if not all, the errno
  /// that stopped it; on EAGAIN/ENOENT all pending events have been applied
  /// before it returns, so frame_address() tells where to retry the rest.
  /// ENOENT also when the entries no longer name these frames at addr.
  CopyStatus place(std::uint64_t addr, const std::byte* src, std::size_t len);
  /// Committed frames lose their entry, the others go back to kResident;
  /// every frame is unlocked and deferred CPU faults are retried.
  void finalize(std::span<const FrameId> frames, std::span<const std::uint8_t> committed);

  /// Maps a zero-filled page at each page of `pages` that has no CPU page
  /// yet. In user-mode-only mode the kernel does not resolve a missing page
  /// for the GPU's process_vm_readv/writev (EFAULT), so a bind of absent
  /// system pages must populate them first. Pages that exist are left alone;
  /// a page whose mapping is changing is left to fault again.
  void populate_absent(std::span<const std::uint64_t> pages);
  /// Waits until every event the kernel has queued so far is applied.
  /// REQUIRES: not called on the service thread (it would wait on itself).
  void drain();
  /// Waits (bounded, 5 s) until no mapping change of mirrored memory is in
  /// flight (begun by the kernel, event not read yet), then applies every
  /// event read: afterwards no event older than the call is still to come.
  void settle_mapping_changes();
  /// True while the kernel has begun an munmap, mremap, MADV_DONTNEED or
  /// fork touching mirrored memory whose event is not read yet.
  bool mapping_change_in_flight() const;
  /// True while a mapping event (UNMAP, REMOVE, REMAP) is read but not applied.
  bool events_pending() const { return events_applied_.load() < events_read_.load(); }

  /// The device-private entries (read them; tests may corrupt them through
  /// its test hook to prove a checker).
  DeviceEntries& entries() { return entries_; }
  const DeviceEntries& entries() const { return entries_; }

  /// Test hook: the next n copies of the CPU fault service
  /// (migrate_to_ram) fail with ENOMEM.
  void inject_fault_copy_failures(unsigned n) { fault_copy_failures_.store(n); }
  /// Test hook: the next n placements fail with EIO.
  void inject_place_failures(unsigned n) { place_failures_.store(n); }
  /// Test hook: the next placement of more than `pages` pages places only
  /// the first `pages` of them, then fails with EIO (a copy that stops
  /// partway through a run).
  void inject_short_placement(std::size_t pages) { short_placement_.store(pages); }
  /// Test hook: the reader sleeps `d` after every wake-up before it reads
  /// the descriptor (a reader a loaded machine schedules late); zero ends it.
  void delay_reader(std::chrono::microseconds d) { reader_delay_us_.store(d.count()); }

 private:
  struct Mirror {
    std::uint64_t end;
    MirrorClient* client;
    bool moved;  // put here by a REMAP, not by mirror()
  };
  struct Message {
    std::uint8_t event;
    std::uint64_t a, b, c;  // address/flags or start/end/new
  };

  // mapping_events.cpp
  void reader_loop(const std::stop_token& st);
  void service_loop(std::stop_token st);
  void apply(const Message& m);
  void unmap_span(std::uint64_t start, std::uint64_t end);
  std::optional<Message> take_queued_move_from(std::uint64_t start, std::uint64_t end);
  // Waits until the reader has finished two passes that began after the
  // call: everything the kernel queued before it is then in queue_.
  // REQUIRES: lk holds queue_mu_ (released while waiting).
  void await_reader_passes(std::unique_lock<std::mutex>& lk);
  std::vector<std::pair<std::uint64_t, std::uint64_t>> live_moved_pieces(std::uint64_t start, std::uint64_t end);
  // True if [start, end), read in read number `read`, lies in one of our
  // own drops; forgets the drops retired before that read.
  bool is_dropping(std::uint64_t start, std::uint64_t end, std::uint64_t read);
  // True if a mapping event overlapping [start, end) was read after the
  // reader had seen `since` mapping events.
  bool mapping_changed_since(std::uint64_t since, std::uint64_t start, std::uint64_t end);
  // cpu_mirror.cpp
  void notify(const Invalidation& inv);
  // migrate_to_ram.cpp
  bool serve_fault(std::uint64_t page, std::uint64_t flags);  // false: defer
  int zero_page(std::uint64_t page);
  void wake(std::uint64_t page);
  void wake_range(std::uint64_t start, std::uint64_t end);
  // True until the reader has been asked to stop or has ended.
  bool reader_running() const { return !reader_stopped_.load() && !reader_.get_stop_token().stop_requested(); }
  // ioctl_retry() on our descriptor, bounded by the reader's end only.
  int uffd_ioctl(unsigned long req, void* arg) {
    return ioctl_retry(uffd_, req, arg, [this] { return reader_running(); });
  }
  // eviction_primitives.cpp
  bool placement_current(std::uint64_t addr, const std::byte* src, std::size_t len);

  FramePool& frames_;
  GpuPageTable& gpu_;
  CostModel& cost_;
  int uffd_ = -1;
  int wake_fd_ = -1;  // eventfd: wakes the reader (drain, shutdown)
  UffdFeatures features_;

  DeviceEntries entries_;  // page -> device-private entry, frame -> page

  std::mutex mirrors_mu_;
  std::map<std::uint64_t, Mirror> mirrors_;  // start -> mirror

  std::mutex drop_mu_;
  // Our own MADV_DONTNEEDs: [start, end) and, once madvise has returned,
  // the last read that can carry one of their REMOVE events.
  static constexpr std::uint64_t kDropLive = ~std::uint64_t{0};
  struct Drop {
    std::uint64_t start, end, retired_after;
  };
  std::vector<Drop> dropping_;  // drop_mu_

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;    // reads done, messages applied (drain(), migrations)
  std::condition_variable service_cv_;  // messages queued for the service thread (or stop)
  std::deque<Message> queue_;
  std::vector<Message> deferred_;
  std::uint64_t read_count_ = 0;     // messages queued (queue_mu_)
  std::uint64_t applied_count_ = 0;  // messages applied (queue_mu_)
  std::uint64_t empty_passes_ = 0;   // reader passes that found the fd empty
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
  std::atomic<std::int64_t> reader_delay_us_{0};
  std::atomic<bool> reader_stopped_{false};  // reader_loop() has returned

  std::jthread reader_;
  std::jthread service_;
};

}  // namespace xesvm::sim
