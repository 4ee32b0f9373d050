// Finding an Xe render node.
//
// discover_render_nodes() lists the DRM render nodes of a machine (through
// libdrm's drmGetDevices2() and, so that nothing libdrm filters out is
// missed, a scan of the directory for renderD* entries), opens each one and
// asks the driver's name with drmGetVersion(). The result records everything
// that was looked at, so that "no Xe device" can say exactly what was found
// instead (another driver, a node that could not be opened, no /dev/dri).
//
// Concurrency: free functions without shared state; call from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace xesvm::xe {

/// The DRM driver name of the Xe kernel driver.
inline constexpr std::string_view kXeDriverName = "xe";

/// One render node that was looked at.
struct RenderNodeProbe {
  std::string path;     ///< e.g. "/dev/dri/renderD128"
  std::string driver;   ///< drmGetVersion() name ("xe", "i915", ...); empty if unknown
  std::string problem;  ///< why the driver is unknown (open or DRM_IOCTL_VERSION failure)
};

/// Everything a discovery looked at.
struct Discovery {
  std::string dri_dir;  ///< the directory searched
  bool dir_exists = false;
  std::vector<RenderNodeProbe> nodes;  ///< in path order
  /// The first node whose driver is "xe", if any.
  std::optional<std::string> first_xe() const;
  /// One line saying what was looked for and what was found, e.g.
  /// "looked for a render node with DRM driver \"xe\" in /dev/dri: found
  /// /dev/dri/renderD128 (driver i915)" or "...: /dev/dri does not exist".
  std::string describe() const;
};

/// Probes the render nodes under `dri_dir`. Never throws for a missing or
/// unreadable directory or node: such facts are recorded in the result.
/// drmGetDevices2() is consulted only when dri_dir is "/dev/dri" (the only
/// directory libdrm knows).
Discovery discover_render_nodes(std::string_view dri_dir = "/dev/dri");

/// Probes one node: opens it and reads the driver name.
RenderNodeProbe probe_render_node(const std::string& path);

}  // namespace xesvm::xe
