// GpuPageTable: the sim GPU's page table.
//
// Maps GPU virtual addresses (the same as CPU addresses: SVM) page by page to
// either a device frame or the CPU page at the same address. It is a
// two-level table: an ordered directory of 2 MiB regions, each an array of
// 512 PTEs, allocated when the first PTE of the region is bound and dropped
// when its last PTE is cleared. A reverse map frame -> address makes
// zap_frames() cost O(frames). A device frame backs at most one page: binding
// it at a second address moves it (the old PTE is cleared, as by a zap).
//
// Accessed bits: every PTE has one, set by the engine on each access made
// through it (with_access(): a relaxed load, and a relaxed fetch_or only when
// the bit was clear, so a hot page costs one read of a shared cache line) and
// cleared by test_and_clear_accessed(), the CLOCK sweep of the runtime's
// pressure policy. Clearing a PTE clears its bit; a new PTE starts clear.
//
// generation() counts invalidations: every unbind(), zap_frames() and every
// bind() that clears or replaces an existing PTE bumps it while holding the
// write lock. A reader that sampled it under the shared lock and sees the
// same value later knows no PTE was torn down in between.
//
// Concurrency: one std::shared_mutex. bind(), unbind() and zap_frames() take
// it exclusively; lookup(), with_lookup(), with_access(), mapped_pages() and
// test_and_clear_accessed() take it shared (the accessed bits are atomics).
// with_lookup() runs the caller's function under the shared lock, so the
// function must not call back into the table's writers (deadlock) and should
// be short: it holds off every invalidation.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <thread>
#include <unordered_map>
#include <utility>

#include "runtime/backend.hpp"

namespace xesvm::sim {

/// One GPU page-table entry.
struct Pte {
  enum class Kind : std::uint8_t { kNone, kSystem, kDevice };
  Kind kind = Kind::kNone;
  bool writable = false;
  FrameId frame = kNoFrame;  ///< valid when kind == kDevice
};

/// The gate between GPU writes to system memory and changes of CPU mappings.
///
/// The engine writes system memory by virtual address (process_vm_writev),
/// so a write that raced an munmap + mmap of the same address would land in
/// the mapping that replaced the original. The userfaultfd reader closes the
/// gate before it reads events (the thread that unmapped resumes as soon as
/// its event is read) and zaps the affected PTEs before it opens the gate
/// again; a GPU write enters the gate and re-checks the table generation
/// first. close() waits for writers in flight only for a bounded time: a
/// write that is itself waiting on a userfaultfd fault needs the reader.
class SystemWriteGate {
 public:
  /// Engine side. Blocks (yielding) while the gate is closed.
  void enter() noexcept {
    for (;;) {
      while (closing_.load()) std::this_thread::yield();
      writers_.fetch_add(1);
      if (!closing_.load()) return;
      writers_.fetch_sub(1);
    }
  }
  void exit() noexcept { writers_.fetch_sub(1); }
  /// Reader side. Returns true if every writer in flight finished in time.
  bool close(std::chrono::microseconds wait) noexcept {
    closing_.store(true);
    const auto until = std::chrono::steady_clock::now() + wait;
    while (writers_.load() != 0) {
      if (std::chrono::steady_clock::now() >= until) return false;
      std::this_thread::yield();
    }
    return true;
  }
  void open() noexcept { closing_.store(false); }
  /// True while the reader is reading and classifying events.
  bool is_closed() const noexcept { return closing_.load(); }

 private:
  std::atomic<int> writers_{0};
  std::atomic<bool> closing_{false};
};

class GpuPageTable final : public AccessedBits {
 public:
  GpuPageTable() = default;
  GpuPageTable(const GpuPageTable&) = delete;
  GpuPageTable& operator=(const GpuPageTable&) = delete;

