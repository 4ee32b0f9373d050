// DOC: Overview
//
// The Runtime facade: opens the backend, puts an SvmManager on top of a
// mechanism backend (the runtime then is the driver) or uses the backend's
// own policy face (the kernel is the driver), and turns the public API into
// policy-face calls. It also owns SVM allocations (alloc_shared) and the
// fork protocol.
//
// DOC: fork
//
// A child does not inherit the userfaultfd registration, so device-resident
// pages would read as zeros there. A pthread_atfork prepare handler brings
// every runtime's device data back to RAM and holds each runtime's fork lock
// (no migration to the device can start) until the parent and child
// handlers release it. A raw clone() or syscall(SYS_fork) bypasses this.
#include <pthread.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <span>
#include <sstream>
#include <utility>

#include "runtime/backend.hpp"
#include "runtime/device_copy.hpp"
#include "runtime/runtime_impl.hpp"

namespace xesvm {
namespace {

std::string hex(std::uint64_t v) {
  std::ostringstream os;
  os << "0x" << std::hex << v;
  return os.str();
}

// Every live runtime with a user-space driver, for the fork handlers. Never
// destroyed: a Runtime may be destroyed during exit, after static objects.
std::mutex& registry_mu() {
  static auto* mu = new std::mutex;  // NOLINT(cppcoreguidelines-owning-memory): immortal
  return *mu;
}
std::set<SvmManager*>& registry() {
  static auto* s = new std::set<SvmManager*>;  // NOLINT(cppcoreguidelines-owning-memory): immortal
  return *s;
}

void fork_prepare() {
  registry_mu().lock();
  for (SvmManager* m : registry()) {
    m->fork_lock().lock();
    m->evict_all();
  }
}
void fork_release() {
  for (SvmManager* m : registry()) m->fork_lock().unlock();
  registry_mu().unlock();
}

// The runtime whose kernel the current thread is running a work item of.
thread_local const RuntimeImpl* tl_kernel_of = nullptr;

void install_fork_handlers() {
  static std::once_flag once;
  std::call_once(once, [] { pthread_atfork(fork_prepare, fork_release, fork_release); });
}

}  // namespace

RuntimeImpl::RuntimeImpl(std::string_view uri, const RuntimeOptions& options)
    : observer_(Observer::from_environment()), backend_(open_backend(uri)) {
  if (MechanismFace* mech = backend_->mechanism()) {
    Engine* engine = backend_->engine();
    manager_ = std::make_unique<SvmManager>(*mech, options, engine ? engine->accessed_bits() : nullptr);
    policy_ = manager_.get();
    if (engine) engine->set_fault_handler(manager_.get());
    install_fork_handlers();
    std::lock_guard lk(registry_mu());
    registry().insert(manager_.get());
  } else {
    policy_ = backend_->policy();
    if (!policy_) {
      throw Error(Error::Code::kUnsupported,
                  "backend '" + backend_->info().name + "' has neither a policy nor a mechanism face");
    }
    kernel_pressure_ = std::make_unique<KernelPressure>(*policy_, options);
  }
  if (observer_) observer_->start([this] { return stats(); }, backend_->info().name);
}

RuntimeImpl::~RuntimeImpl() {
  // The report covers the application's work, not the teardown below.
  if (observer_) observer_->finish();
  if (manager_) {
    {
      std::lock_guard lk(registry_mu());
      registry().erase(manager_.get());
    }
    if (Engine* e = backend_->engine()) e->set_fault_handler(nullptr);
  }
  std::map<std::uint64_t, Allocation> allocs;
  {
    std::lock_guard lk(mu_);
    allocs.swap(allocations_);
  }
  for (auto& [p, a] : allocs) {
    try {
      if (manager_)
        manager_->discard(a.base, a.len);
      else
        policy_->unmirror(a.base, a.len);
    } catch (const Error&) {  // the mapping is gone already
    }
    munmap(reinterpret_cast<void*>(a.base), a.len);
  }
  if (manager_) {
    // Application mirrors still registered would leave the backend calling
    // a destroyed manager: detach, then stop the backend (its service thread
    // may be inside invalidate() right now) before the manager goes.
    manager_->detach();
    backend_.reset();
  }
  manager_.reset();
}

void RuntimeImpl::wait_for_running_kernels(const char* what) {
  if (tl_kernel_of == this) {
    throw Error(Error::Code::kInvalidArgument,
                std::string(what) +
                    ": called from inside a kernel of this runtime; it waits for running kernels, "
                    "so call it from outside the kernel");
  }
  std::unique_lock lk(launch_mu_);
  const std::uint64_t before = next_launch_;
  launch_cv_.wait(lk, [&] { return running_launches_.empty() || *running_launches_.begin() >= before; });
}

void* RuntimeImpl::alloc_shared(std::size_t bytes, std::size_t alignment) {
  if (bytes == 0) throw Error(Error::Code::kInvalidArgument, "alloc_shared: size is 0; expected > 0");
  if (alignment == 0) alignment = kPageSize;
  if (alignment & (alignment - 1) || alignment > (2u << 20)) {
    throw Error(Error::Code::kInvalidArgument,
                "alloc_shared: alignment " + std::to_string(alignment) + " is not a power of two up to 2 MiB");
  }
  if (bytes > (1ull << 46)) {
    throw Error(Error::Code::kInvalidArgument, "alloc_shared: size " + std::to_string(bytes) + " is too large");
  }
  const std::size_t len = (bytes + kPageSize - 1) & ~(kPageSize - 1);
  // Large allocations are 2 MiB aligned so that 2 MiB chunks fit them.
  const std::size_t align = std::max<std::size_t>(alignment, len >= (2u << 20) ? (2u << 20) : kPageSize);
  const std::size_t span = len + align;
  void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) {
    throw Error(Error::Code::kOutOfMemory, "alloc_shared: mmap of " + std::to_string(span) + " bytes failed");
  }
  const std::uint64_t r = reinterpret_cast<std::uint64_t>(raw);
  const std::uint64_t base = (r + align - 1) & ~(std::uint64_t(align) - 1);
  if (base > r) munmap(raw, base - r);
  if (r + span > base + len) munmap(reinterpret_cast<void*>(base + len), r + span - (base + len));
  try {
    policy_->mirror(base, len);
  } catch (...) {
    munmap(reinterpret_cast<void*>(base), len);
    throw;
  }
  std::lock_guard lk(mu_);
  allocations_[base] = Allocation{base, len};
  return reinterpret_cast<void*>(base);
}

