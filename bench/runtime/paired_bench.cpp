// paired_bench: a subject against its baseline, interleaved.
//
// Each case times its subject and its baseline alternately (A B A B ...) in
// one process over the same buffers where it can (the order alternates
// A B, B A, ...), so load on the machine
// (other builds, a guest) falls on both sides alike. A pair's ratio is
// subject/baseline in the case's sense (a throughput ratio or a time ratio,
// as the case says); the report gives the median of the paired ratios and
// their spread (min, 25th and 75th percentile, max), and a verdict against
// the case's goal only when the pairs suffice (bench/README.md, "Paired
// benchmarks", says how many and why).
//
//   paired_bench [--pairs N] [--case NAME]... [--json FILE]
//
// Cases:
//   cpu_readback   CPU read-back of a device-resident 256 MiB buffer in 2 MiB
//                  ranges (one touch per page) vs raw UFFDIO_COPY of the same
//                  256 MiB in 2 MiB pieces on one thread; throughput ratio,
//                  goal >= 0.8.
//   gpu_fault      2 MiB GPU-fault service (launch + fault + migration +
//                  bind; each side of a pair is 16 of them) vs the raw write-protect + memcpy + MADV_DONTNEED +
//                  unprotect of 2 MiB on a userfaultfd without an event
//                  reader; time ratio, goal <= 1.3.
//   gpu_fault_memcpy  the same fault vs a cache-hot memcpy of 2 MiB; time
//                  ratio, informational.
//   evict_contiguous  Runtime::evict of 256 MiB in 2 MiB-contiguous frames
//                  (2 copy workers) vs raw UFFDIO_COPY of 2 MiB pieces on 2
//                  threads; throughput ratio, goal >= 0.8.
//   evict_scattered   the same from 4 KiB frames no two adjacent vs raw 4 KiB
//                  pieces from every other source page on 2 threads;
//                  throughput ratio, goal >= 0.7.
//   coalescing     BatchCopier::copy of 256 MiB of contiguous pages over the
//                  raw mechanism, coalesced vs page by page (1 worker);
//                  throughput ratio, goal >= 1.2.
//   invalidation   SvmManager::invalidate of one 4 KiB page (a CPU fault's
//                  migrate_to_ram) at random ranges among 1,000,000 ranges of
//                  4 KiB vs among 1,000, over a mechanism that holds nothing
//                  (the runtime's tree, windows and mirrors are real); time
//                  ratio, goal <= 1.5.
//   invalidation_compact  the same with the 1,000 target ranges made before
//                  the others (their memory as compact as among 1,000):
//                  the tree's share of the ratio without the heap's.
//
// Exit status: 0 when every verdict given is PASS or only spreads are
// reported, 1 on a MISS, 2 on bad usage or a failed setup.
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench_memory.hpp"
#include "runtime/backend.hpp"
#include "runtime/batch_copy.hpp"
#include "runtime/svm_manager.hpp"
#include "xesvm/xesvm.hpp"

