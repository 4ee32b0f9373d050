// The C API (include/xesvm/xesvm.h) over the C++ Runtime.
#include "xesvm/xesvm.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <string>

#include "xesvm/xesvm.hpp"

struct xesvm_runtime {
  std::unique_ptr<xesvm::Runtime> rt;
};
// What a failed device access inside a C kernel leaves for xesvm_launch():
// the C kernel only sees a return code, and may ignore it.
struct LaunchError {
  std::mutex mu;
  bool failed = false;
  int code = 0;
  std::string message;
  void record(int c, const std::string& m) {
    std::lock_guard lk(mu);
    if (failed) return;
    failed = true;
    code = c;
    message = m;
  }
};
struct xesvm_completion {
  xesvm::Completion c;
};
struct xesvm_accessor {
  xesvm::DeviceAccessor* acc;
  LaunchError* launch;
};

namespace {

thread_local std::string last_error;

int fail(int code, const std::string& msg) {
  last_error = msg;
  return code;
}

template <class F>
int guard(F&& f) {
  try {
    f();
    last_error.clear();
    return XESVM_OK;
  } catch (const xesvm::Error& e) {
    return fail(-static_cast<int>(e.code()), e.what());
  } catch (const std::bad_alloc&) {
    return fail(XESVM_ERROR_OUT_OF_MEMORY, "out of host memory");
  } catch (const std::exception& e) {
    return fail(XESVM_ERROR_UNKNOWN, e.what());
  }
}

// guard() for the device accessor: a failure is also recorded for the
// launch, which reports the first one to its caller.
template <class F>
int device_guard(xesvm_accessor* acc, F&& f) {
  const int rc = guard(std::forward<F>(f));
  if (rc != XESVM_OK) acc->launch->record(rc, last_error);
  return rc;
}

#define XESVM_REQUIRE(cond, what) \
  if (!(cond)) return fail(XESVM_ERROR_INVALID_ARGUMENT, what)

xesvm::Location loc(xesvm_location l) {
  switch (l) {
    case XESVM_LOCATION_SYSTEM:
      return xesvm::Location::kSystem;
    case XESVM_LOCATION_DEVICE:
      return xesvm::Location::kDevice;
    default:
      return xesvm::Location::kNone;
  }
}

}  // namespace

