// The ioctl transport over libdrm and the errno -> Error mapping.
#include "runtime/backends/xe/xe_ioctl.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <xf86drm.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "runtime/backends/xe/xe_uapi.hpp"

namespace xesvm::xe {

DrmFd& DrmFd::operator=(DrmFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.release();
  }
  return *this;
}

DrmFd::~DrmFd() {
  if (fd_ >= 0) ::close(fd_);
}

DrmFd DrmFd::open(const std::string& path, int* err) {
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    *err = errno;
    return DrmFd();
  }
  *err = 0;
  return DrmFd(fd);
}

int DrmIoctl::ioctl(unsigned long request, void* arg) {
  // drmIoctl() restarts on EINTR and EAGAIN itself.
  if (drmIoctl(fd_.get(), request, arg) == 0) return 0;
  return errno != 0 ? errno : EIO;
}

std::string ioctl_name(unsigned long request) {
  switch (request) {
    case uapi::kIoctlDeviceQuery:
      return "DRM_IOCTL_XE_DEVICE_QUERY";
    case uapi::kIoctlVmCreate:
      return "DRM_IOCTL_XE_VM_CREATE";
    case uapi::kIoctlVmDestroy:
      return "DRM_IOCTL_XE_VM_DESTROY";
    case uapi::kIoctlVmBind:
      return "DRM_IOCTL_XE_VM_BIND";
    case uapi::kIoctlWaitUserFence:
      return "DRM_IOCTL_XE_WAIT_USER_FENCE";
    case uapi::kIoctlMadvise:
      return "DRM_IOCTL_XE_MADVISE";
    case uapi::kIoctlVmQueryMemRangeAttrs:
      return "DRM_IOCTL_XE_VM_QUERY_MEM_RANGE_ATTRS";
    default:
      break;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "ioctl 0x%08lx", request);
  return buf;
}

std::string errno_text(int err) {
  const char* name = strerrorname_np(err);
  if (name == nullptr) return "errno " + std::to_string(err);
  return std::string(name) + " (" + std::strerror(err) + ")";
}

Error::Code error_code_for_errno(int err) {
  switch (err) {
    case ENOMEM:
    case ENOSPC:
    case E2BIG:
      return Error::Code::kOutOfMemory;
    case EBUSY:
    case EAGAIN:
    case ETIME:
    case ETIMEDOUT:
      return Error::Code::kBusy;
    case ENOTTY:
    case EOPNOTSUPP:
    case ENOSYS:
      return Error::Code::kUnsupported;
    case EINVAL:
    case EFAULT:
    case ERANGE:
    case ENOENT:
      return Error::Code::kInvalidArgument;
    case ENODEV:
      return Error::Code::kDeviceLost;
    default:
      return Error::Code::kBackend;
  }
}

Error ioctl_error(std::string_view operation, unsigned long request, int err) {
  std::string msg = "xe: ";
  msg += operation;
  msg += ": ";
  msg += ioctl_name(request);
  msg += " failed: ";
  msg += errno_text(err);
  return Error(error_code_for_errno(err), msg);
}

}  // namespace xesvm::xe