void RuntimeImpl::free(void* ptr) {
  if (!ptr) throw Error(Error::Code::kInvalidArgument, "free: null pointer; expected a pointer from alloc_shared");
  // Refused before the allocation is forgotten: a kernel's free() throws
  // and leaves the pointer valid and freeable from outside the kernel.
  if (tl_kernel_of == this) wait_for_running_kernels("free");
  Allocation a;
  {
    std::lock_guard lk(mu_);
    auto it = allocations_.find(reinterpret_cast<std::uint64_t>(ptr));
    if (it == allocations_.end()) {
      throw Error(Error::Code::kInvalidArgument, "free: " + hex(reinterpret_cast<std::uint64_t>(ptr)) +
                                                     " was not returned by alloc_shared (or was freed already)");
    }
    a = it->second;
    allocations_.erase(it);
  }
  wait_for_running_kernels("free");
  if (manager_) {
    manager_->discard(a.base, a.len);
  } else {
    kernel_pressure_->forget(a.base, a.len);
    policy_->unmirror(a.base, a.len);
  }
  munmap(reinterpret_cast<void*>(a.base), a.len);
}

std::pair<std::uint64_t, std::size_t> RuntimeImpl::whole_pages(const void* ptr, std::size_t bytes, const char* what) {
  if (!ptr) throw Error(Error::Code::kInvalidArgument, std::string(what) + ": null pointer");
  if (bytes == 0) throw Error(Error::Code::kInvalidArgument, std::string(what) + ": size is 0; expected > 0");
  const std::uint64_t p = reinterpret_cast<std::uint64_t>(ptr);
  if (p + bytes < p) throw Error(Error::Code::kInvalidArgument, std::string(what) + ": span wraps around");
  const std::uint64_t lo = (p + kPageSize - 1) & ~(std::uint64_t(kPageSize) - 1);
  const std::uint64_t hi = (p + bytes) & ~(std::uint64_t(kPageSize) - 1);
  if (hi <= lo) {
    throw Error(Error::Code::kInvalidArgument, std::string(what) + ": [" + hex(p) + ", +" + std::to_string(bytes) +
                                                   ") holds no whole 4 KiB page; partial pages stay in system memory");
  }
  return {lo, hi - lo};
}

