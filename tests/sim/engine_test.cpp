#include "runtime/backends/sim/engine.hpp"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "tests/sim/sim_test_support.hpp"

namespace xesvm::sim {
namespace {

using test::BindSystemOnFault;
using test::page_of;
using test::PageBuffer;
using test::RefuseFaults;
using test::SimRig;

TEST(SimEngine, RejectsZeroWorkers) {
  GpuPageTable t;
  FramePool p(2u << 20);
  CostModel c;
  EXPECT_THROW(SimEngine(t, p, c, 0), Error);
}

TEST(SimEngine, ZeroWorkItemsReturnAtOnceAndEmptyKernelThrows) {
  SimRig rig(2);
  int calls = 0;
  rig.engine.launch(0, [&](const WorkItem&, DeviceAccessor&) { ++calls; });
  EXPECT_EQ(calls, 0);
  try {
    rig.engine.launch(4, Kernel{});
    FAIL() << "an empty kernel must be rejected";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Error::Code::kInvalidArgument);
  }
}

TEST(SimEngine, KernelCopiesUnregisteredSystemMemoryByteExact) {
  SimRig rig(2);
  BindSystemOnFault handler(rig.table);
  rig.engine.set_fault_handler(&handler);
  std::vector<unsigned char> src(3 * kPageSize + 123);
  for (std::size_t i = 0; i < src.size(); ++i) src[i] = static_cast<unsigned char>(i * 31 + 7);
  std::vector<unsigned char> dst(src.size(), 0);
  constexpr std::size_t kPiece = 97;  // pieces straddle page boundaries
  const std::uint64_t items = (src.size() + kPiece - 1) / kPiece;
  rig.engine.launch(items, [&](const WorkItem& wi, DeviceAccessor& a) {
    const std::size_t off = wi.global_id * kPiece;
    const std::size_t n = std::min(kPiece, src.size() - off);
    unsigned char buf[kPiece];
    a.read(reinterpret_cast<std::uint64_t>(src.data() + off), buf, n);
    a.write(reinterpret_cast<std::uint64_t>(dst.data() + off), buf, n);
  });
  EXPECT_EQ(dst, src);
  EXPECT_GT(handler.calls.load(), 0);
  EXPECT_EQ(rig.engine.system_bytes(), 2 * src.size());
  EXPECT_EQ(rig.engine.device_bytes(), 0u);
  EXPECT_EQ(rig.cost.link_bytes(), 2 * src.size());
  EXPECT_EQ(rig.engine.faults(), static_cast<std::uint64_t>(handler.calls.load()));
}

TEST(SimEngine, KernelReadsAndWritesDeviceFramesByteExact) {
  SimRig rig(2);  // no fault handler: any fault would be fatal
  auto frames = rig.pool.alloc(2 * kPageSize, kPageSize, 1);
  ASSERT_TRUE(frames);
  // A GPU address range that the CPU never maps: only the frames back it.
  const std::uint64_t va = 0x100000000000ull;
  rig.table.bind(va, std::vector<PageSnapshot>{{PagePlace::kDevice, true, (*frames)[0]},
                                               {PagePlace::kDevice, true, (*frames)[1]}});
  rig.engine.launch(2 * kPageSize / 4, [&](const WorkItem& wi, DeviceAccessor& a) {
    const std::uint32_t v = static_cast<std::uint32_t>(wi.global_id * 2654435761u);
    a.store(reinterpret_cast<std::uint32_t*>(va + wi.global_id * 4), v);
  });
  for (std::size_t i = 0; i < 2 * kPageSize / 4; ++i) {
    std::uint32_t got;
    std::memcpy(&got, rig.pool.data((*frames)[i / 1024]) + (i % 1024) * 4, 4);
    ASSERT_EQ(got, static_cast<std::uint32_t>(i * 2654435761u)) << i;
  }
  std::vector<std::uint32_t> back(2 * kPageSize / 4);
  rig.engine.launch(1, [&](const WorkItem&, DeviceAccessor& a) { a.read(va, back.data(), back.size() * 4); });
  for (std::size_t i = 0; i < back.size(); ++i) {
    ASSERT_EQ(back[i], static_cast<std::uint32_t>(i * 2654435761u));
  }
  EXPECT_EQ(rig.engine.system_bytes(), 0u);
  EXPECT_EQ(rig.engine.device_bytes(), 2 * 2 * kPageSize);  // written, then read
  EXPECT_EQ(rig.cost.local_bytes(), 2 * 2 * kPageSize);
  EXPECT_EQ(rig.cost.link_bytes(), 0u);
}

// The engine sets the accessed bit of every PTE it accesses through (and
// of no other), which the runtime's CLOCK sweep reads and clears.
TEST(SimEngine, AccessesSetTheAccessedBitsOfThePtesUsed) {
  SimRig rig(2);
  auto frames = rig.pool.alloc(4 * kPageSize, kPageSize, 1);
  ASSERT_TRUE(frames);
  const std::uint64_t va = 0x100000000000ull;
  std::vector<PageSnapshot> snap;
  for (FrameId f : *frames) snap.push_back({PagePlace::kDevice, true, f});
  rig.table.bind(va, snap);
  AccessedBits* bits = rig.engine.accessed_bits();
  ASSERT_EQ(bits, &rig.table);
  EXPECT_FALSE(bits->test_and_clear_accessed(va, va + 4 * kPageSize)) << "a new PTE starts clear";
  rig.engine.launch(1, [&](const WorkItem&, DeviceAccessor& a) {
    std::uint32_t v = 0;
    a.read(va + 2 * kPageSize + 8, &v, sizeof v);
  });
  EXPECT_FALSE(bits->test_and_clear_accessed(va, va + 2 * kPageSize));
  EXPECT_FALSE(bits->test_and_clear_accessed(va + 3 * kPageSize, va + 4 * kPageSize));
  EXPECT_TRUE(bits->test_and_clear_accessed(va + 2 * kPageSize, va + 3 * kPageSize));
  EXPECT_FALSE(bits->test_and_clear_accessed(va, va + 4 * kPageSize)) << "the sweep cleared it";
  rig.engine.launch(4, [&](const WorkItem& wi, DeviceAccessor& a) {
    a.store(reinterpret_cast<std::uint32_t*>(va + wi.global_id * kPageSize), 1u);
  });
  EXPECT_TRUE(bits->test_and_clear_accessed(va, va + 4 * kPageSize));
  rig.table.unbind(va, va + 4 * kPageSize);
  rig.table.bind(va, snap);
  EXPECT_FALSE(bits->test_and_clear_accessed(va, va + 4 * kPageSize));
}

TEST(SimEngine, AccessSpanningADevicePageAndASystemPage) {
  SimRig rig(1);
  PageBuffer mem(2);
  auto frame = rig.pool.alloc(kPageSize, kPageSize, 1);
  ASSERT_TRUE(frame);
  std::memset(rig.pool.data((*frame)[0]), 0xd1, kPageSize);
  std::memset(mem.bytes() + kPageSize, 0x5a, kPageSize);
  rig.table.bind(mem.addr(), std::vector<PageSnapshot>{{PagePlace::kDevice, true, (*frame)[0]},
                                                       {PagePlace::kSystem, true, kNoFrame}});
  unsigned char got[16] = {};
  const unsigned char pattern[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  rig.engine.launch(1, [&](const WorkItem&, DeviceAccessor& a) {
    a.read(mem.addr() + kPageSize - 8, got, 16);
    a.write(mem.addr() + kPageSize - 4, pattern, 16);
  });
  for (int i = 0; i < 8; ++i) EXPECT_EQ(got[i], 0xd1);
  for (int i = 8; i < 16; ++i) EXPECT_EQ(got[i], 0x5a);
  // The first 4 bytes went to the frame, the next 12 to the CPU page.
  EXPECT_EQ(std::memcmp(rig.pool.data((*frame)[0]) + kPageSize - 4, pattern, 4), 0);
  EXPECT_EQ(std::memcmp(mem.bytes() + kPageSize, pattern + 4, 12), 0);
  EXPECT_EQ(mem.bytes()[kPageSize - 4], 0) << "the device page's CPU copy must be untouched";
  EXPECT_EQ(rig.engine.device_bytes(), 8u + 4u);
  EXPECT_EQ(rig.engine.system_bytes(), 8u + 12u);
}

TEST(SimEngine, UnresolvedFaultIsDeviceLostNamingTheAddress) {
  SimRig rig(2);
  RefuseFaults refuse;
  rig.engine.set_fault_handler(&refuse);
  const std::uint64_t bad = 0x123456789000ull + 0x40;
  try {
    rig.engine.launch(1, [&](const WorkItem&, DeviceAccessor& a) {
      std::uint32_t v;
      a.read(bad, &v, sizeof v);
    });
    FAIL() << "expected a GPU fault";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Error::Code::kDeviceLost);
    EXPECT_NE(std::string(e.what()).find("0x123456789040"), std::string::npos) << e.what();
  }
  EXPECT_EQ(refuse.calls.load(), 1);
  EXPECT_EQ(refuse.last_addr.load(), page_of(bad));
}

TEST(SimEngine, FaultWithoutHandlerIsDeviceLost) {
  SimRig rig(1);
  try {
    rig.engine.launch(1, [&](const WorkItem&, DeviceAccessor& a) { a.store(reinterpret_cast<int*>(0x5000), 1); });
    FAIL() << "expected a GPU fault";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Error::Code::kDeviceLost);
    EXPECT_NE(std::string(e.what()).find("0x5000"), std::string::npos) << e.what();
  }
}

