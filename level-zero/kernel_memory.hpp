// What a kernel's memory accesses go through: the driver's translation of
// device allocations (Xlate), then the runtime's device accessor, which
// walks the GPU page table and raises GPU faults. One KernelMemory per work
// item; its failure is sticky (include/xesvm/ze_kernel.h, "Errors").
//
// Concurrency: a KernelMemory is used by one work item at a time (one
// thread); the accessor behind it belongs to the engine worker running it.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "level-zero/atomic_op.hpp"
#include "level-zero/driver.hpp"

namespace xesvm::ze {

struct KernelMemory {
  DeviceAccessor* acc;
  const Xlate* xlate;
  /// The accessible mappings when the device shares plain system memory
  /// (Device::shared_system), else nullptr.
  const std::vector<std::pair<std::uint64_t, std::uint64_t>>* system;
  bool failed = false;
  std::string error;

  // Runs device_op on the translated address. Plain system memory the device
  // does not mirror (the accessor reports it as no SVM memory) is reached
  // with direct_op instead when the device shares system memory, as the copy
  // engine reaches it.
  template <class DeviceOp, class DirectOp>
  void access(std::uint64_t addr, std::size_t n, DeviceOp&& device_op, DirectOp&& direct_op) {
    const std::uint64_t a = at(addr, n);
    try {
      device_op(a);
    } catch (const Error& e) {
      if (e.code() != Error::Code::kDeviceLost || !system || a != addr || !accessible(*system, addr, n)) throw;
      direct_op(addr);
    }
  }

  // Runs f, turning an exception into the sticky failure. Returns 0 or -1.
  template <class F>
  int guard(F&& f) {
    if (failed) return -1;
    try {
      f();
      return 0;
    } catch (const std::exception& e) {
      failed = true;
      error = e.what();
    } catch (...) {
      failed = true;
      error = "unknown error";
    }
    return -1;
  }
  std::uint64_t at(std::uint64_t addr, std::size_t n) {
    std::uint64_t a = (*xlate)(addr, n);
    if (!a)
      throw Error(Error::Code::kDeviceLost,
                  "access of " + std::to_string(n) + " bytes runs past the end of a device allocation");
    return a;
  }

  /// Copies n bytes from device address src to dst; zeros on failure.
  int read(std::uint64_t src, void* dst, std::size_t n) {
    int r = guard([&] {
      access(
          src, n, [&](std::uint64_t a) { acc->read(a, dst, n); },
          [&](std::uint64_t a) { std::memcpy(dst, reinterpret_cast<const void*>(a), n); });
    });
    if (r) std::memset(dst, 0, n);
    return r;
  }
  /// Copies n bytes from src to device address dst.
  int write(std::uint64_t dst, const void* src, std::size_t n) {
    return guard([&] {
      access(
          dst, n, [&](std::uint64_t a) { acc->write(a, src, n); },
          [&](std::uint64_t a) { std::memcpy(reinterpret_cast<void*>(a), src, n); });
    });
  }
  /// An atomic op on the naturally aligned T at device address addr; *old
  /// gets the previous value (0 after a failure).
  template <class T>
  int atomic(std::uint64_t addr, AtomicOp op, T v, T cmp, T* old) {
    T o = 0;
    int r = guard([&] {
      if (addr % sizeof(T) != 0) {
        throw Error(Error::Code::kDeviceLost, "atomic on an address not aligned to " + std::to_string(sizeof(T)) +
                                                  " bytes; expected a naturally aligned word");
      }
      access(
          addr, sizeof(T),
          [&](std::uint64_t a) {
            if (op == AtomicOp::kAdd) {
              if constexpr (sizeof(T) == 4) {
                o = acc->atomic_add(a, v);
              } else {
                o = acc->atomic_add64(a, v);
              }
              return;
            }
            acc->with_page(a, sizeof(T), Access::kAtomic, [&](std::span<std::byte> s) {
              o = apply_atomic(reinterpret_cast<T*>(s.data()), op, v, cmp);
            });
          },
          [&](std::uint64_t a) { o = apply_atomic(reinterpret_cast<T*>(a), op, v, cmp); });
    });
    if (old) *old = o;
    return r;
  }
};

/// The xesvm_ze_memory of ABI 1 and 2 kernels over m.
xesvm_ze_memory kernel_memory_abi(KernelMemory& m);

}  // namespace xesvm::ze
