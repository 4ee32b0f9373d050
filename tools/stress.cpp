#include "tools/stress.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <numeric>
#include <random>

#include <exception>
#include <memory>
#include <thread>

#include "runtime/backends/sim/sim_device.hpp"
#include "runtime/stats_trace.hpp"
#include "tools/opt_bound.hpp"
#include "xesvm/xesvm.hpp"

namespace xesvm::tools {
namespace {

constexpr std::size_t kPage = 4096;
constexpr std::size_t kWords = kPage / sizeof(std::uint32_t);

// The value of word w of page p at generation g.
inline std::uint32_t word(std::uint64_t p, std::size_t w, std::uint32_t g) {
  std::uint64_t x = (p << 10 | w) * 0x9E3779B97F4A7C15ull;
  return static_cast<std::uint32_t>(x >> 32) + g;
}

// Verifies a page at generation g and rewrites it at g+1. Returns bad words.
std::uint64_t check_and_advance(std::uint32_t* page, std::uint64_t p, std::uint32_t g) {
  std::uint64_t bad = 0;
  for (std::size_t w = 0; w < kWords; ++w) {
    bad += page[w] != word(p, w, g);
    page[w] = word(p, w, g + 1);
  }
  return bad;
}

class Progress {
 public:
  Progress(bool enabled, std::string label, std::uint64_t total)
      : enabled_(enabled), tty_(isatty(STDERR_FILENO)), label_(std::move(label)), total_(total) {}
  void update(std::uint64_t done) {
    if (!enabled_) return;
    auto now = std::chrono::steady_clock::now();
    if (tty_) {
      if (now - last_ < std::chrono::milliseconds(100) && done < total_) return;
      const int width = 40;
      int fill = static_cast<int>(width * done / std::max<std::uint64_t>(1, total_));
      std::fprintf(stderr, "\r%-14s [%.*s%*s] %3d%%", label_.c_str(), fill, "########################################",
                   width - fill, "", static_cast<int>(100 * done / std::max<std::uint64_t>(1, total_)));
      if (done >= total_) std::fprintf(stderr, "\n");
    } else {
      if (now - last_ < std::chrono::seconds(2) && done < total_) return;
      std::fprintf(stderr, "%s: %llu/%llu steps\n", label_.c_str(), static_cast<unsigned long long>(done),
                   static_cast<unsigned long long>(total_));
    }
    last_ = now;
  }

