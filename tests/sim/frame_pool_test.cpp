#include "runtime/backends/sim/frame_pool.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace xesvm::sim {
namespace {

constexpr std::size_t k2M = 2u << 20;
constexpr std::size_t k64K = 64u << 10;
constexpr std::size_t k4K = 4u << 10;

Error::Code code_of(auto&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.code();
  }
  return Error::Code{0};
}

TEST(FramePool, RejectsSizeThatIsNotAMultipleOf2M) {
  EXPECT_EQ(code_of([] { FramePool p(0); }), Error::Code::kInvalidArgument);
  EXPECT_EQ(code_of([] { FramePool p(k2M + k4K); }), Error::Code::kInvalidArgument);
  FramePool ok(2 * k2M);
  EXPECT_EQ(ok.frame_count(), 2 * 512u);
}

TEST(FramePool, RejectsBadChunkSizeAndOwner) {
  FramePool p(k2M);
  EXPECT_EQ(code_of([&] { (void)p.alloc(k4K * 3, 3 * k4K, 1); }), Error::Code::kInvalidArgument);
  EXPECT_EQ(code_of([&] { (void)p.alloc(k4K + 1, k4K, 1); }), Error::Code::kInvalidArgument);
  EXPECT_EQ(code_of([&] { (void)p.alloc(0, k4K, 1); }), Error::Code::kInvalidArgument);
  EXPECT_EQ(code_of([&] { (void)p.alloc(k64K, k4K * 16 * 2, 1); }), Error::Code::kInvalidArgument);
  EXPECT_EQ(code_of([&] { (void)p.alloc(k4K, k4K, kNoOwner); }), Error::Code::kInvalidArgument);
  EXPECT_EQ(p.use().used, 0u);
}

TEST(FramePool, TwoMegChunksAreNaturallyAlignedAndContiguous) {
  FramePool p(4 * k2M);
  // Fragment the first block so a naive allocator would straddle blocks.
  auto small = p.alloc(k4K, k4K, 7);
  ASSERT_TRUE(small);
  auto big = p.alloc(2 * k2M, k2M, 8);
  ASSERT_TRUE(big);
  ASSERT_EQ(big->size(), 1024u);
  for (std::size_t c = 0; c < 2; ++c) {
    const FrameId first = (*big)[c * 512];
    EXPECT_EQ(first % 512, 0u);
    for (std::size_t i = 0; i < 512; ++i) EXPECT_EQ((*big)[c * 512 + i], first + i);
  }
  EXPECT_TRUE(std::is_sorted(big->begin(), big->end()));
  EXPECT_EQ(std::find(big->begin(), big->end(), (*small)[0]), big->end());
}

TEST(FramePool, SixtyFourKChunksAreNaturallyAligned) {
  FramePool p(k2M);
  auto a = p.alloc(k4K, k4K, 1);
  auto b = p.alloc(3 * k64K, k64K, 2);
  ASSERT_TRUE(a && b);
  ASSERT_EQ(b->size(), 48u);
  for (std::size_t c = 0; c < 3; ++c) {
    const FrameId first = (*b)[c * 16];
    EXPECT_EQ(first % 16, 0u);
    for (std::size_t i = 0; i < 16; ++i) EXPECT_EQ((*b)[c * 16 + i], first + i);
  }
  EXPECT_TRUE(std::is_sorted(b->begin(), b->end()));
}

TEST(FramePool, SplitAndMergeRestoreA2MBlock) {
  FramePool p(2 * k2M);
  std::vector<FrameId> all;
  for (std::size_t i = 0; i < 1024; ++i) {
    auto f = p.alloc(k4K, k4K, 1 + i % 3);
    ASSERT_TRUE(f) << i;
    all.push_back((*f)[0]);
  }
  EXPECT_FALSE(p.alloc(k4K, k4K, 1));
  EXPECT_FALSE(p.alloc(k2M, k2M, 1));
  // Free in a scrambled order, one frame at a time.
  std::vector<FrameId> order = all;
  std::reverse(order.begin() + 100, order.end());
  for (FrameId f : order) p.free(std::span<const FrameId>(&f, 1));
  EXPECT_EQ(p.use().used, 0u);
  auto big = p.alloc(2 * k2M, k2M, 9);
  ASSERT_TRUE(big) << "freed 4K frames did not merge back into 2M blocks";
  EXPECT_EQ(big->size(), 1024u);
}

TEST(FramePool, ExhaustionIsAllOrNothing) {
  FramePool p(2 * k2M);
  auto a = p.alloc(k2M, k2M, 1);
  auto b = p.alloc(k64K, k64K, 2);  // second block split now
  ASSERT_TRUE(a && b);
  // One 2M block is partly used: a 2M request cannot be met.
  EXPECT_FALSE(p.alloc(k2M, k2M, 3));
  // 31 64K chunks remain; ask for 32.
  EXPECT_FALSE(p.alloc(32 * k64K, k64K, 3));
  EXPECT_EQ(p.use().used, k2M + k64K);
  EXPECT_TRUE(p.frames_of(3).empty());
  auto rest = p.alloc(31 * k64K, k64K, 3);
  ASSERT_TRUE(rest);
  EXPECT_EQ(p.use().used, 2 * k2M);
  EXPECT_FALSE(p.alloc(k4K, k4K, 4));
}

