// CPU write -> GPU read/write -> CPU read round trips, byte-checked.
#include <gtest/gtest.h>

#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>
#include <atomic>
#include <cmath>

#include <fcntl.h>

#include "test_util.hpp"

namespace xesvm::test {
namespace {

const std::string kUri = test_uri("sim:vram=64M,workers=2");

// The sim's data path charges the cost model once per move, with what
// moved (CostModel::charge_migration()): a 2 MiB range that moves to the
// device as one chunk and comes home in one CPU fault costs two link
// transfers of 2 MiB, and the modelled time is exactly the model's
// arithmetic (13 B/ns, 1500 ns per transfer); an eviction adds its bytes
// once.
TEST(RoundTrip, EachMoveIsChargedToTheCostModelOnce) {
  Runtime rt(kUri);
  constexpr std::uint64_t k2M = 2u << 20;
  const Stats before = rt.stats();
  ASSERT_EQ(before.modelled_device_ns, 0u);
  auto* p = device_resident_mirror(rt, k2M, 3);
  ASSERT_NE(p, nullptr);
  const auto model = [](double bytes, double transfers) {
    return static_cast<std::uint64_t>(std::llround(bytes / 13.0 + transfers * 1500.0));
  };
  EXPECT_EQ(rt.stats().link_bytes, k2M);
  EXPECT_EQ(rt.stats().modelled_device_ns, model(k2M, 1));
  EXPECT_EQ(mismatches(p, k2M, 3), 0u);  // the first read brings the whole range home
  EXPECT_EQ(rt.residency(p, k2M).device_bytes, 0u);
  EXPECT_EQ(rt.stats().link_bytes, 2 * k2M);
  EXPECT_EQ(rt.stats().modelled_device_ns, model(2 * k2M, 2));
  ASSERT_EQ(rt.prefetch(p, k2M, Location::kDevice), k2M);
  ASSERT_EQ(rt.evict(p, k2M).pages_evicted, k2M / 4096);
  EXPECT_EQ(rt.stats().link_bytes, 4 * k2M) << "an eviction's bytes are charged once";
  EXPECT_EQ(mismatches(p, k2M, 3), 0u);
  rt.unmirror(p, k2M);
  munmap(p, k2M);
}

TEST(RoundTrip, GpuSeesCpuBytesAndCpuSeesGpuWrites) {
  Runtime rt(kUri);
  const std::size_t n = 8u << 20;
  auto* p = static_cast<std::uint8_t*>(rt.alloc_shared(n));
  fill(p, n, 1);
  // GPU copies every page's first 64 bytes into a second buffer, XORed.
  auto* q = static_cast<std::uint8_t*>(rt.alloc_shared(n));
  std::memset(q, 0, n);
  rt.launch(pages(n), [&](const WorkItem& wi, DeviceAccessor& acc) {
    std::uint8_t buf[64];
    std::uint64_t off = wi.global_id * 4096;
    acc.read(reinterpret_cast<std::uint64_t>(p) + off, buf, sizeof buf);
    for (auto& c : buf) c ^= 0x5a;
    acc.write(reinterpret_cast<std::uint64_t>(q) + off, buf, sizeof buf);
  });
  Stats s = rt.stats();
  EXPECT_GT(s.gpu_faults, 0u);
  EXPECT_GT(s.bytes_to_device, 0u);
  EXPECT_GT(rt.residency(p, n).device_bytes, 0u);
  // CPU reads both back: p unchanged, q = p ^ 0x5a on the first 64 bytes.
  EXPECT_EQ(mismatches(p, n, 1), 0u);
  std::size_t bad = 0;
  for (std::size_t off = 0; off < n; off += 4096) {
    for (std::size_t i = 0; i < 64; ++i) bad += q[off + i] != static_cast<std::uint8_t>(pattern(off + i, 1) ^ 0x5a);
    for (std::size_t i = 64; i < 4096; ++i) bad += q[off + i] != 0;
  }
  EXPECT_EQ(bad, 0u);
  EXPECT_GT(rt.stats().cpu_faults, 0u) << "CPU reads of device-resident pages must fault and migrate back";
  rt.free(p);
  rt.free(q);
}

TEST(RoundTrip, CpuTouchOfDevicePageMigratesItsRangeBack) {
  Runtime rt(kUri);
  const std::size_t n = 2u << 20;
  auto* p = static_cast<std::uint32_t*>(rt.alloc_shared(n));
  fill(p, n, 7);
  EXPECT_EQ(rt.prefetch(p, n, Location::kDevice), n);
  EXPECT_EQ(rt.residency(p, n).device_bytes, n);
  const std::uint64_t before = rt.stats().cpu_faults;
  volatile std::uint8_t first = reinterpret_cast<std::uint8_t*>(p)[4096 * 3 + 5];
  EXPECT_EQ(first, pattern(4096 * 3 + 5, 7));
  EXPECT_EQ(rt.stats().cpu_faults, before + 1);
  EXPECT_EQ(rt.residency(p, n).device_bytes, 0u) << "the touched page's 2 MiB range moved back in one fault";
  EXPECT_EQ(mismatches(p, n, 7), 0u);
  EXPECT_EQ(rt.stats().cpu_faults, before + 1);
}

TEST(RoundTrip, GpuWritesSurviveEvictionAndCpuReadsThem) {
  Runtime rt(kUri);
  const std::size_t n = 4u << 20;
  auto* p = static_cast<std::uint32_t*>(rt.alloc_shared(n));
  std::memset(p, 0, n);
  rt.launch(n / 4, [&](const WorkItem& wi, DeviceAccessor& acc) {
    acc.store(p + wi.global_id, static_cast<std::uint32_t>(wi.global_id * 3 + 1));
  });
  EvictResult r = rt.evict(p, n);
  EXPECT_GT(r.pages_evicted, 0u);
  EXPECT_EQ(rt.residency(p, n).device_bytes, 0u);
  std::size_t bad = 0;
  for (std::size_t i = 0; i < n / 4; ++i) bad += p[i] != i * 3 + 1;
  EXPECT_EQ(bad, 0u);
}

TEST(RoundTrip, SyscallOnDeviceResidentMemoryMigratesItBackWithKernelFaults) {
  Runtime rt("sim:vram=16M,workers=2");
  bool kernel_faults = false;
  for (auto& [k, v] : rt.describe()) {
    if (k == "userfaultfd") kernel_faults = v.rfind("kernel-faults", 0) == 0;
  }
  if (!kernel_faults)
    GTEST_SKIP() << "this process may not handle kernel-mode userfaults (needs root, "
                    "CAP_SYS_PTRACE or vm.unprivileged_userfaultfd=1)";
  const std::size_t n = 64u << 10;
  auto* p = static_cast<std::uint8_t*>(rt.alloc_shared(n));
  fill(p, n, 3);
  rt.prefetch(p, n, Location::kDevice);
  ASSERT_EQ(rt.residency(p, n).device_bytes, n);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  // write() reads the buffer in kernel mode: it must fault and migrate back.
  ASSERT_EQ(write(fds[1], p, 4096), 4096);
  std::uint8_t buf[4096];
  ASSERT_EQ(read(fds[0], buf, sizeof buf), 4096);
  EXPECT_EQ(mismatches(buf, sizeof buf, 3), 0u);
  close(fds[0]);
  close(fds[1]);
}

TEST(RoundTrip, SyscallOnDeviceResidentMemoryFailsWithEfaultInUserModeOnly) {
  Runtime rt("sim:vram=16M,workers=2,kernel_faults=0");
  const std::size_t n = 64u << 10;
  auto* p = static_cast<std::uint8_t*>(rt.alloc_shared(n));
  fill(p, n, 4);
  rt.prefetch(p, n, Location::kDevice);
  ASSERT_EQ(rt.residency(p, n).device_bytes, n);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  errno = 0;
  // write() into a pipe copies the buffer in kernel mode; a dropped page
  // cannot be served there: EFAULT.
  EXPECT_EQ(write(fds[1], p, 4096), -1);
  EXPECT_EQ(errno, EFAULT);
  close(fds[0]);
  close(fds[1]);
  // A user-mode touch still migrates the page back.
  EXPECT_EQ(mismatches(p, n, 4), 0u);
}

TEST(RoundTrip, GpuAccessToNeverTouchedMemoryReadsZerosAndKeepsWrites) {
  for (const char* uri : {"sim:vram=16M,workers=2", "sim:vram=16M,workers=2,kernel_faults=0"}) {
    Runtime rt(uri);
    const std::size_t n = 3 * 4096 + 2 * (64u << 10);  // 4K and 64K ranges, never touched
    auto* p = static_cast<std::uint32_t*>(rt.alloc_shared(n));
    std::atomic<std::uint64_t> nonzero{0};
    rt.launch(n / 4096, [&](const WorkItem& wi, DeviceAccessor& acc) {
      std::uint32_t* w = p + wi.global_id * 1024;
      if (acc.load(w + 1) != 0) nonzero.fetch_add(1);
      acc.store(w, static_cast<std::uint32_t>(wi.global_id + 1));
    });
    EXPECT_EQ(nonzero.load(), 0u) << uri;
    std::size_t bad = 0;
    for (std::size_t pg = 0; pg < n / 4096; ++pg) {
      bad += p[pg * 1024] != pg + 1;
      for (std::size_t i = 1; i < 1024; ++i) bad += p[pg * 1024 + i] != 0;
    }
    EXPECT_EQ(bad, 0u) << uri;
    rt.free(p);
  }
}

}  // namespace
}  // namespace xesvm::test