 private:
  bool enabled_, tty_;
  std::string label_;
  std::uint64_t total_;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace

const char* pattern_name(Pattern p) {
  switch (p) {
    case Pattern::kGridStride:
      return "grid-stride";
    case Pattern::kBlockStride:
      return "block-stride";
    case Pattern::kRandom:
      return "random";
  }
  return "?";
}

std::vector<Pattern> parse_patterns(const std::string& s) {
  if (s == "all") return {Pattern::kGridStride, Pattern::kBlockStride, Pattern::kRandom};
  if (s == "grid-stride") return {Pattern::kGridStride};
  if (s == "block-stride") return {Pattern::kBlockStride};
  if (s == "random") return {Pattern::kRandom};
  throw Error(Error::Code::kInvalidArgument,
              "unknown pattern '" + s + "'; expected grid-stride, block-stride, random or all");
}

namespace {

// One host thread's share of the working set: its allocation, the
// generation of each page, and the steps of one pass.
struct Slice {
  struct Step {
    std::uint64_t first_page = 0, npages = 0;
    std::vector<std::uint64_t> pages;
  };
  std::uint32_t* base = nullptr;
  std::uint64_t pages = 0;
  std::vector<std::uint32_t> gen;
  std::vector<Step> steps;
  std::uint64_t data_errors = 0, passes = 0;
};

// Page order of one pass, by work-item id. The engine hands each worker a
// contiguous block of ids, so grid-stride interleaves the workers over
// consecutive pages and block-stride gives each worker its own block.
std::vector<std::uint64_t> pass_order(Pattern pattern, std::uint64_t pages, unsigned workers, std::mt19937_64& rng) {
  std::vector<std::uint64_t> order(pages);
  switch (pattern) {
    case Pattern::kBlockStride:
      std::iota(order.begin(), order.end(), 0);
      break;
    case Pattern::kGridStride: {
      const std::uint64_t per = (pages + workers - 1) / workers;
      for (std::uint64_t id = 0; id < pages; ++id) {
        std::uint64_t w = id / per, j = id % per;
        std::uint64_t p = j * workers + w;
        order[id] = p < pages ? p : id;  // tail: keep it a permutation
      }
      // Repair duplicates the tail mapping may have made.
      std::vector<char> seen(pages, 0);
      std::vector<std::uint64_t> missing;
      for (auto& p : order) {
        if (seen[p])
          p = ~0ull;
        else
          seen[p] = 1;
      }
      for (std::uint64_t p = 0; p < pages; ++p) {
        if (!seen[p]) missing.push_back(p);
      }
      for (auto& p : order) {
        if (p == ~0ull) {
          p = missing.back();
          missing.pop_back();
        }
      }
      break;
    }
    case Pattern::kRandom:
      std::iota(order.begin(), order.end(), 0);
      std::shuffle(order.begin(), order.end(), rng);
      break;
  }
  return order;
}

// debugfs gt0/stats of the first DRM minor that has one: "name: value" lines.
std::vector<std::pair<std::string, long long>> read_gt_stats(std::string* note) {
  std::vector<std::pair<std::string, long long>> out;
  const char* roots[] = {"/sys/kernel/debug/dri"};
  for (const char* root : roots) {
    for (int minor : {128, 0, 129, 1}) {
      const std::string path = std::string(root) + "/" + std::to_string(minor) + "/gt0/stats";
      std::FILE* f = std::fopen(path.c_str(), "r");
      if (!f) continue;
      char line[256];
      while (std::fgets(line, sizeof line, f)) {
        char name[128];
        long long v = 0;
        if (std::sscanf(line, "%127[^:]: %lld", name, &v) == 2) out.emplace_back(name, v);
      }
      std::fclose(f);
      *note = path;
      return out;
    }
  }
  *note = "not readable (/sys/kernel/debug/dri/<minor>/gt0/stats: debugfs not mounted or no permission)";
  return out;
}

// The value of a 4-byte fill pattern of block b at generation g (never
// byte-uniform, so fills take the seed + doubling MEM_COPY path on xe).
std::uint32_t block_value(std::uint64_t b, std::uint32_t g) {
  std::uint32_t v = static_cast<std::uint32_t>(b * 0x9e3779b1u) ^ (g * 0x85ebca6bu) ^ 0x1234567u;
  if (((v ^ (v >> 8)) & 0xff) == 0) v ^= 0x100;  // bytes 0 and 1 differ
  return v;
}

std::uint64_t check_block(const std::uint32_t* p, std::size_t words, std::uint32_t v) {
  std::uint64_t bad = 0;
  for (std::size_t w = 0; w < words; ++w) bad += p[w] != v;
  return bad;
}

// The GPU work as device copies and fills of 2 MiB blocks: in the pattern's
// order over the blocks, even steps fill a block with a new 4-byte value,
// odd steps copy the block just filled into the next one. Work goes to the
// device in order with at most kInFlight operations outstanding. After each
// pass the CPU verifies and rewrites a fraction of the blocks; at the end it
// verifies every byte.
StressResult run_device_stress(Runtime& rt, const StressOptions& o, Pattern pattern, const Stats& s0, StressResult r) {
  constexpr std::uint64_t kBlock = 2u << 20;
  constexpr std::size_t kWordsPerBlock = kBlock / 4;
  constexpr std::size_t kInFlight = 8;
  const std::uint64_t blocks = r.working_set / kBlock;
  r.device_copies = true;
  r.pattern += " (device copy/fill)";
  std::string note;
  const auto k0 = read_gt_stats(&note);
  // Buffers of 16 MiB (8 blocks each): the pressure policy's chunks and the
  // kernel's ranges see many allocations, as an application's would.
  constexpr std::uint64_t kBlocksPerBuffer = 8;
  std::vector<std::uint32_t*> buffers;
  for (std::uint64_t b = 0; b < blocks; b += kBlocksPerBuffer) {
    const std::uint64_t n = std::min(kBlocksPerBuffer, blocks - b) * kBlock;
    buffers.push_back(static_cast<std::uint32_t*>(rt.alloc_shared(n)));
  }
  auto block = [&](std::uint64_t b) { return buffers[b / kBlocksPerBuffer] + (b % kBlocksPerBuffer) * kWordsPerBlock; };
  std::vector<std::uint32_t> expect(blocks), gen(blocks, 0);
  for (std::uint64_t b = 0; b < blocks; ++b) {
    expect[b] = block_value(b, 0);
    std::fill_n(block(b), kWordsPerBlock, expect[b]);
  }
  std::mt19937_64 rng(o.seed);
  const std::vector<std::uint64_t> order = pass_order(pattern, blocks, 4, rng);
  const std::uint64_t cpu_blocks = static_cast<std::uint64_t>(o.cpu_fraction * static_cast<double>(blocks));
  Progress progress(o.progress && !o.json, std::string(r.pattern), o.passes * blocks);
  std::deque<Completion> inflight;
  const auto t0 = std::chrono::steady_clock::now();
  std::uint64_t step = 0;
  for (unsigned pass = 0; pass < o.passes; ++pass) {
    for (std::size_t k = 0; k < order.size(); ++k) {
      const std::uint64_t b = order[k];
      if (k % 2 == 1) {
        const std::uint64_t a = order[k - 1];
        inflight.push_back(rt.copy(block(b), block(a), kBlock));
        expect[b] = expect[a];
      } else {
        expect[b] = block_value(b, ++gen[b]);
        inflight.push_back(rt.fill(block(b), &expect[b], 4, kBlock));
      }
      ++r.device_ops;
      while (inflight.size() > kInFlight) {
        inflight.front().wait();
        inflight.pop_front();
      }
      progress.update(++step);
    }
    while (!inflight.empty()) {
      inflight.front().wait();
      inflight.pop_front();
    }
    // CPU touches: verify and rewrite a fraction of the blocks.
    for (std::uint64_t k = 0; k < cpu_blocks; ++k) {
      const std::uint64_t b = rng() % blocks;
      r.data_errors += check_block(block(b), kWordsPerBlock, expect[b]);
      expect[b] = block_value(b, ++gen[b]);
      std::fill_n(block(b), kWordsPerBlock, expect[b]);
    }
    ++r.passes;
  }
  const auto t1 = std::chrono::steady_clock::now();
  for (std::uint64_t b = 0; b < blocks; ++b) r.data_errors += check_block(block(b), kWordsPerBlock, expect[b]);
  const auto k1 = read_gt_stats(&note);
  for (const auto& [name, v1] : k1) {
    long long v0 = 0;
    for (const auto& [n0, v] : k0) {
      if (n0 == name) v0 = v;
    }
    r.kernel_counters.emplace_back(name, v1 - v0);
  }
  r.kernel_counters_note = note;
  const Stats s = rt.stats();
  r.stats = s;
  r.wall_s = std::chrono::duration<double>(t1 - t0).count();
  r.gpu_gb_per_s = static_cast<double>(r.passes * r.working_set) / 1e9 / std::max(1e-9, r.wall_s);
  r.gpu_faults = s.gpu_faults - s0.gpu_faults;
  r.migrations_to_device = s.migrations_to_device;
  r.migrations_to_system = s.migrations_to_system;
  r.bytes_to_device = s.bytes_to_device;
  r.bytes_to_system = s.bytes_to_system;
  r.evictions = s.evictions;
  r.pages_evicted = s.pages_evicted;
  r.high_water = s.device_bytes_high_water;
  for (std::uint32_t* p : buffers) rt.free(p);
  return r;
}

}  // namespace

StressResult run_stress(const StressOptions& o, Pattern pattern, TraceWriter* trace, std::chrono::milliseconds interval,
                        std::chrono::steady_clock::time_point trace_origin) {
  if (!(o.oversubscription > 0) || o.oversubscription > 64) {
    throw Error(Error::Code::kInvalidArgument, "oversubscription must be in (0, 64]");
  }
  if (o.cpu_fraction < 0 || o.cpu_fraction > 1) {
    throw Error(Error::Code::kInvalidArgument, "cpu fraction must be in [0, 1]");
  }
  if (o.threads < 1 || o.threads > 64) throw Error(Error::Code::kInvalidArgument, "threads must be in [1, 64]");
  if (!(o.duration_s >= 0) || o.duration_s > 86400) {
    throw Error(Error::Code::kInvalidArgument, "duration must be in [0, 86400] seconds");
  }
  if (o.duration_s == 0 && o.passes == 0) throw Error(Error::Code::kInvalidArgument, "passes must be at least 1");
  Runtime rt(o.backend);
  const Stats s0 = rt.stats();
  // The trace covers the Runtime's whole life, set-up and final check
  // included, so its rows add up to the counters reported at the end.
  std::unique_ptr<StatsSampler> sampler;
  if (trace) sampler = std::make_unique<StatsSampler>([&rt] { return rt.stats(); }, interval, *trace, trace_origin);
  const Capabilities caps = rt.capabilities();
  StressResult r;
  r.pattern = pattern_name(pattern);
  r.threads = o.threads;
  r.device_memory = s0.device_bytes_total;
  constexpr std::uint64_t k2M = 2u << 20;
  std::uint64_t per_thread =
      static_cast<std::uint64_t>(o.oversubscription * static_cast<double>(r.device_memory)) / o.threads;
  per_thread = std::max<std::uint64_t>(k2M, per_thread & ~(k2M - 1));
  r.working_set = per_thread * o.threads;
  r.pages = r.working_set / kPage;

  // A backend without an execution engine (xe: kernels need GPU code) runs
  // the policy-only variant: each step prefetches its window to device
  // memory, then the CPU does the kernel's work (its touches migrate back).
  const bool has_engine = caps.has_engine && caps.host_kernels;  // the kernels here are C++ callables
  if (!has_engine && caps.backend == "xe" && o.threads == 1 && o.duration_s == 0 && !trace) {
    return run_device_stress(rt, o, pattern, s0, r);
  }
  const bool prefetch = o.prefetch || !has_engine;
  r.policy_only = !has_engine;
  if (!has_engine) r.pattern += " (policy only: no engine)";
  const unsigned workers = std::max(1u, caps.engine_workers);

  std::vector<Slice> slices(o.threads);
  for (unsigned t = 0; t < o.threads; ++t) {
    Slice& sl = slices[t];
    sl.pages = per_thread / kPage;
    sl.base = static_cast<std::uint32_t*>(rt.alloc_shared(per_thread));
    sl.gen.assign(sl.pages, 0);
    for (std::uint64_t p = 0; p < sl.pages; ++p) {
      std::uint32_t* pg = sl.base + p * kWords;
      for (std::size_t w = 0; w < kWords; ++w) pg[w] = word(p, w, 0);
    }
    std::mt19937_64 rng(o.seed + t);
    const std::vector<std::uint64_t> order = pass_order(pattern, sl.pages, workers, rng);
    if (prefetch) {
      Advice a;
      a.preferred = Location::kDevice;
      rt.advise(sl.base, per_thread, a);
    }
    // Plain mode: one launch over the whole order. Prefetch mode works in
    // address windows of half the device memory (shared by the threads):
    // prefetch the window, then run the pattern restricted to its pages
    // (same relative order, so grid-stride stays grid-stride inside it).
    if (!prefetch) {
      sl.steps.push_back({0, sl.pages, order});
    } else {
      const std::uint64_t window = std::max<std::uint64_t>(512, r.device_memory / 2 / kPage / o.threads);
      for (std::uint64_t lo = 0; lo < sl.pages; lo += window) {
        Slice::Step st{lo, std::min(window, sl.pages - lo), {}};
        for (std::uint64_t p : order) {
          if (p >= lo && p < lo + st.npages) st.pages.push_back(p);
        }
        sl.steps.push_back(std::move(st));
      }
    }
  }

  const bool timed = o.duration_s > 0;
  // The bound needs the whole sequence and the sim's cost model.
  const bool is_sim = o.backend.rfind("sim", 0) == 0 && (o.backend.size() == 3 || o.backend[3] == ':');
  if (!is_sim) {
    r.bound_note = "not the sim (no cost model)";
  } else if (o.threads != 1 || timed || prefetch) {
    r.bound_note = "computed for one host thread, a fixed pass count and plain faulting only";
  }
  const bool want_bound = r.bound_note.empty();
  std::vector<std::vector<std::uint64_t>> cpu_touches;  // per pass, when want_bound
  const auto duration =
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(o.duration_s));
  Progress progress(o.progress && !o.json, std::string(r.pattern),
                    timed ? static_cast<std::uint64_t>(o.duration_s * 1000) : o.passes * slices[0].steps.size());
  const auto t0 = std::chrono::steady_clock::now();