namespace {

using xesvm::bench::map_aligned;
using xesvm::bench::RawUffd;
using Clock = std::chrono::steady_clock;
constexpr std::size_t kPage = 4096;
constexpr std::size_t k2M = 2u << 20;

// Fewer pairs than this give no verdict: with 9 pairs the median lies
// between the 3rd and 7th smallest ratio with probability ~0.96 whatever
// the ratios' distribution (a sign-test bound), which is the band the
// verdict is read against.
constexpr unsigned kMinPairsForVerdict = 9;

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

struct Case {
  std::string name;
  std::string ratio;  // what a pair's ratio is
  double goal;        // the ratio's target; 0: informational, no verdict
  bool at_least;      // goal is a lower bound (else an upper bound)
  // Sets the case up and returns its pair runner: one subject and one
  // baseline run (the subject first if the argument is true), returning
  // subject/baseline in the case's sense.
  std::function<std::function<double(bool)>()> setup;
};

struct Summary {
  std::vector<double> ratios;
  double pct(double q) const {
    std::vector<double> s = ratios;
    std::sort(s.begin(), s.end());
    const double at = q * static_cast<double>(s.size() - 1);
    const std::size_t lo = static_cast<std::size_t>(at);
    const std::size_t hi = std::min(lo + 1, s.size() - 1);
    return s[lo] + (s[hi] - s[lo]) * (at - static_cast<double>(lo));
  }
};

// How a pair's ratio is formed from the two times: subject / baseline
// (kTime: lower is better) or baseline / subject (kThroughput, the same
// bytes moved on both sides: higher is better).
enum class Ratio { kTime, kThroughput };

// The pair runner of a case: the subject and the baseline, in the order
// asked, and their ratio.
std::function<double(bool)> paired(std::function<double()> subject, std::function<double()> baseline, Ratio ratio) {
  return [subject, baseline, ratio](bool subject_first) {
    double s = 0, b = 0;
    if (subject_first) {
      s = subject();
      b = baseline();
    } else {
      b = baseline();
      s = subject();
    }
    return ratio == Ratio::kTime ? s / b : b / s;
  };
}

// --- cases -----------------------------------------------------------------

std::function<double(bool)> cpu_readback() {
  constexpr std::size_t kBytes = 256u << 20;
  struct State {
    xesvm::Runtime rt{"sim:vram=512M,workers=2"};
    std::uint8_t* p = nullptr;
    std::uint8_t* src = nullptr;
    RawUffd raw{kBytes};
  };
  auto st = std::make_shared<State>();
  st->p = static_cast<std::uint8_t*>(st->rt.alloc_shared(kBytes));
  st->src = static_cast<std::uint8_t*>(map_aligned(kBytes));
  for (std::size_t i = 0; i < kBytes; i += 8) {
    const std::uint64_t v = i * 0x9E3779B97F4A7C15ull;
    std::memcpy(st->p + i, &v, 8);
    std::memcpy(st->src + i, &v, 8);
  }
  auto subject = [st] {
    // The whole buffer device-resident in 2 MiB ranges (the prefetch is not
    // timed), then one CPU read per page.
    if (st->rt.prefetch(st->p, kBytes, xesvm::Location::kDevice) != kBytes &&
        st->rt.residency(st->p, kBytes).device_bytes != kBytes) {
      throw std::runtime_error("cpu_readback: the buffer did not become device-resident");
    }
    std::uint64_t sum = 0;
    const auto t0 = Clock::now();
    for (std::size_t off = 0; off < kBytes; off += kPage) sum += reinterpret_cast<volatile std::uint8_t*>(st->p)[off];
    const double t = seconds(Clock::now() - t0);
    if (st->rt.residency(st->p, kBytes).device_bytes != 0) throw std::runtime_error("cpu_readback: pages stayed");
    std::uint64_t want = 0;
    for (std::size_t off = 0; off < kBytes; off += kPage) want += st->src[off];
    if (sum != want) throw std::runtime_error("cpu_readback: the CPU read other bytes than it wrote");
    return t;
  };
  auto baseline = [st] {  // the raw mechanism moves the same bytes
    st->raw.empty();
    const auto t0 = Clock::now();
    st->raw.place_all(st->src, k2M);
    return seconds(Clock::now() - t0);
  };
  return paired(subject, baseline, Ratio::kThroughput);
}

// One GPU fault of a fresh 2 MiB buffer the CPU filled: launch + fault +
// migration of the chunk + bind. Returns its time.
double gpu_fault_2m(xesvm::Runtime& rt) {
  auto* p = static_cast<std::uint8_t*>(rt.alloc_shared(k2M));
  std::memset(p, 0x5a, k2M);
  const std::uint64_t a = reinterpret_cast<std::uint64_t>(p) + 12345;
  const auto t0 = Clock::now();
  rt.launch(1, [a](const xesvm::WorkItem&, xesvm::DeviceAccessor& acc) {
    std::uint8_t v;
    acc.read(a, &v, 1);
    if (v != 0x5a) throw std::runtime_error("gpu_fault: the GPU read other bytes than the CPU wrote");
  });
  const double t = seconds(Clock::now() - t0);
  if (rt.residency(p, k2M).device_bytes != k2M) throw std::runtime_error("gpu_fault: the chunk did not migrate");
  rt.free(p);
  return t;
}

// The raw mechanism of a migration to the device: write-protect 2 MiB of
// registered memory, copy it out, drop it, lift the protection; on a
// userfaultfd of its own with no event reader.
class RawMigration {
 public:
  RawMigration() {
    fd_ = static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
    if (fd_ < 0) fd_ = static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY));
    if (fd_ < 0) throw std::runtime_error("userfaultfd failed");
    uffdio_api api{UFFD_API, UFFD_FEATURE_PAGEFAULT_FLAG_WP, 0};
    if (ioctl(fd_, UFFDIO_API, &api) < 0) throw std::runtime_error("UFFDIO_API (write-protect) failed");
    src_ = static_cast<std::uint8_t*>(map_aligned(k2M));
    frames_ = static_cast<std::uint8_t*>(map_aligned(k2M));
    std::memset(frames_, 0, k2M);
    uffdio_register reg{};
    reg.range = {reinterpret_cast<std::uint64_t>(src_), k2M};
    reg.mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP;
    if (ioctl(fd_, UFFDIO_REGISTER, &reg) < 0) throw std::runtime_error("UFFDIO_REGISTER (wp) failed");
  }
  ~RawMigration() {
    munmap(src_, k2M);
    munmap(frames_, k2M);
    close(fd_);
  }
  RawMigration(const RawMigration&) = delete;
  RawMigration& operator=(const RawMigration&) = delete;
  double run() {
    // Populated afresh, like the buffer of the fault (not timed). The
    // range is empty here, so UFFDIO_COPY populates it without a fault.
    std::vector<std::uint8_t> fill(k2M, 0x5a);
    uffdio_copy c{};
    c.dst = reinterpret_cast<std::uint64_t>(src_);
    c.src = reinterpret_cast<std::uint64_t>(fill.data());
    c.len = k2M;
    if (ioctl(fd_, UFFDIO_COPY, &c) < 0) throw std::runtime_error("UFFDIO_COPY (populate) failed");
    const auto t0 = Clock::now();
    uffdio_writeprotect wp{{reinterpret_cast<std::uint64_t>(src_), k2M}, UFFDIO_WRITEPROTECT_MODE_WP};
    if (ioctl(fd_, UFFDIO_WRITEPROTECT, &wp) < 0) throw std::runtime_error("UFFDIO_WRITEPROTECT failed");
    std::memcpy(frames_, src_, k2M);
    madvise(src_, k2M, MADV_DONTNEED);
    wp.mode = 0;
    ioctl(fd_, UFFDIO_WRITEPROTECT, &wp);
    const double t = seconds(Clock::now() - t0);
    if (frames_[12345] != 0x5a) throw std::runtime_error("raw migration: the copy is wrong");
    return t;
  }

 private:
  int fd_ = -1;
  std::uint8_t* src_ = nullptr;
  std::uint8_t* frames_ = nullptr;
};