std::pair<std::uint64_t, std::size_t> RuntimeImpl::covering_pages(const void* ptr, std::size_t bytes,
                                                                  const char* what) {
  if (!ptr) throw Error(Error::Code::kInvalidArgument, std::string(what) + ": null pointer");
  if (bytes == 0) throw Error(Error::Code::kInvalidArgument, std::string(what) + ": size is 0; expected > 0");
  const std::uint64_t p = reinterpret_cast<std::uint64_t>(ptr);
  if (p + bytes < p) throw Error(Error::Code::kInvalidArgument, std::string(what) + ": span wraps around");
  const std::uint64_t lo = p & ~(std::uint64_t(kPageSize) - 1);
  const std::uint64_t hi = (p + bytes + kPageSize - 1) & ~(std::uint64_t(kPageSize) - 1);
  return {lo, hi - lo};
}

void RuntimeImpl::mirror(void* ptr, std::size_t bytes) {
  auto [s, n] = whole_pages(ptr, bytes, "mirror");
  policy_->mirror(s, n);
}

void RuntimeImpl::unmirror(void* ptr, std::size_t bytes) {
  auto [s, n] = whole_pages(ptr, bytes, "unmirror");
  wait_for_running_kernels("unmirror");
  if (kernel_pressure_) kernel_pressure_->forget(s, n);
  policy_->unmirror(s, n);
}

void RuntimeImpl::discard(void* ptr, std::size_t bytes) {
  auto [s, n] = whole_pages(ptr, bytes, "discard");
  {
    std::lock_guard lk(mu_);
    auto it = allocations_.upper_bound(s + n - 1);
    if (it != allocations_.begin() && std::prev(it)->second.base + std::prev(it)->second.len > s) {
      throw Error(Error::Code::kInvalidArgument, "discard: [" + hex(s) + ", +" + std::to_string(n) +
                                                     ") is alloc_shared() memory; expected a mirror()ed "
                                                     "region (free() alloc_shared memory)");
    }
  }
  wait_for_running_kernels("discard");
  if (manager_) {
    manager_->discard_mirror(s, n);
  } else {
    kernel_pressure_->forget(s, n);
    policy_->unmirror(s, n);
  }
}

bool RuntimeImpl::advise(void* ptr, std::size_t bytes, const Advice& advice) {
  auto [s, n] = covering_pages(ptr, bytes, "advise");
  if (advice.preferred != Location::kNone && advice.preferred != Location::kSystem &&
      advice.preferred != Location::kDevice) {
    throw Error(Error::Code::kInvalidArgument, "advise: preferred location " +
                                                   std::to_string(static_cast<unsigned>(advice.preferred)) +
                                                   " is not none, system or device; expected a Location value");
  }
  const bool applied = policy_->advise(s, n, advice);
  if (kernel_pressure_) kernel_pressure_->advise(s, n, advice);
  return applied;
}

