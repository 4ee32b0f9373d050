// Render-node discovery through libdrm.
#include "runtime/backends/xe/xe_discovery.hpp"

#include <dirent.h>
#include <sys/stat.h>
#include <xf86drm.h>

#include <algorithm>
#include <cerrno>
#include <memory>

#include "runtime/backends/xe/xe_ioctl.hpp"

namespace xesvm::xe {
namespace {

struct VersionDeleter {
  void operator()(drmVersionPtr v) const { drmFreeVersion(v); }
};

bool is_render_name(std::string_view name) { return name.starts_with("renderD"); }

}  // namespace

std::optional<std::string> Discovery::first_xe() const {
  for (const RenderNodeProbe& n : nodes) {
    if (n.driver == kXeDriverName) return n.path;
  }
  return std::nullopt;
}

std::string Discovery::describe() const {
  std::string s = "looked for a render node with DRM driver \"xe\" in " + dri_dir + ": ";
  if (!dir_exists) return s + dri_dir + " does not exist";
  if (nodes.empty()) return s + "no render node (renderD*) there";
  s += "found ";
  bool first = true;
  for (const RenderNodeProbe& n : nodes) {
    if (!first) s += ", ";
    first = false;
    s += n.path;
    if (!n.driver.empty()) {
      s += " (driver " + n.driver + ")";
    } else {
      s += " (" + n.problem + ")";
    }
  }
  return s;
}

RenderNodeProbe probe_render_node(const std::string& path) {
  RenderNodeProbe probe;
  probe.path = path;
  int err = 0;
  DrmFd fd = DrmFd::open(path, &err);
  if (!fd.valid()) {
    probe.problem = "cannot open: " + errno_text(err);
    return probe;
  }
  errno = 0;
  std::unique_ptr<drmVersion, VersionDeleter> version(drmGetVersion(fd.get()));
  if (!version) {
    int e = errno != 0 ? errno : ENOTTY;
    probe.problem = "not a DRM device: DRM_IOCTL_VERSION failed: " + errno_text(e);
    return probe;
  }
  probe.driver.assign(version->name != nullptr ? version->name : "",
                      version->name != nullptr ? static_cast<std::size_t>(version->name_len) : 0);
  // name_len may count a terminating NUL on some kernels.
  while (!probe.driver.empty() && probe.driver.back() == '\0') probe.driver.pop_back();
  if (probe.driver.empty()) probe.problem = "DRM driver name is empty";
  return probe;
}

Discovery discover_render_nodes(std::string_view dri_dir) {
  Discovery d;
  d.dri_dir = std::string(dri_dir);
  struct stat st {};
  d.dir_exists = ::stat(d.dri_dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  if (!d.dir_exists) return d;

  std::vector<std::string> paths;
  if (d.dri_dir == "/dev/dri") {
    int n = drmGetDevices2(0, nullptr, 0);
    if (n > 0) {
      std::vector<drmDevicePtr> devices(static_cast<std::size_t>(n), nullptr);
      n = drmGetDevices2(0, devices.data(), n);
      for (int i = 0; i < n; ++i) {
        drmDevicePtr dev = devices[static_cast<std::size_t>(i)];
        if ((dev->available_nodes & (1 << DRM_NODE_RENDER)) != 0 && dev->nodes[DRM_NODE_RENDER] != nullptr) {
          paths.emplace_back(dev->nodes[DRM_NODE_RENDER]);
        }
      }
      if (n > 0) drmFreeDevices(devices.data(), n);
    }
  }
  if (DIR* dir = ::opendir(d.dri_dir.c_str())) {
    while (const dirent* e = ::readdir(dir)) {
      if (is_render_name(e->d_name)) paths.push_back(d.dri_dir + "/" + e->d_name);
    }
    ::closedir(dir);
  }
  std::sort(paths.begin(), paths.end());
  paths.erase(std::unique(paths.begin(), paths.end()), paths.end());
  for (const std::string& p : paths) d.nodes.push_back(probe_render_node(p));
  return d;
}

}  // namespace xesvm::xe
