// The Xe backend: the runtime's policy face spoken to the upstream Intel Xe
// kernel driver's SVM uAPI (Linux 6.15+; MADVISE and QUERY_MEM_RANGE_ATTRS
// from 6.18) through libdrm.
//
// For Xe the kernel owns the SVM mechanism (GPU faults, migration, eviction
// under VRAM pressure), so this backend has only the policy face:
// mechanism() and engine() return nullptr (kernels need compiled GPU code,
// which the runtime does not produce). At open it creates one long-running,
// fault-mode VM and binds a CPU-address mirror over the whole GPU VA span
// [0, 1 << va_bits): from then on every CPU address is a GPU address. The
// runtime's operations map to ioctls as follows:
//   mirror / unmirror  validation and book-keeping (the whole VA is mirrored
//                      at open); unmirror first prefetches to system memory
//   prefetch           VM_BIND OP_PREFETCH: kDevice -> first VRAM instance,
//                      kSystem -> region 0, kNone -> the MADVISE preference
//   evict              VM_BIND OP_PREFETCH to region 0 (system memory)
//   advise             MADVISE PREFERRED_LOC + ATOMIC (when the kernel has it)
//   device_memory      DEVICE_QUERY MEM_REGIONS (VRAM total / used)
//   wait               WAIT_USER_FENCE on the VM's user fence
// Every VM_BIND carries a DRM_XE_SYNC_TYPE_USER_FENCE sync that makes the
// kernel write a sequence number to a host u64; operations wait for their
// own number before returning, wait() for the last one issued.
//
// Concurrency: every method may be called from any thread. VM_BIND
// submissions are serialized (so user-fence values are written in order);
// the waits and all other ioctls run concurrently.
//
// Errors: every failing ioctl throws xesvm::Error naming the operation, the
// ioctl and the kernel's errno (xe_ioctl.hpp has the errno -> code mapping).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/backend.hpp"
#include "runtime/backends/xe/xe_copy_engine.hpp"
#include "runtime/backends/xe/xe_discovery.hpp"
#include "runtime/backends/xe/xe_ioctl.hpp"

namespace xesvm::xe {

/// PAT index value meaning "choose from the device id" (XeOptions::pat_index).
inline constexpr std::uint16_t kPatIndexAuto = 0xffff;
/// Write-back, 1-way coherent PAT index of Xe2/Xe3 (Lunar Lake, Battlemage,
/// Panther Lake): what IGT's intel_get_pat_idx_wb() returns for graphics 20+.
inline constexpr std::uint16_t kPatIndexWbXe2 = 2;
/// Write-back PAT index of Ponte Vecchio (Xe-HPC).
inline constexpr std::uint16_t kPatIndexWbPvc = 3;

/// The PAT index this backend binds with for a device id: kPatIndexWbPvc for
/// Ponte Vecchio ids, kPatIndexWbXe2 otherwise (the other platforms whose
/// kernels offer CPU address mirroring are Xe2 and later).
std::uint16_t wb_pat_index_for_device(std::uint32_t device_id);

/// Options of an XeBackend.
struct XeOptions {
  std::string node_path;                           ///< shown by info(); "" if not a node
  std::uint16_t pat_index = kPatIndexAuto;         ///< PAT index of every bind
  std::int64_t fence_timeout_ns = 60'000'000'000;  ///< one WAIT_USER_FENCE
  unsigned evict_busy_retries = 3;                 ///< EBUSY retries of an eviction
  /// The largest span of one device copy/fill batch
  /// (XeCopyEngine::Options::max_batch_bytes; tests set less).
  std::uint64_t max_batch_bytes = XeCopyEngine::kMaxBytes;
};

/// What DEVICE_QUERY CONFIG reported.
struct XeDeviceConfig {
  std::uint32_t device_id = 0;  ///< PCI device id (low 16 bits of info[0])
  std::uint32_t revision = 0;   ///< next 8 bits
  std::uint64_t flags = 0;      ///< DRM_XE_QUERY_CONFIG_FLAG_*
  std::uint64_t min_alignment = 0;
  std::uint32_t va_bits = 0;
};

/// One memory region from DEVICE_QUERY MEM_REGIONS.
struct XeMemRegion {
  std::uint16_t mem_class = 0;  ///< DRM_XE_MEM_REGION_CLASS_*
  std::uint16_t instance = 0;
  std::uint32_t min_page_size = 0;
  std::uint64_t total_size = 0;
  std::uint64_t used = 0;  ///< 0 without CAP_PERFMON / CAP_SYS_ADMIN
  std::uint64_t cpu_visible_size = 0;
};

/// The memory attributes of one range (QUERY_MEM_RANGE_ATTRS): what advice
/// the kernel holds for it, not where its pages are.
struct XeRangeAttributes {
  std::uint64_t start = 0;
  std::uint64_t end = 0;
  std::uint32_t preferred_devmem_fd = 0;  ///< DRM_XE_PREFERRED_LOC_* or a device fd
  std::uint32_t migration_policy = 0;
  std::uint32_t atomic = 0;  ///< DRM_XE_ATOMIC_*
  std::uint32_t pat_index = 0;
};

/// The backend. Not copyable.
class XeBackend final : public Backend, public PolicyFace {
 public:
  /// Opens the backend over `io` (a DRM file descriptor of an Xe device, or
  /// a test transport): queries the configuration and memory regions,
  /// creates an LR_MODE | FAULT_MODE VM, binds the CPU-address mirror over
  /// [0, 1 << va_bits) and waits for that bind, then probes for MADVISE.
  /// Throws Error (kUnsupported) when the kernel lacks CPU address mirroring
  /// or fault mode, saying which; Error from ioctl_error() for any other
  /// failing ioctl. Nothing is left behind when it throws.
  XeBackend(std::unique_ptr<XeIoctl> io, XeOptions options);
  ~XeBackend() override;

