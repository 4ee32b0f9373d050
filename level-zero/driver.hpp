// The xesvm Level Zero driver: the objects behind the Level Zero handles.
//
// One Driver (a process-wide singleton created by the first zeInit and
// destroyed at exit or unload) owns one Device per runtime backend named in
// XESVM_BACKEND (';'-separated URIs, default "sim:vram=256M"; the older
// XESVM_ZE_BACKEND is read when XESVM_BACKEND is unset); each Device owns an
// xesvm::Runtime. Every Level Zero handle is a pointer to one of the classes
// below (each derives, through Registered, from the opaque struct the handle
// type names), so no dispatch table or wrapper is needed; the loader may wrap
// them in intercept mode.
//
// Handles: every object registers its handle in a process-wide registry when
// it is built and leaves it when destroyed, so an entry point can tell a live
// handle of the kind it expects from NULL, a destroyed handle, a handle of
// another kind or garbage, and answer with an error instead of dereferencing
// it (api.hpp, live()).
//
// Memory: shared and host allocations are SVM ranges of the device's Runtime
// (the same pointer on CPU and device). A device allocation is a PROT_NONE
// reservation in the CPU address space (a CPU dereference faults, as on a
// discrete GPU) whose bytes live in a hidden SVM range that prefers device
// memory; the driver's address translation (Xlate) maps the reservation onto
// that backing for kernels, copies, prefetch, advice and residency.
//
// Execution: every command queue and every immediate command list has an
// Executor, one worker thread running submissions in order. On a backend
// that runs host kernels (the sim), copies and fills run on the device's
// execution engine (Runtime::launch) through the device accessor, so they
// raise GPU faults like kernels do; plain host memory the driver did not
// allocate is read and written directly by the copy engine. On a backend
// without host kernels (xe), copies and fills are the runtime's device
// operations (Runtime::copy / Runtime::fill: batch buffers on the GPU's copy
// engine), each waited for through its Completion before the command ends.
//
// Concurrency: the allocation registry and the objects' mutable state are
// guarded as documented per member; entry points may be called from any
// thread. Level Zero's rules apply on top: an application must not destroy
// an object while the device uses it, nor append to one command list from two
// threads at once.
#pragma once

#include <level_zero/ze_api.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "xesvm/xesvm.hpp"
#include "xesvm/ze_kernel.h"
#include "xesvm/ze_work_group.h"

// The opaque handle structs of ze_api.h, completed here so that each driver
// object can derive from its handle type.
struct _ze_driver_handle_t {};
struct _ze_device_handle_t {};
struct _ze_context_handle_t {};
struct _ze_command_queue_handle_t {};
struct _ze_command_list_handle_t {};
struct _ze_fence_handle_t {};
struct _ze_event_pool_handle_t {};
struct _ze_event_handle_t {};
struct _ze_module_handle_t {};
struct _ze_module_build_log_handle_t {};
struct _ze_kernel_handle_t {};