// A side of a pair that is one ~1 ms operation is at the mercy of one
// scheduling delay: each side runs it kBatch times and sums the times.
constexpr int kBatch = 16;
template <class F>
double batch(F f) {
  double t = 0;
  for (int i = 0; i < kBatch; ++i) t += f();
  return t;
}

std::function<double(bool)> gpu_fault() {
  auto rt = std::make_shared<xesvm::Runtime>("sim:vram=64M,workers=2");
  auto raw = std::make_shared<RawMigration>();
  return paired([rt] { return batch([&] { return gpu_fault_2m(*rt); }); },
                [raw] { return batch([&] { return raw->run(); }); }, Ratio::kTime);
}

std::function<double(bool)> gpu_fault_vs_memcpy() {
  auto rt = std::make_shared<xesvm::Runtime>("sim:vram=64M,workers=2");
  auto bufs = std::make_shared<std::pair<std::vector<std::uint8_t>, std::vector<std::uint8_t>>>(
      std::vector<std::uint8_t>(k2M, 1), std::vector<std::uint8_t>(k2M, 2));
  return paired([rt] { return batch([&] { return gpu_fault_2m(*rt); }); },
                [bufs] {
                  return batch([&] {
                    // Cache-hot: the same two buffers every time (the
                    // old baseline of this figure).
                    const auto t0 = Clock::now();
                    std::memcpy(bufs->second.data(), bufs->first.data(), k2M);
                    asm volatile("" ::"r"(bufs->second.data()) : "memory");
                    return seconds(Clock::now() - t0);
                  });
                },
                Ratio::kTime);
}