  // --- Backend -----------------------------------------------------------
  BackendInfo info() const override;
  PolicyFace* policy() override { return this; }
  /// The copy engine, created on first use (DEVICE_QUERY ENGINES, then an
  /// exec queue on the first COPY engine of the VM). Throws Error when the
  /// device has no engine or the queue cannot be created.
  CopyFace* copier() override;
  std::string launch_unsupported_reason() const override;
  void add_stats(Stats& stats) const override;

  // --- PolicyFace --------------------------------------------------------
  /// The whole VA span is mirrored at open, so this only validates and
  /// records [start, start+len): page aligned, non-empty, inside the span,
  /// mapped by the CPU (msync probe), not overlapping an earlier mirror().
  /// Throws Error (kInvalidArgument) otherwise. No ioctl.
  void mirror(std::uint64_t start, std::size_t len) override;
  /// Brings device-resident data of the range back (PREFETCH to region 0,
  /// when the device has VRAM) and forgets the record. REQUIRES: the range
  /// lies inside one mirror() record (kInvalidArgument otherwise).
  void unmirror(std::uint64_t start, std::size_t len) override;
  /// MADVISE PREFERRED_LOC (kDevice -> DEFAULT_DEVICE, kSystem ->
  /// DEFAULT_SYSTEM, kNone -> DEFAULT_DEVICE, the kernel's default) and
  /// MADVISE ATOMIC (atomic: DEVICE, or GLOBAL when preferred is kSystem;
  /// otherwise UNDEFINED, the default). Returns false, issuing nothing, when
  /// the kernel has no MADVISE or read_mostly is asked (Xe has no such
  /// attribute). Throws Error on a bad range or a failing ioctl.
  bool advise(std::uint64_t start, std::size_t len, const Advice& advice) override;
  /// VM_BIND OP_PREFETCH and a wait for its fence. kDevice -> the first VRAM
  /// instance (region 0 on a device without VRAM: maps the pages, moves
  /// nothing); kSystem -> region 0; kNone -> DRM_XE_CONSULT_MEM_ADVISE_PREF_LOC
  /// (kUnsupported without MADVISE). Returns len when the device has VRAM
  /// (the kernel reports no count: on success the whole range is at the
  /// target), 0 when it has none.
  std::uint64_t prefetch(std::uint64_t start, std::size_t len, Location where) override;
  /// PREFETCH to region 0. pages_evicted = len / 4096 on success; EBUSY is
  /// retried evict_busy_retries times, then reported as pages_skipped. A
  /// device without VRAM has nothing to evict: {0, 0, 0}, no ioctl.
  EvictResult evict(std::uint64_t start, std::size_t len) override;
  /// The Xe uAPI has no per-page residency query (QUERY_MEM_RANGE_ATTRS
  /// reports advice, not placement). What the kernel can say is used:
  /// without VRAM every byte is in system memory ({0, len, 0}); when
  /// MEM_REGIONS reports 0 bytes of VRAM used and this process may read
  /// `used` (CAP_PERFMON or CAP_SYS_ADMIN), likewise. Otherwise the bytes are
  /// unknown: {0, 0, len}, never reported as 0 device bytes.
  Residency residency(std::uint64_t start, std::size_t len) override;
  /// Sum of the VRAM regions' total_size and used (fresh DEVICE_QUERY);
  /// high_water is the largest `used` seen. Throws Error if the query fails.
  DeviceMemoryUse device_memory() override;
  /// Waits for the user fence of the last VM_BIND issued. Throws Error
  /// (kBusy) on timeout, or the ioctl's error.
  void wait() override;

  // --- Xe specifics ------------------------------------------------------
  const XeDeviceConfig& config() const noexcept { return config_; }
  /// Memory regions as reported at open.
  const std::vector<XeMemRegion>& regions() const noexcept { return regions_; }
  /// A fresh DEVICE_QUERY MEM_REGIONS. Throws Error on failure.
  std::vector<XeMemRegion> query_mem_regions();
  std::uint32_t vm_id() const noexcept { return vm_id_; }
  std::uint16_t pat_index() const noexcept { return pat_index_; }
  /// One past the last mirrored GPU address: 1 << va_bits.
  std::uint64_t mirror_end() const noexcept { return mirror_end_; }
  bool has_vram() const noexcept { return vram_instance_ >= 0; }
  /// The region instance kDevice prefetches to (-1 without VRAM).
  int vram_instance() const noexcept { return vram_instance_; }
  /// True when the kernel answered the MADVISE / QUERY_MEM_RANGE_ATTRS probe.
  bool has_madvise() const noexcept { return has_madvise_.load(std::memory_order_relaxed); }
  /// The host address the kernel writes user-fence values to (tests simulate
  /// those writes through it).
  std::uint64_t fence_address() const noexcept;
  /// The fence value of the last VM_BIND issued.
  std::uint64_t last_fence_value() const noexcept { return last_issued_.load(std::memory_order_acquire); }

