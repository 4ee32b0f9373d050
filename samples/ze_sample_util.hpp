// Helpers shared by the Level Zero samples: result checking, driver/device
// discovery and loading the sample kernel library as a native module. The
// samples link only the Level Zero loader; run them with
//   ZE_ENABLE_ALT_DRIVERS=/abs/path/libze_xesvm.so
// Single-threaded use only.
#pragma once

#include <level_zero/ze_api.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "xesvm/ze_native_module.hpp"

// Exits with a message naming the call if it did not return SUCCESS.
#define ZE_CHECK(call)                                                                           \
  do {                                                                                           \
    ze_result_t r_ = (call);                                                                     \
    if (r_ != ZE_RESULT_SUCCESS) {                                                               \
      std::fprintf(stderr, "%s:%d: %s failed: 0x%x\n", __FILE__, __LINE__, #call, (unsigned)r_); \
      std::exit(1);                                                                              \
    }                                                                                            \
  } while (0)

// The directory of the running program (from /proc/self/exe), with a
// trailing '/', or "" if it cannot be read.
inline std::string sample_dir() {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "";
  const std::string exe(buf, static_cast<std::size_t>(n));
  const std::size_t slash = exe.rfind('/');
  return slash == std::string::npos ? "" : exe.substr(0, slash + 1);
}

// Where a sample's file `name` is: $env if set, else next to the program
// (where the build and the install put the samples' kernels), else just
// `name` (for dlopen's search path).
inline std::string sample_file(const char* env, const char* name) {
  if (const char* e = std::getenv(env); e && *e) return e;
  const std::string next = sample_dir() + name;
  if (access(next.c_str(), R_OK) == 0) return next;
  return name;
}

struct ZeSample {
  ze_driver_handle_t driver = nullptr;
  ze_device_handle_t device = nullptr;
  ze_context_handle_t ctx = nullptr;
  ze_command_list_handle_t list = nullptr;  // immediate, synchronous
  ze_module_handle_t module = nullptr;

  // Initialises the loader, takes the first driver and device, creates a
  // context, a synchronous immediate command list and the kernel module
  // (XESVM_ZE_KERNELS overrides the library path; by default it is found
  // next to the program, so an installed sample runs from any directory).
  // A device that runs no kernels (zeModuleCreate answers
  // ZE_RESULT_ERROR_UNSUPPORTED_FEATURE: the xe backend) leaves `module`
  // NULL; kernel() then exits saying so. Exits on any other failure.
  ZeSample() {
    if (zeInit(0) != ZE_RESULT_SUCCESS) {
      std::fprintf(stderr, "zeInit failed: is ZE_ENABLE_ALT_DRIVERS set to the absolute path of libze_xesvm.so?\n");
      std::exit(1);
    }
    std::uint32_t n = 1;
    ZE_CHECK(zeDriverGet(&n, &driver));
    n = 1;
    ZE_CHECK(zeDeviceGet(driver, &n, &device));
    ze_context_desc_t cd{ZE_STRUCTURE_TYPE_CONTEXT_DESC, nullptr, 0};
    ZE_CHECK(zeContextCreate(driver, &cd, &ctx));
    ze_command_queue_desc_t qd{
        ZE_STRUCTURE_TYPE_COMMAND_QUEUE_DESC, nullptr, 0, 0, 0, ZE_COMMAND_QUEUE_MODE_SYNCHRONOUS,
        ZE_COMMAND_QUEUE_PRIORITY_NORMAL};
    ZE_CHECK(zeCommandListCreateImmediate(ctx, device, &qd, &list));
    const std::string lib = sample_file("XESVM_ZE_KERNELS", "libze_sample_kernels.so");
    const xesvm::ze::NativeModuleDesc md(lib);
    const ze_result_t r = zeModuleCreate(ctx, device, md.get(), &module, nullptr);
    if (r == ZE_RESULT_ERROR_UNSUPPORTED_FEATURE) {
      module = nullptr;
    } else if (r != ZE_RESULT_SUCCESS) {
      std::fprintf(stderr, "cannot load the sample kernels from %s (set XESVM_ZE_KERNELS to their path)\n",
                   lib.c_str());
      std::exit(1);
    }
  }
  ~ZeSample() {
    if (module) zeModuleDestroy(module);
    zeCommandListDestroy(list);
    zeContextDestroy(ctx);
  }
  ZeSample(const ZeSample&) = delete;
  ZeSample& operator=(const ZeSample&) = delete;

  // True if the device runs kernels (the module loaded).
  bool runs_kernels() const { return module != nullptr; }
  ze_kernel_handle_t kernel(const char* name) {
    if (!module) {
      std::fprintf(stderr, "this device runs no kernels (zeModuleCreate: ZE_RESULT_ERROR_UNSUPPORTED_FEATURE)\n");
      std::exit(1);
    }
    ze_kernel_desc_t kd{ZE_STRUCTURE_TYPE_KERNEL_DESC, nullptr, 0, name};
    ze_kernel_handle_t k = nullptr;
    ZE_CHECK(zeKernelCreate(module, &kd, &k));
    return k;
  }
  // Shared inputs and output of vector add over n floats: a[i] = i,
  // b[i] = i / 2 (so c = a + b is 1.5 i). Exits on failure.
  struct Vectors {
    float *a, *b, *c;
  };
  Vectors vector_add_buffers(std::uint32_t n) {
    Vectors v{static_cast<float*>(shared(n * sizeof(float))), static_cast<float*>(shared(n * sizeof(float))),
              static_cast<float*>(shared(n * sizeof(float)))};
    for (std::uint32_t i = 0; i < n; ++i) {
      v.a[i] = static_cast<float>(i);
      v.b[i] = 0.5f * static_cast<float>(i);
    }
    return v;
  }
  // vector_add of the native module and of `other` (the same kernel from
  // another module, e.g. built from SPIR-V), in that order, each with the
  // arguments (v.a, v.b, v.c, n) and groups of `group_size`. Exits on failure.
  std::array<ze_kernel_handle_t, 2> vector_add_kernels(ze_module_handle_t other, const Vectors& v, std::uint32_t n,
                                                       std::uint32_t group_size) {
    std::array<ze_kernel_handle_t, 2> k{kernel("vector_add"), nullptr};
    ze_kernel_desc_t kd{ZE_STRUCTURE_TYPE_KERNEL_DESC, nullptr, 0, "vector_add"};
    ZE_CHECK(zeKernelCreate(other, &kd, &k[1]));
    for (ze_kernel_handle_t x : k) {
      ZE_CHECK(zeKernelSetArgumentValue(x, 0, sizeof v.a, &v.a));
      ZE_CHECK(zeKernelSetArgumentValue(x, 1, sizeof v.b, &v.b));
      ZE_CHECK(zeKernelSetArgumentValue(x, 2, sizeof v.c, &v.c));
      ZE_CHECK(zeKernelSetArgumentValue(x, 3, sizeof n, &n));
      ZE_CHECK(zeKernelSetGroupSize(x, group_size, 1, 1));
    }
    return k;
  }
  void* shared(std::size_t bytes) {
    ze_device_mem_alloc_desc_t dd{ZE_STRUCTURE_TYPE_DEVICE_MEM_ALLOC_DESC, nullptr, 0, 0};
    ze_host_mem_alloc_desc_t hd{ZE_STRUCTURE_TYPE_HOST_MEM_ALLOC_DESC, nullptr, 0};
    void* p = nullptr;
    ZE_CHECK(zeMemAllocShared(ctx, &dd, &hd, bytes, 0, device, &p));
    return p;
  }
};
