// Bad input: every public entry point rejects it with xesvm::Error, the
// right code and a message naming the problem, and leaves nothing behind.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <functional>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace xesvm::test {
namespace {

constexpr const char* kUri = "sim:vram=16M,workers=2";

// Runs f, expects Error with `code` whose message contains every word.
void expect_error(const std::function<void()>& f, Error::Code code, std::initializer_list<const char*> words,
                  const char* what) {
  try {
    f();
    ADD_FAILURE() << what << ": no exception";
  } catch (const Error& e) {
    EXPECT_EQ(static_cast<int>(e.code()), static_cast<int>(code)) << what << ": " << e.what();
    const std::string msg = e.what();
    for (const char* w : words)
      EXPECT_NE(msg.find(w), std::string::npos) << what << ": '" << msg << "' lacks '" << w << "'";
  } catch (const std::exception& e) {
    ADD_FAILURE() << what << ": threw a non-xesvm exception: " << e.what();
  }
}

constexpr auto kInval = Error::Code::kInvalidArgument;

TEST(BadInput, UnknownOrMalformedUrisAreRejectedWithTheReason) {
  expect_error([] { Runtime rt("gpu:0"); }, kInval, {"unknown backend", "gpu:0"}, "unknown scheme");
  expect_error([] { Runtime rt(""); }, kInval, {"unknown backend"}, "empty URI");
  expect_error([] { Runtime rt("sim:vram=3M"); }, kInval, {"vram=3M", "multiple of 2M"}, "vram=3M");
  expect_error([] { Runtime rt("sim:vram=abc"); }, kInval, {"abc", "vram"}, "vram=abc");
  expect_error([] { Runtime rt("sim:vram=0"); }, kInval, {"vram=0"}, "vram=0");
  expect_error([] { Runtime rt("sim:vram=16Q"); }, kInval, {"suffix", "Q"}, "vram=16Q");
  expect_error([] { Runtime rt("sim:vram=99999999G"); }, kInval, {"too large"}, "huge vram");
  expect_error([] { Runtime rt("sim:workers=0"); }, kInval, {"workers=0", "1..256"}, "workers=0");
  expect_error([] { Runtime rt("sim:workers=1000"); }, kInval, {"workers=1000"}, "workers=1000");
  expect_error([] { Runtime rt("sim:colour=blue"); }, kInval, {"unknown option", "colour"}, "unknown key");
  expect_error([] { Runtime rt("sim:vram"); }, kInval, {"vram", "no value"}, "key without value");
  expect_error([] { Runtime rt("sim:link_gbps=-1"); }, kInval, {"link_gbps"}, "negative bandwidth");
  expect_error([] { Runtime rt("sim:kernel_faults=2"); }, kInval, {"kernel_faults"}, "kernel_faults=2");
}

TEST(BadInput, BadRuntimeOptionsAreRejected) {
  RuntimeOptions o;
  o.low_watermark = 0.9;
  o.high_watermark = 0.5;
  expect_error([&] { Runtime rt(kUri, o); }, kInval, {"watermark"}, "low > high");
  RuntimeOptions w;
  w.notifier_window = 3u << 20;
  expect_error([&] { Runtime rt(kUri, w); }, kInval, {"notifier window"}, "window 3 MiB");
}

TEST(BadInput, AllocAndFreeRejectNonsenseAndLeakNothing) {
  Runtime rt(kUri);
  expect_error([&] { rt.alloc_shared(0); }, kInval, {"alloc_shared", "size is 0"}, "zero size");
  expect_error([&] { rt.alloc_shared(4096, 3); }, kInval, {"alignment 3"}, "alignment 3");
  expect_error([&] { rt.alloc_shared(4096, 4u << 20); }, kInval, {"alignment"}, "alignment 4 MiB");
  expect_error([&] { rt.alloc_shared(~std::size_t{0}); }, kInval, {"too large"}, "SIZE_MAX");
  expect_error([&] { rt.alloc_shared(std::size_t{1} << 50); }, kInval, {"too large"}, "1 PiB");
  expect_error([&] { rt.free(nullptr); }, kInval, {"free", "null"}, "free(nullptr)");
  int local = 0;
  expect_error([&] { rt.free(&local); }, kInval, {"free", "not returned by alloc_shared"}, "foreign pointer");
  auto* p = static_cast<std::uint8_t*>(rt.alloc_shared(2u << 20));
  expect_error([&] { rt.free(p + 4096); }, kInval, {"not returned by alloc_shared"}, "interior pointer");
  fill(p, 2u << 20, 1);
  rt.prefetch(p, 2u << 20, Location::kDevice);
  EXPECT_GT(rt.stats().device_bytes_in_use, 0u);
  rt.free(p);
  EXPECT_EQ(rt.stats().device_bytes_in_use, 0u);
  expect_error([&] { rt.free(p); }, kInval, {"freed already"}, "double free");
  EXPECT_EQ(rt.stats().device_bytes_in_use, 0u);
  EXPECT_EQ(rt.impl().manager()->range_count(), 0u);
}

TEST(BadInput, MirrorRejectsNullEmptyPartialOverlappingAndUnmappedRegions) {
  Runtime rt(kUri);
  const std::size_t n = 4u << 20;
  auto* m = static_cast<std::uint8_t*>(map_aligned(n));
  ASSERT_NE(m, nullptr);
  expect_error([&] { rt.mirror(nullptr, 4096); }, kInval, {"mirror", "null"}, "null");
  expect_error([&] { rt.mirror(m, 0); }, kInval, {"mirror", "size is 0"}, "zero length");
  expect_error([&] { rt.mirror(m + 1, 4000); }, kInval, {"no whole 4 KiB page"}, "no whole page");
  expect_error([&] { rt.mirror(m + 100, 8000); }, kInval, {"no whole 4 KiB page"}, "straddles one boundary");
  expect_error([&] { rt.mirror(reinterpret_cast<void*>(~std::uintptr_t{0} - 10), 100); }, kInval, {"wraps"}, "wraps");
  // Unaligned but holding whole pages: only those are mirrored.
  rt.mirror(m + 1, n - 2);
  expect_error([&] { rt.mirror(m + (1u << 20), 4096); }, kInval, {"overlaps"}, "overlapping mirror");
  expect_error([&] { rt.mirror(m, n); }, kInval, {"overlaps"}, "overlapping mirror (covering)");
  // The partial edge pages stayed out: a kernel may not touch them.
  fill(m + 4096, n - 8192, 2);
  EXPECT_EQ(gpu_mismatches(rt, m + 4096, n - 8192, 2), 0u);
  try {
    rt.launch(1, [&](const WorkItem&, DeviceAccessor& acc) {
      std::uint8_t v;
      acc.read(reinterpret_cast<std::uint64_t>(m), &v, 1);
    });
    ADD_FAILURE() << "the partial first page was mirrored";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Error::Code::kDeviceLost);
  }
  expect_error([&] { rt.unmirror(m, n); }, kInval, {"not a mirrored region"}, "unmirror of a different span");
  rt.unmirror(m + 1, n - 2);
  EXPECT_EQ(mismatches(m + 4096, n - 8192, 2), 0u) << "unmirror brought the device data back";
  EXPECT_EQ(rt.stats().device_bytes_in_use, 0u);
  munmap(m, n);
  // Not mapped at all.
  expect_error([&] { rt.mirror(m, n); }, kInval, {"mirror"}, "unmapped region");
  EXPECT_EQ(rt.impl().manager()->range_count(), 0u);
  // A failed mirror leaves nothing registered: the same region works once mapped.
  void* again = mmap(m, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  ASSERT_EQ(again, m);
  rt.mirror(m, n);
  rt.unmirror(m, n);
  munmap(m, n);
}

TEST(BadInput, PrefetchEvictAdviseResidencyRejectBadSpans) {
  Runtime rt(kUri);
  const std::size_t n = 2u << 20;
  auto* p = static_cast<std::uint8_t*>(rt.alloc_shared(n));
  fill(p, n, 3);
  expect_error([&] { rt.prefetch(p, n, Location::kNone); }, kInval, {"prefetch", "none"}, "prefetch to kNone");
  expect_error([&] { rt.prefetch(nullptr, n, Location::kDevice); }, kInval, {"prefetch", "null"}, "prefetch null");
  expect_error([&] { rt.prefetch(p, 0, Location::kDevice); }, kInval, {"prefetch", "size is 0"}, "prefetch 0");
  int local = 0;
  expect_error([&] { rt.prefetch(&local, 4, Location::kDevice); }, kInval, {"not in a mirrored region"},
               "prefetch of non-SVM memory");
  expect_error([&] { rt.evict(nullptr, n); }, kInval, {"evict", "null"}, "evict null");
  expect_error([&] { rt.evict(p, 0); }, kInval, {"evict", "size is 0"}, "evict 0");
  expect_error([&] { rt.advise(nullptr, n, Advice{}); }, kInval, {"advise", "null"}, "advise null");
  expect_error([&] { rt.residency(p, 0); }, kInval, {"residency", "size is 0"}, "residency 0");
  expect_error([&] { rt.evict(reinterpret_cast<void*>(~std::uintptr_t{0} - 10), 100); }, kInval, {"wraps"},
               "evict wraps");
  expect_error([&] { rt.launch(1, Kernel{}); }, kInval, {"empty kernel"}, "empty kernel");
  // None of it moved or leaked anything.
  EXPECT_EQ(rt.stats().device_bytes_in_use, 0u);
  EXPECT_EQ(rt.stats().bytes_to_device, 0u);
  EXPECT_EQ(mismatches(p, n, 3), 0u);
  rt.free(p);
  EXPECT_EQ(rt.stats().device_bytes_in_use, 0u);
}

TEST(BadInput, DuplicateUriKeysAndTunablesOutOfRangeAreRejected) {
  expect_error([] { Runtime rt("sim:vram=64M,vram=32M"); }, kInval, {"vram", "twice"}, "vram twice");
  expect_error([] { Runtime rt("sim:workers=1,kernel_faults=0,workers=2"); }, kInval, {"workers", "twice"},
               "workers twice");
  auto with = [](auto set) {
    RuntimeOptions o;
    set(o);
    return o;
  };
  expect_error([&] { Runtime rt(kUri, with([](RuntimeOptions& o) { o.copy_workers = 0; })); }, kInval,
               {"copy_workers = 0", "1..64"}, "copy_workers 0");
  expect_error([&] { Runtime rt(kUri, with([](RuntimeOptions& o) { o.copy_workers = 100000; })); }, kInval,
               {"copy_workers = 100000"}, "copy_workers huge");
  expect_error([&] { Runtime rt(kUri, with([](RuntimeOptions& o) { o.evict_retries = ~0u; })); }, kInval,
               {"evict_retries"}, "evict_retries huge");
  expect_error([&] { Runtime rt(kUri, with([](RuntimeOptions& o) { o.thrash_threshold = 0; })); }, kInval,
               {"thrash_threshold = 0"}, "thrash_threshold 0");
  expect_error([&] { Runtime rt(kUri, with([](RuntimeOptions& o) { o.thrash_window_ns = 0; })); }, kInval,
               {"thrash_window_ns"}, "thrash window 0");
}

TEST(BadInput, InvalidLocationsAndNonSvmMemoryAreRejectedByEveryCall) {
  Runtime rt(kUri);
  const std::size_t n = 2u << 20;
  auto* p = static_cast<std::uint8_t*>(rt.alloc_shared(n));
  const auto bad = static_cast<Location>(9);
  expect_error([&] { rt.prefetch(p, n, bad); }, kInval, {"prefetch", "location 9"}, "prefetch Location(9)");
  expect_error(
      [&] {
        rt.advise(p, n, Advice{bad, false, false});
      },
      kInval, {"advise", "location 9"}, "advise Location(9)");
  std::vector<std::uint8_t> heap(3 * 4096);
  expect_error(
      [&] {
        rt.advise(heap.data(), heap.size(), Advice{Location::kDevice, false, false});
      },
      kInval, {"advise", "not in a mirrored region"}, "advise of non-SVM memory");
  expect_error([&] { rt.evict(heap.data(), heap.size()); }, kInval, {"evict", "not in a mirrored region"},
               "evict of non-SVM memory");
  expect_error([&] { rt.prefetch(heap.data(), heap.size(), Location::kSystem); }, kInval,
               {"prefetch", "not in a mirrored region"}, "prefetch to system of non-SVM memory");
  // Read-mostly is not applied by the sim: said so, never silently.
  EXPECT_FALSE(rt.advise(p, n, Advice{Location::kNone, true, false}));
  EXPECT_TRUE(rt.advise(p, n, Advice{Location::kNone, false, true}));
  rt.free(p);
}

TEST(BadInput, PrefetchReturnsTheBytesOfTheRequestItMovedAndNoMore) {
  Runtime rt(kUri);
  const std::size_t n = 4u << 20;
  auto* p = static_cast<std::uint8_t*>(rt.alloc_shared(n));
  fill(p, n, 5);
  EXPECT_EQ(rt.prefetch(p + 100, 41271, Location::kDevice), 41271u);
  EXPECT_EQ(rt.prefetch(p + 100, 41271, Location::kDevice), 0u) << "nothing left to move";
  EXPECT_EQ(rt.prefetch(p + 100, 41271, Location::kSystem), 41271u);
  EXPECT_EQ(rt.prefetch(p + 100, 41271, Location::kSystem), 0u);
  // The first 2 MiB range moved as a whole and is still on the device but
  // for the 11 pages brought back: only those are moved (and counted) now.
  EXPECT_EQ(rt.prefetch(p, 2u << 20, Location::kDevice), 11u * 4096);
  EXPECT_EQ(rt.prefetch(p, n, Location::kSystem), 2u << 20) << "only the first range was on the device";
  EXPECT_EQ(rt.prefetch(p, n, Location::kDevice), n);
  EXPECT_EQ(rt.prefetch(p + 4096 + 7, 1, Location::kSystem), 1u);
  EXPECT_EQ(mismatches(p, n, 5), 0u);
  rt.free(p);
}

TEST(BadInput, EveryCallOnAMovedFromRuntimeIsAClearError) {
  Runtime rt(kUri);
  Runtime other(std::move(rt));
  int x = 0;
  expect_error([&] { rt.alloc_shared(4096); }, kInval, {"alloc_shared", "moved from"}, "alloc_shared");
  expect_error([&] { rt.mirror(&x, 4096); }, kInval, {"mirror", "moved from"}, "mirror");
  expect_error([&] { rt.prefetch(&x, 4, Location::kDevice); }, kInval, {"moved from"}, "prefetch");
  expect_error([&] { rt.launch(1, [](const WorkItem&, DeviceAccessor&) {}); }, kInval, {"moved from"}, "launch");
  expect_error([&] { (void)rt.stats(); }, kInval, {"stats", "moved from"}, "stats");
  expect_error([&] { (void)rt.capabilities(); }, kInval, {"moved from"}, "capabilities");
  rt = std::move(other);  // assignment revives it
  void* p = rt.alloc_shared(4096);
  rt.free(p);
}

TEST(BadInput, KernelTouchingNonSvmMemoryIsDeviceLostAndLeavesNothing) {
  Runtime rt(kUri);
  std::vector<std::uint8_t> heap(4096, 7);
  auto* p = static_cast<std::uint8_t*>(rt.alloc_shared(1u << 20));
  try {
    rt.launch(4, [&](const WorkItem& wi, DeviceAccessor& acc) {
      std::uint8_t v = 1;
      acc.write(reinterpret_cast<std::uint64_t>(p) + wi.global_id * 4096, &v, 1);
      acc.write(reinterpret_cast<std::uint64_t>(heap.data()), &v, 1);
    });
    ADD_FAILURE() << "kernel wrote to non-SVM memory";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Error::Code::kDeviceLost);
    EXPECT_NE(std::string(e.what()).find("0x"), std::string::npos) << "names the address: " << e.what();
  }
  EXPECT_EQ(heap[0], 7) << "the fatal write did not land";
  rt.free(p);
  EXPECT_EQ(rt.stats().device_bytes_in_use, 0u);
  // The runtime still works afterwards.
  auto* q = static_cast<std::uint8_t*>(rt.alloc_shared(1u << 20));
  rt.launch(pages(1u << 20), write_pattern_kernel(q, 1u << 20, 4));
  EXPECT_EQ(mismatches(q, 1u << 20, 4), 0u);
  rt.free(q);
}

}  // namespace
}  // namespace xesvm::test
