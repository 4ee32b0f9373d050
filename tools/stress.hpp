// `xesvm stress`: the memory-pressure stress job.
//
// A working set of `oversubscription` x device memory is allocated as SVM
// memory and swept by GPU kernels in one of the access patterns of the UVM
// oversubscription study (grid-stride, block-stride, random), interleaved
// with CPU touches of a fraction of the pages. Every page carries a
// per-page, per-generation pattern: each GPU or CPU touch verifies the whole
// page and writes the next generation, so every byte is checked on every
// touch and once more at the end.
//
// With threads > 1 the working set is split into one allocation per host
// thread, and each thread sweeps its own allocation with its own kernels
// and CPU touches, concurrently. With duration_s > 0 every thread runs
// passes until the time is up (at least one pass).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "xesvm/xesvm.hpp"

namespace xesvm {
class TraceWriter;  // runtime/stats_trace.hpp
}  // namespace xesvm

namespace xesvm::tools {

enum class Pattern { kGridStride, kBlockStride, kRandom };

struct StressOptions {
  std::string backend = "sim:vram=256M";
  double oversubscription = 2.0;
  std::vector<Pattern> patterns{Pattern::kGridStride, Pattern::kBlockStride, Pattern::kRandom};
  unsigned passes = 3;
  double cpu_fraction = 0.05;
  bool prefetch = false;  ///< prefetch + advice instead of plain faulting
  std::uint64_t seed = 1;
  bool json = false;
  bool progress = true;
  double duration_s = 0;  ///< > 0: run passes until this much time has passed
  unsigned threads = 1;   ///< host threads, each with its own allocation
};

struct StressResult {
  std::string pattern;
  std::uint64_t working_set = 0, device_memory = 0, pages = 0;
  double wall_s = 0, modelled_s = 0, gpu_gb_per_s = 0;
  std::uint64_t gpu_faults = 0, cpu_faults = 0, migrations_to_device = 0, migrations_to_system = 0, bytes_to_device = 0,
                bytes_to_system = 0, evictions = 0, pages_evicted = 0, thrash_events = 0, bind_retries = 0,
                data_errors = 0, high_water = 0;
  unsigned threads = 1;
  std::uint64_t passes = 0;  ///< passes completed, summed over the threads
  bool policy_only = false;  ///< the backend has no engine and no device copy: prefetch + CPU work
  /// The GPU work was device copies and fills (Runtime::copy/fill) of 2 MiB
  /// blocks in the pattern's block order (backends without host kernels).
  bool device_copies = false;
  std::uint64_t device_ops = 0;  ///< copies + fills submitted
  /// The kernel's counters over the run (debugfs dri/<minor>/gt0/stats,
  /// end minus start), when readable; kernel_counters_note says why not.
  std::vector<std::pair<std::string, long long>> kernel_counters;
  std::string kernel_counters_note;
  Stats stats;  ///< every counter of the run's Runtime at the end
  /// The optimal policy's modelled time on the same access sequence and
  /// cost model (tools/opt_bound.hpp): computed for the sim with one host
  /// thread, a fixed number of passes and plain faulting; else has_bound is
  /// false and bound_note says why.
  bool has_bound = false;
  double bound_s = 0, belady_s = 0, remote_stream_s = 0;
  std::uint64_t belady_misses = 0;
  std::string bound_method, bound_note;
};

const char* pattern_name(Pattern p);
/// Parses "grid-stride", "block-stride", "random" or "all". Throws Error.
std::vector<Pattern> parse_patterns(const std::string& s);

/// Runs one pattern on a Runtime of its own. If trace is not null, samples
/// the Runtime's counters into it every `interval` (times measured from
/// trace_origin). Throws xesvm::Error on bad options and backend failures.
StressResult run_stress(const StressOptions& o, Pattern p, TraceWriter* trace = nullptr,
                        std::chrono::milliseconds interval = std::chrono::milliseconds(100),
                        std::chrono::steady_clock::time_point trace_origin = {});

}  // namespace xesvm::tools
