// No GPU page-table entry survives the move of its page: after a CPU touch
// brings device data home, an eviction, an munmap or an mremap, no PTE maps
// a frame the data left or a page that is gone. Each change has one owner
// of that zap (runtime/backends/sim/cpu_mirror.hpp says which); these tests
// fail if none zaps. Every test also checks the bytes.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <vector>

#include "frame_books.hpp"
#include "test_util.hpp"

namespace xesvm::test {
namespace {

const std::string kUri = test_uri("sim:vram=64M,workers=2");
constexpr std::size_t k2M = 2u << 20;
constexpr std::size_t kPage = 4096;

// Frames of `frames` a GPU PTE still maps.
std::size_t still_mapped(Runtime& rt, const std::vector<FrameId>& frames) {
  const sim::GpuPageTable& gpu = sim_device(rt).page_table();
  std::size_t n = 0;
  for (FrameId f : frames) n += f != kNoFrame && gpu.address_of(f).has_value();
  return n;
}

// Pages of [p, p+n) with a device PTE.
std::size_t device_ptes(Runtime& rt, const void* p, std::size_t n) {
  const sim::GpuPageTable& gpu = sim_device(rt).page_table();
  const auto base = reinterpret_cast<std::uint64_t>(p);
  std::size_t count = 0;
  for (std::uint64_t a = base; a < base + n; a += kPage) count += gpu.lookup(a).kind == sim::Pte::Kind::kDevice;
  return count;
}

using StalePteOfBoundDeviceData = BoundDeviceData;

TEST_F(StalePteOfBoundDeviceData, CpuTouchLeavesNoPteOnTheFramesThatMovedHome) {
  EXPECT_EQ(reinterpret_cast<volatile std::uint8_t*>(p_)[5 * kPage + 1], pattern(5 * kPage + 1, kGen));
  EXPECT_EQ(rt_.residency(p_, k2M).device_bytes, 0u) << "the touched range came home as a whole";
  EXPECT_EQ(still_mapped(rt_, frames_), 0u) << "a GPU PTE still maps a frame whose data moved home";
  EXPECT_EQ(device_ptes(rt_, p_, k2M), 0u);
  EXPECT_EQ(mismatches(p_, k2M, kGen), 0u);
  EXPECT_EQ(gpu_mismatches(rt_, p_, k2M, kGen), 0u) << "the GPU reads the bytes the CPU has";
  EXPECT_EQ(agreed_books(rt_, {{p_, k2M}}), "");
}

TEST_F(StalePteOfBoundDeviceData, EvictionLeavesNoPteOnTheEvictedFrames) {
  EXPECT_EQ(rt_.evict(p_, k2M).pages_evicted, k2M / kPage);
  EXPECT_EQ(still_mapped(rt_, frames_), 0u) << "a GPU PTE still maps an evicted frame";
  EXPECT_EQ(device_ptes(rt_, p_, k2M), 0u);
  EXPECT_EQ(agreed_books(rt_, {{p_, k2M}}), "");
  EXPECT_EQ(mismatches(p_, k2M, kGen), 0u);
  EXPECT_EQ(gpu_mismatches(rt_, p_, k2M, kGen), 0u);
}

TEST(StalePte, MunmapLeavesNoPteInTheUnmappedSpan) {
  Runtime rt(kUri);
  auto* p = device_resident_mirror(rt, 2 * k2M, 5);
  ASSERT_NE(p, nullptr);
  const std::vector<FrameId> frames = gpu_bound_frames(rt, p, 2 * k2M);
  ASSERT_EQ(munmap(p + k2M, k2M), 0);
  drain_events(rt);
  const sim::GpuPageTable& gpu = sim_device(rt).page_table();
  std::size_t left = 0;
  for (std::uint64_t a = reinterpret_cast<std::uint64_t>(p + k2M); a < reinterpret_cast<std::uint64_t>(p + 2 * k2M);
       a += kPage) {
    left += gpu.lookup(a).kind != sim::Pte::Kind::kNone;
  }
  EXPECT_EQ(left, 0u) << "GPU PTEs survive in the unmapped half";
  const std::vector<FrameId> gone(frames.begin() + static_cast<std::ptrdiff_t>(k2M / kPage), frames.end());
  EXPECT_EQ(still_mapped(rt, gone), 0u) << "a GPU PTE still maps a frame of the unmapped half";
  EXPECT_EQ(agreed_books(rt, {{p, k2M}}), "");
  EXPECT_EQ(mismatches(p, k2M, 5), 0u) << "the half still mapped keeps its bytes";
  munmap(p, k2M);
}

TEST(StalePte, MremapLeavesNoPteAtTheOldAddresses) {
  Runtime rt(kUri);
  auto* p = device_resident_mirror(rt, k2M, 6);
  ASSERT_NE(p, nullptr);
  const std::vector<FrameId> frames = gpu_bound_frames(rt, p, k2M);
  void* dst = map_aligned(k2M);
  ASSERT_NE(dst, nullptr);
  auto* q = static_cast<std::uint8_t*>(mremap(p, k2M, k2M, MREMAP_MAYMOVE | MREMAP_FIXED, dst));
  ASSERT_EQ(q, dst);
  drain_events(rt);
  EXPECT_EQ(device_ptes(rt, p, k2M), 0u) << "device PTEs survive at the addresses the data left";
  const sim::GpuPageTable& gpu = sim_device(rt).page_table();
  const auto old_base = reinterpret_cast<std::uint64_t>(p);
  for (FrameId f : frames) {
    const std::uint64_t at = gpu.address_of(f).value_or(0);
    EXPECT_FALSE(at >= old_base && at < old_base + k2M) << "frame " << f << " is still mapped at its old page";
  }
  EXPECT_EQ(mismatches(q, k2M, 6), 0u) << "the bytes moved with the mapping";
  EXPECT_EQ(gpu_mismatches(rt, q, k2M, 6), 0u);
  EXPECT_EQ(agreed_books(rt, {{q, k2M}}), "");
  munmap(q, k2M);
}

}  // namespace
}  // namespace xesvm::test
