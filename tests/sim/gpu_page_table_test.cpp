#include "runtime/backends/sim/gpu_page_table.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace xesvm::sim {
namespace {

constexpr std::uint64_t kBase = 0x7f0000000000ull;

PageSnapshot sys(bool w = true) { return PageSnapshot{PagePlace::kSystem, w, kNoFrame}; }
PageSnapshot dev(FrameId f, bool w = true) { return PageSnapshot{PagePlace::kDevice, w, f}; }
PageSnapshot absent() { return PageSnapshot{PagePlace::kAbsent, true, kNoFrame}; }

TEST(GpuPageTable, BindMapsEachKindAndLookupFindsIt) {
  GpuPageTable t;
  const std::vector<PageSnapshot> pages = {sys(false), dev(7), absent()};
  t.bind(kBase, pages);
  EXPECT_EQ(t.mapped_pages(), 3u);
  Pte a = t.lookup(kBase + 5);
  EXPECT_EQ(a.kind, Pte::Kind::kSystem);
  EXPECT_FALSE(a.writable);
  Pte b = t.lookup(kBase + kPageSize + 4095);
  EXPECT_EQ(b.kind, Pte::Kind::kDevice);
  EXPECT_TRUE(b.writable);
  EXPECT_EQ(b.frame, 7u);
  Pte c = t.lookup(kBase + 2 * kPageSize);
  EXPECT_EQ(c.kind, Pte::Kind::kSystem) << "an absent page is mapped as system memory";
  EXPECT_EQ(t.lookup(kBase + 3 * kPageSize).kind, Pte::Kind::kNone);
  EXPECT_EQ(t.lookup(kBase - 1).kind, Pte::Kind::kNone);
  EXPECT_EQ(t.address_of(7), kBase + kPageSize);
}

TEST(GpuPageTable, BindAcrossA2MDirectoryBoundary) {
  GpuPageTable t;
  const std::uint64_t start = kBase + (2u << 20) - kPageSize;
  t.bind(start, std::vector<PageSnapshot>{dev(1), dev(2)});
  EXPECT_EQ(t.lookup(start).frame, 1u);
  EXPECT_EQ(t.lookup(start + kPageSize).frame, 2u);
}

TEST(GpuPageTable, BindRejectsBadInputAndChangesNothing) {
  GpuPageTable t;
  EXPECT_THROW(t.bind(kBase + 1, std::vector<PageSnapshot>{sys()}), Error);
  EXPECT_THROW(t.bind(kBase, std::vector<PageSnapshot>{sys(), dev(kNoFrame)}), Error);
  EXPECT_THROW(t.bind(kBase, std::vector<PageSnapshot>{dev(3), dev(3)}), Error);
  EXPECT_EQ(t.mapped_pages(), 0u);
}

TEST(GpuPageTable, UnbindClearsOnlyTheRangeAndBumpsGeneration) {
  GpuPageTable t;
  std::vector<PageSnapshot> pages(1024, sys());
  pages[600] = dev(42);
  t.bind(kBase, pages);
  const auto g0 = t.generation();
  t.unbind(kBase + kPageSize, kBase + 1023 * kPageSize);
  EXPECT_GT(t.generation(), g0);
  EXPECT_EQ(t.mapped_pages(), 2u);
  EXPECT_EQ(t.lookup(kBase).kind, Pte::Kind::kSystem);
  EXPECT_EQ(t.lookup(kBase + 600 * kPageSize).kind, Pte::Kind::kNone);
  EXPECT_EQ(t.lookup(kBase + 1023 * kPageSize).kind, Pte::Kind::kSystem);
  EXPECT_FALSE(t.address_of(42)) << "unbind must drop the reverse mapping";
  EXPECT_THROW(t.unbind(kBase + 1, kBase + kPageSize), Error);
  t.unbind(0, ~std::uint64_t{0} & ~(kPageSize - 1));
  EXPECT_EQ(t.mapped_pages(), 0u);
}

TEST(GpuPageTable, ZapFramesClearsOnlyPtesOfThoseFrames) {
  GpuPageTable t;
  t.bind(kBase, std::vector<PageSnapshot>{dev(1), dev(2), sys(), dev(3)});
  const auto g0 = t.generation();
  const FrameId zap[] = {1, 3, 99};
  t.zap_frames(zap);
  EXPECT_GT(t.generation(), g0);
  EXPECT_EQ(t.lookup(kBase).kind, Pte::Kind::kNone);
  EXPECT_EQ(t.lookup(kBase + kPageSize).frame, 2u);
  EXPECT_EQ(t.lookup(kBase + 2 * kPageSize).kind, Pte::Kind::kSystem);
  EXPECT_EQ(t.lookup(kBase + 3 * kPageSize).kind, Pte::Kind::kNone);
  EXPECT_EQ(t.mapped_pages(), 2u);
}

TEST(GpuPageTable, RebindingAFrameElsewhereMovesIt) {
  GpuPageTable t;
  t.bind(kBase, std::vector<PageSnapshot>{dev(5)});
  const auto g0 = t.generation();
  t.bind(kBase + 8 * kPageSize, std::vector<PageSnapshot>{dev(5)});
  EXPECT_EQ(t.lookup(kBase).kind, Pte::Kind::kNone);
  EXPECT_EQ(t.lookup(kBase + 8 * kPageSize).frame, 5u);
  EXPECT_GT(t.generation(), g0);
  const FrameId f = 5;
  t.zap_frames(std::span<const FrameId>(&f, 1));
  EXPECT_EQ(t.mapped_pages(), 0u);
}

TEST(GpuPageTable, ReplacingADeviceMappingWithSystemUnlinksTheFrame) {
  GpuPageTable t;
  t.bind(kBase, std::vector<PageSnapshot>{dev(5)});
  const auto g0 = t.generation();
  t.bind(kBase, std::vector<PageSnapshot>{sys()});
  EXPECT_GT(t.generation(), g0);
  EXPECT_FALSE(t.address_of(5));
  const FrameId f = 5;
  t.zap_frames(std::span<const FrameId>(&f, 1));
  EXPECT_EQ(t.lookup(kBase).kind, Pte::Kind::kSystem);
  EXPECT_EQ(t.mapped_pages(), 1u);
}

TEST(GpuPageTable, WithLookupPassesThePteAndReturnsTheResult) {
  GpuPageTable t;
  t.bind(kBase, std::vector<PageSnapshot>{dev(9, false)});
  const FrameId got = t.with_lookup(kBase + 17, [](const Pte& p) { return p.frame; });
  EXPECT_EQ(got, 9u);
}

TEST(GpuPageTable, AccessedBitsAreSetByAccessAndClearedPerSpan) {
  GpuPageTable t;
  // 600 pages: across a 2 MiB directory and several 64-bit words of bits.
  const std::uint64_t start = kBase + (2u << 20) - 100 * kPageSize;
  std::vector<PageSnapshot> pages(600, sys());
  t.bind(start, pages);
  EXPECT_FALSE(t.test_and_clear_accessed(start, start + 600 * kPageSize));
  for (std::size_t i : {0u, 63u, 64u, 99u, 100u, 599u}) {
    const bool mapped = t.with_access(start + i * kPageSize, [](const Pte& p) { return p.kind != Pte::Kind::kNone; });
    EXPECT_TRUE(mapped);
  }
  EXPECT_FALSE(t.with_access(start + 600 * kPageSize, [](const Pte& p) { return p.kind != Pte::Kind::kNone; }));
  EXPECT_FALSE(t.test_and_clear_accessed(start + kPageSize, start + 63 * kPageSize));
  EXPECT_TRUE(t.test_and_clear_accessed(start + 63 * kPageSize, start + 64 * kPageSize));
  EXPECT_FALSE(t.test_and_clear_accessed(start + 63 * kPageSize, start + 64 * kPageSize));
  EXPECT_TRUE(t.test_and_clear_accessed(start + 64 * kPageSize, start + 65 * kPageSize));
  EXPECT_TRUE(t.test_and_clear_accessed(start + 90 * kPageSize, start + 101 * kPageSize)) << "99 and 100";
  EXPECT_FALSE(t.test_and_clear_accessed(start + 90 * kPageSize, start + 101 * kPageSize));
  EXPECT_TRUE(t.test_and_clear_accessed(start, start + 600 * kPageSize)) << "0 and 599";
  EXPECT_FALSE(t.test_and_clear_accessed(start, start + 600 * kPageSize));
  EXPECT_FALSE(t.test_and_clear_accessed(start, start)) << "empty span";
  // A cleared PTE loses its bit.
  t.with_access(start + 5 * kPageSize, [](const Pte&) { return 0; });
  t.unbind(start + 5 * kPageSize, start + 6 * kPageSize);
  t.bind(start + 5 * kPageSize, std::vector<PageSnapshot>{sys()});
  EXPECT_FALSE(t.test_and_clear_accessed(start, start + 600 * kPageSize));
}

}  // namespace
}  // namespace xesvm::sim
