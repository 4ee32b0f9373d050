// The driver singleton, devices, USM allocations, advice, residency and the
// copy engine (see driver.hpp for the design).
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <shared_mutex>
#include <sstream>
#include <unordered_map>

#include "level-zero/driver.hpp"

namespace xesvm::ze {

namespace {

constexpr std::size_t kPage = 4096;
constexpr std::size_t kTwoMiB = 2u << 20;
constexpr std::uint64_t kHostLimit = 1ull << 46;  // the runtime's largest allocation
constexpr std::size_t kCopyPiece = 64u << 10;     // bytes per copy work item

std::uint64_t align_up(std::uint64_t v, std::uint64_t a) { return (v + a - 1) & ~(a - 1); }

std::string hex(std::uint64_t v) {
  std::ostringstream os;
  os << "0x" << std::hex << v;
  return os.str();
}

std::uint8_t default_advice(MemKind k) {
  switch (k) {
    case MemKind::kHost:
      return kPreferSystem;
    case MemKind::kDevice:
      return kPreferDevice;
    default:
      return 0;
  }
}

Advice to_runtime_advice(std::uint8_t bits) {
  Advice a;
  a.preferred = (bits & kPreferDevice)   ? Location::kDevice
                : (bits & kPreferSystem) ? Location::kSystem
                                         : Location::kNone;
  a.read_mostly = bits & kReadMostly;
  a.atomic = bits & kAtomic;
  return a;
}

// The runtime advice of bits over [first, last) pages of a, one call per run
// of equal bits. REQUIRES a.advice_mu.
void push_advice(Allocation& a, std::size_t first, std::size_t last) {
  Runtime& rt = a.home->runtime();
  std::size_t i = first;
  while (i < last) {
    std::size_t j = i + 1;
    while (j < last && a.advice[j] == a.advice[i]) ++j;
    const std::uint64_t s = a.backing + i * kPage;
    const std::uint64_t e = std::min<std::uint64_t>(a.backing + j * kPage, a.backing + align_up(a.size, kPage));
    if (!rt.advise(reinterpret_cast<void*>(s), e - s, to_runtime_advice(a.advice[i]))) {
      log("advice for [" + hex(s) + ", " + hex(e) + ") cannot be applied by backend '" + a.home->uri() + "'");
    }
    i = j;
  }
}

bool relaxed_size(const void* pnext) {
  for (auto* b = static_cast<const ze_base_desc_t*>(pnext); b; b = static_cast<const ze_base_desc_t*>(b->pNext)) {
    if (b->stype == ZE_STRUCTURE_TYPE_RELAXED_ALLOCATION_LIMITS_EXP_DESC) {
      auto* r = reinterpret_cast<const ze_relaxed_allocation_limits_exp_desc_t*>(b);
      if (r->flags & ZE_RELAXED_ALLOCATION_LIMITS_EXP_FLAG_MAX_SIZE) return true;
    }
  }
  return false;
}

// Maps len bytes of SVM memory aligned to align and mirrors them in home's
// runtime. The pages are populated (with the shared zero page) before the
// mirror starts, so that no page of an allocation is ever "never touched":
// the runtime's GPU fault path does not resolve faults on such pages (see
// level-zero/README.md, "Runtime notes").
void* svm_map(Device& home, std::size_t len, std::size_t align) {
  align = std::max(align, len >= kTwoMiB ? kTwoMiB : kPage);  // 2 MiB chunks fit large ones
  const std::size_t span = len + align;
  void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) throw Error(Error::Code::kOutOfMemory, "mmap of " + std::to_string(span) + " bytes failed");
  const std::uint64_t r = reinterpret_cast<std::uint64_t>(raw);
  const std::uint64_t base = align_up(r, align);
  if (base > r) munmap(raw, base - r);
  if (r + span > base + len) munmap(reinterpret_cast<void*>(base + len), r + span - (base + len));
  void* p = reinterpret_cast<void*>(base);
  if (madvise(p, len, MADV_POPULATE_READ) != 0) {
    for (std::uint64_t q = base; q < base + len; q += kPage) (void)*reinterpret_cast<volatile const char*>(q);
  }
  try {
    home.runtime().mirror(p, len);
  } catch (...) {
    munmap(p, len);
    throw;
  }
  return p;
}

// Undoes svm_map; the bytes are not wanted any more.
void svm_unmap(Device& home, void* p, std::size_t len) {
  home.runtime().discard(p, len);
  munmap(p, len);
}

}  // namespace

