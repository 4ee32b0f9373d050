// The zeModuleCreate descriptor of a native xesvm kernel library named by
// path (the "xesvm-kernels:/path/lib.so" form of include/xesvm/ze_kernel.h).
//
// A NativeModuleDesc owns the blob its descriptor points into, so it can be
// neither copied nor moved; keep it alive until zeModuleCreate returns.
// Header-only; needs only the Level Zero headers.
#pragma once

#include <level_zero/ze_api.h>

#include <cstdint>
#include <string>

#include "xesvm/ze_kernel.h"

namespace xesvm::ze {

class NativeModuleDesc {
 public:
  /// REQUIRES: path names a kernel library (absolute, or as dlopen finds it).
  explicit NativeModuleDesc(const std::string& path) : blob_(XESVM_ZE_NATIVE_PREFIX + path) {
    desc_.stype = ZE_STRUCTURE_TYPE_MODULE_DESC;
    desc_.format = ZE_MODULE_FORMAT_NATIVE;
    desc_.inputSize = blob_.size();
    desc_.pInputModule = reinterpret_cast<const std::uint8_t*>(blob_.data());
  }
  NativeModuleDesc(const NativeModuleDesc&) = delete;
  NativeModuleDesc& operator=(const NativeModuleDesc&) = delete;

  /// The descriptor to pass to zeModuleCreate.
  const ze_module_desc_t* get() const { return &desc_; }

 private:
  std::string blob_;
  ze_module_desc_t desc_{};
};

}  // namespace xesvm::ze
