#include "runtime/backends/sim/frame_pool.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

namespace xesvm::sim {
namespace {

constexpr std::size_t kFramesPerGroup = (64u << 10) / kPageSize;   // 16
constexpr std::size_t kGroupsPerBlock = (2u << 20) / (64u << 10);  // 32
constexpr std::size_t kFramesPerBlock = (2u << 20) / kPageSize;    // 512
constexpr std::size_t kOrderFrames[3] = {1, kFramesPerGroup, kFramesPerBlock};

Error invalid(const std::string& what) { return Error(Error::Code::kInvalidArgument, what); }

}  // namespace

FramePool::Mapping::~Mapping() {
  if (base != nullptr) ::munmap(base, bytes);
}

FramePool::FramePool(std::size_t bytes) {
  if (bytes == 0 || bytes % (2u << 20) != 0) {
    throw invalid("FramePool: device memory size " + std::to_string(bytes) +
                  " bytes is invalid; expected a non-zero multiple of 2 MiB");
  }
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    throw Error(Error::Code::kOutOfMemory,
                "FramePool: cannot map " + std::to_string(bytes) + " bytes of device memory: " + std::strerror(errno));
  }
  map_.base = static_cast<std::byte*>(p);
  map_.bytes = bytes;
  frame_count_ = bytes / kPageSize;
  owners_ = std::make_unique<std::atomic<OwnerId>[]>(frame_count_);
  locks_ = std::make_unique<std::atomic<bool>[]>(frame_count_);
  for (std::size_t i = 0; i < frame_count_; ++i) {
    owners_[i].store(kNoOwner, std::memory_order_relaxed);
    locks_[i].store(false, std::memory_order_relaxed);
  }
  allocated_.assign(frame_count_, 0);
  free_in_group_.assign(frame_count_ / kFramesPerGroup, kFramesPerGroup);
  free_groups_.assign(frame_count_ / kFramesPerBlock, kGroupsPerBlock);
  for (std::size_t b = 0; b < frame_count_; b += kFramesPerBlock) {
    free_[2].insert(free_[2].end(), static_cast<FrameId>(b));
  }
}

FramePool::~FramePool() = default;

void FramePool::check_frame(FrameId frame, const char* what) const {
  if (frame >= frame_count_) {
    throw invalid(std::string("FramePool::") + what + ": frame " + std::to_string(frame) +
                  " is out of range; expected a frame below " + std::to_string(frame_count_));
  }
}

bool FramePool::take_injected_failure() noexcept {
  unsigned n = injected_failures_.load(std::memory_order_relaxed);
  while (n != 0) {
    if (injected_failures_.compare_exchange_weak(n, n - 1, std::memory_order_relaxed)) return true;
  }
  return false;
}

void FramePool::inject_alloc_failures(unsigned n) noexcept { injected_failures_.store(n, std::memory_order_relaxed); }

// Chunks of `order` that can be handed out without failing: whole free
// blocks of that order plus those obtainable by splitting larger ones. Free
// blocks of a smaller order never add up to a larger chunk, because parts
// merge as soon as they are all free.
std::size_t FramePool::free_chunks(unsigned order) const {
  std::size_t n = 0;
  for (unsigned o = order; o < 3; ++o) n += free_[o].size() * (kOrderFrames[o] / kOrderFrames[order]);
  return n;
}

FrameId FramePool::take_chunk(unsigned order) {
  if (free_[order].empty()) {
    // REQUIRES: a larger order has a block (checked by free_chunks()).
    const FrameId big = take_chunk(order + 1);
    // take_chunk(order + 1) accounted the whole block as allocated; give the
    // parts other than the first back as free blocks of `order`.
    const std::size_t step = kOrderFrames[order];
    for (std::size_t i = kOrderFrames[order + 1]; i > step; i -= step) {
      free_[order].insert(static_cast<FrameId>(big + i - step));
    }
    // Undo the accounting of take_chunk(order + 1) for the returned parts.
    if (order == 0) {
      free_in_group_[big / kFramesPerGroup] = static_cast<std::uint8_t>(kFramesPerGroup - 1);
    } else {
      free_groups_[big / kFramesPerBlock] = static_cast<std::uint8_t>(kGroupsPerBlock - 1);
      for (std::size_t g = 1; g < kGroupsPerBlock; ++g) {
        free_in_group_[big / kFramesPerGroup + g] = static_cast<std::uint8_t>(kFramesPerGroup);
      }
    }
    return big;
  }
  const FrameId first = *free_[order].begin();
  free_[order].erase(free_[order].begin());
  if (order == 2) {
    free_groups_[first / kFramesPerBlock] = 0;
    for (std::size_t g = 0; g < kGroupsPerBlock; ++g) {
      free_in_group_[first / kFramesPerGroup + g] = 0;
    }
  } else if (order == 1) {
    free_in_group_[first / kFramesPerGroup] = 0;
    --free_groups_[first / kFramesPerBlock];
  } else {
    std::uint8_t& in_group = free_in_group_[first / kFramesPerGroup];
    if (in_group == kFramesPerGroup) --free_groups_[first / kFramesPerBlock];
    --in_group;
  }
  return first;
}

