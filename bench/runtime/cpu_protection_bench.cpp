// The cost of reading the CPU mapping's protection, which the sim does at
// every GPU fault (twice: the access check and the bind) and before every
// launch that has GPU bindings (mprotect() raises no event). Measured for
// both sources (the text of /proc/self/maps and the PROCMAP_QUERY ioctl)
// with the process's own mappings and with 2,000 extra ones, against the
// work they add to in the same run: the launch of one work item over a
// bound buffer, and the GPU-fault service of a 2 MiB chunk.
// bench/README.md ("cpu_protection_bench") has the command and the results.
#include <benchmark/benchmark.h>
#include <sys/mman.h>

#include <cstring>
#include <stdexcept>
#include <vector>

#include "bench_kernels.hpp"
#include "runtime/backends/sim/cpu_protection.hpp"
#include "xesvm/xesvm.hpp"

namespace {

using namespace xesvm;
using sim::ProtectionSource;

constexpr std::size_t kPage = 4096;
constexpr std::size_t k2M = 2u << 20;

ProtectionSource source_of(std::int64_t arg) {
  return arg == 0 ? ProtectionSource::kMapsText : ProtectionSource::kProcmapQuery;
}

// `n` one-page mappings of alternating protection (so none merge), made
// after the buffer measured: mmap places them below it, where the text of
// /proc/self/maps lists them first.
class ExtraMappings {
 public:
  explicit ExtraMappings(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      void* p = mmap(nullptr, kPage, i % 2 ? PROT_READ : PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) throw std::runtime_error("mmap failed");
      maps_.push_back(p);
    }
  }
  ~ExtraMappings() {
    for (void* p : maps_) munmap(p, kPage);
  }
  ExtraMappings(const ExtraMappings&) = delete;
  ExtraMappings& operator=(const ExtraMappings&) = delete;

 private:
  std::vector<void*> maps_;
};

bool usable(benchmark::State& state, ProtectionSource s) {
  if (s == ProtectionSource::kProcmapQuery && !sim::procmap_query_supported()) {
    state.SkipWithError("no PROCMAP_QUERY on this kernel");
    return false;
  }
  return true;
}

// One protection query of a 2 MiB buffer.
void BM_ReadCpuProtection(benchmark::State& state) {
  const ProtectionSource s = source_of(state.range(0));
  if (!usable(state, s)) return;
  void* buf = mmap(nullptr, k2M, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (buf == MAP_FAILED) throw std::runtime_error("mmap failed");
  ExtraMappings extra(static_cast<std::size_t>(state.range(1)));
  const auto a = reinterpret_cast<std::uint64_t>(buf);
  for (auto _ : state) {
    auto prot = sim::read_cpu_protection(a, a + k2M, s);
    if (prot.size() != 1 || !prot[0].writable) state.SkipWithError("wrong protection");
    benchmark::DoNotOptimize(prot);
  }
  munmap(buf, k2M);
}
BENCHMARK(BM_ReadCpuProtection)->ArgNames({"query", "extra_maps"})->ArgsProduct({{0, 1}, {0, 2000}})->UseRealTime();

// A launch of one work item reading one word of a bound 2 MiB buffer: the
// per-launch protection check is one query.
void BM_LaunchOverBoundBuffer(benchmark::State& state) {
  const ProtectionSource s = source_of(state.range(0));
  if (!usable(state, s)) return;
  sim::set_default_protection_source(s);
  {
    Runtime rt("sim:vram=64M,workers=2");
    auto* p = static_cast<std::uint8_t*>(rt.alloc_shared(k2M));
    std::memset(p, 0x5a, k2M);
    ExtraMappings extra(static_cast<std::size_t>(state.range(1)));
    const Kernel kernel = bench::read_one_byte_kernel(p);
    rt.launch(1, kernel);  // fault, migrate, bind
    for (auto _ : state) rt.launch(1, kernel);
    if (rt.stats().gpu_faults != 1) state.SkipWithError("the launches faulted again");
    rt.free(p);
  }
  sim::set_default_protection_source(ProtectionSource::kAuto);
}
BENCHMARK(BM_LaunchOverBoundBuffer)->ArgNames({"query", "extra_maps"})->ArgsProduct({{0, 1}, {0, 2000}})->UseRealTime();

// GPU-fault service of one 2 MiB chunk (launch + fault + migrate + bind),
// of buffers mapped before the extra mappings (so those lie below them).
constexpr std::size_t kFaultIterations = 200;
void BM_GpuFault2MBySource(benchmark::State& state) {
  const ProtectionSource s = source_of(state.range(0));
  if (!usable(state, s)) return;
  sim::set_default_protection_source(s);
  {
    Runtime rt("sim:vram=64M,workers=2");
    const std::size_t len = kFaultIterations * k2M;
    void* raw = mmap(nullptr, len + k2M, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) throw std::runtime_error("mmap failed");
    auto* base = reinterpret_cast<std::uint8_t*>((reinterpret_cast<std::uint64_t>(raw) + k2M - 1) & ~(k2M - 1));
    ExtraMappings extra(static_cast<std::size_t>(state.range(1)));
    std::size_t i = 0;
    for (auto _ : state) {
      state.PauseTiming();
      std::uint8_t* p = base + (i++ % kFaultIterations) * k2M;
      std::memset(p, 0x5a, k2M);
      rt.mirror(p, k2M);
      state.ResumeTiming();
      rt.launch(1, bench::read_one_byte_kernel(p));
      state.PauseTiming();
      if (rt.residency(p, k2M).device_bytes != k2M) state.SkipWithError("chunk did not migrate");
      rt.unmirror(p, k2M);
      madvise(p, k2M, MADV_DONTNEED);
      state.ResumeTiming();
    }
    munmap(raw, len + k2M);
  }
  sim::set_default_protection_source(ProtectionSource::kAuto);
}
BENCHMARK(BM_GpuFault2MBySource)
    ->ArgNames({"query", "extra_maps"})
    ->ArgsProduct({{0, 1}, {0, 2000}})
    ->UseRealTime()
    ->Iterations(kFaultIterations);

}  // namespace

BENCHMARK_MAIN();
