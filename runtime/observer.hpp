// Observer: what the environment asks a Runtime to report about itself.
//
// Any program using xesvm (Level Zero applications through the loader
// included) can be observed without changing it:
//   XESVM_STATS=1        the counters as one JSON line on stderr when the
//                        Runtime is destroyed, or at exit if it never is
//   XESVM_STATS=PATH     the same JSON object written to PATH
//   XESVM_TRACE=PATH     a counter time series (runtime/stats_trace.hpp, the
//                        format of `xesvm stress --trace`; `xesvm plot` draws
//                        it) from the Runtime's creation to its end
//   XESVM_TRACE_INTERVAL_MS=N   the trace's sampling interval (default 100,
//                        1 to 3600000)
// In PATH, %p is the process id, %n the number of the Runtime in the process
// (0 for the first one observed, then 1, ...) and %% a percent sign; without
// %n a second Runtime truncates the first one's file.
//
// The JSON object: {"pid":P,"runtime":N,"backend":"sim",<every counter of
// xesvm::Stats by its name>}, on one line.
//
// "At exit": a process that exits with Runtimes still alive (Level Zero
// drivers are never torn down) gets their reports from an atexit handler.
// A fork() child reports nothing: its copy of every Observer is dropped in
// the child (the sampler thread does not exist there, and the files are the
// parent's).
//
// Concurrency: thread-safe. finish() may race with the atexit handler; the
// report is written once.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "runtime/stats_trace.hpp"
#include "xesvm/xesvm.hpp"

namespace xesvm {

class Observer {
 public:
  /// Reads XESVM_STATS, XESVM_TRACE and XESVM_TRACE_INTERVAL_MS and creates
  /// (truncates) the files they name, so that a bad value fails before the
  /// program runs. Returns nullptr if neither of the first two is set (or
  /// XESVM_STATS is "0"). Throws Error (kInvalidArgument) naming the
  /// variable for a bad value: an interval out of range, an unknown %
  /// sequence, a file that cannot be created. Nothing is sampled or written
  /// before start().
  static std::unique_ptr<Observer> from_environment();

  /// Starts sampling (with XESVM_TRACE) and makes the Observer report at
  /// finish() or exit. source is called from the sampler's thread and at
  /// finish(): it must be thread-safe and valid until finish() returns.
  /// REQUIRES: called once.
  void start(std::function<Stats()> source, std::string backend);

  /// finish(), if not done yet.
  ~Observer();
  Observer(const Observer&) = delete;
  Observer& operator=(const Observer&) = delete;

  /// Ends the trace (a last row for the partial interval) and writes the
  /// counters. Idempotent; a no-op before start() and in a fork() child;
  /// never throws (a failure is reported on stderr).
  void finish();

  /// What the atexit handler runs: finish() of every started Observer.
  /// Public so that a test can run it in a fork() child without exiting.
  static void finish_all();

  /// A report's path: pattern with %p, %n (= runtime_number) and %%
  /// expanded. Throws Error (kInvalidArgument) naming `variable` for any
  /// other % sequence.
  static std::string expand_path(const std::string& pattern, const char* variable, unsigned runtime_number);

 private:
  Observer() = default;
  static void drop_in_child();
  void write_stats(const Stats& s);

  std::function<Stats()> source_;
  std::string backend_;
  unsigned number_ = 0;
  bool stats_ = false;
  bool stats_to_stderr_ = false;
  std::string stats_path_;
  std::chrono::milliseconds interval_{100};
  std::unique_ptr<TraceWriter> trace_;
  std::unique_ptr<StatsSampler> sampler_;
  std::mutex mu_;  // finish()
  bool started_ = false;
  bool finished_ = false;
  std::atomic<bool> dropped_{false};  // set in a fork() child
};

}  // namespace xesvm