namespace xesvm::ze {

/// The kinds of object a handle can name.
enum class HandleKind : std::uint8_t {
  kDriver,
  kDevice,
  kContext,
  kCommandQueue,
  kCommandList,
  kFence,
  kEventPool,
  kEvent,
  kModule,
  kBuildLog,
  kKernel,
};

/// The registry of live handles. Thread-safe. A handle is the address of the
/// handle struct inside its object; it is registered for exactly the lifetime
/// of the object (Registered below).
namespace handles {
/// Records h as a live handle of kind k. REQUIRES: h is not registered.
void add(const void* h, HandleKind k);
/// Forgets h (a no-op if it is not registered).
void remove(const void* h);
/// True if h is a live handle of kind k.
bool is(const void* h, HandleKind k);
}  // namespace handles

/// Base of every object behind a handle: derives from the handle struct and
/// keeps the object in the registry from construction to destruction. Not
/// copyable (a copy would be an object no handle names).
template <class Handle, HandleKind K>
class Registered : public Handle {
 public:
  using handle_type = Handle*;
  static constexpr HandleKind kKind = K;
  Registered() { handles::add(static_cast<Handle*>(this), K); }
  ~Registered() { handles::remove(static_cast<Handle*>(this)); }
  Registered(const Registered&) = delete;
  Registered& operator=(const Registered&) = delete;
};

/// Writes one line "xesvm-ze: <msg>" to stderr.
void log(const std::string& msg);

/// A Level Zero error raised inside the driver; entry points return code.
struct ZeError {
  ze_result_t code;
  std::string what;
};
/// Throws ZeError{code, what}.
[[noreturn]] void fail(ze_result_t code, const std::string& what);
/// The Level Zero code for a runtime error.
ze_result_t to_result(const Error& e);

class Device;
class Context;

enum class MemKind : std::uint8_t { kHost, kDevice, kShared };

/// Advice bits kept per page of an allocation (see apply_advice).
enum AdviceBits : std::uint8_t {
  kReadMostly = 1,
  kPreferDevice = 2,
  kPreferSystem = 4,
  kAtomic = 8,  // CLEAR_NON_ATOMIC_MOSTLY: GPU atomics expected
  kBiasCached = 16,
  kBiasUncached = 32,
};

/// One USM allocation. Immutable after creation except `advice` (guarded by
/// advice_mu).
struct Allocation {
  MemKind kind;
  Context* ctx = nullptr;
  Device* device = nullptr;  ///< owner (device allocations, shared with a device)
  Device* home = nullptr;    ///< whose Runtime holds the bytes
  std::uint64_t base = 0;    ///< the pointer the application sees
  std::size_t size = 0;
  std::uint64_t id = 0;
  void* rt_ptr = nullptr;  ///< the SVM mapping holding the bytes
  std::size_t rt_len = 0;
  std::uint64_t backing = 0;    ///< where the bytes are (== base unless kDevice)
  void* reservation = nullptr;  ///< kDevice: the PROT_NONE mapping
  std::size_t reservation_len = 0;
  std::mutex advice_mu;
  std::vector<std::uint8_t> advice;  ///< per 4 KiB page of [base, base+size)
};

/// Device-address translation for device allocations, captured per launch.
class Xlate {
 public:
  struct Span {
    std::uint64_t start, end, backing;
  };
  explicit Xlate(std::vector<Span> spans) : spans_(std::move(spans)) {}
  /// Returns the address whose bytes [addr, addr+n) are, or 0 if the access
  /// starts in a device allocation and runs past its end (a GPU fault).
  std::uint64_t operator()(std::uint64_t addr, std::size_t n) const;

 private:
  std::vector<Span> spans_;  // sorted by start
};

class Driver : public Registered<_ze_driver_handle_t, HandleKind::kDriver> {
 public:
  /// The process-wide driver, creating it on first use. Throws ZeError
  /// (UNINITIALIZED) if no backend could be opened; the failure is cached.
  static Driver& get();
  /// The driver if zeInit succeeded, else nullptr.
  static Driver* instance();
  /// Frees what the application left allocated and closes the devices.
  ~Driver();

  std::vector<std::unique_ptr<Device>>& devices() { return devices_; }

  // --- allocation registry ----------------------------------------------
  /// Registers a (fully built) allocation. Thread-safe.
  void add_allocation(std::shared_ptr<Allocation> a);
  /// Removes and returns the allocation starting at base (nullptr if none).
  std::shared_ptr<Allocation> remove_allocation(std::uint64_t base);
  /// The allocation containing addr, or nullptr.
  std::shared_ptr<Allocation> find(std::uint64_t addr) const;
  /// Every allocation of a context (for its destruction).
  std::vector<std::uint64_t> allocations_of(const Context* ctx) const;
  /// The translation of all current device allocations.
  Xlate xlate() const;
  std::uint64_t next_alloc_id() { return ++alloc_ids_; }