TEST(FramePool, InjectedFailuresReturnNulloptThenRecover) {
  FramePool p(k2M);
  p.inject_alloc_failures(2);
  EXPECT_FALSE(p.alloc(k4K, k4K, 1));
  EXPECT_FALSE(p.alloc(k4K, k4K, 1));
  EXPECT_TRUE(p.alloc(k4K, k4K, 1));
  EXPECT_EQ(p.use().used, k4K);
}

TEST(FramePool, OwnerIndexFollowsAllocSetOwnerAndFree) {
  FramePool p(k2M);
  auto a = p.alloc(k64K, k64K, 11);
  auto b = p.alloc(2 * k4K, k4K, 12);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(p.frames_of(11), *a);
  EXPECT_EQ(p.frames_of(12), *b);
  EXPECT_EQ(p.owner((*a)[3]), 11u);
  p.set_owner((*a)[3], 12);
  EXPECT_EQ(p.owner((*a)[3]), 12u);
  auto of12 = p.frames_of(12);
  EXPECT_TRUE(std::is_sorted(of12.begin(), of12.end()));
  EXPECT_EQ(of12.size(), 3u);
  EXPECT_EQ(p.frames_of(11).size(), 15u);
  p.free(*b);
  EXPECT_EQ(p.frames_of(12), std::vector<FrameId>{(*a)[3]});
  EXPECT_EQ(p.owner((*b)[0]), kNoOwner);
  EXPECT_TRUE(p.frames_of(99).empty());
  EXPECT_EQ(code_of([&] { p.set_owner((*b)[0], 5); }), Error::Code::kInvalidArgument);
}

TEST(FramePool, DoubleFreeThrowsAndFreesNothing) {
  FramePool p(k2M);
  auto a = p.alloc(2 * k4K, k4K, 1);
  ASSERT_TRUE(a);
  const FrameId first = (*a)[0];
  p.free(std::span<const FrameId>(&first, 1));
  EXPECT_EQ(code_of([&] { p.free(*a); }), Error::Code::kInvalidArgument);
  EXPECT_EQ(p.owner((*a)[1]), 1u) << "a failed free must free nothing";
  EXPECT_EQ(p.use().used, k4K);
  const FrameId twice[] = {(*a)[1], (*a)[1]};
  EXPECT_EQ(code_of([&] { p.free(twice); }), Error::Code::kInvalidArgument);
  EXPECT_EQ(p.use().used, k4K);
}

TEST(FramePool, FreeOfALockedFrameThrows) {
  FramePool p(k2M);
  auto a = p.alloc(k4K, k4K, 1);
  ASSERT_TRUE(a);
  ASSERT_TRUE(p.trylock((*a)[0]));
  EXPECT_EQ(code_of([&] { p.free(*a); }), Error::Code::kInvalidArgument);
  p.unlock((*a)[0]);
  p.free(*a);
  EXPECT_EQ(p.use().used, 0u);
}

TEST(FramePool, TrylockIsExclusiveAndUnlockOfUnlockedThrows) {
  FramePool p(k2M);
  EXPECT_TRUE(p.trylock(5));
  EXPECT_TRUE(p.is_locked(5));
  EXPECT_FALSE(p.trylock(5));
  p.unlock(5);
  EXPECT_FALSE(p.is_locked(5));
  EXPECT_EQ(code_of([&] { p.unlock(5); }), Error::Code::kInvalidArgument);
  EXPECT_EQ(code_of([&] { (void)p.trylock(512); }), Error::Code::kInvalidArgument);
}

TEST(FramePool, HighWaterKeepsThePeak) {
  FramePool p(2 * k2M);
  auto a = p.alloc(k2M, k2M, 1);
  auto b = p.alloc(k64K, k64K, 2);
  ASSERT_TRUE(a && b);
  p.free(*a);
  auto u = p.use();
  EXPECT_EQ(u.total, 2 * k2M);
  EXPECT_EQ(u.used, k64K);
  EXPECT_EQ(u.high_water, k2M + k64K);
}

TEST(FramePool, FrameDataIsDistinctPerFrame) {
  FramePool p(k2M);
  std::memset(p.data(1), 0xab, kPageSize);
  EXPECT_EQ(p.data(0)[kPageSize - 1], std::byte{0});
  EXPECT_EQ(p.data(2)[0], std::byte{0});
  EXPECT_EQ(p.data(1)[kPageSize - 1], std::byte{0xab});
  EXPECT_EQ(p.data(1) - p.data(0), static_cast<std::ptrdiff_t>(kPageSize));
}

}  // namespace
}  // namespace xesvm::sim
