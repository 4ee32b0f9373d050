// Runtime benchmarks: range lookup, GPU-fault service of a 2 MiB chunk,
// eviction from contiguous and scattered frames against the raw mechanism
// (UFFDIO_COPY into an empty registered range) and prefaulted memcpy, and
// the batch copy's coalescing and parallel gains. bench/README.md says how
// to run them and how to read the results; bench/compare.py prints ratios.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "bench_kernels.hpp"
#include "bench_memory.hpp"
#include "runtime/backends/sim/sim_device.hpp"
#include "runtime/batch_copy.hpp"
#include "runtime/runtime_impl.hpp"
#include "runtime/svm_range.hpp"
#include "xesvm/xesvm.hpp"

namespace {

using namespace xesvm;

constexpr std::size_t kPage = 4096;
constexpr std::size_t k2M = 2u << 20;
constexpr std::size_t kEvictBytes = 256u << 20;

using bench::map_aligned;
using bench::RawUffd;

void prefault(void* p, std::size_t n) {
  for (std::size_t i = 0; i < n; i += kPage) static_cast<volatile char*>(p)[i] = static_cast<char>(i >> 12);
}

// ---------------------------------------------------------------------------
// Range lookup among 1,000,000 ranges of 4 KiB.

void BM_RangeTreeFind(benchmark::State& state) {
  static const auto setup = [] {
    auto t = std::make_unique<RangeTree>();
    constexpr std::uint64_t base = 1ull << 40;
    for (std::uint64_t i = 0; i < 1'000'000; ++i) {
      t->insert(std::make_shared<Range>(i + 1, base + i * 2 * kPage, kPage));  // 4 KiB ranges, 4 KiB gaps
    }
    std::vector<std::uint64_t> addrs(1u << 20);
    std::mt19937_64 rng(1);
    for (auto& a : addrs) a = base + (rng() % 1'000'000) * 2 * kPage + rng() % kPage;
    return std::make_pair(std::move(t), std::move(addrs));
  }();
  const RangeTree& t = *setup.first;
  const auto& addrs = setup.second;
  std::size_t i = 0, hits = 0;
  for (auto _ : state) {
    RangePtr r = t.find(addrs[i++ & (addrs.size() - 1)]);
    hits += r != nullptr;
    benchmark::DoNotOptimize(r);
  }
  if (hits != static_cast<std::size_t>(state.iterations())) state.SkipWithError("lookup missed a range");
  state.counters["ranges"] = static_cast<double>(t.size());
}
BENCHMARK(BM_RangeTreeFind)->UseRealTime();

// ---------------------------------------------------------------------------
// GPU-fault service of one 2 MiB chunk vs memcpy of 2 MiB.

void BM_GpuFault2M(benchmark::State& state) {
  Runtime rt("sim:vram=64M,workers=2");
  for (auto _ : state) {
    state.PauseTiming();
    auto* p = static_cast<std::uint8_t*>(rt.alloc_shared(k2M));
    std::memset(p, 0x5a, k2M);
    state.ResumeTiming();
    // One work item touches the chunk: fault -> migrate 2 MiB -> bind.
    rt.launch(1, bench::read_one_byte_kernel(p));
    state.PauseTiming();
    if (rt.residency(p, k2M).device_bytes != k2M) state.SkipWithError("chunk did not migrate");
    rt.free(p);
    state.ResumeTiming();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * k2M));
}
BENCHMARK(BM_GpuFault2M)->UseRealTime()->Iterations(200);

void BM_Memcpy2M(benchmark::State& state) {
  void* src = map_aligned(k2M);
  void* dst = map_aligned(k2M);
  prefault(src, k2M);
  prefault(dst, k2M);
  for (auto _ : state) {
    std::memcpy(dst, src, k2M);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * k2M));
  munmap(src, k2M);
  munmap(dst, k2M);
}
BENCHMARK(BM_Memcpy2M)->UseRealTime();

// ---------------------------------------------------------------------------
// The raw mechanism: UFFDIO_COPY into an empty registered range
// (RawUffd, bench_memory.hpp).

