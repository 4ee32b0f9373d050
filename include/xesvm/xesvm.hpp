// xesvm: shared virtual memory (SVM) between the CPU and a GPU.
//
// A Runtime is one GPU address space shared with the calling process: a CPU
// pointer into an SVM allocation (alloc_shared) or into a mirrored region
// (mirror) is also a GPU pointer. Data moves to device memory when a GPU
// kernel faults on it, back to RAM when the CPU touches it, and to RAM under
// device-memory pressure. advise() and prefetch() steer placement.
//
// A Runtime talks to a backend named by a URI:
//   "sim:vram=256M"          the user-space SVM device (the default)
//   "xe:" / "xe:/dev/dri/renderD128"   the Intel Xe kernel driver
//
// Concurrency: all Runtime methods are thread-safe. The CPU may read and
// write SVM memory from any thread at any time, including while kernels run;
// a CPU touch of device-resident data migrates it back transparently.
//
// Errors: invalid arguments and backend failures throw xesvm::Error, whose
// message says what was wrong and what was expected. Each method below says
// what it returns on success, what it throws, and what it leaves behind when
// it throws; where it says nothing about the latter, nothing has changed
// (no byte moved, no memory allocated or freed). No method loses data when
// it throws: every byte keeps the value it had, wherever it lives.
// Host memory exhaustion inside the library surfaces as std::bad_alloc.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace xesvm {

/// The error every xesvm operation throws.
class Error : public std::runtime_error {
 public:
  /// Error codes, stable for C callers (xesvm.h).
  enum class Code : int {
    kInvalidArgument = 1,  ///< bad pointer, size, alignment, flag, URI
    kOutOfMemory = 2,      ///< device or host memory exhausted
    kBusy = 3,             ///< pages still in use after bounded retries
    kUnsupported = 4,      ///< the backend cannot do this
    kBackend = 5,          ///< the backend (device, kernel driver) failed
    kDeviceLost = 6,       ///< the device faulted on an unmapped address
  };
  Error(Code code, const std::string& what) : std::runtime_error(what), code_(code) {}
  Code code() const noexcept { return code_; }

 private:
  Code code_;
};

/// A place data can live.
enum class Location : std::uint8_t { kNone, kSystem, kDevice };

/// Placement advice for a range (preferred location and access hints).
struct Advice {
  Location preferred = Location::kNone;  ///< kNone clears a preference
  bool read_mostly = false;              ///< GPU mostly reads: duplicate-friendly
  bool atomic = false;                   ///< GPU atomics on it: keep on device
};

/// Result of an eviction request.
struct EvictResult {
  std::uint64_t pages_evicted = 0;
  std::uint64_t pages_skipped = 0;  ///< busy after bounded retries
  std::uint64_t retries = 0;
};

/// Residency of a byte range (whole pages covering it). device_bytes +
/// system_bytes + unknown_bytes is the size of those pages. unknown_bytes are
/// pages whose place the backend cannot tell (the Xe uAPI reports no
/// placement; see runtime/backends/xe/README.md): never counted as either.
struct Residency {
  std::uint64_t device_bytes = 0;
  std::uint64_t system_bytes = 0;
  std::uint64_t unknown_bytes = 0;
};

/// Counters of one Runtime. Times in nanoseconds.
struct Stats {
  std::uint64_t gpu_faults = 0;
  std::uint64_t cpu_faults = 0;            ///< CPU touches of device-resident data
  std::uint64_t migrations_to_device = 0;  ///< ranges moved (operations)
  std::uint64_t bytes_to_device = 0;
  /// Moves to system memory: eviction (under pressure, evict(), prefetch
  /// to system, teardown) and CPU faults on device pages (one per page).
  std::uint64_t migrations_to_system = 0;
  std::uint64_t bytes_to_system = 0;  ///< the bytes of those moves
  std::uint64_t evictions = 0;        ///< ranges evicted under pressure
  std::uint64_t pages_evicted = 0;
  std::uint64_t pages_evict_skipped = 0;
  std::uint64_t invalidations = 0;
  std::uint64_t bind_retries = 0;                     ///< sequence moved between get-pages and bind
  std::uint64_t thrash_events = 0;                    ///< ranges pinned to RAM for thrashing
  std::uint64_t cpu_mapping_lookups_in_eviction = 0;  ///< must stay 0
  std::uint64_t device_bytes_in_use = 0;
  std::uint64_t device_bytes_high_water = 0;
  std::uint64_t device_bytes_total = 0;
  std::uint64_t modelled_device_ns = 0;  ///< the cost model's device time
  std::uint64_t link_bytes = 0;          ///< bytes charged to the host link
};

