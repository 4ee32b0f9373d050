// The `xesvm` command line: `xesvm info` and `xesvm stress`.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>

#include "tools/stress.hpp"
#include "xesvm/xesvm.hpp"

namespace {

using xesvm::tools::StressOptions;
using xesvm::tools::StressResult;

nlohmann::json to_json(const StressResult& r) {
  return {{"pattern", r.pattern},
          {"working_set_bytes", r.working_set},
          {"device_memory_bytes", r.device_memory},
          {"pages", r.pages},
          {"wall_s", r.wall_s},
          {"modelled_device_s", r.modelled_s},
          {"gpu_gb_per_s", r.gpu_gb_per_s},
          {"gpu_faults", r.gpu_faults},
          {"cpu_faults", r.cpu_faults},
          {"migrations_to_device", r.migrations_to_device},
          {"migrations_to_system", r.migrations_to_system},
          {"bytes_to_device", r.bytes_to_device},
          {"bytes_to_system", r.bytes_to_system},
          {"evictions", r.evictions},
          {"pages_evicted", r.pages_evicted},
          {"thrash_events", r.thrash_events},
          {"bind_retries", r.bind_retries},
          {"device_high_water_bytes", r.high_water},
          {"data_errors", r.data_errors}};
}

void print_report(const StressResult& r) {
  auto mib = [](std::uint64_t b) { return static_cast<double>(b) / (1 << 20); };
  std::printf("\n== stress: %s ==\n", r.pattern.c_str());
  std::printf("  working set        %.0f MiB over %.0f MiB device memory (%.2fx)\n", mib(r.working_set),
              mib(r.device_memory), static_cast<double>(r.working_set) / static_cast<double>(r.device_memory));
  std::printf("  wall time          %.3f s   GPU throughput %.2f GB/s\n", r.wall_s, r.gpu_gb_per_s);
  std::printf("  modelled device    %.3f s\n", r.modelled_s);
  std::printf("  GPU faults         %llu   CPU faults %llu   bind retries %llu\n",
              static_cast<unsigned long long>(r.gpu_faults), static_cast<unsigned long long>(r.cpu_faults),
              static_cast<unsigned long long>(r.bind_retries));
  std::printf("  migrations         to device %llu (%.0f MiB), to system %llu (%.0f MiB)\n",
              static_cast<unsigned long long>(r.migrations_to_device), mib(r.bytes_to_device),
              static_cast<unsigned long long>(r.migrations_to_system), mib(r.bytes_to_system));
  std::printf("  evictions          %llu ranges, %llu pages   thrash events %llu   high water %.0f MiB\n",
              static_cast<unsigned long long>(r.evictions), static_cast<unsigned long long>(r.pages_evicted),
              static_cast<unsigned long long>(r.thrash_events), mib(r.high_water));
  std::printf("  data errors        %llu\n", static_cast<unsigned long long>(r.data_errors));
}

int cmd_info(const std::string& backend, bool json) {
  xesvm::Runtime rt(backend);
  auto d = rt.describe();
  if (json) {
    nlohmann::json j;
    for (auto& [k, v] : d) j[k] = v;
    std::cout << j.dump(2) << "\n";
  } else {
    for (auto& [k, v] : d) std::printf("%-18s %s\n", k.c_str(), v.c_str());
  }
  return 0;
}

int cmd_stress(const StressOptions& o) {
  std::uint64_t errors = 0;
  nlohmann::json all = nlohmann::json::array();
  for (auto p : o.patterns) {
    StressResult r = xesvm::tools::run_stress(o, p);
    errors += r.data_errors;
    if (o.json)
      all.push_back(to_json(r));
    else
      print_report(r);
  }
  if (o.json) std::cout << nlohmann::json{{"backend", o.backend}, {"results", all}}.dump(2) << "\n";
  if (errors) std::fprintf(stderr, "xesvm stress: %llu data errors\n", static_cast<unsigned long long>(errors));
  return errors ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"xesvm: shared virtual memory for GPUs"};
  app.require_subcommand(1);
  std::string backend = "sim:vram=256M";
  bool json = false;

  auto* info = app.add_subcommand("info", "describe the backend: device memory, chunk sizes, userfaultfd features");
  info->add_option("-b,--backend", backend, "backend URI (sim:vram=256M, xe:, xe:/dev/dri/renderD128)");
  info->add_flag("--json", json, "machine-readable output");

  StressOptions so;
  std::string pattern = "all";
  bool no_progress = false;
  auto* stress = app.add_subcommand("stress", "memory-pressure stress with byte verification");
  stress->add_option("-b,--backend", so.backend, "backend URI");
  stress->add_option("-x,--oversubscription", so.oversubscription, "working set / device memory")
      ->capture_default_str();
  stress->add_option("-p,--pattern", pattern, "grid-stride, block-stride, random or all")->capture_default_str();
  stress->add_option("-n,--passes", so.passes, "sweeps over the working set")->capture_default_str();
  stress->add_option("--cpu-fraction", so.cpu_fraction, "fraction of pages the CPU touches per pass")
      ->capture_default_str();
  stress->add_flag("--prefetch", so.prefetch, "prefetch + advice instead of plain faulting");
  stress->add_option("--seed", so.seed, "random seed")->capture_default_str();
  stress->add_flag("--json", so.json, "machine-readable report");
  stress->add_flag("--no-progress", no_progress, "no progress output");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (*info) return cmd_info(backend, json);
    so.patterns = xesvm::tools::parse_patterns(pattern);
    so.progress = !no_progress;
    return cmd_stress(so);
  } catch (const xesvm::Error& e) {
    std::fprintf(stderr, "xesvm: %s\n", e.what());
    return 2;
  }
}