void BM_RawUffdCopy(benchmark::State& state) {
  const std::size_t bytes = static_cast<std::size_t>(state.range(0));
  const std::size_t piece = static_cast<std::size_t>(state.range(1));
  const unsigned threads = static_cast<unsigned>(state.range(2));
  const bool scattered = piece == kPage;
  const std::size_t stride = scattered ? 2 * kPage : piece;  // 4 KiB sources every other page, like the frames
  RawUffd raw(bytes);
  const std::size_t src_bytes = bytes / piece * stride;
  auto* src = static_cast<std::uint8_t*>(map_aligned(src_bytes));
  std::memset(src, 0x3c, src_bytes);
  for (auto _ : state) {
    state.PauseTiming();
    raw.empty();
    state.ResumeTiming();
    raw.place_all(src, piece, threads, stride);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
  munmap(src, src_bytes);
}
BENCHMARK(BM_RawUffdCopy)
    ->ArgNames({"bytes", "piece", "threads"})
    ->Args({kEvictBytes, k2M, 2})
    ->Args({kEvictBytes, k2M, 1})
    ->Args({kEvictBytes, kPage, 2})
    ->Args({kEvictBytes, kPage, 1})
    ->UseRealTime()
    ->Iterations(4);

void BM_ParallelMemcpy(benchmark::State& state) {
  const std::size_t bytes = static_cast<std::size_t>(state.range(0));
  const unsigned threads = static_cast<unsigned>(state.range(1));
  auto* src = static_cast<std::uint8_t*>(map_aligned(bytes));
  auto* dst = static_cast<std::uint8_t*>(map_aligned(bytes));
  std::memset(src, 1, bytes);
  prefault(dst, bytes);
  for (auto _ : state) {
    std::vector<std::thread> ts;
    for (unsigned t = 0; t < threads; ++t) {
      ts.emplace_back([&, t] {
        const std::size_t per = bytes / threads;
        std::memcpy(dst + t * per, src + t * per, per);
      });
    }
    for (auto& th : ts) th.join();
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
  munmap(src, bytes);
  munmap(dst, bytes);
}
BENCHMARK(BM_ParallelMemcpy)->ArgNames({"bytes", "threads"})->Args({kEvictBytes, 2})->UseRealTime()->Iterations(4);

// ---------------------------------------------------------------------------
// Eviction of 256 MiB through the runtime.

// Contiguous: 2 MiB chunks, 2 MiB-contiguous frames.
void BM_EvictContiguous(benchmark::State& state) {
  RuntimeOptions o;
  o.copy_workers = static_cast<unsigned>(state.range(0));
  o.high_watermark = 1.0;
  Runtime rt("sim:vram=512M,workers=2", o);
  auto* p = static_cast<std::uint8_t*>(rt.alloc_shared(kEvictBytes));
  std::memset(p, 0x42, kEvictBytes);
  for (auto _ : state) {
    state.PauseTiming();
    rt.prefetch(p, kEvictBytes, Location::kDevice);
    state.ResumeTiming();
    EvictResult r = rt.evict(p, kEvictBytes);
    state.PauseTiming();
    if (r.pages_evicted != kEvictBytes / kPage) state.SkipWithError("not every page was evicted");
    state.ResumeTiming();
  }
  if (p[kEvictBytes - 1] != 0x42) state.SkipWithError("bytes changed");
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kEvictBytes));
  rt.free(p);
}
BENCHMARK(BM_EvictContiguous)->ArgNames({"workers"})->Arg(2)->Arg(1)->UseRealTime()->Iterations(4);

// Scattered: the device is fragmented first (filled, then every other page
// evicted), so the 256 MiB land in 4 KiB frames, none adjacent.
void BM_EvictScattered(benchmark::State& state) {
  RuntimeOptions o;
  o.copy_workers = static_cast<unsigned>(state.range(0));
  o.high_watermark = 1.0;
  const std::size_t vram = 2 * kEvictBytes;
  Runtime rt("sim:vram=512M,workers=2", o);
  auto* frag = static_cast<std::uint8_t*>(rt.alloc_shared(vram));
  std::memset(frag, 7, vram);
  rt.prefetch(frag, vram, Location::kDevice);
  // Every other page back by eviction (a CPU touch brings its whole
  // device-resident run home).
  for (std::size_t off = 0; off < vram; off += 2 * kPage) rt.evict(frag + off, kPage);
  auto* p = static_cast<std::uint8_t*>(rt.alloc_shared(kEvictBytes));
  std::memset(p, 0x42, kEvictBytes);
  auto& dev = dynamic_cast<sim::SimDevice&>(rt.impl().backend());
  for (auto _ : state) {
    state.PauseTiming();
    rt.prefetch(p, kEvictBytes, Location::kDevice);
    std::vector<PageSnapshot> snap(2);
    dev.snapshot(reinterpret_cast<std::uint64_t>(p), snap);
    if (snap[0].place != PagePlace::kDevice || snap[1].frame == snap[0].frame + 1) {
      state.SkipWithError("frames are not scattered");
    }
    state.ResumeTiming();
    EvictResult r = rt.evict(p, kEvictBytes);
    state.PauseTiming();
    if (r.pages_evicted != kEvictBytes / kPage) state.SkipWithError("not every page was evicted");
    state.ResumeTiming();
  }
  if (p[kEvictBytes - 1] != 0x42) state.SkipWithError("bytes changed");
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kEvictBytes));
  rt.free(p);
  rt.free(frag);
}
BENCHMARK(BM_EvictScattered)->ArgNames({"workers"})->Arg(2)->UseRealTime()->Iterations(4);