TEST(SimEngine, WriteThroughReadOnlyPteFaultsForWrite) {
  SimRig rig(1);
  BindSystemOnFault handler(rig.table);  // binds writable
  rig.engine.set_fault_handler(&handler);
  PageBuffer mem(1);
  rig.table.bind(mem.addr(), std::vector<PageSnapshot>{{PagePlace::kSystem, false, kNoFrame}});
  rig.engine.launch(1, [&](const WorkItem&, DeviceAccessor& a) {
    (void)a.load(reinterpret_cast<const int*>(mem.addr()));
    a.store(reinterpret_cast<int*>(mem.addr()), 77);
  });
  EXPECT_EQ(handler.calls.load(), 1);
  EXPECT_EQ(handler.last_access.load(), Access::kWrite);
  int v;
  std::memcpy(&v, mem.bytes(), sizeof v);
  EXPECT_EQ(v, 77);
}

TEST(SimEngine, FaultRetriesAreBoundedWithBusy) {
  SimRig rig(1);
  struct NeverMaps : GpuFaultHandler {
    bool handle_gpu_fault(std::uint64_t, Access) override { return true; }
  } never;
  rig.engine.set_fault_handler(&never);
  try {
    rig.engine.launch(1, [](const WorkItem&, DeviceAccessor& a) {
      std::uint8_t b;
      a.read(0x7000, &b, 1);
    });
    FAIL() << "expected kBusy";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Error::Code::kBusy);
  }
  EXPECT_EQ(rig.engine.faults(), SimEngine::kMaxPageRetries);
}

