// The parallel pfn batch copy of eviction.
//
// Eviction hands over locked, unmapped device frames together with the CPU
// address each frame's data belongs to. BatchCopier coalesces them into runs
// (frames whose bytes are contiguous in device memory *and* whose
// destinations are contiguous), cuts runs into batches of at most
// batch_bytes, and runs the batches on a bounded TBB arena of `workers`
// threads; a total below serial_threshold stays on the calling thread, where
// task overhead would cost more than it gains.
//
// The bytes are moved by a CopyEngine, the interface a hardware copy engine
// (the Xe blitter) implements too: copy one run, report how far it got and
// the errno that stopped it. The rest of a run that fails is retried page by
// page, each page at the address its frame's data belongs to *now* (an
// mremap may have moved it meanwhile); the pages already copied are done.
//
// Concurrency: a BatchCopier may be used by several threads at once; its
// arena bounds the total copy parallelism. CopyEngine::copy must be
// thread-safe.
#pragma once

#include <tbb/task_arena.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "runtime/backend.hpp"

namespace xesvm {

/// One contiguous piece of a copy: len bytes from src to CPU address dst.
struct CopyRun {
  std::uint64_t dst = 0;
  const std::byte* src = nullptr;
  std::size_t len = 0;
  std::size_t first = 0;  ///< index of its first page in the caller's page list
};

/// Moves bytes of one run. Implementations: the sim's placement
/// (UFFDIO_COPY), a hardware blitter.
class CopyEngine {
 public:
  virtual ~CopyEngine() = default;
  /// Returns the bytes copied from the run's start (whole pages) and, if
  /// not all, the errno that stopped the copy. Must be thread-safe.
  virtual CopyStatus copy(const CopyRun& run) = 0;
  /// Where page `index`'s bytes belong now (after a failed run), 0 if they
  /// are no longer needed anywhere.
  virtual std::uint64_t current_address(std::size_t index) = 0;
};

/// One page to copy: its source bytes and its destination.
struct CopyPage {
  const std::byte* src;
  std::uint64_t dst;  ///< 0: no destination (mapping gone): nothing to copy
};

struct BatchCopyOptions {
  unsigned workers = 2;
  std::size_t serial_threshold = 64u << 10;  ///< below: copy serially (bench/README.md sweep)
  std::size_t batch_bytes = 2u << 20;        ///< upper bound of one batch
  bool coalesce = true;                      ///< false: page by page (baseline)
};

class BatchCopier {
 public:
  explicit BatchCopier(BatchCopyOptions options);
  BatchCopier(const BatchCopier&) = delete;
  BatchCopier& operator=(const BatchCopier&) = delete;

  /// Plans the runs of `pages` (in any order; sorted by destination inside).
  /// Pages without a destination are not part of any run.
  std::vector<CopyRun> plan(std::span<const CopyPage> pages) const;

  /// Copies every page; done[i] becomes 1 for pages whose bytes are in
  /// place or no longer needed, 0 for pages that failed (they stay on the
  /// device and are retried by a later eviction).
  void copy(std::span<const CopyPage> pages, CopyEngine& engine, std::span<std::uint8_t> done);

  /// Runs fn(0) .. fn(n-1) on the copier's workers (the bounded arena), in
  /// any order and possibly at once, and returns when all have returned.
  /// The first exception fn throws is rethrown here (under TSan, the rest
  /// of the items are then skipped). fn may itself call copy().
  /// REQUIRES: fn never waits for a lock that a thread may hold while it
  /// waits to copy here (a range's migrate_mu): the workers are bounded, so
  /// items blocked that way would stop every copy, theirs included. Trylock
  /// and do busy items after for_each returns.
  void for_each(std::size_t n, const std::function<void(std::size_t)>& fn);

  const BatchCopyOptions& options() const { return options_; }

 private:
  BatchCopyOptions options_;
  tbb::task_arena arena_;
};

}  // namespace xesvm
