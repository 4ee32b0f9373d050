// Randomized operations against a shadow copy: alloc, CPU writes, GPU
// writes and reads, prefetch both ways, evict, free (munmap of an SVM
// allocation), mremap / munmap of application mirrors, and fork (the child
// compares every slot with the shadow). Every byte the CPU or the GPU reads
// is compared with the shadow: 0 mismatches.
//
// XESVM_RANDOM_OPS sets the number of operations (default 20000, the CI
// setting; the long mode runs XESVM_RANDOM_OPS=1000000). XESVM_RANDOM_SEED
// sets the seed (default: fixed); a failure prints the seed, the step and
// the failing slot's recent operations. XESVM_RANDOM_FORK=N forks about once
// in N operations (default 256; 0: never, with the same random draws).
// XESVM_RANDOM_CHECK_EVERY=N compares every slot after every N operations
// (default 1000). XESVM_RANDOM_AUDIT=1 (single-threaded runs) also audits
// the slot each operation touched without touching it: every page the sim
// reports on the device must hold the shadow's bytes in its frame, every
// page in RAM must hold them in place, and every absent page must be zeros
// in the shadow. A failure then names the operation that broke the state.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <thread>

#include "test_util.hpp"

namespace xesvm::test {
namespace {

std::uint64_t env_or(const char* name, std::uint64_t dflt) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 10) : dflt;
}

struct Slot {
  std::uint8_t* p = nullptr;
  std::size_t n = 0;
  bool app = false;  // application mmap + mirror (else alloc_shared)
  std::vector<std::uint8_t> shadow;
  std::string ops;  // the slot's recent operations, for failure messages
  void note(const char* op, std::size_t off = 0, std::size_t len = 0) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s@%zx+%zx ", op, off, len);
    ops += buf;
    if (ops.size() > 600) ops.erase(0, ops.size() - 400);
  }
};

class RandomOps {
 public:
  RandomOps(Runtime& rt, std::uint64_t seed, unsigned max_slots, bool remap = true, bool audit = false)
      : rt_(rt), rng_(seed), max_slots_(max_slots), remap_(remap) {
    // XESVM_RANDOM_FORK=0 leaves fork out; =N forks once in about N operations.
    const std::uint64_t f = env_or("XESVM_RANDOM_FORK", 256);
    fork_every_ = f == 0 ? 256 : f;  // the same draws either way
    fork_ = f != 0;
    check_every_ = std::max<std::uint64_t>(1, env_or("XESVM_RANDOM_CHECK_EVERY", 1000));
    audit_ = audit || env_or("XESVM_RANDOM_AUDIT", 0) != 0;
  }
  ~RandomOps() {
    for (Slot& s : slots_) release(s);
  }

  // Runs `ops` operations; returns the number of mismatching bytes seen.
  std::size_t run(std::uint64_t ops) {
    for (std::uint64_t step = 0; step < ops && mismatches_ == 0; ++step) {
      step_ = step;
      try {
        one();
      } catch (const Error& e) {
        last_ += std::string(" threw: ") + e.what() + " [" + history() + "]";
        return mismatches_ + 1;
      }
      if (audit_ && mismatches_ == 0 && touched_ < slots_.size()) audit(slots_[touched_]);
      if (step % check_every_ == check_every_ - 1) check_all();
    }
    if (mismatches_ == 0) check_all();  // else keep the report of the first
    return mismatches_;
  }
  std::uint64_t step() const { return step_; }
  std::uint64_t forks() const { return forks_; }
  bool forking() const { return fork_; }
  std::uint64_t fork_every() const { return fork_every_; }
  const std::string& last() const { return last_; }

 private:
  std::size_t rnd(std::size_t n) { return n ? rng_() % n : 0; }

  // The slots' layout, for failure messages.
  std::string history() const {
    std::string h;
    char buf[96];
    for (const Slot& s : slots_) {
      std::snprintf(buf, sizeof buf, "%s %p+%zx; ", s.app ? "app" : "svm", static_cast<void*>(s.p), s.n);
      h += buf;
    }
    return h;
  }