void log(const std::string& msg) { std::fprintf(stderr, "xesvm-ze: %s\n", msg.c_str()); }

void fail(ze_result_t code, const std::string& what) { throw ZeError{code, what}; }

ze_result_t to_result(const Error& e) {
  switch (e.code()) {
    case Error::Code::kInvalidArgument:
      return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    case Error::Code::kOutOfMemory:
      return ZE_RESULT_ERROR_OUT_OF_DEVICE_MEMORY;
    case Error::Code::kUnsupported:
      return ZE_RESULT_ERROR_UNSUPPORTED_FEATURE;
    case Error::Code::kDeviceLost:
      return ZE_RESULT_ERROR_DEVICE_LOST;
    case Error::Code::kBusy:
    case Error::Code::kBackend:
      break;
  }
  return ZE_RESULT_ERROR_UNKNOWN;
}

// --- Xlate -----------------------------------------------------------------

std::uint64_t Xlate::operator()(std::uint64_t addr, std::size_t n) const {
  if (spans_.empty()) return addr;
  auto it =
      std::upper_bound(spans_.begin(), spans_.end(), addr, [](std::uint64_t a, const Span& s) { return a < s.start; });
  if (it == spans_.begin()) return addr;
  --it;
  if (addr >= it->end) return addr;
  if (n > it->end - addr) return 0;
  return it->backing + (addr - it->start);
}

// --- the registry of live handles ------------------------------------------

namespace {
struct HandleRegistry {
  std::shared_mutex mu;
  std::unordered_map<const void*, HandleKind> live;
};
// Built on first use (by the first Driver), so it outlives the driver's
// teardown at exit.
HandleRegistry& registry() {
  static HandleRegistry r;
  return r;
}
}  // namespace

namespace handles {
void add(const void* h, HandleKind k) {
  HandleRegistry& r = registry();
  std::unique_lock lk(r.mu);
  r.live[h] = k;
}
void remove(const void* h) {
  HandleRegistry& r = registry();
  std::unique_lock lk(r.mu);
  r.live.erase(h);
}
bool is(const void* h, HandleKind k) {
  HandleRegistry& r = registry();
  std::shared_lock lk(r.mu);
  auto it = r.live.find(h);
  return it != r.live.end() && it->second == k;
}
}  // namespace handles

// --- Driver and devices ----------------------------------------------------

namespace {
std::once_flag g_once;
Driver* g_driver = nullptr;
// Destroys the driver at exit (or when the loader unloads the library). It
// is registered right after the driver is built, so it runs before every
// exit handler registered earlier: the runtime's statics (built with the
// first device), the leak checker's, and the loader's own teardown.
void teardown() {
  Driver* d = g_driver;
  g_driver = nullptr;
  delete d;
}
ze_result_t g_init_result = ZE_RESULT_ERROR_UNINITIALIZED;
std::string g_init_error;
}  // namespace

// The backend URIs: XESVM_BACKEND, the one variable every xesvm program
// reads; XESVM_ZE_BACKEND, its deprecated alias, when XESVM_BACKEND is unset.
std::string backend_list() {
  const char* env = std::getenv("XESVM_BACKEND");
  if (env && *env) return env;
  env = std::getenv("XESVM_ZE_BACKEND");
  if (env && *env) {
    log("XESVM_ZE_BACKEND is deprecated; set XESVM_BACKEND instead");
    return env;
  }
  return "sim:vram=256M";
}

Driver::Driver() {
  const std::string list = backend_list();
  std::size_t pos = 0;
  while (pos <= list.size()) {
    std::size_t semi = list.find(';', pos);
    if (semi == std::string::npos) semi = list.size();
    std::string uri = list.substr(pos, semi - pos);
    if (!uri.empty()) {
      devices_.push_back(std::make_unique<Device>(static_cast<std::uint32_t>(devices_.size()), uri));
    }
    pos = semi + 1;
  }
  if (devices_.empty()) fail(ZE_RESULT_ERROR_UNINITIALIZED, "XESVM_BACKEND names no backend");
}

