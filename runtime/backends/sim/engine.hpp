// SimEngine: the sim GPU's execution engine.
//
// A fixed set of worker threads, started once and parked between launches,
// runs kernels. launch(n, kernel) cuts [0, n) into one contiguous slice per
// worker (worker w gets a contiguous block, for locality) and every worker
// calls kernel(WorkItem{gid, n, w}, accessor) for each id of its slice with
// its own DeviceAccessor. launch() returns when every worker is done and
// rethrows the first exception a work item threw; after such an exception the
// other workers stop at their next work item.
//
// The accessor's rules (every DeviceAccessor call):
//  - An access is split at 4 KiB page boundaries; each page is looked up in
//    the GpuPageTable under its shared lock, which sets the PTE's accessed
//    bit (GpuPageTable::with_access, read by the runtime's CLOCK sweep).
//  - kDevice PTE (writable, if the access writes): the bytes are copied
//    from/to FramePool::data(frame) while the shared lock is held, so no zap,
//    and hence no free of the frame, can overlap the copy. Charged to the
//    cost model as local traffic. Atomics use std::atomic_ref on the frame.
//  - kSystem PTE (writable, if the access writes): the lock is dropped and
//    the CPU address is reached with process_vm_readv/process_vm_writev on
//    this process, never by dereferencing it: the application may have
//    unmapped it meanwhile, and a write must never land in a mapping that
//    replaced the original. A short transfer or EFAULT is a GPU fault. If the
//    table's generation() moved between the lookup and the transfer (a PTE
//    was torn down meanwhile) the page is accessed again. Charged to the
//    link, one transfer per page access.
//  - Atomics on system pages take a striped mutex (by page) around the read
//    and the write-back: they are atomic among GPU work items, not with
//    respect to the CPU, like PCIe without platform atomics. Atomics must be
//    naturally aligned (else Error(kInvalidArgument)).
//  - kNone, a write through a read-only PTE, or a faulting transfer: the
//    GpuFaultHandler is called (no engine or table lock held) with the page
//    address; true retries the page, false (or no handler set) throws
//    Error(kDeviceLost) naming the address. One page is attempted at most
//    kMaxPageRetries times (fault retries and generation retries together),
//    then Error(kBusy) is thrown: the engine never spins forever.
//  - with_page(addr, n, access, fn): [addr, addr+n) must lie in one page.
//    On a device page fn sees the frame bytes under the shared lock; on a
//    system page fn sees a per-worker bounce buffer that was filled with
//    process_vm_readv and, for kWrite/kAtomic, is written back with
//    process_vm_writev after fn returns. If the write-back faults, the page
//    is read again and fn runs again on the fresh bytes. kAtomic also holds
//    the page's atomic stripe (system pages), so it is atomic with other
//    kAtomic with_page calls and atomic_add on that system page. fn must not
//    use the accessor (it may run under the table's shared lock and owns the
//    bounce buffer).
//
// Counters (device_bytes, system_bytes, faults) and the cost-model charges
// of a launch are published when each worker finishes its slice.
//
// Concurrency: launch() may be called from any thread; concurrent launches
// run one after another. launch() from inside a kernel of the same engine
// throws Error(kInvalidArgument) (it would deadlock). set_fault_handler()
// REQUIRES that no kernel runs. The referenced table, pool and cost model
// must outlive the engine.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "runtime/backend.hpp"
#include "runtime/backends/sim/cost_model.hpp"
#include "runtime/backends/sim/frame_pool.hpp"
#include "runtime/backends/sim/gpu_page_table.hpp"

namespace xesvm::sim {

class SimEngine final : public Engine {
 public:
  /// How often one page access is retried after faults before Error(kBusy).
  static constexpr unsigned kMaxPageRetries = 10000;

  /// Starts `workers` worker threads. Throws Error(kInvalidArgument) if
  /// workers == 0.
  SimEngine(GpuPageTable& table, FramePool& pool, CostModel& cost, unsigned workers);
  /// Stops and joins the workers. REQUIRES: no launch() in progress.
  ~SimEngine() override;

  void set_fault_handler(GpuFaultHandler* handler) override;
  /// Runs kernel over [0, global_size) and waits. Returns at once for
  /// global_size 0. Throws Error(kInvalidArgument) for an empty kernel or a
  /// launch from inside a kernel of this engine; rethrows the first
  /// exception of a work item (Error(kDeviceLost) for a fatal GPU fault).
  void launch(std::uint64_t global_size, const Kernel& kernel) override;
  unsigned workers() const override { return workers_; }
  /// The table's accessed bits, which every access through a PTE sets.
  AccessedBits* accessed_bits() override { return &table_; }

  /// Bytes the kernels moved to/from device frames and system pages.
  std::uint64_t device_bytes() const noexcept { return device_bytes_.load(std::memory_order_relaxed); }
  std::uint64_t system_bytes() const noexcept { return system_bytes_.load(std::memory_order_relaxed); }
  /// GPU faults raised (fault-handler calls and fatal faults).
  std::uint64_t faults() const noexcept { return faults_.load(std::memory_order_relaxed); }

 private:
  class Accessor;  // the DeviceAccessor of one worker (engine.cpp)
  static constexpr std::size_t kAtomicStripes = 64;

  void worker_main(unsigned w);

  GpuPageTable& table_;
  FramePool& pool_;
  CostModel& cost_;
  const unsigned workers_;
  std::atomic<GpuFaultHandler*> handler_{nullptr};
  std::array<std::mutex, kAtomicStripes> atomic_stripes_;

  std::atomic<std::uint64_t> device_bytes_{0};
  std::atomic<std::uint64_t> system_bytes_{0};
  std::atomic<std::uint64_t> faults_{0};

  std::mutex launch_mu_;  // serializes launch()
  std::mutex mu_;         // guards the launch state below
  // One per worker: a launch of fewer work items than workers wakes only
  // the workers that get one (a 1-item launch, a GPU fault's typical
  // kernel here, wakes one thread, not all).
  std::unique_ptr<std::condition_variable[]> work_cvs_;
  std::condition_variable done_cv_;
  std::uint64_t epoch_ = 0;
  unsigned active_ = 0;  // workers that take part in the current epoch
  bool stop_ = false;
  const Kernel* kernel_ = nullptr;
  std::uint64_t global_size_ = 0;
  unsigned running_ = 0;
  std::exception_ptr error_;
  std::atomic<bool> abort_{false};

  std::vector<std::jthread> threads_;  // last: joined before the state above dies
};

}  // namespace xesvm::sim