/// What the backend under a Runtime can do (Runtime::capabilities()). A
/// plain value, filled once per call; it does not change over the life of a
/// Runtime. Programs read these fields instead of matching describe() text.
struct Capabilities {
  std::string backend;          ///< the backend's name: "sim" or "xe"
  bool has_engine = false;      ///< runs device work (launch) on this backend
  unsigned engine_workers = 0;  ///< parallel workers of the engine; 0 without one
  /// The backend's memory management lives in user space (the runtime is
  /// the driver: frames, CPU mirror, GPU page table); false when the kernel
  /// is the driver (xe).
  bool has_mechanism = false;
  bool host_kernels = false;  ///< launch() runs C++ callables (Kernel) as device work
  /// A system call that touches device-resident memory (read() into it,
  /// write() from it, a futex on it) migrates it back as a CPU touch does.
  /// False on the sim in user-mode-only userfaultfd mode (kernel_faults=0, or
  /// no permission for kernel-mode faults): such calls then fail with EFAULT.
  bool kernel_mode_faults = false;
  std::uint64_t device_memory_bytes = 0;  ///< device memory in total
};

/// Kind of GPU access.
enum class Access : std::uint8_t { kRead, kWrite, kAtomic };

/// The only way a GPU kernel reaches memory. Every access walks the GPU page
/// table; a missing or insufficient mapping raises a GPU fault into the
/// runtime, which resolves it (migrating data if the policy says so) and the
/// access is retried. An address that is not SVM memory throws Error
/// (kDeviceLost), as a GPU would report a fatal fault.
class DeviceAccessor {
 public:
  virtual ~DeviceAccessor() = default;

  /// Copies n bytes from GPU address src to dst (kernel-private memory).
  virtual void read(std::uint64_t src, void* dst, std::size_t n) = 0;
  /// Copies n bytes from src (kernel-private memory) to GPU address dst.
  virtual void write(std::uint64_t dst, const void* src, std::size_t n) = 0;
  /// Atomic fetch-add on a naturally aligned 32/64-bit word.
  virtual std::uint32_t atomic_add(std::uint64_t addr, std::uint32_t v) = 0;
  virtual std::uint64_t atomic_add64(std::uint64_t addr, std::uint64_t v) = 0;

  /// Runs fn on a view of [addr, addr+n), which must lie inside one 4 KiB
  /// page. Writes to the view reach memory when fn returns (kWrite).
  virtual void with_page(std::uint64_t addr, std::size_t n, Access access,
                         const std::function<void(std::span<std::byte>)>& fn) = 0;

  template <class T>
  T load(const T* p) {
    static_assert(std::is_trivially_copyable_v<T>);
    T v;
    read(reinterpret_cast<std::uint64_t>(p), &v, sizeof v);
    return v;
  }
  template <class T>
  void store(T* p, const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    write(reinterpret_cast<std::uint64_t>(p), &v, sizeof v);
  }
};

/// Identifies one work item of a kernel launch.
struct WorkItem {
  std::uint64_t global_id = 0;
  std::uint64_t global_size = 0;
  std::uint32_t worker = 0;  ///< engine worker running it
};

/// A GPU kernel: called once per work item on the engine's workers.
using Kernel = std::function<void(const WorkItem&, DeviceAccessor&)>;

