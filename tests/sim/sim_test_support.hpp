// Helpers shared by the sim unit tests: a rig of table, pool, cost model and
// engine, fake fault handlers, and page-aligned CPU memory.
#pragma once

#include <sys/mman.h>

#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "runtime/backends/sim/engine.hpp"

namespace xesvm::sim::test {

inline std::uint64_t page_of(std::uint64_t addr) { return addr & ~std::uint64_t{kPageSize - 1}; }

struct SimRig {
  explicit SimRig(unsigned workers, std::size_t vram = 4u << 20) : pool(vram), engine(table, pool, cost, workers) {}
  GpuPageTable table;
  FramePool pool;
  CostModel cost;
  SimEngine engine;  // last: stops before the others go
};

/// Maps the faulting page as writable system memory (memory the test owns).
struct BindSystemOnFault : GpuFaultHandler {
  explicit BindSystemOnFault(GpuPageTable& t) : table(t) {}
  bool handle_gpu_fault(std::uint64_t addr, Access access) override {
    calls.fetch_add(1);
    last_access.store(access);
    const PageSnapshot snap{PagePlace::kSystem, true, kNoFrame};
    table.bind(page_of(addr), std::span<const PageSnapshot>(&snap, 1));
    return true;
  }
  GpuPageTable& table;
  std::atomic<int> calls{0};
  std::atomic<Access> last_access{Access::kRead};
};

/// Treats every fault as fatal (the address is not SVM memory).
struct RefuseFaults : GpuFaultHandler {
  bool handle_gpu_fault(std::uint64_t addr, Access) override {
    calls.fetch_add(1);
    last_addr.store(addr);
    return false;
  }
  std::atomic<int> calls{0};
  std::atomic<std::uint64_t> last_addr{0};
};

/// Page-aligned, zeroed anonymous CPU memory, unmapped on destruction.
class PageBuffer {
 public:
  explicit PageBuffer(std::size_t pages) : len_(pages * kPageSize) {
    void* p = ::mmap(nullptr, len_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::runtime_error("mmap failed");
    base_ = static_cast<unsigned char*>(p);
  }
  ~PageBuffer() { ::munmap(base_, len_); }
  PageBuffer(const PageBuffer&) = delete;
  PageBuffer& operator=(const PageBuffer&) = delete;
  unsigned char* bytes() { return base_; }
  std::uint64_t addr() const { return reinterpret_cast<std::uint64_t>(base_); }

 private:
  std::size_t len_;
  unsigned char* base_;
};

}  // namespace xesvm::sim::test
