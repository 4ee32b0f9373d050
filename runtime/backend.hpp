// The backend seam: what the runtime needs from "kernel + GPU".
//
// A backend plays the part of the kernel driver and the GPU. Every backend
// has a *policy face* (PolicyFace): mirror a CPU region, advise, prefetch,
// evict, report residency and device-memory use, wait for completion. The
// public API and the runtime's memory-pressure policy speak only to this face.
//
// Backends whose memory management lives in user space (the sim device) also
// have a *mechanism face* (MechanismFace): device frames, a page snapshot,
// migration of system pages to device frames, the frame primitives of the
// eviction path (trylock, unmap, commit, finalize) and the GPU page table.
// For such a backend the runtime itself implements the policy face on top of
// the mechanism face (runtime/svm_manager.hpp), exactly as a kernel driver
// implements it on top of the mm core. For the Xe backend the kernel owns the
// mechanism; Backend::mechanism() then returns nullptr and nothing pretends
// otherwise.
//
// Concurrency: every method of both faces may be called from any thread
// unless it says otherwise. Callbacks a backend makes into the runtime
// (MirrorClient) arrive on backend-owned threads; the contract for each says
// which locks the backend holds while calling.
//
// Ownership: a Backend is owned by exactly one Runtime (std::unique_ptr). Face
// references returned by a Backend live as long as the Backend. None of the
// classes here may be copied.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "xesvm/xesvm.hpp"

namespace xesvm {

/// Size of a CPU page and of a device frame.
inline constexpr std::size_t kPageSize = 4096;
inline constexpr std::size_t kPageShift = 12;

/// Chunk sizes a range may take, largest first (DESIGN.md: 2 MiB, 64 KiB, 4 KiB).
inline constexpr std::size_t kChunkSizes[] = {2u << 20, 64u << 10, 4u << 10};

/// Index of one 4 KiB frame of device memory.
using FrameId = std::uint32_t;
inline constexpr FrameId kNoFrame = 0xffffffffu;

/// The owner tag stored with every device frame (the zone_device_data
/// analogue): the id of the SVM range whose data the frame holds. 0 = free.
using OwnerId = std::uint64_t;
inline constexpr OwnerId kNoOwner = 0;

/// Where one page's data lives, as seen by a snapshot.
enum class PagePlace : std::uint8_t {
  kAbsent,  ///< nothing mapped by the CPU yet (reads as zeros)
  kSystem,  ///< a CPU page in RAM
  kDevice,  ///< a device frame owned by this backend
};

/// One page of a snapshot (the hmm_range_fault analogue, per 4 KiB page).
struct PageSnapshot {
  PagePlace place = PagePlace::kAbsent;
  bool writable = false;
  FrameId frame = kNoFrame;  ///< valid when place == kDevice
};

/// How the CPU maps one span of addresses (its VMA's protection).
struct CpuProtection {
  std::uint64_t start = 0, end = 0;  ///< [start, end), page aligned
  bool readable = false;
  bool writable = false;
};

/// Kinds of CPU-side change a backend reports for a mirrored region.
enum class InvalidationKind : std::uint8_t {
  kUnmap,          ///< munmap: the range is gone; free its device frames
  kDiscard,        ///< madvise(DONTNEED) by the application: the bytes are zero now
  kRemap,          ///< mremap: [start,end) moved to [new_start, new_start+len)
  kMigratedToRam,  ///< a CPU touch moved device pages back (migrate_to_ram)
};

/// One invalidation, delivered to MirrorClient::invalidate().
///
/// Who zaps the GPU PTEs it makes stale (one owner per kind):
///  * kUnmap, kDiscard, kRemap: the backend, for the event's span, before
///    the thread that made the change resumes (the moment the kernel calls
///    its mmu notifiers; the sim's event reader does it with the GPU's
///    system-write gate closed). Only the backend runs at that moment: the
///    runtime hears of the change later, on the backend's service thread.
///    Until it has, MechanismFace::bind() refuses, so no bind can write a
///    PTE after the zap from a snapshot taken before it. The client bumps
///    its sequence, drops its books and must not zap the span again; the
///    rest of a range the event covers only in part stays bound until the
///    client removes the range.
///  * kMigratedToRam: the client, in invalidate(), under its notifier lock
///    together with the sequence bump (the backend never zaps for it).
struct Invalidation {
  InvalidationKind kind;
  std::uint64_t start;      ///< first byte, page aligned
  std::uint64_t end;        ///< one past the last byte, page aligned
  std::uint64_t new_start;  ///< kRemap only: where [start,end) went
  /// kMigratedToRam only: the frames whose bytes are being moved back to
  /// RAM by a CPU fault (migrate_to_ram). The backend calls the client
  /// before the copy, holding these frames' locks; the client drops its
  /// references to them (and its GPU bindings of the pages) and must not
  /// lock, free or evict them. The backend then copies the bytes home and
  /// frees the frames itself (if the copy fails the page stays on the
  /// device and the backend retries the fault; the client's books then say
  /// RAM for a page still on the device until the next snapshot, which is
  /// safe: the page is not bound and any access faults).
  std::vector<FrameId> frames;
};

/// The runtime's side of a mirror: the mmu-notifier analogue.
class MirrorClient {
 public:
  virtual ~MirrorClient() = default;
  /// Called in event order on one backend thread (never the event reader).
  /// The backend holds none of its own locks while calling, so the client
  /// may take its notifier lock and call back into the backend -- except
  /// for kMigratedToRam, called with the listed frames' locks held (frame
  /// lock -> notifier lock is the documented order).
  virtual void invalidate(const Invalidation& inv) = 0;
};

/// What a copy of one run of pages achieved: its first `bytes` are in place
/// (a multiple of kPageSize); `error` is 0 if the whole run is, else the
/// errno that stopped it.
struct CopyStatus {
  std::size_t bytes = 0;
  int error = 0;
};

/// Device-memory figures, in bytes.
struct DeviceMemoryUse {
  std::uint64_t total = 0;
  std::uint64_t used = 0;
  std::uint64_t high_water = 0;
};

/// Mechanism face: only backends whose memory management is in user space.
///
/// Frame lifetime: alloc_frames() returns frames owned by the caller with the
/// given owner tag; they stay allocated until free_frames(). A frame lock is a
/// bit lock like the kernel's page lock: frame_trylock() never blocks, and
/// the lock order is frame lock -> runtime notifier lock, so under the
/// notifier lock only trylock is legal.
class MechanismFace {
 public:
  MechanismFace() = default;
  MechanismFace(const MechanismFace&) = delete;
  MechanismFace& operator=(const MechanismFace&) = delete;
  virtual ~MechanismFace() = default;