  void one() {
    touched_ = ~std::size_t{0};
    if (slots_.empty() || (slots_.size() < max_slots_ && rnd(16) == 0)) return alloc();
    if (rnd(fork_every_) == 0 && fork_) return fork_check();  // (a no-op under TSan: see fork_check)
    touched_ = rnd(slots_.size());
    Slot& s = slots_[touched_];
    const std::size_t off = rnd(s.n);
    const std::size_t len = 1 + rnd(std::min<std::size_t>(s.n - off, 3 * 4096));
    switch (rnd(20)) {
      case 0:
      case 1:
      case 2:
      case 3:
        return cpu_write(s, off, len);
      case 4:
      case 5:
      case 6:
      case 7:
        return gpu_write(s, off, len);
      case 8:
      case 9:
      case 10:
        return gpu_check(s, off, len);
      case 11:
      case 12:
      case 13:
        return cpu_check(s, off, len);
      case 14:
        last_ = "prefetch device";
        s.note("pd", off, len);
        rt_.prefetch(s.p + off, len, Location::kDevice);
        return;
      case 15:
        last_ = "prefetch system";
        s.note("ps", off, len);
        rt_.prefetch(s.p + off, len, Location::kSystem);
        return;
      case 16:
        last_ = "evict";
        s.note("ev", off, len);
        rt_.evict(s.p + off, len);
        return;
      case 17:
        if (s.app && remap_) return remap(s);
        return gpu_write(s, off, len);
      default:
        if (rnd(4) == 0) return drop(s);
        return cpu_check(s, off, len);
    }
  }

  void alloc() {
    static constexpr std::size_t kSizes[] = {4096, 3 * 4096, 64u << 10, 300u << 10, 2u << 20, 3u << 20};
    Slot s;
    s.n = kSizes[rnd(std::size(kSizes))];
    s.app = rnd(3) == 0;
    if (s.app) {
      last_ = "mmap+mirror";
      s.p = static_cast<std::uint8_t*>(map_aligned(s.n, rnd(2) ? (2u << 20) : 4096));
      if (!s.p) return;
      rt_.mirror(s.p, s.n);
    } else {
      last_ = "alloc_shared";
      s.p = static_cast<std::uint8_t*>(rt_.alloc_shared(s.n));
    }
    s.shadow.assign(s.n, 0);
    s.note(s.app ? "mmap+mirror" : "alloc_shared");
    slots_.push_back(std::move(s));
  }

  void release(Slot& s) {
    if (!s.p) return;
    if (!s.app) {
      rt_.free(s.p);
    } else {
      if (rnd(2)) rt_.unmirror(s.p, s.n);
      munmap(s.p, s.n);  // else the UNMAP event tears the mirror down
    }
    s.p = nullptr;
  }

  void drop(Slot& s) {
    last_ = s.app ? "munmap" : "free";
    release(s);
    std::swap(s, slots_.back());
    slots_.pop_back();
  }

