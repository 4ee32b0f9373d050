// Device copy and fill on a backend with an execution engine (the sim).
//
// engine_copy() and engine_fill() run the operation as a kernel on the
// engine, on a thread of their own so the caller gets a DeviceWork at once:
// one work item per 4 KiB of the span, every access through the
// DeviceAccessor, so GPU faults migrate pages exactly as kernels' accesses
// do. A fault at memory that is not SVM is Error (kDeviceLost) naming the
// address (the engine's message), delivered by DeviceWork::wait().
//
// check_device_span() is the validation every backend's copy and fill share:
// it runs before anything is submitted.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "runtime/backend.hpp"

namespace xesvm {

/// Starts copying n bytes from src to dst on `engine`. REQUIRES: the spans
/// do not overlap; n > 0. The returned work joins its thread when destroyed.
std::unique_ptr<DeviceWork> engine_copy(Engine& engine, std::uint64_t dst, std::uint64_t src, std::uint64_t n);
/// Starts filling n bytes at dst with the pattern's first pattern_size bytes.
/// REQUIRES: dst and n multiples of pattern_size (1, 2 or 4); n > 0.
std::unique_ptr<DeviceWork> engine_fill(Engine& engine, std::uint64_t dst, std::uint32_t pattern, unsigned pattern_size,
                                        std::uint64_t n);

/// Throws Error (kInvalidArgument) naming `what` and the first page of
/// [start, start+n) that the CPU has no mapping for. Makes no access.
void check_cpu_mapped(std::string_view what, std::uint64_t start, std::uint64_t n);

}  // namespace xesvm
