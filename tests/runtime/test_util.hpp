// Helpers shared by the runtime suites.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

#include "runtime/runtime_impl.hpp"
#include "xesvm/xesvm.hpp"

namespace xesvm::test {

/// The sim URI a suite that runs in both userfaultfd modes opens: `uri`
/// as given, or in user-mode-only mode (kernel_faults=0, what unprivileged
/// users get) when the environment sets XESVM_TEST_KERNEL_FAULTS=0
/// (tests/runtime/CMakeLists.txt registers such variants).
inline std::string test_uri(std::string uri) {
  const char* k = std::getenv("XESVM_TEST_KERNEL_FAULTS");
  if (k && std::string_view(k) == "0") uri += ",kernel_faults=0";
  return uri;
}

/// A byte pattern that differs per address and per generation.
inline std::uint8_t pattern(std::uint64_t offset, std::uint32_t gen) {
  std::uint64_t x = (offset + 1) * 0x9E3779B97F4A7C15ull ^ (std::uint64_t(gen) << 32 | gen);
  return static_cast<std::uint8_t>(x >> 56);
}

inline void fill(void* p, std::size_t n, std::uint32_t gen) {
  auto* b = static_cast<std::uint8_t*>(p);
  for (std::size_t i = 0; i < n; ++i) b[i] = pattern(i, gen);
}

/// Number of bytes of [p, p+n) that differ from the pattern of `gen`.
inline std::size_t mismatches(const void* p, std::size_t n, std::uint32_t gen) {
  const auto* b = static_cast<const std::uint8_t*>(p);
  std::size_t bad = 0;
  for (std::size_t i = 0; i < n; ++i) bad += b[i] != pattern(i, gen);
  return bad;
}

/// A GPU kernel that reads one word per page and adds `delta` to one word
/// per page, touching every page of [base, base+bytes).
inline Kernel touch_pages_kernel(void* base, std::size_t bytes, std::uint32_t delta, bool write) {
  const std::uint64_t b = reinterpret_cast<std::uint64_t>(base);
  return [=](const WorkItem& wi, DeviceAccessor& acc) {
    std::uint64_t a = b + wi.global_id * 4096;
    if (a >= b + bytes) return;
    std::uint32_t v = 0;
    acc.read(a, &v, sizeof v);
    if (write) {
      v += delta;
      acc.write(a, &v, sizeof v);
    }
  };
}

inline std::size_t pages(std::size_t bytes) { return (bytes + 4095) / 4096; }

// ---------------------------------------------------------------------------
// Helpers for the invalidation, eviction, bad-input and random suites.

}  // namespace xesvm::test

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>

#include <chrono>
#include <functional>
#include <thread>
#include <vector>

#include "aligned_mapping.hpp"
#include "runtime/backends/sim/sim_device.hpp"

