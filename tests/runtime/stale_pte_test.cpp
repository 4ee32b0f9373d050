// No GPU page-table entry survives the move of its page: after a CPU touch
// brings device data home, an eviction, an munmap or an mremap, no PTE maps
// a frame the data left or a page that is gone. Each change has one owner
// of that zap (runtime/backends/sim/cpu_mirror.hpp says which); these tests
// fail if none zaps. Every test also checks the bytes.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <condition_variable>
#include <memory>
#include <mutex>
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

// One owner of the zap (backend.hpp, Invalidation): the backend zaps the
// event's span; the runtime's invalidate() does not zap again, so the part
// of a range the munmap left alone stays bound, with valid PTEs, until the
// gc removes the range (which unbinds and evicts it).
TEST(StalePte, MunmapOfPartOfARangeZapsOnlyTheUnmappedSpan) {
  Runtime rt(kUri);
  auto* p = device_resident_mirror(rt, k2M, 8);
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(device_ptes(rt, p, k2M), k2M / kPage);
  rt.impl().manager()->set_gc_paused(true);
  ASSERT_EQ(munmap(p + k2M / 2, k2M / 2), 0);
  drain_events(rt);
  EXPECT_EQ(device_ptes(rt, p + k2M / 2, k2M / 2), 0u) << "GPU PTEs survive in the unmapped half";
  EXPECT_EQ(device_ptes(rt, p, k2M / 2), k2M / 2 / kPage)
      << "the PTEs of the half still mapped were zapped too: a second owner of the zap";
  rt.impl().manager()->set_gc_paused(false);
  EXPECT_TRUE(wait_until([&] { return rt.stats().device_bytes_in_use == 0; }))
      << "the gc did not remove the range: " << rt.stats().device_bytes_in_use << " bytes on the device";
  EXPECT_EQ(device_ptes(rt, p, k2M / 2), 0u) << "the removed range left device PTEs";
  EXPECT_EQ(mismatches(p, k2M / 2, 8), 0u) << "the half still mapped keeps its bytes";
  EXPECT_EQ(gpu_mismatches(rt, p, k2M / 2, 8), 0u) << "the GPU reads them too";
  munmap(p, k2M / 2);
}

// A client that holds the service thread inside invalidate() until released.
class HeldClient final : public MirrorClient {
 public:
  void invalidate(const Invalidation&) override {
    std::unique_lock lk(mu_);
    entered_ = true;
    cv_.notify_all();
    cv_.wait(lk, [&] { return released_; });
  }
  bool entered() {
    std::lock_guard lk(mu_);
    return entered_;
  }
  void release() {
    std::lock_guard lk(mu_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool entered_ = false, released_ = false;
};

// Between the backend's zap of a mapping change and the runtime hearing of
// it, a bind from an older snapshot must not write PTEs: nothing would zap
// them afterwards. The sim refuses it under the page table's lock.
TEST(StalePte, BindIsRefusedBetweenTheZapOfAMappingChangeAndItsDelivery) {
  std::unique_ptr<Backend> backend = open_backend(kUri);
  auto& dev = dynamic_cast<sim::SimDevice&>(*backend);
  auto* p = static_cast<std::uint8_t*>(map_aligned(4 * kPage, kPage));
  ASSERT_NE(p, nullptr);
  fill(p, 4 * kPage, 9);
  const auto a = reinterpret_cast<std::uint64_t>(p);
  HeldClient client;
  struct Release {  // never leave the service thread held: teardown waits for it
    HeldClient& c;
    ~Release() { c.release(); }
  } release{client};
  dev.mirror(a, 4 * kPage, client);
  const std::vector<PageSnapshot> sys(4, PageSnapshot{PagePlace::kSystem, true, kNoFrame});
  ASSERT_TRUE(dev.bind(a, sys));
  ASSERT_EQ(madvise(p, kPage, MADV_DONTNEED), 0);  // returns once the reader has read the event
  ASSERT_TRUE(wait_until([&] { return client.entered(); })) << "the discard never reached the client";
  EXPECT_EQ(dev.page_table().lookup(a).kind, sim::Pte::Kind::kNone) << "the backend did not zap before delivering";
  EXPECT_EQ(dev.page_table().lookup(a + kPage).kind, sim::Pte::Kind::kSystem) << "the zap went beyond the event";
  EXPECT_FALSE(dev.bind(a, std::span<const PageSnapshot>(sys).first(1)))
      << "a bind between the zap and the delivery was written";
  EXPECT_EQ(dev.page_table().lookup(a).kind, sim::Pte::Kind::kNone);
  client.release();
  dev.cpu().drain();
  EXPECT_TRUE(dev.bind(a, std::span<const PageSnapshot>(sys).first(1))) << "binds stay refused after the delivery";
  EXPECT_EQ(dev.page_table().lookup(a).kind, sim::Pte::Kind::kSystem);
  std::size_t wrong = 0;
  for (std::size_t i = kPage; i < 4 * kPage; ++i) wrong += p[i] != pattern(i, 9);
  EXPECT_EQ(wrong, 0u) << "the pages the discard left alone lost bytes";
  dev.unbind(a, a + 4 * kPage);
  dev.unmirror(a, 4 * kPage);
  munmap(p, 4 * kPage);
}

}  // namespace
}  // namespace xesvm::test
