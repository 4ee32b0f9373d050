// Frame -> page is recorded by the runtime (a range's frames), by the sim
// device (its device-private entries and their reverse map) and by the frame
// pool (owner tags); the GPU page table maps frames at pages. frame_books()
// checks that they agree. These tests run random operations and check after
// each one, and prove the checker by corrupting each record in turn.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstring>
#include <random>
#include <vector>

#include "frame_books.hpp"
#include "test_util.hpp"

namespace xesvm::test {
namespace {

const std::string kUri = test_uri("sim:vram=8M,workers=2");
constexpr std::size_t k2M = 2u << 20;
constexpr std::size_t kPage = 4096;

TEST(FrameBooks, AgreeAfterEveryRandomOperationAndTheBytesSurvive) {
  // 6 MiB of mirrored memory on 8 MiB of device memory: prefetches and GPU
  // writes also evict under pressure.
  Runtime rt(kUri);
  constexpr std::size_t kLen = 3 * k2M;
  auto* p = static_cast<std::uint8_t*>(map_aligned(kLen));
  ASSERT_NE(p, nullptr);
  std::memset(p, 0, kLen);
  rt.mirror(p, kLen);
  std::vector<std::uint8_t> shadow(kLen, 0);
  std::mt19937_64 rng(17);
  auto pick_span = [&](std::size_t max_pages) {
    const std::size_t first = rng() % (kLen / kPage);
    const std::size_t n = 1 + rng() % std::min(max_pages, kLen / kPage - first);
    return std::pair<std::size_t, std::size_t>{first * kPage, n * kPage};
  };
  for (unsigned op = 0; op < 120; ++op) {
    const unsigned kind = rng() % 7;
    const auto [off, n] = pick_span(kind == 0 ? 1024 : 64);
    switch (kind) {
      case 0:
        rt.prefetch(p + off, n, Location::kDevice);
        break;
      case 1:
        rt.prefetch(p + off, n, Location::kSystem);
        break;
      case 2:
        rt.evict(p + off, n);
        break;
      case 3: {  // GPU writes pattern(i, gen) over the span
        const auto gen = static_cast<std::uint32_t>(op + 1);
        rt.launch(pages(n), write_pattern_kernel(p + off, n, gen));
        for (std::size_t i = 0; i < n; ++i) shadow[off + i] = pattern(i, gen);
        break;
      }
      case 4:  // GPU reads (faults pages in, maybe to the device)
        rt.launch(pages(n), touch_pages_kernel(p + off, n, 0, /*write=*/false));
        break;
      case 5: {  // CPU writes a few bytes of each page (faults device pages home)
        for (std::size_t a = off; a < off + n; a += kPage) {
          p[a + op % kPage] = static_cast<std::uint8_t>(op);
          shadow[a + op % kPage] = static_cast<std::uint8_t>(op);
        }
        break;
      }
      case 6:  // the application discards the pages: they read as zeros
        ASSERT_EQ(madvise(p + off, n, MADV_DONTNEED), 0);
        std::memset(shadow.data() + off, 0, n);
        break;
    }
    ASSERT_EQ(agreed_books(rt, {{p, kLen}}), "") << "after operation " << op << " (kind " << kind << ")";
  }
  std::size_t bad = 0;
  for (std::size_t i = 0; i < kLen; ++i) bad += p[i] != shadow[i];
  EXPECT_EQ(bad, 0u) << "bytes that differ from what the operations wrote";
  EXPECT_EQ(agreed_books(rt, {{p, kLen}}), "") << "after the CPU read everything back";
  rt.unmirror(p, kLen);
  munmap(p, kLen);
}

using FrameBooksChecker = BoundDeviceData;

TEST_F(FrameBooksChecker, SeesAReverseMapThatDisagreesWithTheEntries) {
  sim::DeviceEntries& entries = sim_device(rt_).cpu().entries();
  const std::uint64_t right = entries.frame_address(frames_[0]);
  entries.corrupt_frame_address_for_test(frames_[0], right + kPage);
  const std::string books = frame_books(rt_, {{p_, k2M}});
  EXPECT_NE(books.find("frame " + std::to_string(frames_[0])), std::string::npos) << books;
  entries.corrupt_frame_address_for_test(frames_[0], right);
  EXPECT_EQ(frame_books(rt_, {{p_, k2M}}), "");
  EXPECT_EQ(mismatches(p_, k2M, kGen), 0u);
}

TEST_F(FrameBooksChecker, SeesAGpuPteThatMapsAFrameAtAnotherPage) {
  // Binding the frame at the next page moves its PTE there: the GPU would
  // read page 0's bytes at page 1.
  sim::GpuPageTable& gpu = sim_device(rt_).page_table();
  const auto wrong = reinterpret_cast<std::uint64_t>(p_) + kPage;
  const PageSnapshot snap{PagePlace::kDevice, true, frames_[0]};
  gpu.bind(wrong, std::span<const PageSnapshot>(&snap, 1));
  const std::string books = frame_books(rt_, {{p_, k2M}});
  EXPECT_NE(books.find("GPU PTE"), std::string::npos) << books;
  gpu.unbind(wrong, wrong + kPage);
  EXPECT_EQ(frame_books(rt_, {{p_, k2M}}), "");
  EXPECT_EQ(gpu_mismatches(rt_, p_, k2M, kGen), 0u);
}

TEST_F(FrameBooksChecker, SeesRuntimeBooksThatDisagreeWithTheDevice) {
  // The device forgets page 3 (as if its data went nowhere); the runtime
  // still counts it on the device.
  const auto page3 = reinterpret_cast<std::uint64_t>(p_) + 3 * kPage;
  sim_device(rt_).cpu().entries().drop(page3, page3 + kPage);
  const std::string books = frame_books(rt_, {{p_, k2M}});
  std::ostringstream want;
  want << std::hex << "page 0x" << page3 << ": the runtime says device";
  EXPECT_NE(books.find(want.str()), std::string::npos) << books;
}

}  // namespace
}  // namespace xesvm::test