void FramePool::mark_allocated(FrameId first, std::size_t frames) {
  for (std::size_t i = 0; i < frames; ++i) allocated_[first + i] = 1;
}

std::optional<std::vector<FrameId>> FramePool::alloc(std::size_t bytes, std::size_t chunk, OwnerId owner) {
  unsigned order = 3;
  for (unsigned o = 0; o < 3; ++o) {
    if (chunk == kOrderFrames[o] * kPageSize) order = o;
  }
  if (order == 3) {
    throw invalid("FramePool::alloc: chunk size " + std::to_string(chunk) +
                  " is invalid; expected 2 MiB, 64 KiB or 4 KiB");
  }
  if (bytes == 0 || bytes % chunk != 0) {
    throw invalid("FramePool::alloc: size " + std::to_string(bytes) +
                  " is invalid; expected a non-zero multiple of the chunk size " + std::to_string(chunk));
  }
  if (owner == kNoOwner) {
    throw invalid("FramePool::alloc: owner is kNoOwner; expected the id of the owning range");
  }
  if (take_injected_failure()) return std::nullopt;

  const std::size_t chunks = bytes / chunk;
  const std::size_t per_chunk = kOrderFrames[order];
  std::vector<FrameId> out;
  {
    std::lock_guard lk(mu_);
    if (free_chunks(order) < chunks) return std::nullopt;
    out.reserve(chunks * per_chunk);
    std::vector<FrameId> firsts;
    firsts.reserve(chunks);
    for (std::size_t c = 0; c < chunks; ++c) firsts.push_back(take_chunk(order));
    std::sort(firsts.begin(), firsts.end());
    auto& index = by_owner_[owner];
    for (FrameId f : firsts) {
      mark_allocated(f, per_chunk);
      for (std::size_t i = 0; i < per_chunk; ++i) {
        const FrameId id = static_cast<FrameId>(f + i);
        owners_[id].store(owner, std::memory_order_release);
        index.insert(index.end(), id);
        out.push_back(id);
      }
    }
    const std::uint64_t used = used_bytes_.fetch_add(bytes, std::memory_order_relaxed) + bytes;
    if (used > high_water_.load(std::memory_order_relaxed)) {
      high_water_.store(used, std::memory_order_relaxed);
    }
  }
  return out;
}

void FramePool::release_frame(FrameId frame) {
  allocated_[frame] = 0;
  const std::size_t group = frame / kFramesPerGroup;
  const std::size_t block = frame / kFramesPerBlock;
  free_[0].insert(frame);
  if (++free_in_group_[group] != kFramesPerGroup) return;
  // The 64 KiB group is wholly free: merge.
  const FrameId gfirst = static_cast<FrameId>(group * kFramesPerGroup);
  for (std::size_t i = 0; i < kFramesPerGroup; ++i) free_[0].erase(static_cast<FrameId>(gfirst + i));
  free_[1].insert(gfirst);
  if (++free_groups_[block] != kGroupsPerBlock) return;
  // The 2 MiB block is wholly free: merge.
  const FrameId bfirst = static_cast<FrameId>(block * kFramesPerBlock);
  for (std::size_t g = 0; g < kGroupsPerBlock; ++g) {
    free_[1].erase(static_cast<FrameId>(bfirst + g * kFramesPerGroup));
  }
  free_[2].insert(bfirst);
}

