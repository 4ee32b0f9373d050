// The optimal-policy bound of `xesvm stress`: Belady's MIN over the recorded
// range sequence, and a resident subset plus remote streaming (see the header
// for the model).
#include "tools/opt_bound.hpp"

#include <algorithm>
#include <limits>
#include <set>
#include <unordered_map>

#include "xesvm/xesvm.hpp"

namespace xesvm::tools {
namespace {

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kRangePages = 512;  // 2 MiB ranges
constexpr std::uint64_t kNever = std::numeric_limits<std::uint64_t>::max();

struct Event {
  std::uint64_t range;
  bool cpu;  // a CPU touch: the range goes home if it is on the device
};

// The events of the whole run: per pass the launch (workers interleaved
// round-robin, consecutive requests of one range merged) and the CPU touches.
std::vector<Event> events_of(const BoundInput& in) {
  const std::uint64_t n = in.order.size();
  const std::uint64_t base = n / in.workers, rem = n % in.workers;
  std::vector<std::uint64_t> begin(in.workers), end(in.workers);
  std::uint64_t longest = 0;
  for (unsigned w = 0; w < in.workers; ++w) {
    begin[w] = w * base + std::min<std::uint64_t>(w, rem);
    end[w] = begin[w] + base + (w < rem ? 1 : 0);
    longest = std::max(longest, end[w] - begin[w]);
  }
  std::vector<Event> launch;
  for (std::uint64_t k = 0; k < longest; ++k) {
    for (unsigned w = 0; w < in.workers; ++w) {
      if (begin[w] + k >= end[w]) continue;
      const std::uint64_t r = in.order[begin[w] + k] / kRangePages;
      if (launch.empty() || launch.back().range != r) launch.push_back({r, false});
    }
  }
  std::vector<Event> ev;
  for (const auto& touches : in.cpu_touches) {
    ev.insert(ev.end(), launch.begin(), launch.end());
    for (std::uint64_t p : touches) ev.push_back({p / kRangePages, true});
  }
  return ev;
}

// Belady's MIN with removals: misses of a cache of `capacity` ranges.
std::uint64_t belady_misses(const std::vector<Event>& ev, std::uint64_t capacity) {
  // Next request of the same range before it is next sent home (kNever if
  // the CPU sends it home first, or it is not requested again).
  std::vector<std::uint64_t> next(ev.size(), kNever);
  std::unordered_map<std::uint64_t, std::uint64_t> upcoming;
  for (std::size_t i = ev.size(); i-- > 0;) {
    auto it = upcoming.find(ev[i].range);
    if (ev[i].cpu) {
      if (it != upcoming.end()) it->second = kNever;
      continue;
    }
    next[i] = it == upcoming.end() ? kNever : it->second;
    upcoming[ev[i].range] = i;
  }
  std::set<std::pair<std::uint64_t, std::uint64_t>> by_next;  // (next use, range)
  std::unordered_map<std::uint64_t, std::uint64_t> resident;  // range -> its key in by_next
  std::uint64_t misses = 0;
  for (std::size_t i = 0; i < ev.size(); ++i) {
    const std::uint64_t r = ev[i].range;
    auto it = resident.find(r);
    if (ev[i].cpu) {
      if (it != resident.end()) {
        by_next.erase({it->second, r});
        resident.erase(it);
      }
      continue;
    }
    if (it != resident.end()) {
      by_next.erase({it->second, r});
      it->second = next[i];
      by_next.insert({next[i], r});
      continue;
    }
    ++misses;
    if (resident.size() >= capacity) {
      auto victim = std::prev(by_next.end());
      resident.erase(victim->second);
      by_next.erase(victim);
    }
    resident[r] = next[i];
    by_next.insert({next[i], r});
  }
  return misses;
}

}  // namespace

Bound optimal_bound(const BoundInput& in) {
  if (in.pages == 0 || in.order.empty() || in.cpu_touches.empty()) {
    throw Error(Error::Code::kInvalidArgument, "optimal_bound: empty working set or no pass; expected at least one");
  }
  if (in.workers == 0) throw Error(Error::Code::kInvalidArgument, "optimal_bound: 0 workers; expected at least 1");
  const std::uint64_t capacity = in.device_bytes / (kRangePages * kPage);
  if (capacity == 0) {
    throw Error(Error::Code::kInvalidArgument, "optimal_bound: device memory below one 2 MiB range");
  }
  const sim::LinkParams& p = in.link;
  const double range_bytes = static_cast<double>(kRangePages * kPage);
  // One migration there and back, with its fault; one device page access;
  // one remote page access (read and write back: two link transfers).
  const double migrate_ns = p.fault_latency_ns + 2 * (range_bytes / p.link_gb_per_s + p.link_latency_ns);
  const double local_ns = static_cast<double>(kPage) / p.local_gb_per_s;
  const double remote_ns = 2 * (static_cast<double>(kPage) / p.link_gb_per_s + p.link_latency_ns);
  const std::uint64_t passes = in.cpu_touches.size();
  const double accesses = static_cast<double>(in.order.size() * passes);

  Bound b;
  b.belady_misses = belady_misses(events_of(in), capacity);
  b.belady_s = (static_cast<double>(b.belady_misses) * migrate_ns + accesses * local_ns) * 1e-9;

  // Remote streaming: the `capacity` most accessed ranges stay resident
  // (migrated once, and again after each CPU touch sends one home).
  const std::uint64_t ranges = (in.pages + kRangePages - 1) / kRangePages;
  std::vector<std::uint64_t> per_range(ranges, 0);
  for (std::uint64_t pg : in.order) ++per_range[pg / kRangePages];
  std::vector<std::uint64_t> idx(ranges);
  for (std::uint64_t r = 0; r < ranges; ++r) idx[r] = r;
  std::stable_sort(idx.begin(), idx.end(),
                   [&](std::uint64_t a, std::uint64_t c) { return per_range[a] > per_range[c]; });
  std::vector<char> keep(ranges, 0);
  for (std::uint64_t k = 0; k < std::min(capacity, ranges); ++k) keep[idx[k]] = 1;
  double res_accesses = 0, remote_accesses = 0, migrations = 0, remote_ranges = 0;
  for (std::uint64_t r = 0; r < ranges; ++r) {
    const double a = static_cast<double>(per_range[r] * passes);
    if (keep[r]) {
      res_accesses += a;
      migrations += per_range[r] ? 1 : 0;
    } else {
      remote_accesses += a;
      remote_ranges += per_range[r] ? 1 : 0;
    }
  }
  // A CPU touch sends a resident range home once per pass; it comes back
  // with the next pass.
  for (std::size_t pass = 0; pass + 1 < in.cpu_touches.size(); ++pass) {
    std::vector<char> home(ranges, 0);
    for (std::uint64_t pg : in.cpu_touches[pass]) {
      const std::uint64_t r = pg / kRangePages;
      if (keep[r] && !home[r]) migrations += 1, home[r] = 1;
    }
  }
  b.remote_stream_s = (migrations * migrate_ns + res_accesses * local_ns + remote_accesses * remote_ns +
                       remote_ranges * p.fault_latency_ns) *
                      1e-9;
  if (b.belady_s <= b.remote_stream_s) {
    b.bound_s = b.belady_s;
    b.method = "belady";
  } else {
    b.bound_s = b.remote_stream_s;
    b.method = "remote-stream";
  }
  return b;
}

}  // namespace xesvm::tools
