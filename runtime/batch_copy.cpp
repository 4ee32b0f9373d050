// DOC: Overview
//
// Plan: sort the pages by destination, start a run at each page, extend it
// while the next page's destination and source both follow on, and cut it at
// batch_bytes. Copy: serially below serial_threshold, else one TBB task per
// run inside a bounded arena. Failed runs fall back to single pages at their
// current addresses, a bounded number of times.
#include "runtime/batch_copy.hpp"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <exception>
#include <mutex>
#include <numeric>
#include <thread>

namespace xesvm {

BatchCopier::BatchCopier(BatchCopyOptions options)
    : options_(options), arena_(static_cast<int>(std::max(1u, options.workers))) {
  if (options_.batch_bytes < kPageSize) options_.batch_bytes = kPageSize;
}

void BatchCopier::for_each(std::size_t n, const std::function<void(std::size_t)>& fn) {
  if (n == 0) return;
#if defined(__SANITIZE_THREAD__)
  // libtbb is not built with TSan: its task internals (stealing, range
  // splitting) are reported as races in every parallel copy. Under TSan the
  // same items go to plain threads, so the code they run stays checked.
  std::atomic<std::size_t> next{0};
  std::exception_ptr first_error;
  std::mutex error_mu;
  std::vector<std::thread> ts;
  for (unsigned w = 0; w < std::max(1u, options_.workers); ++w) {
    ts.emplace_back([&] {
      try {
        for (std::size_t i; (i = next.fetch_add(1)) < n;) fn(i);
      } catch (...) {
        std::lock_guard lk(error_mu);
        if (!first_error) first_error = std::current_exception();
        next.store(n);
      }
    });
  }
  for (auto& t : ts) t.join();
  if (first_error) std::rethrow_exception(first_error);
#else
  arena_.execute([&] {
    tbb::parallel_for(tbb::blocked_range<std::size_t>(0, n, 1), [&](const tbb::blocked_range<std::size_t>& br) {
      for (std::size_t i = br.begin(); i != br.end(); ++i) fn(i);
    });
  });
#endif
}

std::vector<CopyRun> BatchCopier::plan(std::span<const CopyPage> pages) const {
  std::vector<std::size_t> order;
  order.reserve(pages.size());
  for (std::size_t i = 0; i < pages.size(); ++i) {
    if (pages[i].dst) order.push_back(i);
  }
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return pages[a].dst < pages[b].dst; });
  std::vector<CopyRun> runs;
  for (std::size_t k = 0; k < order.size();) {
    const CopyPage& p = pages[order[k]];
    CopyRun run{p.dst, p.src, kPageSize, order[k]};
    std::size_t j = k + 1;
    // Runs need consecutive page indices so the caller's per-page result maps
    // back; eviction lists pages in frame order, so contiguous frames are
    // consecutive indices.
    while (options_.coalesce && j < order.size() && run.len < options_.batch_bytes) {
      const CopyPage& q = pages[order[j]];
      if (order[j] != order[j - 1] + 1 || q.dst != run.dst + run.len || q.src != run.src + run.len) break;
      run.len += kPageSize;
      ++j;
    }
    runs.push_back(run);
    k = j;
  }
  return runs;
}

void BatchCopier::copy(std::span<const CopyPage> pages, CopyEngine& engine, std::span<std::uint8_t> done) {
  for (std::size_t i = 0; i < pages.size(); ++i) done[i] = pages[i].dst == 0;
  std::vector<CopyRun> runs = plan(pages);
  std::vector<CopyStatus> st(runs.size());
  const std::size_t total = std::accumulate(runs.begin(), runs.end(), std::size_t{0},
                                            [](std::size_t s, const CopyRun& r) { return s + r.len; });
  auto one = [&](std::size_t r) { st[r] = engine.copy(runs[r]); };
  if (total < options_.serial_threshold || options_.workers <= 1 || runs.size() == 1) {
    for (std::size_t r = 0; r < runs.size(); ++r) one(r);
  } else {
    for_each(runs.size(), one);
  }
  for (std::size_t r = 0; r < runs.size(); ++r) {
    const std::size_t n = runs[r].len / kPageSize;
    // The pages copied before a failure are in place: copying them again
    // would fail (the page exists) and leave them on the device too.
    const std::size_t copied = st[r].error == 0 ? n : std::min(n, st[r].bytes / kPageSize);
    for (std::size_t k = 0; k < copied; ++k) done[runs[r].first + k] = 1;
    // The rest page by page, at the address each page's bytes belong to now.
    for (std::size_t k = copied; k < n; ++k) {
      const std::size_t idx = runs[r].first + k;
      for (int attempt = 0; attempt < 4; ++attempt) {
        std::uint64_t dst = engine.current_address(idx);
        if (dst == 0) {
          done[idx] = 1;  // the mapping is gone: the bytes are not needed
          break;
        }
        const int e = engine.copy(CopyRun{dst, pages[idx].src, kPageSize, idx}).error;
        if (e == 0) {
          done[idx] = 1;
          break;
        }
        if (e != EAGAIN && e != ENOENT) break;  // a real failure: stays on the device
      }
    }
  }
}

}  // namespace xesvm