namespace xesvm::test {
namespace {

// A range advised to stay in system memory is never migrated: the GPU
// reaches its pages where they are, also those the CPU never touched (in
// user-mode-only mode the kernel does not resolve a missing page for the
// GPU's process_vm access; the sim must map it).
TEST(RoundTrip, GpuAccessToNeverTouchedSystemPlacedMemoryWorksInBothModes) {
  for (const char* uri : {"sim:vram=16M,workers=2", "sim:vram=16M,workers=2,kernel_faults=0"}) {
    Runtime rt(uri);
    const std::size_t n = 2u << 20;
    auto* p = static_cast<std::uint32_t*>(rt.alloc_shared(n));
    ASSERT_TRUE(rt.advise(p, n, Advice{Location::kSystem, false, false}));
    std::atomic<std::uint64_t> nonzero{0};
    try {
      rt.launch(n / 4096, [&](const WorkItem& wi, DeviceAccessor& acc) {
        std::uint32_t* w = p + wi.global_id * 1024;
        if (acc.load(w + 1) != 0) nonzero.fetch_add(1);
        acc.store(w, static_cast<std::uint32_t>(wi.global_id + 1));
      });
    } catch (const Error& e) {
      ADD_FAILURE() << uri << ": " << e.what();
    }
    EXPECT_EQ(nonzero.load(), 0u) << uri;
    EXPECT_EQ(rt.residency(p, n).device_bytes, 0u) << uri;
    std::size_t bad = 0;
    for (std::size_t pg = 0; pg < n / 4096; ++pg) bad += p[pg * 1024] != pg + 1;
    EXPECT_EQ(bad, 0u) << uri;
    rt.free(p);
  }
}

}  // namespace
}  // namespace xesvm::test