namespace xesvm::test {

/// Polls pred every millisecond until it holds or `timeout` passes.
inline bool wait_until(const std::function<bool()>& pred,
                       std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return pred();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

/// The sim device under a Runtime opened with a "sim:" URI.
inline sim::SimDevice& sim_device(Runtime& rt) { return dynamic_cast<sim::SimDevice&>(rt.impl().backend()); }

/// Applies every userfaultfd event the kernel has queued so far (events
/// arrive after the fact: munmap/mremap/madvise return before the runtime
/// has heard of them).
inline void drain_events(Runtime& rt) { sim_device(rt).cpu().drain(); }

/// The shape many tests start from: `len` bytes of application memory
/// (map_aligned(len, align)) filled with pattern(offset, gen), mirrored and
/// prefetched to the device in full. Returns nullptr after adding a test
/// failure that says which step failed. The caller unmirrors and unmaps.
inline std::uint8_t* device_resident_mirror(Runtime& rt, std::size_t len, std::uint32_t gen,
                                            std::size_t align = 2u << 20) {
  auto* p = static_cast<std::uint8_t*>(map_aligned(len, align));
  if (!p) {
    ADD_FAILURE() << "mmap of " << len << " bytes failed";
    return nullptr;
  }
  fill(p, len, gen);
  rt.mirror(p, len);
  if (const std::uint64_t moved = rt.prefetch(p, len, Location::kDevice); moved != len) {
    ADD_FAILURE() << "prefetch moved " << moved << " of " << len << " bytes to the device";
    return nullptr;
  }
  return p;
}

/// The same for alloc_shared() memory; the caller frees it.
inline std::uint8_t* device_resident_shared(Runtime& rt, std::size_t len, std::uint32_t gen) {
  auto* p = static_cast<std::uint8_t*>(rt.alloc_shared(len));
  fill(p, len, gen);
  if (const std::uint64_t moved = rt.prefetch(p, len, Location::kDevice); moved != len) {
    ADD_FAILURE() << "prefetch moved " << moved << " of " << len << " bytes to the device";
    return nullptr;
  }
  return p;
}

/// Evicts every other page of [p, p + len) (the pages at even offsets)
/// back to RAM, one evict() each: a CPU touch would bring the touched
/// page's whole device-resident run home. Leaves the device pages of a
/// device-resident span with 4 KiB holes between them. Returns false after
/// adding a test failure if a page did not move.
inline bool evict_every_other_page(Runtime& rt, std::uint8_t* p, std::size_t len) {
  for (std::size_t off = 0; off < len; off += 2 * 4096) {
    if (rt.evict(p + off, 4096).pages_evicted != 1) {
      ADD_FAILURE() << "evict of the page at offset " << off << " moved nothing";
      return false;
    }
  }
  return true;
}

/// The device frame of each page of [p, p + n) (kNoFrame for pages in RAM),
/// as the sim device's snapshot reports them.
inline std::vector<FrameId> device_frames(Runtime& rt, const void* p, std::size_t n) {
  std::vector<PageSnapshot> snap(pages(n));
  sim_device(rt).snapshot(reinterpret_cast<std::uint64_t>(p), snap);
  std::vector<FrameId> out;
  out.reserve(snap.size());
  for (const PageSnapshot& s : snap) out.push_back(s.place == PagePlace::kDevice ? s.frame : kNoFrame);
  return out;
}

/// A GPU kernel that overwrites every page of [base, base+bytes) with
/// pattern(offset, gen), one work item per page.
inline Kernel write_pattern_kernel(void* base, std::size_t bytes, std::uint32_t gen) {
  const std::uint64_t b = reinterpret_cast<std::uint64_t>(base);
  return [=](const WorkItem& wi, DeviceAccessor& acc) {
    const std::uint64_t off = wi.global_id * 4096;
    if (off >= bytes) return;
    const std::size_t n = std::min<std::size_t>(4096, bytes - off);
    acc.with_page(b + off, n, Access::kWrite, [&](std::span<std::byte> v) {
      for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>(pattern(off + i, gen));
    });
  };
}

/// Bytes of [base, base+bytes) that a GPU kernel reads differently from
/// pattern(offset, gen): the GPU's view, counted on the device.
inline std::size_t gpu_mismatches(Runtime& rt, const void* base, std::size_t bytes, std::uint32_t gen) {
  const std::uint64_t b = reinterpret_cast<std::uint64_t>(base);
  std::atomic<std::size_t> bad{0};
  rt.launch(pages(bytes), [&](const WorkItem& wi, DeviceAccessor& acc) {
    const std::uint64_t off = wi.global_id * 4096;
    const std::size_t n = std::min<std::size_t>(4096, bytes - off);
    std::size_t local = 0;
    acc.with_page(b + off, n, Access::kRead, [&](std::span<std::byte> v) {
      for (std::size_t i = 0; i < n; ++i) local += v[i] != static_cast<std::byte>(pattern(off + i, gen));
    });
    bad.fetch_add(local);
  });
  return bad.load();
}

}  // namespace xesvm::test
