// KernelPressure: the runtime's memory-pressure policy on a backend whose
// kernel is the driver (xe).
//
// The kernel places pages (GPU faults migrate to VRAM, CPU faults back) and
// reports only the device's total and used VRAM (MEM_REGIONS), not which
// page is where. The runtime still chooses the victims, as DESIGN.md asks of
// every backend: it keeps a record per 2 MiB chunk of SVM memory that it sent
// to the device (prefetch to the device, device copy and fill), with the time
// of that use and whether the application advised the device for it. Before
// more bytes go to the device, PressurePolicy::bytes_to_free() on the fresh
// device figures says how much to free (high/low watermarks of
// RuntimeOptions); the least recently used chunks go first, chunks advised
// to the device last, never the chunks the new work uses, and each is
// evicted through PolicyFace::evict() (for xe: VM_BIND PREFETCH to region 0,
// system memory). Eviction stops when the device reports enough free or no
// victim is left. An evicted chunk is forgotten until it is used again.
//
// Not done here (the kernel does not report what the sim's books hold):
// thrash detection (a chunk's refaults are not seen) and per-page victims.
//
// Concurrency: all methods are thread-safe (one mutex; eviction runs outside
// it).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <span>
#include <utility>
#include <vector>

#include "runtime/backend.hpp"
#include "runtime/evict.hpp"
#include "xesvm/xesvm.hpp"

namespace xesvm {

class KernelPressure {
 public:
  static constexpr std::uint64_t kChunk = 2u << 20;

  KernelPressure(PolicyFace& policy, const RuntimeOptions& options);

  /// Notes device use of each span (chunks touched now) and makes room for
  /// `need` more device bytes, evicting other chunks if the watermarks ask.
  /// Returns the bytes of the evictions requested. Throws the eviction's
  /// Error (the device use is noted already).
  std::uint64_t before_device_use(std::span<const std::pair<std::uint64_t, std::uint64_t>> spans, std::uint64_t need);
  /// Records advice of [start, start+len) for victim order.
  void advise(std::uint64_t start, std::uint64_t len, const Advice& advice);
  /// Forgets the chunks inside [start, start+len) (free, unmirror).
  void forget(std::uint64_t start, std::uint64_t len);

  std::uint64_t evictions() const { return evictions_.load(std::memory_order_relaxed); }
  std::uint64_t pages_evicted() const { return pages_evicted_.load(std::memory_order_relaxed); }

 private:
  struct Chunk {
    std::uint64_t last_use = 0;
    bool prefer_device = false;
  };

  PolicyFace& policy_;
  Counters counters_;  // PressurePolicy's thrash counters (unused here)
  PressurePolicy pressure_;
  std::mutex mu_;
  std::map<std::uint64_t, Chunk> chunks_;                 // chunk start -> record, guarded by mu_
  std::map<std::uint64_t, std::uint64_t> device_advice_;  // start -> end, guarded by mu_
  std::uint64_t tick_ = 0;                                // guarded by mu_: use order
  std::atomic<std::uint64_t> evictions_{0}, pages_evicted_{0};
};

}  // namespace xesvm
