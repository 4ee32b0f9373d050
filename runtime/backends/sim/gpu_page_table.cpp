#include "runtime/backends/sim/gpu_page_table.hpp"

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

namespace xesvm::sim {
namespace {

std::string hex(std::uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

Error invalid(const std::string& what) { return Error(Error::Code::kInvalidArgument, what); }

}  // namespace

const Pte GpuPageTable::kEmptyPte{};

const Pte& GpuPageTable::find(std::uint64_t addr) const {
  auto it = dirs_.find(addr >> kDirShift);
  if (it == dirs_.end()) return kEmptyPte;
  return it->second->ptes[(addr >> kPageShift) & (kPtesPerDir - 1)];
}

void GpuPageTable::clear_pte(std::uint64_t page_addr) {
  auto it = dirs_.find(page_addr >> kDirShift);
  if (it == dirs_.end()) return;
  Pte& pte = it->second->ptes[(page_addr >> kPageShift) & (kPtesPerDir - 1)];
  if (pte.kind == Pte::Kind::kNone) return;
  if (pte.kind == Pte::Kind::kDevice) {
    auto r = frame_va_.find(pte.frame);
    if (r != frame_va_.end() && r->second == page_addr) frame_va_.erase(r);
  }
  pte = Pte{};
  const std::size_t i = (page_addr >> kPageShift) & (kPtesPerDir - 1);
  it->second->accessed[i / 64].fetch_and(~(std::uint64_t{1} << (i % 64)), std::memory_order_relaxed);
  --mapped_;
  if (--it->second->used == 0) dirs_.erase(it);
}

bool GpuPageTable::bind_unless(std::uint64_t start, std::span<const PageSnapshot> pages, bool (*refuse)(const void*),
                               const void* ctx) {
  if (start % kPageSize != 0) {
    throw invalid("GpuPageTable::bind: start " + hex(start) + " is not page aligned");
  }
  const std::uint64_t n = pages.size();
  if (n > (~std::uint64_t{0} - start) / kPageSize) {
    throw invalid("GpuPageTable::bind: " + std::to_string(n) + " pages at " + hex(start) +
                  " wrap around the address space");
  }
  std::vector<FrameId> frames;
  for (std::size_t i = 0; i < pages.size(); ++i) {
    if (pages[i].place != PagePlace::kDevice) continue;
    if (pages[i].frame == kNoFrame) {
      throw invalid("GpuPageTable::bind: device page " + hex(start + i * kPageSize) +
                    " has no frame; expected a frame id");
    }
    frames.push_back(pages[i].frame);
  }
  std::sort(frames.begin(), frames.end());
  if (auto d = std::adjacent_find(frames.begin(), frames.end()); d != frames.end()) {
    throw invalid("GpuPageTable::bind: frame " + std::to_string(*d) +
                  " is bound at two addresses; expected each frame once");
  }

  std::unique_lock lk(mu_);
  if (refuse && refuse(ctx)) return false;
  bool invalidated = false;
  for (std::size_t i = 0; i < pages.size(); ++i) {
    const std::uint64_t va = start + i * kPageSize;
    Pte next;
    next.writable = pages[i].writable;
    if (pages[i].place == PagePlace::kDevice) {
      next.kind = Pte::Kind::kDevice;
      next.frame = pages[i].frame;
    } else {
      next.kind = Pte::Kind::kSystem;
    }
    const Pte& cur = find(va);
    if (cur.kind == next.kind && cur.writable == next.writable && cur.frame == next.frame) continue;
    if (cur.kind != Pte::Kind::kNone) {
      invalidated = true;
      clear_pte(va);
    }
    if (next.kind == Pte::Kind::kDevice) {
      if (auto r = frame_va_.find(next.frame); r != frame_va_.end()) {
        clear_pte(r->second);  // the frame moves to va
        invalidated = true;
      }
      frame_va_[next.frame] = va;
    }
    auto& dir = dirs_[va >> kDirShift];
    if (!dir) dir = std::make_unique<Dir>();
    dir->ptes[(va >> kPageShift) & (kPtesPerDir - 1)] = next;
    ++dir->used;
    ++mapped_;
  }
  if (invalidated) bump();
  return true;
}

void GpuPageTable::unbind(std::uint64_t start, std::uint64_t end) {
  if (start % kPageSize != 0 || end % kPageSize != 0 || start > end) {
    throw invalid("GpuPageTable::unbind: range [" + hex(start) + ", " + hex(end) +
                  ") is invalid; expected page-aligned start <= end");
  }
  std::unique_lock lk(mu_);
  if (start == end) return;
  auto it = dirs_.lower_bound(start >> kDirShift);
  while (it != dirs_.end() && (it->first << kDirShift) < end) {
    const std::uint64_t dir_va = it->first << kDirShift;
    Dir& dir = *it->second;
    ++it;  // clear_pte may erase the current Dir
    const std::uint64_t lo = std::max(start, dir_va);
    const std::uint64_t hi = std::min(end - 1, dir_va + (kPtesPerDir * kPageSize - 1));
    for (std::uint64_t va = lo; va <= hi && dir.used != 0; va += kPageSize) {
      const bool last = dir.used == 1 && dir.ptes[(va >> kPageShift) & (kPtesPerDir - 1)].kind != Pte::Kind::kNone;
      clear_pte(va);
      if (last) break;  // the Dir is gone
      if (va + kPageSize < va) break;
    }
  }
  bump();
}

void GpuPageTable::zap_frames(std::span<const FrameId> frames) {
  std::unique_lock lk(mu_);
  for (FrameId f : frames) {
    auto r = frame_va_.find(f);
    if (r != frame_va_.end()) clear_pte(r->second);
  }
  bump();
}

bool GpuPageTable::test_and_clear_accessed(std::uint64_t start, std::uint64_t end) {
  if (start >= end) return false;
  std::shared_lock lk(mu_);
  bool any = false;
  for (auto it = dirs_.lower_bound(start >> kDirShift); it != dirs_.end() && (it->first << kDirShift) < end; ++it) {
    const std::uint64_t dir_va = it->first << kDirShift;
    const std::size_t lo = start > dir_va ? (start - dir_va) >> kPageShift : 0;
    const std::size_t hi = std::min<std::uint64_t>(kPtesPerDir, ((end - dir_va) + kPageSize - 1) >> kPageShift);
    for (std::size_t w = lo / 64; w * 64 < hi; ++w) {
      std::uint64_t mask = ~std::uint64_t{0};
      if (w * 64 < lo) mask &= ~std::uint64_t{0} << (lo - w * 64);
      if (hi < (w + 1) * 64) mask &= ~std::uint64_t{0} >> ((w + 1) * 64 - hi);
      std::atomic<std::uint64_t>& word = it->second->accessed[w];
      if (!(word.load(std::memory_order_relaxed) & mask)) continue;
      any |= (word.fetch_and(~mask, std::memory_order_relaxed) & mask) != 0;
    }
  }
  return any;
}

Pte GpuPageTable::lookup(std::uint64_t addr) const {
  std::shared_lock lk(mu_);
  return find(addr);
}

std::size_t GpuPageTable::mapped_pages() const {
  std::shared_lock lk(mu_);
  return mapped_;
}

std::optional<std::uint64_t> GpuPageTable::address_of(FrameId frame) const {
  std::shared_lock lk(mu_);
  auto r = frame_va_.find(frame);
  if (r == frame_va_.end()) return std::nullopt;
  return r->second;
}

}  // namespace xesvm::sim
