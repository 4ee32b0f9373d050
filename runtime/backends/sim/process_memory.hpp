// What procfs says about this process's memory: which pages exist
// (/proc/self/pagemap) and which mappings cover a region (/proc/self/maps).
//
// Both functions read procfs afresh on every call and keep no state, so they
// may be called from any thread; the answer is a snapshot that a concurrent
// mapping change can make stale at once (callers that need it to hold keep
// the pages from changing, e.g. by write protection and an inbound entry).
//
// Part of the data path: read_present() is the page-table walk of a snapshot
// and of a migration to the device; unmirrorable_reason() is the check
// mirror() makes before it registers a region with userfaultfd.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace xesvm::sim {

/// Sets present[i] for each page i of [start, start + n*kPageSize): true if
/// the page has data (a CPU page in RAM or in swap), false if it was never
/// touched or was dropped (reads as zeros). The uffd-wp marker that
/// UFFDIO_WRITEPROTECT leaves on an unpopulated page counts as absent.
/// `present` is resized to n. When pagemap cannot be read every page is
/// reported present (the conservative answer: a copy of an absent page reads
/// zeros, a skipped copy of a present one would lose data).
void read_present(std::uint64_t start, std::size_t n, std::vector<bool>& present);

/// Why [start, start+len) cannot be mirrored, or "" if it can: every byte
/// must be mapped (no hole) by private anonymous mappings (heap, stack and
/// named anonymous mappings count). The reason names the offending mapping
/// and what was expected. Without procfs it returns "" and leaves the
/// verdict to UFFDIO_REGISTER.
std::string unmirrorable_reason(std::uint64_t start, std::uint64_t len);

}  // namespace xesvm::sim