  // --- device memory ---------------------------------------------------

  /// Allocates bytes/kPageSize frames in naturally aligned chunks of `chunk`
  /// bytes (one of kChunkSizes), tagging each with `owner`. Returns the
  /// frames in address order, or std::nullopt when device memory is short
  /// (nothing is allocated then). REQUIRES: bytes is a multiple of chunk.
  virtual std::optional<std::vector<FrameId>> alloc_frames(std::size_t bytes, std::size_t chunk, OwnerId owner) = 0;
  /// Returns frames to the pool. REQUIRES: frames are allocated, unlocked,
  /// and no GPU page-table entry points at them.
  virtual void free_frames(std::span<const FrameId> frames) = 0;
  /// The owner tag recorded with a frame (kNoOwner if free).
  virtual OwnerId frame_owner(FrameId frame) const = 0;
  /// Every allocated frame tagged with `owner` (the allocation entry point
  /// of eviction: no VA, no CPU mapping lookup).
  virtual std::vector<FrameId> frames_of(OwnerId owner) const = 0;
  virtual DeviceMemoryUse device_memory() const = 0;

  // --- CPU side ----------------------------------------------------------

  /// Starts mirroring [start, start+len): CPU-side changes are reported to
  /// `client`. Throws Error if the region is not mapped, not page aligned, or
  /// already mirrored. The client must outlive the mirror.
  virtual void mirror(std::uint64_t start, std::size_t len, MirrorClient& client) = 0;
  /// Stops mirroring. REQUIRES: no device frames hold data of the region.
  virtual void unmirror(std::uint64_t start, std::size_t len) = 0;

