// Opening a backend by URI.
#include "runtime/backend.hpp"
#include "runtime/backends/sim/sim_device.hpp"

#if defined(XESVM_HAVE_XE) && __has_include("runtime/backends/xe/xe_backend.hpp")
#include "runtime/backends/xe/xe_backend.hpp"
#define XESVM_XE_AVAILABLE 1
#endif

namespace xesvm {

std::unique_ptr<Backend> open_backend(std::string_view uri) {
  const std::size_t colon = uri.find(':');
  const std::string_view scheme = uri.substr(0, colon);
  const std::string_view rest = colon == std::string_view::npos ? std::string_view{} : uri.substr(colon + 1);
  if (scheme == "sim") return std::make_unique<sim::SimDevice>(sim::parse_sim_options(rest));
  if (scheme == "xe") {
#ifdef XESVM_XE_AVAILABLE
    return open_xe_backend(rest);
#else
    throw Error(Error::Code::kUnsupported, "backend 'xe' is not built into this library");
#endif
  }
  throw Error(Error::Code::kInvalidArgument,
              "unknown backend URI '" + std::string(uri) +
                  "'; expected 'sim:[vram=SIZE,workers=N,...]', 'xe:' or 'xe:/dev/dri/renderDNNN'");
}

}  // namespace xesvm
