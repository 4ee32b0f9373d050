// CostModel: the sim device's modelled time.
//
// In the sim the "GPU" reads host RAM as fast as its own frames, so without a
// model never migrating would always look best. The cost model charges every
// GPU access to system memory and every migration to a host link (bandwidth
// plus a fixed latency per transfer) and every access to device memory to a
// faster local bandwidth. It is a serialized-link model: all transfers are
// assumed to queue on one link and one local memory, so the modelled device
// time is the plain sum
//
//   modelled_ns = link_bytes / link_gb_per_s + link_transfers * link_latency_ns
//               + local_bytes / local_gb_per_s
//
// (1 GB/s = 1 byte/ns), plus fault_latency_ns per GPU page fault. The model
// keeps only the byte/transfer/fault totals and computes the time from them
// on demand, so it has no rounding drift however many small charges are
// made.
//
// Who charges what, each in one place:
//  * charge_migration(): every move of data between RAM and device frames,
//    called once per move by the sim's data path with what actually moved
//    (the migration to the device, the CPU fault's move home, an
//    eviction's placement); nothing else charges migrations;
//  * charge_access(): the GPU's accesses, by the engine, once per worker
//    flush (device bytes locally, system bytes over the link);
//  * charge_faults(): GPU page faults, by the engine.
//
// Concurrency: every method is lock-free and may be called from any thread.
// reset() racing charges loses or keeps those charges, nothing worse.
#pragma once

#include <atomic>
#include <cstdint>

namespace xesvm::sim {

/// Parameters of the model.
struct LinkParams {
  double link_gb_per_s = 13.0;    ///< host link bandwidth (PCIe Gen4 x8 effective)
  double link_latency_ns = 1500;  ///< fixed cost of one link transfer
  double local_gb_per_s = 400.0;  ///< device-memory bandwidth
  /// Service time of one GPU page fault (the device stalls, the host
  /// resolves it): replayable-fault GPUs take tens of microseconds.
  double fault_latency_ns = 20000;
};

/// Direction of a migration.
enum class Migration : std::uint8_t {
  kToDevice,  ///< system pages into device frames (GPU fault, prefetch)
  kToRam,     ///< device frames back to RAM (CPU fault, eviction)
};

class CostModel {
 public:
  /// Throws Error(kInvalidArgument) unless both bandwidths are finite and
  /// positive and the latency is finite and non-negative.
  explicit CostModel(LinkParams params = {});
  CostModel(const CostModel&) = delete;
  CostModel& operator=(const CostModel&) = delete;

  /// Charges one migration: `bytes` moved over the link in `transfers`
  /// transfers (one per contiguous piece copied). The single entry point of
  /// migration charges; a move that moved nothing charges nothing.
  void charge_migration(Migration dir, std::uint64_t bytes, std::uint64_t transfers) noexcept;
  /// Charges GPU accesses: `device_bytes` of device-memory traffic and
  /// `system_bytes` of system memory reached over the link in
  /// `system_transfers` transfers.
  void charge_access(std::uint64_t device_bytes, std::uint64_t system_bytes, std::uint64_t system_transfers) noexcept;
  /// Charges `n` GPU page faults.
  void charge_faults(std::uint64_t n) noexcept { faults_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t faults() const noexcept { return faults_.load(std::memory_order_relaxed); }

  /// The modelled device time so far, in nanoseconds (rounded to nearest).
  std::uint64_t modelled_ns() const noexcept;
  std::uint64_t link_bytes() const noexcept;
  std::uint64_t link_transfers() const noexcept;
  std::uint64_t local_bytes() const noexcept;
  /// Bytes charged by charge_migration() in one direction.
  std::uint64_t migrated_bytes(Migration dir) const noexcept;
  /// Zeroes every total.
  void reset() noexcept;
  const LinkParams& params() const noexcept { return params_; }

 private:
  LinkParams params_;
  std::atomic<std::uint64_t> link_bytes_{0};
  std::atomic<std::uint64_t> link_transfers_{0};
  std::atomic<std::uint64_t> faults_{0};
  std::atomic<std::uint64_t> local_bytes_{0};
  std::atomic<std::uint64_t> to_device_bytes_{0};
  std::atomic<std::uint64_t> to_ram_bytes_{0};

  void charge_link(std::uint64_t bytes, std::uint64_t transfers) noexcept;
};

}  // namespace xesvm::sim