  void remap(Slot& s) {
    last_ = "mremap";
    void* dst = map_aligned(s.n, 4096);
    if (!dst) return;
    void* q = mremap(s.p, s.n, s.n, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
    ASSERT_EQ(q, dst);
    char buf[64];
    std::snprintf(buf, sizeof buf, "mremap %p->%p", static_cast<void*>(s.p), q);
    s.note(buf);
    s.p = static_cast<std::uint8_t*>(q);
    drain_events(rt_);  // the runtime hears of the move before the GPU uses the new address
  }

  // fork: the prepare handler brings every device-resident byte home, so the
  // child, which inherits no userfaultfd registration, reads the same bytes
  // as the parent. It checks this thread's slots (another thread's may be
  // mid-write) and reports through its exit status; the parent goes on.
  void fork_check() {
#if defined(__SANITIZE_THREAD__)
    return;  // TSan supports fork in threaded processes only partly; the
             // release and ASan runs cover this operation
#endif
    last_ = "fork";
    for (Slot& s : slots_) s.note("fork");
    int fds[2];
    if (pipe(fds) != 0) return;
    const pid_t pid = fork();
    if (pid < 0) {  // out of processes: not this test's concern
      close(fds[0]);
      close(fds[1]);
      return;
    }
    if (pid == 0) {
      // The first differing page goes back to the parent for the report.
      std::size_t where[3] = {0, 0, 0};  // slot + 1, offset, bytes differing in its page
      for (std::size_t k = 0; k < slots_.size() && !where[0]; ++k) {
        const Slot& s = slots_[k];
        for (std::size_t i = 0; i < s.n; ++i) {
          if (s.p[i] == s.shadow[i]) continue;
          where[0] = k + 1;
          where[1] = i;
          for (std::size_t j = i & ~std::size_t{4095}; j < std::min(s.n, (i | 4095) + 1); ++j) {
            where[2] += s.p[j] != s.shadow[j];
          }
          break;
        }
      }
      [[maybe_unused]] auto w = write(fds[1], where, sizeof where);
      _exit(where[0] == 0 ? 0 : 1);
    }
    close(fds[1]);
    std::size_t where[3] = {0, 0, 0};
    [[maybe_unused]] auto got = read(fds[0], where, sizeof where);
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    ++forks_;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      ++mismatches_;
      last_ = "fork: the child saw bytes that differ from the shadow";
      if (where[0] && where[0] <= slots_.size()) {
        Slot& s = slots_[where[0] - 1];
        const std::size_t page = where[1] & ~std::size_t{4095};
        std::size_t parent_bad = 0;  // what the parent reads there now
        for (std::size_t j = page; j < std::min(s.n, page + 4096); ++j) parent_bad += s.p[j] != s.shadow[j];
        char buf[200];
        std::snprintf(buf, sizeof buf, ", from offset %zx of %s %p+%zx (%zu bytes of its page; the parent reads %zu)",
                      where[1], s.app ? "app" : "svm", static_cast<void*>(s.p), s.n, where[2], parent_bad);
        last_ += buf + std::string("; its recent ops: ") + s.ops;
      }
      last_ += " [" + history() + "]";
    }
  }

  void cpu_write(Slot& s, std::size_t off, std::size_t len) {
    last_ = "cpu write";
    s.note("cw", off, len);
    const auto v = static_cast<std::uint8_t>(rng_());
    for (std::size_t i = 0; i < len; ++i) s.shadow[off + i] = s.p[off + i] = static_cast<std::uint8_t>(v + i);
  }

  void gpu_write(Slot& s, std::size_t off, std::size_t len) {
    last_ = "gpu write";
    s.note("gw", off, len);
    std::vector<std::uint8_t> data(len);
    const auto v = static_cast<std::uint8_t>(rng_());
    for (std::size_t i = 0; i < len; ++i) data[i] = static_cast<std::uint8_t>(v ^ (i * 7));
    const std::uint64_t a = reinterpret_cast<std::uint64_t>(s.p + off);
    rt_.launch(1, [&](const WorkItem&, DeviceAccessor& acc) { acc.write(a, data.data(), len); });
    std::memcpy(s.shadow.data() + off, data.data(), len);
  }

  void gpu_check(Slot& s, std::size_t off, std::size_t len) {
    last_ = "gpu read";
    std::vector<std::uint8_t> data(len);
    const std::uint64_t a = reinterpret_cast<std::uint64_t>(s.p + off);
    rt_.launch(1, [&](const WorkItem&, DeviceAccessor& acc) { acc.read(a, data.data(), len); });
    std::size_t bad = 0, first = 0;
    for (std::size_t i = 0; i < len; ++i) {
      if (data[i] != s.shadow[off + i] && bad++ == 0) first = off + i;
    }
    if (bad) report(s, "gpu read", first, bad);
  }

