// The CPU mapping's protection, as the kernel has it now.
//
// mprotect() raises no userfaultfd event, so the sim asks for the
// protection of a span whenever it needs it (every GPU fault and bind, and
// before every launch) instead of tracking it. Two sources answer:
//   * PROCMAP_QUERY (Linux 6.11 and later): one ioctl on /proc/self/maps
//     per mapping overlapping the span, a binary answer, cost independent
//     of how many mappings the process has;
//   * the text of /proc/self/maps, read up to the span: the fallback for
//     older kernels, whose cost grows with the number of mappings below the
//     span.
// Both give the same answer (tests/sim/cpu_protection_test.cpp).
//
// Concurrency: thread-safe; every call opens its own descriptor, so a
// forked child asks about its own mappings.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/backend.hpp"

namespace xesvm::sim {

enum class ProtectionSource : std::uint8_t {
  kAuto,          ///< PROCMAP_QUERY where the kernel has it, else the text
  kProcmapQuery,  ///< PROCMAP_QUERY only (an empty answer if unsupported)
  kMapsText,      ///< the text of /proc/self/maps only
};

/// The protection of every mapping overlapping [start, end), clipped to it,
/// in address order; unmapped parts have no entry. REQUIRES: start < end.
/// Without procfs the whole span is reported read-write (nothing is known).
std::vector<CpuProtection> read_cpu_protection(std::uint64_t start, std::uint64_t end,
                                               ProtectionSource source = ProtectionSource::kAuto);

/// Whether this kernel answers PROCMAP_QUERY on /proc/self/maps.
bool procmap_query_supported();

/// Process-wide source of read_cpu_protection(kAuto), for benchmarks that
/// compare the two: kAuto (the default) or one of the two sources.
void set_default_protection_source(ProtectionSource source);

}  // namespace xesvm::sim
