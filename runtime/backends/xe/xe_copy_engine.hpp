// XeCopyEngine: device copy and fill on an Xe copy engine, as batch buffers
// in SVM memory that the engine owns.
//
// Each operation is one batch buffer of blitter commands in linear byte mode
// (Xe2 encodings, REFERENCE.md Part E.2):
//   copy  one MEM_COPY per 256 KiB (the width field has 18 bits), height 1;
//   fill  MEM_SET the same way when every byte of the pattern is equal;
//         otherwise a seed of the pattern written by the CPU next to the
//         batch, MEM_COPY seed -> dst, then MEM_COPYs that double the filled
//         prefix (dst[0, k) -> dst[k, 2k)) until the span is full;
// then MI_BATCH_BUFFER_END. The batch is submitted with DRM_IOCTL_XE_EXEC on
// an exec queue of the backend's long-running fault-mode VM, with one
// DRM_XE_SYNC_TYPE_USER_FENCE sync: the device writes the operation's
// sequence number through the VM to an 8-byte word next to the batch after
// the batch ran. The batch, the seed and the fence live in 2 MiB regions
// mapped by this engine, advised to stay in system memory (MADVISE
// PREFERRED_LOC DEFAULT_SYSTEM) when the kernel has MADVISE, so that neither
// the GPU fetching a batch nor the CPU writing the next one migrates them.
//
// A GPU fault the kernel cannot serve (an address without a CPU mapping)
// bans the queue: the fence is never written and WAIT_USER_FENCE with the
// queue answers EIO. The wait then throws Error (kDeviceLost) naming the
// operation's spans; the engine replaces the banned queue for later work.
// Waits are bounded (XeCopyEngine::Options::fence_timeout_ns): a timeout is
// Error (kBusy), never a hang.
//
// A span above kMaxBytes (256 MiB: the commands of one batch must fit its
// slot; Options::max_batch_bytes may set less) is split into several
// batches, submitted in order and completed as one work.
//
// Consecutive blits that depend on each other (the doubling fill's copies
// read what the previous one wrote) are separated by MI_FLUSH_DW, as Xe's
// copy engine needs.
//
// Concurrency: copy() and fill() may be called from any thread; submissions
// are serialized. A DeviceWork is used by one thread at a time.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/backend.hpp"
#include "runtime/backends/xe/xe_ioctl.hpp"

namespace xesvm::xe {

/// Builds the dwords of one batch (exposed for the encoding tests).
class BatchBuilder {
 public:
  /// MEM_COPY of n bytes from src to dst: rows of 256 KiB and a remainder.
  void mem_copy(std::uint64_t dst, std::uint64_t src, std::uint64_t n);
  /// MEM_SET of n bytes at dst to `value`.
  void mem_set(std::uint64_t dst, std::uint8_t value, std::uint64_t n);
  /// MI_STORE_DATA_IMM of one dword to a PPGTT address. REQUIRES: addr % 4 == 0.
  void store_dword(std::uint64_t addr, std::uint32_t value);
  /// MI_FLUSH_DW (4 dwords, no post-sync operation): the writes of the
  /// commands before it land before the commands after it run.
  void flush_dw();
  void end();
  const std::vector<std::uint32_t>& dwords() const { return dw_; }

  /// Largest width (and pitch) of one MEM_COPY / MEM_SET row.
  static constexpr std::uint64_t kMaxRow = 1u << 18;

 private:
  void rows(std::uint32_t dw0, std::uint64_t dst, std::uint64_t src, std::uint8_t value, std::uint64_t n);
  std::vector<std::uint32_t> dw_;
};

class XeCopyEngine final : public CopyFace {
 public:
  /// An engine the device listed (DEVICE_QUERY ENGINES).
  struct EngineId {
    std::uint16_t engine_class = 0, engine_instance = 0, gt_id = 0;
  };
  /// Largest copy or fill of one batch (its commands fit one batch slot).
  static constexpr std::uint64_t kMaxBytes = 256u << 20;

  struct Options {
    std::uint32_t vm_id = 0;
    std::vector<EngineId> engines;                   ///< as the device lists them
    std::int64_t fence_timeout_ns = 60'000'000'000;  ///< bound of every internal wait
    /// Called once per batch region with its span; advises it to system
    /// memory. Returns false when the kernel has no MADVISE (nothing issued).
    std::function<bool(std::uint64_t, std::uint64_t)> advise_system;
    /// The end of the GPU VA span the VM mirrors (1 << va_bits); spans
    /// past it are refused before any ioctl. 0: no such check.
    std::uint64_t va_end = 0;
    /// The largest span of one batch: kMaxBytes, or less (a test of the
    /// splitting that need not move 256 MiB). REQUIRES: a multiple of
    /// 4096 in [4096, kMaxBytes]; the constructor throws Error
    /// (kInvalidArgument) otherwise.
    std::uint64_t max_batch_bytes = kMaxBytes;
  };

