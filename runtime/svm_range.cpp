// DOC: Overview
//
// Ranges, notifier windows and chunk choice. See svm_range.hpp for the
// model; this file holds the lookups and the chunk-choice rule.
//
// DOC: Data path
//
// A range is the second step of the fault path (fault -> range -> pages ->
// bind): the fault looks it up with find() (one hash probe of the 2 MiB
// block index, one array read) or creates it with choose_chunk() +
// insert(); migration, get-pages and bind then work on its pages, and the
// notifier window of its start guards the bind. Pressure reaches it the
// other way (victims -> lock -> unmap -> copy -> finalize, evict.cpp), by
// owner tag, never through this tree. Invalidation finds the ranges it hits
// with overlapping() (a few pages: the block index, O(1); more: the B-tree,
// O(log n + affected)).
//
// DOC: Chunk choice
//
// For a fault at addr, try 2 MiB, then 64 KiB, then 4 KiB. A size c fits if
// the block [align_down(addr, c), +c) lies inside the mirrored region (so a
// range never covers bytes the CPU does not mirror, e.g. the partial edge
// pages of a malloc'd buffer), inside addr's notifier window (one sequence
// guards a whole range), and overlaps no existing range (ranges never
// overlap and are never split).
//
// DOC: Locking
//
// None here: the SvmManager holds its driver lock around RangeTree calls
// and its notifier lock around NotifierWindows calls.
#include "runtime/svm_range.hpp"

#include <algorithm>

namespace xesvm {

RangePtr RangeTree::find(std::uint64_t addr) const {
  auto b = blocks_.find(block_of(addr));
  if (b == blocks_.end()) return nullptr;
  Range* r = b->second->range_of_page[page_in_block(addr)];
  return r ? r->shared_from_this() : nullptr;
}

std::vector<RangePtr> RangeTree::overlapping(std::uint64_t start, std::uint64_t end) const {
  std::vector<RangePtr> out;
  if (start < end && end - start <= 16 * kPageSize && block_of(start) == block_of(end - 1)) {
    // A few pages inside one 2 MiB block (a CPU fault's invalidation): the
    // block index answers with a hash probe and its page entries, where the
    // B-tree would walk its levels, cold in cache among many ranges.
    auto b = blocks_.find(block_of(start));
    if (b == blocks_.end()) return out;
    const Block& blk = *b->second;
    const Range* last = nullptr;
    for (std::uint64_t a = start & ~std::uint64_t(kPageSize - 1); a < end; a += kPageSize) {
      Range* r = blk.range_of_page[page_in_block(a)];
      if (!r || r == last) continue;
      out.push_back(r->shared_from_this());  // pages ascend, so ranges come in address order
      last = r;
    }
    return out;
  }
  auto it = tree_.upper_bound(start);
  if (it != tree_.begin()) {
    auto prev = std::prev(it);
    if (prev->second->end > start) out.push_back(prev->second);
  }
  for (; it != tree_.end() && it->first < end; ++it) out.push_back(it->second);
  return out;
}

void RangeTree::insert(RangePtr r) {
  BlockPtr& blk = blocks_[block_of(r->start)];
  if (!blk) blk = BlockPtr(std::pmr::polymorphic_allocator<Block>(mem_).new_object<Block>(), BlockDeleter{mem_});
  for (std::uint64_t a = r->start; a < r->end; a += kPageSize) blk->range_of_page[page_in_block(a)] = r.get();
  ++blk->ranges;
  tree_.emplace(r->start, std::move(r));
}

bool RangeTree::erase(const Range& r) {
  auto it = tree_.find(r.start);
  if (it == tree_.end() || it->second.get() != &r) return false;
  auto b = blocks_.find(block_of(r.start));
  Block& blk = *b->second;
  for (std::uint64_t a = r.start; a < r.end; a += kPageSize) blk.range_of_page[page_in_block(a)] = nullptr;
  if (--blk.ranges == 0) blocks_.erase(b);
  tree_.erase(it);  // last: it may hold the last reference to r
  return true;
}

std::vector<RangePtr> RangeTree::all() const {
  std::vector<RangePtr> out;
  out.reserve(tree_.size());
  for (auto& [s, r] : tree_) out.push_back(r);
  return out;
}

std::optional<std::pair<std::uint64_t, std::size_t>> RangeTree::choose_chunk(std::uint64_t addr, std::uint64_t lo,
                                                                             std::uint64_t hi,
                                                                             std::size_t window) const {
  if (addr < lo || addr >= hi) return std::nullopt;
  const std::uint64_t win_lo = addr & ~(std::uint64_t(window) - 1);
  const std::uint64_t win_hi = win_lo + window;
  for (std::size_t c : kChunkSizes) {
    const std::uint64_t s = addr & ~(std::uint64_t(c) - 1);
    const std::uint64_t e = s + c;
    if (s < lo || e > hi || s < win_lo || e > win_hi) continue;
    if (!overlapping(s, e).empty()) continue;
    return std::make_pair(s, c);
  }
  return std::nullopt;
}

NotifierWindows::NotifierWindows(std::size_t window_size) : size_(window_size) {
  if (window_size < (2u << 20) || (window_size & (window_size - 1))) {
    throw Error(Error::Code::kInvalidArgument, "notifier window of " + std::to_string(window_size) +
                                                   " bytes; expected a power of two of at least 2 MiB");
  }
}

std::uint64_t NotifierWindows::seq(std::uint64_t addr) const {
  auto it = seq_.find(window_of(addr));
  return it == seq_.end() ? 0 : it->second;
}

void NotifierWindows::bump(std::uint64_t start, std::uint64_t end) {
  if (end <= start) return;
  for (std::uint64_t w = window_of(start); w < end; w += size_) {
    ++seq_[w];
    if (w + size_ < w) break;  // wrapped at the top of the address space
  }
}

}  // namespace xesvm
