// DOC: Overview
//
// Ranges, notifier windows and chunk choice. See svm_range.hpp for the
// model; this file holds the lookups and the chunk-choice rule.
//
// DOC: Data path
//
// A range is the second step of the fault path (fault -> range -> pages ->
// bind): the fault looks it up with find() (one hash probe of the 2 MiB
// block index, two array reads) or creates it with choose_chunk() +
// insert(); migration, get-pages and bind then work on its pages, and the
// notifier window of its start guards the bind. Pressure reaches it the
// other way (victims -> lock -> unmap -> copy -> finalize, evict.cpp), by
// owner tag, never through this tree. Invalidation finds the ranges it hits
// with overlapping() (B-tree, O(log n + affected)).
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
  const std::uint16_t slot = b->second->slot_of_page[page_in_block(addr)];
  return slot == kNoSlot ? nullptr : b->second->ranges[slot];
}

std::vector<RangePtr> RangeTree::overlapping(std::uint64_t start, std::uint64_t end) const {
  std::vector<RangePtr> out;
  if (start < end && end - start <= 16 * kPageSize && block_of(start) == block_of(end - 1)) {
    // A few pages inside one 2 MiB block (a CPU fault's invalidation): the
    // block index answers with a hash probe and its page slots, where the
    // B-tree would walk its levels, cold in cache among many ranges.
    auto b = blocks_.find(block_of(start));
    if (b == blocks_.end()) return out;
    const Block& blk = *b->second;
    std::uint16_t last = kNoSlot;
    for (std::uint64_t a = start & ~std::uint64_t(kPageSize - 1); a < end; a += kPageSize) {
      const std::uint16_t slot = blk.slot_of_page[page_in_block(a)];
      if (slot == kNoSlot || slot == last) continue;
      out.push_back(blk.ranges[slot]);  // pages ascend, so ranges come in address order
      last = slot;
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
  std::unique_ptr<Block>& blk = blocks_[block_of(r->start)];
  if (!blk) blk = std::make_unique<Block>();
  const auto slot = static_cast<std::uint16_t>(blk->ranges.size());
  for (std::uint64_t a = r->start; a < r->end; a += kPageSize) blk->slot_of_page[page_in_block(a)] = slot;
  blk->ranges.push_back(r);
  tree_.emplace(r->start, std::move(r));
}

bool RangeTree::erase(const Range& r) {
  auto it = tree_.find(r.start);
  if (it == tree_.end() || it->second.get() != &r) return false;
  tree_.erase(it);
  auto b = blocks_.find(block_of(r.start));
  Block& blk = *b->second;
  const std::uint16_t slot = blk.slot_of_page[page_in_block(r.start)];
  for (std::uint64_t a = r.start; a < r.end; a += kPageSize) blk.slot_of_page[page_in_block(a)] = kNoSlot;
  // Move the last range into the freed slot.
  const std::uint16_t last = static_cast<std::uint16_t>(blk.ranges.size() - 1);
  if (slot != last) {
    const RangePtr& moved = blk.ranges[last];
    for (std::uint64_t a = moved->start; a < moved->end; a += kPageSize) blk.slot_of_page[page_in_block(a)] = slot;
    blk.ranges[slot] = moved;
  }
  blk.ranges.pop_back();
  if (blk.ranges.empty()) blocks_.erase(b);
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
