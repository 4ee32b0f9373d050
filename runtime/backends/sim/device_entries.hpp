// DeviceEntries: the device-private entries of the sim's CPU side.
//
// A page whose data lives in a device frame has no CPU page; it has an entry
// here instead, page -> (frame, state), the analogue of the kernel's
// device-private swap entry, plus the reverse map frame -> page (the
// migration entry eviction reads to learn where a frame's data belongs). The
// two maps are one bijection between the pages that have an entry and the
// frames they name; every method keeps it so.
//
// States:
//   kInbound   a migration to the device is copying the page; CPU faults on
//              it wait (deferred), snapshots report the device frame
//   kResident  the frame holds the page's data; a CPU touch migrates it back
//   kEvicting  an eviction or a CPU fault is moving the data home; snapshots
//              report the CPU page (the migration entry), never the frame
//
// Concurrency: thread-safe. One internal mutex, a leaf lock: held only for
// the table update inside each call, never across a system call. The only
// other lock taken under it is a frame trylock (claim_run()), which never
// blocks. Not copyable.
//
// Part of the data path: migrate_to_device() enters and settles entries,
// the CPU fault service (migrate_to_ram) claims and releases runs, eviction
// marks, checks and finalizes them, and the event service thread drops and
// moves them as munmap, MADV_DONTNEED and mremap are applied.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/backend.hpp"

namespace xesvm::sim {

class FramePool;

class DeviceEntries {
 public:
  enum class State : std::uint8_t { kInbound, kResident, kEvicting };
  struct Entry {
    FrameId frame;
    State state;
  };

  /// Frames of `pool` (which must outlive this table) may be entered.
  explicit DeviceEntries(FramePool& pool);
  DeviceEntries(const DeviceEntries&) = delete;
  DeviceEntries& operator=(const DeviceEntries&) = delete;

  /// The entry of `page`, if any.
  std::optional<Entry> lookup(std::uint64_t page) const;
  /// The page a frame's data belongs to; 0 if the frame has no entry.
  /// REQUIRES: frame < the pool's frame count.
  std::uint64_t frame_address(FrameId frame) const;
  /// Entries erased because their page was placed in RAM, ever: a snapshot
  /// that read the page tables before such an erase reads them again.
  std::uint64_t placements() const { return placements_.load(); }

  /// Fills out[i] for page start + i*kPageSize: kDevice with its frame if the
  /// page has an entry not being evicted; otherwise kSystem if present is
  /// null or present[i], else kAbsent. Returns false and fills nothing if
  /// `unless_placed_since` is given and placements() differs from it (the
  /// caller's page-table read may be stale). REQUIRES: present, if given,
  /// has out.size() elements.
  bool fill_snapshot(std::uint64_t start, std::span<PageSnapshot> out, const std::vector<bool>* present,
                     std::optional<std::uint64_t> unless_placed_since);
  /// True if every page of out has an entry not being evicted; then out
  /// holds their frames (kDevice). Otherwise out is partly written.
  bool snapshot_all_device(std::uint64_t start, std::span<PageSnapshot> out) const;

  /// Enters kInbound entries page addrs[i] -> frames[i] for every i whose
  /// frame is not kNoFrame and whose page has no entry yet; for the others
  /// frames[i] is set to kNoFrame. Returns which pages were entered.
  /// REQUIRES: addrs.size() == frames.size(), frames allocated and unused.
  std::vector<bool> begin_inbound(std::span<const std::uint64_t> addrs, std::span<FrameId> frames);
  /// Ends a migration begun by begin_inbound(): an entry still naming its
  /// frame becomes kResident if ok[i]; otherwise it is erased and frames[i]
  /// set to kNoFrame (the caller frees that frame). An entry erased
  /// meanwhile (the page was discarded or unmapped) leaves frames[i]
  /// kNoFrame too. Returns how many pages became resident.
  std::size_t finish_inbound(std::span<const std::uint64_t> addrs, std::span<FrameId> frames,
                             const std::vector<bool>& ok);

  /// Eviction, step unmap: the entries of `frames` become kEvicting.
  /// Frames without an entry are skipped. REQUIRES: frames locked.
  void mark_evicting(std::span<const FrameId> frames);
  /// True if page addr + i*kPageSize has a kEvicting entry naming frames[i],
  /// for every i: the placement of frames[i] there is still wanted.
  bool all_evicting(std::uint64_t addr, std::span<const FrameId> frames) const;
  /// Eviction, step finalize: a committed frame's entry is erased (counted
  /// as a placement) and the frame loses its page; an uncommitted one goes
  /// back to kResident. REQUIRES: frames locked, committed.size() ==
  /// frames.size().
  void finalize(std::span<const FrameId> frames, std::span<const std::uint8_t> committed);

  /// A run of device-resident pages claimed for migrate_to_ram.
  struct Run {
    enum class Outcome : std::uint8_t {
      kNoEntry,  ///< the page has no entry: a zero page (or a discarded one)
      kBusy,     ///< the entry is not kResident, or its frame is locked: defer
      kClaimed,  ///< [lo, hi) is claimed: entries kEvicting, frames locked
    };
    Outcome outcome = Outcome::kNoEntry;
    std::uint64_t lo = 0, hi = 0;
    std::vector<FrameId> frames;  ///< frames[k] backs lo + k*kPageSize
  };
  /// Claims `page` and the kResident pages around it whose frames carry the
  /// same owner tag, inside page's 2 MiB block, as far as they are
  /// contiguous in the address space and their frames can be trylocked now.
  /// On kClaimed the caller holds every frame lock of the run and must end
  /// it with release_run().
  Run claim_run(std::uint64_t page);
  /// Ends a claimed run: pages with placed[k] lose their entry (if it still
  /// names the run's frame; counted as a placement) and their frame its
  /// page; the others go back to kResident. Returns the frames of placed
  /// pages, for the caller to free. Frame locks are left to the caller.
  std::vector<FrameId> release_run(const Run& run, std::span<const std::uint8_t> placed);

  /// Drops every entry in [start, end): the data is no longer wanted.
  void drop(std::uint64_t start, std::uint64_t end);
  /// Moves the entries of [from, from+len) to [to, to+len) (mremap).
  void move(std::uint64_t from, std::uint64_t to, std::uint64_t len);

  /// Checks the bijection page <-> frame and that every entered frame is
  /// allocated in the pool. Returns one line per disagreement ("" if none).
  std::string check() const;
  /// Every entry, sorted by page (tests and checkers).
  std::vector<std::pair<std::uint64_t, Entry>> entries() const;
  /// Test hook: makes frame -> page say `page` for `frame` without touching
  /// page -> frame, so checkers can prove they see a disagreement.
  void corrupt_frame_address_for_test(FrameId frame, std::uint64_t page);

 private:
  FramePool& pool_;
  mutable std::mutex mu_;
  std::unordered_map<std::uint64_t, Entry> by_page_;  // page -> entry (mu_)
  std::vector<std::uint64_t> page_of_;                // frame -> page, 0 = none (mu_)
  std::atomic<std::uint64_t> placements_{0};
};

}  // namespace xesvm::sim