TEST(SimEngine, AccessToMunmappedSystemPageIsAGpuFaultNotACrash) {
  SimRig rig(1);
  RefuseFaults refuse;
  rig.engine.set_fault_handler(&refuse);
  // Far below the kernel's mmap base, so no later mapping of this process
  // (sanitizer runtimes included) fills the hole left by munmap.
  void* hint = reinterpret_cast<void*>(0x7e9000000000ull);
  void* p = ::mmap(hint, kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (p == MAP_FAILED) {
    p = ::mmap(nullptr, kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  }
  ASSERT_NE(p, MAP_FAILED);
  std::memset(p, 0x11, kPageSize);
  const auto addr = reinterpret_cast<std::uint64_t>(p);
  rig.table.bind(addr, std::vector<PageSnapshot>{{PagePlace::kSystem, true, kNoFrame}});
  ASSERT_EQ(::munmap(p, kPageSize), 0);
  for (Access acc : {Access::kRead, Access::kWrite, Access::kAtomic}) {
    ASSERT_NE(::msync(p, kPageSize, MS_ASYNC), 0) << "the unmapped page was mapped again";
    try {
      rig.engine.launch(1, [&](const WorkItem&, DeviceAccessor& a) {
        std::uint32_t v = 1;
        if (acc == Access::kRead) a.read(addr, &v, sizeof v);
        if (acc == Access::kWrite) a.write(addr, &v, sizeof v);
        if (acc == Access::kAtomic) (void)a.atomic_add(addr, 1);
      });
      FAIL() << "expected a GPU fault";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Error::Code::kDeviceLost) << e.what();
    }
  }
  EXPECT_EQ(refuse.calls.load(), 3);
}

TEST(SimEngine, ExceptionInAWorkItemPropagatesAndStopsTheOthers) {
  SimRig rig(2);
  std::atomic<std::uint64_t> ran{0};
  constexpr std::uint64_t kItems = 2'000'000;
  try {
    rig.engine.launch(kItems, [&](const WorkItem& wi, DeviceAccessor&) {
      if (wi.global_id == 0) throw std::runtime_error("work item 0 failed");
      ran.fetch_add(1, std::memory_order_relaxed);
    });
    FAIL() << "expected the work item's exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "work item 0 failed");
  }
  EXPECT_LT(ran.load(), kItems - 1) << "the other workers did not stop early";
  // The engine is usable afterwards.
  std::atomic<int> n{0};
  rig.engine.launch(10, [&](const WorkItem&, DeviceAccessor&) { n.fetch_add(1); });
  EXPECT_EQ(n.load(), 10);
}

TEST(SimEngine, EachWorkerGetsOneContiguousSlice) {
  SimRig rig(3);
  constexpr std::uint64_t kItems = 1000;
  std::vector<std::uint32_t> worker_of(kItems, 99);
  rig.engine.launch(kItems, [&](const WorkItem& wi, DeviceAccessor&) {
    ASSERT_EQ(wi.global_size, kItems);
    worker_of[wi.global_id] = wi.worker;
  });
  // Worker ids never decrease along the index space: w0 | w1 | w2.
  for (std::uint64_t i = 1; i < kItems; ++i) ASSERT_LE(worker_of[i - 1], worker_of[i]) << i;
  EXPECT_EQ(worker_of.front(), 0u);
  EXPECT_EQ(worker_of.back(), 2u);
  EXPECT_EQ(std::count(worker_of.begin(), worker_of.end(), 1u), 333);
}

TEST(SimEngine, LaunchFromInsideAKernelIsRejected) {
  SimRig rig(1);
  try {
    rig.engine.launch(
        1, [&](const WorkItem&, DeviceAccessor&) { rig.engine.launch(1, [](const WorkItem&, DeviceAccessor&) {}); });
    FAIL() << "expected a rejected nested launch";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Error::Code::kInvalidArgument);
  }
}

