// DOC: Overview
//
// Every started Observer is in one registry. An atexit handler (installed
// with the first) finishes them all; a pthread_atfork child handler marks
// every copy in the child dropped and moves its sampler and trace file into
// an immortal list, so that nothing in the child joins the sampler thread
// (it does not exist there: a join would wait forever) or writes the
// parent's files. The registry lock is taken in the prepare handler, so the
// child never inherits it held.
//
// Lock order: registry -> Observer::mu_. A destructor leaves the registry
// before it finishes, so the atexit handler never meets a destroyed one.
#include "runtime/observer.hpp"

#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <vector>

namespace xesvm {
namespace {

constexpr std::uint64_t kMaxIntervalMs = 3'600'000;

// Never destroyed: the atexit handler may run after static destructors.
struct Registry {
  std::mutex mu;
  std::set<Observer*> live;
  std::vector<std::unique_ptr<StatsSampler>> dropped_samplers;  // in a fork() child
  std::vector<std::unique_ptr<TraceWriter>> dropped_traces;
};
Registry& registry() {
  static auto* r = new Registry;  // NOLINT(cppcoreguidelines-owning-memory): immortal
  return *r;
}

std::atomic<unsigned> next_number{0};

void fork_prepare() { registry().mu.lock(); }
void fork_parent() { registry().mu.unlock(); }

bool env_set(const char* v) { return v && *v; }

void create_or_throw(const std::string& path, const char* variable) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (!f) {
    throw Error(Error::Code::kInvalidArgument, std::string(variable) + ": cannot create '" + path +
                                                   "': " + std::strerror(errno) + "; expected a writable path");
  }
  std::fclose(f);
}

}  // namespace

std::string Observer::expand_path(const std::string& pattern, const char* variable, unsigned runtime_number) {
  std::string out;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] != '%') {
      out += pattern[i];
      continue;
    }
    const char c = i + 1 < pattern.size() ? pattern[i + 1] : '\0';
    if (c == 'p') {
      out += std::to_string(::getpid());
    } else if (c == 'n') {
      out += std::to_string(runtime_number);
    } else if (c == '%') {
      out += '%';
    } else {
      throw Error(Error::Code::kInvalidArgument, std::string(variable) + "='" + pattern + "': unknown '%" +
                                                     (c ? std::string(1, c) : "") +
                                                     "'; expected %p (process id), %n (runtime number) or %%");
    }
    ++i;
  }
  return out;
}

std::unique_ptr<Observer> Observer::from_environment() {
  const char* stats = std::getenv("XESVM_STATS");
  const char* trace = std::getenv("XESVM_TRACE");
  const bool want_stats = env_set(stats) && std::strcmp(stats, "0") != 0;
  const bool want_trace = env_set(trace);
  if (!want_stats && !want_trace) return nullptr;
  std::unique_ptr<Observer> o(new Observer());  // private constructor
  o->number_ = next_number.fetch_add(1);
  if (want_stats) {
    o->stats_ = true;
    if (std::strcmp(stats, "1") == 0) {
      o->stats_to_stderr_ = true;
    } else {
      o->stats_path_ = expand_path(stats, "XESVM_STATS", o->number_);
      create_or_throw(o->stats_path_, "XESVM_STATS");
    }
  }
  if (want_trace) {
    if (const char* iv = std::getenv("XESVM_TRACE_INTERVAL_MS"); env_set(iv)) {
      char* end = nullptr;
      errno = 0;
      const unsigned long long ms = std::strtoull(iv, &end, 10);
      if (errno || *end || *iv == '-' || ms < 1 || ms > kMaxIntervalMs) {
        throw Error(Error::Code::kInvalidArgument, std::string("XESVM_TRACE_INTERVAL_MS='") + iv +
                                                       "': expected a whole number of milliseconds from 1 to " +
                                                       std::to_string(kMaxIntervalMs));
      }
      o->interval_ = std::chrono::milliseconds(ms);
    }
    const std::string path = expand_path(trace, "XESVM_TRACE", o->number_);
    try {
      o->trace_ = std::make_unique<TraceWriter>(path);
    } catch (const Error& e) {
      throw Error(Error::Code::kInvalidArgument, std::string("XESVM_TRACE: ") + e.what());
    }
  }
  return o;
}

void Observer::start(std::function<Stats()> source, std::string backend) {
  static std::once_flag handlers;
  std::call_once(handlers, [] {
    std::atexit(finish_all);
    pthread_atfork(fork_prepare, fork_parent, drop_in_child);
  });
  source_ = std::move(source);
  backend_ = std::move(backend);
  if (trace_) sampler_ = std::make_unique<StatsSampler>(source_, interval_, *trace_, std::chrono::steady_clock::now());
  std::lock_guard lk(registry().mu);
  registry().live.insert(this);
  started_ = true;
}

Observer::~Observer() {
  {
    std::lock_guard lk(registry().mu);
    registry().live.erase(this);
  }
  finish();
}

void Observer::finish_all() {
  std::lock_guard lk(registry().mu);
  for (Observer* o : registry().live) o->finish();
}

void Observer::drop_in_child() {
  // The child has one thread; the registry lock is ours (prepare took it).
  Registry& r = registry();
  for (Observer* o : r.live) {
    o->dropped_.store(true);
    if (o->sampler_) r.dropped_samplers.push_back(std::move(o->sampler_));
    if (o->trace_) r.dropped_traces.push_back(std::move(o->trace_));
  }
  r.live.clear();
  r.mu.unlock();
}

void Observer::finish() {
  if (dropped_.load()) return;
  std::lock_guard lk(mu_);
  if (!started_ || finished_) return;
  finished_ = true;
  Stats s;
  if (sampler_) {
    sampler_->stop();
    s = sampler_->last();
    try {
      trace_->close();
    } catch (const Error& e) {
      std::fprintf(stderr, "xesvm: XESVM_TRACE: %s\n", e.what());
    }
  } else {
    s = source_();
  }
  if (stats_) write_stats(s);
}

void Observer::write_stats(const Stats& s) {
  std::string json = "{\"pid\":" + std::to_string(::getpid()) + ",\"runtime\":" + std::to_string(number_) +
                     ",\"backend\":\"" + backend_ + "\"";
  for (const auto& [name, v] : stats_fields(s)) json += ",\"" + std::string(name) + "\":" + std::to_string(v);
  json += "}\n";
  if (stats_to_stderr_) {
    std::fprintf(stderr, "xesvm stats: %s", json.c_str());
    return;
  }
  std::FILE* f = std::fopen(stats_path_.c_str(), "w");
  const bool ok = f && std::fputs(json.c_str(), f) >= 0;
  const bool closed = f && std::fclose(f) == 0;
  if (!ok || !closed) {
    std::fprintf(stderr, "xesvm: XESVM_STATS: writing '%s' failed: %s\n", stats_path_.c_str(), std::strerror(errno));
  }
}

}  // namespace xesvm