std::uint64_t RuntimeImpl::prefetch(void* ptr, std::size_t bytes, Location where) {
  auto [s, n] = covering_pages(ptr, bytes, "prefetch");
  if (where != Location::kSystem && where != Location::kDevice) {
    throw Error(Error::Code::kInvalidArgument,
                "prefetch: location " +
                    (where == Location::kNone ? std::string("none") : std::to_string(static_cast<unsigned>(where))) +
                    " is not device or system; expected Location::kDevice or Location::kSystem");
  }
  if (manager_) {
    const std::uint64_t p = reinterpret_cast<std::uint64_t>(ptr);
    return manager_->prefetch_bytes(p, p + bytes, where);
  }
  if (where == Location::kDevice) {
    const std::pair<std::uint64_t, std::uint64_t> span{s, n};
    kernel_pressure_->before_device_use(std::span(&span, 1), n);
  } else {
    kernel_pressure_->forget(s, n);
  }
  // The kernel reports whole pages: never more than was asked for.
  return std::min<std::uint64_t>(policy_->prefetch(s, n, where), bytes);
}

EvictResult RuntimeImpl::evict(void* ptr, std::size_t bytes) {
  auto [s, n] = covering_pages(ptr, bytes, "evict");
  return policy_->evict(s, n);
}

Residency RuntimeImpl::residency(const void* ptr, std::size_t bytes) {
  auto [s, n] = covering_pages(ptr, bytes, "residency");
  return policy_->residency(s, n);
}

void RuntimeImpl::launch(std::uint64_t global_size, const Kernel& kernel) {
  Engine* e = backend_->engine();
  if (!e) {
    const std::string reason = backend_->launch_unsupported_reason();
    throw Error(Error::Code::kUnsupported, "launch: backend '" + backend_->info().name +
                                               "' has no execution engine for host kernels" +
                                               (reason.empty() ? std::string() : ": " + reason));
  }
  if (!kernel) throw Error(Error::Code::kInvalidArgument, "launch: empty kernel");
  std::uint64_t id;
  {
    std::lock_guard lk(launch_mu_);
    id = next_launch_++;
    running_launches_.insert(id);
  }
  struct Done {
    RuntimeImpl& rt;
    std::uint64_t id;
    ~Done() {
      {
        std::lock_guard lk(rt.launch_mu_);
        rt.running_launches_.erase(id);
      }
      rt.launch_cv_.notify_all();
    }
  } done{*this, id};
  if (manager_) manager_->check_cpu_protection();
  e->launch(global_size, [&](const WorkItem& wi, DeviceAccessor& acc) {
    const RuntimeImpl* outer = std::exchange(tl_kernel_of, this);
    struct Restore {
      const RuntimeImpl* prev;
      ~Restore() { tl_kernel_of = prev; }
    } restore{outer};
    kernel(wi, acc);
  });
}

namespace {

void check_device_span(const char* what, const void* p, std::size_t bytes) {
  if (!p) throw Error(Error::Code::kInvalidArgument, std::string(what) + ": null pointer");
  if (bytes == 0) throw Error(Error::Code::kInvalidArgument, std::string(what) + ": size is 0; expected > 0");
  const auto a = reinterpret_cast<std::uint64_t>(p);
  if (a + bytes < a) throw Error(Error::Code::kInvalidArgument, std::string(what) + ": span wraps around");
  if (a + bytes > (1ull << 47)) {
    throw Error(Error::Code::kInvalidArgument, std::string(what) + ": [" + hex(a) + ", +" + std::to_string(bytes) +
                                                   ") ends past the 47-bit user address space");
  }
}

}  // namespace

Completion RuntimeImpl::copy(void* dst, const void* src, std::size_t bytes) {
  check_device_span("copy (destination)", dst, bytes);
  check_device_span("copy (source)", src, bytes);
  const auto d = reinterpret_cast<std::uint64_t>(dst), s = reinterpret_cast<std::uint64_t>(src);
  if (d < s + bytes && s < d + bytes) {
    throw Error(Error::Code::kInvalidArgument, "copy: source [" + hex(s) + ", +" + std::to_string(bytes) +
                                                   ") and destination [" + hex(d) +
                                                   ") overlap; expected disjoint spans");
  }
  CopyFace* c = backend_->copier();
  Engine* e = c ? nullptr : backend_->engine();
  if (!c && !e) {
    throw Error(Error::Code::kUnsupported,
                "copy: backend '" + backend_->info().name + "' has no engine for device copies");
  }
  check_cpu_mapped("copy (source)", s, bytes);
  check_cpu_mapped("copy (destination)", d, bytes);
  if (kernel_pressure_) {
    const std::pair<std::uint64_t, std::uint64_t> spans[] = {{s, bytes}, {d, bytes}};
    kernel_pressure_->before_device_use(spans, 2 * bytes);
  }
  return Completion(c ? c->copy(d, s, bytes) : engine_copy(*e, d, s, bytes));
}