  void cpu_check(Slot& s, std::size_t off, std::size_t len) {
    last_ = "cpu read";
    std::size_t bad = 0, first = 0;
    for (std::size_t i = 0; i < len; ++i) {
      if (s.p[off + i] != s.shadow[off + i] && bad++ == 0) first = off + i;
    }
    if (bad) report(s, "cpu read", first, bad);
  }

  void report(Slot& s, const char* what, std::size_t first, std::size_t bad) {
    mismatches_ += bad;
    char buf[400];
    std::snprintf(buf, sizeof buf, "%s: %zu bytes differ from offset %zx of %s %p+%zx; its recent ops: ", what, bad,
                  first, s.app ? "app" : "svm", static_cast<void*>(s.p), s.n);
    last_ = buf + s.ops;
  }

  // Compares the slot's state as the sim holds it with the shadow, without
  // a CPU access that would move a page (see XESVM_RANDOM_AUDIT above).
  void audit(Slot& s) {
    sim::SimDevice& dev = sim_device(rt_);
    std::vector<PageSnapshot> snap(pages(s.n));
    dev.snapshot(reinterpret_cast<std::uint64_t>(s.p), snap);
    for (std::size_t i = 0; i < snap.size(); ++i) {
      const std::size_t off = i * 4096, n = std::min<std::size_t>(4096, s.n - off);
      const std::uint8_t* have = nullptr;
      static const std::uint8_t kZeros[4096] = {};
      switch (snap[i].place) {
        case PagePlace::kDevice:
          have = reinterpret_cast<const std::uint8_t*>(dev.frame_bytes(snap[i].frame).data());
          break;
        case PagePlace::kSystem:
          have = s.p + off;
          break;
        case PagePlace::kAbsent:
          have = kZeros;
          break;
      }
      std::size_t bad = 0;
      for (std::size_t k = 0; k < n; ++k) bad += have[k] != s.shadow[off + k];
      if (bad) {
        static const char* const kPlace[] = {"absent", "in RAM", "on the device"};
        std::size_t cpu_bad = 0;  // what a CPU read sees now
        for (std::size_t k = 0; k < n; ++k) cpu_bad += s.p[off + k] != s.shadow[off + k];
        char buf[200];
        std::snprintf(buf, sizeof buf, "audit after %s: page %zx (%s, frame %u): %zu bytes differ (a CPU read: %zu); ",
                      last_.c_str(), off, kPlace[static_cast<int>(snap[i].place)], static_cast<unsigned>(snap[i].frame),
                      bad, cpu_bad);
        report(s, buf, off, bad);
        return;
      }
    }
  }

  void check_all() {
    for (Slot& s : slots_) {
      cpu_check(s, 0, s.n);
      if (mismatches_) return;  // keep the first report
    }
  }

  Runtime& rt_;
  std::mt19937_64 rng_;
  unsigned max_slots_;
  bool remap_;
  std::vector<Slot> slots_;
  std::size_t mismatches_ = 0;
  std::uint64_t step_ = 0;
  std::uint64_t forks_ = 0;
  std::uint64_t fork_every_ = 256;
  bool fork_ = true;
  std::uint64_t check_every_ = 1000;
  bool audit_ = false;
  std::size_t touched_ = ~std::size_t{0};  // the slot the last operation used
  std::string last_;
};

TEST(RandomOps, ShadowCopyAgreesAfterEveryOperation) {
  const std::uint64_t ops = env_or("XESVM_RANDOM_OPS", 20000);
  const std::uint64_t seed = env_or("XESVM_RANDOM_SEED", 20261122);
  Runtime rt(test_uri("sim:vram=16M,workers=2"));
  {
    RandomOps r(rt, seed, 10);
    const std::size_t bad = r.run(ops);
    EXPECT_EQ(bad, 0u) << "seed " << seed << ", step " << r.step() << ", last op " << r.last();
#if !defined(__SANITIZE_THREAD__)
    if (r.forking()) {
      EXPECT_GT(r.forks(), ops / (2 * r.fork_every())) << "the fork operation hardly ran";
    }
#endif
  }
  EXPECT_TRUE(wait_until([&] { return rt.stats().device_bytes_in_use == 0; }))
      << rt.stats().device_bytes_in_use << " bytes of device memory leaked";
  EXPECT_EQ(rt.stats().cpu_mapping_lookups_in_eviction, 0u);
  const sim::CpuMirrorStats cs = sim_device(rt).cpu().stats();
  std::printf("sim: %llu stale UNMAP pieces ignored, %llu unreadable runs left in RAM\n",
              static_cast<unsigned long long>(cs.stale_unmaps), static_cast<unsigned long long>(cs.unreadable_runs));
}