  // --- events (one condition for all host waits) --------------------------
  std::mutex ev_mu;
  std::condition_variable ev_cv;

 private:
  Driver();
  std::vector<std::unique_ptr<Device>> devices_;
  mutable std::shared_mutex reg_mu_;
  std::map<std::uint64_t, std::shared_ptr<Allocation>> allocs_;
  std::atomic<std::uint64_t> alloc_ids_{0};
};

class Device : public Registered<_ze_device_handle_t, HandleKind::kDevice> {
 public:
  Device(std::uint32_t index, std::string uri);
  std::uint32_t index() const { return index_; }
  const std::string& uri() const { return uri_; }
  Runtime& runtime() { return *rt_; }
  std::uint64_t vram() const { return vram_; }
  /// The device clock, in ns: the modelled device time of the backend's
  /// cost model (wall time on the sim would hide link and fault costs).
  /// On a backend without a cost model (xe) it is the host's monotonic
  /// clock: the uAPI the runtime uses has no GPU timestamp query.
  std::uint64_t clock_ns();
  unsigned workers() const { return workers_; }
  /// True if the backend runs host kernels (Capabilities::host_kernels):
  /// copies and fills then run as engine work through the device accessor;
  /// otherwise (xe) as the runtime's device copies and fills.
  bool host_kernels() const { return host_kernels_; }
  /// The backend's name ("sim", "xe").
  const std::string& backend() const { return backend_; }
  /// What the backend says about the device (Runtime::describe()).
  const std::vector<std::pair<std::string, std::string>>& description() const { return description_; }
  /// The value of key in description(), or "" if absent.
  std::string described(const std::string& key) const;
  /// Brings the system memory the device mirrors back to the application.
  ~Device();

  // --- staging (memory.cpp) ---------------------------------------------------
  // A device without host kernels reads fill patterns and timestamps from
  // staging memory: a 2 MiB mapping of the driver, mirrored by the runtime
  // and advised to stay in system memory (so device reads do not migrate
  // it). One command uses it at a time.

  /// Bytes of staging memory.
  static constexpr std::size_t kStagingBytes = 2u << 20;
  /// Locks the staging memory and returns it (created on first use), or
  /// throws Error. The lock is held until the returned guard goes.
  std::pair<std::unique_lock<std::mutex>, std::byte*> staging();

  // --- shared-system memory (system_memory.cpp) -----------------------------
  // On the sim, memory the application owns (malloc, mmap) is shared-system
  // memory once the device's runtime mirrors it. The driver mirrors it on
  // first use by a command; until then, and for what it never mirrors, the
  // copy engine reads and writes it directly as a driver stages pageable
  // host memory.

  /// True if the device treats plain system memory as shared (the sim).
  bool shared_system() const { return shared_system_; }
  /// Mirrors the whole pages inside [p, p+n) that lie in a private anonymous
  /// mapping of the application (malloc'd or mmap'd memory), unless they are
  /// mirrored already. Partial pages at the edges stay in system memory, as
  /// Runtime::mirror leaves them; the brk heap, stacks and file mappings are
  /// never mirrored (the runtime's own threads use such memory). Thread-safe;
  /// never throws: memory that cannot be mirrored stays plain.
  void mirror_system(std::uint64_t p, std::size_t n);
  /// The run of system memory that starts at addr: {true, end} if the
  /// device mirrors [addr, end), {false, end} if [addr, end) is plain.
  std::pair<bool, std::uint64_t> system_run(std::uint64_t addr) const;

 private:
  // Mirrors [s, e) after populating it (see svm_map). REQUIRES sys_mu_.
  bool mirror_pages(std::uint64_t s, std::uint64_t e);

