// What every Level Zero entry point of the driver shares: turning exceptions
// into result codes, the argument checks, handle lookup through the registry
// of live handles, and the helpers that fill the application's output
// structs. Internal to the driver (api_*.cpp).
//
// The entry points live in one file per object kind:
//   api_device.cpp    driver and device queries
//   api_memory.cpp    contexts, USM allocations, residency
//   api_commands.cpp  command queues and command lists (every Append*)
//   api_sync.cpp      event pools, events, fences
//   api_module.cpp    modules, build logs, kernels
//   api_tables.cpp    the table getters the loader calls, and the answers of
//                     entry points the driver does not provide
// Each file defines its entry points file-locally and hands them to the
// loader through fill(table) below, so no entry point is an exported symbol
// that could bind to the loader's function of the same name.
//
// Contract of every entry point: arguments are checked in the order the
// validation layer checks them (handles, then pointers, then enumerations,
// then sizes); a NULL handle is ZE_RESULT_ERROR_INVALID_NULL_HANDLE, a handle
// that is not a live object of the expected kind is
// ZE_RESULT_ERROR_INVALID_ARGUMENT; a create call that fails leaves NULL in
// its output handle; no C++ exception leaves the library. With
// XESVM_ZE_DEBUG=1 every error is logged with its reason.
#pragma once

#include <level_zero/ze_ddi.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <tuple>

#include "level-zero/driver.hpp"

