// The work-group execution model of the sim device: the work items of one
// group run on the calling engine worker, share one local-memory arena and
// can meet at a barrier.
//
// A kernel that never waits at a barrier runs its items one after the other
// on the worker's own stack. A kernel that does runs each item as a fiber
// (Boost.Context) on a stack of its own: an item that reaches the barrier
// switches back to the group's scheduler, which runs the next item; when
// every item of the group waits at the barrier the scheduler resumes them
// all, in order, until they reach the next barrier or return. Switching is
// cooperative and stays on one thread, so local memory needs no atomics
// and a barrier costs one context switch per item.
//
// Concurrency: a WorkGroupRunner belongs to one thread (one per engine
// worker, thread_local); it is not thread-safe. Groups on different workers
// run concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace xesvm::ze {

/// Bytes of local memory a work group can have (maxSharedLocalMemory).
constexpr std::size_t kMaxLocalMemory = 64u << 10;

class WorkGroupRunner {
 public:
  WorkGroupRunner();
  ~WorkGroupRunner();
  WorkGroupRunner(const WorkGroupRunner&) = delete;
  WorkGroupRunner& operator=(const WorkGroupRunner&) = delete;

  /// The runner of the calling thread.
  static WorkGroupRunner& current();

  /// Runs item(i) for every i in [0, n), the work items of one group. With
  /// barriers, each runs as a fiber and may call barrier(). item must not
  /// throw (it records its own errors). Returns an empty string, or what
  /// went wrong with the group as a whole (its items diverged at a barrier,
  /// or a barrier was called without barriers). REQUIRES: n >= 1, not
  /// called from inside an item.
  std::string run(std::uint32_t n, bool barriers, const std::function<void(std::uint32_t)>& item);

  /// Called from inside an item of run(): returns when every item of the
  /// group has called it (at once if the group's barrier is broken).
  void barrier();

  /// The group's local-memory arena: kMaxLocalMemory bytes, 64-byte aligned,
  /// owned by the runner and reused by every group it runs.
  std::byte* local_memory() { return local_.get(); }

  /// The item running now (the index passed to item), or UINT32_MAX.
  std::uint32_t current_item() const { return current_; }

  /// The stack the running item uses, as [low, high) addresses: its fiber's
  /// stack, or the calling thread's. Its private data lies there.
  std::pair<std::uintptr_t, std::uintptr_t> item_stack() const;

 private:
  struct Fibers;
  struct LocalFree {
    void operator()(std::byte* p) const;
  };
  std::unique_ptr<std::byte, LocalFree> local_;
  std::unique_ptr<Fibers> fibers_;  // the fiber state, while run() runs with barriers
  std::uint32_t current_ = UINT32_MAX;
  bool in_run_ = false;
  bool barrier_broken_ = false;
  std::string error_;
};

/// The barrier function of xesvm_ze_group (ctx: a WorkGroupRunner).
void group_barrier(void* ctx);

}  // namespace xesvm::ze