// Eviction of 256 MiB against the raw mechanism on two threads, as
// bench/compare.py's figures, now paired. Contiguous: 2 MiB-contiguous
// frames vs 2 MiB pieces; scattered: 4 KiB frames no two adjacent vs 4 KiB
// pieces from every other source page.
std::function<double(bool)> eviction(bool scattered) {
  constexpr std::size_t kBytes = 256u << 20;
  struct State {
    std::unique_ptr<xesvm::Runtime> rt;
    std::uint8_t* frag = nullptr;
    std::uint8_t* p = nullptr;
    std::uint8_t* src = nullptr;
    RawUffd raw{kBytes};
  };
  auto st = std::make_shared<State>();
  xesvm::RuntimeOptions o;
  o.copy_workers = 2;
  o.high_watermark = 1.0;  // no pressure eviction: the layout stays as made
  st->rt = std::make_unique<xesvm::Runtime>("sim:vram=512M,workers=2", o);
  if (scattered) {
    // Fill the device, then evict every other page: 4 KiB holes only.
    const std::size_t vram = 2 * kBytes;
    st->frag = static_cast<std::uint8_t*>(st->rt->alloc_shared(vram));
    std::memset(st->frag, 7, vram);
    st->rt->prefetch(st->frag, vram, xesvm::Location::kDevice);
    for (std::size_t off = 0; off < vram; off += 2 * kPage) st->rt->evict(st->frag + off, kPage);
  }
  st->p = static_cast<std::uint8_t*>(st->rt->alloc_shared(kBytes));
  std::memset(st->p, 0x42, kBytes);
  const std::size_t stride = scattered ? 2 * kPage : k2M;
  const std::size_t piece = scattered ? kPage : k2M;
  const std::size_t src_bytes = kBytes / piece * stride;
  st->src = static_cast<std::uint8_t*>(map_aligned(src_bytes));
  std::memset(st->src, 0x3c, src_bytes);
  auto subject = [st] {
    st->rt->prefetch(st->p, kBytes, xesvm::Location::kDevice);  // not timed
    if (st->rt->residency(st->p, kBytes).device_bytes != kBytes) throw std::runtime_error("eviction: not resident");
    const auto t0 = Clock::now();
    const xesvm::EvictResult r = st->rt->evict(st->p, kBytes);
    const double t = seconds(Clock::now() - t0);
    if (r.pages_evicted != kBytes / kPage) throw std::runtime_error("eviction: not every page was evicted");
    if (st->p[kBytes - 1] != 0x42 || st->p[12345] != 0x42) throw std::runtime_error("eviction: bytes changed");
    return t;
  };
  auto baseline = [st, piece, stride] {
    st->raw.empty();
    const auto t0 = Clock::now();
    st->raw.place_all(st->src, piece, 2, stride);
    return seconds(Clock::now() - t0);
  };
  return paired(subject, baseline, Ratio::kThroughput);
}

// The batch copy over the raw mechanism, one worker: 256 MiB of contiguous
// pages coalesced into runs vs copied page by page, over the same buffers.
class RawEngine final : public xesvm::CopyEngine {
 public:
  RawEngine(const RawUffd& raw, std::span<const xesvm::CopyPage> pages) : raw_(raw), pages_(pages) {}
  xesvm::CopyStatus copy(const xesvm::CopyRun& run) override { return raw_.copy(run.dst, run.src, run.len); }
  std::uint64_t current_address(std::size_t index) override { return pages_[index].dst; }

