// Rare failures, forced: a CPU-fault copy that fails, a frame another pass
// holds for a moment when eviction frees it. No byte is lost, no frame
// leaks, no backend thread dies.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <chrono>
#include <future>
#include <thread>

#include "test_util.hpp"

namespace xesvm::test {
namespace {

constexpr const char* kUri = "sim:vram=16M,workers=2";

TEST(FaultInjection, FailedCopyOfACpuFaultKeepsThePageOnTheDeviceAndRetries) {
  Runtime rt(kUri);
  constexpr std::size_t kLen = 2u << 20;
  auto* p = device_resident_shared(rt, kLen, 4);
  ASSERT_NE(p, nullptr);
  sim_device(rt).cpu().inject_fault_copy_failures(3);
  EXPECT_EQ(mismatches(p, kLen, 4), 0u) << "a failed copy handed the CPU other bytes";
  EXPECT_EQ(sim_device(rt).cpu().stats().fault_copy_errors, 3u);
  rt.free(p);
  EXPECT_EQ(rt.stats().device_bytes_in_use, 0u);
}

// Holds the first frame a pass is about to free for a few milliseconds, as
// another range's pass trylocking a stale candidate would.
struct HoldFirstFreedFrame {
  Runtime& rt;
  std::future<void> release;
  bool armed = true;
  void operator()(std::span<const FrameId> freed) {
    if (!armed || freed.empty()) return;
    armed = false;
    const FrameId f = freed[0];
    ASSERT_TRUE(sim_device(rt).frame_pool().trylock(f));
    release = std::async(std::launch::async, [this, f] {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      sim_device(rt).frame_pool().unlock(f);
    });
  }
};

TEST(FaultInjection, FrameLockedBetweenFinalizeAndFreeIsFreedOnceReleased) {
  Runtime rt(kUri);
  constexpr std::size_t kLen = 2u << 20;
  auto* p = device_resident_shared(rt, kLen, 5);
  ASSERT_NE(p, nullptr);
  auto hold = std::make_shared<HoldFirstFreedFrame>(HoldFirstFreedFrame{rt, {}});
  rt.impl().manager()->set_after_finalize_hook([hold](std::span<const FrameId> f) { (*hold)(f); });
  EvictResult r{};
  EXPECT_NO_THROW(r = rt.evict(p, kLen));
  rt.impl().manager()->set_after_finalize_hook(nullptr);
  EXPECT_EQ(r.pages_evicted, kLen / 4096);
  EXPECT_EQ(rt.stats().device_bytes_in_use, 0u) << "frames leaked";
  EXPECT_EQ(mismatches(p, kLen, 5), 0u);
  rt.free(p);
}

TEST(FaultInjection, GcThreadSurvivesAFrameLockedBetweenFinalizeAndFree) {
  Runtime rt(kUri);
  constexpr std::size_t kLen = 2u << 20;
  auto* p = device_resident_mirror(rt, kLen, 6);
  ASSERT_NE(p, nullptr);
  auto hold = std::make_shared<HoldFirstFreedFrame>(HoldFirstFreedFrame{rt, {}});
  rt.impl().manager()->set_after_finalize_hook([hold](std::span<const FrameId> f) { (*hold)(f); });
  ASSERT_EQ(munmap(p, kLen), 0);  // the gc thread tears the range down
  EXPECT_TRUE(wait_until([&] { return rt.stats().device_bytes_in_use == 0; })) << "frames leaked";
  rt.impl().manager()->set_after_finalize_hook(nullptr);
  EXPECT_FALSE(hold->armed) << "the gc pass never reached the hook";
}

// A migration's MADV_DONTNEED holds the descriptor's count of mapping
// changes in flight until the reader has read its REMOVE event, and every
// UFFDIO_WRITEPROTECT of another migration fails with EAGAIN meanwhile. A
// reader the machine schedules late must delay that migration, not make it
// give up and leave its range in RAM.
TEST(FaultInjection, MigrationBesideAnotherOnesDropWaitsForALateReader) {
  Runtime rt(kUri);
  constexpr std::size_t kLen = 2u << 20;
  auto* a = static_cast<std::uint8_t*>(map_aligned(kLen, kLen));
  auto* b = static_cast<std::uint8_t*>(map_aligned(kLen, kLen));
  ASSERT_TRUE(a && b);
  fill(a, kLen, 7);
  fill(b, kLen, 8);
  rt.mirror(a, kLen);
  rt.mirror(b, kLen);
  sim::CpuMirror& cpu = sim_device(rt).cpu();
  // Far longer than a bounded count of quick retries lasts.
  cpu.delay_reader(std::chrono::milliseconds(400));
  auto first = std::async(std::launch::async, [&] { return rt.prefetch(a, kLen, Location::kDevice); });
  // The first migration's drop is in flight: its REMOVE waits for the reader.
  const bool in_flight = wait_until([&] { return cpu.mapping_change_in_flight(); });
  EXPECT_TRUE(in_flight) << "the first migration's MADV_DONTNEED was never seen in flight";
  const std::uint64_t second = rt.prefetch(b, kLen, Location::kDevice);
  EXPECT_EQ(first.get(), kLen);
  EXPECT_EQ(second, kLen) << "the migration beside the other's drop gave up";
  cpu.delay_reader(std::chrono::microseconds(0));
  EXPECT_EQ(rt.residency(a, kLen).device_bytes, kLen);
  EXPECT_EQ(rt.residency(b, kLen).device_bytes, kLen);
  EXPECT_EQ(gpu_mismatches(rt, a, kLen, 7), 0u);
  EXPECT_EQ(gpu_mismatches(rt, b, kLen, 8), 0u);
  EXPECT_EQ(mismatches(a, kLen, 7), 0u);
  EXPECT_EQ(mismatches(b, kLen, 8), 0u);
  rt.unmirror(a, kLen);
  rt.unmirror(b, kLen);
  munmap(a, kLen);
  munmap(b, kLen);
  EXPECT_EQ(rt.stats().device_bytes_in_use, 0u);
}

}  // namespace
}  // namespace xesvm::test
