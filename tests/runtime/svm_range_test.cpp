// RangeTree lookups, the chunk-choice rule and notifier windows.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory_resource>
#include <random>

#include "runtime/huge_page_arena.hpp"
#include "runtime/svm_range.hpp"
#include "test_util.hpp"

namespace xesvm::test {
namespace {

constexpr std::uint64_t K4 = 4u << 10, K64 = 64u << 10, M2 = 2u << 20;
constexpr std::uint64_t kBase = 0x40000000;  // 1 GiB: aligned to every chunk and window

RangePtr make(OwnerId id, std::uint64_t start, std::size_t size) { return std::make_shared<Range>(id, start, size); }

using Chunk = std::optional<std::pair<std::uint64_t, std::size_t>>;
Chunk chunk(std::uint64_t s, std::size_t c) { return std::make_pair(s, c); }

// The arena under the ranges' pool: memory aligned as asked, disjoint,
// writable, and a whole tree of ranges and index blocks built on it keeps
// its lookups.
TEST(HugePageArena, PoolOnItHoldsARangeTreeWithAlignedDisjointMemory) {
  HugePageArena arena;
  std::pmr::synchronized_pool_resource pool(std::pmr::pool_options{0, 8192}, &arena);
  std::vector<std::pair<std::uintptr_t, std::size_t>> got;
  for (std::size_t size : {24u, 300u, 4104u, 8192u, 3u << 20}) {
    for (int i = 0; i < 64; ++i) {
      void* p = pool.allocate(size, 64);
      ASSERT_EQ(reinterpret_cast<std::uintptr_t>(p) % 64, 0u);
      std::memset(p, 0xa5, size);
      got.emplace_back(reinterpret_cast<std::uintptr_t>(p), size);
    }
  }
  std::sort(got.begin(), got.end());
  for (std::size_t i = 1; i < got.size(); ++i) {
    EXPECT_LE(got[i - 1].first + got[i - 1].second, got[i].first) << "overlapping allocations";
  }
  {
    RangeTree t(&pool);
    std::vector<RangePtr> all;
    for (std::uint64_t i = 0; i < 2000; ++i) {
      auto r =
          std::allocate_shared<Range>(std::pmr::polymorphic_allocator<Range>(&pool), i + 1, kBase + i * 2 * K4, K4);
      t.insert(r);
      all.push_back(r);
    }
    for (const RangePtr& r : all) EXPECT_EQ(t.find(r->start + 100).get(), r.get());
    for (std::size_t i = 0; i < all.size(); i += 2) EXPECT_TRUE(t.erase(*all[i]));
    for (std::size_t i = 0; i < all.size(); ++i) {
      EXPECT_EQ(t.find(all[i]->start).get(), i % 2 ? all[i].get() : nullptr);
    }
  }
}

TEST(RangeTree, FindHonoursInclusiveStartAndExclusiveEnd) {
  RangeTree t;
  EXPECT_EQ(t.find(kBase), nullptr);
  auto a = make(1, kBase, M2);
  auto b = make(2, kBase + M2 + K64, K64);
  t.insert(a);
  t.insert(b);
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(t.find(kBase - 1), nullptr);
  EXPECT_EQ(t.find(kBase), a);
  EXPECT_EQ(t.find(kBase + M2 - 1), a);
  EXPECT_EQ(t.find(kBase + M2), nullptr) << "the gap between a and b";
  EXPECT_EQ(t.find(kBase + M2 + K64 - 1), nullptr);
  EXPECT_EQ(t.find(kBase + M2 + K64), b);
  EXPECT_EQ(t.find(kBase + M2 + 2 * K64 - 1), b);
  EXPECT_EQ(t.find(kBase + M2 + 2 * K64), nullptr);
  EXPECT_EQ(t.find(~std::uint64_t{0}), nullptr);
}

TEST(RangeTree, OverlappingReturnsEveryTouchedRangeInAddressOrder) {
  RangeTree t;
  std::vector<RangePtr> rs;
  for (int i = 0; i < 8; ++i) {
    rs.push_back(make(i + 1, kBase + i * K64 * 2, K64));  // 64K ranges with 64K gaps
    t.insert(rs.back());
  }
  // A span that starts inside range 1 and ends inside range 3.
  auto v = t.overlapping(kBase + 2 * K64 + K4, kBase + 6 * K64 + K4);
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0], rs[1]);
  EXPECT_EQ(v[1], rs[2]);
  EXPECT_EQ(v[2], rs[3]);
  // End is exclusive, start of a gap touches nothing before it.
  EXPECT_TRUE(t.overlapping(kBase + K64, kBase + 2 * K64).empty());
  EXPECT_EQ(t.overlapping(kBase + K64, kBase + 2 * K64 + 1).size(), 1u);
  EXPECT_EQ(t.overlapping(kBase + K64 - 1, kBase + K64).size(), 1u);
  EXPECT_TRUE(t.overlapping(kBase + K64, kBase + K64).empty());
  EXPECT_EQ(t.overlapping(0, ~std::uint64_t{0}).size(), 8u);
}

