// Device copy and fill on the sim: every byte checked, in every residency;
// bad input rejected before anything runs; a fault at memory that is not SVM
// reported by the completion, naming the address.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <vector>

#include "xesvm/xesvm.hpp"

namespace {

using xesvm::Error;
using xesvm::Location;
using xesvm::Runtime;

constexpr std::size_t kMiB = 1u << 20;

void expect_code(Error::Code code, const std::function<void()>& f, const char* needle) {
  try {
    f();
    ADD_FAILURE() << "no error; expected " << needle;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(DeviceCopy, CopiesEveryByteFromSystemAndDeviceMemory) {
  Runtime rt("sim:vram=64M");
  constexpr std::size_t n = 3 * kMiB + 123;
  auto* src = static_cast<std::uint8_t*>(rt.alloc_shared(n));
  auto* dst = static_cast<std::uint8_t*>(rt.alloc_shared(n));
  for (std::size_t i = 0; i < n; ++i) src[i] = static_cast<std::uint8_t>(i * 7 + 3);
  // Half of the source on the device first: the copy reads both residencies.
  rt.prefetch(src, n / 2, Location::kDevice);
  xesvm::Completion c = rt.copy(dst, src, n);
  c.wait();
  EXPECT_TRUE(c.ready());
  for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(dst[i], static_cast<std::uint8_t>(i * 7 + 3)) << "offset " << i;
  EXPECT_GT(rt.stats().gpu_faults, 0u);
  rt.free(src);
  rt.free(dst);
}

TEST(DeviceCopy, FillsWithOneTwoAndFourBytePatterns) {
  Runtime rt("sim:vram=64M");
  constexpr std::size_t n = 1 * kMiB + 4096 + 12;
  auto* buf = static_cast<std::uint8_t*>(rt.alloc_shared(n + 8));
  std::memset(buf, 0xee, n + 8);
  const std::uint8_t one = 0x5a;
  const std::uint16_t two = 0xa1b2;
  const std::uint32_t four = 0xc0ffee11;
  struct Case {
    const void* p;
    std::size_t size;
  } cases[] = {{&one, 1}, {&two, 2}, {&four, 4}};
  for (const Case& k : cases) {
    rt.fill(buf + 4, k.p, k.size, n).wait();
    ASSERT_EQ(buf[0], 0xee);
    for (std::size_t i = 0; i < n; ++i) {
      ASSERT_EQ(buf[4 + i], static_cast<const std::uint8_t*>(k.p)[i % k.size])
          << "pattern size " << k.size << " offset " << i;
    }
    ASSERT_EQ(buf[4 + n], 0xee) << "the fill ran past its end";
  }
  rt.free(buf);
}

TEST(DeviceCopy, BadInputIsRejectedBeforeAnythingRuns) {
  Runtime rt("sim:vram=64M");
  auto* a = static_cast<std::uint8_t*>(rt.alloc_shared(2 * kMiB));
  const std::uint32_t pat = 1;
  expect_code(
      Error::Code::kInvalidArgument, [&] { (void)rt.copy(a + kMiB, a, kMiB + 1); }, "overlap");
  expect_code(
      Error::Code::kInvalidArgument, [&] { (void)rt.copy(a, a + kMiB, 0); }, "size is 0");
  expect_code(
      Error::Code::kInvalidArgument, [&] { (void)rt.copy(nullptr, a, 16); }, "null pointer");
  expect_code(
      Error::Code::kInvalidArgument, [&] { (void)rt.fill(a, &pat, 3, 12); }, "not 1, 2 or 4");
  expect_code(
      Error::Code::kInvalidArgument, [&] { (void)rt.fill(a + 2, &pat, 4, 16); }, "multiples");
  expect_code(
      Error::Code::kInvalidArgument, [&] { (void)rt.fill(a, &pat, 4, 18); }, "multiples");
  // A span the CPU has no mapping for: named page, nothing submitted.
  void* hole = ::mmap(nullptr, 3 * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(hole, MAP_FAILED);
  ::munmap(static_cast<char*>(hole) + 4096, 4096);
  char expect[64];
  std::snprintf(expect, sizeof expect, "page at 0x%llx",
                static_cast<unsigned long long>(reinterpret_cast<std::uintptr_t>(hole) + 4096));
  expect_code(
      Error::Code::kInvalidArgument, [&] { (void)rt.copy(a, hole, 3 * 4096); }, expect);
  ::munmap(hole, 3 * 4096);
  EXPECT_EQ(rt.stats().gpu_faults, 0u);
  rt.free(a);
}

TEST(DeviceCopy, FaultOnMemoryThatIsNotSvmIsDeviceLostNamingTheAddress) {
  Runtime rt("sim:vram=64M");
  auto* a = static_cast<std::uint8_t*>(rt.alloc_shared(kMiB));
  // Mapped by the CPU but not SVM memory: the device faults on it.
  std::vector<std::uint8_t> plain(kMiB, 1);
  xesvm::Completion c = rt.copy(a, plain.data(), kMiB);
  try {
    c.wait();
    ADD_FAILURE() << "the copy from non-SVM memory succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Error::Code::kDeviceLost) << e.what();
    EXPECT_NE(std::string(e.what()).find("GPU fault at 0x"), std::string::npos) << e.what();
  }
  // The same error again on a later wait.
  EXPECT_THROW(c.wait(), Error);
  rt.free(a);
}

TEST(DeviceCopy, DestroyingAnUnwaitedCompletionWaitsForTheWork) {
  Runtime rt("sim:vram=64M");
  constexpr std::size_t n = 2 * kMiB;
  auto* src = static_cast<std::uint8_t*>(rt.alloc_shared(n));
  auto* dst = static_cast<std::uint8_t*>(rt.alloc_shared(n));
  std::memset(src, 0x42, n);
  { xesvm::Completion c = rt.copy(dst, src, n); }
  for (std::size_t i = 0; i < n; i += 4096) ASSERT_EQ(dst[i], 0x42) << "offset " << i;
  rt.free(src);
  rt.free(dst);
}

}  // namespace