Driver& Driver::get() {
  std::call_once(g_once, [] {
    try {
      g_driver = new Driver();
      std::atexit(teardown);
      g_init_result = ZE_RESULT_SUCCESS;
    } catch (const ZeError& e) {
      g_init_result = e.code;
      g_init_error = e.what;
    } catch (const Error& e) {
      g_init_error = e.what();
    } catch (const std::exception& e) {
      g_init_error = e.what();
    }
    if (g_init_result != ZE_RESULT_SUCCESS) {
      g_init_result = ZE_RESULT_ERROR_UNINITIALIZED;
      log("zeInit: no device: " + g_init_error);
    }
  });
  if (!g_driver) fail(g_init_result, g_init_error);
  return *g_driver;
}

Driver* Driver::instance() { return g_driver; }

Driver::~Driver() {
  // Allocations the application did not free go first, then the devices.
  std::map<std::uint64_t, std::shared_ptr<Allocation>> left;
  {
    std::unique_lock lk(reg_mu_);
    left.swap(allocs_);
  }
  for (auto& [b, a] : left) release_allocation(a);
  devices_.clear();
}

void Driver::add_allocation(std::shared_ptr<Allocation> a) {
  std::unique_lock lk(reg_mu_);
  allocs_[a->base] = std::move(a);
}

std::shared_ptr<Allocation> Driver::remove_allocation(std::uint64_t base) {
  std::unique_lock lk(reg_mu_);
  auto it = allocs_.find(base);
  if (it == allocs_.end()) return nullptr;
  auto a = std::move(it->second);
  allocs_.erase(it);
  return a;
}

std::shared_ptr<Allocation> Driver::find(std::uint64_t addr) const {
  std::shared_lock lk(reg_mu_);
  auto it = allocs_.upper_bound(addr);
  if (it == allocs_.begin()) return nullptr;
  --it;
  if (addr - it->second->base >= it->second->size) return nullptr;
  return it->second;
}

std::vector<std::uint64_t> Driver::allocations_of(const Context* ctx) const {
  std::shared_lock lk(reg_mu_);
  std::vector<std::uint64_t> out;
  for (auto& [b, a] : allocs_) {
    if (a->ctx == ctx) out.push_back(b);
  }
  return out;
}

Xlate Driver::xlate() const {
  std::vector<Xlate::Span> spans;
  std::shared_lock lk(reg_mu_);
  for (auto& [b, a] : allocs_) {
    if (a->kind == MemKind::kDevice) spans.push_back({a->base, a->base + a->size, a->backing});
  }
  return Xlate(std::move(spans));
}

Device::Device(std::uint32_t index, std::string uri) : index_(index), uri_(std::move(uri)) {
  rt_ = std::make_unique<Runtime>(uri_);
  const Capabilities caps = rt_->capabilities();
  backend_ = caps.backend;
  description_ = rt_->describe();
  host_kernels_ = caps.host_kernels;
  // Only the sim has a cost model whose time is the device clock.
  modelled_clock_ = caps.backend == "sim";
  vram_ = caps.device_memory_bytes;
  if (vram_ == 0) {
    // A device without device memory of its own (an integrated GPU):
    // allocations live in system memory.
    vram_ = static_cast<std::uint64_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
  }
  workers_ = std::max(caps.engine_workers, 1u);
  // The sim's runtime is the driver of its memory (a user-space mechanism):
  // what it mirrors of the application's memory is shared-system memory.
  shared_system_ = caps.backend == "sim" && caps.has_mechanism && caps.has_engine;
}