  auto drive = [&](unsigned t) {
    Slice& sl = slices[t];
    std::mt19937_64 rng(o.seed * 7919 + t);
    std::atomic<std::uint64_t> gpu_errors{0};
    const std::uint64_t cpu_pages = static_cast<std::uint64_t>(o.cpu_fraction * static_cast<double>(sl.pages));
    std::uint64_t step_no = 0;
    auto report = [&] {
      if (t != 0) return;
      if (timed) {
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
        progress.update(std::min<std::uint64_t>(static_cast<std::uint64_t>(ms.count()),
                                                static_cast<std::uint64_t>(o.duration_s * 1000)));
      } else {
        progress.update(++step_no);
      }
    };
    for (unsigned pass = 0;; ++pass) {
      if (timed ? (pass > 0 && std::chrono::steady_clock::now() - t0 >= duration) : pass >= o.passes) break;
      for (const Slice::Step& st : sl.steps) {
        if (prefetch) rt.prefetch(sl.base + st.first_page * kWords, st.npages * kPage, Location::kDevice);
        const std::vector<std::uint64_t>& pages = st.pages;
        if (!has_engine) {
          for (std::uint64_t p : pages) gpu_errors += check_and_advance(sl.base + p * kWords, p, sl.gen[p]++);
          report();
          continue;
        }
        rt.launch(pages.size(), [&](const WorkItem& wi, DeviceAccessor& acc) {
          const std::uint64_t p = pages[wi.global_id];
          const std::uint32_t g = sl.gen[p];
          acc.with_page(reinterpret_cast<std::uint64_t>(sl.base + p * kWords), kPage, Access::kWrite,
                        [&](std::span<std::byte> bytes) {
                          gpu_errors.fetch_add(check_and_advance(reinterpret_cast<std::uint32_t*>(bytes.data()), p, g),
                                               std::memory_order_relaxed);
                        });
          sl.gen[p] = g + 1;
        });
        report();
      }
      // CPU touches of a random fraction of the pages (they migrate back).
      if (want_bound) cpu_touches.emplace_back();
      for (std::uint64_t k = 0; k < cpu_pages; ++k) {
        const std::uint64_t p = rng() % sl.pages;
        if (want_bound) cpu_touches.back().push_back(p);
        sl.data_errors += check_and_advance(sl.base + p * kWords, p, sl.gen[p]);
        ++sl.gen[p];
      }
      ++sl.passes;
    }
    if (timed && t == 0) progress.update(static_cast<std::uint64_t>(o.duration_s * 1000));
    sl.data_errors += gpu_errors.load();
  };