 private:
  const RawUffd& raw_;
  std::span<const xesvm::CopyPage> pages_;
};

std::function<double(bool)> coalescing() {
  constexpr std::size_t kBytes = 256u << 20;
  struct State {
    RawUffd raw{kBytes};
    std::uint8_t* src = nullptr;
    std::vector<xesvm::CopyPage> pages;
    xesvm::BatchCopier coalesced{xesvm::BatchCopyOptions{1, 256u << 10, 2u << 20, true}};
    xesvm::BatchCopier by_page{xesvm::BatchCopyOptions{1, 256u << 10, 2u << 20, false}};
  };
  auto st = std::make_shared<State>();
  st->src = static_cast<std::uint8_t*>(map_aligned(kBytes));
  std::memset(st->src, 0x11, kBytes);
  st->pages.resize(kBytes / kPage);
  for (std::size_t i = 0; i < st->pages.size(); ++i) {
    st->pages[i] = {reinterpret_cast<const std::byte*>(st->src + i * kPage),
                    reinterpret_cast<std::uint64_t>(st->raw.dst()) + i * kPage};
  }
  auto run = [st](xesvm::BatchCopier& copier) {
    st->raw.empty();
    RawEngine engine(st->raw, st->pages);
    std::vector<std::uint8_t> done(st->pages.size());
    const auto t0 = Clock::now();
    copier.copy(st->pages, engine, done);
    const double t = seconds(Clock::now() - t0);
    if (std::find(done.begin(), done.end(), 0) != done.end()) throw std::runtime_error("coalescing: a page missed");
    return t;
  };
  // Subject: coalesced; the ratio is its throughput gain over page by page.
  return paired([st, run] { return run(st->coalesced); }, [st, run] { return run(st->by_page); }, Ratio::kThroughput);
}

// A mechanism that holds nothing: device memory is never available, every
// page is a system page, binds and unbinds are no-ops. The runtime's own
// books (range tree, notifier windows, mirrors) are the real ones, which is
// what an invalidation's cost among many ranges is about.
class NullMechanism final : public xesvm::MechanismFace {
 public:
  std::optional<std::vector<xesvm::FrameId>> alloc_frames(std::size_t, std::size_t, xesvm::OwnerId) override {
    return std::nullopt;
  }
  void free_frames(std::span<const xesvm::FrameId>) override {}
  xesvm::OwnerId frame_owner(xesvm::FrameId) const override { return xesvm::kNoOwner; }
  std::vector<xesvm::FrameId> frames_of(xesvm::OwnerId) const override { return {}; }
  xesvm::DeviceMemoryUse device_memory() const override { return {std::uint64_t{1} << 40, 0, 0}; }
  void mirror(std::uint64_t, std::size_t, xesvm::MirrorClient&) override {}
  void unmirror(std::uint64_t, std::size_t) override {}
  void snapshot(std::uint64_t, std::span<xesvm::PageSnapshot> out) override {
    for (auto& p : out) p = {xesvm::PagePlace::kSystem, true, xesvm::kNoFrame};
  }
  std::size_t migrate_to_device(std::span<const std::uint64_t>, std::span<xesvm::FrameId>) override { return 0; }
  bool frame_trylock(xesvm::FrameId) override { return false; }
  void frame_unlock(xesvm::FrameId) override {}
  std::uint64_t frame_address(xesvm::FrameId) const override { return 0; }
  void unmap(std::span<const xesvm::FrameId>) override {}
  xesvm::CopyStatus place(std::uint64_t, const std::byte*, std::size_t) override { return {}; }
  void finalize(std::span<const xesvm::FrameId>, std::span<const std::uint8_t>) override {}
  std::span<const std::byte> frame_bytes(xesvm::FrameId) const override { return {}; }
  bool bind(std::uint64_t, std::span<const xesvm::PageSnapshot>) override { return true; }
  void unbind(std::uint64_t, std::uint64_t) override {}
};

