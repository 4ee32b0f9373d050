// CPU faults on device-resident data (migrate_to_ram): one fault brings the
// contiguous device-resident run of the touched range home in one go, and
// only what moved loses its GPU mapping. Every test checks the bytes.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <atomic>
#include <thread>
#include <vector>

#include "test_util.hpp"

namespace xesvm::test {
namespace {

const std::string kUri = test_uri("sim:vram=64M,workers=2");
constexpr std::size_t k2M = 2u << 20;
constexpr std::size_t kPage = 4096;

std::uint64_t device_pages(Runtime& rt, const void* p, std::size_t n) {
  return rt.residency(p, n).device_bytes / kPage;
}

TEST(CpuFault, TouchOfADeviceResidentRangeBringsTheWholeRangeBackInOneFault) {
  Runtime rt(kUri);
  auto* p = device_resident_shared(rt, 2 * k2M, 11);
  ASSERT_NE(p, nullptr);
  const std::uint64_t faults = rt.stats().cpu_faults;
  EXPECT_EQ(reinterpret_cast<volatile std::uint8_t*>(p)[77 * kPage + 9], pattern(77 * kPage + 9, 11));
  EXPECT_EQ(rt.stats().cpu_faults, faults + 1);
  EXPECT_EQ(device_pages(rt, p, k2M), 0u) << "the touched 2 MiB range came home as a whole";
  EXPECT_EQ(device_pages(rt, p + k2M, k2M), k2M / kPage) << "the next range is not the touched one's";
  EXPECT_EQ(mismatches(p, k2M, 11), 0u);
  EXPECT_EQ(rt.stats().cpu_faults, faults + 1) << "no page of the first range faulted again";
  EXPECT_EQ(mismatches(p, 2 * k2M, 11), 0u);
  EXPECT_EQ(rt.stats().cpu_faults, faults + 2) << "one fault for the second range";
  rt.free(p);
}

TEST(CpuFault, OnlyTheDeviceResidentRunAroundTheTouchMovesInAPartlyResidentRange) {
  Runtime rt(kUri);
  auto* p = device_resident_shared(rt, k2M, 12);
  ASSERT_NE(p, nullptr);
  // Pages [100, 200) back in RAM: two device-resident runs, [0, 100) and
  // [200, 512).
  ASSERT_EQ(rt.evict(p + 100 * kPage, 100 * kPage).pages_evicted, 100u);
  ASSERT_EQ(device_pages(rt, p, k2M), 412u);
  EXPECT_EQ(reinterpret_cast<volatile std::uint8_t*>(p)[50 * kPage], pattern(50 * kPage, 12));
  EXPECT_EQ(device_pages(rt, p, 200 * kPage), 0u) << "the run [0, 100) came home";
  EXPECT_EQ(device_pages(rt, p + 200 * kPage, 312 * kPage), 312u) << "the run past the hole stayed";
  EXPECT_EQ(mismatches(p, 200 * kPage, 12), 0u);
  EXPECT_EQ(reinterpret_cast<volatile std::uint8_t*>(p)[511 * kPage + 4095], pattern(511 * kPage + 4095, 12));
  EXPECT_EQ(device_pages(rt, p, k2M), 0u);
  EXPECT_EQ(mismatches(p, k2M, 12), 0u);
  EXPECT_EQ(rt.stats().device_bytes_in_use, 0u) << "every frame that moved home was freed";
  rt.free(p);
}

TEST(CpuFault, RangesOfOtherChunksStayOnTheDevice) {
  Runtime rt(kUri);
  // 192 KiB at 64 KiB alignment (not 2 MiB): three 64 KiB ranges.
  constexpr std::size_t k64K = 64u << 10, kLen = 3 * k64K;
  auto* p = device_resident_mirror(rt, kLen, 13, k64K);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<volatile std::uint8_t*>(p)[k64K + 5 * kPage], pattern(k64K + 5 * kPage, 13));
  EXPECT_EQ(device_pages(rt, p, k64K), k64K / kPage);
  EXPECT_EQ(device_pages(rt, p + k64K, k64K), 0u) << "the touched 64 KiB range came home";
  EXPECT_EQ(device_pages(rt, p + 2 * k64K, k64K), k64K / kPage);
  EXPECT_EQ(mismatches(p, kLen, 13), 0u);
  rt.unmirror(p, kLen);
  munmap(p, kLen);
}

TEST(CpuFault, PagesThatStayOnTheDeviceKeepTheirGpuMapping) {
  Runtime rt(kUri);
  auto* p = device_resident_shared(rt, k2M, 14);
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(rt.evict(p + 100 * kPage, 100 * kPage).pages_evicted, 100u);
  const std::uint64_t b = reinterpret_cast<std::uint64_t>(p);
  std::atomic<std::size_t> bad{0};
  auto read_run = [&] {  // the GPU reads 64 bytes of every page of [200, 512)
    rt.launch(312, [&](const WorkItem& wi, DeviceAccessor& acc) {
      const std::uint64_t off = (200 + wi.global_id) * kPage;
      std::uint8_t v[64];
      acc.read(b + off, v, sizeof v);
      for (std::size_t i = 0; i < sizeof v; ++i) bad.fetch_add(v[i] != pattern(off + i, 14));
    });
  };
  // Bound by the prefetch and untouched by the partial eviction: no fault.
  const std::uint64_t bound = rt.stats().gpu_faults;
  read_run();
  ASSERT_EQ(rt.stats().gpu_faults, bound) << "the run past the hole was not bound after the partial eviction";
  // A CPU touch brings [0, 100) home; [200, 512) stays bound.
  EXPECT_EQ(reinterpret_cast<volatile std::uint8_t*>(p)[10 * kPage], pattern(10 * kPage, 14));
  ASSERT_EQ(device_pages(rt, p + 200 * kPage, 312 * kPage), 312u);
  read_run();
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_EQ(rt.stats().gpu_faults, bound) << "the CPU fault unbound pages that did not move";
  EXPECT_EQ(mismatches(p, k2M, 14), 0u);
  rt.free(p);
}

// The CPU writes one word of every page while GPU work items keep writing
// another word of the same pages: CPU faults pull runs home under the GPU,
// GPU faults pull them back. No write of either side may be lost, and no
// other byte may change.
TEST(CpuFault, ConcurrentCpuWritesRacingGpuWritesLoseNothing) {
  Runtime rt(kUri);
  constexpr std::size_t kLen = 2 * k2M, kPages = kLen / kPage;
  constexpr std::uint32_t kRounds = 40;
  auto* p = device_resident_shared(rt, kLen, 15);
  ASSERT_NE(p, nullptr);
  const std::uint64_t b = reinterpret_cast<std::uint64_t>(p);
  std::atomic<bool> gpu_done{false};
  std::uint32_t cpu_rounds = 0;
  std::thread cpu([&] {
    // Word 1 (bytes 8..15) of every page, round after round, until the GPU
    // is done (at least 3 rounds).
    for (std::uint32_t round = 1; round <= 100000; ++round) {
      for (std::size_t pg = 0; pg < kPages; ++pg) {
        const std::uint64_t v = (std::uint64_t(round) << 32) | pg;
        std::memcpy(p + pg * kPage + 8, &v, sizeof v);
      }
      cpu_rounds = round;
      if (gpu_done.load() && round >= 3) break;
    }
  });
  for (std::uint32_t round = 1; round <= kRounds; ++round) {
    rt.launch(kPages, [&](const WorkItem& wi, DeviceAccessor& acc) {
      // Word 0 (bytes 0..7): the GPU's round and page.
      acc.store(reinterpret_cast<std::uint64_t*>(b + wi.global_id * kPage),
                (std::uint64_t(round) << 32) | wi.global_id);
    });
  }
  gpu_done.store(true);
  cpu.join();
  std::size_t bad_gpu = 0, bad_cpu = 0, bad_rest = 0;
  for (std::size_t pg = 0; pg < kPages; ++pg) {
    std::uint64_t g, c;
    std::memcpy(&g, p + pg * kPage, sizeof g);
    std::memcpy(&c, p + pg * kPage + 8, sizeof c);
    bad_gpu += g != ((std::uint64_t(kRounds) << 32) | pg);
    bad_cpu += c != ((std::uint64_t(cpu_rounds) << 32) | pg);
    for (std::size_t i = 16; i < kPage; ++i) bad_rest += p[pg * kPage + i] != pattern(pg * kPage + i, 15);
  }
  EXPECT_EQ(bad_gpu, 0u) << "GPU writes lost";
  EXPECT_EQ(bad_cpu, 0u) << "CPU writes lost";
  EXPECT_EQ(bad_rest, 0u) << "bytes neither side wrote changed";
  rt.free(p);
}

}  // namespace
}  // namespace xesvm::test

namespace xesvm::test {
namespace {

// The GPU fault of a fresh 2 MiB chunk reads /proc/self/pagemap once: the
// migration asks which pages exist (an absent page must not be
// write-protected), the placement decision before it and the snapshot of the
// bind after it are answered from the device-private entries.
TEST(GpuFault, MigrationOfAFreshChunkReadsPagemapOnce) {
  Runtime rt(kUri);
  auto* p = static_cast<std::uint8_t*>(rt.alloc_shared(k2M));
  fill(p, k2M, 16);
  const std::uint64_t before = sim_device(rt).cpu().stats().pagemap_reads;
  rt.launch(1, touch_pages_kernel(p, kPage, 0, false));
  EXPECT_EQ(rt.residency(p, k2M).device_bytes, k2M);
  EXPECT_EQ(sim_device(rt).cpu().stats().pagemap_reads - before, 1u);
  EXPECT_EQ(gpu_mismatches(rt, p, k2M, 16), 0u);
  EXPECT_EQ(mismatches(p, k2M, 16), 0u);
  rt.free(p);
}

}  // namespace
}  // namespace xesvm::test