// A span of a few pages inside one 2 MiB block is answered from the block
// index; every answer must be the tree walk's: the ranges it touches, in
// address order, also for unaligned spans and after erases.
TEST(RangeTree, OverlappingOfAFewPagesAgreesWithTheTreeWalk) {
  RangeTree t;
  constexpr std::uint64_t base = 1ull << 32;
  std::mt19937_64 rng(7);
  OwnerId id = 1;
  std::vector<RangePtr> all;
  // Mixed 64 KiB and 4 KiB ranges over four blocks, with holes.
  for (std::uint64_t a = base; a < base + (8u << 20);) {
    const bool big = (a % (64u << 10)) == 0 && rng() % 2;
    const std::size_t size = big ? 64u << 10 : 4096;
    if (rng() % 3) {
      all.push_back(std::make_shared<Range>(id++, a, size));
      t.insert(all.back());
    }
    a += size;
  }
  for (std::size_t k = 0; k < all.size(); k += 5) t.erase(*all[k]);
  auto brute = [&](std::uint64_t s, std::uint64_t e) {
    std::vector<RangePtr> out;
    for (const RangePtr& r : t.all()) {
      if (r->start < e && s < r->end) out.push_back(r);
    }
    return out;
  };
  for (int i = 0; i < 20000; ++i) {
    const std::uint64_t s = base + rng() % (8u << 20);
    const std::uint64_t e = s + 1 + rng() % (20 * 4096);
    ASSERT_EQ(t.overlapping(s, e), brute(s, e)) << std::hex << s << "-" << e;
  }
}

TEST(RangeTree, EraseRemovesOnlyTheSameRangeObject) {
  RangeTree t;
  auto a = make(1, kBase, M2);
  t.insert(a);
  Range impostor(99, kBase, M2);  // same start and size, another object
  EXPECT_FALSE(t.erase(impostor));
  EXPECT_EQ(t.find(kBase), a);
  EXPECT_TRUE(t.erase(*a));
  EXPECT_FALSE(t.erase(*a)) << "erasing twice";
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(t.find(kBase), nullptr);
  EXPECT_TRUE(t.all().empty());
}

TEST(RangeTree, ChoosesTwoMegabytesWhenAlignedBlockFits) {
  RangeTree t;
  EXPECT_EQ(t.choose_chunk(kBase + M2 + 12345, kBase, kBase + 4 * M2, M2), chunk(kBase + M2, M2));
  EXPECT_EQ(t.choose_chunk(kBase, kBase, kBase + M2, M2), chunk(kBase, M2)) << "exactly one 2 MiB mirror";
  EXPECT_EQ(t.choose_chunk(kBase + M2 - 1, kBase, kBase + M2, M2), chunk(kBase, M2));
}

