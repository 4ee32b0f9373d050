// XESVM_STATS and XESVM_TRACE: any program's Runtime reports its counters
// at its end and, with tracing, a time series in the `xesvm stress --trace`
// format; bad values fail with the variable's name; a fork() child reports
// nothing and does not hang in the parent's sampler.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "runtime/observer.hpp"
#include "test_util.hpp"

namespace xesvm::test {
namespace {

namespace fs = std::filesystem;

// Sets the observation variables for one test and clears them after.
class ObserverEnv : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("xesvm-observer-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    for (const char* v : {"XESVM_STATS", "XESVM_TRACE", "XESVM_TRACE_INTERVAL_MS"}) unsetenv(v);
    fs::remove_all(dir_);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  static std::string slurp(const std::string& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  std::vector<std::string> files() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
  fs::path dir_;
};

std::vector<std::string> split(const std::string& line, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(line);
  for (std::string f; std::getline(ss, f, sep);) out.push_back(f);
  return out;
}

// The trace's rows as numbers, by column name.
struct Trace {
  std::vector<std::string> header;
  std::vector<std::vector<double>> rows;
  double sum(const std::string& col) const {
    const auto it = std::find(header.begin(), header.end(), col);
    if (it == header.end()) return -1;
    double s = 0;
    for (const auto& r : rows) s += r[static_cast<std::size_t>(it - header.begin())];
    return s;
  }
};
Trace read_trace(const std::string& p) {
  Trace t;
  std::ifstream in(p);
  std::string line;
  if (std::getline(in, line)) t.header = split(line, ',');
  while (std::getline(in, line)) {
    std::vector<double> r;
    for (const auto& f : split(line, ',')) r.push_back(std::stod(f));
    if (r.size() == t.header.size()) t.rows.push_back(r);
  }
  return t;
}

TEST_F(ObserverEnv, StatsVariableWritesEveryCounterWhenTheRuntimeEnds) {
  setenv("XESVM_STATS", path("stats-%p-%n.json").c_str(), 1);
  Stats at_end;
  {
    Runtime rt(test_uri("sim:vram=16M,workers=2"));
    auto* p = device_resident_shared(rt, 2u << 20, 1);
    ASSERT_NE(p, nullptr);
    at_end = rt.stats();
    EXPECT_EQ(slurp(path(files().at(0))), "") << "written before the end";
  }
  const auto f = files();
  ASSERT_EQ(f.size(), 1u);
  const std::string prefix = "stats-" + std::to_string(::getpid()) + "-";
  EXPECT_EQ(f[0].rfind(prefix, 0), 0u) << f[0] << ": %p is the process id";
  const std::string json = slurp(path(f[0]));
  EXPECT_NE(json.find("\"pid\":" + std::to_string(::getpid()) + ","), std::string::npos) << json;
  EXPECT_NE(json.find("\"backend\":\"sim\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"bytes_to_device\":2097152,"), std::string::npos) << json;
  EXPECT_NE(json.find("\"link_bytes\":" + std::to_string(at_end.link_bytes)), std::string::npos) << json;
  for (const auto& [name, v] : stats_fields(Stats{})) {
    (void)v;
    EXPECT_NE(json.find("\"" + std::string(name) + "\":"), std::string::npos) << name << " missing: " << json;
  }
}

TEST_F(ObserverEnv, StatsOneWritesOneJsonLineOnStderr) {
  setenv("XESVM_STATS", "1", 1);
  ::testing::internal::CaptureStderr();
  {
    Runtime rt("sim:vram=16M,workers=2");
    auto* p = device_resident_shared(rt, 2u << 20, 3);
    ASSERT_NE(p, nullptr);
  }
  const std::string err = ::testing::internal::GetCapturedStderr();
  const std::string head = "xesvm stats: {\"pid\":" + std::to_string(::getpid()) + ",";
  ASSERT_NE(err.find(head), std::string::npos) << err;
  const std::string line = err.substr(err.find(head));
  EXPECT_NE(line.find("\"bytes_to_device\":2097152,"), std::string::npos) << line;
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line";
  EXPECT_TRUE(files().empty());
}

TEST_F(ObserverEnv, TraceVariableWritesRowsThatAddUpToTheCounters) {
  setenv("XESVM_TRACE", path("trace-%n.csv").c_str(), 1);
  setenv("XESVM_TRACE_INTERVAL_MS", "5", 1);
  Stats at_end;
  {
    Runtime rt(test_uri("sim:vram=16M,workers=2"));
    auto* p = static_cast<std::uint8_t*>(rt.alloc_shared(4u << 20));
    fill(p, 4u << 20, 2);
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
    while (std::chrono::steady_clock::now() < until) {
      rt.prefetch(p, 4u << 20, Location::kDevice);
      rt.evict(p, 4u << 20);
    }
    EXPECT_EQ(mismatches(p, 4u << 20, 2), 0u);
    at_end = rt.stats();
  }
  const auto f = files();
  ASSERT_EQ(f.size(), 1u);
  const Trace t = read_trace(path(f[0]));
  EXPECT_EQ(t.header, trace_columns());
  EXPECT_GE(t.rows.size(), 5u) << "a 5 ms interval over 100 ms";
  EXPECT_GT(at_end.bytes_to_device, 0u);
  EXPECT_EQ(t.sum("bytes_to_device"), static_cast<double>(at_end.bytes_to_device));
  EXPECT_EQ(t.sum("bytes_to_system"), static_cast<double>(at_end.bytes_to_system));
  EXPECT_EQ(t.sum("pages_evicted"), static_cast<double>(at_end.pages_evicted));
}

TEST_F(ObserverEnv, BadValuesAreRefusedNamingTheVariable) {
  auto refused = [&](const char* var, const std::string& value, const std::string& says) {
    setenv(var, value.c_str(), 1);
    try {
      Runtime rt("sim:vram=16M,workers=2");
      ADD_FAILURE() << var << "=" << value << " was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Error::Code::kInvalidArgument);
      EXPECT_NE(std::string(e.what()).find(var), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
    }
    unsetenv(var);
  };
  setenv("XESVM_TRACE", path("t.csv").c_str(), 1);
  refused("XESVM_TRACE_INTERVAL_MS", "0", "from 1 to");
  refused("XESVM_TRACE_INTERVAL_MS", "ten", "whole number");
  refused("XESVM_TRACE_INTERVAL_MS", "-5", "whole number");
  unsetenv("XESVM_TRACE");
  refused("XESVM_TRACE", path("t-%x.csv"), "unknown '%x'");
  refused("XESVM_TRACE", path("no-such-dir/t.csv"), "cannot create");
  refused("XESVM_STATS", path("no-such-dir/s.json"), "cannot create");
  refused("XESVM_STATS", path("s-%"), "unknown '%'");
}

TEST_F(ObserverEnv, PathExpansion) {
  const std::string pid = std::to_string(::getpid());
  EXPECT_EQ(Observer::expand_path("a-%p-%n-%%.csv", "X", 7), "a-" + pid + "-7-%.csv");
  EXPECT_EQ(Observer::expand_path("plain", "X", 0), "plain");
}

// The child of a fork() inherits the Observer but not its sampler thread:
// finishing it there would join a thread that does not exist (forever)
// and write the parent's report. The child runs what its exit would run
// (the atexit handler) and must return at once, writing nothing.
TEST_F(ObserverEnv, ForkChildReportsNothingAndDoesNotWaitForTheParentsSampler) {
  setenv("XESVM_STATS", path("stats.json").c_str(), 1);
  setenv("XESVM_TRACE", path("trace.csv").c_str(), 1);
  setenv("XESVM_TRACE_INTERVAL_MS", "5", 1);
  {
    Runtime rt("sim:vram=16M,workers=2");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      Observer::finish_all();
      _exit(0);
    }
    int status = 0;
    pid_t got = 0;
    for (int i = 0; i < 1000 && got == 0; ++i) {
      got = waitpid(pid, &status, WNOHANG);
      if (got == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (got == 0) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      FAIL() << "the child's at-exit report waited for the parent's sampler thread";
    }
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
    EXPECT_EQ(slurp(path("stats.json")), "") << "the child wrote the parent's report";
  }
  const std::string json = slurp(path("stats.json"));
  EXPECT_NE(json.find("\"pid\":" + std::to_string(::getpid()) + ","), std::string::npos) << json;
  EXPECT_GE(read_trace(path("trace.csv")).rows.size(), 2u);
}

}  // namespace
}  // namespace xesvm::test