TEST(SimEngine, MisalignedAtomicIsRejected) {
  SimRig rig(1);
  auto frame = rig.pool.alloc(kPageSize, kPageSize, 1);
  ASSERT_TRUE(frame);
  const std::uint64_t va = 0x200000000000ull;
  rig.table.bind(va, std::vector<PageSnapshot>{{PagePlace::kDevice, true, (*frame)[0]}});
  for (std::uint64_t off : {2ull, 4ull}) {
    try {
      rig.engine.launch(1, [&](const WorkItem&, DeviceAccessor& a) {
        if (off == 2)
          (void)a.atomic_add(va + off, 1);
        else
          (void)a.atomic_add64(va + off, 1);
      });
      FAIL() << "expected a rejected misaligned atomic at +" << off;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Error::Code::kInvalidArgument);
    }
  }
}

TEST(SimEngine, WithPageWritesBackOnDeviceAndSystemPages) {
  SimRig rig(1);
  PageBuffer mem(2);
  auto frame = rig.pool.alloc(kPageSize, kPageSize, 1);
  ASSERT_TRUE(frame);
  rig.table.bind(mem.addr(), std::vector<PageSnapshot>{{PagePlace::kDevice, true, (*frame)[0]},
                                                       {PagePlace::kSystem, true, kNoFrame}});
  std::memset(mem.bytes() + kPageSize + 100, 3, 50);
  rig.engine.launch(1, [&](const WorkItem&, DeviceAccessor& a) {
    for (std::uint64_t base : {mem.addr(), mem.addr() + kPageSize}) {
      a.with_page(base + 100, 50, Access::kWrite, [](std::span<std::byte> s) {
        for (auto& b : s) b = static_cast<std::byte>(static_cast<unsigned>(b) + 1);
      });
    }
    int sum = 0;
    a.with_page(mem.addr() + kPageSize + 100, 50, Access::kRead, [&](std::span<std::byte> s) {
      for (auto b : s) sum += static_cast<int>(b);
    });
    EXPECT_EQ(sum, 4 * 50);
  });
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(rig.pool.data((*frame)[0])[100 + i], std::byte{1});
    EXPECT_EQ(mem.bytes()[kPageSize + 100 + i], 4);
  }
  EXPECT_EQ(mem.bytes()[kPageSize + 99], 0);
  EXPECT_EQ(mem.bytes()[kPageSize + 150], 0);
  EXPECT_THROW(rig.engine.launch(1,
                                 [&](const WorkItem&, DeviceAccessor& a) {
                                   a.with_page(mem.addr() + kPageSize - 10, 20, Access::kRead,
                                               [](std::span<std::byte>) {});
                                 }),
               Error);
}

}  // namespace
}  // namespace xesvm::sim
