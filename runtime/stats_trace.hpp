// Counter time series: the format `xesvm stress --trace` and XESVM_TRACE
// (runtime/observer.hpp) write and `xesvm plot` draws.
//
// A trace is a CSV file. The first line names the columns (trace_columns());
// then one line per sampling interval:
//   time_s       seconds since the trace began, at the end of the interval
//   interval_s   length of the interval
//   device_bytes_in_use, device_bytes_total   device memory at that moment
//   every other column: what the counter of the same name in xesvm::Stats
//   grew by during the interval (bytes_to_device, bytes_to_system,
//   gpu_faults, cpu_faults, evictions, thrash_events, ...)
//
// StatsSampler reads a Stats source at a fixed interval on a thread of its
// own and writes the rows. Both depend on the public API only (xesvm::Stats).
//
// Each row reaches the file in one write(2), unbuffered: a fork() never
// leaves half a row in a child's copy of a buffer, so a child that exits
// cannot write the parent's rows a second time.
//
// Concurrency: a TraceWriter is used by one thread at a time; a
// StatsSampler's source is called from the sampler's thread and must be
// thread-safe with the rest of the program (Runtime::stats() is).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "xesvm/xesvm.hpp"

namespace xesvm {

/// Every counter of Stats, by name, in declaration order (the names are the
/// JSON keys and trace columns).
std::vector<std::pair<const char*, std::uint64_t>> stats_fields(const Stats& s);

/// Counters that are levels, not totals: a trace records their value, not
/// their growth.
bool is_level_field(const std::string& name);

/// The trace's column names, in order.
std::vector<std::string> trace_columns();

/// Writes a trace file.
class TraceWriter {
 public:
  /// Creates (truncates) path and writes the header. Throws Error
  /// (kInvalidArgument) if it cannot be created, saying why.
  explicit TraceWriter(const std::string& path);
  /// Closes the file without reporting errors (call close() for that).
  ~TraceWriter();
  TraceWriter(const TraceWriter&) = delete;
  TraceWriter& operator=(const TraceWriter&) = delete;

  /// Appends the interval that ends at t_s (seconds since the trace began)
  /// and began at prev_t_s, with the counters then (prev) and now.
  void write(double t_s, double prev_t_s, const Stats& prev, const Stats& now);
  /// Rows written so far.
  std::uint64_t rows() const { return rows_; }
  /// Closes. Throws Error (kBackend) if a write failed or came up short
  /// (e.g. disk full), so a truncated trace is never reported as complete.
  /// Idempotent.
  void close();
  const std::string& path() const { return path_; }

 private:
  void put(const std::string& line);

  std::string path_;
  int fd_ = -1;
  int write_errno_ = 0;  // the first write failure, 0 if none
  std::uint64_t rows_ = 0;
};

/// Samples a Stats source every `interval` into a TraceWriter, from start
/// until stop(). Times are measured from `origin`, so several samplers in a
/// row (one Runtime after another) given one origin continue one time axis.
class StatsSampler {
 public:
  /// Starts sampling at once (the first row comes one interval later).
  /// REQUIRES: out outlives this sampler; interval > 0.
  StatsSampler(std::function<Stats()> source, std::chrono::milliseconds interval, TraceWriter& out,
               std::chrono::steady_clock::time_point origin);
  /// Stops (see stop()).
  ~StatsSampler();
  StatsSampler(const StatsSampler&) = delete;
  StatsSampler& operator=(const StatsSampler&) = delete;

  /// Writes a last row for the partial interval and joins the thread.
  /// Idempotent.
  void stop();
  /// The counters of the last row written (after stop(): the final ones).
  /// REQUIRES: stop() has returned.
  const Stats& last() const { return prev_; }

 private:
  void sample();
  void loop();

  std::function<Stats()> source_;
  std::chrono::milliseconds interval_;
  TraceWriter& out_;
  std::chrono::steady_clock::time_point origin_;
  Stats prev_{};
  double prev_t_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace xesvm