  if (o.threads == 1) {
    drive(0);
  } else {
    std::vector<std::thread> threads;
    std::vector<std::exception_ptr> failures(o.threads);
    for (unsigned t = 0; t < o.threads; ++t) {
      threads.emplace_back([&, t] {
        try {
          drive(t);
        } catch (...) {
          failures[t] = std::current_exception();
        }
      });
    }
    for (auto& th : threads) th.join();
    for (auto& f : failures) {
      if (f) {
        if (sampler) sampler->stop();
        std::rethrow_exception(f);
      }
    }
  }
  const auto t1 = std::chrono::steady_clock::now();

  // Final check of every byte.
  for (Slice& sl : slices) {
    for (std::uint64_t p = 0; p < sl.pages; ++p) {
      const std::uint32_t* pg = sl.base + p * kWords;
      for (std::size_t w = 0; w < kWords; ++w) sl.data_errors += pg[w] != word(p, w, sl.gen[p]);
    }
    r.data_errors += sl.data_errors;
    r.passes += sl.passes;
  }
  // With a trace, the counters reported are those of its last row.
  Stats s;
  if (sampler) {
    sampler->stop();
    s = sampler->last();
  } else {
    s = rt.stats();
  }
  r.stats = s;
  r.wall_s = std::chrono::duration<double>(t1 - t0).count();
  r.modelled_s = static_cast<double>(s.modelled_device_ns - s0.modelled_device_ns) * 1e-9;
  r.gpu_gb_per_s = static_cast<double>(r.passes * per_thread) / 1e9 / std::max(1e-9, r.wall_s);
  r.gpu_faults = s.gpu_faults;
  r.cpu_faults = s.cpu_faults;
  r.migrations_to_device = s.migrations_to_device;
  r.migrations_to_system = s.migrations_to_system;
  r.bytes_to_device = s.bytes_to_device;
  r.bytes_to_system = s.bytes_to_system;
  r.evictions = s.evictions;
  r.pages_evicted = s.pages_evicted;
  r.thrash_events = s.thrash_events;
  r.bind_retries = s.bind_retries;
  r.high_water = s.device_bytes_high_water;
  if (want_bound) {
    BoundInput in;
    in.pages = slices[0].pages;
    in.workers = workers;
    in.device_bytes = r.device_memory;
    const std::size_t colon = o.backend.find(':');
    in.link = sim::parse_sim_options(colon == std::string::npos ? "" : o.backend.substr(colon + 1)).link;
    in.order = slices[0].steps[0].pages;
    in.cpu_touches = std::move(cpu_touches);
    const Bound b = optimal_bound(in);
    r.has_bound = true;
    r.bound_s = b.bound_s;
    r.belady_s = b.belady_s;
    r.remote_stream_s = b.remote_stream_s;
    r.belady_misses = b.belady_misses;
    r.bound_method = b.method;
  }
  for (Slice& sl : slices) rt.free(sl.base);
  return r;
}

}  // namespace xesvm::tools
