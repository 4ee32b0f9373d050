// The xe backend against a real kernel's Xe device (in CI: the software Xe
// device in the QEMU guest, tests/xe/guest-suite.sh). Every test opens
// "xe:"; on a machine without an Xe render node it skips and says what
// discovery looked at. Every path that moves pages checks the bytes.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "runtime/backends/xe/xe_backend.hpp"
#include "runtime/backends/xe/xe_copy_engine.hpp"
#include "runtime/backends/xe/xe_discovery.hpp"
#include "runtime/backends/xe/xe_uapi.hpp"
#include "runtime/runtime_impl.hpp"
#include "xesvm/xesvm.hpp"

namespace {

using xesvm::Error;
using xesvm::Location;
namespace xe = xesvm::xe;

constexpr std::size_t kMiB = 1u << 20;

// The reason to skip, or "" when an Xe device is here.
std::string no_device_reason() {
  xe::Discovery d = xe::discover_render_nodes();
  if (!d.first_xe()) return "no Xe device on this machine: " + d.describe();
  return "";
}

#define REQUIRE_XE_DEVICE()                \
  do {                                     \
    std::string why = no_device_reason();  \
    if (!why.empty()) GTEST_SKIP() << why; \
  } while (0)

xe::XeBackend& xe_of(xesvm::Runtime& rt) { return dynamic_cast<xe::XeBackend&>(rt.impl().backend()); }

TEST(XeDevice, DiscoveryFindsTheDeviceByDriverNameAndOpensAFaultModeVm) {
  REQUIRE_XE_DEVICE();
  xesvm::Runtime rt("xe:");
  xe::XeBackend& be = xe_of(rt);
  EXPECT_NE(be.vm_id(), 0u);
  EXPECT_GE(be.config().va_bits, 39u);
  EXPECT_TRUE(be.config().flags & xe::uapi::kQueryConfigFlagHasCpuAddrMirror);
  xesvm::Capabilities c = rt.capabilities();
  EXPECT_EQ(c.backend, "xe");
  EXPECT_FALSE(c.has_mechanism);
  EXPECT_FALSE(c.host_kernels);
}

TEST(XeDevice, PrefetchToVramAndBackKeepsEveryByteAndMemRegionsSeeIt) {
  REQUIRE_XE_DEVICE();
  xesvm::Runtime rt("xe:");
  xe::XeBackend& be = xe_of(rt);
  if (!be.has_vram()) GTEST_SKIP() << "the device has no VRAM region";
  constexpr std::size_t n = 8 * kMiB;
  auto* p = static_cast<std::uint8_t*>(rt.alloc_shared(n));
  for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<std::uint8_t>(i ^ (i >> 12));
  const std::uint64_t before = be.device_memory().used;
  EXPECT_EQ(rt.prefetch(p, n, Location::kDevice), n);
  const std::uint64_t on_device = be.device_memory().used;
  if (be.can_read_vram_used()) {
    EXPECT_GE(on_device, before + n) << "MEM_REGIONS used did not grow by the prefetch";
  }
  xesvm::Residency r = rt.residency(p, n);
  EXPECT_EQ(r.device_bytes + r.system_bytes + r.unknown_bytes, n);
  EXPECT_EQ(r.unknown_bytes, n) << "the kernel cannot say where the pages are: unknown, not 0";
  xesvm::EvictResult ev = rt.evict(p, n);
  EXPECT_EQ(ev.pages_evicted, n / 4096);
  if (be.can_read_vram_used()) {
    EXPECT_LE(be.device_memory().used, before);
  }
  for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(p[i], static_cast<std::uint8_t>(i ^ (i >> 12))) << "offset " << i;
  // Back to the device and home by a CPU touch (the kernel's CPU fault).
  rt.prefetch(p, n, Location::kDevice);
  for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(p[i], static_cast<std::uint8_t>(i ^ (i >> 12))) << "offset " << i;
  rt.free(p);
}

TEST(XeDevice, ResidencyIsSystemWhenNoVramIsUsed) {
  REQUIRE_XE_DEVICE();
  xesvm::Runtime rt("xe:");
  xe::XeBackend& be = xe_of(rt);
  if (!be.has_vram()) GTEST_SKIP() << "the device has no VRAM region";
  if (!be.can_read_vram_used()) GTEST_SKIP() << "MEM_REGIONS used needs CAP_PERFMON here";
  if (be.device_memory().used != 0) GTEST_SKIP() << "another process holds VRAM";
  auto* p = static_cast<std::uint8_t*>(rt.alloc_shared(kMiB));
  std::memset(p, 1, kMiB);
  xesvm::Residency r = rt.residency(p, kMiB);
  EXPECT_EQ(r.system_bytes, kMiB);
  EXPECT_EQ(r.unknown_bytes, 0u);
  rt.free(p);
}

TEST(XeDevice, AdviceIsWhatTheKernelReportsInRangeAttributes) {
  REQUIRE_XE_DEVICE();
  xesvm::Runtime rt("xe:");
  xe::XeBackend& be = xe_of(rt);
  if (!be.has_madvise()) GTEST_SKIP() << "the kernel has no MADVISE";
  auto* p = static_cast<std::uint8_t*>(rt.alloc_shared(4 * kMiB));
  xesvm::Advice a;
  a.preferred = Location::kSystem;
  a.atomic = true;
  ASSERT_TRUE(rt.advise(p + kMiB, kMiB, a));
  const auto start = reinterpret_cast<std::uint64_t>(p) + kMiB;
  auto attrs = be.range_attributes(start, kMiB);
  ASSERT_FALSE(attrs.empty());
  for (const auto& at : attrs) {
    EXPECT_LE(at.start, start);
    EXPECT_EQ(at.preferred_devmem_fd, xe::uapi::kPreferredLocDefaultSystem);
    EXPECT_EQ(at.atomic, xe::uapi::kAtomicGlobal);
  }
  rt.free(p);
}

TEST(XeDevice, BadInputIsRejectedBeforeAnyIoctlOrNamesTheErrno) {
  REQUIRE_XE_DEVICE();
  xesvm::Runtime rt("xe:");
  xe::XeBackend& be = xe_of(rt);
  auto* p = static_cast<std::uint8_t*>(rt.alloc_shared(kMiB));
  // The code and the message of the error f() throws ("" if none).
  auto error_of = [](const std::function<void()>& f) -> std::pair<Error::Code, std::string> {
    try {
      f();
    } catch (const Error& e) {
      return {e.code(), e.what()};
    }
    return {Error::Code::kBackend, ""};
  };
  const auto a = reinterpret_cast<std::uint64_t>(p);
  // Every VM_BIND the backend issues takes the next user-fence value: none
  // of the calls below may reach the kernel.
  const std::uint64_t before = be.last_fence_value();
  const std::pair<Error::Code, std::string> bad[] = {
      error_of([&] { be.prefetch(a + 1, 4096, Location::kDevice); }),                   // unaligned start
      error_of([&] { be.prefetch(a, 4096 + 1, Location::kDevice); }),                   // unaligned size
      error_of([&] { be.prefetch(a, 0, Location::kDevice); }),                          // empty
      error_of([&] { be.evict(be.mirror_end(), 4096); }),                               // past VA_BITS
      error_of([&] { be.prefetch(be.mirror_end() - 4096, 8192, Location::kSystem); }),  // straddles VA_BITS
      error_of([&] { (void)rt.copy(p, p + 4096, 8192); }),                              // overlapping copy
  };
  for (const auto& [code, what] : bad) {
    EXPECT_EQ(code, Error::Code::kInvalidArgument) << what;
    EXPECT_FALSE(what.empty()) << "the error says what was wrong";
  }
  EXPECT_EQ(be.last_fence_value(), before) << "a rejected request reached VM_BIND";
  rt.free(p);
}

// A runtime that was closed (its backend moved out and destroyed) refuses
// every call, and its memory, handed to another runtime on the same device:
// freeing it or copying from or into it is rejected before any ioctl
// with a clear error (the closed runtime unmapped it), never a GPU fault or a
// hang. The second runtime is opened and has done its first device work
// before the first one allocates, so none of its own mappings can land where
// the closed runtime's memory was.
TEST(XeDevice, MemoryOfAClosedRuntimeIsRejectedByTheNextOne) {
  REQUIRE_XE_DEVICE();
  xesvm::Runtime b("xe:");
  xe::XeBackend& be = xe_of(b);
  auto* dst = static_cast<std::uint8_t*>(b.alloc_shared(kMiB));
  const std::uint8_t zero = 0;
  b.fill(dst, &zero, 1, kMiB).wait();
  xesvm::Runtime a("xe:");
  auto* stale = static_cast<std::uint8_t*>(a.alloc_shared(kMiB));
  const std::uint8_t seven = 7;
  a.fill(stale, &seven, 1, kMiB).wait();
  ASSERT_EQ(stale[kMiB - 1], 7);
  { xesvm::Runtime closing = std::move(a); }  // closes a's device and frees its memory
  const std::uint64_t before = be.last_fence_value();
  auto expect_rejected = [](const char* what, const std::function<void()>& f) {
    try {
      f();
      ADD_FAILURE() << what << ": memory of a closed runtime was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Error::Code::kInvalidArgument) << what << ": " << e.what();
      EXPECT_GT(std::strlen(e.what()), 20u) << what << ": the error says what was wrong";
      std::printf("# %s: %s\n", what, e.what());
    }
  };
  // The closed runtime itself refuses every call.
  expect_rejected("alloc_shared on the closed runtime", [&] { (void)a.alloc_shared(4096); });
  expect_rejected("copy on the closed runtime", [&] { a.copy(dst, dst + 4096, 4096).wait(); });
  expect_rejected("prefetch on the closed runtime", [&] { (void)a.prefetch(dst, 4096, Location::kDevice); });
  // Its memory, given to the open one.
  expect_rejected("free", [&] { b.free(stale); });
  expect_rejected("copy from it", [&] { b.copy(dst, stale, 4096).wait(); });
  expect_rejected("fill of it", [&] {
    const std::uint8_t v = 1;
    b.fill(stale, &v, 1, 4096).wait();
  });
  EXPECT_EQ(be.last_fence_value(), before) << "a rejected request reached VM_BIND";
  // The new runtime works.
  const std::uint8_t v = 0x42;
  b.fill(dst, &v, 1, kMiB).wait();
  for (std::size_t i = 0; i < kMiB; i += 4093) ASSERT_EQ(dst[i], 0x42) << "offset " << i;
  b.free(dst);
}

TEST(XeDevice, DeviceCopyAndFillMoveEveryByteBetweenSvmBuffers) {
  REQUIRE_XE_DEVICE();
  xesvm::Runtime rt("xe:");
  constexpr std::size_t n = 3 * kMiB + 4096 + 100;
  auto* src = static_cast<std::uint8_t*>(rt.alloc_shared(n));
  auto* dst = static_cast<std::uint8_t*>(rt.alloc_shared(n + 8));
  for (std::size_t i = 0; i < n; ++i) src[i] = static_cast<std::uint8_t>(i * 13 + 1);
  std::memset(dst, 0xee, n + 8);
  rt.prefetch(src, 2 * kMiB, Location::kDevice);  // part of the source in VRAM
  rt.copy(dst, src, n).wait();
  for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(dst[i], static_cast<std::uint8_t>(i * 13 + 1)) << "offset " << i;
  ASSERT_EQ(dst[n], 0xee) << "the copy ran past its end";

  const std::uint8_t one = 0x77;
  const std::uint16_t two = 0x1234;
  const std::uint32_t four = 0xdeadbeef;
  const std::uint32_t same = 0x3c3c3c3c;
  struct Case {
    const void* p;
    std::size_t size;
  } cases[] = {{&one, 1}, {&two, 2}, {&four, 4}, {&same, 4}};
  for (const Case& k : cases) {
    const std::size_t len = n - n % 4;
    rt.fill(dst, k.p, k.size, len).wait();
    for (std::size_t i = 0; i < len; ++i) {
      ASSERT_EQ(dst[i], static_cast<const std::uint8_t*>(k.p)[i % k.size]) << "size " << k.size << " offset " << i;
    }
    ASSERT_EQ(dst[n], 0xee) << "the fill ran past its end";
  }
  EXPECT_EQ(dynamic_cast<xe::XeCopyEngine&>(*xe_of(rt).copier()).batches_submitted(), 5u);
  rt.free(src);
  rt.free(dst);
}

// A copy or fill above the largest span of one batch (256 MiB, what one
// batch slot holds; 1 MiB here through XeOptions::max_batch_bytes, so the
// test need not move 256 MiB through the device) is split into batches of
// that size and the rest; the second batch starts at the right offsets
// (and, for a fill, at the pattern's phase 0). The buffers are advised to
// system memory, so the device works on them in place.
TEST(XeDevice, CopyAndFillAboveOneBatchAreSplitAndKeepEveryByte) {
  REQUIRE_XE_DEVICE();
  xe::XeOptions opts;
  opts.max_batch_bytes = kMiB;
  std::unique_ptr<xesvm::Backend> backend = xe::open_xe_backend("", "/dev/dri", opts);
  auto& be = dynamic_cast<xe::XeBackend&>(*backend);
  constexpr std::size_t n = kMiB + 8192 + 12;
  // Page-aligned buffers in the process's own memory: the mirror covers it.
  std::vector<std::uint8_t> src_mem(n + 4096), dst_mem(n + 8 + 4096);
  auto page_aligned = [](std::vector<std::uint8_t>& v) {
    const auto a = (reinterpret_cast<std::uintptr_t>(v.data()) + 4095) & ~std::uintptr_t{4095};
    return reinterpret_cast<std::uint8_t*>(a);
  };
  std::uint8_t* src = page_aligned(src_mem);
  std::uint8_t* dst = page_aligned(dst_mem);
  const auto s = reinterpret_cast<std::uint64_t>(src), d = reinterpret_cast<std::uint64_t>(dst);
  xesvm::Advice system;
  system.preferred = Location::kSystem;
  if (be.has_madvise()) {
    be.advise(s, (n + 4095) & ~std::size_t{4095}, system);
    be.advise(d, (n + 8 + 4095) & ~std::size_t{4095}, system);
  }
  std::memset(dst + n, 0xee, 8);
  const std::uint16_t two = 0x1234;
  auto& engine = dynamic_cast<xe::XeCopyEngine&>(*be.copier());
  engine.fill(s, two, 2, n)->wait(std::chrono::minutes(2));
  EXPECT_EQ(engine.batches_submitted(), 2u);
  for (std::size_t i = 0; i < n; ++i) {
    ASSERT_EQ(src[i], reinterpret_cast<const std::uint8_t*>(&two)[i % 2]) << "offset " << i;
  }
  // A mark that names each page, so that a batch copied from or to the
  // wrong offset shows.
  for (std::size_t i = 0; i + 8 <= n; i += 4096) std::memcpy(src + i, &i, 8);
  engine.copy(d, s, n)->wait(std::chrono::minutes(2));
  EXPECT_EQ(engine.batches_submitted(), 4u);
  ASSERT_EQ(0, std::memcmp(dst, src, n));
  for (std::size_t i = 0; i < 8; ++i) ASSERT_EQ(dst[n + i], 0xee) << "the copy ran past its end";
}

// Real Xe needs an MI_FLUSH_DW between a blit and a later one that reads
// what it wrote (the backend emits it between a fill's doubling copies). A
// batch MEM_SET a; MI_FLUSH_DW; MEM_COPY a -> b runs and leaves b as the
// MEM_SET wrote a.
TEST(XeDevice, FlushDwBetweenDependentBlitsRunsAndOrdersThem) {
  REQUIRE_XE_DEVICE();
  xesvm::Runtime rt("xe:");
  auto* a = static_cast<std::uint8_t*>(rt.alloc_shared(2 * 4096));
  std::uint8_t* b = a + 4096;
  std::memset(a, 0, 2 * 4096);
  auto& engine = dynamic_cast<xe::XeCopyEngine&>(*xe_of(rt).copier());
  xe::BatchBuilder batch;
  batch.mem_set(reinterpret_cast<std::uint64_t>(a), 0x5a, 4096);
  batch.flush_dw();
  batch.mem_copy(reinterpret_cast<std::uint64_t>(b), reinterpret_cast<std::uint64_t>(a), 4096);
  batch.end();
  engine.submit_raw(batch.dwords(), "MEM_SET; MI_FLUSH_DW; MEM_COPY")->wait(std::chrono::seconds(60));
  for (std::size_t i = 0; i < 4096; ++i) ASSERT_EQ(b[i], 0x5a) << "offset " << i;
  rt.free(a);
}

TEST(XeDevice, AFaultAtAnUnmappedAddressIsDeviceLostNotAHang) {
  REQUIRE_XE_DEVICE();
  xesvm::Runtime rt("xe:");
  xe::XeBackend& be = xe_of(rt);
  auto* dst = static_cast<std::uint8_t*>(rt.alloc_shared(kMiB));
  // The engine (and its batch regions) first, so that no later mapping can
  // land in the hole.
  auto* eng = dynamic_cast<xe::XeCopyEngine*>(be.copier());
  ASSERT_NE(eng, nullptr);
  const std::uint8_t zero = 0;
  rt.fill(dst, &zero, 1, 4096).wait();
  // An address with no CPU mapping: 64 KiB unmapped in the middle of a
  // reservation that stays (so nothing else is mapped there), straight to the
  // copy engine (the runtime would reject it before submitting).
  auto* resv = static_cast<std::uint8_t*>(::mmap(nullptr, kMiB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(resv, MAP_FAILED);
  void* hole = resv + kMiB / 2;
  ASSERT_EQ(::munmap(hole, 64 * 1024), 0);
  auto work = eng->copy(reinterpret_cast<std::uint64_t>(dst), reinterpret_cast<std::uint64_t>(hole), 4096);
  const auto t0 = std::chrono::steady_clock::now();
  try {
    work->wait(std::chrono::seconds(20));
    ADD_FAILURE() << "a copy from an unmapped address completed";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Error::Code::kDeviceLost) << e.what();
    EXPECT_NE(std::string(e.what()).find("banned"), std::string::npos) << e.what();
    char addr[32];
    std::snprintf(addr, sizeof addr, "0x%llx", static_cast<unsigned long long>(reinterpret_cast<std::uintptr_t>(hole)));
    EXPECT_NE(std::string(e.what()).find(addr), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20));
  EXPECT_EQ(eng->queues_banned(), 1u);
  // The runtime goes on with a fresh queue.
  std::memset(dst, 0, kMiB);
  const std::uint8_t v = 9;
  rt.fill(dst, &v, 1, kMiB).wait();
  for (std::size_t i = 0; i < kMiB; i += 511) ASSERT_EQ(dst[i], 9) << "offset " << i;
  // Through the runtime the same span is rejected before submission, naming the page.
  try {
    (void)rt.copy(dst, hole, 4096);
    ADD_FAILURE() << "the runtime submitted a copy from an unmapped span";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Error::Code::kInvalidArgument) << e.what();
    EXPECT_NE(std::string(e.what()).find("has no mapping"), std::string::npos) << e.what();
  }
  ::munmap(resv, kMiB);
  rt.free(dst);
}

TEST(XeDevice, LaunchOfAHostKernelIsUnsupportedWithTheReason) {
  REQUIRE_XE_DEVICE();
  xesvm::Runtime rt("xe:");
  try {
    rt.launch(1, [](const xesvm::WorkItem&, xesvm::DeviceAccessor&) {});
    ADD_FAILURE() << "launch succeeded on xe";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Error::Code::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("batch buffers"), std::string::npos) << e.what();
  }
}

