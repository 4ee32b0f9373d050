// DOC: Overview
//
// The table of device-private entries (see device_entries.hpp). Each method
// is one critical section under mu_; none makes a system call or waits. The
// reverse map is a plain vector indexed by frame, sized to the pool once.
#include "runtime/backends/sim/device_entries.hpp"

#include <algorithm>
#include <sstream>

#include "runtime/backends/sim/frame_pool.hpp"

namespace xesvm::sim {

DeviceEntries::DeviceEntries(FramePool& pool) : pool_(pool), page_of_(pool.frame_count(), 0) {}

std::optional<DeviceEntries::Entry> DeviceEntries::lookup(std::uint64_t page) const {
  std::lock_guard lk(mu_);
  auto it = by_page_.find(page);
  if (it == by_page_.end()) {
    return std::nullopt;
  }
  return it->second;
}

std::uint64_t DeviceEntries::frame_address(FrameId frame) const {
  std::lock_guard lk(mu_);
  return page_of_[frame];
}

bool DeviceEntries::fill_snapshot(std::uint64_t start, std::span<PageSnapshot> out, const std::vector<bool>* present,
                                  std::optional<std::uint64_t> unless_placed_since) {
  std::lock_guard lk(mu_);
  if (unless_placed_since && placements_.load() != *unless_placed_since) {
    return false;
  }
  for (std::size_t i = 0; i < out.size(); ++i) {
    auto it = by_page_.find(start + i * kPageSize);
    if (it != by_page_.end() && it->second.state != State::kEvicting) {
      out[i] = {PagePlace::kDevice, true, it->second.frame};
    } else if (it != by_page_.end() || !present || (*present)[i]) {
      // Being moved to RAM (the migration entry): its frame is about to be
      // freed, so a GPU binding must not point at it. Report the CPU page;
      // an access through it waits for the placement, like hmm_range_fault
      // waiting on a migration entry.
      out[i] = {PagePlace::kSystem, true, kNoFrame};
    } else {
      out[i] = {PagePlace::kAbsent, true, kNoFrame};
    }
  }
  return true;
}

bool DeviceEntries::snapshot_all_device(std::uint64_t start, std::span<PageSnapshot> out) const {
  std::lock_guard lk(mu_);
  for (std::size_t i = 0; i < out.size(); ++i) {
    auto it = by_page_.find(start + i * kPageSize);
    if (it == by_page_.end() || it->second.state == State::kEvicting) {
      return false;
    }
    out[i] = {PagePlace::kDevice, true, it->second.frame};
  }
  return true;
}

std::vector<bool> DeviceEntries::begin_inbound(std::span<const std::uint64_t> addrs, std::span<FrameId> frames) {
  std::vector<bool> ok(addrs.size(), false);
  std::lock_guard lk(mu_);
  for (std::size_t i = 0; i < addrs.size(); ++i) {
    if (frames[i] == kNoFrame || by_page_.count(addrs[i])) {
      frames[i] = kNoFrame;
      continue;
    }
    by_page_[addrs[i]] = Entry{frames[i], State::kInbound};
    page_of_[frames[i]] = addrs[i];
    ok[i] = true;
  }
  return ok;
}

std::size_t DeviceEntries::finish_inbound(std::span<const std::uint64_t> addrs, std::span<FrameId> frames,
                                          const std::vector<bool>& ok) {
  std::size_t moved = 0;
  std::lock_guard lk(mu_);
  for (std::size_t i = 0; i < addrs.size(); ++i) {
    if (frames[i] == kNoFrame) {
      continue;
    }
    auto it = by_page_.find(addrs[i]);
    // The entry is gone if the application discarded or unmapped the page
    // meanwhile (its event was applied): then the frame is not used.
    if (ok[i] && it != by_page_.end() && it->second.frame == frames[i]) {
      it->second.state = State::kResident;
      ++moved;
    } else {
      if (it != by_page_.end() && it->second.frame == frames[i]) {
        by_page_.erase(it);
      }
      page_of_[frames[i]] = 0;
      frames[i] = kNoFrame;
    }
  }
  return moved;
}

void DeviceEntries::mark_evicting(std::span<const FrameId> frames) {
  std::lock_guard lk(mu_);
  for (FrameId f : frames) {
    const std::uint64_t a = page_of_[f];
    if (!a) {
      continue;
    }
    auto it = by_page_.find(a);
    if (it != by_page_.end()) {
      it->second.state = State::kEvicting;
    }
  }
}

bool DeviceEntries::all_evicting(std::uint64_t addr, std::span<const FrameId> frames) const {
  std::lock_guard lk(mu_);
  for (std::size_t i = 0; i < frames.size(); ++i) {
    auto it = by_page_.find(addr + i * kPageSize);
    if (frames[i] == kNoFrame || it == by_page_.end() || it->second.frame != frames[i] ||
        it->second.state != State::kEvicting) {
      return false;
    }
  }
  return true;
}

void DeviceEntries::finalize(std::span<const FrameId> frames, std::span<const std::uint8_t> committed) {
  std::lock_guard lk(mu_);
  for (std::size_t i = 0; i < frames.size(); ++i) {
    const FrameId f = frames[i];
    const std::uint64_t a = page_of_[f];
    if (committed[i]) {
      if (a && by_page_.erase(a)) {
        placements_.fetch_add(1);
      }
      page_of_[f] = 0;
    } else if (a) {
      auto it = by_page_.find(a);
      if (it != by_page_.end()) {
        it->second.state = State::kResident;
      }
    }
  }
}

DeviceEntries::Run DeviceEntries::claim_run(std::uint64_t page) {
  Run run;
  std::lock_guard lk(mu_);
  auto it = by_page_.find(page);
  if (it == by_page_.end()) {
    return run;  // kNoEntry
  }
  const Entry e = it->second;
  run.outcome = Run::Outcome::kBusy;
  if (e.state != State::kResident) {
    return run;  // migrating: wait
  }
  if (!pool_.trylock(e.frame)) {
    return run;  // busy frame: defer
  }
  it->second.state = State::kEvicting;
  const OwnerId owner = pool_.owner(e.frame);
  const std::uint64_t block = page & ~std::uint64_t(kChunkSizes[0] - 1);
  auto join = [&](std::uint64_t a) {
    auto j = by_page_.find(a);
    if (j == by_page_.end() || j->second.state != State::kResident) {
      return false;
    }
    const FrameId f = j->second.frame;
    if (pool_.owner(f) != owner || !pool_.trylock(f)) {
      return false;
    }
    if (pool_.owner(f) != owner) {  // freed and reused before the lock: not ours
      pool_.unlock(f);
      return false;
    }
    j->second.state = State::kEvicting;
    return true;
  };
  std::uint64_t lo = page, hi = page + kPageSize;
  while (lo > block && join(lo - kPageSize)) {
    lo -= kPageSize;
  }
  while (hi < block + kChunkSizes[0] && join(hi)) {
    hi += kPageSize;
  }
  run.outcome = Run::Outcome::kClaimed;
  run.lo = lo;
  run.hi = hi;
  run.frames.reserve((hi - lo) / kPageSize);
  for (std::uint64_t a = lo; a < hi; a += kPageSize) {
    run.frames.push_back(by_page_.find(a)->second.frame);
  }
  return run;
}

std::vector<FrameId> DeviceEntries::release_run(const Run& run, std::span<const std::uint8_t> placed) {
  std::vector<FrameId> freed;
  std::lock_guard lk(mu_);
  for (std::size_t k = 0; k < run.frames.size(); ++k) {
    const std::uint64_t a = run.lo + k * kPageSize;
    auto it = by_page_.find(a);
    const bool ours = it != by_page_.end() && it->second.frame == run.frames[k];
    if (!placed[k]) {
      if (ours) {
        it->second.state = State::kResident;
      }
      continue;
    }
    if (ours) {
      by_page_.erase(it);
      placements_.fetch_add(1);
    }
    page_of_[run.frames[k]] = 0;
    freed.push_back(run.frames[k]);
  }
  return freed;
}

void DeviceEntries::drop(std::uint64_t start, std::uint64_t end) {
  std::lock_guard lk(mu_);
  for (std::uint64_t a = start; a < end; a += kPageSize) {
    auto it = by_page_.find(a);
    if (it == by_page_.end()) {
      continue;
    }
    page_of_[it->second.frame] = 0;  // the data is no longer wanted anywhere
    by_page_.erase(it);
  }
}

void DeviceEntries::move(std::uint64_t from, std::uint64_t to, std::uint64_t len) {
  std::lock_guard lk(mu_);
  std::vector<std::pair<std::uint64_t, Entry>> moved;
  for (std::uint64_t off = 0; off < len; off += kPageSize) {
    auto it = by_page_.find(from + off);
    if (it == by_page_.end()) {
      continue;
    }
    moved.emplace_back(to + off, it->second);
    by_page_.erase(it);
  }
  for (auto& [a, e] : moved) {
    by_page_[a] = e;
    page_of_[e.frame] = a;
  }
}

std::string DeviceEntries::check() const {
  std::ostringstream bad;
  std::lock_guard lk(mu_);
  std::size_t named = 0;
  for (const auto& [page, e] : by_page_) {
    if (e.frame >= page_of_.size()) {
      bad << std::hex << "entry 0x" << page << " names frame " << std::dec << e.frame << ", past the pool\n";
      continue;
    }
    if (page_of_[e.frame] != page) {
      bad << std::hex << "entry 0x" << page << " names frame " << std::dec << e.frame << ", whose page is 0x"
          << std::hex << page_of_[e.frame] << "\n";
    }
    if (pool_.owner(e.frame) == kNoOwner) {
      bad << std::hex << "entry 0x" << page << " names frame " << std::dec << e.frame << ", which is free\n";
    }
  }
  for (FrameId f = 0; f < page_of_.size(); ++f) {
    if (!page_of_[f]) {
      continue;
    }
    ++named;
    auto it = by_page_.find(page_of_[f]);
    if (it == by_page_.end() || it->second.frame != f) {
      bad << "frame " << f << " says page 0x" << std::hex << page_of_[f] << ", whose entry "
          << (it == by_page_.end() ? std::string("does not exist") : "names frame " + std::to_string(it->second.frame))
          << "\n";
    }
  }
  if (named != by_page_.size() && bad.tellp() == 0) {
    bad << by_page_.size() << " entries but " << named << " frames with a page\n";
  }
  return bad.str();
}

std::vector<std::pair<std::uint64_t, DeviceEntries::Entry>> DeviceEntries::entries() const {
  std::vector<std::pair<std::uint64_t, Entry>> out;
  {
    std::lock_guard lk(mu_);
    out.assign(by_page_.begin(), by_page_.end());
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

void DeviceEntries::corrupt_frame_address_for_test(FrameId frame, std::uint64_t page) {
  std::lock_guard lk(mu_);
  page_of_[frame] = page;
}

}  // namespace xesvm::sim