/// Options of a Runtime beyond the backend URI.
struct RuntimeOptions {
  std::size_t notifier_window = 512u << 20;        ///< notifier window size (power of two)
  double high_watermark = 0.95;                    ///< start evicting above this device fill
  double low_watermark = 0.85;                     ///< evict down to this fill
  unsigned thrash_threshold = 3;                   ///< evictions+refaults within the window: 1..1000
  std::uint64_t thrash_window_ns = 200'000'000;    ///< 1 ns .. 1 hour
  std::uint64_t thrash_cooldown_ns = 500'000'000;  ///< at most 1 hour
  unsigned evict_retries = 3;                      ///< bounded retries of busy frames: 0 (one pass) .. 1000
  unsigned copy_workers = 2;                       ///< parallel batch copy workers: 1..64
  /// Evictions moving fewer bytes than this copy on the calling thread; the
  /// default is the crossover of the threshold sweep in bench/README.md.
  /// At most 1 GiB.
  std::size_t copy_serial_threshold = 64u << 10;
};

class RuntimeImpl;
class DeviceWork;  // runtime/backend.hpp

/// The completion of one asynchronous device operation (Runtime::copy,
/// Runtime::fill). Move-only. Not thread-safe: one thread waits on it.
///
/// Destroying a Completion whose work has not been waited for successfully
/// waits for it first (at most the backend's timeout, errors dropped), so the
/// memory the work uses is never released under the device; wait() to see
/// the errors. An empty (default-constructed or moved-from) Completion is
/// ready and its wait() returns at once.
class Completion {
 public:
  /// The wait() without an argument waits this long.
  static constexpr std::chrono::nanoseconds kDefaultTimeout = std::chrono::seconds(60);

  Completion() noexcept;
  explicit Completion(std::unique_ptr<DeviceWork> work) noexcept;
  Completion(Completion&&) noexcept;
  Completion& operator=(Completion&&) noexcept;
  Completion(const Completion&) = delete;
  Completion& operator=(const Completion&) = delete;
  ~Completion();

  /// True once the work finished (successfully or not). Never blocks.
  bool ready() const;
  /// Waits for the work. Returns when it completed successfully (then
  /// every byte it wrote is visible to the CPU). Throws Error (kBusy) after
  /// `timeout` (the work goes on; wait again), (kDeviceLost) when the device
  /// faulted on memory that is not SVM (the message names the address, or
  /// the spans of the operation when the device does not say which), or the
  /// backend's error; the same error again on every later wait().
  void wait(std::chrono::nanoseconds timeout = kDefaultTimeout);

 private:
  std::unique_ptr<DeviceWork> work_;
  bool waited_ = false;
  std::shared_ptr<const Error> error_;
};

/// One SVM address space on one backend. Not copyable; movable. A
/// moved-from Runtime owns nothing: every method but destruction and
/// assignment throws Error (kInvalidArgument).
class Runtime {
 public:
  /// Opens the backend named by uri. Throws Error (kInvalidArgument) for an
  /// unknown or malformed URI (also an option given twice) or options out of
  /// range (RuntimeOptions says which), (kUnsupported/kBackend) if the
  /// backend cannot be opened, saying why.
  /// The environment may ask the Runtime to report on itself: XESVM_STATS
  /// (its counters at its end, or at exit) and XESVM_TRACE (a counter time
  /// series); see the README's table. A bad value of those variables makes
  /// this throw Error (kInvalidArgument) naming the variable.
  explicit Runtime(std::string_view uri = "sim:vram=256M", RuntimeOptions options = {});
  /// Frees every alloc_shared() allocation (its memory is unmapped) and
  /// stops mirroring every region still mirrored, bringing device-resident
  /// data of those regions back to RAM first (their bytes read as they did
  /// on the device). REQUIRES: no other thread uses the Runtime and none of
  /// its kernels or device copies is running.
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;
  Runtime(Runtime&&) noexcept;
  Runtime& operator=(Runtime&&) noexcept;