namespace xesvm::ze::api {

constexpr std::uint32_t kNumQueues = 4;          ///< queues of the one queue group
constexpr std::size_t kMaxFillPattern = 128;     ///< maxMemoryFillPatternSize
constexpr std::uint32_t kMaxGroupSize = 1024;    ///< work items per group
constexpr std::uint32_t kDriverVersion = 0x100;  ///< 0.1.0

/// True if XESVM_ZE_DEBUG=1 (read once).
bool debug_log();

/// Runs body, the implementation of entry point fn, and returns its result.
/// A ZeError becomes its code, a runtime Error its Level Zero code,
/// bad_alloc OUT_OF_HOST_MEMORY, anything else UNKNOWN; the reason is logged
/// under XESVM_ZE_DEBUG=1.
template <class F>
ze_result_t guard(const char* fn, F&& body) noexcept {
  try {
    return body();
  } catch (const ZeError& e) {
    if (debug_log()) log(std::string(fn) + ": " + e.what);
    return e.code;
  } catch (const Error& e) {
    if (debug_log()) log(std::string(fn) + ": " + e.what());
    return to_result(e);
  } catch (const std::bad_alloc&) {
    return ZE_RESULT_ERROR_OUT_OF_HOST_MEMORY;
  } catch (...) {
    return ZE_RESULT_ERROR_UNKNOWN;
  }
}

/// guard() for an entry point that creates something: on any failure *out
/// (when out is not NULL) is set to NULL, so that a caller never keeps an
/// uninitialised value that looks like a handle.
template <class T, class F>
ze_result_t create(const char* fn, T** out, F&& body) noexcept {
  const ze_result_t r = guard(fn, std::forward<F>(body));
  if (r != ZE_RESULT_SUCCESS && out) *out = nullptr;
  return r;
}

/// Throws INVALID_NULL_POINTER naming what if p is NULL.
inline void need(const void* p, const char* what) {
  if (!p) fail(ZE_RESULT_ERROR_INVALID_NULL_POINTER, std::string(what) + " is NULL");
}

/// Throws INVALID_ENUMERATION naming what unless v <= max (the largest value
/// or flag combination the 1.4 specification defines).
inline void check_enum(std::uint64_t v, std::uint64_t max, const char* what) {
  if (v > max) {
    fail(ZE_RESULT_ERROR_INVALID_ENUMERATION, std::string(what) + " = " + std::to_string(v) +
                                                  " is not a value the 1.4 specification defines (at most " +
                                                  std::to_string(max) + ")");
  }
}

/// The live object of type T behind handle h. Throws INVALID_NULL_HANDLE if
/// h is NULL, INVALID_ARGUMENT if h is not a live handle of T's kind
/// (destroyed, of another kind, or never a handle). Never dereferences h
/// before the registry has vouched for it.
template <class T>
T& live(typename T::handle_type h, const char* what) {
  if (!h) fail(ZE_RESULT_ERROR_INVALID_NULL_HANDLE, std::string(what) + " is NULL");
  if (!handles::is(h, T::kKind)) {
    fail(ZE_RESULT_ERROR_INVALID_ARGUMENT, std::string(what) + " is not a live handle of the expected kind");
  }
  return *static_cast<T*>(h);
}

/// The driver behind hDriver (live<Driver>).
inline Driver& driver(ze_driver_handle_t h) { return live<Driver>(h, "hDriver"); }

/// live() for an optional handle: nullptr for NULL.
template <class T>
T* optional(typename T::handle_type h, const char* what) {
  return h ? &live<T>(h, what) : nullptr;
}

/// Copies v into *out keeping the caller's stype and pNext.
template <class T>
void put(T* out, T v) {
  v.stype = out->stype;
  v.pNext = out->pNext;
  *out = v;
}

/// The Destroy entry points: deletes the object behind h, unless in_use(it)
/// (then HANDLE_OBJECT_IN_USE, saying why).
template <class T, class InUse>
ze_result_t destroy(const char* fn, typename T::handle_type h, const char* what, InUse in_use, const char* why) {
  return guard(fn, [&]() -> ze_result_t {
    T& obj = live<T>(h, what);
    if (in_use(obj)) fail(ZE_RESULT_ERROR_HANDLE_OBJECT_IN_USE, why);
    delete &obj;
    return ZE_RESULT_SUCCESS;
  });
}
template <class T>
ze_result_t destroy(const char* fn, typename T::handle_type h, const char* what) {
  return destroy<T>(
      fn, h, what, [](const T&) { return false; }, "");
}

/// The Get*Properties queries: *p = make(object behind h), keeping the
/// caller's stype and pNext.
template <class T, class P, class Make>
ze_result_t query(const char* fn, typename T::handle_type h, const char* what, P* p, Make make) {
  return guard(fn, [&]() -> ze_result_t {
    T& obj = live<T>(h, what);
    need(p, "the properties pointer");
    put(p, make(obj));
    return ZE_RESULT_SUCCESS;
  });
}

/// The count-then-fill protocol of the Get* queries: with *count == 0 or no
/// array, *count becomes avail; otherwise min(*count, avail) entries are
/// filled by fill(entry, index) and *count says how many.
template <class T, class F>
ze_result_t count_fill(std::uint32_t* count, T* out, std::uint32_t avail, F&& fill) {
  need(count, "pCount");
  if (*count == 0 || !out) {
    *count = avail;
    return ZE_RESULT_SUCCESS;
  }
  const std::uint32_t n = std::min(*count, avail);
  for (std::uint32_t i = 0; i < n; ++i) fill(out[i], i);
  *count = n;
  return ZE_RESULT_SUCCESS;
}

/// The size-then-copy protocol of string queries (zeKernelGetName,
/// zeModuleBuildLogGetString): without a buffer *size becomes the length
/// including the terminator; with one, at most *size - 1 characters and a
/// terminator are written (*size == 0 is INVALID_SIZE).
ze_result_t copy_string(const std::string& s, size_t* size, char* out);

/// An entry point the driver does not provide, for any signature: returns
/// ZE_RESULT_ERROR_UNSUPPORTED_FEATURE and touches nothing.
template <class... A>
ze_result_t ZE_APICALL unsupported(A...) {
  return ZE_RESULT_ERROR_UNSUPPORTED_FEATURE;
}

/// unsupported() for an entry point whose last parameter is where it would
/// put what it creates (a handle or a pointer): that is set to NULL.
template <class... A>
ze_result_t ZE_APICALL unsupported_create(A... a) {
  auto* out = std::get<sizeof...(A) - 1>(std::tie(a...));
  if (out) *out = nullptr;
  return ZE_RESULT_ERROR_UNSUPPORTED_FEATURE;
}

// The tables, each filled whole (every entry: provided or unsupported) by
// the file of its object kind.
void fill(ze_global_dditable_t&t), fill(ze_driver_dditable_t&t), fill(ze_device_dditable_t&t);    // api_device
void fill(ze_context_dditable_t&t), fill(ze_mem_dditable_t&t);                                    // api_memory
void fill(ze_command_queue_dditable_t&t), fill(ze_command_list_dditable_t&t);                     // api_commands
void fill(ze_event_pool_dditable_t&t), fill(ze_event_dditable_t&t), fill(ze_fence_dditable_t&t);  // api_sync
void fill(ze_module_dditable_t&t), fill(ze_module_build_log_dditable_t&t), fill(ze_kernel_dditable_t&t);
void fill(ze_image_dditable_t&t), fill(ze_sampler_dditable_t&t), fill(ze_physical_mem_dditable_t&t),
    fill(ze_virtual_mem_dditable_t&t);  // api_tables: features not provided

}  // namespace xesvm::ze::api
