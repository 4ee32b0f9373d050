// Shared-system memory: plain memory of the application (malloc, mmap) used
// by commands on the sim device (see driver.hpp, Device).
//
// The device mirrors it through the runtime on first use, page by whole
// page. The runtime follows the application's munmap and mremap of mirrored
// memory by itself; the driver's record of what it mirrored can therefore go
// stale (a buffer freed and another one allocated at the same addresses).
// Before trusting a record, mirror_system asks the runtime: a region the
// runtime still mirrors is refused by Runtime::mirror, a stale one is
// accepted, and is then dropped and mirrored afresh with the rest.
#include <sys/mman.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "level-zero/driver.hpp"

namespace xesvm::ze {

namespace {

constexpr std::uint64_t kPage = 4096;

struct Mapping {
  std::uint64_t start, end;
};

// One line of /proc/self/maps, if it is a private, anonymous, read-write
// mapping (as malloc and mmap make them).
std::optional<Mapping> anonymous(const std::string& line) {
  unsigned long long start = 0, end = 0, offset = 0;
  unsigned long inode = 0;
  char perms[5] = {}, dev[16] = {};
  int path_at = 0;
  if (std::sscanf(line.c_str(), "%llx-%llx %4s %llx %15s %lu %n", &start, &end, perms, &offset, dev, &inode, &path_at) <
      6) {
    return std::nullopt;
  }
  const bool named = static_cast<std::size_t>(path_at) < line.size();  // a file, [heap], [stack], ...
  if (named || inode != 0 || perms[0] != 'r' || perms[1] != 'w' || perms[3] != 'p') return std::nullopt;
  return Mapping{start, end};
}

// The run of adjacent private anonymous read-write mappings containing addr
// (mirroring splits a mapping where userfaultfd registration starts and
// ends), from /proc/self/maps; nullopt if addr is in no such mapping.
std::optional<Mapping> anonymous_mapping(std::uint64_t addr) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  std::optional<Mapping> run;
  while (std::getline(maps, line)) {
    const std::optional<Mapping> m = anonymous(line);
    if (run) {
      if (!m || m->start != run->end) break;
      run->end = m->end;
      continue;
    }
    if (m && m->start <= addr && addr < m->end) run = m;
  }
  if (run) return run;
  return std::nullopt;
}

// Maps every page of [s, e) (the shared zero page where none was touched):
// the runtime's GPU fault path needs pages the CPU has seen (README.md,
// "Runtime notes").
void populate(std::uint64_t s, std::uint64_t e) {
  if (madvise(reinterpret_cast<void*>(s), e - s, MADV_POPULATE_READ) != 0) {
    for (std::uint64_t q = s; q < e; q += kPage) (void)*reinterpret_cast<volatile const char*>(q);
  }
}

// True if every page of [s, e) is mapped.
bool mapped(std::uint64_t s, std::uint64_t e) {
  std::vector<unsigned char> v((e - s + kPage - 1) / kPage);
  return mincore(reinterpret_cast<void*>(s), e - s, v.data()) == 0;
}

}  // namespace

std::vector<std::pair<std::uint64_t, std::uint64_t>> accessible_mappings() {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    unsigned long long start = 0, end = 0;
    char perms[5] = {};
    if (std::sscanf(line.c_str(), "%llx-%llx %4s", &start, &end, perms) != 3) continue;
    if (perms[0] != 'r' || perms[1] != 'w') continue;
    if (!out.empty() && out.back().second == start) {
      out.back().second = end;  // adjacent: one run
    } else {
      out.emplace_back(start, end);
    }
  }
  return out;
}

bool accessible(const std::vector<std::pair<std::uint64_t, std::uint64_t>>& maps, std::uint64_t addr, std::size_t n) {
  auto it =
      std::upper_bound(maps.begin(), maps.end(), addr,
                       [](std::uint64_t a, const std::pair<std::uint64_t, std::uint64_t>& m) { return a < m.first; });
  if (it == maps.begin()) return false;
  --it;
  return addr < it->second && n <= it->second - addr;
}