// An SvmManager over the null mechanism with `n` ranges of 4 KiB (4 KiB
// gaps: each its own mirror, each made by a GPU fault), and the timing of
// `calls` CPU invalidations of one 4 KiB page at 1,000 distinct random ranges
// among them (all of them when n is 1,000). With `targets_first` the target
// ranges are made before the others, so their Range objects, frame tables
// and block-index entries are allocated as close together as among 1,000
// ranges: what still differs between the sides is the tree (its depth, the
// spread of the block index), not where the heap happened to put the ranges
// touched.
struct ManyRanges {
  static constexpr std::uint64_t kBase = std::uint64_t{1} << 40;
  NullMechanism mech;
  xesvm::SvmManager mgr{mech, xesvm::RuntimeOptions{}};
  std::vector<std::uint64_t> targets;
  ManyRanges(std::size_t n, bool targets_first) {
    std::uint64_t x = 88172645463325252ull;  // xorshift: the same targets every run
    std::vector<char> is_target(n, 0);
    while (targets.size() < std::min<std::size_t>(1000, n)) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      const std::size_t i = x % n;
      if (is_target[i]) continue;
      is_target[i] = 1;
      targets.push_back(kBase + i * 2 * kPage);
    }
    auto make = [&](std::uint64_t a) {
      mgr.mirror(a, kPage);
      if (!mgr.handle_gpu_fault(a, xesvm::Access::kRead)) throw std::runtime_error("invalidation: fault refused");
    };
    if (targets_first) {
      for (std::uint64_t a : targets) make(a);
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (!targets_first || !is_target[i]) make(kBase + i * 2 * kPage);
    }
    if (mgr.range_count() != n) throw std::runtime_error("invalidation: the ranges were not made");
  }
  double run(std::size_t calls) {
    const auto t0 = Clock::now();
    for (std::size_t i = 0; i < calls; ++i) {
      const std::uint64_t a = targets[i % targets.size()];
      mgr.invalidate(xesvm::Invalidation{xesvm::InvalidationKind::kMigratedToRam, a, a + kPage, 0, {}});
    }
    return seconds(Clock::now() - t0);
  }
};

std::function<double(bool)> invalidation(bool targets_first) {
  auto many = std::make_shared<ManyRanges>(1'000'000, targets_first);
  auto few = std::make_shared<ManyRanges>(1'000, targets_first);
  constexpr std::size_t kCalls = 200'000;
  return paired([many] { return many->run(kCalls); }, [few] { return few->run(kCalls); }, Ratio::kTime);
}

std::vector<Case> all_cases() {
  return {
      {"cpu_readback", "throughput: CPU read-back of 256 MiB device-resident / raw UFFDIO_COPY 2M x1", 0.8, true,
       cpu_readback},
      {"gpu_fault", "time: 2 MiB GPU-fault service / raw write-protect + copy + drop of 2 MiB", 1.3, false, gpu_fault},
      {"gpu_fault_memcpy", "time: 2 MiB GPU-fault service / cache-hot memcpy of 2 MiB", 0, false, gpu_fault_vs_memcpy},
      {"evict_contiguous", "throughput: evict 256 MiB, 2 MiB-contiguous frames / raw UFFDIO_COPY 2M x2", 0.8, true,
       [] { return eviction(false); }},
      {"evict_scattered", "throughput: evict 256 MiB, scattered 4K frames / raw UFFDIO_COPY 4K x2", 0.7, true,
       [] { return eviction(true); }},
      {"coalescing", "throughput: batch copy of 256 MiB coalesced / page by page, 1 worker", 1.2, true, coalescing},
      {"invalidation", "time: a 4 KiB CPU invalidation among 1,000,000 ranges / among 1,000", 1.5, false,
       [] { return invalidation(false); }},
      {"invalidation_compact", "time: the same, the 1,000 target ranges made first (compact on the heap)", 1.5, false,
       [] { return invalidation(true); }},
  };
}

void usage() {
  std::fprintf(stderr, "usage: paired_bench [--pairs N] [--case NAME]... [--json FILE]\ncases:");
  for (const Case& c : all_cases()) std::fprintf(stderr, " %s", c.name.c_str());
  std::fprintf(stderr, "\n");
}

}  // namespace

