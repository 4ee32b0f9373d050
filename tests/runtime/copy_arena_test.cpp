// The copy arena: the bounded set of workers eviction copies on. Tasks on
// it must never wait for a lock that a thread waiting to copy on it holds.
// The TSan build runs these items on plain threads and cannot see such a
// deadlock, so this runs in the Release (and ASan) build with a watchdog
// that ends the process instead of letting it hang.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <mutex>

#include "test_util.hpp"

namespace xesvm::test {
namespace {

// Ends the process if `f` is not ready in time: a deadlocked Runtime cannot
// be destroyed, so failing the test and carrying on would hang instead.
template <typename T>
void ready_or_die(std::future<T>& f, const char* what) {
  if (f.wait_for(std::chrono::seconds(30)) == std::future_status::ready) return;
  std::fprintf(stderr, "watchdog: %s did not return within 30 s: deadlock on the copy arena\n", what);
  std::fflush(stderr);
  std::_Exit(3);
}

TEST(CopyArena, EvictOfManyRangesDoesNotDeadlockWithCopiesOfRangesItWaitsFor) {
  RuntimeOptions o;
  o.copy_workers = 2;  // the arena's two slots
  Runtime rt(test_uri("sim:vram=16M,workers=2"), o);
  constexpr std::size_t kRange = 2u << 20, kLen = 2 * kRange;  // ranges X and Y
  auto* p = device_resident_shared(rt, kLen, 7);
  ASSERT_NE(p, nullptr);
  // Every other page back to RAM: the device pages left have scattered
  // destinations, so each range's copy is many runs, copied on the arena.
  ASSERT_TRUE(evict_every_other_page(rt, p, kLen));
  ASSERT_TRUE(wait_until([&] { return rt.stats().device_bytes_in_use == kLen / 2; })) << rt.stats().device_bytes_in_use;

  // Two evictions of one range each hold their range's migrate lock and
  // stop before their copy until a third eviction, of both ranges, has put
  // its range-parallel tasks on the arena (where they reach those locks).
  std::mutex mu;
  std::condition_variable cv;
  int arrived = 0;
  bool go = false;
  rt.impl().manager()->set_before_copy_hook([&](std::uint64_t) {
    std::unique_lock lk(mu);
    if (go) return;
    ++arrived;
    cv.notify_all();
    cv.wait(lk, [&] { return go; });
  });
  auto x = std::async(std::launch::async, [&] { return rt.evict(p, kRange); });
  auto y = std::async(std::launch::async, [&] { return rt.evict(p + kRange, kRange); });
  {
    std::unique_lock lk(mu);
    ASSERT_TRUE(cv.wait_for(lk, std::chrono::seconds(10), [&] { return arrived == 2; }))
        << "the single-range evictions never reached their copy";
  }
  auto both = std::async(std::launch::async, [&] { return rt.evict(p, kLen); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  {
    std::lock_guard lk(mu);
    go = true;
  }
  cv.notify_all();
  ready_or_die(x, "evict() of range X");
  ready_or_die(y, "evict() of range Y");
  ready_or_die(both, "evict() of X and Y");
  rt.impl().manager()->set_before_copy_hook(nullptr);
  const std::size_t evicted = x.get().pages_evicted + y.get().pages_evicted + both.get().pages_evicted;
  EXPECT_EQ(evicted, pages(kLen) / 2);
  EXPECT_EQ(rt.residency(p, kLen).device_bytes, 0u);
  EXPECT_EQ(rt.stats().device_bytes_in_use, 0u);
  EXPECT_EQ(mismatches(p, kLen, 7), 0u);
  rt.free(p);
}

}  // namespace
}  // namespace xesvm::test