  /// Allocates bytes of SVM memory (like zeMemAllocShared). Returns a
  /// pointer valid on CPU and GPU until free(), to zero-filled memory
  /// rounded up to whole 4 KiB pages, aligned to `alignment` (and to 2 MiB
  /// when bytes >= 2 MiB, so that 2 MiB chunks fit). alignment: a power of
  /// two, <= 2 MiB; 0 means 4 KiB. Throws Error (kInvalidArgument) for
  /// bytes == 0, bytes > 2^46 or a bad alignment, (kOutOfMemory) when the
  /// host cannot map the memory, or the backend's error when it cannot
  /// mirror it; nothing is allocated then.
  void* alloc_shared(std::size_t bytes, std::size_t alignment = 0);
  /// Frees an alloc_shared() pointer: device frames are freed, nothing is
  /// copied back, and the memory is unmapped. Waits for kernels of this
  /// Runtime that are running. Throws Error (kInvalidArgument) for nullptr
  /// or a pointer alloc_shared() did not return (or that was freed
  /// already); nothing changes then. REQUIRES: not called from inside a
  /// kernel of this Runtime: that throws Error (kInvalidArgument) too, and
  /// the allocation stays valid (free it from outside the kernel).
  void free(void* ptr);

  /// Mirrors memory the application already owns (system-allocator mode).
  /// Only whole pages inside [ptr, ptr+bytes) are mirrored; partial pages at
  /// the edges stay in system memory. Throws Error (kInvalidArgument) for
  /// nullptr, bytes == 0, a span that wraps or holds no whole page, a region
  /// that overlaps a mirror (also one of another live Runtime), or one that
  /// is not mapped in full by private anonymous memory on the sim (the
  /// message names the offending mapping); nothing is mirrored then.
  void mirror(void* ptr, std::size_t bytes);
  /// Stops mirroring [ptr, ptr+bytes), which must be exactly a region passed
  /// to mirror(). Device-resident data is brought back to RAM first: every
  /// byte reads afterwards as it did on the device. Waits for running
  /// kernels of this Runtime. Throws Error (kInvalidArgument) for a span
  /// that is not a mirrored region, or when called from inside a kernel of
  /// this Runtime; nothing changes then.
  void unmirror(void* ptr, std::size_t bytes);
  /// Like unmirror(), but the contents are not wanted (the caller is about to
  /// free the memory): device frames are freed, nothing is copied back, and
  /// the pages read as unspecified bytes (zeros on the sim) until the caller
  /// unmaps them. Bytes that a mapping move (mremap) took away from the
  /// region are not dropped. On a backend whose kernel is the driver this is
  /// unmirror(). REQUIRES: [ptr, ptr+bytes) is exactly a region passed to
  /// mirror() (not alloc_shared() memory: free() that), and not called
  /// from inside a kernel of this Runtime. Throws Error (kInvalidArgument)
  /// otherwise; nothing changes then.
  void discard(void* ptr, std::size_t bytes);

