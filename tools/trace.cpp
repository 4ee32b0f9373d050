#include "tools/trace.hpp"

#include <cerrno>
#include <cstring>

namespace xesvm::tools {

std::vector<std::pair<const char*, std::uint64_t>> stats_fields(const Stats& s) {
  return {{"gpu_faults", s.gpu_faults},
          {"cpu_faults", s.cpu_faults},
          {"migrations_to_device", s.migrations_to_device},
          {"bytes_to_device", s.bytes_to_device},
          {"migrations_to_system", s.migrations_to_system},
          {"bytes_to_system", s.bytes_to_system},
          {"evictions", s.evictions},
          {"pages_evicted", s.pages_evicted},
          {"pages_evict_skipped", s.pages_evict_skipped},
          {"invalidations", s.invalidations},
          {"bind_retries", s.bind_retries},
          {"thrash_events", s.thrash_events},
          {"cpu_mapping_lookups_in_eviction", s.cpu_mapping_lookups_in_eviction},
          {"device_bytes_in_use", s.device_bytes_in_use},
          {"device_bytes_high_water", s.device_bytes_high_water},
          {"device_bytes_total", s.device_bytes_total},
          {"modelled_device_ns", s.modelled_device_ns},
          {"link_bytes", s.link_bytes}};
}

bool is_level_field(const std::string& name) {
  return name == "device_bytes_in_use" || name == "device_bytes_high_water" || name == "device_bytes_total";
}

std::vector<std::string> trace_columns() {
  std::vector<std::string> c{"time_s", "interval_s", "device_bytes_in_use", "device_bytes_total"};
  for (auto& [name, v] : stats_fields(Stats{})) {
    (void)v;
    if (!is_level_field(name)) c.emplace_back(name);
  }
  return c;
}

TraceWriter::TraceWriter(const std::string& path) : path_(path), file_(std::fopen(path.c_str(), "w")) {
  if (!file_) {
    throw Error(Error::Code::kInvalidArgument,
                "cannot create trace file '" + path + "': " + std::strerror(errno) + "; expected a writable path");
  }
  const auto cols = trace_columns();
  for (std::size_t i = 0; i < cols.size(); ++i) std::fprintf(file_.get(), "%s%s", i ? "," : "", cols[i].c_str());
  std::fputc('\n', file_.get());
}

void TraceWriter::write(double t_s, double prev_t_s, const Stats& prev, const Stats& now) {
  if (!file_) return;
  std::fprintf(file_.get(), "%.6f,%.6f,%llu,%llu", t_s, t_s - prev_t_s,
               static_cast<unsigned long long>(now.device_bytes_in_use),
               static_cast<unsigned long long>(now.device_bytes_total));
  const auto a = stats_fields(prev), b = stats_fields(now);
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (is_level_field(a[i].first)) continue;
    // Counters only grow; a smaller value means a new source (a new Runtime).
    const std::uint64_t d = b[i].second >= a[i].second ? b[i].second - a[i].second : b[i].second;
    std::fprintf(file_.get(), ",%llu", static_cast<unsigned long long>(d));
  }
  std::fputc('\n', file_.get());
  ++rows_;
}

void TraceWriter::close() {
  if (!file_) return;
  std::FILE* f = file_.release();
  const bool bad = std::ferror(f) != 0;
  const int rc = std::fclose(f);
  if (bad || rc != 0) {
    throw Error(Error::Code::kBackend, "writing trace file '" + path_ + "' failed: " + std::strerror(errno));
  }
}

StatsSampler::StatsSampler(std::function<Stats()> source, std::chrono::milliseconds interval, TraceWriter& out,
                           std::chrono::steady_clock::time_point origin)
    : source_(std::move(source)), interval_(interval), out_(out), origin_(origin) {
  prev_ = source_();
  prev_t_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - origin_).count();
  thread_ = std::thread([this] { loop(); });
}

StatsSampler::~StatsSampler() { stop(); }

void StatsSampler::sample() {
  const Stats now = source_();
  const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - origin_).count();
  out_.write(t, prev_t_, prev_, now);
  prev_ = now;
  prev_t_ = t;
}

void StatsSampler::loop() {
  std::unique_lock lock(mu_);
  auto next = std::chrono::steady_clock::now() + interval_;
  while (!cv_.wait_until(lock, next, [this] { return stopping_; })) {
    lock.unlock();
    sample();
    lock.lock();
    next += interval_;
  }
}

void StatsSampler::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
  sample();
}

}  // namespace xesvm::tools
