// The read-modify-write atomics kernels can do on device, local and
// private memory, and how each is applied to a word of host memory.
#pragma once

#include <bit>
#include <cstdint>
#include <type_traits>

namespace xesvm::ze {

/// Read-modify-write operations of KernelMemory::atomic.
/// kFAdd adds the IEEE value of the word's bits (float for 4 bytes, double
/// for 8): the float atomics.
enum class AtomicOp : std::uint8_t {
  kAdd,
  kSub,
  kXchg,
  kCmpXchg,
  kAnd,
  kOr,
  kXor,
  kMinS,
  kMaxS,
  kMinU,
  kMaxU,
  kFAdd,
};

/// Applies op to the naturally aligned T at p (a plain CPU atomic) and
/// returns the old value. For kCmpXchg, v is stored if *p == cmp.
template <class T>
T apply_atomic(T* p, AtomicOp op, T v, T cmp) {
  using S = std::make_signed_t<T>;
  switch (op) {
    case AtomicOp::kAdd:
      return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);
    case AtomicOp::kSub:
      return __atomic_fetch_sub(p, v, __ATOMIC_SEQ_CST);
    case AtomicOp::kXchg:
      return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST);
    case AtomicOp::kCmpXchg:
      __atomic_compare_exchange_n(p, &cmp, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
      return cmp;
    case AtomicOp::kAnd:
      return __atomic_fetch_and(p, v, __ATOMIC_SEQ_CST);
    case AtomicOp::kOr:
      return __atomic_fetch_or(p, v, __ATOMIC_SEQ_CST);
    case AtomicOp::kXor:
      return __atomic_fetch_xor(p, v, __ATOMIC_SEQ_CST);
    default:
      break;
  }
  T old = __atomic_load_n(p, __ATOMIC_SEQ_CST);
  for (;;) {
    T want = old;
    switch (op) {
      case AtomicOp::kMinS:
        want = static_cast<S>(v) < static_cast<S>(old) ? v : old;
        break;
      case AtomicOp::kMaxS:
        want = static_cast<S>(v) > static_cast<S>(old) ? v : old;
        break;
      case AtomicOp::kMinU:
        want = v < old ? v : old;
        break;
      case AtomicOp::kFAdd:
        if constexpr (sizeof(T) == 4) {
          want = std::bit_cast<T>(std::bit_cast<float>(old) + std::bit_cast<float>(v));
        } else if constexpr (sizeof(T) == 8) {
          want = std::bit_cast<T>(std::bit_cast<double>(old) + std::bit_cast<double>(v));
        }
        break;
      default:
        want = v > old ? v : old;
        break;
    }
    if (__atomic_compare_exchange_n(p, &old, want, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) return old;
  }
}

}  // namespace xesvm::ze