TEST(RangeTree, ShrinksTo64KOr4KNearMirrorEdges) {
  RangeTree t;
  const std::uint64_t lo = kBase + K4, hi = kBase + 2 * M2 - K4;  // one page short at both ends
  // Low edge: the first page has only its own 4 KiB block inside.
  EXPECT_EQ(t.choose_chunk(lo + 100, lo, hi, M2), chunk(lo, K4));
  // The second 64 KiB block lies inside: 64 KiB.
  EXPECT_EQ(t.choose_chunk(kBase + K64 + 10, lo, hi, M2), chunk(kBase + K64, K64));
  // High edge: the last 64 KiB block sticks out by one page: 4 KiB.
  EXPECT_EQ(t.choose_chunk(hi - 1, lo, hi, M2), chunk(hi - K4, K4));
  EXPECT_EQ(t.choose_chunk(kBase + 2 * M2 - K64, lo, hi, M2), chunk(kBase + 2 * M2 - K64, K4))
      << "the first page of the last, partial 64 KiB block";
  EXPECT_EQ(t.choose_chunk(kBase + 2 * M2 - K64 - 1, lo, hi, M2), chunk(kBase + 2 * M2 - 2 * K64, K64));
  // A mirror smaller than 64 KiB only ever gives 4 KiB.
  EXPECT_EQ(t.choose_chunk(kBase + 3 * K4, kBase, kBase + 5 * K4, M2), chunk(kBase + 3 * K4, K4));
}

TEST(RangeTree, NeverOverlapsAnExistingRange) {
  RangeTree t;
  const std::uint64_t lo = kBase, hi = kBase + 2 * M2;
  auto r = make(1, kBase + M2 + K64, K4);  // one 4 KiB range in the second 2 MiB block
  t.insert(r);
  EXPECT_EQ(t.choose_chunk(kBase + 10, lo, hi, M2), chunk(kBase, M2)) << "first block is free";
  EXPECT_EQ(t.choose_chunk(kBase + M2 + 10, lo, hi, M2), chunk(kBase + M2, K64))
      << "2 MiB would overlap the 4 KiB range";
  EXPECT_EQ(t.choose_chunk(kBase + M2 + K64 + 2 * K4, lo, hi, M2), chunk(kBase + M2 + K64 + 2 * K4, K4))
      << "its 64 KiB block holds the range";
  EXPECT_EQ(t.choose_chunk(kBase + M2 + K64 + 5, lo, hi, M2), std::nullopt) << "inside the range itself";
}

TEST(RangeTree, ReturnsNulloptOutsideTheMirror) {
  RangeTree t;
  EXPECT_EQ(t.choose_chunk(kBase - 1, kBase, kBase + M2, M2), std::nullopt);
  EXPECT_EQ(t.choose_chunk(kBase + M2, kBase, kBase + M2, M2), std::nullopt) << "end is exclusive";
  EXPECT_EQ(t.choose_chunk(0, kBase, kBase + M2, M2), std::nullopt);
}

TEST(RangeTree, ChunkNeverCrossesANotifierWindow) {
  RangeTree t;
  // A window smaller than a chunk size caps the chunk at the window.
  EXPECT_EQ(t.choose_chunk(kBase + 100, kBase, kBase + 4 * M2, K64), chunk(kBase, K64));
  EXPECT_EQ(t.choose_chunk(kBase + 100, kBase, kBase + 4 * M2, K4), chunk(kBase, K4));
  // 2 MiB windows over a mirror that starts and ends mid-window.
  const std::uint64_t lo = kBase + M2 / 2, hi = kBase + 3 * M2 + M2 / 2;
  EXPECT_EQ(t.choose_chunk(kBase + M2 - 1, lo, hi, M2), chunk(kBase + M2 - K64, K64));
  EXPECT_EQ(t.choose_chunk(kBase + M2, lo, hi, M2), chunk(kBase + M2, M2));
}

