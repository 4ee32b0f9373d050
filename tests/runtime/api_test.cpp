// The public API's descriptive and teardown calls: capabilities() reports
// what the backend can do as values, discard() stops mirroring without
// copying device data home.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include "test_util.hpp"

namespace xesvm::test {
namespace {

TEST(Capabilities, SimReportsEngineMechanismWorkersAndDeviceMemory) {
  Runtime rt("sim:vram=16M,workers=3");
  const Capabilities c = rt.capabilities();
  EXPECT_EQ(c.backend, "sim");
  EXPECT_TRUE(c.has_engine);
  EXPECT_EQ(c.engine_workers, 3u);
  EXPECT_TRUE(c.has_mechanism);
  EXPECT_TRUE(c.host_kernels);
  EXPECT_EQ(c.device_memory_bytes, 16u << 20);
  EXPECT_EQ(c.kernel_mode_faults, sim_device(rt).cpu().features().kernel_faults);
}

TEST(Capabilities, KernelFaultsZeroIsReportedAsUserModeOnly) {
  Runtime rt("sim:vram=16M,workers=1,kernel_faults=0");
  EXPECT_FALSE(rt.capabilities().kernel_mode_faults);
}

TEST(Stats, CpuFaultsOnDevicePagesCountAsMigrationsToSystem) {
  Runtime rt(test_uri("sim:vram=16M,workers=2"));
  constexpr std::size_t kLen = 2u << 20;
  auto* p = device_resident_shared(rt, kLen, 8);
  ASSERT_NE(p, nullptr);
  const Stats before = rt.stats();
  EXPECT_EQ(mismatches(p, kLen, 8), 0u);  // the range comes back by a CPU fault
  const Stats after = rt.stats();
  const std::uint64_t faults = after.cpu_faults - before.cpu_faults;
  EXPECT_EQ(faults, 1u) << "one fault brings the device-resident 2 MiB range home";
  EXPECT_EQ(after.bytes_to_system - before.bytes_to_system, kLen);
  EXPECT_EQ(after.migrations_to_system - before.migrations_to_system, faults);
  EXPECT_EQ(after.pages_evicted, before.pages_evicted) << "no eviction was involved";
  rt.free(p);
}

TEST(Discard, FreesDeviceFramesWithoutCopyingHome) {
  Runtime rt("sim:vram=16M,workers=2");
  constexpr std::size_t kLen = 4u << 20;
  auto* p = device_resident_mirror(rt, kLen, 3);
  ASSERT_NE(p, nullptr);
  const std::uint64_t back_before = rt.stats().bytes_to_system;
  rt.discard(p, kLen);
  EXPECT_EQ(rt.stats().device_bytes_in_use, 0u);
  EXPECT_EQ(rt.stats().bytes_to_system, back_before) << "discard copied device data home";
  EXPECT_EQ(rt.impl().manager()->range_count(), 0u);
  // The region is no longer mirrored: it can be mirrored again.
  rt.mirror(p, kLen);
  rt.unmirror(p, kLen);
  munmap(p, kLen);
}

TEST(Discard, RejectsSpansThatAreNotAMirroredRegion) {
  Runtime rt("sim:vram=16M,workers=2");
  constexpr std::size_t kLen = 2u << 20;
  void* p = map_aligned(kLen);
  ASSERT_NE(p, nullptr);
  auto code_of = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const Error& e) {
      return static_cast<int>(e.code());
    }
    return 0;
  };
  constexpr int kInval = static_cast<int>(Error::Code::kInvalidArgument);
  EXPECT_EQ(code_of([&] { rt.discard(p, kLen); }), kInval) << "not mirrored";
  rt.mirror(p, kLen);
  EXPECT_EQ(code_of([&] { rt.discard(p, kLen / 2); }), kInval) << "half of a mirror";
  EXPECT_EQ(code_of([&] { rt.discard(nullptr, kLen); }), kInval) << "null";
  void* a = rt.alloc_shared(kLen);
  EXPECT_EQ(code_of([&] { rt.discard(a, kLen); }), kInval) << "alloc_shared memory";
  fill(a, kLen, 9);
  EXPECT_EQ(mismatches(a, kLen, 9), 0u);
  rt.free(a);
  rt.unmirror(p, kLen);
  munmap(p, kLen);
}

}  // namespace
}  // namespace xesvm::test