  std::uint32_t index_;
  std::string uri_;
  std::unique_ptr<Runtime> rt_;
  std::uint64_t vram_ = 0;
  unsigned workers_ = 1;
  bool shared_system_ = false;
  bool host_kernels_ = true;
  bool modelled_clock_ = true;
  std::string backend_;
  std::vector<std::pair<std::string, std::string>> description_;
  std::mutex staging_mu_;
  void* staging_ = nullptr;  ///< guarded by staging_mu_; kStagingBytes, mirrored
  mutable std::mutex sys_mu_;
  std::map<std::uint64_t, std::uint64_t> sys_mirrors_;  ///< start -> end, page aligned
};

class Context : public Registered<_ze_context_handle_t, HandleKind::kContext> {
 public:
  explicit Context(Driver& d) : driver(d) {}
  Driver& driver;
};

// --- memory operations (memory.cpp) ---------------------------------------

/// Allocates USM memory; validates as zeMemAlloc* specifies. Returns the
/// pointer. Throws ZeError.
void* allocate(Context& ctx, MemKind kind, Device* dev, std::size_t size, std::size_t alignment,
               std::uint32_t device_flags, std::uint32_t host_flags, const void* pnext_chain, std::uint32_t ordinal);
/// Frees an allocation of ctx. Throws ZeError (INVALID_ARGUMENT) for an
/// unknown pointer or one of another context.
void release(Context& ctx, void* ptr);
/// Frees without the context check (context teardown).
void release_allocation(const std::shared_ptr<Allocation>& a);
/// Applies one ze_memory_advice_t to [ptr, ptr+size). Throws ZeError.
void apply_advice(Device& dev, const void* ptr, std::size_t size, ze_memory_advice_t advice);
/// Prefetches [ptr, ptr+size) to dev (host allocations stay; system memory
/// is mirrored first, its whole pages prefetched). Throws.
void prefetch_to_device(Device& dev, const void* ptr, std::size_t size);
/// Evicts [ptr, ptr+size) to system memory. Throws.
void evict_to_system(Device& dev, const void* ptr, std::size_t size);
/// The checks of a range a command hands to dev: inside one allocation
/// (require_range), or system memory the device shares. Throws ZeError.
void require_device_range(Device& dev, const void* ptr, std::size_t size, const char* what);
/// Checks that [ptr, ptr+size) lies inside one allocation of ctx; returns it.
std::shared_ptr<Allocation> require_range(const void* ptr, std::size_t size, const char* what);

/// One contiguous piece of a copy or fill.
struct CopySeg {
  std::uint64_t dst, src;  ///< src unused for fills
  std::size_t n;
};
/// Runs copies (pattern empty) or fills on the device: on its engine
/// (host kernels), else as the runtime's device copies and fills, waiting
/// for them. Throws Error (ZeError for an overlapping copy on xe).
void run_copy(Device& dev, const std::vector<CopySeg>& segs, const std::vector<std::byte>& pattern);
/// Writes the n bytes at src (host memory of the caller, n <= 4096) to the
/// device address dst through the device. Throws Error.
void device_write(Device& dev, std::uint64_t dst, const void* src, std::size_t n);

/// The process's readable and writable mappings, as sorted [start, end)
/// runs, from /proc/self/maps (system_memory.cpp).
std::vector<std::pair<std::uint64_t, std::uint64_t>> accessible_mappings();
/// True if [addr, addr+n) lies in one run of maps.
bool accessible(const std::vector<std::pair<std::uint64_t, std::uint64_t>>& maps, std::uint64_t addr, std::size_t n);
/// True if [addr, addr+n) is readable and writable memory of the process
/// (reads /proc/self/maps).
bool system_mapped(std::uint64_t addr, std::size_t n);

// --- events, fences, execution (exec.cpp) ----------------------------------

class EventPool : public Registered<_ze_event_pool_handle_t, HandleKind::kEventPool> {
 public:
  EventPool(Context& c, ze_event_pool_flags_t f, std::uint32_t n) : ctx(c), flags(f), count(n) {}
  Context& ctx;
  const ze_event_pool_flags_t flags;
  const std::uint32_t count;
  std::atomic<std::uint32_t> live{0};
};

class Event : public Registered<_ze_event_handle_t, HandleKind::kEvent> {
 public:
  /// Counted in the pool's `live` while it exists.
  Event(EventPool& p, std::uint32_t i) : pool(p), index(i) { ++pool.live; }
  ~Event() { --pool.live; }
  EventPool& pool;
  const std::uint32_t index;
  /// Signals (recording `end`, device clock ns) and wakes waiters.
  void signal(std::uint64_t end = 0);
  void reset();
  bool signaled() const { return state_.load(std::memory_order_acquire); }
  /// Waits up to timeout_ns (UINT64_MAX: forever) or until *cancel.
  /// Returns true if signaled.
  bool wait(std::uint64_t timeout_ns, const std::atomic<bool>* cancel = nullptr);
  void mark_start(std::uint64_t start);
  ze_kernel_timestamp_result_t timestamps() const;