TEST(XeDevice, PressurePolicyEvictsTheLeastRecentlyUsedChunksThroughPrefetch) {
  REQUIRE_XE_DEVICE();
  xesvm::RuntimeOptions o;
  // Pressure above 1/16 of the VRAM used, evict down to 1/32; three
  // buffers of 1/32 each (whole 2 MiB chunks): two fit, the third crosses
  // the high watermark. (64 MiB of VRAM: 2 MiB buffers, 4 MiB high.)
  o.high_watermark = 0.0625;
  o.low_watermark = 0.03125;
  xesvm::Runtime rt("xe:", o);
  xe::XeBackend& be = xe_of(rt);
  if (!be.has_vram() || !be.can_read_vram_used()) GTEST_SKIP() << "needs VRAM and a readable MEM_REGIONS used";
  const std::uint64_t vram = be.device_memory().total;
  const std::size_t n = static_cast<std::size_t>(vram / 32) & ~(2 * kMiB - 1);
  if (n == 0) GTEST_SKIP() << "VRAM of " << (vram >> 20) << " MiB: less than 2 MiB per buffer";
  if (be.device_memory().used != 0) GTEST_SKIP() << "another process holds VRAM";
  auto* a = static_cast<std::uint8_t*>(rt.alloc_shared(n));
  auto* b = static_cast<std::uint8_t*>(rt.alloc_shared(n));
  auto* c = static_cast<std::uint8_t*>(rt.alloc_shared(n));
  std::memset(a, 0xa1, n);
  std::memset(b, 0xb2, n);
  std::memset(c, 0xc3, n);
  rt.prefetch(a, n, Location::kDevice);
  rt.prefetch(b, n, Location::kDevice);
  EXPECT_EQ(rt.impl().kernel_pressure()->evictions(), 0u);
  rt.prefetch(c, n, Location::kDevice);  // 3n above the high watermark 2n: a (least recent) goes
  EXPECT_GT(rt.impl().kernel_pressure()->evictions(), 0u);
  EXPECT_LE(be.device_memory().used, 3 * n);
  EXPECT_GT(rt.stats().pages_evicted, 0u);
  for (std::size_t i = 0; i < n; i += 4096) {
    ASSERT_EQ(a[i], 0xa1);
    ASSERT_EQ(b[i], 0xb2);
    ASSERT_EQ(c[i], 0xc3);
  }
  rt.free(a);
  rt.free(b);
  rt.free(c);
}

}  // namespace