  /// Fills out[i] for each page of [start, start + out.size()*kPageSize).
  /// Device pages are reported only if owned by this backend. Never faults.
  virtual void snapshot(std::uint64_t start, std::span<PageSnapshot> out) = 0;
  /// Like snapshot(), but exact only about device pages: every other page
  /// is reported kSystem (writable) whether or not the CPU has populated
  /// it. For callers that only ask which pages live in device frames
  /// (migration, eviction by VA); a backend that must walk page tables to
  /// tell absent pages from present ones skips that walk here. Never faults.
  virtual void snapshot_device(std::uint64_t start, std::span<PageSnapshot> out) { snapshot(start, out); }

  /// The CPU's protection of [start, end) as spans in address order;
  /// addresses no mapping covers are left out (not accessible). Device
  /// access must obey it as HMM does: no GPU read of a page the CPU may not
  /// read, no GPU write of a page it may not write. The default says all is
  /// read-write (backends whose mappings the runtime cannot see).
  virtual std::vector<CpuProtection> cpu_protection(std::uint64_t start, std::uint64_t end) const {
    return {CpuProtection{start, end, true, true}};
  }

  /// Moves the system pages at `addrs` into `frames` (same length): CPU
  /// writers wait during the copy (write-protect), then the CPU pages are
  /// dropped so a later CPU touch faults and migrates back. Returns how many
  /// pages moved; pages that could not move (unmapped meanwhile) have their
  /// frame set to kNoFrame in `frames` and stay the caller's to free.
  virtual std::size_t migrate_to_device(std::span<const std::uint64_t> addrs, std::span<FrameId> frames) = 0;

  // --- eviction primitives -------------------------------------------

  /// Never blocks. True if the caller now holds the frame's lock.
  virtual bool frame_trylock(FrameId frame) = 0;
  virtual void frame_unlock(FrameId frame) = 0;
  /// The CPU address a locked frame's data belongs to, as the device knows
  /// it (the migration entry): follows mremap. 0 if the data's mapping is
  /// gone (munmap), in which case the frame needs no copy back.
  virtual std::uint64_t frame_address(FrameId frame) const = 0;
  /// Unmaps locked frames: GPU mappings of them are zapped and CPU touches of
  /// their addresses wait until finalize(). REQUIRES: frames locked.
  virtual void unmap(std::span<const FrameId> frames) = 0;
  /// The copy engine of eviction: places len bytes from src (device frame
  /// memory of locked, unmapped frames) as the CPU pages at [addr, addr+len),
  /// allocating the RAM pages without any CPU mapping lookup by the runtime.
  /// Copy and commit in one (for the sim: UFFDIO_COPY). Returns how many
  /// bytes from the start are in place and, if not all, the errno that
  /// stopped it: on EAGAIN/ENOENT every pending CPU event has been applied
  /// before it returns, so frame_address() then says where each remaining
  /// frame's data belongs now (0: nowhere, the bytes are no longer needed).
  /// Pages reported in place must not be placed again: a second placement
  /// fails (EEXIST), the page exists.
  virtual CopyStatus place(std::uint64_t addr, const std::byte* src, std::size_t len) = 0;
  /// Ends an eviction: committed frames lose their CPU migration state and
  /// their pages are RAM again; uncommitted ones go back to device-resident.
  /// Unlocks every frame. Does not free them.
  virtual void finalize(std::span<const FrameId> frames, std::span<const std::uint8_t> committed) = 0;
  /// Read-only view of a frame's bytes. REQUIRES: caller holds the lock or
  /// otherwise keeps the frame from being freed.
  virtual std::span<const std::byte> frame_bytes(FrameId frame) const = 0;

  /// True while a CPU mapping change (munmap, mremap, discard) has been seen
  /// by the device but not yet delivered to MirrorClient::invalidate(): the
  /// snapshot may describe a mapping that is already gone, so a bind must
  /// wait. Backends that deliver invalidations synchronously return false.
  virtual bool cpu_events_pending() const { return false; }

  // --- GPU page table ------------------------------------------------------

