// Eviction to RAM: under pressure, on request, with busy frames, with
// injected placement and allocation failures, thrash detection, advice, and
// racing CPU writers and GPU kernels. Every test checks bytes.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <thread>

#include "test_util.hpp"

namespace xesvm::test {
namespace {

const std::string kUri = test_uri("sim:vram=16M,workers=2");
constexpr std::size_t kVram = 16u << 20;

// Number of page pairs (i, i+1) whose frames are adjacent in device memory.
std::size_t adjacent_frames(const std::vector<FrameId>& f) {
  std::size_t n = 0;
  for (std::size_t i = 0; i + 1 < f.size(); ++i) n += f[i] != kNoFrame && f[i + 1] == f[i] + 1;
  return n;
}

TEST(Eviction, ExhaustedDeviceMemoryEvictsAndKeepsEveryGeneration) {
  Runtime rt(kUri);
  const std::size_t per = 8u << 20, count = 6;  // 48 MiB: 3x device memory
  std::vector<std::uint8_t*> bufs;
  for (std::size_t i = 0; i < count; ++i) bufs.push_back(static_cast<std::uint8_t*>(rt.alloc_shared(per)));
  const std::size_t pp = pages(per);
  for (std::uint32_t pass = 1; pass <= 3; ++pass) {
    // One launch over the whole working set: eviction happens inside it.
    rt.launch(pp * count, [&](const WorkItem& wi, DeviceAccessor& acc) {
      const std::size_t b = wi.global_id / pp;
      write_pattern_kernel(bufs[b], per, pass * 16 + static_cast<std::uint32_t>(b))(
          WorkItem{wi.global_id % pp, pp, wi.worker}, acc);
    });
    Stats s = rt.stats();
    EXPECT_LE(s.device_bytes_high_water, kVram);
    std::size_t bad = 0;
    if (pass == 2) {
      for (std::size_t b = 0; b < count; ++b) bad += gpu_mismatches(rt, bufs[b], per, pass * 16 + b);
    } else {
      for (std::size_t b = 0; b < count; ++b) bad += mismatches(bufs[b], per, pass * 16 + b);
    }
    EXPECT_EQ(bad, 0u) << "pass " << pass;
  }
  Stats s = rt.stats();
  EXPECT_GT(s.evictions, 0u);
  EXPECT_GT(s.pages_evicted, 2 * pages(kVram));
  EXPECT_EQ(s.cpu_mapping_lookups_in_eviction, 0u);
  for (auto* b : bufs) rt.free(b);
  EXPECT_EQ(rt.stats().device_bytes_in_use, 0u);
}

TEST(Eviction, EvictOfTwoMegabyteContiguousLayoutMovesEveryPage) {
  Runtime rt(kUri);
  const std::size_t n = 8u << 20;
  auto* p = device_resident_shared(rt, n, 1);
  ASSERT_NE(p, nullptr);
  rt.launch(pages(n), write_pattern_kernel(p, n, 2));  // the new bytes exist only on the device
  std::vector<FrameId> f = device_frames(rt, p, n);
  ASSERT_EQ(std::count(f.begin(), f.end(), kNoFrame), 0);
  for (std::size_t r = 0; r < n / (2u << 20); ++r) {
    EXPECT_EQ(f[r * 512] % 512, 0u) << "range " << r << " starts a 2 MiB block";
    for (std::size_t i = 1; i < 512; ++i) ASSERT_EQ(f[r * 512 + i], f[r * 512] + i);
  }
  EvictResult res = rt.evict(p, n);
  EXPECT_EQ(res.pages_evicted, pages(n));
  EXPECT_EQ(res.pages_skipped, 0u);
  EXPECT_EQ(rt.residency(p, n).device_bytes, 0u);
  EXPECT_EQ(rt.stats().device_bytes_in_use, 0u);
  EXPECT_EQ(rt.stats().cpu_faults, 0u) << "eviction placed the pages; no CPU fault was needed";
  EXPECT_EQ(mismatches(p, n, 2), 0u);
  rt.free(p);
}

TEST(Eviction, EvictOfScatteredFourKilobyteLayoutMovesEveryPage) {
  RuntimeOptions o;
  o.high_watermark = 1.0;  // fragment the device on purpose: no pressure eviction
  Runtime rt(kUri, o);
  // Fill the device, then pull every other page back: 4 KiB holes only.
  auto* frag = device_resident_shared(rt, kVram, 3);
  ASSERT_NE(frag, nullptr);
  ASSERT_TRUE(evict_every_other_page(rt, frag, kVram));
  ASSERT_TRUE(wait_until([&] { return rt.stats().device_bytes_in_use == kVram / 2; }))
      << rt.stats().device_bytes_in_use;
  const std::size_t n = 4u << 20;
  auto* p = device_resident_shared(rt, n, 4);
  ASSERT_NE(p, nullptr);
  rt.launch(pages(n), write_pattern_kernel(p, n, 5));
  std::vector<FrameId> f = device_frames(rt, p, n);
  ASSERT_EQ(std::count(f.begin(), f.end(), kNoFrame), 0);
  EXPECT_EQ(adjacent_frames(f), 0u) << "no two neighbouring pages share a contiguous frame pair";
  EvictResult res = rt.evict(p, n);
  EXPECT_EQ(res.pages_evicted, pages(n));
  EXPECT_EQ(res.pages_skipped, 0u);
  EXPECT_EQ(rt.residency(p, n).device_bytes, 0u);
  EXPECT_EQ(mismatches(p, n, 5), 0u);
  EXPECT_EQ(mismatches(frag, kVram, 3), 0u);
  EXPECT_EQ(rt.stats().cpu_mapping_lookups_in_eviction, 0u);
  rt.free(p);
  rt.free(frag);
  EXPECT_EQ(rt.stats().device_bytes_in_use, 0u);
}

TEST(Eviction, HeavyEvictionNeverLooksUpCpuMappings) {
  Runtime rt(kUri);
  const std::size_t per = 4u << 20, count = 12;  // 48 MiB
  std::vector<std::uint8_t*> bufs;
  for (std::size_t i = 0; i < count; ++i) {
    bufs.push_back(static_cast<std::uint8_t*>(rt.alloc_shared(per)));
    fill(bufs.back(), per, static_cast<std::uint32_t>(i));
  }
  for (int round = 0; round < 3; ++round) {
    for (std::size_t i = 0; i < count; ++i) {
      rt.launch(pages(per), touch_pages_kernel(bufs[i], per, 0, false));  // pressure eviction
      if (i % 3 == 0) rt.evict(bufs[i], per);                             // VA eviction
      if (i % 4 == 1) rt.prefetch(bufs[(i + 5) % count], per, Location::kDevice);
    }
  }
  Stats s = rt.stats();
  EXPECT_GT(s.pages_evicted, 4 * pages(kVram));
  EXPECT_GT(s.evictions, 0u);
  EXPECT_EQ(s.cpu_mapping_lookups_in_eviction, 0u);
  for (std::size_t i = 0; i < count; ++i) EXPECT_EQ(mismatches(bufs[i], per, static_cast<std::uint32_t>(i)), 0u);
  for (auto* b : bufs) rt.free(b);
}

TEST(Eviction, BusyFramesAreSkippedAndEvictedOnceUnlocked) {
  Runtime rt(kUri);
  const std::size_t n = 2u << 20;
  auto* p = static_cast<std::uint8_t*>(rt.alloc_shared(n));
  fill(p, n, 6);
  rt.prefetch(p, n, Location::kDevice);
  rt.launch(pages(n), write_pattern_kernel(p, n, 7));
  std::vector<FrameId> f = device_frames(rt, p, n);
  auto& dev = sim_device(rt);
  std::vector<FrameId> locked;
  for (std::size_t i = 100; i < 500; i += 25) {
    ASSERT_TRUE(dev.frame_trylock(f[i]));
    locked.push_back(f[i]);
  }
  EvictResult res = rt.evict(p, n);
  EXPECT_EQ(res.pages_skipped, locked.size());
  EXPECT_EQ(res.pages_evicted, pages(n) - locked.size());
  EXPECT_GT(res.retries, 0u) << "busy frames are retried a bounded number of times";
  EXPECT_EQ(rt.residency(p, n).device_bytes, locked.size() * 4096);
  EXPECT_EQ(rt.stats().pages_evict_skipped, locked.size());
  for (FrameId fr : locked) dev.frame_unlock(fr);
  res = rt.evict(p, n);
  EXPECT_EQ(res.pages_evicted, locked.size());
  EXPECT_EQ(res.pages_skipped, 0u);
  EXPECT_EQ(rt.residency(p, n).device_bytes, 0u);
  EXPECT_EQ(rt.stats().device_bytes_in_use, 0u);
  EXPECT_EQ(mismatches(p, n, 7), 0u);
  rt.free(p);
}

TEST(Eviction, PlacementFailuresPartwayThroughABatchLeavePagesOnTheDevice) {
  RuntimeOptions o;
  o.evict_retries = 0;  // one pass: what failed stays failed
  Runtime rt(kUri, o);
  const std::size_t n = 2u << 20;
  auto* p = static_cast<std::uint8_t*>(rt.alloc_shared(n));
  fill(p, n, 8);
  rt.prefetch(p, n, Location::kDevice);
  rt.launch(pages(n), write_pattern_kernel(p, n, 9));
  // Pull the first half back so the device part starts mid-range (an
  // eviction: a CPU touch would bring the whole range home).
  EXPECT_EQ(rt.evict(p, n / 2).pages_evicted, pages(n / 2));
  EXPECT_EQ(mismatches(p, n / 2, 9), 0u);
  ASSERT_EQ(rt.residency(p, n).device_bytes, n / 2);
  // The run of 256 pages fails, then the page-by-page fallback fails for
  // its first 5 pages and succeeds for the rest.
  constexpr unsigned kFailedPages = 5;
  sim_device(rt).cpu().inject_place_failures(1 + kFailedPages);
  EvictResult res = rt.evict(p, n);
  EXPECT_EQ(res.pages_evicted, pages(n / 2) - kFailedPages);
  EXPECT_EQ(res.pages_skipped, kFailedPages);
  EXPECT_EQ(rt.residency(p, n).device_bytes, kFailedPages * 4096);
  EXPECT_TRUE(wait_until([&] { return rt.stats().device_bytes_in_use == kFailedPages * 4096; }));
  std::vector<FrameId> f = device_frames(rt, p, n);
  for (std::size_t i = 0; i < pages(n); ++i) {
    const bool want_device = i >= 256 && i < 256 + kFailedPages;
    EXPECT_EQ(f[i] != kNoFrame, want_device) << "page " << i;
  }
  // A later eviction moves them; every byte is the GPU's.
  res = rt.evict(p, n);
  EXPECT_EQ(res.pages_evicted, kFailedPages);
  EXPECT_TRUE(wait_until([&] { return rt.stats().device_bytes_in_use == 0; }));
  EXPECT_EQ(mismatches(p, n, 9), 0u);
  rt.free(p);
}

// A copy engine may stop partway through a run. The pages it placed are
// RAM pages now: placing them again would fail (the page exists) and leave
// them both in RAM and on the device.
TEST(Eviction, PlacementThatStopsPartwayThroughARunKeepsThePagesItPlaced) {
  RuntimeOptions o;
  o.evict_retries = 0;  // one pass
  Runtime rt(kUri, o);
  const std::size_t n = 2u << 20;
  auto* p = static_cast<std::uint8_t*>(rt.alloc_shared(n));
  rt.prefetch(p, n, Location::kDevice);
  rt.launch(pages(n), write_pattern_kernel(p, n, 11));
  ASSERT_EQ(rt.residency(p, n).device_bytes, n);
  sim_device(rt).cpu().inject_short_placement(100);  // the 512-page run stops after 100
  EvictResult res = rt.evict(p, n);
  EXPECT_EQ(res.pages_evicted, pages(n));
  EXPECT_EQ(res.pages_skipped, 0u);
  EXPECT_EQ(rt.residency(p, n).device_bytes, 0u);
  EXPECT_TRUE(wait_until([&] { return rt.stats().device_bytes_in_use == 0; }));
  EXPECT_EQ(mismatches(p, n, 11), 0u);
  EXPECT_EQ(gpu_mismatches(rt, p, n, 11), 0u);
  rt.free(p);
}

TEST(Eviction, PlacementFailureOfTheWholeCopyKeepsBytesReadableByTheCpu) {
  RuntimeOptions o;
  o.evict_retries = 0;
  Runtime rt(kUri, o);
  const std::size_t n = 2u << 20;
  auto* p = static_cast<std::uint8_t*>(rt.alloc_shared(n));
  rt.prefetch(p, n, Location::kDevice);
  rt.launch(pages(n), write_pattern_kernel(p, n, 10));
  sim_device(rt).cpu().inject_place_failures(1 + 512);
  EvictResult res = rt.evict(p, n);
  EXPECT_EQ(res.pages_evicted, 0u);
  EXPECT_EQ(rt.residency(p, n).device_bytes, n);
  // The device copy stayed valid: CPU faults bring it back.
  EXPECT_EQ(mismatches(p, n, 10), 0u);
  EXPECT_TRUE(wait_until([&] { return rt.stats().device_bytes_in_use == 0; }));
  rt.free(p);
}

TEST(Eviction, AllocationFailuresFallBackToSystemMemory) {
  Runtime rt(kUri);
  const std::size_t n = 4u << 20;
  auto* p = static_cast<std::uint8_t*>(rt.alloc_shared(n));
  fill(p, n, 11);
  sim_device(rt).frame_pool().inject_alloc_failures(1000);
  rt.launch(pages(n), write_pattern_kernel(p, n, 12));
  EXPECT_EQ(rt.residency(p, n).device_bytes, 0u);
  EXPECT_EQ(rt.stats().device_bytes_in_use, 0u);
  EXPECT_EQ(rt.stats().bytes_to_device, 0u);
  EXPECT_GT(rt.stats().gpu_faults, 0u);
  EXPECT_EQ(mismatches(p, n, 12), 0u);
  EXPECT_EQ(gpu_mismatches(rt, p, n, 12), 0u);
  // Memory is back: the next faults migrate. The ranges are bound to system
  // pages already, so ask explicitly.
  sim_device(rt).frame_pool().inject_alloc_failures(0);
  EXPECT_EQ(rt.prefetch(p, n, Location::kDevice), n);
  rt.launch(pages(n), write_pattern_kernel(p, n, 13));
  EXPECT_EQ(rt.residency(p, n).device_bytes, n);
  EXPECT_EQ(mismatches(p, n, 13), 0u);
  rt.free(p);
}

TEST(Eviction, ThrashingRangesCoolDownInSystemMemoryAndPrefetchOverridesIt) {
  RuntimeOptions o;
  o.thrash_threshold = 2;
  o.thrash_window_ns = 10'000'000'000;
  o.thrash_cooldown_ns = 10'000'000'000;
  Runtime rt(kUri, o);
  const std::size_t n = 2 * kVram;
  auto* p = static_cast<std::uint32_t*>(rt.alloc_shared(n));
  std::memset(p, 0, n);
  constexpr std::uint32_t kSweeps = 6;
  for (std::uint32_t s = 0; s < kSweeps; ++s) rt.launch(pages(n), touch_pages_kernel(p, n, 1, true));
  Stats st = rt.stats();
  EXPECT_GT(st.thrash_events, 0u);
  EXPECT_GT(st.evictions, 0u);
  EXPECT_EQ(st.cpu_mapping_lookups_in_eviction, 0u);
  std::size_t bad = 0;
  for (std::size_t w = 0; w < n / 4; ++w) bad += p[w] != ((w % 1024) == 0 ? kSweeps : 0u);
  EXPECT_EQ(bad, 0u);
  // Thrash mitigation kept part of the set in RAM even though kernels ran on it.
  EXPECT_LT(rt.residency(p, n).device_bytes, n / 2);
  // An explicit prefetch wins over the cool-down.
  rt.evict(p, n);
  EXPECT_EQ(rt.prefetch(p, 2u << 20, Location::kDevice), 2u << 20);
  EXPECT_EQ(rt.residency(p, 2u << 20).device_bytes, 2u << 20);
  rt.free(p);
}

TEST(Eviction, AdvicePreferredSystemNeverMigrates) {
  Runtime rt(kUri);
  const std::size_t n = 4u << 20;
  auto* p = static_cast<std::uint8_t*>(rt.alloc_shared(n));
  fill(p, n, 14);
  ASSERT_TRUE(rt.advise(p, n, Advice{Location::kSystem, false, false}));
  for (std::uint32_t g = 15; g < 18; ++g) rt.launch(pages(n), write_pattern_kernel(p, n, g));
  EXPECT_EQ(rt.residency(p, n).device_bytes, 0u);
  EXPECT_EQ(rt.stats().bytes_to_device, 0u);
  EXPECT_EQ(rt.stats().device_bytes_in_use, 0u);
  EXPECT_EQ(mismatches(p, n, 17), 0u);
  rt.free(p);
}

// The advice contract (xesvm.hpp): what the sim cannot apply (read-mostly)
// makes advise() return false; atomic advice places the range on the device
// even where the preferred location says system memory.
TEST(Eviction, AdviceReadMostlyIsReportedUnappliedAndAtomicPlacesOnTheDevice) {
  Runtime rt(kUri);
  const std::size_t n = 4u << 20;
  auto* p = static_cast<std::uint8_t*>(rt.alloc_shared(n));
  fill(p, n, 20);
  EXPECT_FALSE(rt.advise(p, n, Advice{Location::kNone, true, false})) << "read-mostly is not applied by the sim";
  EXPECT_TRUE(rt.advise(p, n, Advice{Location::kSystem, false, true}));
  rt.launch(pages(n), write_pattern_kernel(p, n, 21));
  EXPECT_EQ(rt.residency(p, n).device_bytes, n) << "atomic advice keeps the range on the device";
  EXPECT_EQ(rt.stats().bytes_to_device, n);
  EXPECT_EQ(mismatches(p, n, 21), 0u);
  rt.free(p);
}

TEST(Eviction, AdvicePreferredDeviceIsEvictedLast) {
  Runtime rt(kUri);
  const std::size_t keep_n = 4u << 20;
  auto* keep = static_cast<std::uint8_t*>(rt.alloc_shared(keep_n));
  ASSERT_TRUE(rt.advise(keep, keep_n, Advice{Location::kDevice, false, false}));
  rt.launch(pages(keep_n), write_pattern_kernel(keep, keep_n, 18));
  ASSERT_EQ(rt.residency(keep, keep_n).device_bytes, keep_n);
  // Sweep 24 MiB of other data through the remaining 12 MiB.
  const std::size_t other_n = 24u << 20;
  auto* other = static_cast<std::uint8_t*>(rt.alloc_shared(other_n));
  for (int s = 0; s < 2; ++s) rt.launch(pages(other_n), write_pattern_kernel(other, other_n, 19 + s));
  EXPECT_GT(rt.stats().evictions, 0u);
  EXPECT_EQ(rt.residency(keep, keep_n).device_bytes, keep_n) << "the least recently used range was advised to stay";
  EXPECT_EQ(mismatches(keep, keep_n, 18), 0u);
  EXPECT_EQ(mismatches(other, other_n, 20), 0u);
  rt.free(keep);
  rt.free(other);
}

// Victims by GPU use, not by the last fault: a range faulted first and then
// used by every launch stays bound (it never faults again) and must outlive
// a cold stream that passes through the rest of device memory.
TEST(Eviction, HotRangeThatStaysBoundSurvivesPressureThatEvictsColdOnes) {
  RuntimeOptions o;
  o.thrash_threshold = 1000;
  Runtime rt(kUri, o);
  const std::size_t hot_n = 2u << 20, chunk = 2u << 20, cold_n = 3 * kVram;
  auto* hot = static_cast<std::uint8_t*>(rt.alloc_shared(hot_n));
  auto* cold = static_cast<std::uint8_t*>(rt.alloc_shared(cold_n));
  fill(hot, hot_n, 30);
  fill(cold, cold_n, 31);
  rt.launch(pages(hot_n), write_pattern_kernel(hot, hot_n, 32));  // the hot range's only fault
  ASSERT_EQ(rt.residency(hot, hot_n).device_bytes, hot_n);
  std::uint32_t hot_gen = 32;
  for (std::size_t off = 0; off < cold_n; off += chunk) {
    rt.launch(pages(hot_n), write_pattern_kernel(hot, hot_n, ++hot_gen));
    rt.launch(pages(chunk), write_pattern_kernel(cold + off, chunk, 33));
    ASSERT_EQ(rt.residency(hot, hot_n).device_bytes, hot_n) << "hot range evicted after cold chunk " << off / chunk;
  }
  const Stats s = rt.stats();
  EXPECT_GT(s.evictions, 0u);
  EXPECT_EQ(s.bytes_to_device, hot_n + cold_n) << "the hot range moved to the device once";
  EXPECT_LT(rt.residency(cold, cold_n).device_bytes, kVram);
  EXPECT_EQ(mismatches(hot, hot_n, hot_gen), 0u);
  for (std::size_t off = 0; off < cold_n; off += chunk) EXPECT_EQ(mismatches(cold + off, chunk, 33), 0u) << off;
  rt.free(hot);
  rt.free(cold);
}

// Scan resistance: a cyclic sweep over twice device memory keeps a resident
// subset from pass to pass (LRU keeps none: each pass evicts what the next
// one needs first), so later passes move far less than the working set.
TEST(Eviction, CyclicSweepLargerThanDeviceMemoryKeepsAResidentSubset) {
  RuntimeOptions o;
  o.thrash_threshold = 1000;  // the policy alone, not the thrash cool-down
  // One engine worker: one stream, so the bytes moved do not depend on how
  // two workers' faults interleave (with two, a range one worker still uses
  // may be the other's victim, timing-dependent).
  Runtime rt(test_uri("sim:vram=16M,workers=1"), o);
  const std::size_t n = 2 * kVram;
  auto* p = static_cast<std::uint8_t*>(rt.alloc_shared(n));
  fill(p, n, 40);
  constexpr std::uint32_t kPasses = 4;
  std::uint64_t first_pass = 0;
  for (std::uint32_t pass = 1; pass <= kPasses; ++pass) {
    rt.launch(pages(n), write_pattern_kernel(p, n, 40 + pass));
    if (pass == 1) first_pass = rt.stats().bytes_to_device;
  }
  const Stats s = rt.stats();
  ASSERT_GE(first_pass, n);
  const std::uint64_t later = (s.bytes_to_device - first_pass) / (kPasses - 1);
  // Device memory holds 8 ranges; the stream uses one and the watermarks
  // keep two more free: at least two of the rest should stay.
  EXPECT_LT(later, n - kVram / 4) << "bytes moved per later pass; a resident subset of at least a quarter of "
                                     "device memory should have stayed";
  EXPECT_EQ(gpu_mismatches(rt, p, n, 40 + kPasses), 0u);
  EXPECT_EQ(mismatches(p, n, 40 + kPasses), 0u);
  rt.free(p);
}

TEST(Eviction, ConcurrentEvictionAndCpuWritersLoseNoWrite) {
  Runtime rt(kUri);
  const std::size_t n = 4u << 20;
  const std::size_t words = n / 8;
  auto* w = static_cast<std::uint64_t*>(rt.alloc_shared(n));
  std::memset(w, 0, n);
  // Each writer runs at least kRounds, and on until an eviction has evicted
  // pages while the writers were running (a writer that keeps faulting every
  // page home can leave an eviction nothing to take on a slow, instrumented
  // build); bounded so that an evictor that never evicts fails the test.
  constexpr unsigned kThreads = 2, kRounds = 30, kMaxRounds = 100 * kRounds;
  std::atomic<unsigned> done{0};
  std::atomic<std::uint64_t> evicted_beside_writers{0};
  std::array<unsigned, kThreads> rounds{};
  std::vector<std::thread> writers;
  for (unsigned t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      unsigned r = 0;
      while (r < kRounds || (evicted_beside_writers.load() == 0 && r < kMaxRounds)) {
        // Word i belongs to thread i % kThreads; each page holds both threads' words.
        for (std::size_t i = t; i < words; i += kThreads * 61) {
          std::atomic_ref<std::uint64_t>(w[i]).fetch_add(1, std::memory_order_relaxed);
        }
        ++r;
      }
      rounds[t] = r;
      done.fetch_add(1);
    });
  }
  unsigned cycles = 0;
  while (done.load() < kThreads || cycles < 3) {
    rt.prefetch(w, n, Location::kDevice);
    const std::uint64_t e = rt.evict(w, n).pages_evicted;
    if (done.load() < kThreads) evicted_beside_writers += e;
    ++cycles;
  }
  for (auto& th : writers) th.join();
  std::size_t bad = 0;
  for (std::size_t i = 0; i < words; ++i) {
    const std::uint64_t want = i % (kThreads * 61) < kThreads ? rounds[i % kThreads] : 0;
    bad += std::atomic_ref<std::uint64_t>(w[i]).load() != want;
  }
  EXPECT_EQ(bad, 0u);
  EXPECT_GT(evicted_beside_writers.load(), 0u)
      << "no eviction took pages while the CPU writers ran (" << rounds[0] << " and " << rounds[1] << " rounds)";
  EXPECT_EQ(rt.stats().cpu_mapping_lookups_in_eviction, 0u);
  rt.free(w);
}

