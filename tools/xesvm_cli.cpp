// The `xesvm` command line: devices, info, stress, plot, run.
//
// Exit status (every command):
//   0  success
//   1  `stress` found data errors (every byte is checked)
//   2  bad command line or input (unknown option, malformed URI, a file
//      that is not a trace)
//   3  the backend could not be opened or failed
//   4  something the command needs is missing or failed: gnuplot, the Level
//      Zero driver, writing an output file
// `run` ends with the application's own exit status (126: it cannot be
// executed, 127: it was not found).
//
// The backend of `info`, `stress` and `run` is -b/--backend, else the
// environment's XESVM_BACKEND, else sim:vram=256M.
#include <dirent.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <optional>
#include <sstream>

#include "runtime/stats_trace.hpp"
#include "tools/launch.hpp"
#include "tools/plot.hpp"
#include "tools/stress.hpp"
#include "xesvm/xesvm.hpp"

#ifndef XESVM_VERSION
#define XESVM_VERSION "unknown"
#endif

namespace {

using nlohmann::json;
using xesvm::tools::StressOptions;
using xesvm::tools::StressResult;

constexpr int kExitDataErrors = 1;
constexpr int kExitUsage = 2;
constexpr int kExitBackend = 3;
constexpr int kExitEnvironment = 4;
constexpr const char* kDefaultBackend = "sim:vram=256M";

int exit_code_of(const xesvm::Error& e) {
  return e.code() == xesvm::Error::Code::kInvalidArgument ? kExitUsage : kExitBackend;
}

json stats_json(const xesvm::Stats& s) {
  json j = json::object();
  for (auto& [k, v] : xesvm::stats_fields(s)) j[k] = v;
  return j;
}

json caps_json(const xesvm::Capabilities& c) {
  return {{"backend", c.backend},
          {"has_engine", c.has_engine},
          {"engine_workers", c.engine_workers},
          {"has_mechanism", c.has_mechanism},
          {"host_kernels", c.host_kernels},
          {"kernel_mode_faults", c.kernel_mode_faults},
          {"device_memory_bytes", c.device_memory_bytes}};
}

json to_json(const StressResult& r) {
  return {{"pattern", r.pattern},
          {"threads", r.threads},
          {"passes", r.passes},
          {"policy_only", r.policy_only},
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
          {"data_errors", r.data_errors},
          {"optimal_bound", r.has_bound ? json{{"bound_s", r.bound_s},
                                               {"method", r.bound_method},
                                               {"belady_s", r.belady_s},
                                               {"belady_misses", r.belady_misses},
                                               {"remote_stream_s", r.remote_stream_s},
                                               {"modelled_over_bound", r.modelled_s / std::max(1e-12, r.bound_s)}}
                                        : json{{"note", r.bound_note}}},
          {"stats", stats_json(r.stats)}};
}

void print_report(const StressResult& r) {
  auto mib = [](std::uint64_t b) { return static_cast<double>(b) / (1 << 20); };
  auto u = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
  std::printf("\n== stress: %s ==\n", r.pattern.c_str());
  std::printf("  working set        %.0f MiB over %.0f MiB device memory (%.2fx), %u thread%s, %llu passes\n",
              mib(r.working_set), mib(r.device_memory),
              static_cast<double>(r.working_set) / static_cast<double>(std::max<std::uint64_t>(1, r.device_memory)),
              r.threads, r.threads == 1 ? "" : "s", u(r.passes));
  std::printf("  wall time          %.3f s   GPU throughput %.2f GB/s\n", r.wall_s, r.gpu_gb_per_s);
  std::printf("  modelled device    %.3f s   link bytes %.0f MiB\n", r.modelled_s, mib(r.stats.link_bytes));
  if (r.has_bound) {
    std::printf(
        "  optimal bound      %.3f s (%s; Belady %.3f s with %llu misses, remote stream %.3f s)   "
        "modelled/bound %.2fx\n",
        r.bound_s, r.bound_method.c_str(), r.belady_s, u(r.belady_misses), r.remote_stream_s,
        r.modelled_s / std::max(1e-12, r.bound_s));
  } else {
    std::printf("  optimal bound      not computed: %s\n", r.bound_note.c_str());
  }
  std::printf("  GPU faults         %llu   CPU faults %llu   bind retries %llu   invalidations %llu\n", u(r.gpu_faults),
              u(r.cpu_faults), u(r.bind_retries), u(r.stats.invalidations));
  std::printf("  migrations         to device %llu (%.0f MiB), to system %llu (%.0f MiB)\n", u(r.migrations_to_device),
              mib(r.bytes_to_device), u(r.migrations_to_system), mib(r.bytes_to_system));
  std::printf(
      "  evictions          %llu ranges, %llu pages (%llu skipped)   thrash events %llu   high water %.0f MiB\n",
      u(r.evictions), u(r.pages_evicted), u(r.stats.pages_evict_skipped), u(r.thrash_events), mib(r.high_water));
  if (r.device_copies) {
    std::printf("  device work        %llu copies/fills of 2 MiB blocks (Runtime::copy/fill)\n", u(r.device_ops));
    std::printf("  kernel counters    %s\n", r.kernel_counters_note.c_str());
    for (const auto& [name, v] : r.kernel_counters) std::printf("    %-32s %lld\n", name.c_str(), v);
  }
  std::printf("  data errors        %llu\n", u(r.data_errors));
}

// A describe() value as JSON: a number if it is one, {value, unit} for
// "13 GB/s", a list of those for "13 GB/s, 1500 ns latency", else the text.
json value_json(const std::string& text) {
  auto number = [](const std::string& s, double& out) {
    if (s.empty()) return false;
    std::size_t used = 0;
    try {
      out = std::stod(s, &used);
    } catch (const std::exception&) {
      return false;
    }
    return used == s.size();
  };
  auto part = [&](const std::string& p) -> std::optional<json> {
    std::istringstream in(p);
    std::string n, unit, rest, w;
    in >> n >> unit;
    while (in >> w) rest += (rest.empty() ? "" : " ") + w;
    double v;
    if (!number(n, v)) return std::nullopt;
    json j = {{"value", v}};
    if (!unit.empty()) j["unit"] = unit;
    if (!rest.empty()) j["what"] = rest;
    return j;
  };
  double v;
  if (number(text, v)) return v;
  std::vector<json> parts;
  std::size_t start = 0;
  while (true) {
    const auto comma = text.find(", ", start);
    auto p = part(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (!p) return text;
    parts.push_back(*p);
    if (comma == std::string::npos) break;
    start = comma + 2;
  }
  if (parts.size() == 1) return parts[0];
  return parts;
}

int cmd_info(const std::string& backend, bool as_json) {
  xesvm::Runtime rt(backend);
  const auto d = rt.describe();
  if (as_json) {
    json props = json::object();
    for (auto& [k, v] : d) props[k] = value_json(v);
    std::cout << json{{"uri", backend},
                      {"capabilities", caps_json(rt.capabilities())},
                      {"properties", props},
                      {"stats", stats_json(rt.stats())}}
                     .dump(2)
              << "\n";
  } else {
    for (auto& [k, v] : d) std::printf("%-18s %s\n", k.c_str(), v.c_str());
  }
  return 0;
}

// Every backend that can be tried here: the sim device, and each DRM
// render node (the xe backend says whether it is an Xe device).
int cmd_devices(bool as_json) {
  std::vector<std::string> uris{"sim:"};
  if (DIR* dir = ::opendir("/dev/dri")) {
    std::vector<std::string> nodes;
    while (dirent* e = ::readdir(dir)) {
      if (std::string(e->d_name).rfind("renderD", 0) == 0) nodes.push_back(std::string("/dev/dri/") + e->d_name);
    }
    ::closedir(dir);
    std::sort(nodes.begin(), nodes.end());
    for (auto& n : nodes) uris.push_back("xe:" + n);
  }
  json list = json::array();
  for (const auto& uri : uris) {
    json j = {{"uri", uri}};
    try {
      xesvm::Runtime rt(uri);
      const auto caps = rt.capabilities();
      j["state"] = "available";
      j["backend"] = caps.backend;
      j["capabilities"] = caps_json(caps);
      for (auto& [k, v] : rt.describe()) {
        if (k == "description") j["description"] = v;
      }
    } catch (const xesvm::Error& e) {
      j["state"] = "unavailable";
      j["reason"] = e.what();
    }
    list.push_back(j);
  }
  if (as_json) {
    std::cout << json{{"devices", list}}.dump(2) << "\n";
    return 0;
  }
  std::printf("%-28s %-12s %s\n", "URI", "STATE", "DETAILS");
  for (const auto& j : list) {
    std::string details;
    if (j["state"] == "available") {
      const auto& c = j["capabilities"];
      details = j.value("description", "") + "; " +
                std::to_string(c["device_memory_bytes"].get<std::uint64_t>() >> 20) + " MiB device memory";
      if (c["has_engine"].get<bool>())
        details += ", engine (" + std::to_string(c["engine_workers"].get<unsigned>()) + " workers)";
      if (c["has_mechanism"].get<bool>()) {
        details += c["kernel_mode_faults"].get<bool>() ? ", kernel-mode faults" : ", user-mode-only faults";
      }
    } else {
      details = j["reason"].get<std::string>();
    }
    std::printf("%-28s %-12s %s\n", j["uri"].get<std::string>().c_str(), j["state"].get<std::string>().c_str(),
                details.c_str());
  }
  if (uris.size() == 1) std::printf("(no DRM render nodes in /dev/dri: no Xe device can be opened here)\n");
  return 0;
}

int plot_to(const std::string& csv, const std::string& png, const std::string& title, bool as_json, bool quiet) {
  try {
    const auto r = xesvm::tools::plot_trace(csv, png, title);
    if (as_json) {
      std::cout << json{{"trace", csv},     {"png", png},         {"rows", r.rows},
                        {"width", r.width}, {"height", r.height}, {"bytes", r.bytes}}
                       .dump(2)
                << "\n";
    } else if (!quiet) {
      std::printf("%s: %ux%u PNG, %llu rows of %s\n", png.c_str(), r.width, r.height,
                  static_cast<unsigned long long>(r.rows), csv.c_str());
    }
    return 0;
  } catch (const xesvm::tools::PlotError& e) {
    std::fprintf(stderr, "xesvm plot: %s\n", e.message.c_str());
    return e.kind == xesvm::tools::PlotError::Kind::kBadInput ? kExitUsage : kExitEnvironment;
  }
}

struct StressCli {
  StressOptions so;
  std::string pattern = "all", trace, csv, plot;
  unsigned interval_ms = 100;
  bool no_progress = false;
};

int cmd_stress(StressCli& c) {
  StressOptions& o = c.so;
  o.patterns = xesvm::tools::parse_patterns(c.pattern);
  o.progress = !c.no_progress;
  if (!c.trace.empty() && !c.csv.empty() && c.trace != c.csv) {
    std::fprintf(stderr, "xesvm stress: --csv and --trace name the same file format; give one of them\n");
    return kExitUsage;
  }
  std::string trace_path = !c.trace.empty() ? c.trace : c.csv;
  std::string temp_trace;
  if (trace_path.empty() && !c.plot.empty()) {
    temp_trace = c.plot + ".csv";
    trace_path = temp_trace;
  }
  if (c.interval_ms < 1 || c.interval_ms > 60000) {
    std::fprintf(stderr, "xesvm stress: --interval must be in [1, 60000] ms\n");
    return kExitUsage;
  }
  std::unique_ptr<xesvm::TraceWriter> writer;
  if (!trace_path.empty()) writer = std::make_unique<xesvm::TraceWriter>(trace_path);
  const auto origin = std::chrono::steady_clock::now();

  std::uint64_t errors = 0;
  json all = json::array();
  std::string title = "xesvm stress";
  for (auto p : o.patterns) {
    StressResult r = xesvm::tools::run_stress(o, p, writer.get(), std::chrono::milliseconds(c.interval_ms), origin);
    errors += r.data_errors;
    title += " " + r.pattern;
    if (o.json)
      all.push_back(to_json(r));
    else
      print_report(r);
  }
  if (writer) {
    try {
      writer->close();
    } catch (const xesvm::Error& e) {
      std::fprintf(stderr, "xesvm stress: %s\n", e.what());
      return kExitEnvironment;
    }
  }
  char buf[96];
  std::snprintf(buf, sizeof buf, " %.2gx, %u thread%s, %s", o.oversubscription, o.threads, o.threads == 1 ? "" : "s",
                o.backend.c_str());
  title += buf;
  int plot_rc = 0;
  json plot_j;
  if (!c.plot.empty()) {
    try {
      const auto r = xesvm::tools::plot_trace(trace_path, c.plot, title);
      plot_j = {{"png", c.plot}, {"rows", r.rows}, {"width", r.width}, {"height", r.height}, {"bytes", r.bytes}};
    } catch (const xesvm::tools::PlotError& e) {
      std::fprintf(stderr, "xesvm stress: plot: %s\n", e.message.c_str());
      plot_rc = kExitEnvironment;
    }
    if (!temp_trace.empty()) std::remove(temp_trace.c_str());
  }
  if (o.json) {
    json out = {{"backend", o.backend}, {"results", all}};
    if (!c.csv.empty() || !c.trace.empty()) out["trace"] = {{"path", trace_path}, {"columns", xesvm::trace_columns()}};
    if (!plot_j.is_null()) out["plot"] = plot_j;
    std::cout << out.dump(2) << "\n";
  } else if (!plot_j.is_null()) {
    std::printf("plot: %s (%ux%u)\n", c.plot.c_str(), plot_j["width"].get<unsigned>(),
                plot_j["height"].get<unsigned>());
  }
  if (errors) {
    std::fprintf(stderr, "xesvm stress: %llu data errors\n", static_cast<unsigned long long>(errors));
    return kExitDataErrors;
  }
  return plot_rc;
}

int cmd_run(const xesvm::tools::LaunchOptions& lo, bool dry_run, bool as_json) {
  if (as_json && !dry_run) {
    std::fprintf(stderr,
                 "xesvm run: --json describes the launch and needs --dry-run (the application's output is its own)\n");
    return kExitUsage;
  }
  xesvm::tools::LaunchPlan plan;
  try {
    plan = xesvm::tools::plan_launch(lo);
    // Fail here, saying why, rather than in the application's zeInit.
    // (The driver's own default is the tool's.)
    xesvm::Runtime probe(lo.backend.empty() ? kDefaultBackend : lo.backend);
  } catch (const xesvm::tools::LaunchError& e) {
    std::fprintf(stderr, "xesvm run: %s\n", e.message.c_str());
    return e.exit_code;
  }
  if (dry_run) {
    if (as_json) {
      json env = json::object();
      for (auto& [k, v] : plan.env) env[k] = v;
      std::cout << json{{"driver", plan.driver}, {"environment", env}, {"command", plan.command}}.dump(2) << "\n";
    } else {
      for (auto& [k, v] : plan.env) std::printf("%s=%s ", k.c_str(), v.c_str());
      for (auto& a : plan.command) std::printf("%s ", a.c_str());
      std::printf("\n");
    }
    return 0;
  }
  std::fflush(stdout);
  std::string err;
  const int rc = xesvm::tools::exec_plan(plan, err);
  std::fprintf(stderr, "xesvm run: %s\n", err.c_str());
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "xesvm: shared virtual memory for GPUs.\n"
      "Exit status: 0 ok, 1 data errors, 2 bad command line or input, 3 backend failed,\n"
      "4 a needed program or file is missing or failed; `run`: the application's."};
  app.set_version_flag("--version", std::string("xesvm ") + XESVM_VERSION);
  app.require_subcommand(1);
  std::string backend = kDefaultBackend;
  bool json_out = false;
  auto backend_opt = [&](CLI::App* sub, std::string& target) {
    return sub->add_option("-b,--backend", target, "backend URI (sim:vram=256M, xe:, xe:/dev/dri/renderD128)")
        ->envname("XESVM_BACKEND");
  };

  auto* devices = app.add_subcommand("devices", "list every backend that can be tried here, with its state");
  devices->add_flag("--json", json_out, "machine-readable output");

  auto* info = app.add_subcommand("info", "describe a backend: device memory, engine, userfaultfd features");
  backend_opt(info, backend)->capture_default_str();
  info->add_flag("--json", json_out, "machine-readable output (numbers as numbers)");

  StressCli sc;
  auto* stress = app.add_subcommand("stress", "memory-pressure stress with byte verification");
  backend_opt(stress, sc.so.backend)->capture_default_str();
  stress->add_option("-x,--oversubscription", sc.so.oversubscription, "working set / device memory")
      ->capture_default_str();
  stress->add_option("-p,--pattern", sc.pattern, "grid-stride, block-stride, random or all")->capture_default_str();
  stress->add_option("-n,--passes", sc.so.passes, "sweeps over the working set (without --duration)")
      ->capture_default_str();
  stress->add_option("--duration", sc.so.duration_s, "run passes until this many seconds have passed (0: use -n)")
      ->capture_default_str();
  stress->add_option("--threads", sc.so.threads, "host threads, each driving its own allocation")
      ->capture_default_str();
  stress->add_option("--cpu-fraction", sc.so.cpu_fraction, "fraction of pages the CPU touches per pass")
      ->capture_default_str();
  stress->add_flag("--prefetch", sc.so.prefetch, "prefetch + advice instead of plain faulting");
  stress->add_option("--seed", sc.so.seed, "random seed")->capture_default_str();
  stress->add_option("--trace", sc.trace, "write the counters per interval to this CSV file");
  stress->add_option("--csv", sc.csv, "the same as --trace");
  stress->add_option("--interval", sc.interval_ms, "sampling interval of --trace/--plot in ms")->capture_default_str();
  stress->add_option("--plot", sc.plot, "draw residency, migration throughput and events over time to this PNG");
  stress->add_flag("--json", sc.so.json, "machine-readable report with every counter");
  stress->add_flag("--no-progress", sc.no_progress, "no progress output");

  std::string plot_csv, plot_png, plot_title = "xesvm trace";
  auto* plot = app.add_subcommand("plot", "draw a trace (from stress --trace) as a PNG");
  plot->add_option("trace", plot_csv, "the trace CSV")->required();
  plot->add_option("-o,--output", plot_png, "the PNG to write (default: TRACE with .png)");
  plot->add_option("--title", plot_title, "the plot's title")->capture_default_str();
  plot->add_flag("--json", json_out, "machine-readable output (rows, PNG size)");

  xesvm::tools::LaunchOptions lo;
  bool dry_run = false;
  auto* run =
      app.add_subcommand("run", "run a Level Zero application on the xesvm driver: xesvm run [options] -- APP [ARGS]");
  backend_opt(run, lo.backend);
  run->add_option("--driver", lo.driver, "the Level Zero driver (default: the installed libze_xesvm.so)");
  run->add_flag("--keep-system-drivers", lo.keep_system_drivers, "also load Intel's GPU driver (libze_intel_gpu.so.1)");
  run->add_flag("--dry-run", dry_run, "print the environment and command instead of running it");
  run->add_flag("--json", json_out, "with --dry-run: print the launch as JSON");
  run->add_option("command", lo.command, "the application and its arguments (after --)")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }
  try {
    if (*devices) return cmd_devices(json_out);
    if (*info) return cmd_info(backend, json_out);
    if (*plot) {
      if (plot_png.empty()) {
        plot_png = plot_csv;
        const auto dot = plot_png.rfind('.');
        if (dot != std::string::npos && plot_png.find('/', dot) == std::string::npos) plot_png.resize(dot);
        plot_png += ".png";
      }
      return plot_to(plot_csv, plot_png, plot_title, json_out, false);
    }
    if (*run) {
      return cmd_run(lo, dry_run, json_out);
    }
    return cmd_stress(sc);
  } catch (const xesvm::Error& e) {
    std::fprintf(stderr, "xesvm: %s\n", e.what());
    return exit_code_of(e);
  }
}
