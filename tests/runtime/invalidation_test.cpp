// CPU-side changes to mirrored memory while data is device-resident:
// munmap, mremap, madvise(DONTNEED), re-mmap, fork, the bind retry, and CPU
// writers racing GPU kernels. Every test checks bytes.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <thread>

#include "test_util.hpp"

namespace xesvm::test {
namespace {

constexpr const char* kUri = "sim:vram=16M,workers=2";

// Application memory mirrored into a runtime; unmapped at the end unless
// the test took it over.
struct Mirrored {
  Mirrored(Runtime& rt, std::size_t n) : n(n) {
    p = static_cast<std::uint8_t*>(map_aligned(n));
    if (p) rt.mirror(p, n);
  }
  std::uint8_t* p = nullptr;
  std::size_t n;
};

Error::Code launch_error(Runtime& rt, std::uint64_t addr) {
  try {
    rt.launch(1, [&](const WorkItem&, DeviceAccessor& acc) {
      std::uint32_t v;
      acc.read(addr, &v, sizeof v);
    });
  } catch (const Error& e) {
    return e.code();
  }
  return Error::Code{0};
}

TEST(Invalidation, MunmapOfDeviceResidentDataFreesFramesAndLeavesNoGpuMapping) {
  Runtime rt(kUri);
  const std::size_t n = 4u << 20;
  Mirrored m(rt, n);
  ASSERT_NE(m.p, nullptr);
  fill(m.p, n, 1);
  rt.launch(pages(n), touch_pages_kernel(m.p, n, 1, true));
  ASSERT_EQ(rt.residency(m.p, n).device_bytes, n);
  ASSERT_EQ(rt.stats().device_bytes_in_use, n);
  ASSERT_EQ(munmap(m.p, n), 0);
  EXPECT_TRUE(wait_until([&] { return rt.stats().device_bytes_in_use == 0; }))
      << rt.stats().device_bytes_in_use << " bytes of device memory still held after munmap";
  EXPECT_TRUE(wait_until([&] { return rt.impl().manager()->range_count() == 0; }));
  EXPECT_GT(rt.stats().invalidations, 0u);
  // A kernel touching the unmapped addresses is a fatal GPU fault, not a
  // read of a stale frame.
  EXPECT_EQ(launch_error(rt, reinterpret_cast<std::uint64_t>(m.p)), Error::Code::kDeviceLost);
  EXPECT_EQ(launch_error(rt, reinterpret_cast<std::uint64_t>(m.p) + n - 4), Error::Code::kDeviceLost);
  EXPECT_EQ(rt.stats().device_bytes_in_use, 0u);
}

TEST(Invalidation, PartialMunmapKeepsTheRestOfTheRangeIntact) {
  Runtime rt(kUri);
  const std::size_t n = 2u << 20;
  Mirrored m(rt, n);
  ASSERT_NE(m.p, nullptr);
  fill(m.p, n, 2);
  rt.prefetch(m.p, n, Location::kDevice);
  ASSERT_EQ(rt.residency(m.p, n).device_bytes, n);
  // Unmap the middle 64 KiB of the one 2 MiB range.
  const std::size_t hole = 1u << 20;
  ASSERT_EQ(munmap(m.p + hole, 64u << 10), 0);
  EXPECT_TRUE(wait_until([&] { return rt.stats().device_bytes_in_use == 0; }));
  EXPECT_EQ(mismatches(m.p, hole, 2), 0u);
  std::size_t bad = 0;
  for (std::size_t i = hole + (64u << 10); i < n; ++i) bad += m.p[i] != pattern(i, 2);
  EXPECT_EQ(bad, 0u);
  EXPECT_EQ(launch_error(rt, reinterpret_cast<std::uint64_t>(m.p) + hole), Error::Code::kDeviceLost);
  // The rest is still mirrored: the GPU reads it.
  EXPECT_EQ(gpu_mismatches(rt, m.p, hole, 2), 0u);
  munmap(m.p, hole);
  munmap(m.p + hole + (64u << 10), n - hole - (64u << 10));
}

TEST(Invalidation, MremapMovesDeviceResidentBytesToTheNewAddress) {
  Runtime rt(kUri);
  const std::size_t n = 4u << 20;
  Mirrored m(rt, n);
  ASSERT_NE(m.p, nullptr);
  fill(m.p, n, 3);
  rt.prefetch(m.p, n, Location::kDevice);
  ASSERT_EQ(rt.residency(m.p, n).device_bytes, n);
  void* dst = map_aligned(n);
  ASSERT_NE(dst, nullptr);
  void* q = mremap(m.p, n, n, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
  ASSERT_EQ(q, dst);
  // The runtime hears of the move after the fact; let it catch up.
  drain_events(rt);
  // The GPU reads the bytes at the new address...
  EXPECT_EQ(gpu_mismatches(rt, q, n, 3), 0u);
  // ... and so does the CPU.
  EXPECT_EQ(mismatches(q, n, 3), 0u);
  EXPECT_TRUE(wait_until([&] { return rt.residency(m.p, n).device_bytes == 0; }));
  // The old address is no SVM memory any more.
  EXPECT_EQ(launch_error(rt, reinterpret_cast<std::uint64_t>(m.p)), Error::Code::kDeviceLost);
  munmap(q, n);
  EXPECT_TRUE(wait_until([&] { return rt.stats().device_bytes_in_use == 0; }));
}

TEST(Invalidation, MremapWithoutWaitingKeepsBytesForTheCpu) {
  Runtime rt(kUri);
  const std::size_t n = 2u << 20;
  Mirrored m(rt, n);
  ASSERT_NE(m.p, nullptr);
  fill(m.p, n, 4);
  rt.prefetch(m.p, n, Location::kDevice);
  void* dst = map_aligned(n);
  ASSERT_NE(dst, nullptr);
  auto* q = static_cast<std::uint8_t*>(mremap(m.p, n, n, MREMAP_MAYMOVE | MREMAP_FIXED, dst));
  ASSERT_EQ(q, dst);
  // CPU touch right away, possibly before the REMAP event is applied.
  EXPECT_EQ(mismatches(q, n, 4), 0u);
  munmap(q, n);
  EXPECT_TRUE(wait_until([&] { return rt.stats().device_bytes_in_use == 0; }));
}

// A migration marks its own MADV_DONTNEED so the reader drops its REMOVE
// event, and it does not wait for the reader to forget the mark. An
// application's MADV_DONTNEED of exactly that span right after is still the
// application's: its pages read as zeros, on the CPU and on the GPU.
TEST(Invalidation, ApplicationDropOfTheSpanAMigrationJustDroppedDiscardsIt) {
  Runtime rt(kUri);
  const std::size_t n = 2u << 20;
  Mirrored m(rt, n);
  ASSERT_NE(m.p, nullptr);
  for (std::uint32_t round = 0; round < 20; ++round) {
    fill(m.p, n, 40 + round);
    ASSERT_EQ(rt.prefetch(m.p, n, Location::kDevice), n) << "round " << round;
    ASSERT_EQ(madvise(m.p, n, MADV_DONTNEED), 0);
    drain_events(rt);
    std::size_t nonzero = 0;
    for (std::size_t i = 0; i < n; i += 512) nonzero += m.p[i] != 0;
    ASSERT_EQ(nonzero, 0u) << "round " << round << ": the discard was taken for the sim's own drop";
    ASSERT_TRUE(wait_until([&] { return rt.stats().device_bytes_in_use == 0; }))
        << "round " << round << ": the discarded range kept its frames";
  }
}

TEST(Invalidation, ApplicationMadviseDontneedDiscardsDevicePagesAndFreesFrames) {
  Runtime rt(kUri);
  const std::size_t n = 4u << 20;
  Mirrored m(rt, n);
  ASSERT_NE(m.p, nullptr);
  fill(m.p, n, 5);
  rt.prefetch(m.p, n, Location::kDevice);
  ASSERT_EQ(rt.stats().device_bytes_in_use, n);
  // Discard the first 2 MiB range entirely and half of the second.
  const std::size_t cut = 3u << 20;
  ASSERT_EQ(madvise(m.p, cut, MADV_DONTNEED), 0);
  std::size_t nonzero = 0;
  for (std::size_t i = 0; i < cut; ++i) nonzero += m.p[i] != 0;
  EXPECT_EQ(nonzero, 0u) << "discarded pages must read as zeros";
  std::size_t bad = 0;
  for (std::size_t i = cut; i < n; ++i) bad += m.p[i] != pattern(i, 5);
  EXPECT_EQ(bad, 0u) << "pages not discarded keep their bytes";
  EXPECT_TRUE(wait_until([&] { return rt.stats().device_bytes_in_use == 0; }));
  // The GPU sees the same: zeros, then the pattern.
  std::atomic<std::size_t> gbad{0};
  const std::uint64_t b = reinterpret_cast<std::uint64_t>(m.p);
  rt.launch(pages(n), [&](const WorkItem& wi, DeviceAccessor& acc) {
    const std::uint64_t off = wi.global_id * 4096;
    std::size_t local = 0;
    acc.with_page(b + off, 4096, Access::kRead, [&](std::span<std::byte> v) {
      for (std::size_t i = 0; i < 4096; ++i) {
        const std::uint8_t want = off + i < cut ? 0 : pattern(off + i, 5);
        local += static_cast<std::uint8_t>(v[i]) != want;
      }
    });
    gbad += local;
  });
  EXPECT_EQ(gbad.load(), 0u);
  munmap(m.p, n);
}

TEST(Invalidation, MunmapThenMmapFixedAtTheSameAddressShowsTheNewBytesToTheGpu) {
  Runtime rt(kUri);
  const std::size_t n = 2u << 20;
  Mirrored m(rt, n);
  ASSERT_NE(m.p, nullptr);
  fill(m.p, n, 6);
  rt.launch(pages(n), touch_pages_kernel(m.p, n, 0, false));
  ASSERT_EQ(rt.residency(m.p, n).device_bytes, n);
  ASSERT_EQ(munmap(m.p, n), 0);
  void* again = mmap(m.p, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  ASSERT_EQ(again, m.p);
  fill(m.p, n, 7);
  // The new mapping is not mirrored yet; once the unmap has been applied the
  // application mirrors it again.
  drain_events(rt);
  EXPECT_TRUE(wait_until([&] { return rt.stats().device_bytes_in_use == 0; }));
  rt.mirror(m.p, n);
  EXPECT_EQ(gpu_mismatches(rt, m.p, n, 7), 0u);
  // GPU writes reach the new mapping too.
  rt.launch(pages(n), write_pattern_kernel(m.p, n, 8));
  EXPECT_EQ(mismatches(m.p, n, 8), 0u);
  munmap(m.p, n);
}

TEST(Invalidation, CpuTouchBetweenGetPagesAndBindForcesASequenceRetry) {
  Runtime rt(kUri);
  const std::size_t n = 2u << 20;
  auto* p = static_cast<std::uint8_t*>(rt.alloc_shared(n));
  fill(p, n, 9);
  std::atomic<int> fired{0};
  rt.impl().manager()->set_before_bind_hook([&](std::uint64_t start) {
    if (start != reinterpret_cast<std::uint64_t>(p) || fired.exchange(1)) return;
    // The range was just migrated: this CPU read faults, migrates one page
    // back and bumps the window's sequence.
    volatile std::uint8_t v = p[4096 * 5 + 3];
    (void)v;
  });
  rt.launch(pages(n), write_pattern_kernel(p, n, 10));
  rt.impl().manager()->set_before_bind_hook(nullptr);
  EXPECT_EQ(fired.load(), 1);
  EXPECT_GT(rt.stats().bind_retries, 0u);
  EXPECT_EQ(mismatches(p, n, 10), 0u);
  rt.free(p);
  EXPECT_EQ(rt.stats().device_bytes_in_use, 0u);
}

// An application mirror of n bytes at *a whose bytes (pattern `gen`) live on
// the device only, and free 2 MiB-aligned addresses *c to move it to.
void gpu_written_mirror_and_spare(Runtime& rt, std::size_t n, std::uint32_t gen, std::uint8_t** a, std::uint8_t** c) {
  *a = static_cast<std::uint8_t*>(map_aligned(n, 2u << 20));
  *c = static_cast<std::uint8_t*>(map_aligned(n, 2u << 20));
  ASSERT_TRUE(*a && *c);
  rt.mirror(*a, n);
  rt.launch(pages(n), write_pattern_kernel(*a, n, gen));
  ASSERT_EQ(rt.residency(*a, n).device_bytes, n);
}

// After an mremap the old range is evicted into the addresses its data moved
// to, where a new range may already be binding the same frames (its snapshot
// reports them as device pages). The eviction must invalidate binds at the
// data's current address, not only in the old range's notifier window.
TEST(Invalidation, EvictionOfAMovedRangeInvalidatesABindAtTheNewAddress) {
  RuntimeOptions o;
  o.notifier_window = 2u << 20;  // the old and new addresses in different windows
  Runtime rt(kUri, o);
  const std::size_t n = 4 * 4096;
  std::uint8_t *a, *c;
  ASSERT_NO_FATAL_FAILURE(gpu_written_mirror_and_spare(rt, n, 21, &a, &c));
  const std::vector<FrameId> f = device_frames(rt, a, n);
  for (FrameId fr : f) ASSERT_NE(fr, kNoFrame);
  auto& dev = sim_device(rt);
  // Keep the old range's teardown from finishing until the new range's bind.
  // (The last page: the gc tears ranges down one after another, in address
  // order, and the fault path may have made more than one.)
  constexpr std::size_t kHeld = 3;
  ASSERT_TRUE(dev.frame_trylock(f[kHeld]));
  std::atomic<bool> held{true};
  struct Release {  // never leave the frame locked: teardown would wait forever
    std::function<void()> fn;
    ~Release() { fn(); }
  } release{[&] {
    if (held.exchange(false)) dev.frame_unlock(f[kHeld]);
  }};
  ASSERT_EQ(mremap(a, n, n, MREMAP_MAYMOVE | MREMAP_FIXED, c), c);
  drain_events(rt);
  ASSERT_TRUE(wait_until([&] { return rt.stats().device_bytes_in_use == 4096; }))  // all but the held frame
      << rt.stats().device_bytes_in_use;
  ASSERT_EQ(dev.frame_address(f[kHeld]), reinterpret_cast<std::uint64_t>(c + kHeld * 4096));
  std::atomic<int> fired{0};
  rt.impl().manager()->set_before_bind_hook([&](std::uint64_t) {
    if (fired.exchange(1)) return;
    // The snapshot just taken shows the held page in its old frame; now the
    // old range evicts it and frees the frame.
    if (held.exchange(false)) dev.frame_unlock(f[kHeld]);
    EXPECT_TRUE(wait_until([&] { return dev.frame_owner(f[kHeld]) == kNoOwner; }));
  });
  // Only the held page faults, so the hook fires in a bind that covers it.
  std::uint8_t* page = c + kHeld * 4096;
  rt.launch(1, write_pattern_kernel(page, 4096, 22));
  rt.impl().manager()->set_before_bind_hook(nullptr);
  EXPECT_EQ(fired.load(), 1);
  EXPECT_EQ(mismatches(page, 4096, 22), 0u) << "a GPU write went to the freed frame";
  EXPECT_EQ(gpu_mismatches(rt, page, 4096, 22), 0u);
  EXPECT_EQ(mismatches(c, kHeld * 4096, 21), 0u);
  rt.unmirror(c, n);
  munmap(c, n);
  EXPECT_TRUE(wait_until([&] { return rt.stats().device_bytes_in_use == 0; }));
}

// Freeing memory drops the bytes at its addresses, and only those. A range
// left there by a mirror that mremap moved away (its gc not done yet) holds
// the moved mirror's bytes: they must reach the new addresses.
TEST(Invalidation, DiscardAtAddressesAMovedMirrorLeftKeepsTheBytesThatMoved) {
  Runtime rt(kUri);
  SvmManager& m = *rt.impl().manager();
  const std::size_t n = 4 * 4096;
  std::uint8_t *a, *c;
  ASSERT_NO_FATAL_FAILURE(gpu_written_mirror_and_spare(rt, n, 31, &a, &c));
  m.set_gc_paused(true);  // the moved mirror's old ranges stay in the tree
  ASSERT_EQ(mremap(a, n, n, MREMAP_MAYMOVE | MREMAP_FIXED, c), c);
  drain_events(rt);
  // New memory at the old addresses, mirrored and freed (what free() of an
  // alloc_shared allocation there does).
  ASSERT_EQ(mmap(a, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0), a);
  rt.mirror(a, n);
  m.discard(reinterpret_cast<std::uint64_t>(a), n);
  munmap(a, n);
  m.set_gc_paused(false);
  EXPECT_EQ(mismatches(c, n, 31), 0u);
  rt.unmirror(c, n);
  munmap(c, n);
  EXPECT_TRUE(wait_until([&] { return rt.stats().device_bytes_in_use == 0; }));
}

TEST(Invalidation, PartialMunmapBetweenGetPagesAndBindAbandonsTheBind) {
  Runtime rt(kUri);
  const std::size_t n = 2u << 20;
  Mirrored m(rt, n);
  ASSERT_NE(m.p, nullptr);
  fill(m.p, n, 11);
  std::atomic<int> fired{0};
  const std::size_t keep = 1u << 20;
  rt.impl().manager()->set_before_bind_hook([&](std::uint64_t) {
    if (fired.exchange(1)) return;
    munmap(m.p + keep, n - keep);
    drain_events(rt);
  });
  // Only the kept half is touched; the first fault's bind is abandoned and
  // the access faults again on a fresh range.
  EXPECT_EQ(gpu_mismatches(rt, m.p, keep, 11), 0u);
  rt.impl().manager()->set_before_bind_hook(nullptr);
  EXPECT_EQ(fired.load(), 1);
  EXPECT_EQ(launch_error(rt, reinterpret_cast<std::uint64_t>(m.p) + keep), Error::Code::kDeviceLost);
  EXPECT_EQ(mismatches(m.p, keep, 11), 0u);
  munmap(m.p, keep);
  EXPECT_TRUE(wait_until([&] { return rt.stats().device_bytes_in_use == 0; }));
}

TEST(Invalidation, ForkChildReadsDataThatWasDeviceResidentInTheParent) {
  Runtime rt(kUri);
  const std::size_t n = 4u << 20;
  auto* p = static_cast<std::uint8_t*>(rt.alloc_shared(n));
  fill(p, n, 12);
  rt.launch(pages(n), write_pattern_kernel(p, n, 13));  // the GPU's bytes only exist on the device
  ASSERT_EQ(rt.residency(p, n).device_bytes, n);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Child: no gtest, no runtime calls; just read.
    _exit(mismatches(p, n, 13) == 0 ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the child saw wrong bytes";
  // The parent keeps working after the fork.
  EXPECT_EQ(gpu_mismatches(rt, p, n, 13), 0u);
  EXPECT_EQ(mismatches(p, n, 13), 0u);
  rt.free(p);
}

TEST(Invalidation, ConcurrentCpuWritersAndGpuKernelsOnSharedPagesLoseNoWrite) {
  Runtime rt(kUri);
  const std::size_t words = 64u << 10;  // 256 KiB: 64 pages, CPU and GPU words interleaved
  auto* w = static_cast<std::uint32_t*>(rt.alloc_shared(words * 4));
  std::memset(w, 0, words * 4);
  constexpr unsigned kCpuThreads = 2, kCpuRounds = 20, kGpuLaunches = 20;
  std::atomic<bool> go{false};
  std::vector<std::thread> cpu;
  for (unsigned t = 0; t < kCpuThreads; ++t) {
    cpu.emplace_back([&, t] {
      while (!go.load()) std::this_thread::yield();
      for (std::uint32_t round = 1; round <= kCpuRounds; ++round) {
        // Thread t owns even words i with (i/2) % kCpuThreads == t.
        for (std::size_t i = 2 * t; i < words; i += 2 * kCpuThreads) {
          std::atomic_ref<std::uint32_t>(w[i]).store(round * 1000 + t, std::memory_order_relaxed);
        }
      }
    });
  }
  go = true;
  for (unsigned l = 0; l < kGpuLaunches; ++l) {
    // The GPU increments every odd word (one work item per page).
    rt.launch(words / 1024, [&](const WorkItem& wi, DeviceAccessor& acc) {
      for (std::size_t i = wi.global_id * 1024 + 1; i < (wi.global_id + 1) * 1024; i += 2) {
        acc.atomic_add(reinterpret_cast<std::uint64_t>(&w[i]), 1);
      }
    });
  }
  for (auto& th : cpu) th.join();
  std::size_t bad = 0;
  for (std::size_t i = 0; i < words; ++i) {
    const std::uint32_t want = i % 2 ? kGpuLaunches : kCpuRounds * 1000 + (i / 2) % kCpuThreads;
    const std::uint32_t got = std::atomic_ref<std::uint32_t>(w[i]).load();
    if (got != want && bad < 8) {
      ADD_FAILURE() << (i % 2 ? "GPU" : "CPU") << " word " << i << " (page " << i / 1024 << "): " << got
                    << ", expected " << want;
    }
    bad += got != want;
  }
  EXPECT_EQ(bad, 0u);
  rt.free(w);
}

}  // namespace
}  // namespace xesvm::test
