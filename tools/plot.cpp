#include "tools/plot.hpp"

#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "runtime/stats_trace.hpp"

extern char** environ;

namespace xesvm::tools {
namespace {

[[noreturn]] void bad(const std::string& m) { throw PlotError{PlotError::Kind::kBadInput, m}; }

// gnuplot single-quoted strings end at the next quote; reject rather than
// mangle names that hold one.
std::string quoted(const std::string& s, const char* what) {
  if (s.find('\'') != std::string::npos || s.find('\n') != std::string::npos) {
    bad(std::string(what) + " '" + s + "' contains a quote or newline; expected a plain name");
  }
  return "'" + s + "'";
}

// Column index (1-based, as gnuplot counts) of name in the header.
int column(const std::vector<std::string>& header, const std::string& name) {
  for (std::size_t i = 0; i < header.size(); ++i) {
    if (header[i] == name) return static_cast<int>(i + 1);
  }
  return 0;
}

}  // namespace

void png_size(const std::string& path, unsigned& width, unsigned& height) {
  std::ifstream in(path, std::ios::binary);
  std::array<unsigned char, 24> h{};
  if (!in.read(reinterpret_cast<char*>(h.data()), h.size())) bad("'" + path + "' is too short to be a PNG");
  static constexpr unsigned char kSig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (std::memcmp(h.data(), kSig, 8) != 0 || std::memcmp(h.data() + 12, "IHDR", 4) != 0) {
    bad("'" + path + "' is not a PNG file (no PNG signature and IHDR chunk)");
  }
  auto be32 = [&](std::size_t o) {
    return static_cast<unsigned>(h[o]) << 24 | static_cast<unsigned>(h[o + 1]) << 16 |
           static_cast<unsigned>(h[o + 2]) << 8 | h[o + 3];
  };
  width = be32(16);
  height = be32(20);
}

PlotResult plot_trace(const std::string& csv_path, const std::string& png_path, const std::string& title) {
  std::ifstream in(csv_path);
  if (!in) bad("cannot read trace '" + csv_path + "': " + std::strerror(errno));
  std::string line;
  std::getline(in, line);
  std::vector<std::string> header;
  {
    std::stringstream ss(line);
    std::string f;
    while (std::getline(ss, f, ',')) header.push_back(f);
  }
  const std::vector<std::string> want = trace_columns();
  for (const char* c : {"time_s", "interval_s", "device_bytes_in_use", "device_bytes_total", "bytes_to_device",
                        "bytes_to_system", "gpu_faults", "cpu_faults", "evictions", "thrash_events"}) {
    if (!column(header, c)) {
      bad("'" + csv_path + "' is not an xesvm trace: its header has no column '" + c +
          "'; expected the CSV `xesvm stress --trace` writes");
    }
  }
  PlotResult r;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::size_t commas = 0;
    for (char ch : line) commas += ch == ',';
    if (commas + 1 != header.size()) {
      bad("'" + csv_path + "' row " + std::to_string(r.rows + 1) + " has " + std::to_string(commas + 1) +
          " fields; expected " + std::to_string(header.size()));
    }
    ++r.rows;
  }
  if (r.rows == 0) bad("'" + csv_path + "' has no data rows; expected at least one sampling interval");

  auto col = [&](const char* n) { return std::to_string(column(header, n)); };
  const std::string data = quoted(csv_path, "trace path");
  std::ostringstream gp;
  gp << "set datafile separator ','\n"
     << "set terminal pngcairo size 1200,900 noenhanced font ',10'\n"
     << "set output " << quoted(png_path, "PNG path") << "\n"
     << "set multiplot layout 3,1 title " << quoted(title, "title") << "\n"
     << "set grid\nset key outside right top\nset lmargin 12\nset rmargin 34\n"
     << "MiB = 1048576.0\n"
     << "set ylabel 'device memory (MiB)'\nset yrange [0:*]\n"
     << "plot " << data << " skip 1 using " << col("time_s") << ":($" << col("device_bytes_in_use")
     << "/MiB) with lines lw 2 title 'in use', '' skip 1 using " << col("time_s") << ":($" << col("device_bytes_total")
     << "/MiB) with lines dt 2 lw 2 title 'capacity'\n"
     << "set ylabel 'migration (MiB/s)'\n"
     << "plot " << data << " skip 1 using " << col("time_s") << ":($" << col("bytes_to_device") << "/MiB/$"
     << col("interval_s") << ") with lines lw 2 title 'to device', '' skip 1 using " << col("time_s") << ":($"
     << col("bytes_to_system") << "/MiB/$" << col("interval_s") << ") with lines lw 2 title 'to system'\n"
     << "set xlabel 'time (s)'\nset ylabel 'GPU faults, evictions, thrash events'\n"
     << "set y2tics\nset ytics nomirror\nset y2range [0:*]\n"
     << "plot " << data << " skip 1 using " << col("time_s") << ":" << col("gpu_faults")
     << " with lines lw 2 title 'GPU faults', '' skip 1 using " << col("time_s") << ":" << col("evictions")
     << " with lines lw 2 title 'evictions (ranges)', '' skip 1 using " << col("time_s") << ":" << col("thrash_events")
     << " with lines lw 2 title 'thrash events', '' skip 1 using " << col("time_s") << ":" << col("cpu_faults")
     << " axes x1y2 with lines lw 1 dt 3 title 'CPU faults (right)'\n"
     << "unset multiplot\n";

  // The script goes through a temporary file: gnuplot reads it by name.
  char script[] = "/tmp/xesvm-plot-XXXXXX";
  const int fd = mkstemp(script);
  if (fd < 0) throw PlotError{PlotError::Kind::kGnuplotFailed, std::string("mkstemp: ") + std::strerror(errno)};
  const std::string text = gp.str();
  const bool wrote = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  if (!wrote) {
    ::unlink(script);
    throw PlotError{PlotError::Kind::kGnuplotFailed, "cannot write the gnuplot script"};
  }
  ::unlink(png_path.c_str());
  pid_t pid;
  char arg0[] = "gnuplot";
  char* argv[] = {arg0, script, nullptr};
  const int se = posix_spawnp(&pid, "gnuplot", nullptr, nullptr, argv, environ);
  int status = 0;
  if (se == 0) waitpid(pid, &status, 0);
  ::unlink(script);
  if (se != 0) {
    throw PlotError{PlotError::Kind::kNoGnuplot,
                    std::string("cannot run gnuplot: ") + std::strerror(se) + " (install gnuplot-nox)"};
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw PlotError{PlotError::Kind::kGnuplotFailed, "gnuplot failed (its messages are above)"};
  }
  struct stat st {};
  if (::stat(png_path.c_str(), &st) != 0) {
    throw PlotError{PlotError::Kind::kGnuplotFailed, "gnuplot wrote no '" + png_path + "'"};
  }
  r.bytes = static_cast<std::uint64_t>(st.st_size);
  png_size(png_path, r.width, r.height);
  return r;
}

}  // namespace xesvm::tools