 private:
  std::atomic<bool> state_{false};
  std::atomic<std::uint64_t> start_{0}, end_{0};
};

class Fence;

/// One recorded command.
struct Command {
  std::function<void()> body;  ///< may be empty (barrier, signal)
  std::vector<Event*> waits;
  Event* signal = nullptr;
  Event* reset = nullptr;  ///< AppendEventReset
  Device* dev = nullptr;   ///< whose clock stamps `signal`
};
using CommandBatch = std::vector<std::shared_ptr<const Command>>;

/// An in-order worker thread.
class Executor {
 public:
  Executor();
  /// Waits for submitted work, cancelling event waits that never end.
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;
  /// Queues batch; the fence (may be null) is signaled when it is done.
  void submit(CommandBatch batch, Fence* fence);
  /// Waits until idle or timeout. Returns SUCCESS, NOT_READY, or the first
  /// error of the work done since the last call (then cleared).
  ze_result_t synchronize(std::uint64_t timeout_ns);
  /// Returns and clears the first error recorded so far (SUCCESS if none).
  ze_result_t take_error();

 private:
  struct Job {
    CommandBatch batch;
    Fence* fence;
  };
  void loop();
  std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::deque<Job> jobs_;
  bool busy_ = false;
  std::atomic<bool> stop_{false};
  ze_result_t error_ = ZE_RESULT_SUCCESS;
  std::thread thread_;
};

class CommandQueue : public Registered<_ze_command_queue_handle_t, HandleKind::kCommandQueue> {
 public:
  CommandQueue(Context& c, Device& d, const ze_command_queue_desc_t& desc)
      : ctx(c), dev(d), ordinal(desc.ordinal), mode(desc.mode) {}
  Context& ctx;
  Device& dev;
  const std::uint32_t ordinal;
  const ze_command_queue_mode_t mode;
  Executor exec;
};

class Fence : public Registered<_ze_fence_handle_t, HandleKind::kFence> {
 public:
  explicit Fence(CommandQueue& q) : queue(q) {}
  CommandQueue& queue;
  std::atomic<bool> signaled{false};
  void signal();
};

class Kernel;

class CommandList : public Registered<_ze_command_list_handle_t, HandleKind::kCommandList> {
 public:
  CommandList(Context& c, Device& d, std::uint32_t ord, bool imm, ze_command_queue_mode_t m)
      : ctx(c), dev(d), ordinal(ord), immediate(imm), mode(m) {
    if (immediate) exec = std::make_unique<Executor>();
  }
  Context& ctx;
  Device& dev;
  const std::uint32_t ordinal;
  const bool immediate;
  const ze_command_queue_mode_t mode;
  bool closed = false;
  CommandBatch cmds;
  std::unique_ptr<Executor> exec;  ///< immediate lists only

