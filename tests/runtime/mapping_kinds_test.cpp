// Which CPU mappings mirror() accepts, and that an accepted one never loses
// bytes: private anonymous memory mapped in full (also mlock()ed: its pages
// cannot be dropped, so they stay in RAM and the GPU reaches them there);
// MAP_SHARED memory, holes and memory another Runtime mirrors are refused
// with the reason.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include <chrono>
#include <future>
#include <string>

#include "test_util.hpp"

namespace xesvm::test {
namespace {

constexpr const char* kUri = "sim:vram=16M,workers=2";

std::string mirror_error(Runtime& rt, void* p, std::size_t n) {
  try {
    rt.mirror(p, n);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Error::Code::kInvalidArgument) << e.what();
    return e.what();
  }
  rt.unmirror(p, n);
  return "";
}

TEST(MappingKinds, MirrorOfMapSharedAnonymousMemoryIsRefusedWithTheReason) {
  Runtime rt(kUri);
  constexpr std::size_t kLen = 2u << 20;
  void* p = mmap(nullptr, kLen, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  fill(p, kLen, 1);
  const std::string why = mirror_error(rt, p, kLen);
  EXPECT_NE(why.find("MAP_SHARED"), std::string::npos) << why;
  EXPECT_NE(why.find("private anonymous"), std::string::npos) << why;
  EXPECT_EQ(rt.impl().manager()->range_count(), 0u);
  EXPECT_EQ(mismatches(p, kLen, 1), 0u);
  munmap(p, kLen);
}

TEST(MappingKinds, MirrorOfARegionWithAHoleIsRefusedAndNamesTheHole) {
  Runtime rt(kUri);
  constexpr std::size_t kLen = 4u << 20;
  auto* p = static_cast<std::uint8_t*>(map_aligned(kLen));
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(munmap(p + (1u << 20), 4096), 0);
  const std::string why = mirror_error(rt, p, kLen);
  EXPECT_NE(why.find("nothing is mapped at"), std::string::npos) << why;
  // Nothing was registered: the mapped parts can be mirrored one by one.
  rt.mirror(p, 1u << 20);
  rt.mirror(p + (1u << 20) + 4096, kLen - (1u << 20) - 4096);
  rt.unmirror(p, 1u << 20);
  rt.unmirror(p + (1u << 20) + 4096, kLen - (1u << 20) - 4096);
  munmap(p, kLen);
}

TEST(MappingKinds, MirrorOfMemoryAnotherRuntimeMirrorsSaysAnotherRuntimeOwnsIt) {
  Runtime a(kUri);
  Runtime b(kUri);
  constexpr std::size_t kLen = 2u << 20;
  void* p = map_aligned(kLen);
  ASSERT_NE(p, nullptr);
  a.mirror(p, kLen);
  const std::string why = mirror_error(b, p, kLen);
  EXPECT_NE(why.find("another live Runtime"), std::string::npos) << why;
  a.unmirror(p, kLen);
  b.mirror(p, kLen);  // free now
  b.unmirror(p, kLen);
  munmap(p, kLen);
}

TEST(MappingKinds, MlockedMemoryKeepsEveryGpuWriteVisibleToTheCpuAndUnmirrorReturns) {
  constexpr std::size_t kLen = 2u << 20;
  rlimit lim{};
  getrlimit(RLIMIT_MEMLOCK, &lim);
  if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < kLen) {
    GTEST_SKIP() << "RLIMIT_MEMLOCK is " << lim.rlim_cur << " bytes; the test locks " << kLen;
  }
  Runtime rt(kUri);
  void* p = map_aligned(kLen);
  ASSERT_NE(p, nullptr);
  fill(p, kLen, 1);
  ASSERT_EQ(mlock(p, kLen), 0) << std::strerror(errno);
  rt.mirror(p, kLen);
  rt.launch(pages(kLen), write_pattern_kernel(p, kLen, 2));
  EXPECT_EQ(mismatches(p, kLen, 2), 0u) << "the CPU reads bytes the GPU did not write last";
  EXPECT_EQ(rt.residency(p, kLen).device_bytes, 0u) << "locked pages cannot be dropped: they stay in RAM";
  EXPECT_EQ(rt.stats().device_bytes_in_use, 0u);
  auto done = std::async(std::launch::async, [&] { rt.unmirror(p, kLen); });
  ASSERT_EQ(done.wait_for(std::chrono::seconds(20)), std::future_status::ready) << "unmirror does not return";
  done.get();
  EXPECT_EQ(mismatches(p, kLen, 2), 0u);
  munlock(p, kLen);
  munmap(p, kLen);
}

}  // namespace
}  // namespace xesvm::test
