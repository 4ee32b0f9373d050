// `xesvm plot`: draws a trace (runtime/stats_trace.hpp) as a PNG with gnuplot.
//
// Three panels over time: device memory in use against its capacity
// (residency), migration throughput to the device and to system memory
// (MiB/s over each interval), and GPU faults, evictions and thrash events per
// interval with CPU faults (pages) on a second axis.
#pragma once

#include <cstdint>
#include <string>

namespace xesvm::tools {

struct PlotResult {
  std::uint64_t rows = 0;          ///< data rows drawn
  unsigned width = 0, height = 0;  ///< of the PNG written, read back from its header
  std::uint64_t bytes = 0;         ///< size of the PNG
};

/// What was wrong when a plot could not be made.
struct PlotError {
  enum class Kind { kBadInput, kNoGnuplot, kGnuplotFailed } kind;
  std::string message;
};

/// Reads the trace at csv_path (checks its header and that it has at least
/// one row) and writes png_path. Throws PlotError saying what was wrong and
/// what was expected.
PlotResult plot_trace(const std::string& csv_path, const std::string& png_path, const std::string& title);

/// Reads the width and height from a PNG file's header. Throws PlotError
/// (kBadInput) if it is not a PNG.
void png_size(const std::string& path, unsigned& width, unsigned& height);

}  // namespace xesvm::tools
