// errno -> xesvm::Error mapping of failed ioctls.
#include <gtest/gtest.h>

#include <cerrno>
#include <string>

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
  EXPECT_EQ(xe::error_code_for_errno(ENODEV), Error::Code::kBackend);
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
