// `xesvm stress`: the memory-pressure stress job.
//
// A working set of `oversubscription` x device memory is allocated as SVM
// memory and swept by GPU kernels in one of the access patterns of the UVM
// oversubscription study (grid-stride, block-stride, random), interleaved
// with CPU touches of a fraction of the pages. Every page carries a
// per-page, per-generation pattern: each GPU or CPU touch verifies the whole
// page and writes the next generation, so every byte is checked on every
// touch and once more at the end.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

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
};

struct StressResult {
  std::string pattern;
  std::uint64_t working_set = 0, device_memory = 0, pages = 0;
  double wall_s = 0, modelled_s = 0, gpu_gb_per_s = 0;
  std::uint64_t gpu_faults = 0, cpu_faults = 0, migrations_to_device = 0, migrations_to_system = 0, bytes_to_device = 0,
                bytes_to_system = 0, evictions = 0, pages_evicted = 0, thrash_events = 0, bind_retries = 0,
                data_errors = 0, high_water = 0;
};

const char* pattern_name(Pattern p);
/// Parses "grid-stride", "block-stride", "random" or "all". Throws Error.
std::vector<Pattern> parse_patterns(const std::string& s);

/// Runs one pattern. Throws xesvm::Error on backend failures.
StressResult run_stress(const StressOptions& o, Pattern p);

}  // namespace xesvm::tools