// The same operations, each followed by an audit of the slot it used (see
// XESVM_RANDOM_AUDIT above): a broken state is caught at the operation that
// made it, not when the bytes are next read.
TEST(RandomOps, DeviceAndRamStateMatchesTheShadowAfterEveryOperation) {
  const std::uint64_t ops = env_or("XESVM_RANDOM_OPS", 20000) / 4;
  const std::uint64_t seed = env_or("XESVM_RANDOM_SEED", 20261122) + 7;
  Runtime rt(test_uri("sim:vram=16M,workers=2"));
  RandomOps r(rt, seed, 10, /*remap=*/true, /*audit=*/true);
  EXPECT_EQ(r.run(ops), 0u) << "seed " << seed << ", step " << r.step() << ", last op " << r.last();
}

TEST(RandomOps, ConcurrentThreadsOnDisjointAllocationsAgreeWithTheirShadows) {
  const std::uint64_t ops = env_or("XESVM_RANDOM_OPS", 20000) / 2;
  const std::uint64_t seed = env_or("XESVM_RANDOM_SEED", 20261122);
  Runtime rt(test_uri("sim:vram=16M,workers=2"));
  std::size_t bad[2] = {0, 0};
  std::uint64_t step[2] = {0, 0};
  std::string last[2];
  std::vector<std::thread> ts;
  for (int t = 0; t < 2; ++t) {
    ts.emplace_back([&, t] {
      // No mremap here: see ConcurrentThreadsWithMremap... below.
      RandomOps r(rt, seed + t, 6, /*remap=*/false);
      bad[t] = r.run(ops);
      step[t] = r.step();
      last[t] = r.last();
    });
  }
  for (auto& th : ts) th.join();
  for (int t = 0; t < 2; ++t) {
    EXPECT_EQ(bad[t], 0u) << "thread " << t << ", seed " << seed + t << ", step " << step[t] << ", last op " << last[t];
  }
  EXPECT_TRUE(wait_until([&] { return rt.stats().device_bytes_in_use == 0; }));
}

// Two threads mapping, mirroring, moving and unmapping application memory
// at once: the kernel frees an unmapped or moved range's addresses before
// it queues the event, so the other thread can reuse them and its events
// can be read first. The sim must not let a stale UNMAP tear down a mirror
// that moved in, nor place evicted bytes into a mapping that took over the
// addresses (cpu_mirror.cpp, "Events of different threads").
TEST(RandomOps, ConcurrentThreadsWithMremapAgreeWithTheirShadows) {
  const std::uint64_t ops = env_or("XESVM_RANDOM_OPS", 20000) / 2;
  const std::uint64_t seed = env_or("XESVM_RANDOM_SEED", 20261122);
  Runtime rt(test_uri("sim:vram=16M,workers=2"));
  std::size_t bad[2] = {0, 0};
  std::string last[2];
  std::vector<std::thread> ts;
  for (int t = 0; t < 2; ++t) {
    ts.emplace_back([&, t] {
      RandomOps r(rt, seed + t, 6, /*remap=*/true);
      bad[t] = r.run(ops);
      last[t] = "step " + std::to_string(r.step()) + ", last op " + r.last();
    });
  }
  for (auto& th : ts) th.join();
  for (int t = 0; t < 2; ++t) EXPECT_EQ(bad[t], 0u) << "thread " << t << ", seed " << seed + t << ", " << last[t];
}

}  // namespace
}  // namespace xesvm::test
