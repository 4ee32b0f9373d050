// What the tool needs to know about a backend, read from the runtime.
#pragma once

#include <cstdint>
#include <string>

#include "xesvm/xesvm.hpp"

namespace xesvm::tools {

struct BackendCaps {
  std::string backend;              ///< "sim" or "xe"
  bool has_engine = false;          ///< launch() runs device work
  unsigned engine_workers = 0;      ///< 0 without an engine
  bool has_mechanism = false;       ///< memory management in user space
  bool kernel_mode_faults = false;  ///< syscalls on device-resident memory migrate it back
  std::uint64_t device_memory_bytes = 0;
};

/// The capabilities of rt's backend.
BackendCaps backend_caps(const Runtime& rt);

}  // namespace xesvm::tools