  /// Writes GPU PTEs for [start, start + pages.size()*kPageSize): device
  /// pages map their frame, system pages map the CPU address. Returns true
  /// when written. Returns false, writing nothing, while a CPU mapping
  /// change the backend has zapped is not yet delivered to
  /// MirrorClient::invalidate() (cpu_events_pending(), checked atomically
  /// with the write): the snapshot may describe a mapping that is gone and
  /// no later zap would clear the PTEs; the caller waits and starts over.
  [[nodiscard]] virtual bool bind(std::uint64_t start, std::span<const PageSnapshot> pages) = 0;
  /// Clears GPU PTEs of [start, end). The runtime calls it for its own
  /// changes of placement (migration, range removal, protection); the zaps
  /// of CPU mapping changes are the backend's (see Invalidation).
  virtual void unbind(std::uint64_t start, std::uint64_t end) = 0;
};

/// Policy face: every backend. Implemented by the kernel for Xe and by the
/// runtime's SvmManager for mechanism backends.
class PolicyFace {
 public:
  PolicyFace() = default;
  PolicyFace(const PolicyFace&) = delete;
  PolicyFace& operator=(const PolicyFace&) = delete;
  virtual ~PolicyFace() = default;

  /// Makes [start, start+len) usable by the GPU at the same addresses.
  /// Throws Error on bad input (unaligned, zero, overlapping, unmapped).
  virtual void mirror(std::uint64_t start, std::size_t len) = 0;
  /// Undoes mirror(): device-resident data is brought back first.
  virtual void unmirror(std::uint64_t start, std::size_t len) = 0;
  /// Records advice for [start, start+len). Returns false if the backend
  /// cannot apply this advice (it is then reported, never silently dropped).
  virtual bool advise(std::uint64_t start, std::size_t len, const Advice& advice) = 0;
  /// Moves [start, start+len) to `where` now. Returns bytes moved.
  virtual std::uint64_t prefetch(std::uint64_t start, std::size_t len, Location where) = 0;
  /// Evicts device-resident data of [start, start+len) to RAM.
  virtual EvictResult evict(std::uint64_t start, std::size_t len) = 0;
  /// Bytes of [start, start+len) resident in device memory.
  virtual Residency residency(std::uint64_t start, std::size_t len) = 0;
  virtual DeviceMemoryUse device_memory() = 0;
  /// Waits until every operation issued so far is complete.
  virtual void wait() = 0;
};

/// The runtime's GPU fault handler, called by an execution engine.
class GpuFaultHandler {
 public:
  virtual ~GpuFaultHandler() = default;
  /// Resolves a GPU fault at `addr` (any byte of the faulting page) for
  /// `access`, called on the engine worker that faulted, with no engine or
  /// backend lock held. Returns true when the access may be retried, false
  /// when the address is not SVM memory (a fatal GPU fault).
  virtual bool handle_gpu_fault(std::uint64_t addr, Access access) = 0;
};

/// The accessed bits of a GPU page table: the device's record of use.
///
/// The GPU sets a PTE's bit on every access made through it; the runtime's
/// pressure policy reads and clears them in a CLOCK sweep, so victims are
/// chosen by GPU use rather than by the last fault (a range that stays bound
/// faults once and is used for ever after). May be called from any thread,
/// concurrently with kernels; a bit set by an access racing the clear may be
/// seen by this call or by the next one.
class AccessedBits {
 public:
  AccessedBits() = default;
  AccessedBits(const AccessedBits&) = delete;
  AccessedBits& operator=(const AccessedBits&) = delete;
  virtual ~AccessedBits() = default;
  /// Returns true if the GPU accessed a page of [start, end) through its
  /// PTE since the last call covering that page, and clears those bits.
  /// Returns false for an empty span or one nothing maps. Never fails.
  virtual bool test_and_clear_accessed(std::uint64_t start, std::uint64_t end) = 0;
};

/// An execution engine: runs kernels whose memory accesses go through a
/// DeviceAccessor over the backend's GPU page table.
class Engine {
 public:
  Engine() = default;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  virtual ~Engine() = default;
  /// Sets the fault handler (REQUIRES: no kernel running). May be nullptr.
  virtual void set_fault_handler(GpuFaultHandler* handler) = 0;
  /// Runs `kernel` for global_size work items and waits for completion.
  /// Rethrows the first exception a work item threw.
  virtual void launch(std::uint64_t global_size, const Kernel& kernel) = 0;
  virtual unsigned workers() const = 0;
  /// The accessed bits its accesses set in the GPU page table it walks, or
  /// nullptr if it keeps none (the runtime then orders victims by their last
  /// GPU fault). Lives as long as the engine.
  virtual AccessedBits* accessed_bits() { return nullptr; }
};

/// One device copy or fill in flight: the backend's side of a Completion
/// (xesvm.hpp). Destroying it without a successful wait waits for the work
/// (bounded by the backend's own timeout) so no resource it uses is freed
/// under the device.
class DeviceWork {
 public:
  DeviceWork() = default;
  DeviceWork(const DeviceWork&) = delete;
  DeviceWork& operator=(const DeviceWork&) = delete;
  virtual ~DeviceWork() = default;
  /// True once the work has finished (successfully or not). Never blocks.
  virtual bool done() = 0;
  /// Waits up to `timeout` for the work. Returns when it finished
  /// successfully; throws Error (kBusy) on timeout (the work goes on),
  /// (kDeviceLost) when the device faulted on an address that is not SVM
  /// memory (the message names it, or the spans the work touched when the
  /// device does not say which address), or the backend's error.
  virtual void wait(std::chrono::nanoseconds timeout) = 0;
};

/// Device-side bulk operations of a backend that runs them itself (the xe
/// backend: batch buffers on its copy engine). Backends with an Engine get
/// them from the runtime instead (runtime/device_copy.hpp).
class CopyFace {
 public:
  CopyFace() = default;
  CopyFace(const CopyFace&) = delete;
  CopyFace& operator=(const CopyFace&) = delete;
  virtual ~CopyFace() = default;
  /// Starts copying n bytes from GPU address src to dst. REQUIRES: n > 0,
  /// [src, src+n) and [dst, dst+n) do not overlap. Returns the work in
  /// flight; throws Error when it cannot be started.
  virtual std::unique_ptr<DeviceWork> copy(std::uint64_t dst, std::uint64_t src, std::uint64_t n) = 0;
  /// Starts filling n bytes at dst with `pattern` (pattern_size 1, 2 or 4
  /// bytes, repeated from dst on). REQUIRES: n > 0, n and dst multiples of
  /// pattern_size. Throws Error when it cannot be started.
  virtual std::unique_ptr<DeviceWork> fill(std::uint64_t dst, std::uint32_t pattern, unsigned pattern_size,
                                           std::uint64_t n) = 0;
};

/// What a backend can do.
struct BackendInfo {
  std::string name;                                             ///< "sim", "xe"
  std::string description;                                      ///< human-readable, for `xesvm info`
  std::vector<std::pair<std::string, std::string>> properties;  ///< extra key/values
};

/// A backend. Says which faces it has; never fakes one it lacks.
class Backend {
 public:
  Backend() = default;
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;
  virtual ~Backend() = default;

