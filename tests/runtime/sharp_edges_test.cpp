// The sharp edges of the sim device (DESIGN.md): malloc'd buffers' partial
// edge pages, mremap racing an eviction, and a mapping replaced while a
// kernel runs over it.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "test_util.hpp"

namespace xesvm::test {
namespace {

TEST(SharpEdges, MirrorOfMallocBufferKeepsPartialEdgePagesInSystemMemory) {
  Runtime rt("sim:vram=16M,workers=2");
  void* raw = nullptr;
  ASSERT_EQ(posix_memalign(&raw, 4096, 6 * 4096), 0);
  auto* block = static_cast<std::uint8_t*>(raw);
  std::uint8_t* buf = block + 100;  // an application buffer inside the block
  const std::size_t n = 3 * 4096;   // covers pages 0..3 partially: whole pages 1 and 2
  fill(block, 6 * 4096, 9);
  rt.mirror(buf, n);
  rt.prefetch(buf, n, Location::kDevice);
  EXPECT_EQ(rt.residency(block + 4096, 2 * 4096).device_bytes, 2u * 4096) << "whole pages move";
  EXPECT_EQ(rt.residency(block, 4096).device_bytes, 0u) << "the partial first page stays";
  EXPECT_EQ(rt.residency(block + 3 * 4096, 4096).device_bytes, 0u) << "the partial last page stays";
  // Other objects on the edge pages are used by the CPU without any fault.
  const std::uint64_t faults = rt.stats().cpu_faults;
  block[10] ^= 0xff;
  block[3 * 4096 + 500] ^= 0xff;
  EXPECT_EQ(rt.stats().cpu_faults, faults);
  block[10] ^= 0xff;
  block[3 * 4096 + 500] ^= 0xff;
  EXPECT_EQ(mismatches(block, 6 * 4096, 9), 0u);  // inner pages come back on touch
  rt.unmirror(buf, n);
  std::free(raw);
}

TEST(SharpEdges, MremapRacingAnEvictionKeepsEveryByte) {
  Runtime rt("sim:vram=32M,workers=2");
  const std::size_t n = 8u << 20;
  for (int round = 0; round < 5; ++round) {
    // A reserved destination so the move lands where the test expects it.
    void* dst = mmap(nullptr, n, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    void* src = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(dst, MAP_FAILED);
    ASSERT_NE(src, MAP_FAILED);
    fill(src, n, 20 + round);
    rt.mirror(src, n);
    rt.prefetch(src, n, Location::kDevice);
    std::atomic<bool> go{false};
    std::thread evictor([&] {
      while (!go.load()) std::this_thread::yield();
      try {
        rt.evict(src, n);  // may race the move: any outcome but lost bytes is fine
      } catch (const Error&) {
      }
    });
    go.store(true);
    void* moved = mremap(src, n, n, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
    ASSERT_EQ(moved, dst);
    evictor.join();
    EXPECT_EQ(mismatches(dst, n, 20 + round), 0u) << "round " << round;
    munmap(dst, n);
  }
}

// GPU writes to system memory go by virtual address, through the write
// gate. The kernel's pages stay in RAM here (advice), so what is checked is
// the gate alone: a migration's MADV_DONTNEED racing the replacement is a
// separate, documented window (README, "Known limits").
TEST(SharpEdges, MappingReplacedWhileAKernelRunsNeverReceivesItsWrites) {
  Runtime rt("sim:vram=16M,workers=2");
  const std::size_t n = 4u << 20;
  for (int round = 0; round < 3; ++round) {
    void* p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(p, MAP_FAILED);
    std::memset(p, 0, n);
    rt.mirror(p, n);
    ASSERT_TRUE(rt.advise(p, n, Advice{Location::kSystem, false, false}));
    auto* words = static_cast<std::uint32_t*>(p);
    std::atomic<bool> replaced{false};
    std::thread replacer([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      // munmap + mmap of the same address with new content, mid-kernel.
      ASSERT_EQ(munmap(p, n), 0);
      void* q = mmap(p, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
      ASSERT_EQ(q, p);
      std::memset(q, 0xab, n);
      replaced.store(true);
    });
    try {
      rt.launch(n / 4096 * 8, [&](const WorkItem& wi, DeviceAccessor& acc) {
        std::uint32_t* w = words + (wi.global_id % (n / 4096)) * 1024 + wi.global_id / (n / 4096);
        acc.store(w, 0x11111111u);
      });
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Error::Code::kDeviceLost) << e.what();  // the address stopped being SVM
    }
    replacer.join();
    ASSERT_TRUE(replaced.load());
    // The kernel's writes went to the old mapping or nowhere, never into the
    // new one, which holds exactly what the CPU wrote.
    const auto* b = static_cast<const std::uint8_t*>(p);
    std::size_t foreign = 0;
    int first = -1;  // the first foreign byte's value
    for (std::size_t i = 0; i < n; ++i) {
      if (b[i] != 0xab && foreign++ == 0) first = b[i];
    }
    EXPECT_EQ(foreign, 0u) << "round " << round << ", first foreign byte 0x" << std::hex << first;
    munmap(p, n);
  }
}

// A page the process cannot read (here PROT_NONE) inside a run being moved
// to the device: its bytes never reach a frame, so the run must not be
// dropped from RAM, or that page's bytes are gone when it is readable again.
TEST(SharpEdges, UnreadablePageInAMigrationKeepsEveryByte) {
  Runtime rt("sim:vram=16M,workers=2");
  const std::size_t n = 16 * 4096;
  auto* p = static_cast<std::uint8_t*>(map_aligned(n, 64u << 10));
  ASSERT_NE(p, nullptr);
  fill(p, n, 31);
  rt.mirror(p, n);
  ASSERT_EQ(mprotect(p + 5 * 4096, 4096, PROT_NONE), 0);
  try {
    rt.prefetch(p, n, Location::kDevice);
  } catch (const Error&) {
    // refusing is fine; losing bytes is not
  }
  ASSERT_EQ(mprotect(p + 5 * 4096, 4096, PROT_READ | PROT_WRITE), 0);
  EXPECT_EQ(mismatches(p, n, 31), 0u);
  rt.unmirror(p, n);
  munmap(p, n);
}

// munmap frees addresses before the runtime can hear of it: another thread
// may map the same addresses and mirror them while the UNMAP event is still
// on its way. The new mirror must not be refused as an overlap with the old
// one, nor torn down when the old mapping's event finally arrives.
TEST(SharpEdges, MirrorOfAddressesWhoseUnmapIsStillInFlightSurvivesTheOldEvent) {
  Runtime rt("sim:vram=16M,workers=2");
  const std::size_t n = 64u << 10;
  std::atomic<void*> base{nullptr};
  std::atomic<int> rounds{0}, ready{0};
  std::atomic<bool> stop{false};
  std::string failure[2];
  auto worker = [&](int t) {
    // Warm up this thread's allocator first: its arena must not land in
    // the hole the test is about to make.
    std::vector<std::uint8_t> warm(1u << 20, 1);
    ready.fetch_add(1);
    while (!base.load()) std::this_thread::yield();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
    for (std::uint32_t i = 0; !stop.load() && std::chrono::steady_clock::now() < deadline; ++i) {
      void* p = mmap(base.load(), n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
      if (p == MAP_FAILED) continue;  // the other thread holds it
      if (p != base.load()) {
        munmap(p, n);  // an old kernel that ignores MAP_FIXED_NOREPLACE
        failure[t] = "MAP_FIXED_NOREPLACE unsupported";
        stop.store(true);
        return;
      }
      const std::uint32_t gen = t * 1000000u + i;
      try {
        rt.mirror(p, n);  // at once: the other thread's UNMAP may still be in flight
        fill(p, n, gen);
        rt.launch(pages(n), touch_pages_kernel(p, n, 1, /*write=*/true));  // the GPU must still see SVM memory
        rt.prefetch(p, n, Location::kDevice);
        rt.launch(pages(n), touch_pages_kernel(p, n, 1, /*write=*/true));
        auto* b = static_cast<std::uint8_t*>(p);
        for (std::size_t pg = 0; pg < n; pg += 4096) {  // the kernel added 2 to one word per page
          std::uint32_t w;
          std::memcpy(&w, b + pg, 4);
          w -= 2;
          std::memcpy(b + pg, &w, 4);
        }
        if (const std::size_t bad = mismatches(p, n, gen)) {
          failure[t] = std::to_string(bad) + " bytes differ in round " + std::to_string(i);
        }
      } catch (const Error& e) {
        failure[t] = std::string("round ") + std::to_string(i) + ": " + e.what();
      }
      munmap(p, n);  // no unmirror: the UNMAP event ends the mirror
      rounds.fetch_add(1);
      if (!failure[t].empty()) {
        stop.store(true);
        return;
      }
    }
  };
  std::thread a(worker, 0), b(worker, 1);
  while (ready.load() < 2) std::this_thread::yield();
  void* hole = map_aligned(n, 2u << 20);
  ASSERT_NE(hole, nullptr);
  munmap(hole, n);  // the addresses both threads compete for
  base.store(hole);
  a.join();
  b.join();
  if (failure[0] == "MAP_FIXED_NOREPLACE unsupported") GTEST_SKIP() << failure[0];
  EXPECT_EQ(failure[0], "") << "thread 0";
  EXPECT_EQ(failure[1], "") << "thread 1";
  EXPECT_GT(rounds.load(), 20);
  drain_events(rt);
  EXPECT_TRUE(wait_until([&] { return rt.stats().device_bytes_in_use == 0; }));
}

}  // namespace
}  // namespace xesvm::test
