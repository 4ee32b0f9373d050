// Vector add on Level Zero shared allocations with a native xesvm kernel.
//
// c = a + b over N floats (default 1M; first argument overrides). The CPU
// initialises a and b through the same pointers the kernel uses; the kernel's
// accesses fault and migrate the data to device memory; the CPU's check of c
// migrates it back. Links only the Level Zero loader.
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "ze_sample_util.hpp"

int main(int argc, char** argv) {
  const std::uint32_t n = argc > 1 ? static_cast<std::uint32_t>(std::strtoul(argv[1], nullptr, 0)) : (1u << 20);
  ZeSample ze;
  ze_device_properties_t props{ZE_STRUCTURE_TYPE_DEVICE_PROPERTIES, nullptr};
  ZE_CHECK(zeDeviceGetProperties(ze.device, &props));
  std::printf("device: %s\n", props.name);

  const auto [a, b, c] = ze.vector_add_buffers(n);

  ze_kernel_handle_t k = ze.kernel("vector_add");
  ZE_CHECK(zeKernelSetArgumentValue(k, 0, sizeof a, &a));
  ZE_CHECK(zeKernelSetArgumentValue(k, 1, sizeof b, &b));
  ZE_CHECK(zeKernelSetArgumentValue(k, 2, sizeof c, &c));
  ZE_CHECK(zeKernelSetArgumentValue(k, 3, sizeof n, &n));
  std::uint32_t gx = 1, gy = 1, gz = 1;
  ZE_CHECK(zeKernelSuggestGroupSize(k, n, 1, 1, &gx, &gy, &gz));
  ZE_CHECK(zeKernelSetGroupSize(k, gx, gy, gz));
  const ze_group_count_t groups{(n + gx - 1) / gx, 1, 1};

  const auto t0 = std::chrono::steady_clock::now();
  ZE_CHECK(zeCommandListAppendLaunchKernel(ze.list, k, &groups, nullptr, 0, nullptr));
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();

  std::uint32_t bad = 0;
  for (std::uint32_t i = 0; i < n; ++i) {
    if (c[i] != 1.5f * static_cast<float>(i)) ++bad;
  }
  std::printf("vector add: %u elements, group size %u, %.1f ms, %s\n", n, gx, ms, bad ? "MISMATCH" : "OK");
  ZE_CHECK(zeKernelDestroy(k));
  ZE_CHECK(zeMemFree(ze.ctx, a));
  ZE_CHECK(zeMemFree(ze.ctx, b));
  ZE_CHECK(zeMemFree(ze.ctx, c));
  return bad ? 1 : 0;
}