  /// QUERY_MEM_RANGE_ATTRS over [start, start+len): two-call protocol,
  /// restarted when the kernel answers ENOSPC (ranges changed in between).
  /// Throws Error (kUnsupported) without the ioctl, (kBusy) after 16
  /// restarts, or the ioctl's error.
  std::vector<XeRangeAttributes> range_attributes(std::uint64_t start, std::size_t len);
  /// The engines the device lists (DEVICE_QUERY ENGINES). Throws Error.
  std::vector<XeCopyEngine::EngineId> query_engines();
  /// True when MEM_REGIONS' `used` is meaningful for this process.
  bool can_read_vram_used() const noexcept { return can_read_used_; }

 private:
  void open_sequence();
  void query_config();
  std::vector<std::byte> device_query(std::uint32_t query, std::string_view what);
  std::vector<XeMemRegion> parse_regions(const std::vector<std::byte>& data) const;
  void probe_madvise();
  void destroy_vm() noexcept;
  void check_range(std::string_view op, std::uint64_t start, std::size_t len) const;
  /// Submits one bind op with a user-fence signal. Returns 0 and sets
  /// *seq_out to its fence value, or the errno of VM_BIND.
  int try_submit_bind(std::uint32_t op, std::uint32_t flags, std::uint64_t addr, std::uint64_t range,
                      std::uint32_t region, std::uint64_t* seq_out);
  /// try_submit_bind(), throwing ioctl_error() naming `what` on failure.
  std::uint64_t submit_bind(std::uint32_t op, std::uint32_t flags, std::uint64_t addr, std::uint64_t range,
                            std::uint32_t region, std::string_view what);
  void wait_fence(std::uint64_t value, std::string_view what);
  int madvise_call(std::uint64_t start, std::uint64_t len, std::uint32_t type, std::uint32_t value,
                   std::string_view what);

  std::unique_ptr<XeIoctl> io_;
  std::mutex copier_mutex_;
  std::unique_ptr<XeCopyEngine> copier_;  // guarded by copier_mutex_ until set
  bool can_read_used_ = false;
  XeOptions options_;
  XeDeviceConfig config_;
  std::vector<XeMemRegion> regions_;
  std::uint32_t vm_id_ = 0;
  bool vm_created_ = false;
  std::uint16_t pat_index_ = kPatIndexWbXe2;
  std::uint64_t mirror_end_ = 0;
  int vram_instance_ = -1;
  std::atomic<bool> has_madvise_{false};
  std::string madvise_probe_note_;

  // User fence: the kernel writes completed bind sequence numbers here.
  alignas(8) std::atomic<std::uint64_t> fence_{0};
  std::mutex bind_mutex_;       // serializes VM_BIND submission
  std::uint64_t next_seq_ = 0;  // guarded by bind_mutex_
  std::atomic<std::uint64_t> last_issued_{0};

  std::mutex mirrors_mutex_;
  std::map<std::uint64_t, std::uint64_t> mirrors_;  // start -> end, guarded by mirrors_mutex_

  // Counters.
  std::atomic<std::uint64_t> prefetches_to_device_{0};
  std::atomic<std::uint64_t> bytes_to_device_{0};
  std::atomic<std::uint64_t> prefetches_to_system_{0};
  std::atomic<std::uint64_t> bytes_to_system_{0};
  std::atomic<std::uint64_t> evictions_{0};
  std::atomic<std::uint64_t> pages_evicted_{0};
  std::atomic<std::uint64_t> pages_evict_skipped_{0};
  std::atomic<std::uint64_t> vram_total_{0};
  std::atomic<std::uint64_t> vram_used_{0};
  std::atomic<std::uint64_t> vram_high_water_{0};
};

/// Opens the Xe backend for the URI forms "xe:" (path_or_empty empty: the
/// first render node whose DRM driver is "xe") and "xe:/dev/dri/renderD128"
/// (that node). Throws Error (kUnsupported) when there is no such node,
/// saying what was looked for and what was found; or XeBackend's errors.
std::unique_ptr<Backend> open_xe_backend(std::string_view path_or_empty);

/// open_xe_backend() searching `dri_dir` instead of /dev/dri, with options.
std::unique_ptr<Backend> open_xe_backend(std::string_view path_or_empty, std::string_view dri_dir, XeOptions options);

}  // namespace xesvm::xe

namespace xesvm {
/// The factory the URI dispatcher calls (see xe::open_xe_backend).
using xe::open_xe_backend;
}  // namespace xesvm
