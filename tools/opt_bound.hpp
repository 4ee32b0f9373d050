// The bound an optimal placement policy reaches on a recorded access sequence.
//
// `xesvm stress` compares its policy's modelled device time with the time an
// optimal policy would need for the same accesses on the same cost model
// (the sim's LinkParams). The sequence is what the stress job hands to the
// engine: per pass one launch over a page order, whose work items the engine
// cuts into one contiguous slice per worker; the workers run concurrently,
// which the bound models as round-robin interleaving of their slices. After
// each pass the CPU touches some pages (each brings its 2 MiB range home if
// it is on the device); at the end the CPU reads every page (everything
// comes home).
//
// Two bounds, the smaller is reported:
//  - Belady (MIN) on the sequence of 2 MiB ranges, device memory as the
//    capacity (the physical limit, not the policy's watermark): every miss
//    costs one GPU fault plus the migration of the range to the device and,
//    later, back (eviction, a CPU touch or the final read); every page access
//    costs its device-memory traffic. MIN minimises misses, so with every
//    miss served by migration this is the least time of any policy that
//    migrates on a miss.
//  - streaming by remote access: as many ranges resident as fit (migrated
//    once, and again after a CPU touch sent one home between passes), every
//    access to the others served over the link page by page (two transfers
//    per page: read and write back), one fault per range to bind it.
// Which is smaller depends on the model and the pattern: with the default
// model (13 GB/s, 1.5 us per transfer, 20 us per fault) a 2 MiB migration
// there and back costs about what 95 remote page accesses cost, so for
// sweeps, which touch every page of a range in a row, Belady is the bound;
// for random access, where a range is met a few pages at a time, the
// resident subset with remote access to the rest is. Neither is a proof of
// optimality for random access (a policy mixing both per range could do
// better); for the sweeps Belady is the cyclic bound (keep what fits, move
// the rest once per pass).
//
// Not modelled (the bound ignores them, so it stays a lower bound of what
// the policy controls): faults of several workers on one range at once, and
// the policy's watermark headroom.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/backends/sim/cost_model.hpp"

namespace xesvm::tools {

struct BoundInput {
  std::uint64_t pages = 0;           ///< pages of the working set (page p is in range p / 512)
  unsigned workers = 1;              ///< engine workers that ran each launch
  std::uint64_t device_bytes = 0;    ///< device memory: the capacity
  sim::LinkParams link;              ///< the cost model's parameters
  std::vector<std::uint64_t> order;  ///< page order of one launch (work item id -> page)
  /// Per pass, the pages the CPU touched after that pass's launch.
  std::vector<std::vector<std::uint64_t>> cpu_touches;
};

struct Bound {
  double belady_s = 0;         ///< MIN with migration on every miss
  double remote_stream_s = 0;  ///< resident subset + remote access to the rest
  double bound_s = 0;          ///< the smaller of the two
  std::uint64_t belady_misses = 0;
  std::string method;  ///< "belady" or "remote-stream"
};

/// Computes both bounds. Throws Error(kInvalidArgument) for an empty working
/// set, zero workers or a device smaller than one range.
Bound optimal_bound(const BoundInput& in);

}  // namespace xesvm::tools