void FramePool::free(std::span<const FrameId> frames) {
  std::vector<FrameId> sorted(frames.begin(), frames.end());
  std::sort(sorted.begin(), sorted.end());
  for (FrameId f : sorted) check_frame(f, "free");
  if (auto dup = std::adjacent_find(sorted.begin(), sorted.end()); dup != sorted.end()) {
    throw invalid("FramePool::free: frame " + std::to_string(*dup) + " is listed twice; expected each frame once");
  }
  std::lock_guard lk(mu_);
  for (FrameId f : sorted) {
    if (allocated_[f] == 0) {
      throw invalid("FramePool::free: frame " + std::to_string(f) +
                    " is already free (double free); expected an allocated frame");
    }
    if (locks_[f].load(std::memory_order_acquire)) {
      throw invalid("FramePool::free: frame " + std::to_string(f) +
                    " is locked; expected the caller to unlock it before freeing");
    }
  }
  for (FrameId f : sorted) {
    const OwnerId o = owners_[f].load(std::memory_order_relaxed);
    if (auto it = by_owner_.find(o); it != by_owner_.end()) {
      it->second.erase(f);
      if (it->second.empty()) by_owner_.erase(it);
    }
    owners_[f].store(kNoOwner, std::memory_order_release);
    release_frame(f);
  }
  used_bytes_.fetch_sub(sorted.size() * kPageSize, std::memory_order_relaxed);
}

OwnerId FramePool::owner(FrameId frame) const {
  check_frame(frame, "owner");
  return owners_[frame].load(std::memory_order_acquire);
}

void FramePool::set_owner(FrameId frame, OwnerId owner) {
  check_frame(frame, "set_owner");
  if (owner == kNoOwner) {
    throw invalid("FramePool::set_owner: owner is kNoOwner; expected the id of the owning range");
  }
  std::lock_guard lk(mu_);
  if (allocated_[frame] == 0) {
    throw invalid("FramePool::set_owner: frame " + std::to_string(frame) + " is free; expected an allocated frame");
  }
  const OwnerId old = owners_[frame].load(std::memory_order_relaxed);
  if (old == owner) return;
  if (auto it = by_owner_.find(old); it != by_owner_.end()) {
    it->second.erase(frame);
    if (it->second.empty()) by_owner_.erase(it);
  }
  by_owner_[owner].insert(frame);
  owners_[frame].store(owner, std::memory_order_release);
}

std::vector<FrameId> FramePool::frames_of(OwnerId owner) const {
  std::lock_guard lk(mu_);
  auto it = by_owner_.find(owner);
  if (it == by_owner_.end()) return {};
  return std::vector<FrameId>(it->second.begin(), it->second.end());
}

bool FramePool::trylock(FrameId frame) {
  check_frame(frame, "trylock");
  if (locks_[frame].load(std::memory_order_relaxed)) return false;
  return !locks_[frame].exchange(true, std::memory_order_acquire);
}

void FramePool::unlock(FrameId frame) {
  check_frame(frame, "unlock");
  if (!locks_[frame].exchange(false, std::memory_order_release)) {
    throw invalid("FramePool::unlock: frame " + std::to_string(frame) +
                  " is not locked; expected a frame locked by trylock()");
  }
}

bool FramePool::is_locked(FrameId frame) const {
  check_frame(frame, "is_locked");
  return locks_[frame].load(std::memory_order_acquire);
}

std::byte* FramePool::data(FrameId frame) {
  check_frame(frame, "data");
  return map_.base + static_cast<std::size_t>(frame) * kPageSize;
}

const std::byte* FramePool::data(FrameId frame) const {
  check_frame(frame, "data");
  return map_.base + static_cast<std::size_t>(frame) * kPageSize;
}

FrameId FramePool::frame_at(const std::byte* p) const noexcept {
  if (p < map_.base || p >= map_.base + frame_count_ * kPageSize) return kNoFrame;
  return static_cast<FrameId>(static_cast<std::size_t>(p - map_.base) / kPageSize);
}

DeviceMemoryUse FramePool::use() const noexcept {
  DeviceMemoryUse u;
  u.total = map_.bytes;
  u.used = used_bytes_.load(std::memory_order_relaxed);
  u.high_water = high_water_.load(std::memory_order_relaxed);
  return u;
}

}  // namespace xesvm::sim
