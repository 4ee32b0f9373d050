// RuntimeImpl: the state behind xesvm::Runtime (see include/xesvm/xesvm.hpp).
//
// Exposed to in-tree users (tests, tools, the Level Zero driver) that need
// the backend or the user-space driver underneath; applications use Runtime.
// Thread-safe like Runtime. Not copyable.
#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>

#include "runtime/backend.hpp"
#include "runtime/kernel_pressure.hpp"
#include "runtime/observer.hpp"
#include "runtime/svm_manager.hpp"
#include "xesvm/xesvm.hpp"

namespace xesvm {

class RuntimeImpl {
 public:
  RuntimeImpl(std::string_view uri, const RuntimeOptions& options);
  ~RuntimeImpl();
  RuntimeImpl(const RuntimeImpl&) = delete;
  RuntimeImpl& operator=(const RuntimeImpl&) = delete;

  void* alloc_shared(std::size_t bytes, std::size_t alignment);
  void free(void* ptr);
  void mirror(void* ptr, std::size_t bytes);
  void unmirror(void* ptr, std::size_t bytes);
  void discard(void* ptr, std::size_t bytes);
  bool advise(void* ptr, std::size_t bytes, const Advice& advice);
  std::uint64_t prefetch(void* ptr, std::size_t bytes, Location where);
  EvictResult evict(void* ptr, std::size_t bytes);
  Residency residency(const void* ptr, std::size_t bytes);
  void launch(std::uint64_t global_size, const Kernel& kernel);
  Completion copy(void* dst, const void* src, std::size_t bytes);
  Completion fill(void* dst, const void* pattern, std::size_t pattern_size, std::size_t bytes);
  /// The kernel-driver pressure policy, or nullptr with a user-space driver.
  KernelPressure* kernel_pressure() { return kernel_pressure_.get(); }
  Stats stats() const;
  Capabilities capabilities() const;
  std::vector<std::pair<std::string, std::string>> describe() const;

  Backend& backend() { return *backend_; }
  /// The user-space driver, or nullptr when the kernel is the driver.
  SvmManager* manager() { return manager_.get(); }
  PolicyFace& policy() { return *policy_; }

 private:
  struct Allocation {
    std::uint64_t base = 0;
    std::size_t len = 0;
  };
  static std::pair<std::uint64_t, std::size_t> whole_pages(const void* p, std::size_t n, const char* what);
  static std::pair<std::uint64_t, std::size_t> covering_pages(const void* p, std::size_t n, const char* what);
  // The launch fence: calls that end a mirror (unmirror, discard, free) wait
  // until every kernel launched before them has finished, so no page of the
  // region is taken from under device work that is still running. A kernel
  // launched later finds the region gone (a fatal GPU fault). Throws if
  // called from inside a kernel of this runtime (it would wait for itself).
  void wait_for_running_kernels(const char* what);

  // XESVM_STATS / XESVM_TRACE (runtime/observer.hpp): read before the
  // backend opens, so a bad value fails first; finished first on teardown.
  std::unique_ptr<Observer> observer_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<SvmManager> manager_;
  std::unique_ptr<KernelPressure> kernel_pressure_;  // kernel-driver backends only
  PolicyFace* policy_ = nullptr;
  std::mutex mu_;
  std::map<std::uint64_t, Allocation> allocations_;
  std::mutex launch_mu_;
  std::condition_variable launch_cv_;
  std::uint64_t next_launch_ = 0;
  std::set<std::uint64_t> running_launches_;
};

}  // namespace xesvm
