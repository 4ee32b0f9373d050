#include "tools/caps.hpp"

#include <string>

namespace xesvm::tools {

// Until Runtime::capabilities() is in the public API, read the same facts
// from describe(): the only place they live today.
BackendCaps backend_caps(const Runtime& rt) {
  BackendCaps b;
  b.device_memory_bytes = rt.stats().device_bytes_total;
  for (auto& [k, v] : rt.describe()) {
    if (k == "backend") b.backend = v;
    if (k == "faces") {
      b.has_engine = v.find("engine") != std::string::npos;
      b.has_mechanism = v.find("mechanism") != std::string::npos;
    }
    if (k == "engine workers") b.engine_workers = static_cast<unsigned>(std::stoul(v));
    if (k == "userfaultfd") b.kernel_mode_faults = v.find("kernel-faults") != std::string::npos;
  }
  if (!b.has_engine) b.engine_workers = 0;
  return b;
}

}  // namespace xesvm::tools
