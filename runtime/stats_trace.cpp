// DOC: Overview
//
// The trace's rows are formatted into a string and written with one
// write(2) each (see stats_trace.hpp for why not stdio). A failed or short
// write is remembered and reported by close().
#include "runtime/stats_trace.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace xesvm {

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

TraceWriter::TraceWriter(const std::string& path)
    : path_(path), fd_(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) {
  if (fd_ < 0) {
    throw Error(Error::Code::kInvalidArgument,
                "cannot create trace file '" + path + "': " + std::strerror(errno) + "; expected a writable path");
  }
  std::string header;
  const auto cols = trace_columns();
  for (std::size_t i = 0; i < cols.size(); ++i) header += (i ? "," : "") + cols[i];
  put(header + "\n");
}

TraceWriter::~TraceWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void TraceWriter::put(const std::string& line) {
  if (fd_ < 0 || write_errno_) return;
  std::size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      write_errno_ = n < 0 ? errno : EIO;
      return;
    }
    done += static_cast<std::size_t>(n);
  }
}

void TraceWriter::write(double t_s, double prev_t_s, const Stats& prev, const Stats& now) {
  if (fd_ < 0) return;
  char buf[96];
  std::snprintf(buf, sizeof buf, "%.6f,%.6f,%llu,%llu", t_s, t_s - prev_t_s,
                static_cast<unsigned long long>(now.device_bytes_in_use),
                static_cast<unsigned long long>(now.device_bytes_total));
  std::string line = buf;
  const auto a = stats_fields(prev), b = stats_fields(now);
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (is_level_field(a[i].first)) continue;
    // Counters only grow; a smaller value means a new source (a new Runtime).
    const std::uint64_t d = b[i].second >= a[i].second ? b[i].second - a[i].second : b[i].second;
    line += ',' + std::to_string(d);
  }
  put(line + '\n');
  ++rows_;
}

void TraceWriter::close() {
  if (fd_ < 0) return;
  const int fd = fd_;
  fd_ = -1;
  const int rc = ::close(fd);
  const int err = write_errno_ ? write_errno_ : rc != 0 ? errno : 0;
  if (err) throw Error(Error::Code::kBackend, "writing trace file '" + path_ + "' failed: " + std::strerror(err));
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

}  // namespace xesvm