  virtual BackendInfo info() const = 0;
  /// The mechanism face, or nullptr if the memory management of this backend
  /// lives in the kernel.
  virtual MechanismFace* mechanism() { return nullptr; }
  /// The policy face, or nullptr if the runtime must provide it on top of
  /// mechanism().
  virtual PolicyFace* policy() { return nullptr; }
  /// The execution engine, or nullptr if kernels cannot run on this backend.
  virtual Engine* engine() { return nullptr; }
  /// Device copy and fill run by the backend itself, or nullptr (the
  /// runtime then runs them on engine(), if there is one).
  virtual CopyFace* copier() { return nullptr; }
  /// Why launch() of a host kernel (a C++ callable) cannot run here, when
  /// engine() is nullptr; "" to use the generic message.
  virtual std::string launch_unsupported_reason() const { return ""; }
  /// True if a system call touching device-resident memory migrates it back
  /// (the kernel resolves the fault). Backends whose kernel is the driver
  /// always do; the sim only with kernel-mode userfaultfd faults.
  virtual bool kernel_mode_faults() const { return true; }
  /// Adds backend counters (cost model, link bytes, ...) to `stats`.
  virtual void add_stats(Stats& stats) const { (void)stats; }
};

/// Opens a backend by URI ("sim:vram=256M", "xe:", "xe:/dev/dri/renderD128").
/// Throws Error (kInvalidArgument) naming the URI and the accepted forms.
std::unique_ptr<Backend> open_backend(std::string_view uri);

}  // namespace xesvm