// Faults at random addresses fill a mirror with ranges; every range obeys
// every rule and is the largest size that obeys them.
TEST(RangeTree, RandomFaultsTileTheMirrorWithMaximalLegalChunks) {
  const std::size_t window = M2;
  const std::uint64_t lo = kBase + 3 * K4 + K64, hi = kBase + 5 * M2 + 7 * K4;
  std::mt19937_64 rng(42);
  RangeTree t;
  OwnerId id = 1;
  for (int i = 0; i < 4000; ++i) {
    const std::uint64_t addr = lo + rng() % (hi - lo);
    auto c = t.choose_chunk(addr, lo, hi, window);
    if (t.find(addr)) {
      EXPECT_EQ(c, std::nullopt);
      continue;
    }
    ASSERT_TRUE(c.has_value()) << std::hex << addr;
    const auto [s, size] = *c;
    const std::uint64_t e = s + size;
    ASSERT_EQ(s % size, 0u);
    ASSERT_TRUE(s <= addr && addr < e);
    ASSERT_TRUE(lo <= s && e <= hi);
    ASSERT_EQ(s / window, (e - 1) / window) << "crosses a window";
    ASSERT_TRUE(t.overlapping(s, e).empty());
    // Maximal: the next larger size breaks a rule.
    for (std::size_t big : kChunkSizes) {
      if (big <= size) break;
      const std::uint64_t bs = addr & ~(big - 1), be = bs + big;
      const bool legal = bs >= lo && be <= hi && bs / window == (be - 1) / window && t.overlapping(bs, be).empty();
      ASSERT_FALSE(legal) << "a " << big << "-byte chunk was possible at " << std::hex << addr;
    }
    t.insert(make(id++, s, size));
  }
  // Every page now belongs to exactly one range.
  std::uint64_t covered = 0;
  std::uint64_t prev_end = 0;
  for (const RangePtr& r : t.all()) {
    EXPECT_GE(r->start, prev_end);
    prev_end = r->end;
    covered += r->size();
  }
  EXPECT_LE(covered, hi - lo);
}

TEST(NotifierWindows, BumpMovesOnlyTheWindowsItTouches) {
  NotifierWindows w(M2);
  EXPECT_EQ(w.window_size(), M2);
  EXPECT_EQ(w.seq(kBase), 0u);
  w.bump(kBase + K4, kBase + 2 * K4);
  EXPECT_EQ(w.seq(kBase), 1u);
  EXPECT_EQ(w.seq(kBase + M2 - 1), 1u);
  EXPECT_EQ(w.seq(kBase + M2), 0u);
  EXPECT_EQ(w.seq(kBase - 1), 0u);
  // Across three windows.
  w.bump(kBase + M2 - K4, kBase + 3 * M2 + K4);
  EXPECT_EQ(w.seq(kBase), 2u);
  EXPECT_EQ(w.seq(kBase + M2), 1u);
  EXPECT_EQ(w.seq(kBase + 2 * M2), 1u);
  EXPECT_EQ(w.seq(kBase + 3 * M2), 1u);
  EXPECT_EQ(w.seq(kBase + 4 * M2), 0u);
  // End is exclusive: ending on a window boundary does not bump the next.
  w.bump(kBase, kBase + M2);
  EXPECT_EQ(w.seq(kBase), 3u);
  EXPECT_EQ(w.seq(kBase + M2), 1u);
  // An empty span bumps nothing.
  w.bump(kBase, kBase);
  w.bump(kBase + M2, kBase);
  EXPECT_EQ(w.seq(kBase), 3u);
  EXPECT_EQ(w.window_of(kBase + M2 + 5), kBase + M2);
}

TEST(NotifierWindows, BumpAtTheTopOfTheAddressSpaceTerminates) {
  NotifierWindows w(M2);
  const std::uint64_t top = ~std::uint64_t{0} & ~(M2 - 1);
  w.bump(top, ~std::uint64_t{0});
  EXPECT_EQ(w.seq(top), 1u);
  EXPECT_EQ(w.seq(0), 0u);
}

TEST(NotifierWindows, InvalidWindowSizeThrowsInvalidArgument) {
  for (std::size_t bad : {std::size_t{0}, std::size_t{4096}, std::size_t{1u << 20}, std::size_t{3u << 20},
                          std::size_t{(2u << 20) + 4096}}) {
    try {
      NotifierWindows w(bad);
      ADD_FAILURE() << "window " << bad << " accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Error::Code::kInvalidArgument);
      EXPECT_NE(std::string(e.what()).find("notifier window"), std::string::npos) << e.what();
    }
  }
  EXPECT_NO_THROW(NotifierWindows(2u << 20));
  EXPECT_NO_THROW(NotifierWindows(512u << 20));
  // Through the Runtime: the option is checked at open.
  RuntimeOptions o;
  o.notifier_window = 1u << 20;
  try {
    Runtime rt("sim:vram=16M,workers=1", o);
    ADD_FAILURE() << "Runtime accepted a 1 MiB notifier window";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Error::Code::kInvalidArgument);
  }
}

}  // namespace
}  // namespace xesvm::test