  /// Records (regular) or runs (immediate) a command. Throws ZeError.
  void add(Command c);
  /// In place of a command whose append failed with code: a command that
  /// signals `signal` in order, so that no waiter is left on an event no
  /// command will signal. On a regular list it also fails its submission
  /// with code (the error zeCommandQueueSynchronize returns); an immediate
  /// list already returned the error from the append. Never throws for a
  /// list that accepts commands; does nothing on a closed regular list.
  void add_failed(Event* signal, ze_result_t code, std::string what);
};

/// Validates a wait list as the Append* functions specify. Throws ZeError.
std::vector<Event*> wait_list(std::uint32_t n, ze_event_handle_t* events);

// --- modules and kernels (module.cpp) --------------------------------------

class BuildLog : public Registered<_ze_module_build_log_handle_t, HandleKind::kBuildLog> {
 public:
  explicit BuildLog(std::string s) : text(std::move(s)) {}
  std::string text;
};

/// A loaded kernel library (dlclose on destruction).
struct Library {
  void* handle = nullptr;
  int memfd = -1;
  ~Library();
};

/// How a kernel argument is passed (xesvm/ze_work_group.h).
enum class ArgKind : std::uint8_t {
  kValue,  ///< the bytes set by zeKernelSetArgumentValue
  kLocal,  ///< a block of local memory of the size set (value NULL)
};

/// One kernel of a program, whatever its origin (ABI 1 or 2 library, or
/// compiled SPIR-V, whose entry follows ABI 2). Immutable.
struct KernelInfo {
  std::string name;
  xesvm_ze_kernel_fn fn1 = nullptr;        ///< ABI 1 entry, or
  xesvm_ze_group_kernel_fn fn2 = nullptr;  ///< ABI 2 entry
  std::vector<std::uint32_t> arg_sizes;
  std::vector<ArgKind> arg_kinds;
  std::uint32_t required_group_size[3] = {0, 0, 0};
  std::uint32_t local_mem_size = 0;           ///< the kernel's own local memory
  bool barriers = false;                      ///< items run as fibers (may wait at a barrier)
  std::uint32_t required_sub_group_size = 0;  ///< a SPIR-V kernel's intel_reqd_sub_group_size (only 1), or 0
};

/// The kernels of a module and what keeps their code alive (a loaded
/// library, a JIT). Immutable; shared by the module, its kernels and the
/// launches in flight.
struct Program {
  std::shared_ptr<void> code;
  std::vector<KernelInfo> kernels;
  /// The kernel named name, or nullptr.
  const KernelInfo* find(const char* name) const;
};

class Module : public Registered<_ze_module_handle_t, HandleKind::kModule> {
 public:
  Module(Context& c, Device& d) : ctx(c), dev(d) {}
  Context& ctx;
  Device& dev;
  std::shared_ptr<const Program> program;
  std::vector<std::uint8_t> binary;
  std::string build_log;  ///< of a successful build
  std::atomic<std::uint32_t> kernels{0};
};

/// Builds a module from a native blob or SPIR-V. Throws ZeError with the
/// build log text in what.
std::unique_ptr<Module> create_module(Context& ctx, Device& dev, const ze_module_desc_t& desc);

class Kernel : public Registered<_ze_kernel_handle_t, HandleKind::kKernel> {
 public:
  Kernel(Module& m, const KernelInfo& d);
  ~Kernel();
  Module& module;
  std::shared_ptr<const Program> program;
  const KernelInfo& desc;
  std::uint32_t group[3] = {1, 1, 1};
  std::vector<std::vector<std::byte>> args;  ///< kLocal: empty
  std::vector<std::size_t> local_sizes;      ///< kLocal: the bytes asked for
  std::vector<bool> set;
  ze_kernel_indirect_access_flags_t indirect = 0;
};

/// Builds the command body of a launch (arguments captured now). Throws
/// ZeError if arguments are missing.
std::function<void()> launch_body(Kernel& k, Device& dev, const ze_group_count_t& groups);

}  // namespace xesvm::ze
