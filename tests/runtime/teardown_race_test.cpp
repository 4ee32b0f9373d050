// Ending a mirror while device work uses it: every page ends holding either
// its old or its new bytes, never zeros, and no frame is left behind.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <chrono>
#include <thread>

#include "test_util.hpp"

namespace xesvm::test {
namespace {

constexpr const char* kUri = "sim:vram=32M,workers=2";

// Pages of [p, p+n) that hold neither pattern `a` nor pattern `b` in full
// (offsets counted from p).
std::size_t pages_neither(const std::uint8_t* p, std::size_t n, std::uint32_t a, std::uint32_t b) {
  std::size_t bad = 0;
  for (std::size_t off = 0; off < n; off += 4096) {
    bool is_a = true, is_b = true;
    for (std::size_t i = off; i < off + 4096 && (is_a || is_b); ++i) {
      is_a = is_a && p[i] == pattern(i, a);
      is_b = is_b && p[i] == pattern(i, b);
    }
    bad += !is_a && !is_b;
  }
  return bad;
}

TEST(Teardown, UnmirrorRacingARunningKernelLeavesEveryPageOldOrNew) {
  Runtime rt(kUri);
  constexpr std::size_t kLen = 8u << 20;
  auto* p = static_cast<std::uint8_t*>(map_aligned(kLen));
  ASSERT_NE(p, nullptr);
  for (int run = 0; run < 20; ++run) {
    fill(p, kLen, 1);
    rt.mirror(p, kLen);
    Error::Code code{};
    bool failed = false;
    std::thread gpu([&] {
      try {
        rt.launch(pages(kLen), write_pattern_kernel(p, kLen, 2));
      } catch (const Error& e) {
        failed = true;
        code = e.code();
      }
    });
    std::this_thread::sleep_for(std::chrono::microseconds(200 * run));  // 0-4 ms after the launch
    rt.unmirror(p, kLen);
    gpu.join();
    if (failed) {
      EXPECT_EQ(code, Error::Code::kDeviceLost) << "run " << run;
    }
    EXPECT_EQ(pages_neither(p, kLen, 1, 2), 0u) << "run " << run << ": pages lost their bytes";
    if (!failed) {
      EXPECT_EQ(mismatches(p, kLen, 2), 0u) << "run " << run << ": a finished kernel's writes are gone";
    }
    EXPECT_EQ(rt.stats().device_bytes_in_use, 0u) << "run " << run;
  }
  munmap(p, kLen);
}

TEST(Teardown, GpuFaultWhileUnmirrorTearsDownCannotResurrectTheRange) {
  Runtime rt(kUri);
  constexpr std::size_t kLen = 4u << 20;
  auto* p = device_resident_mirror(rt, kLen, 1);
  ASSERT_NE(p, nullptr);
  bool lost = false;
  rt.impl().manager()->set_before_unregister_hook([&](std::uint64_t) {
    try {
      rt.launch(pages(kLen), write_pattern_kernel(p, kLen, 2));
    } catch (const Error& e) {
      lost = e.code() == Error::Code::kDeviceLost;
    }
  });
  rt.unmirror(p, kLen);
  rt.impl().manager()->set_before_unregister_hook(nullptr);
  EXPECT_TRUE(lost) << "a kernel launched while the mirror was ending ran on it";
  EXPECT_EQ(mismatches(p, kLen, 1), 0u) << "bytes of the mirror were lost";
  EXPECT_EQ(rt.stats().device_bytes_in_use, 0u) << "frames leaked";
  EXPECT_EQ(rt.impl().manager()->range_count(), 0u);
  munmap(p, kLen);
}

TEST(Teardown, UnmirrorFromInsideAKernelIsRefused) {
  Runtime rt(kUri);
  constexpr std::size_t kLen = 2u << 20;
  void* p = map_aligned(kLen);
  ASSERT_NE(p, nullptr);
  rt.mirror(p, kLen);
  bool refused = false;
  rt.launch(1, [&](const WorkItem&, DeviceAccessor&) {
    try {
      rt.unmirror(p, kLen);
    } catch (const Error& e) {
      refused = e.code() == Error::Code::kInvalidArgument &&
                std::string(e.what()).find("inside a kernel") != std::string::npos;
    }
  });
  EXPECT_TRUE(refused);
  rt.unmirror(p, kLen);
  munmap(p, kLen);
}

TEST(Teardown, FreeFromInsideAKernelIsRefusedAndThePointerStaysFreeable) {
  Runtime rt(kUri);
  constexpr std::size_t kLen = 2u << 20;
  auto* p = static_cast<std::uint8_t*>(rt.alloc_shared(kLen));
  fill(p, kLen, 7);
  bool refused = false;
  rt.launch(1, [&](const WorkItem&, DeviceAccessor&) {
    try {
      rt.free(p);
    } catch (const Error& e) {
      refused = e.code() == Error::Code::kInvalidArgument &&
                std::string(e.what()).find("inside a kernel") != std::string::npos;
    }
  });
  EXPECT_TRUE(refused);
  EXPECT_EQ(mismatches(p, kLen, 7), 0u) << "a refused free() must leave the memory in place";
  EXPECT_NO_THROW(rt.free(p)) << "the allocation was forgotten by the refused free()";
}

}  // namespace
}  // namespace xesvm::test