Completion RuntimeImpl::fill(void* dst, const void* pattern, std::size_t pattern_size, std::size_t bytes) {
  check_device_span("fill", dst, bytes);
  if (!pattern) throw Error(Error::Code::kInvalidArgument, "fill: null pattern");
  if (pattern_size != 1 && pattern_size != 2 && pattern_size != 4) {
    throw Error(Error::Code::kInvalidArgument,
                "fill: pattern size " + std::to_string(pattern_size) + " is not 1, 2 or 4 bytes");
  }
  const auto d = reinterpret_cast<std::uint64_t>(dst);
  if (d % pattern_size != 0 || bytes % pattern_size != 0) {
    throw Error(Error::Code::kInvalidArgument, "fill: destination " + hex(d) + " and size " + std::to_string(bytes) +
                                                   " must be multiples of the " + std::to_string(pattern_size) +
                                                   "-byte pattern");
  }
  std::uint32_t pat = 0;
  std::memcpy(&pat, pattern, pattern_size);
  if (pattern_size == 1) pat *= 0x01010101u;
  if (pattern_size == 2) pat |= pat << 16;
  CopyFace* c = backend_->copier();
  Engine* e = c ? nullptr : backend_->engine();
  if (!c && !e) {
    throw Error(Error::Code::kUnsupported,
                "fill: backend '" + backend_->info().name + "' has no engine for device fills");
  }
  check_cpu_mapped("fill", d, bytes);
  if (kernel_pressure_) {
    const std::pair<std::uint64_t, std::uint64_t> span{d, bytes};
    kernel_pressure_->before_device_use(std::span(&span, 1), bytes);
  }
  return Completion(c ? c->fill(d, pat, static_cast<unsigned>(pattern_size), bytes)
                      : engine_fill(*e, d, pat, static_cast<unsigned>(pattern_size), bytes));
}

Stats RuntimeImpl::stats() const {
  Stats s;
  if (manager_)
    manager_->add_stats(s);
  else {
    DeviceMemoryUse use = policy_->device_memory();
    s.device_bytes_in_use = use.used;
    s.device_bytes_high_water = use.high_water;
    s.device_bytes_total = use.total;
  }
  backend_->add_stats(s);
  if (kernel_pressure_) {
    // Pressure evictions chosen by the runtime (the backend counts every
    // eviction request, including these, in pages_evicted).
    s.evictions = std::max(s.evictions, kernel_pressure_->evictions());
  }
  return s;
}

Capabilities RuntimeImpl::capabilities() const {
  Capabilities c;
  c.backend = backend_->info().name;
  Engine* e = backend_->engine();
  c.has_engine = e != nullptr;
  c.engine_workers = e ? e->workers() : 0;
  c.has_mechanism = backend_->mechanism() != nullptr;
  c.host_kernels = e != nullptr;  // every engine runs Kernel callables
  c.kernel_mode_faults = backend_->kernel_mode_faults();
  c.device_memory_bytes = policy_->device_memory().total;
  return c;
}

std::vector<std::pair<std::string, std::string>> RuntimeImpl::describe() const {
  BackendInfo i = backend_->info();
  std::vector<std::pair<std::string, std::string>> out{{"backend", i.name}, {"description", i.description}};
  out.insert(out.end(), i.properties.begin(), i.properties.end());
  out.emplace_back("faces", std::string(backend_->mechanism() ? "policy (runtime) + mechanism" : "policy (kernel)") +
                                (backend_->engine() ? " + engine" : ""));
  return out;
}

// ---------------------------------------------------------------------------

