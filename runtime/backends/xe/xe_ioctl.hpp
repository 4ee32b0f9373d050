// The ioctl transport of the Xe backend, and how a failed ioctl becomes an
// xesvm::Error.
//
// XeIoctl is the one door through which the backend reaches the kernel: the
// real implementation (DrmIoctl) forwards to drmIoctl() on an owned DRM file
// descriptor; tests substitute a recording, scripted transport, so every
// request the backend sends can be checked byte for byte without a GPU.
//
// Concurrency: XeIoctl::ioctl() may be called from any thread at once, as the
// kernel's ioctl entry may. DrmFd is an owning handle and is not shared.
#pragma once

#include <string>
#include <string_view>

#include "xesvm/xesvm.hpp"

namespace xesvm::xe {

/// An owned file descriptor (closed on destruction). Movable, not copyable.
class DrmFd {
 public:
  DrmFd() = default;
  /// Takes ownership of `fd` (may be -1 for "none").
  explicit DrmFd(int fd) noexcept : fd_(fd) {}
  DrmFd(const DrmFd&) = delete;
  DrmFd& operator=(const DrmFd&) = delete;
  DrmFd(DrmFd&& other) noexcept : fd_(other.release()) {}
  DrmFd& operator=(DrmFd&& other) noexcept;
  ~DrmFd();

  /// Opens `path` read-write, close-on-exec. Returns the handle on success;
  /// on failure an empty handle (valid() false) and `*err` = errno.
  static DrmFd open(const std::string& path, int* err);

  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  /// Gives up ownership; returns the descriptor.
  int release() noexcept {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_ = -1;
};

/// The ioctl transport.
class XeIoctl {
 public:
  XeIoctl() = default;
  XeIoctl(const XeIoctl&) = delete;
  XeIoctl& operator=(const XeIoctl&) = delete;
  virtual ~XeIoctl() = default;

  /// Issues `request` with argument `arg` (whose size is encoded in the
  /// request). Returns 0 on success or the positive errno of the failure;
  /// EINTR and EAGAIN restarts are handled inside. REQUIRES: arg points to a
  /// struct of the request's size.
  virtual int ioctl(unsigned long request, void* arg) = 0;
};

/// XeIoctl over a DRM file descriptor, through libdrm's drmIoctl().
class DrmIoctl final : public XeIoctl {
 public:
  /// REQUIRES: fd.valid().
  explicit DrmIoctl(DrmFd fd) : fd_(std::move(fd)) {}
  int ioctl(unsigned long request, void* arg) override;
  int fd() const noexcept { return fd_.get(); }

 private:
  DrmFd fd_;
};

/// The upstream macro name of a known Xe request ("DRM_IOCTL_XE_VM_BIND"),
/// or "ioctl 0x........" for any other.
std::string ioctl_name(unsigned long request);

/// "ENOMEM (Cannot allocate memory)"; "errno N" for an unknown value.
std::string errno_text(int err);

/// The Error code a kernel errno maps to:
///   ENOMEM, ENOSPC, E2BIG                 -> kOutOfMemory
///   EBUSY, EAGAIN, ETIME, ETIMEDOUT       -> kBusy
///   ENOTTY, EOPNOTSUPP, ENOSYS            -> kUnsupported
///   EINVAL, EFAULT, ERANGE, ENOENT        -> kInvalidArgument
///   ENODEV (the device was removed)       -> kDeviceLost
///   EIO, ECANCELED, anything else         -> kBackend
Error::Code error_code_for_errno(int err);

/// The runtime error for a failed ioctl: "xe: <operation>: <IOCTL> failed:
/// <errno text>", with the code from error_code_for_errno(). REQUIRES: err != 0.
Error ioctl_error(std::string_view operation, unsigned long request, int err);

}  // namespace xesvm::xe
