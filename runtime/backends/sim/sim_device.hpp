// The sim device: a user-space SVM device on real kernel machinery.
//
// SimDevice is a Backend with a mechanism face and an execution engine, and
// no policy face of its own: the runtime's SvmManager drives it the way a
// kernel driver drives the mm core. It is composed of
//   FramePool     device memory: 4 KiB frames, 2M/64K/4K chunks, owner tags
//   CpuMirror     the CPU side on userfaultfd (migrate_to_ram, notifier)
//   GpuPageTable  the GPU's page table
//   SimEngine     worker threads running kernels through a DeviceAccessor
//   CostModel     modelled device time: a host link and local bandwidth
//
// It is opened by URI: "sim:" followed by comma-separated key=value options
//   vram=256M            device memory (multiple of 2 MiB; K, M, G suffixes)
//   workers=N            engine workers (default: hardware threads)
//   link_gbps=13         host link bandwidth, GB/s (PCIe Gen4 x8 default)
//   link_latency_ns=1500 per transfer on the link
//   local_gbps=400       device-memory bandwidth, GB/s
//   fault_latency_ns=20000  modelled service time of one GPU page fault
//   kernel_faults=0|1    0 forces UFFD_USER_MODE_ONLY (default 1 where allowed)
//
// Concurrency: every method is thread-safe (see the components' headers).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "runtime/backend.hpp"
#include "runtime/backends/sim/cost_model.hpp"
#include "runtime/backends/sim/cpu_mirror.hpp"
#include "runtime/backends/sim/cpu_protection.hpp"
#include "runtime/backends/sim/engine.hpp"
#include "runtime/backends/sim/frame_pool.hpp"
#include "runtime/backends/sim/gpu_page_table.hpp"

namespace xesvm::sim {

/// Options of a sim device, parsed from its URI.
struct SimConfig {
  std::size_t vram_bytes = 256u << 20;
  unsigned workers = 0;  ///< 0: std::thread::hardware_concurrency()
  LinkParams link{};
  bool kernel_faults = true;
};

/// Parses the part after "sim:". Throws Error (kInvalidArgument) naming the
/// bad key or value and what is accepted.
SimConfig parse_sim_options(std::string_view options);

class SimDevice final : public Backend, public MechanismFace {
 public:
  explicit SimDevice(const SimConfig& config);
  ~SimDevice() override;

  // Backend
  BackendInfo info() const override;
  MechanismFace* mechanism() override { return this; }
  Engine* engine() override { return engine_.get(); }
  void add_stats(Stats& stats) const override;
  bool kernel_mode_faults() const override { return cpu_->features().kernel_faults; }

  // MechanismFace
  std::optional<std::vector<FrameId>> alloc_frames(std::size_t bytes, std::size_t chunk, OwnerId owner) override;
  void free_frames(std::span<const FrameId> frames) override;
  OwnerId frame_owner(FrameId frame) const override;
  std::vector<FrameId> frames_of(OwnerId owner) const override;
  DeviceMemoryUse device_memory() const override;
  void mirror(std::uint64_t start, std::size_t len, MirrorClient& client) override;
  void unmirror(std::uint64_t start, std::size_t len) override;
  void snapshot(std::uint64_t start, std::span<PageSnapshot> out) override;
  void snapshot_device(std::uint64_t start, std::span<PageSnapshot> out) override;
  std::vector<CpuProtection> cpu_protection(std::uint64_t start, std::uint64_t end) const override;
  std::size_t migrate_to_device(std::span<const std::uint64_t> addrs, std::span<FrameId> frames) override;
  bool frame_trylock(FrameId frame) override;
  void frame_unlock(FrameId frame) override;
  std::uint64_t frame_address(FrameId frame) const override;
  void unmap(std::span<const FrameId> frames) override;
  CopyStatus place(std::uint64_t addr, const std::byte* src, std::size_t len) override;
  void finalize(std::span<const FrameId> frames, std::span<const std::uint8_t> committed) override;
  std::span<const std::byte> frame_bytes(FrameId frame) const override;
  bool cpu_events_pending() const override {
    // Also while the reader is inside a read: an event it is reading has
    // already released the thread that caused it.
    return gpu_->write_gate().is_closed() || cpu_->events_pending();
  }
  bool bind(std::uint64_t start, std::span<const PageSnapshot> pages) override;
  void unbind(std::uint64_t start, std::uint64_t end) override;

  /// Checks that the device's records of its frames agree, for tests at a
  /// quiescent point (no migration, eviction or CPU fault in flight, events
  /// drained): the entries' page <-> frame bijection, every entered frame
  /// allocated in the pool (owner tag set), and every device PTE of the GPU
  /// page table mapping an allocated frame at the page whose entry names it,
  /// never a frame being evicted. Returns one line per disagreement, "" if
  /// they agree. O(frames); takes each component's lock in turn, never two
  /// at once. The runtime's own books are compared by the caller
  /// (tests/runtime/frame_books.hpp).
  std::string check_books() const;

  /// Test hooks (compiled in, off by default).
  FramePool& frame_pool() { return *frames_; }
  CpuMirror& cpu() { return *cpu_; }
  GpuPageTable& page_table() { return *gpu_; }
  const SimConfig& config() const { return config_; }

 private:
  SimConfig config_;
  std::unique_ptr<FramePool> frames_;
  std::unique_ptr<GpuPageTable> gpu_;
  std::unique_ptr<CostModel> cost_;
  std::unique_ptr<CpuMirror> cpu_;
  std::unique_ptr<SimEngine> engine_;
};

}  // namespace xesvm::sim
