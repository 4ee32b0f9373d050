// Device access obeys the CPU mapping's protection, as HMM does: a GPU write
// to memory the CPU maps read-only, or any GPU access to PROT_NONE memory,
// is a fatal GPU fault (DeviceLost) and changes no byte; reads of read-only
// memory work. mprotect() after the GPU bound the pages is seen by the next
// launch.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <string>

#include "test_util.hpp"

namespace xesvm::test {
namespace {

constexpr const char* kUri = "sim:vram=16M,workers=2";
constexpr std::size_t kLen = 2u << 20;

// Runs kernel; returns the message of the DeviceLost it must end with.
std::string device_lost(Runtime& rt, std::uint64_t items, const Kernel& kernel) {
  try {
    rt.launch(items, kernel);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Error::Code::kDeviceLost) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "the kernel ran without a GPU fault";
  return "";
}

class Protection : public ::testing::Test {
 protected:
  void SetUp() override {
    p_ = static_cast<std::uint8_t*>(map_aligned(kLen));
    ASSERT_NE(p_, nullptr);
    fill(p_, kLen, 1);
    rt_.mirror(p_, kLen);
  }
  void TearDown() override {
    mprotect(p_, kLen, PROT_READ | PROT_WRITE);
    rt_.unmirror(p_, kLen);
    munmap(p_, kLen);
  }
  Runtime rt_{kUri};
  std::uint8_t* p_ = nullptr;
};

TEST_F(Protection, GpuWriteToReadOnlyMemoryIsAFatalFaultAndWritesNothing) {
  ASSERT_EQ(mprotect(p_, kLen, PROT_READ), 0);
  const std::string why = device_lost(rt_, pages(kLen), write_pattern_kernel(p_, kLen, 2));
  EXPECT_NE(why.find("read-only"), std::string::npos) << why;
  EXPECT_EQ(mismatches(p_, kLen, 1), 0u) << "the GPU wrote into read-only memory";
  EXPECT_EQ(gpu_mismatches(rt_, p_, kLen, 1), 0u) << "GPU reads of read-only memory work";
  EXPECT_EQ(mismatches(p_, kLen, 1), 0u);
}

TEST_F(Protection, GpuAccessToProtNoneMemoryIsAFatalFault) {
  ASSERT_EQ(mprotect(p_, kLen, PROT_NONE), 0);
  const std::string why = device_lost(rt_, pages(kLen), [&](const WorkItem& wi, DeviceAccessor& acc) {
    std::uint8_t v;
    acc.read(reinterpret_cast<std::uint64_t>(p_) + wi.global_id * 4096, &v, 1);
  });
  EXPECT_NE(why.find("PROT_NONE"), std::string::npos) << why;
  ASSERT_EQ(mprotect(p_, kLen, PROT_READ | PROT_WRITE), 0);
  EXPECT_EQ(mismatches(p_, kLen, 1), 0u);
}

TEST_F(Protection, MprotectAfterTheGpuBoundDeviceResidentPagesIsSeenByTheNextLaunch) {
  ASSERT_EQ(rt_.prefetch(p_, kLen, Location::kDevice), kLen);
  EXPECT_EQ(gpu_mismatches(rt_, p_, kLen, 1), 0u);  // bound read-write now
  ASSERT_EQ(mprotect(p_, kLen, PROT_READ), 0);
  const std::string why = device_lost(rt_, pages(kLen), write_pattern_kernel(p_, kLen, 2));
  EXPECT_NE(why.find("read-only"), std::string::npos) << why;
  EXPECT_EQ(mismatches(p_, kLen, 1), 0u) << "a GPU write reached read-only memory";
}

TEST_F(Protection, ReadOnlyPartOfAMirrorRefusesWritesOnlyThere) {
  ASSERT_EQ(mprotect(p_ + (1u << 20), 4096, PROT_READ), 0);
  rt_.launch(256, write_pattern_kernel(p_, 1u << 20, 3));  // the first MiB stays writable
  device_lost(rt_, 1, [&](const WorkItem&, DeviceAccessor& acc) {
    std::uint8_t v = 0;
    acc.write(reinterpret_cast<std::uint64_t>(p_) + (1u << 20), &v, 1);
  });
  EXPECT_EQ(mismatches(p_, 1u << 20, 3), 0u);
  for (std::size_t i = 1u << 20; i < kLen; ++i) ASSERT_EQ(p_[i], pattern(i, 1)) << i;
}

}  // namespace
}  // namespace xesvm::test
