// DOC: Overview
//
// The procfs readers of the sim's CPU side (see process_memory.hpp). One
// pread of /proc/self/pagemap per call of read_present(), one pass over
// /proc/self/maps per call of unmirrorable_reason(): no page-table walk of
// our own, no locks, no state.
#include "runtime/backends/sim/process_memory.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <sstream>

#include "runtime/backend.hpp"

namespace xesvm::sim {

void read_present(std::uint64_t start, std::size_t n, std::vector<bool>& present) {
  present.assign(n, true);
  int fd = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return;  // conservative: treat all as present
  }
  std::vector<std::uint64_t> ent(n);
  ssize_t want = static_cast<ssize_t>(n * sizeof(std::uint64_t));
  ssize_t got = pread(fd, ent.data(), static_cast<std::size_t>(want),
                      static_cast<off_t>((start >> kPageShift) * sizeof(std::uint64_t)));
  ::close(fd);
  if (got != want) {
    return;
  }
  // Present (bit 63) or swapped (bit 62). A swap entry carrying the uffd-wp
  // bit (57) is the marker UFFDIO_WRITEPROTECT leaves on an unpopulated page
  // (UFFD_FEATURE_WP_UNPOPULATED): no data, reads as zeros. Treating it as
  // present made migrate_to_device's process_vm_readv raise a MISSING fault
  // on its own kInbound page, which the service thread defers until the
  // migration ends: a deadlock on every never-touched page a GPU faulted on.
  // (A real page swapped out while write-protected would look the same; the
  // write protection lasts only for the copy, so that is not expected.)
  for (std::size_t i = 0; i < n; ++i) {
    const bool marker = ((ent[i] >> 62) & 1u) && ((ent[i] >> 57) & 1u) && !((ent[i] >> 63) & 1u);
    present[i] = ((ent[i] >> 62) & 3u) && !marker;
  }
}

// A MAP_SHARED mapping (shmem) keeps its pages in the page cache:
// MADV_DONTNEED only drops the PTEs, so a CPU touch would map the old page
// again instead of faulting, and the device's bytes would never reach it.
// File mappings cannot be registered for missing faults at all. One pass
// over /proc/self/maps: no page-table walk, cheap enough for every mirror().
std::string unmirrorable_reason(std::uint64_t start, std::uint64_t len) {
  const std::unique_ptr<FILE, int (*)(FILE*)> maps(std::fopen("/proc/self/maps", "re"), &std::fclose);
  if (!maps) {
    return "";  // no procfs: leave it to UFFDIO_REGISTER
  }
  std::uint64_t covered = start;
  const std::uint64_t end = start + len;
  std::string why;
  char line[4096];
  while (covered < end && std::fgets(line, sizeof line, maps.get())) {
    unsigned long lo = 0, hi = 0;
    char perms[8] = {};
    int path_at = 0;
    if (std::sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &lo, &hi, perms, &path_at) < 3) {
      continue;
    }
    if (hi <= covered) {
      continue;
    }
    if (lo > covered) {
      break;  // a hole at `covered`
    }
    std::string path = path_at > 0 ? std::string(line + path_at) : std::string();
    while (!path.empty() && (path.back() == '\n' || path.back() == ' ')) {
      path.pop_back();
    }
    std::ostringstream at;
    at << std::hex << "0x" << lo << "-0x" << hi;
    if (perms[3] == 's') {
      why = "the mapping at " + at.str() + " is MAP_SHARED" + (path.empty() ? "" : " (" + path + ")") +
            "; the sim device mirrors only private anonymous memory (its pages stay in the page cache, "
            "so device-resident bytes could not reach the CPU)";
      break;
    }
    if (!path.empty() && path != "[heap]" && path != "[stack]" && path.rfind("[anon:", 0) != 0) {
      why = "the mapping at " + at.str() + " maps " + path + "; expected private anonymous memory";
      break;
    }
    covered = hi;
  }
  if (why.empty() && covered < end) {
    std::ostringstream os;
    os << std::hex << "nothing is mapped at 0x" << covered << "; expected the whole region to be mapped";
    why = os.str();
  }
  return why;
}

}  // namespace xesvm::sim
