// hot_set_bench: a hot working set smaller than device memory against a cold
// stream that passes through the rest of it.
//
// Each round launches one kernel over the hot set (every page read and
// rewritten) and one over the next piece of a cold buffer that is touched
// once and never again. The hot set's hit rate is the share of its page
// accesses, from the second round on (the first brings it in), that found
// the page in device memory; it is read as residency just before each hot
// launch, and the hot set's GPU faults are counted too. Every byte of both
// buffers is verified at the end.
//
//   hot_set_bench [--vram MiB] [--hot MiB] [--cold MiB-per-round] [--rounds N] [--json]
//
// Goal (issue: victims by GPU use): hit rate >= 95 %.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>

#include "xesvm/xesvm.hpp"

namespace {

using namespace xesvm;

constexpr std::size_t kPage = 4096;

std::uint32_t value(std::size_t word, std::uint32_t gen) {
  return static_cast<std::uint32_t>(word * 2654435761u) ^ (gen * 0x9e3779b9u);
}

// Writes generation `gen` to every word of [base, base + bytes), one work
// item per page, checking the previous generation on the way.
Kernel rewrite(std::uint32_t* base, std::size_t bytes, std::uint32_t gen, std::atomic<std::uint64_t>& bad) {
  return [=, &bad](const WorkItem& wi, DeviceAccessor& acc) {
    const std::size_t first = wi.global_id * kPage / 4;
    if (first * 4 >= bytes) return;
    acc.with_page(reinterpret_cast<std::uint64_t>(base + first), kPage, Access::kWrite, [&](std::span<std::byte> b) {
      auto* w = reinterpret_cast<std::uint32_t*>(b.data());
      std::uint64_t local = 0;
      for (std::size_t i = 0; i < kPage / 4; ++i) {
        local += w[i] != value(first + i, gen - 1);
        w[i] = value(first + i, gen);
      }
      if (local) bad.fetch_add(local, std::memory_order_relaxed);
    });
  };
}

std::uint64_t verify(const std::uint32_t* p, std::size_t bytes, std::uint32_t gen) {
  std::uint64_t bad = 0;
  for (std::size_t i = 0; i < bytes / 4; ++i) bad += p[i] != value(i, gen);
  return bad;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t vram_mib = 64, hot_mib = 16, cold_mib = 8, rounds = 64;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto num = [&](std::size_t& out) {
      if (i + 1 >= argc) return false;
      out = std::stoul(argv[++i]);
      return out > 0;
    };
    bool ok = true;
    if (a == "--vram") {
      ok = num(vram_mib);
    } else if (a == "--hot") {
      ok = num(hot_mib);
    } else if (a == "--cold") {
      ok = num(cold_mib);
    } else if (a == "--rounds") {
      ok = num(rounds);
    } else if (a == "--json") {
      json = true;
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr,
                   "usage: hot_set_bench [--vram MiB] [--hot MiB] [--cold MiB-per-round] [--rounds N] [--json]\n"
                   "  (every value a positive integer; --vram a multiple of 2)\n");
      return 2;
    }
  }
  if (hot_mib + cold_mib > vram_mib) {
    std::fprintf(stderr, "hot_set_bench: hot set + one cold piece (%zu MiB) must fit in device memory (%zu MiB)\n",
                 hot_mib + cold_mib, vram_mib);
    return 2;
  }
  try {
    Runtime rt("sim:vram=" + std::to_string(vram_mib) + "M");
    const std::size_t hot_n = hot_mib << 20, cold_piece = cold_mib << 20, cold_n = cold_piece * rounds;
    auto* hot = static_cast<std::uint32_t*>(rt.alloc_shared(hot_n));
    auto* cold = static_cast<std::uint32_t*>(rt.alloc_shared(cold_n));
    for (std::size_t i = 0; i < hot_n / 4; ++i) hot[i] = value(i, 0);
    for (std::size_t i = 0; i < cold_n / 4; ++i) cold[i] = value(i % (cold_piece / 4), 0);
    std::atomic<std::uint64_t> bad{0};
    double resident_sum = 0;
    std::uint64_t hot_faults = 0;
    std::uint32_t gen = 0;
    for (std::size_t round = 0; round < rounds; ++round) {
      const std::uint64_t resident = rt.residency(hot, hot_n).device_bytes;
      const std::uint64_t faults0 = rt.stats().gpu_faults;
      rt.launch(hot_n / kPage, rewrite(hot, hot_n, ++gen, bad));
      if (round > 0) {
        resident_sum += static_cast<double>(resident) / static_cast<double>(hot_n);
        hot_faults += rt.stats().gpu_faults - faults0;
      }
      std::uint32_t* piece = cold + round * cold_piece / 4;
      rt.launch(cold_piece / kPage, rewrite(piece, cold_piece, 1, bad));
    }
    const double hit_rate = rounds > 1 ? resident_sum / static_cast<double>(rounds - 1) : 1.0;
    std::uint64_t errors = bad.load() + verify(hot, hot_n, gen);
    for (std::size_t round = 0; round < rounds; ++round) {
      const std::uint32_t* piece = cold + round * cold_piece / 4;
      for (std::size_t i = 0; i < cold_piece / 4; ++i) errors += piece[i] != value(i, 1);
    }
    const Stats s = rt.stats();
    if (json) {
      std::printf(
          "{\"vram_mib\":%zu,\"hot_mib\":%zu,\"cold_mib_per_round\":%zu,\"rounds\":%zu,\"hot_hit_rate\":%.4f,"
          "\"hot_faults_after_first_round\":%llu,\"evictions\":%llu,\"data_errors\":%llu}\n",
          vram_mib, hot_mib, cold_mib, rounds, hit_rate, static_cast<unsigned long long>(hot_faults),
          static_cast<unsigned long long>(s.evictions), static_cast<unsigned long long>(errors));
    } else {
      std::printf("hot set %zu MiB, cold stream %zu MiB x %zu rounds, device %zu MiB\n", hot_mib, cold_mib, rounds,
                  vram_mib);
      std::printf("  hot-set hit rate (rounds 2..%zu)   %.2f %%   (goal >= 95 %%)\n", rounds, 100 * hit_rate);
      std::printf("  hot-set GPU faults after round 1  %llu\n", static_cast<unsigned long long>(hot_faults));
      std::printf("  evictions                         %llu ranges\n", static_cast<unsigned long long>(s.evictions));
      std::printf("  data errors                       %llu\n", static_cast<unsigned long long>(errors));
    }
    rt.free(hot);
    rt.free(cold);
    return errors == 0 && hit_rate >= 0.95 ? 0 : 1;
  } catch (const Error& e) {
    std::fprintf(stderr, "hot_set_bench: %s\n", e.what());
    return 2;
  }
}