TEST(Eviction, ConcurrentEvictionAndGpuKernelsLoseNoWrite) {
  Runtime rt(kUri);
  const std::size_t n = 8u << 20;
  auto* w = static_cast<std::uint32_t*>(rt.alloc_shared(n));
  std::memset(w, 0, n);
  constexpr std::uint32_t kLaunches = 30;
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> evicted{0};
  std::thread evictor([&] {
    std::size_t i = 0;
    while (!stop.load()) {
      // Alternate whole-buffer and per-range evictions.
      if (i++ % 2)
        evicted += rt.evict(w, n).pages_evicted;
      else
        evicted += rt.evict(reinterpret_cast<std::uint8_t*>(w) + (i % 4) * (2u << 20), 2u << 20).pages_evicted;
      std::this_thread::yield();
    }
  });
  // At least kLaunches, and on until the evictor has evicted something while
  // kernels were running (on a loaded host it may not get a turn during the
  // first ones); bounded so a broken evictor fails instead of spinning.
  constexpr std::uint32_t kMaxLaunches = 100 * kLaunches;
  std::uint32_t launches = 0;
  while (launches < kLaunches || (evicted.load() == 0 && launches < kMaxLaunches)) {
    rt.launch(pages(n), [&](const WorkItem& wi, DeviceAccessor& acc) {
      acc.atomic_add(reinterpret_cast<std::uint64_t>(w + wi.global_id * 1024), 1);
      acc.atomic_add(reinterpret_cast<std::uint64_t>(w + wi.global_id * 1024 + 1023), 2);
    });
    ++launches;
  }
  const std::uint64_t evicted_during_kernels = evicted.load();
  stop = true;
  evictor.join();
  std::size_t bad = 0;
  for (std::size_t i = 0; i < n / 4; ++i) {
    const std::uint32_t want = i % 1024 == 0 ? launches : i % 1024 == 1023 ? 2 * launches : 0;
    bad += w[i] != want;
  }
  EXPECT_EQ(bad, 0u);
  EXPECT_GT(evicted_during_kernels, 0u) << "no eviction ran while " << launches << " kernels ran";
  rt.free(w);
}

}  // namespace
}  // namespace xesvm::test