  /// Writes the PTEs of [start, start + pages.size()*kPageSize): kDevice
  /// pages map their frame, kSystem and kAbsent pages map the CPU page (an
  /// absent page is populated by the CPU side on first access). REQUIRES
  /// (else throws Error(kInvalidArgument) and changes nothing): start page
  /// aligned, the range does not wrap, every kDevice page names a frame and
  /// no frame appears twice.
  void bind(std::uint64_t start, std::span<const PageSnapshot> pages) { (void)bind_unless(start, pages, nullptr); }
  /// Like bind(), but calls `refuse` under the write lock first and writes
  /// nothing if it returns true; returns whether the PTEs were written. A
  /// zap (unbind(), zap_frames()) either runs before the check or clears
  /// what the bind wrote. `refuse` must not call into the table.
  bool bind_unless(std::uint64_t start, std::span<const PageSnapshot> pages, bool (*refuse)(const void*),
                   const void* ctx = nullptr);
  /// Clears the PTEs of [start, end). REQUIRES (else throws
  /// Error(kInvalidArgument)): start and end page aligned, start <= end.
  void unbind(std::uint64_t start, std::uint64_t end);
  /// Clears every PTE that maps one of `frames`; frames not mapped are
  /// ignored. O(frames.size()).
  void zap_frames(std::span<const FrameId> frames);

  /// The PTE of the page holding addr (kNone if unmapped).
  Pte lookup(std::uint64_t addr) const;
  /// Calls f(const Pte&) for the page holding addr with the shared lock held
  /// and returns what f returns. Lets a caller access a device frame knowing
  /// that no zap (and hence no free of the frame) can run meanwhile.
  template <class F>
  decltype(auto) with_lookup(std::uint64_t addr, F&& f) const {
    std::shared_lock lk(mu_);
    return std::forward<F>(f)(find(addr));
  }
  /// Like with_lookup(), for an access by the GPU: sets the accessed bit of
  /// the page's PTE if it maps anything.
  template <class F>
  decltype(auto) with_access(std::uint64_t addr, F&& f) const {
    std::shared_lock lk(mu_);
    auto it = dirs_.find(addr >> kDirShift);
    if (it == dirs_.end()) return std::forward<F>(f)(kEmptyPte);
    Dir& dir = *it->second;
    const std::size_t i = (addr >> kPageShift) & (kPtesPerDir - 1);
    const Pte& pte = dir.ptes[i];
    if (pte.kind != Pte::Kind::kNone) {
      std::atomic<std::uint64_t>& word = dir.accessed[i / 64];
      const std::uint64_t bit = std::uint64_t{1} << (i % 64);
      if (!(word.load(std::memory_order_relaxed) & bit)) word.fetch_or(bit, std::memory_order_relaxed);
    }
    return std::forward<F>(f)(pte);
  }
  /// AccessedBits: true if a PTE of [start, end) was accessed since the last
  /// call that covered it; clears those bits. Never blocks writers for long
  /// (shared lock, one exchange per 64 PTEs).
  bool test_and_clear_accessed(std::uint64_t start, std::uint64_t end) override;
  /// Number of PTEs that are not kNone.
  std::size_t mapped_pages() const;
  /// The invalidation count (see above).
  std::uint64_t generation() const noexcept { return generation_.load(std::memory_order_acquire); }
  /// The gate GPU writes to system memory pass through.
  SystemWriteGate& write_gate() noexcept { return gate_; }
  /// The address a frame is mapped at, if any (for diagnostics and tests).
  std::optional<std::uint64_t> address_of(FrameId frame) const;

 private:
  static constexpr std::size_t kPtesPerDir = 512;
  static constexpr unsigned kDirShift = 21;
  struct Dir {
    std::array<Pte, kPtesPerDir> ptes{};
    std::size_t used = 0;
    // One accessed bit per PTE; written under the shared lock by the engine.
    mutable std::array<std::atomic<std::uint64_t>, kPtesPerDir / 64> accessed{};
  };
  static const Pte kEmptyPte;

  // All REQUIRE mu_ (shared for find, exclusive for the rest).
  const Pte& find(std::uint64_t addr) const;
  void clear_pte(std::uint64_t page_addr);  // clears and unlinks; may drop the Dir
  void bump() noexcept { generation_.fetch_add(1, std::memory_order_acq_rel); }

  mutable std::shared_mutex mu_;
  std::map<std::uint64_t, std::unique_ptr<Dir>> dirs_;  // key: addr >> 21
  std::unordered_map<FrameId, std::uint64_t> frame_va_;
  std::size_t mapped_ = 0;
  std::atomic<std::uint64_t> generation_{0};
  SystemWriteGate gate_;
};

}  // namespace xesvm::sim