extern "C" {

const char* xesvm_last_error(void) { return last_error.c_str(); }

int xesvm_open(const char* uri, xesvm_runtime** out) {
  XESVM_REQUIRE(out, "xesvm_open: out is NULL");
  *out = nullptr;
  return guard([&] {
    auto h = std::make_unique<xesvm_runtime>();
    h->rt = std::make_unique<xesvm::Runtime>(uri ? uri : "sim:vram=256M");
    *out = h.release();
  });
}

void xesvm_close(xesvm_runtime* rt) { std::unique_ptr<xesvm_runtime> owned(rt); }

int xesvm_alloc_shared(xesvm_runtime* rt, size_t bytes, size_t alignment, void** out) {
  XESVM_REQUIRE(rt && out, "xesvm_alloc_shared: runtime or out is NULL");
  return guard([&] { *out = rt->rt->alloc_shared(bytes, alignment); });
}
int xesvm_free(xesvm_runtime* rt, void* ptr) {
  XESVM_REQUIRE(rt, "xesvm_free: runtime is NULL");
  return guard([&] { rt->rt->free(ptr); });
}
int xesvm_mirror(xesvm_runtime* rt, void* ptr, size_t bytes) {
  XESVM_REQUIRE(rt, "xesvm_mirror: runtime is NULL");
  return guard([&] { rt->rt->mirror(ptr, bytes); });
}
int xesvm_unmirror(xesvm_runtime* rt, void* ptr, size_t bytes) {
  XESVM_REQUIRE(rt, "xesvm_unmirror: runtime is NULL");
  return guard([&] { rt->rt->unmirror(ptr, bytes); });
}
int xesvm_discard(xesvm_runtime* rt, void* ptr, size_t bytes) {
  XESVM_REQUIRE(rt, "xesvm_discard: runtime is NULL");
  return guard([&] { rt->rt->discard(ptr, bytes); });
}
int xesvm_advise(xesvm_runtime* rt, void* ptr, size_t bytes, const xesvm_advice* advice, int* applied) {
  XESVM_REQUIRE(rt && advice, "xesvm_advise: runtime or advice is NULL");
  XESVM_REQUIRE(advice->preferred >= XESVM_LOCATION_NONE && advice->preferred <= XESVM_LOCATION_DEVICE,
                "xesvm_advise: preferred location out of range; expected XESVM_LOCATION_*");
  return guard([&] {
    xesvm::Advice a{loc(advice->preferred), advice->read_mostly != 0, advice->atomic != 0};
    bool ok = rt->rt->advise(ptr, bytes, a);
    if (applied) *applied = ok;
  });
}
int xesvm_prefetch(xesvm_runtime* rt, void* ptr, size_t bytes, xesvm_location where, uint64_t* moved) {
  XESVM_REQUIRE(rt, "xesvm_prefetch: runtime is NULL");
  XESVM_REQUIRE(where == XESVM_LOCATION_SYSTEM || where == XESVM_LOCATION_DEVICE,
                "xesvm_prefetch: location out of range; expected XESVM_LOCATION_SYSTEM or XESVM_LOCATION_DEVICE");
  return guard([&] {
    uint64_t m = rt->rt->prefetch(ptr, bytes, loc(where));
    if (moved) *moved = m;
  });
}
int xesvm_evict(xesvm_runtime* rt, void* ptr, size_t bytes, uint64_t* pages_evicted, uint64_t* pages_skipped) {
  XESVM_REQUIRE(rt, "xesvm_evict: runtime is NULL");
  return guard([&] {
    auto r = rt->rt->evict(ptr, bytes);
    if (pages_evicted) *pages_evicted = r.pages_evicted;
    if (pages_skipped) *pages_skipped = r.pages_skipped;
  });
}
int xesvm_residency(xesvm_runtime* rt, const void* ptr, size_t bytes, uint64_t* device_bytes) {
  XESVM_REQUIRE(rt && device_bytes, "xesvm_residency: runtime or device_bytes is NULL");
  return guard([&] { *device_bytes = rt->rt->residency(ptr, bytes).device_bytes; });
}
int xesvm_launch(xesvm_runtime* rt, uint64_t global_size, xesvm_kernel_fn kernel, void* user) {
  XESVM_REQUIRE(rt && kernel, "xesvm_launch: runtime or kernel is NULL");
  LaunchError err;
  const int rc = guard([&] {
    rt->rt->launch(global_size, [&](const xesvm::WorkItem& wi, xesvm::DeviceAccessor& acc) {
      xesvm_accessor a{&acc, &err};
      kernel(wi.global_id, wi.global_size, &a, user);
    });
  });
  if (rc != XESVM_OK) return rc;
  // A device access failed inside the kernel (the C++ launch would have
  // thrown): the launch failed with it.
  if (err.failed) return fail(err.code, "xesvm_launch: the kernel failed: " + err.message);
  return XESVM_OK;
}
int xesvm_get_stats_sized(xesvm_runtime* rt, xesvm_stats* out, size_t size) {
  XESVM_REQUIRE(rt && out, "xesvm_get_stats: runtime or out is NULL");
  XESVM_REQUIRE(size >= XESVM_STATS_SIZE_0_1_0 && size % sizeof(uint64_t) == 0,
                "xesvm_get_stats_sized: size " + std::to_string(size) + " is not a multiple of 8 of at least " +
                    std::to_string(XESVM_STATS_SIZE_0_1_0) + " bytes; expected sizeof(xesvm_stats)");
  return guard([&] {
    xesvm::Stats s = rt->rt->stats();
    const xesvm_stats all{s.gpu_faults,
                          s.cpu_faults,
                          s.migrations_to_device,
                          s.bytes_to_device,
                          s.migrations_to_system,
                          s.bytes_to_system,
                          s.evictions,
                          s.pages_evicted,
                          s.invalidations,
                          s.bind_retries,
                          s.thrash_events,
                          s.device_bytes_in_use,
                          s.device_bytes_high_water,
                          s.device_bytes_total,
                          s.modelled_device_ns,
                          s.pages_evict_skipped,
                          s.cpu_mapping_lookups_in_eviction,
                          s.link_bytes};
    // A newer caller's struct may be longer than ours: its extra fields are
    // zeroed, ours copied.
    std::memset(out, 0, size);
    std::memcpy(out, &all, std::min(size, sizeof all));
  });
}
int(xesvm_get_stats)(xesvm_runtime* rt, xesvm_stats* out) {
  return xesvm_get_stats_sized(rt, out, XESVM_STATS_SIZE_0_1_0);
}
int xesvm_get_capabilities(xesvm_runtime* rt, xesvm_capabilities* out) {
  XESVM_REQUIRE(rt && out, "xesvm_get_capabilities: runtime or out is NULL");
  return guard([&] {
    xesvm::Capabilities c = rt->rt->capabilities();
    *out = xesvm_capabilities{};
    std::snprintf(out->backend, sizeof out->backend, "%s", c.backend.c_str());
    out->has_engine = c.has_engine;
    out->engine_workers = c.engine_workers;
    out->has_mechanism = c.has_mechanism;
    out->host_kernels = c.host_kernels;
    out->kernel_mode_faults = c.kernel_mode_faults;
    out->device_memory_bytes = c.device_memory_bytes;
  });
}
int xesvm_read(xesvm_accessor* acc, uint64_t src, void* dst, size_t n) {
  XESVM_REQUIRE(acc && dst, "xesvm_read: accessor or dst is NULL");
  return device_guard(acc, [&] { acc->acc->read(src, dst, n); });
}
int xesvm_write(xesvm_accessor* acc, uint64_t dst, const void* src, size_t n) {
  XESVM_REQUIRE(acc && src, "xesvm_write: accessor or src is NULL");
  return device_guard(acc, [&] { acc->acc->write(dst, src, n); });
}
int xesvm_atomic_add_u32(xesvm_accessor* acc, uint64_t addr, uint32_t v, uint32_t* old) {
  XESVM_REQUIRE(acc, "xesvm_atomic_add_u32: accessor is NULL");
  return device_guard(acc, [&] {
    uint32_t o = acc->acc->atomic_add(addr, v);
    if (old) *old = o;
  });
}

}  // extern "C"

