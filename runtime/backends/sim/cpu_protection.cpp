// DOC: Overview
//
// PROCMAP_QUERY: struct procmap_query of include/uapi/linux/fs.h (Linux
// 6.11); Debian 12's headers predate it, so the layout is declared here.
// With PROCMAP_QUERY_COVERING_OR_NEXT_VMA the kernel returns the mapping
// that covers the address or, failing that, the next one; the walk asks
// again at each answer's end until it passes the span. ENOENT: no mapping
// at or above the address. ENOTTY or EINVAL on the first call: the kernel
// does not know the ioctl, and the text is read instead.
#include "runtime/backends/sim/cpu_protection.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>

namespace xesvm::sim {
namespace {

struct ProcmapQuery {
  std::uint64_t size;
  std::uint64_t query_flags;
  std::uint64_t query_addr;
  std::uint64_t vma_start;
  std::uint64_t vma_end;
  std::uint64_t vma_flags;
  std::uint64_t vma_page_size;
  std::uint64_t vma_offset;
  std::uint64_t inode;
  std::uint32_t dev_major;
  std::uint32_t dev_minor;
  std::uint32_t vma_name_size;
  std::uint32_t build_id_size;
  std::uint64_t vma_name_addr;
  std::uint64_t build_id_addr;
};
static_assert(sizeof(ProcmapQuery) == 104, "struct procmap_query is 104 bytes");

constexpr unsigned long kProcmapQuery = _IOWR('f', 17, ProcmapQuery);
constexpr std::uint64_t kVmaReadable = 0x01, kVmaWritable = 0x02, kCoveringOrNext = 0x10;

// 1: supported, 0: not, -1: not asked yet.
std::atomic<int> query_supported{-1};
std::atomic<ProtectionSource> default_source{ProtectionSource::kAuto};

// False if the kernel does not know the ioctl (out is then untouched).
bool query(std::uint64_t start, std::uint64_t end, std::vector<CpuProtection>& out) {
  const int fd = ::open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  std::vector<CpuProtection> got;
  bool ok = true;
  for (std::uint64_t a = start; a < end;) {
    ProcmapQuery q{};
    q.size = sizeof q;
    q.query_flags = kCoveringOrNext;
    q.query_addr = a;
    if (::ioctl(fd, kProcmapQuery, &q) != 0) {
      if (errno == ENOENT) break;  // nothing mapped at or above a
      ok = false;
      break;
    }
    if (q.vma_start >= end) break;
    got.push_back({std::max(q.vma_start, start), std::min(q.vma_end, end), (q.vma_flags & kVmaReadable) != 0,
                   (q.vma_flags & kVmaWritable) != 0});
    a = q.vma_end;
  }
  ::close(fd);
  if (!ok) return false;
  out = std::move(got);
  return true;
}

std::vector<CpuProtection> read_text(std::uint64_t start, std::uint64_t end) {
  std::vector<CpuProtection> out;
  FILE* f = std::fopen("/proc/self/maps", "re");
  if (!f) return {CpuProtection{start, end, true, true}};
  char line[4096];
  while (std::fgets(line, sizeof line, f)) {
    unsigned long lo = 0, hi = 0;
    char perms[8] = {};
    if (std::sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) < 3) continue;
    if (hi <= start) continue;
    if (lo >= end) break;
    out.push_back(
        {std::max<std::uint64_t>(lo, start), std::min<std::uint64_t>(hi, end), perms[0] == 'r', perms[1] == 'w'});
  }
  std::fclose(f);
  return out;
}

}  // namespace

bool procmap_query_supported() {
  int s = query_supported.load(std::memory_order_relaxed);
  if (s < 0) {
    std::vector<CpuProtection> unused;
    // Any address: the answer only says whether the ioctl exists.
    s = query(0, 1, unused) ? 1 : 0;
    query_supported.store(s, std::memory_order_relaxed);
  }
  return s == 1;
}

void set_default_protection_source(ProtectionSource source) { default_source.store(source); }

std::vector<CpuProtection> read_cpu_protection(std::uint64_t start, std::uint64_t end, ProtectionSource source) {
  if (source == ProtectionSource::kAuto) source = default_source.load(std::memory_order_relaxed);
  if (source == ProtectionSource::kMapsText) return read_text(start, end);
  std::vector<CpuProtection> out;
  if (source == ProtectionSource::kProcmapQuery) {
    if (!query(start, end, out)) out.clear();
    return out;
  }
  if (procmap_query_supported() && query(start, end, out)) return out;
  return read_text(start, end);
}

}  // namespace xesvm::sim