std::uint64_t Device::clock_ns() {
  if (modelled_clock_) return rt_->stats().modelled_device_ns;
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

std::string Device::described(const std::string& key) const {
  for (const auto& [k, v] : description_) {
    if (k == key) return v;
  }
  return {};
}

std::pair<std::unique_lock<std::mutex>, std::byte*> Device::staging() {
  std::unique_lock lk(staging_mu_);
  if (!staging_) {
    void* p = svm_map(*this, kStagingBytes, kTwoMiB);
    Advice a;
    a.preferred = Location::kSystem;
    if (!rt_->advise(p, kStagingBytes, a)) {
      log("staging memory: backend '" + uri_ + "' cannot advise it to system memory; device reads may migrate it");
    }
    staging_ = p;
  }
  return {std::move(lk), static_cast<std::byte*>(staging_)};
}

// --- allocations -----------------------------------------------------------

void* allocate(Context& ctx, MemKind kind, Device* dev, std::size_t size, std::size_t alignment,
               std::uint32_t device_flags, std::uint32_t host_flags, const void* pnext, std::uint32_t ordinal) {
  const char* what = kind == MemKind::kHost     ? "zeMemAllocHost"
                     : kind == MemKind::kDevice ? "zeMemAllocDevice"
                                                : "zeMemAllocShared";
  const std::string w = what;
  if (kind != MemKind::kHost && device_flags > 0x7)
    fail(ZE_RESULT_ERROR_INVALID_ENUMERATION, w + ": unknown device_desc->flags");
  if (kind != MemKind::kDevice && host_flags > 0xf)
    fail(ZE_RESULT_ERROR_INVALID_ENUMERATION, w + ": unknown host_desc->flags");
  if (size == 0) fail(ZE_RESULT_ERROR_UNSUPPORTED_SIZE, w + ": size is 0");
  if (alignment & (alignment - 1))
    fail(ZE_RESULT_ERROR_UNSUPPORTED_ALIGNMENT, w + ": alignment is not 0 or a power of two");
  if (kind != MemKind::kHost && dev && ordinal != 0) {
    fail(ZE_RESULT_ERROR_INVALID_ARGUMENT,
         w + ": device_desc->ordinal " + std::to_string(ordinal) + " >= 1 memory ordinal");
  }
  Driver& drv = ctx.driver;
  Device& home = dev ? *dev : *drv.devices().front();
  const bool relaxed = relaxed_size(pnext);
  const std::uint64_t limit = kind == MemKind::kHost || relaxed ? kHostLimit : home.vram();
  if (size > limit) {
    fail(ZE_RESULT_ERROR_UNSUPPORTED_SIZE, w + ": size " + std::to_string(size) + " exceeds maxMemAllocSize " +
                                               std::to_string(limit) +
                                               (relaxed ? "" : " (ze_relaxed_allocation_limits_exp_desc_t lifts it)"));
  }
  if (alignment > (1ull << 30)) fail(ZE_RESULT_ERROR_UNSUPPORTED_ALIGNMENT, w + ": alignment above 1 GiB");
  const std::size_t align = std::max<std::size_t>(alignment, kPage);
  const std::size_t len = align_up(size, kPage);

  auto a = std::make_shared<Allocation>();
  a->kind = kind;
  a->ctx = &ctx;
  a->device = kind == MemKind::kHost ? nullptr : dev;
  a->home = &home;
  a->size = size;
  try {
    if (kind == MemKind::kDevice) {
      // The device address: a reservation the CPU cannot touch.
      const std::size_t res_len = len + align;
      void* res = mmap(nullptr, res_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (res == MAP_FAILED) fail(ZE_RESULT_ERROR_OUT_OF_HOST_MEMORY, w + ": cannot reserve address space");
      a->reservation = res;
      a->reservation_len = res_len;
      a->base = align_up(reinterpret_cast<std::uint64_t>(res), align);
      try {
        a->rt_ptr = svm_map(home, len, std::min(align, kTwoMiB));
      } catch (...) {
        munmap(res, res_len);
        throw;
      }
      a->backing = reinterpret_cast<std::uint64_t>(a->rt_ptr);
    } else {
      a->rt_ptr = svm_map(home, len, align);
      a->base = a->backing = reinterpret_cast<std::uint64_t>(a->rt_ptr);
    }
    a->rt_len = len;
  } catch (const Error& e) {
    fail(e.code() == Error::Code::kOutOfMemory ? ZE_RESULT_ERROR_OUT_OF_HOST_MEMORY : to_result(e),
         w + ": " + e.what());
  }
  a->advice.assign(len / kPage, default_advice(kind));
  if (default_advice(kind)) {
    std::lock_guard lk(a->advice_mu);
    push_advice(*a, 0, a->advice.size());
  }
  a->id = drv.next_alloc_id();
  void* p = reinterpret_cast<void*>(a->base);
  drv.add_allocation(std::move(a));
  return p;
}

void release_allocation(const std::shared_ptr<Allocation>& a) {
  try {
    svm_unmap(*a->home, a->rt_ptr, a->rt_len);
  } catch (const Error& e) {
    log(std::string("zeMemFree: runtime: ") + e.what());
  }
  if (a->reservation) munmap(a->reservation, a->reservation_len);
}

void release(Context& ctx, void* ptr) {
  Driver& drv = ctx.driver;
  auto a = drv.find(reinterpret_cast<std::uint64_t>(ptr));
  if (!a || a->base != reinterpret_cast<std::uint64_t>(ptr)) {
    fail(ZE_RESULT_ERROR_INVALID_ARGUMENT,
         "zeMemFree: " + hex(reinterpret_cast<std::uint64_t>(ptr)) + " is not the start of a live allocation");
  }
  if (a->ctx != &ctx) fail(ZE_RESULT_ERROR_INVALID_ARGUMENT, "zeMemFree: the allocation belongs to another context");
  if (!drv.remove_allocation(a->base)) fail(ZE_RESULT_ERROR_INVALID_ARGUMENT, "zeMemFree: freed concurrently");
  release_allocation(a);
}

std::shared_ptr<Allocation> require_range(const void* ptr, std::size_t size, const char* what) {
  Driver& drv = Driver::get();
  const std::uint64_t p = reinterpret_cast<std::uint64_t>(ptr);
  auto a = drv.find(p);
  if (!a)
    fail(ZE_RESULT_ERROR_INVALID_ARGUMENT,
         std::string(what) + ": " + hex(p) + " is not in a USM allocation of this driver");
  if (size > a->base + a->size - p) {
    fail(ZE_RESULT_ERROR_INVALID_SIZE, std::string(what) + ": " + std::to_string(size) + " bytes at " + hex(p) +
                                           " run past the end of their allocation");
  }
  return a;
}

namespace {

// The whole pages of [ptr, ptr+size) (system memory: only those are
// mirrored), as {start, length}; length 0 if there are none.
std::pair<void*, std::size_t> whole_pages(const void* ptr, std::size_t size) {
  const std::uint64_t p = reinterpret_cast<std::uint64_t>(ptr);
  const std::uint64_t s = align_up(p, kPage), e = (p + size) & ~std::uint64_t{kPage - 1};
  return {reinterpret_cast<void*>(s), s < e ? e - s : 0};
}

// Runtime advice for system memory, which keeps no per-page state: the one
// hint of this call on top of the defaults.
Advice system_advice(ze_memory_advice_t advice) {
  Advice a;
  if (advice == ZE_MEMORY_ADVICE_SET_READ_MOSTLY) a.read_mostly = true;
  if (advice == ZE_MEMORY_ADVICE_SET_PREFERRED_LOCATION) a.preferred = Location::kDevice;
  if (advice == ZE_MEMORY_ADVICE_CLEAR_NON_ATOMIC_MOSTLY) a.atomic = true;
  return a;
}

}  // namespace

void require_device_range(Device& dev, const void* ptr, std::size_t size, const char* what) {
  const std::uint64_t p = reinterpret_cast<std::uint64_t>(ptr);
  if (Driver::get().find(p) || !dev.shared_system()) {
    require_range(ptr, size, what);
    return;
  }
  // System memory: it must be readable and writable memory.
  if (!system_mapped(p, size)) {
    fail(ZE_RESULT_ERROR_INVALID_ARGUMENT, std::string(what) + ": " + hex(p) + " + " + std::to_string(size) +
                                               " is neither in an allocation of the driver nor mapped memory");
  }
}

void apply_advice(Device& dev, const void* ptr, std::size_t size, ze_memory_advice_t advice) {
  if (size == 0) fail(ZE_RESULT_ERROR_INVALID_SIZE, "zeCommandListAppendMemAdvise: size is 0");
  if (!Driver::get().find(reinterpret_cast<std::uint64_t>(ptr)) && dev.shared_system()) {
    dev.mirror_system(reinterpret_cast<std::uint64_t>(ptr), size);
    const auto [at, len] = whole_pages(ptr, size);
    if (len && dev.system_run(reinterpret_cast<std::uint64_t>(at)).first) {
      if (!dev.runtime().advise(at, len, system_advice(advice))) {
        log("advice for system memory cannot be applied by backend '" + dev.uri() + "'");
      }
    }
    return;
  }
  auto a = require_range(ptr, size, "zeCommandListAppendMemAdvise");
  const std::uint64_t off = reinterpret_cast<std::uint64_t>(ptr) - a->base;
  const std::size_t first = off / kPage, last = align_up(off + size, kPage) / kPage;
  std::lock_guard lk(a->advice_mu);
  for (std::size_t i = first; i < last; ++i) {
    std::uint8_t& b = a->advice[i];
    switch (advice) {
      case ZE_MEMORY_ADVICE_SET_READ_MOSTLY:
        b |= kReadMostly;
        break;
      case ZE_MEMORY_ADVICE_CLEAR_READ_MOSTLY:
        b &= ~kReadMostly;
        break;
      case ZE_MEMORY_ADVICE_SET_PREFERRED_LOCATION:
        b = (b & ~kPreferSystem) | kPreferDevice;
        break;
      case ZE_MEMORY_ADVICE_CLEAR_PREFERRED_LOCATION:
        b = (b & ~(kPreferSystem | kPreferDevice)) | default_advice(a->kind);
        break;
      case ZE_MEMORY_ADVICE_SET_NON_ATOMIC_MOSTLY:
        b &= ~kAtomic;
        break;
      case ZE_MEMORY_ADVICE_CLEAR_NON_ATOMIC_MOSTLY:
        b |= kAtomic;
        break;
      case ZE_MEMORY_ADVICE_BIAS_CACHED:
        b = (b & ~kBiasUncached) | kBiasCached;
        break;
      case ZE_MEMORY_ADVICE_BIAS_UNCACHED:
        b = (b & ~kBiasCached) | kBiasUncached;
        break;
      default:
        fail(ZE_RESULT_ERROR_INVALID_ENUMERATION, "zeCommandListAppendMemAdvise: unknown advice");
    }
  }
  push_advice(*a, first, last);
}

void prefetch_to_device(Device& dev, const void* ptr, std::size_t size) {
  if (size && !Driver::get().find(reinterpret_cast<std::uint64_t>(ptr)) && dev.shared_system()) {
    require_device_range(dev, ptr, size, "prefetch");
    dev.mirror_system(reinterpret_cast<std::uint64_t>(ptr), size);
    const auto [at, len] = whole_pages(ptr, size);
    if (len && dev.system_run(reinterpret_cast<std::uint64_t>(at)).first) {
      dev.runtime().prefetch(at, len, Location::kDevice);
    }
    return;
  }
  auto a = require_range(ptr, size, "prefetch");
  if (a->kind == MemKind::kHost || size == 0) return;
  const std::uint64_t at = a->backing + (reinterpret_cast<std::uint64_t>(ptr) - a->base);
  a->home->runtime().prefetch(reinterpret_cast<void*>(at), size, Location::kDevice);
}

void evict_to_system(Device& dev, const void* ptr, std::size_t size) {
  if (size && !Driver::get().find(reinterpret_cast<std::uint64_t>(ptr)) && dev.shared_system()) {
    require_device_range(dev, ptr, size, "evict");
    const auto [at, len] = whole_pages(ptr, size);
    if (len && dev.system_run(reinterpret_cast<std::uint64_t>(at)).first) dev.runtime().evict(at, len);
    return;  // memory the device never mirrored is in system memory already
  }
  auto a = require_range(ptr, size, "evict");
  if (size == 0) return;
  const std::uint64_t at = a->backing + (reinterpret_cast<std::uint64_t>(ptr) - a->base);
  a->home->runtime().evict(reinterpret_cast<void*>(at), size);
}

// --- the copy engine -------------------------------------------------------

namespace {

struct Piece {
  std::uint64_t dst, src;  // translated
  std::size_t n;
  std::size_t phase;      // fills: offset into the pattern
  bool dst_dev, src_dev;  // reached through the device accessor
};

// Where the bytes at addr are, whether the engine reaches them through the
// accessor (true) or directly as host memory (false), and where that stops
// being so.
struct Place {
  std::uint64_t at;
  bool dev;
  std::uint64_t end;  ///< the first address past the run of addr
};
Place locate(Driver& drv, Device& dev, std::uint64_t addr) {
  if (auto a = drv.find(addr)) return {a->backing + (addr - a->base), a->home == &dev, a->base + a->size};
  const auto [mirrored, end] = dev.system_run(addr);  // the application's own memory
  return {addr, mirrored, end};
}

// The smallest and the largest address the segments touch (for fills, src
// is unused), as {first, end}.
std::pair<std::uint64_t, std::uint64_t> extent(const std::vector<CopySeg>& segs, bool src) {
  std::uint64_t lo = UINT64_MAX, hi = 0;
  for (const CopySeg& s : segs) {
    const std::uint64_t a = src ? s.src : s.dst;
    lo = std::min(lo, a);
    hi = std::max(hi, a + s.n);
  }
  return {lo, hi};
}

}  // namespace

// --- device copies and fills through the runtime (no host kernels: xe) ---------

namespace {

// Staging layout: the bulk area holds a fill pattern laid out from phase 0
// (a whole number of patterns: every pattern size divides it); the small
// area holds the head and tail of a fill and device_write's bytes.
constexpr std::size_t kSmallArea = 4096;
constexpr std::size_t kBulkBytes = Device::kStagingBytes - kSmallArea;
constexpr std::size_t kTailAt = 1024, kWriteAt = 2048;
// Fills of at least this many bytes with a 1-, 2- or 4-byte pattern use the
// device's own fill (MEM_SET or a seeded copy); smaller ones one copy.
constexpr std::uint64_t kDirectFill = 64u << 10;
// Device operations one command keeps in flight.
constexpr std::size_t kMaxInFlight = 64;

// Device operations in flight, waited for in submission order. Those left
// when an error unwinds are waited for by their Completions' destructors.
class InFlight {
 public:
  void add(Completion c) {
    if (q_.size() == kMaxInFlight) {
      q_.front().wait();
      q_.pop_front();
    }
    q_.push_back(std::move(c));
  }
  void wait_all() {
    while (!q_.empty()) {
      q_.front().wait();
      q_.pop_front();
    }
  }

 private:
  std::deque<Completion> q_;
};

void* as_ptr(std::uint64_t a) { return reinterpret_cast<void*>(a); }

// Fills [d, d+n) (a device address) with pattern, whose byte at d is
// pattern[phase]. REQUIRES: the staging lock; stage is its memory.
void device_fill(Runtime& rt, std::byte* stage, std::uint64_t d, std::uint64_t n, const std::vector<std::byte>& pattern,
                 std::size_t phase, InFlight& q) {
  const std::size_t ps = pattern.size();
  auto at = [&](std::uint64_t i) { return pattern[(phase + i) % ps]; };  // the byte for d + i
  std::byte* small = stage + kBulkBytes;
  q.wait_all();  // nothing in flight reads staging memory rewritten below
  if (ps <= 4 && n >= kDirectFill) {
    // The aligned middle by the device's fill (the pattern rotated to start
    // there), the unaligned head and tail (under ps bytes) from staging.
    const std::uint64_t a = align_up(d, ps), e = (d + n) & ~std::uint64_t{ps - 1};
    std::byte rotated[4];
    for (std::size_t i = 0; i < ps; ++i) rotated[i] = at(a - d + i);
    if (a > d) {
      for (std::uint64_t i = 0; i < a - d; ++i) small[i] = at(i);
      q.add(rt.copy(as_ptr(d), small, a - d));
    }
    q.add(rt.fill(as_ptr(a), rotated, ps, e - a));
    if (d + n > e) {
      for (std::uint64_t i = 0; i < d + n - e; ++i) small[kTailAt + i] = at(e - d + i);
      q.add(rt.copy(as_ptr(e), small + kTailAt, d + n - e));
    }
    return;
  }
  // Any pattern: the bulk area holds it from phase 0, copied to every
  // kBulkBytes of the span (a multiple of the pattern size, so each copy
  // starts at the same phase).
  const std::uint64_t laid = std::min<std::uint64_t>(n, kBulkBytes);
  for (std::uint64_t i = 0; i < laid; ++i) stage[i] = at(i);
  for (std::uint64_t off = 0; off < n; off += kBulkBytes) {
    q.add(rt.copy(as_ptr(d + off), stage, std::min<std::uint64_t>(kBulkBytes, n - off)));
  }
}

}  // namespace

namespace {

// run_copy on a device without host kernels: every piece of the segments
// (split where an allocation or a run of plain memory ends) is one runtime
// copy, or a fill as device_fill does it, between device addresses.
void run_device_ops(Device& dev, const std::vector<CopySeg>& segs, const std::vector<std::byte>& pattern) {
  Driver& drv = Driver::get();
  Runtime& rt = dev.runtime();
  const bool fill = !pattern.empty();
  std::unique_lock<std::mutex> staging_lock;
  std::byte* stage = nullptr;
  if (fill) std::tie(staging_lock, stage) = dev.staging();
  InFlight q;  // destroyed (every operation waited for) before the staging lock goes
  for (const CopySeg& s : segs) {
    for (std::uint64_t off = 0; off < s.n;) {
      const Place d = locate(drv, dev, s.dst + off);
      std::uint64_t n = std::min<std::uint64_t>(s.n - off, d.end - (s.dst + off));
      if (fill) {
        device_fill(rt, stage, d.at, n, pattern, off % pattern.size(), q);
      } else {
        const Place from = locate(drv, dev, s.src + off);
        n = std::min(n, from.end - (s.src + off));
        q.add(rt.copy(as_ptr(d.at), as_ptr(from.at), n));
      }
      off += n;
    }
  }
  q.wait_all();
}

}  // namespace

void device_write(Device& dev, std::uint64_t dst, const void* src, std::size_t n) {
  if (dev.host_kernels()) {
    run_copy(dev, {{dst, reinterpret_cast<std::uint64_t>(src), n}}, {});
    return;
  }
  if (n > kSmallArea - kWriteAt) {
    throw Error(Error::Code::kInvalidArgument,
                "device_write: " + std::to_string(n) + " bytes; at most " + std::to_string(kSmallArea - kWriteAt));
  }
  auto [lk, stage] = dev.staging();
  std::byte* at = stage + kBulkBytes + kWriteAt;
  std::memcpy(at, src, n);
  const Place d = locate(Driver::get(), dev, dst);
  if (d.end - dst < n) throw Error(Error::Code::kInvalidArgument, "device_write: the span crosses an allocation's end");
  dev.runtime().copy(as_ptr(d.at), at, n).wait();
}

void run_copy(Device& dev, const std::vector<CopySeg>& segs, const std::vector<std::byte>& pattern) {
  if (segs.empty()) return;
  if (!dev.host_kernels()) {
    run_device_ops(dev, segs, pattern);
    return;
  }
  Driver& drv = Driver::get();
  const bool fill = !pattern.empty();
  // The application's own memory is mirrored on first use (whole pages).
  for (bool src : {false, true}) {
    if (src && fill) break;
    const auto [lo, hi] = extent(segs, src);
    if (!drv.find(lo)) dev.mirror_system(lo, hi - lo);
  }
  std::vector<Piece> pieces;
  bool any_dev = false;
  for (const CopySeg& s : segs) {
    for (std::size_t off = 0; off < s.n;) {
      Piece p{};
      const Place d = locate(drv, dev, s.dst + off);
      std::uint64_t n = std::min<std::uint64_t>(kCopyPiece, s.n - off);
      n = std::min(n, d.end - (s.dst + off));
      p.dst = d.at;
      p.dst_dev = d.dev;
      if (!fill) {
        const Place from = locate(drv, dev, s.src + off);
        n = std::min(n, from.end - (s.src + off));
        p.src = from.at;
        p.src_dev = from.dev;
      }
      p.n = n;
      p.phase = fill ? off % pattern.size() : 0;
      any_dev |= p.dst_dev || p.src_dev;
      pieces.push_back(p);
      off += n;
    }
  }
  auto do_piece = [&](const Piece& p, DeviceAccessor* acc) {
    thread_local std::vector<std::byte> buf;
    buf.resize(kCopyPiece);
    if (fill) {
      for (std::size_t i = 0; i < p.n; ++i) buf[i] = pattern[(p.phase + i) % pattern.size()];
    } else if (p.src_dev) {
      acc->read(p.src, buf.data(), p.n);
    } else {
      std::memcpy(buf.data(), reinterpret_cast<const void*>(p.src), p.n);
    }
    if (p.dst_dev)
      acc->write(p.dst, buf.data(), p.n);
    else
      std::memcpy(reinterpret_cast<void*>(p.dst), buf.data(), p.n);
  };
  if (!any_dev) {
    for (const Piece& p : pieces) do_piece(p, nullptr);
    return;
  }
  dev.runtime().launch(pieces.size(),
                       [&](const WorkItem& wi, DeviceAccessor& acc) { do_piece(pieces[wi.global_id], &acc); });
}

}  // namespace xesvm::ze