  /// Advice for [ptr, ptr+bytes), which must lie in SVM memory. Returns
  /// false if the backend cannot apply all of it (what it can is applied;
  /// nothing is silently dropped): the sim applies the preferred location
  /// and atomic (device placement), not read-mostly. The advice covers the
  /// whole pages of the span and moves nothing now. Throws Error
  /// (kInvalidArgument) for nullptr, bytes == 0, a wrapping span, a Location
  /// that is not one of the enumerators, or a span with no SVM page at all;
  /// no advice is recorded then.
  bool advise(void* ptr, std::size_t bytes, const Advice& advice);
  /// Moves the pages covering [ptr, ptr+bytes) to `where` (kDevice or
  /// kSystem) now. Returns the bytes of [ptr, ptr+bytes) that this call
  /// moved (at most `bytes`; bytes already there, or moved by another
  /// thread meanwhile, are not counted; to kSystem, pages another operation
  /// held through every retry stay on the device, uncounted). Pages of the
  /// span outside SVM memory are left alone. Throws Error (kInvalidArgument)
  /// for nullptr, bytes == 0, a wrapping span, any other Location, or a span
  /// with no SVM page at all (nothing has moved then), (kOutOfMemory) if
  /// device memory cannot be had. Not all-or-nothing: the
  /// span moves range by range in address order, and a kOutOfMemory thrown
  /// partway leaves the ranges before the one that failed on the device
  /// (bound for the GPU) and the rest where they were (save what pressure
  /// eviction, making room, moved to RAM); every byte keeps its value
  /// either way, and residency() tells where it is.
  std::uint64_t prefetch(void* ptr, std::size_t bytes, Location where);
  /// Evicts device-resident data of [ptr, ptr+bytes) to RAM. Returns the
  /// pages moved and the pages skipped (frames another operation held
  /// through every retry; they stay on the device, intact). Throws Error
  /// (kInvalidArgument) for memory that is not SVM, before moving anything.
  EvictResult evict(void* ptr, std::size_t bytes);
  /// Bytes of [ptr, ptr+bytes) in device memory and in system memory (and,
  /// where the backend cannot tell, unknown), counted in whole pages
  /// covering the span; on the sim, memory that is not SVM counts as
  /// system memory.
  /// Never moves anything. Throws Error (kInvalidArgument) only for
  /// nullptr, bytes == 0 or a wrapping span.
  Residency residency(const void* ptr, std::size_t bytes);

  /// Starts a device-side copy of `bytes` bytes from src to dst and returns
  /// its completion. Both spans may be SVM memory of any residency (the
  /// device faults pages in as a kernel would); the sim runs the copy on its
  /// engine, the xe backend as MEM_COPY batch buffers on its copy engine.
  /// REQUIRES: the spans do not overlap; both stay mapped until the copy
  /// completed. Returns on success a Completion to wait on; throws Error
  /// (kInvalidArgument) for a null pointer, bytes == 0, overlapping or
  /// wrapping spans, or a span the CPU has no mapping for (naming its first
  /// unmapped page), before anything is submitted; (kUnsupported) without a
  /// device engine; the backend's error if submission fails. Nothing is left
  /// in flight when it throws.
  Completion copy(void* dst, const void* src, std::size_t bytes);
  /// Starts a device-side fill of `bytes` bytes at dst with the first
  /// `pattern_size` bytes of `pattern` (1, 2 or 4), repeated from dst on.
  /// REQUIRES: dst and bytes multiples of pattern_size; dst stays mapped
  /// until the fill completed. Returns and throws as copy().
  Completion fill(void* dst, const void* pattern, std::size_t pattern_size, std::size_t bytes);

  /// Runs kernel over global_size work items on the device and waits for it.
  /// Returns when every work item has finished. Throws Error (kUnsupported)
  /// if the backend has no execution engine for host kernels, with the
  /// reason (the xe backend runs no C++ callables: its device executes batch
  /// buffers only; use copy()/fill()), (kInvalidArgument) for an empty
  /// kernel (nothing runs then), (kDeviceLost) if the kernel touched
  /// non-SVM memory, or the first exception a work item threw. When it
  /// throws after the kernel started, what the work items that ran wrote
  /// stays written and migrated data stays where the faults put it.
  void launch(std::uint64_t global_size, const Kernel& kernel);

  /// The counters now (each read on its own: not one atomic snapshot).
  Stats stats() const;
  /// What the backend can do (see Capabilities). Never throws on a live
  /// Runtime.
  Capabilities capabilities() const;
  /// Key/value description of the backend (for `xesvm info`), in a stable
  /// order; the text is for people: programs read capabilities() instead.
  std::vector<std::pair<std::string, std::string>> describe() const;

  /// The state behind this Runtime (in-tree users: tests, tools, drivers;
  /// not part of the installed API's compatibility promise).
  RuntimeImpl& impl();

 private:
  // *impl_, or Error (kInvalidArgument) naming `what` on a moved-from Runtime.
  RuntimeImpl& live(const char* what) const;
  std::unique_ptr<RuntimeImpl> impl_;
};

}  // namespace xesvm
