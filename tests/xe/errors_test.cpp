// errno -> xesvm::Error mapping of failed ioctls, and the real transport.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <string>

#include "runtime/backends/xe/xe_backend.hpp"
#include "runtime/backends/xe/xe_ioctl.hpp"
#include "runtime/backends/xe/xe_uapi.hpp"

using xesvm::Error;
namespace xe = xesvm::xe;
namespace u = xesvm::xe::uapi;

TEST(XeErrors, ErrnoToCode) {
  EXPECT_EQ(xe::error_code_for_errno(ENOMEM), Error::Code::kOutOfMemory);
  EXPECT_EQ(xe::error_code_for_errno(ENOSPC), Error::Code::kOutOfMemory);
  EXPECT_EQ(xe::error_code_for_errno(EBUSY), Error::Code::kBusy);
  EXPECT_EQ(xe::error_code_for_errno(EAGAIN), Error::Code::kBusy);
  EXPECT_EQ(xe::error_code_for_errno(ETIME), Error::Code::kBusy);
  EXPECT_EQ(xe::error_code_for_errno(ENOTTY), Error::Code::kUnsupported);
  EXPECT_EQ(xe::error_code_for_errno(EOPNOTSUPP), Error::Code::kUnsupported);
  EXPECT_EQ(xe::error_code_for_errno(EINVAL), Error::Code::kInvalidArgument);
  EXPECT_EQ(xe::error_code_for_errno(EFAULT), Error::Code::kInvalidArgument);
  EXPECT_EQ(xe::error_code_for_errno(ENOENT), Error::Code::kInvalidArgument);
  EXPECT_EQ(xe::error_code_for_errno(EIO), Error::Code::kBackend);
  EXPECT_EQ(xe::error_code_for_errno(ENODEV), Error::Code::kDeviceLost);
  EXPECT_EQ(xe::error_code_for_errno(ECANCELED), Error::Code::kBackend);
  EXPECT_EQ(xe::error_code_for_errno(12345), Error::Code::kBackend);
}

TEST(XeErrors, MessageNamesOperationIoctlAndErrno) {
  Error e = xe::ioctl_error("prefetch [0x1000, 0x3000) to VRAM instance 1", u::kIoctlVmBind, ENOMEM);
  EXPECT_EQ(e.code(), Error::Code::kOutOfMemory);
  EXPECT_EQ(std::string(e.what()),
            "xe: prefetch [0x1000, 0x3000) to VRAM instance 1: DRM_IOCTL_XE_VM_BIND failed: ENOMEM (Cannot "
            "allocate memory)");
}

TEST(XeErrors, IoctlNames) {
  EXPECT_EQ(xe::ioctl_name(u::kIoctlDeviceQuery), "DRM_IOCTL_XE_DEVICE_QUERY");
  EXPECT_EQ(xe::ioctl_name(u::kIoctlVmCreate), "DRM_IOCTL_XE_VM_CREATE");
  EXPECT_EQ(xe::ioctl_name(u::kIoctlVmDestroy), "DRM_IOCTL_XE_VM_DESTROY");
  EXPECT_EQ(xe::ioctl_name(u::kIoctlVmBind), "DRM_IOCTL_XE_VM_BIND");
  EXPECT_EQ(xe::ioctl_name(u::kIoctlWaitUserFence), "DRM_IOCTL_XE_WAIT_USER_FENCE");
  EXPECT_EQ(xe::ioctl_name(u::kIoctlMadvise), "DRM_IOCTL_XE_MADVISE");
  EXPECT_EQ(xe::ioctl_name(u::kIoctlVmQueryMemRangeAttrs), "DRM_IOCTL_XE_VM_QUERY_MEM_RANGE_ATTRS");
  EXPECT_EQ(xe::ioctl_name(0x1234), "ioctl 0x00001234");
}

TEST(XeErrors, ErrnoText) {
  EXPECT_EQ(xe::errno_text(EINVAL), "EINVAL (Invalid argument)");
  EXPECT_EQ(xe::errno_text(99999), "errno 99999");
}

// The real transport over a descriptor that is not a DRM device: the errno
// of the kernel's ioctl comes back as the return value.
TEST(XeRealTransport, ReturnsTheKernelsErrno) {
  int err = -1;
  xe::DrmFd fd = xe::DrmFd::open("/dev/null", &err);
  ASSERT_TRUE(fd.valid()) << xe::errno_text(err);
  EXPECT_EQ(err, 0);
  xe::DrmIoctl io(std::move(fd));
  u::drm_xe_vm_create c{};
  EXPECT_EQ(io.ioctl(u::kIoctlVmCreate, &c), ENOTTY);
}

TEST(XeRealTransport, OpeningABackendOnANonDrmDescriptorNamesTheFailingQuery) {
  int err = 0;
  xe::DrmFd fd = xe::DrmFd::open("/dev/null", &err);
  ASSERT_TRUE(fd.valid());
  try {
    xe::XeBackend be(std::make_unique<xe::DrmIoctl>(std::move(fd)), xe::XeOptions{});
    FAIL() << "opened a backend on /dev/null";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Error::Code::kUnsupported);
    EXPECT_EQ(std::string(e.what()),
              "xe: open: query the device config (size): DRM_IOCTL_XE_DEVICE_QUERY failed: ENOTTY (Inappropriate "
              "ioctl for device)");
  }
}

TEST(XeRealTransport, DrmFdOwnsAndMoves) {
  int err = 0;
  xe::DrmFd a = xe::DrmFd::open("/dev/null", &err);
  ASSERT_TRUE(a.valid());
  const int raw = a.get();
  xe::DrmFd b(std::move(a));
  EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): moved-from state is specified
  EXPECT_EQ(b.get(), raw);
  xe::DrmFd c;
  c = std::move(b);
  EXPECT_EQ(c.get(), raw);
  { xe::DrmFd gone = std::move(c); }
  EXPECT_EQ(::fcntl(raw, F_GETFD), -1);  // closed with its owner
  xe::DrmFd missing = xe::DrmFd::open("/nonexistent/xesvm", &err);
  EXPECT_FALSE(missing.valid());
  EXPECT_EQ(err, ENOENT);
}