bool system_mapped(std::uint64_t addr, std::size_t n) {
  return accessible(accessible_mappings(), addr, std::max<std::size_t>(n, 1));
}

Device::~Device() {
  std::lock_guard lk(sys_mu_);
  for (const auto& [s, e] : sys_mirrors_) {
    try {
      rt_->unmirror(reinterpret_cast<void*>(s), e - s);  // device-resident bytes come back
    } catch (const Error&) {
      // The application unmapped or moved it: the runtime has let it go.
    }
  }
  if (staging_) {
    try {
      rt_->discard(staging_, kStagingBytes);
    } catch (const Error& e) {
      log(std::string("staging memory: ") + e.what());
    }
    munmap(staging_, kStagingBytes);
  }
}

bool Device::mirror_pages(std::uint64_t s, std::uint64_t e) {
  populate(s, e);
  try {
    rt_->mirror(reinterpret_cast<void*>(s), e - s);
    return true;
  } catch (const Error& err) {
    log("system memory [" + std::to_string(s) + ", " + std::to_string(e) + ") stays plain: " + err.what());
    return false;
  }
}

void Device::mirror_system(std::uint64_t p, std::size_t n) {
  if (!shared_system_ || n == 0) return;
  std::lock_guard lk(sys_mu_);
  // Records overlapping [p, p+n): one whose memory is gone is dropped; the
  // runtime accepts a mirror of one only if it let the memory go (stale),
  // and that one is dropped too.
  auto it = sys_mirrors_.upper_bound(p);
  if (it != sys_mirrors_.begin() && std::prev(it)->second > p) --it;
  while (it != sys_mirrors_.end() && it->first < p + n) {
    const auto [rs, re] = *it;
    if (!mapped(rs, re)) {
      it = sys_mirrors_.erase(it);
      continue;
    }
    bool stale = false;
    try {
      rt_->mirror(reinterpret_cast<void*>(rs), re - rs);
      stale = true;
    } catch (const Error&) {
      // Still mirrored.
    }
    if (stale) {
      // Undone; the gaps below mirror the memory afresh, in one piece with
      // its neighbours where it can.
      rt_->unmirror(reinterpret_cast<void*>(rs), re - rs);
      it = sys_mirrors_.erase(it);
      continue;
    }
    ++it;
  }
  // Only whole pages are mirrored: a range without one needs no look at
  // the process's mappings.
  if (((p + kPage - 1) & ~(kPage - 1)) >= ((p + n) & ~(kPage - 1))) return;
  const std::optional<Mapping> m = anonymous_mapping(p);
  if (!m) return;
  const std::uint64_t s = (p + kPage - 1) & ~(kPage - 1);
  const std::uint64_t e = std::min<std::uint64_t>(p + n, m->end) & ~(kPage - 1);
  // The gaps between the records.
  std::uint64_t at = s;
  while (at < e) {
    auto next = sys_mirrors_.upper_bound(at);
    if (next != sys_mirrors_.begin() && std::prev(next)->second > at) {
      at = std::prev(next)->second;
      continue;
    }
    const std::uint64_t gap_end = next == sys_mirrors_.end() ? e : std::min(e, next->first);
    if (mirror_pages(at, gap_end)) sys_mirrors_[at] = gap_end;
    at = gap_end;
  }
}

std::pair<bool, std::uint64_t> Device::system_run(std::uint64_t addr) const {
  std::lock_guard lk(sys_mu_);
  auto it = sys_mirrors_.upper_bound(addr);
  if (it != sys_mirrors_.begin() && std::prev(it)->second > addr) return {true, std::prev(it)->second};
  return {false, it == sys_mirrors_.end() ? UINT64_MAX : it->first};
}

}  // namespace xesvm::ze