// ---------------------------------------------------------------------------
// The batch copy alone, over the raw mechanism: coalescing and parallelism.

class UffdEngine final : public CopyEngine {
 public:
  UffdEngine(const RawUffd& raw, std::span<const CopyPage> pages) : raw_(raw), pages_(pages) {}
  CopyStatus copy(const CopyRun& run) override { return raw_.copy(run.dst, run.src, run.len); }
  std::uint64_t current_address(std::size_t index) override { return pages_[index].dst; }

 private:
  const RawUffd& raw_;
  std::span<const CopyPage> pages_;
};

void BM_BatchCopy(benchmark::State& state) {
  const bool coalesce = state.range(0) != 0;
  const unsigned workers = static_cast<unsigned>(state.range(1));
  const std::size_t bytes = kEvictBytes;
  RawUffd raw(bytes);
  auto* src = static_cast<std::uint8_t*>(map_aligned(bytes));
  std::memset(src, 0x11, bytes);
  std::vector<CopyPage> pages(bytes / kPage);
  for (std::size_t i = 0; i < pages.size(); ++i) {
    pages[i] = {reinterpret_cast<const std::byte*>(src + i * kPage),
                reinterpret_cast<std::uint64_t>(raw.dst()) + i * kPage};
  }
  BatchCopier copier(BatchCopyOptions{workers, 256u << 10, 2u << 20, coalesce});
  std::vector<std::uint8_t> done(pages.size());
  for (auto _ : state) {
    state.PauseTiming();
    raw.empty();
    UffdEngine engine(raw, pages);
    state.ResumeTiming();
    copier.copy(pages, engine, done);
  }
  for (auto d : done) {
    if (!d) {
      state.SkipWithError("a page was not copied");
      break;
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
  munmap(src, bytes);
}
BENCHMARK(BM_BatchCopy)
    ->ArgNames({"coalesce", "workers"})
    ->Args({1, 1})
    ->Args({0, 1})
    ->Args({1, 2})
    ->UseRealTime()
    ->Iterations(4);

// The serial threshold sweep: the same scattered 4 KiB frames (every page
// its own run, the case where parallelism can pay) copied in calls of
// `bytes` each, serially (one worker) or always in parallel (two workers,
// threshold 0). Below the size where parallel stops losing, the TBB
// dispatch costs more than the second worker gains; compare.py prints the
// crossover, which sets BatchCopyOptions::serial_threshold's default.
constexpr std::size_t kSweepBytes = 32u << 20;

void BM_BatchCopyThreshold(benchmark::State& state) {
  const std::size_t call = static_cast<std::size_t>(state.range(0));
  const bool parallel = state.range(1) != 0;
  RawUffd raw(kSweepBytes);
  auto* src = static_cast<std::uint8_t*>(map_aligned(2 * kSweepBytes));
  std::memset(src, 0x5a, 2 * kSweepBytes);
  std::vector<CopyPage> pages(kSweepBytes / kPage);
  for (std::size_t i = 0; i < pages.size(); ++i) {
    pages[i] = {reinterpret_cast<const std::byte*>(src + 2 * i * kPage),
                reinterpret_cast<std::uint64_t>(raw.dst()) + i * kPage};
  }
  BatchCopier copier(BatchCopyOptions{parallel ? 2u : 1u, 0, 2u << 20, true});
  std::vector<std::uint8_t> done(pages.size());
  const std::size_t per_call = call / kPage;
  for (auto _ : state) {
    state.PauseTiming();
    raw.empty();
    UffdEngine engine(raw, pages);
    state.ResumeTiming();
    for (std::size_t first = 0; first < pages.size(); first += per_call) {
      copier.copy(std::span<const CopyPage>(pages).subspan(first, per_call), engine,
                  std::span<std::uint8_t>(done).subspan(first, per_call));
    }
  }
  if (std::find(done.begin(), done.end(), 0) != done.end()) state.SkipWithError("a page was not copied");
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kSweepBytes));
  munmap(src, 2 * kSweepBytes);
}
BENCHMARK(BM_BatchCopyThreshold)
    ->ArgNames({"bytes", "parallel"})
    ->ArgsProduct({{16 << 10, 64 << 10, 128 << 10, 256 << 10, 512 << 10, 1 << 20, 4 << 20}, {0, 1}})
    ->UseRealTime()
    ->Iterations(8);

}  // namespace

BENCHMARK_MAIN();
