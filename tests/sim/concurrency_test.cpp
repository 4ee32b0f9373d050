// Thread-safety tests (label "concurrency"; they also run under TSan).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "tests/sim/sim_test_support.hpp"

namespace xesvm::sim {
namespace {

using test::BindSystemOnFault;
using test::page_of;
using test::PageBuffer;
using test::SimRig;

TEST(FramePoolConcurrency, TrylockIsExclusiveUnderContention) {
  FramePool pool(2u << 20);
  constexpr FrameId kFrames = 4;
  constexpr int kRounds = 20000;
  std::atomic<int> holders[kFrames] = {};
  std::atomic<int> overlaps{0};
  std::atomic<long> acquired{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRounds; ++i) {
        const FrameId f = static_cast<FrameId>((i + t) % kFrames);
        if (!pool.trylock(f)) continue;
        if (holders[f].fetch_add(1) != 0) overlaps.fetch_add(1);
        acquired.fetch_add(1);
        holders[f].fetch_sub(1);
        pool.unlock(f);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_GT(acquired.load(), 0);
  for (FrameId f = 0; f < kFrames; ++f) EXPECT_FALSE(pool.is_locked(f));
}

TEST(FramePoolConcurrency, ParallelAllocAndFreeKeepFramesDisjointAndMergeBack) {
  FramePool pool(8u << 20);
  std::mutex seen_mu;
  std::set<FrameId> live;
  std::atomic<int> conflicts{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      std::vector<std::vector<FrameId>> mine;
      for (int i = 0; i < 400; ++i) {
        const std::size_t chunk = kChunkSizes[rng() % 3];
        const std::size_t n = 1 + rng() % 3;
        if (auto got = pool.alloc(n * chunk, chunk, static_cast<OwnerId>(t + 1))) {
          std::lock_guard lk(seen_mu);
          for (FrameId f : *got) {
            if (!live.insert(f).second) conflicts.fetch_add(1);
          }
          mine.push_back(std::move(*got));
        }
        if (!mine.empty() && (rng() % 2 == 0 || mine.size() > 3)) {
          {
            std::lock_guard lk(seen_mu);
            for (FrameId f : mine.back()) live.erase(f);
          }
          pool.free(mine.back());
          mine.pop_back();
        }
      }
      for (auto& v : mine) {
        {
          std::lock_guard lk(seen_mu);
          for (FrameId f : v) live.erase(f);
        }
        pool.free(v);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(conflicts.load(), 0);
  EXPECT_EQ(pool.use().used, 0u);
  EXPECT_TRUE(pool.alloc(8u << 20, 2u << 20, 1)) << "free frames did not merge back";
}

TEST(CostModelConcurrency, ChargesFromManyThreadsSum) {
  CostModel m;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        m.charge_migration(Migration::kToRam, 13, 1);
        m.charge_access(400, 0, 0);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(m.link_bytes(), 4u * 10000 * 13);
  EXPECT_EQ(m.local_bytes(), 4u * 10000 * 400);
  // Per iteration: 1 ns + 1500 ns + 1 ns.
  EXPECT_EQ(m.modelled_ns(), 4u * 10000 * 1502);
}

TEST(SimEngineConcurrency, AtomicsFromAllWorkersSumOnDeviceAndSystemPages) {
  SimRig rig(4);
  BindSystemOnFault handler(rig.table);
  rig.engine.set_fault_handler(&handler);
  auto frame = rig.pool.alloc(kPageSize, kPageSize, 1);
  ASSERT_TRUE(frame);
  const std::uint64_t dev_va = 0x300000000000ull;
  rig.table.bind(dev_va, std::vector<PageSnapshot>{{PagePlace::kDevice, true, (*frame)[0]}});
  PageBuffer mem(1);
  constexpr std::uint64_t kItems = 20000;
  std::atomic<int> distinct_old{0};
  rig.engine.launch(kItems, [&](const WorkItem& wi, DeviceAccessor& a) {
    a.atomic_add(dev_va, 1);
    a.atomic_add64(dev_va + 8, wi.global_id);
    a.atomic_add(mem.addr(), 1);
    if (a.atomic_add64(mem.addr() + 8, 1) == kItems - 1) distinct_old.fetch_add(1);
  });
  std::uint32_t d32, s32;
  std::uint64_t d64, s64;
  std::memcpy(&d32, rig.pool.data((*frame)[0]), 4);
  std::memcpy(&d64, rig.pool.data((*frame)[0]) + 8, 8);
  std::memcpy(&s32, mem.bytes(), 4);
  std::memcpy(&s64, mem.bytes() + 8, 8);
  EXPECT_EQ(d32, kItems);
  EXPECT_EQ(d64, kItems * (kItems - 1) / 2);
  EXPECT_EQ(s32, kItems);
  EXPECT_EQ(s64, kItems);
  EXPECT_EQ(distinct_old.load(), 1) << "fetch_add must return each old value once";
}

TEST(SimEngineConcurrency, LaunchesFromSeveralThreadsAllComplete) {
  SimRig rig(2);
  std::atomic<std::uint64_t> total{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        rig.engine.launch(100, [&](const WorkItem&, DeviceAccessor&) { total.fetch_add(1); });
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(total.load(), 3u * 50 * 100);
}

// A racer keeps zapping a device frame and unbinding a system page while a
// kernel reads both; the fault handler maps them again. Reads must always see
// the right bytes, and a zap must never overlap a frame copy (TSan).
TEST(SimEngineConcurrency, ReadsStayCorrectWhileMappingsAreTornDown) {
  SimRig rig(2);
  auto frame = rig.pool.alloc(kPageSize, kPageSize, 1);
  ASSERT_TRUE(frame);
  std::memset(rig.pool.data((*frame)[0]), 0x42, kPageSize);
  const std::uint64_t dev_va = 0x400000000000ull;
  PageBuffer mem(1);
  std::memset(mem.bytes(), 0x17, kPageSize);

  struct Remap : GpuFaultHandler {
    GpuPageTable* table;
    std::uint64_t dev_va;
    FrameId frame;
    bool handle_gpu_fault(std::uint64_t addr, Access) override {
      PageSnapshot snap{PagePlace::kSystem, false, kNoFrame};
      if (addr == dev_va) snap = PageSnapshot{PagePlace::kDevice, false, frame};
      table->bind(addr, std::span<const PageSnapshot>(&snap, 1));
      return true;
    }
  } remap;
  remap.table = &rig.table;
  remap.dev_va = dev_va;
  remap.frame = (*frame)[0];
  rig.engine.set_fault_handler(&remap);

  std::atomic<bool> stop{false};
  std::thread racer([&] {
    const FrameId f = (*frame)[0];
    while (!stop.load()) {
      rig.table.zap_frames(std::span<const FrameId>(&f, 1));
      rig.table.unbind(mem.addr(), mem.addr() + kPageSize);
      std::this_thread::yield();
    }
  });
  std::atomic<int> wrong{0};
  rig.engine.launch(4000, [&](const WorkItem& wi, DeviceAccessor& a) {
    unsigned char buf[64];
    const std::uint64_t va = (wi.global_id % 2 == 0 ? dev_va : mem.addr()) + (wi.global_id % 60) * 64;
    const unsigned char want = wi.global_id % 2 == 0 ? 0x42 : 0x17;
    a.read(va, buf, sizeof buf);
    for (unsigned char b : buf) {
      if (b != want) wrong.fetch_add(1);
    }
  });
  stop.store(true);
  racer.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(rig.engine.faults(), 0u);
}

}  // namespace
}  // namespace xesvm::sim