  /// Picks the first COPY engine of options.engines (else the first engine
  /// of any class) and creates an exec queue on it. Throws Error
  /// (kUnsupported) when the list is empty, or EXEC_QUEUE_CREATE's error.
  XeCopyEngine(XeIoctl& io, Options options);
  /// Waits for work in flight (bounded) and destroys the queue.
  ~XeCopyEngine() override;

  /// As CopyFace; throws Error (kInvalidArgument) before any ioctl when a
  /// span leaves [0, Options::va_end). A span larger than Options::max_batch_bytes is split
  /// into batches of that size (and the rest), submitted in order on the one queue; the
  /// returned work completes when all of them have. If a later batch cannot
  /// be submitted, the earlier ones are waited for (bounded) before the
  /// error is thrown.
  std::unique_ptr<DeviceWork> copy(std::uint64_t dst, std::uint64_t src, std::uint64_t n) override;
  std::unique_ptr<DeviceWork> fill(std::uint64_t dst, std::uint32_t pattern, unsigned pattern_size,
                                   std::uint64_t n) override;

  /// Test hook: submits `dwords` as a batch (in an engine-owned slot). The
  /// work fails with kDeviceLost if the device bans the queue.
  std::unique_ptr<DeviceWork> submit_raw(const std::vector<std::uint32_t>& dwords, std::string what);

  /// The engine the queue runs on ("copy 0 on GT 0").
  const std::string& engine_name() const { return engine_name_; }
  std::uint64_t batches_submitted() const { return submitted_.load(std::memory_order_relaxed); }
  std::uint64_t queues_banned() const { return banned_.load(std::memory_order_relaxed); }

 private:
  class Work;
  friend class Work;
  class Batches;
  struct Slot {
    std::uint64_t base = 0;  // batch at base, seed at base + kSeedOffset, fence at base + kFenceOffset
  };
  static constexpr std::uint64_t kSlotSize = 64u << 10;
  static constexpr std::uint64_t kSeedOffset = 56u << 10;  // the batch: up to 14336 dwords before it
  static constexpr std::uint64_t kSeedSize = 2048;
  static constexpr std::uint64_t kFenceOffset = kSeedOffset + kSeedSize;
  static constexpr std::uint64_t kRegionSize = 2u << 20;

  void create_queue();  // REQUIRES: mu_ held
  void on_banned(std::uint32_t queue);
  void check_span(const std::string& what, std::uint64_t start, std::uint64_t n) const;
  // One batch each. REQUIRES: n <= kMaxBytes.
  std::unique_ptr<DeviceWork> copy_batch(std::uint64_t dst, std::uint64_t src, std::uint64_t n);
  std::unique_ptr<DeviceWork> fill_batch(std::uint64_t dst, std::uint32_t pattern, unsigned pattern_size,
                                         std::uint64_t n);
  // part(off, len) for each Options::max_batch_bytes piece of [0, n), as one work.
  std::unique_ptr<DeviceWork> in_batches(
      std::uint64_t n, const std::function<std::unique_ptr<DeviceWork>(std::uint64_t, std::uint64_t)>& part);
  Slot take_slot();
  void give_slot(Slot s);
  std::unique_ptr<DeviceWork> submit(const std::vector<std::uint32_t>& dwords, Slot slot, std::string what);
  /// Waits for `seq` at the slot's fence on `queue`; returns 0 or the errno.
  int wait_fence(std::uint64_t fence_addr, std::uint64_t seq, std::uint32_t queue, std::int64_t timeout_ns);

  XeIoctl& io_;
  Options options_;
  std::uint16_t engine_class_ = 0, engine_instance_ = 0, gt_id_ = 0;
  std::string engine_name_;

  std::mutex mu_;
  std::uint32_t queue_ = 0;                 // guarded by mu_; 0 = none
  std::vector<std::uint32_t> dead_queues_;  // banned queues, destroyed at the end
  std::uint64_t next_seq_ = 0;
  std::vector<Slot> free_slots_;
  std::vector<std::pair<void*, std::size_t>> regions_;
  std::atomic<std::uint64_t> submitted_{0};
  std::atomic<std::uint64_t> banned_{0};
};

}  // namespace xesvm::xe
