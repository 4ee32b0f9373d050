// FramePool: the sim device's memory.
//
// Device memory is one anonymous private mapping of `bytes` (never registered
// with userfaultfd; it is the device's own memory, not SVM memory) cut into
// 4 KiB frames. Frames are handed out in naturally aligned chunks of 2 MiB,
// 64 KiB or 4 KiB by a buddy allocator with three orders: a 2 MiB block is
// split into 64 KiB blocks and a 64 KiB block into 4 KiB frames on demand,
// and parts merge back as soon as all of them are free. Every allocated
// frame carries an owner tag (the zone_device_data analogue) and the pool
// keeps an index owner -> frames, so frames_of() costs O(frames of that
// owner). Every frame has a bit lock like the kernel's page lock.
//
// Concurrency: every method may be called from any thread. alloc(), free(),
// set_owner() and frames_of() serialize on one internal mutex; owner(),
// trylock(), unlock(), is_locked(), data(), frame_count() and use() are
// lock-free. The pool never takes a frame lock itself and never blocks on
// one, so a caller may hold frame locks (and any of its own locks) around
// any call.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <unordered_map>
#include <vector>

#include "runtime/backend.hpp"

namespace xesvm::sim {

class FramePool {
 public:
  /// Maps `bytes` of device memory. Throws Error(kInvalidArgument) unless
  /// bytes is a non-zero multiple of 2 MiB, Error(kOutOfMemory) if the
  /// mapping fails.
  explicit FramePool(std::size_t bytes);
  ~FramePool();
  FramePool(const FramePool&) = delete;
  FramePool& operator=(const FramePool&) = delete;

  /// Allocates bytes/kPageSize frames as naturally aligned chunks of `chunk`
  /// bytes, tags each with `owner` and returns them in address order.
  /// All-or-nothing: returns std::nullopt (allocating nothing) when the pool
  /// has too few free chunks of that size, or when an injected failure is
  /// pending. REQUIRES (else throws Error(kInvalidArgument)): chunk is one of
  /// kChunkSizes, bytes is a non-zero multiple of chunk, owner != kNoOwner.
  std::optional<std::vector<FrameId>> alloc(std::size_t bytes, std::size_t chunk, OwnerId owner);

  /// Returns frames to the pool; their owner becomes kNoOwner. REQUIRES
  /// (else throws Error(kInvalidArgument) and frees nothing): every frame is
  /// in range, allocated, unlocked, and listed once.
  void free(std::span<const FrameId> frames);

  /// The owner tag of a frame, kNoOwner if it is free. Lock-free.
  /// REQUIRES: frame < frame_count() (else throws Error(kInvalidArgument)).
  OwnerId owner(FrameId frame) const;
  /// Retags an allocated frame. REQUIRES (else throws
  /// Error(kInvalidArgument)): frame in range and allocated, owner != kNoOwner.
  void set_owner(FrameId frame, OwnerId owner);
  /// Every allocated frame tagged `owner`, sorted. O(frames of that owner).
  std::vector<FrameId> frames_of(OwnerId owner) const;

  /// Never blocks. Returns true if the caller now holds the frame's lock,
  /// false if someone else holds it. REQUIRES: frame in range (else throws).
  bool trylock(FrameId frame);
  /// Releases the frame lock. REQUIRES (else throws Error(kInvalidArgument)):
  /// frame in range and locked.
  void unlock(FrameId frame);
  /// Whether the frame is locked now (a snapshot). REQUIRES: frame in range.
  bool is_locked(FrameId frame) const;

  /// The frame's kPageSize bytes. REQUIRES: frame in range (else throws
  /// Error(kInvalidArgument)). The pointer stays valid for the pool's life.
  std::byte* data(FrameId frame);
  const std::byte* data(FrameId frame) const;
  /// The frame holding device-memory byte p; kNoFrame if p is not in it.
  FrameId frame_at(const std::byte* p) const noexcept;
  std::size_t frame_count() const noexcept { return frame_count_; }
  /// total, used and high-water bytes.
  DeviceMemoryUse use() const noexcept;

  /// Test hook: the next n calls of alloc() with valid arguments return
  /// std::nullopt as if memory were short.
  void inject_alloc_failures(unsigned n) noexcept;

 private:
  struct Mapping {
    std::byte* base = nullptr;
    std::size_t bytes = 0;
    Mapping() = default;
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;
    ~Mapping();
  };

  void check_frame(FrameId frame, const char* what) const;
  bool take_injected_failure() noexcept;
  // All below REQUIRE mu_ held.
  std::size_t free_chunks(unsigned order) const;
  FrameId take_chunk(unsigned order);
  void release_frame(FrameId frame);
  void mark_allocated(FrameId first, std::size_t frames);

  Mapping map_;
  std::size_t frame_count_ = 0;
  std::unique_ptr<std::atomic<OwnerId>[]> owners_;
  std::unique_ptr<std::atomic<bool>[]> locks_;
  std::atomic<std::uint64_t> used_bytes_{0};
  std::atomic<std::uint64_t> high_water_{0};
  std::atomic<unsigned> injected_failures_{0};

  mutable std::mutex mu_;
  // Buddy state (mu_): free blocks per order (0 = 4 KiB frames by frame id,
  // 1 = 64 KiB blocks by first frame, 2 = 2 MiB blocks by first frame).
  std::set<FrameId> free_[3];
  std::vector<std::uint8_t> allocated_;      // per frame
  std::vector<std::uint8_t> free_in_group_;  // free frames per 64 KiB group
  std::vector<std::uint8_t> free_groups_;    // wholly free groups per 2 MiB block
  std::unordered_map<OwnerId, std::set<FrameId>> by_owner_;
};

}  // namespace xesvm::sim