namespace {

// Tunables outside these bounds are mistakes, not settings.
const RuntimeOptions& validated(const RuntimeOptions& o) {
  auto bad = [](const std::string& what, const std::string& expected) {
    throw Error(Error::Code::kInvalidArgument, "RuntimeOptions: " + what + "; expected " + expected);
  };
  if (o.copy_workers == 0 || o.copy_workers > 64)
    bad("copy_workers = " + std::to_string(o.copy_workers), "1..64 batch copy workers");
  if (o.evict_retries > 1000)  // 0 is meaningful: one pass, busy frames reported at once
    bad("evict_retries = " + std::to_string(o.evict_retries), "0..1000 retries of busy frames");
  if (o.thrash_threshold == 0 || o.thrash_threshold > 1000)
    bad("thrash_threshold = " + std::to_string(o.thrash_threshold), "1..1000 evictions and refaults");
  constexpr std::uint64_t kHour = 3'600'000'000'000ull;
  if (o.thrash_window_ns == 0 || o.thrash_window_ns > kHour)
    bad("thrash_window_ns = " + std::to_string(o.thrash_window_ns), "1 ns .. 1 hour");
  if (o.thrash_cooldown_ns > kHour)
    bad("thrash_cooldown_ns = " + std::to_string(o.thrash_cooldown_ns), "at most 1 hour");
  if (o.copy_serial_threshold > (1ull << 30))
    bad("copy_serial_threshold = " + std::to_string(o.copy_serial_threshold), "at most 1 GiB");
  return o;
}

}  // namespace

Runtime::Runtime(std::string_view uri, RuntimeOptions options)
    : impl_(std::make_unique<RuntimeImpl>(uri, validated(options))) {}
Runtime::~Runtime() = default;
Runtime::Runtime(Runtime&&) noexcept = default;
Runtime& Runtime::operator=(Runtime&&) noexcept = default;
RuntimeImpl& Runtime::live(const char* what) const {
  if (!impl_) {
    throw Error(Error::Code::kInvalidArgument,
                std::string(what) + ": this Runtime was moved from; expected a Runtime that owns a backend");
  }
  return *impl_;
}
RuntimeImpl& Runtime::impl() { return live("impl"); }
void* Runtime::alloc_shared(std::size_t bytes, std::size_t alignment) {
  return live("alloc_shared").alloc_shared(bytes, alignment);
}
void Runtime::free(void* ptr) { live("free").free(ptr); }
void Runtime::mirror(void* ptr, std::size_t bytes) { live("mirror").mirror(ptr, bytes); }
void Runtime::unmirror(void* ptr, std::size_t bytes) { live("unmirror").unmirror(ptr, bytes); }
void Runtime::discard(void* ptr, std::size_t bytes) { live("discard").discard(ptr, bytes); }
bool Runtime::advise(void* ptr, std::size_t bytes, const Advice& a) { return live("advise").advise(ptr, bytes, a); }
std::uint64_t Runtime::prefetch(void* ptr, std::size_t bytes, Location where) {
  return live("prefetch").prefetch(ptr, bytes, where);
}
EvictResult Runtime::evict(void* ptr, std::size_t bytes) { return live("evict").evict(ptr, bytes); }
Residency Runtime::residency(const void* ptr, std::size_t bytes) { return live("residency").residency(ptr, bytes); }
void Runtime::launch(std::uint64_t global_size, const Kernel& kernel) { live("launch").launch(global_size, kernel); }
Completion Runtime::copy(void* dst, const void* src, std::size_t bytes) { return live("copy").copy(dst, src, bytes); }
Completion Runtime::fill(void* dst, const void* pattern, std::size_t pattern_size, std::size_t bytes) {
  return live("fill").fill(dst, pattern, pattern_size, bytes);
}
Stats Runtime::stats() const { return live("stats").stats(); }
Capabilities Runtime::capabilities() const { return live("capabilities").capabilities(); }
std::vector<std::pair<std::string, std::string>> Runtime::describe() const { return live("describe").describe(); }

}  // namespace xesvm
