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

}  // namespace
}  // namespace xesvm::test