int xesvm_residency_ex(xesvm_runtime* rt, const void* ptr, size_t bytes, uint64_t* device, uint64_t* system,
                       uint64_t* unknown) {
  XESVM_REQUIRE(rt, "xesvm_residency_ex: null runtime");
  return guard([&] {
    xesvm::Residency r = rt->rt->residency(ptr, bytes);
    if (device) *device = r.device_bytes;
    if (system) *system = r.system_bytes;
    if (unknown) *unknown = r.unknown_bytes;
  });
}

int xesvm_copy(xesvm_runtime* rt, void* dst, const void* src, size_t bytes, xesvm_completion** out) {
  XESVM_REQUIRE(rt, "xesvm_copy: null runtime");
  XESVM_REQUIRE(out, "xesvm_copy: null out");
  return guard([&] {
    auto c = std::make_unique<xesvm_completion>();
    c->c = rt->rt->copy(dst, src, bytes);
    *out = c.release();
  });
}

int xesvm_fill(xesvm_runtime* rt, void* dst, const void* pattern, size_t pattern_size, size_t bytes,
               xesvm_completion** out) {
  XESVM_REQUIRE(rt, "xesvm_fill: null runtime");
  XESVM_REQUIRE(out, "xesvm_fill: null out");
  return guard([&] {
    auto c = std::make_unique<xesvm_completion>();
    c->c = rt->rt->fill(dst, pattern, pattern_size, bytes);
    *out = c.release();
  });
}

int xesvm_completion_wait(xesvm_completion* c, int64_t timeout_ns) {
  XESVM_REQUIRE(c, "xesvm_completion_wait: null completion");
  return guard([&] {
    if (timeout_ns < 0)
      c->c.wait();
    else
      c->c.wait(std::chrono::nanoseconds(timeout_ns));
  });
}

void xesvm_completion_destroy(xesvm_completion* c) { delete c; }  // NOLINT(cppcoreguidelines-owning-memory)