int main(int argc, char** argv) {
  unsigned pairs = 15;
  std::vector<std::string> wanted;
  std::string json;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--pairs" && i + 1 < argc) {
      pairs = static_cast<unsigned>(std::stoul(argv[++i]));
    } else if (a == "--case" && i + 1 < argc) {
      wanted.emplace_back(argv[++i]);
    } else if (a == "--json" && i + 1 < argc) {
      json = argv[++i];
    } else {
      usage();
      return 2;
    }
  }
  if (pairs == 0) {
    std::fprintf(stderr, "paired_bench: --pairs 0; expected at least 1\n");
    return 2;
  }
  std::vector<Case> cases;
  for (const Case& c : all_cases()) {
    if (wanted.empty() || std::find(wanted.begin(), wanted.end(), c.name) != wanted.end()) cases.push_back(c);
  }
  for (const std::string& w : wanted) {
    if (std::none_of(cases.begin(), cases.end(), [&](const Case& c) { return c.name == w; })) {
      std::fprintf(stderr, "paired_bench: unknown case '%s'\n", w.c_str());
      usage();
      return 2;
    }
  }
  auto loadavg = [] {
    char buf[64] = "?";
    if (FILE* f = std::fopen("/proc/loadavg", "r")) {
      if (!std::fgets(buf, sizeof buf, f)) buf[0] = 0;
      std::fclose(f);
    }
    std::string l(buf);
    return l.substr(0, l.find(' ', l.find(' ', l.find(' ') + 1) + 1));
  };
  std::printf("load average at start: %s\n", loadavg().c_str());
  int status = 0;
  std::string out = "[";
  for (const Case& c : cases) {
    Summary s;
    try {
      auto run_pair = c.setup();
      run_pair(true);  // warm-up pair, not counted
      // A B, B A, A B, ...: neither side always runs first (after the
      // other's cache and page-table effects).
      for (unsigned k = 0; k < pairs; ++k) s.ratios.push_back(run_pair(k % 2 == 0));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "paired_bench: %s: %s\n", c.name.c_str(), e.what());
      return 2;
    }
    const double med = s.pct(0.5);
    const bool enough = s.ratios.size() >= kMinPairsForVerdict;
    const bool info = c.goal <= 0;
    const bool pass = info || (c.at_least ? med >= c.goal : med <= c.goal);
    const char* verdict = info ? "info" : !enough ? "no verdict (too few pairs)" : pass ? "PASS" : "MISS";
    if (enough && !pass) status = 1;
    std::printf("%-14s %s\n  pairs %zu  median %.3f  [min %.3f  p25 %.3f  p75 %.3f  max %.3f]  goal %s %.2f  %s\n",
                c.name.c_str(), c.ratio.c_str(), s.ratios.size(), med, s.pct(0), s.pct(0.25), s.pct(0.75), s.pct(1),
                c.at_least ? ">=" : "<=", c.goal, verdict);
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "%s{\"case\":\"%s\",\"pairs\":%zu,\"median\":%.4f,\"min\":%.4f,\"p25\":%.4f,\"p75\":%.4f,"
                  "\"max\":%.4f,\"goal\":%.3f,\"at_least\":%s,\"verdict\":\"%s\"}",
                  out.size() > 1 ? "," : "", c.name.c_str(), s.ratios.size(), med, s.pct(0), s.pct(0.25), s.pct(0.75),
                  s.pct(1), c.goal, c.at_least ? "true" : "false",
                  info      ? "info"
                  : !enough ? "none"
                  : pass    ? "PASS"
                            : "MISS");
    out += buf;
  }
  out += "]\n";
  std::printf("load average at end: %s\n", loadavg().c_str());
  if (!json.empty()) {
    FILE* f = std::fopen(json.c_str(), "w");
    if (!f) {
      std::fprintf(stderr, "paired_bench: cannot write %s\n", json.c_str());
      return 2;
    }
    std::fputs(out.c_str(), f);
    std::fclose(f);
  }
  return status;
}
