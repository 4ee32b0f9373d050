// Vector add from SPIR-V, next to the same kernel as a native module.
//
// Builds samples/ze_spirv_kernels.cl's SPIR-V (found next to the program,
// or at $XESVM_ZE_SPIRV) twice, timing the cold compile and the cached
// create, then runs c = a + b over N floats (default 1M; first argument)
// on shared allocations prefetched to the device, R times each (default 5;
// second argument) with the SPIR-V and the native kernel, alternating, and
// prints the medians and their ratio. Every element is checked. Links only
// the Level Zero loader.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <vector>

#include "ze_sample_util.hpp"

namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const std::uint32_t n = argc > 1 ? static_cast<std::uint32_t>(std::strtoul(argv[1], nullptr, 0)) : (1u << 20);
  const int reps = argc > 2 ? std::max(1, std::atoi(argv[2])) : 5;
  ZeSample ze;

  const std::string path = sample_file("XESVM_ZE_SPIRV", "ze_spirv_kernels.spv");
  std::ifstream f(path, std::ios::binary);
  const std::vector<std::uint8_t> il((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (il.empty()) {
    std::fprintf(stderr, "cannot read the SPIR-V kernels at %s (set XESVM_ZE_SPIRV to their path)\n", path.c_str());
    return 1;
  }
  ze_module_desc_t md{
      ZE_STRUCTURE_TYPE_MODULE_DESC, nullptr, ZE_MODULE_FORMAT_IL_SPIRV, il.size(), il.data(), "", nullptr};
  ze_module_handle_t spirv = nullptr;
  auto t0 = std::chrono::steady_clock::now();
  ze_module_build_log_handle_t log = nullptr;
  if (zeModuleCreate(ze.ctx, ze.device, &md, &spirv, &log) != ZE_RESULT_SUCCESS) {
    std::size_t len = 0;
    zeModuleBuildLogGetString(log, &len, nullptr);
    std::string text(len, '\0');
    zeModuleBuildLogGetString(log, &len, text.data());
    std::fprintf(stderr, "zeModuleCreate(SPIR-V) failed:\n%s\n", text.c_str());
    return 1;
  }
  zeModuleBuildLogDestroy(log);
  const double cold_ms = ms_since(t0);
  ZE_CHECK(zeModuleDestroy(spirv));
  t0 = std::chrono::steady_clock::now();
  ZE_CHECK(zeModuleCreate(ze.ctx, ze.device, &md, &spirv, nullptr));
  const double cached_ms = ms_since(t0);

  const auto v = ze.vector_add_buffers(n);
  const auto [a, b, c] = v;
  for (float* p : {a, b, c}) ZE_CHECK(zeCommandListAppendMemoryPrefetch(ze.list, p, n * sizeof(float)));

  const auto kernels = ze.vector_add_kernels(spirv, v, n, 256);
  const ze_group_count_t groups{(n + 255) / 256, 1, 1};
  std::vector<double> times[2];
  std::uint32_t bad = 0;
  for (int r = 0; r < reps; ++r) {
    for (int which = 0; which < 2; ++which) {
      ZE_CHECK(zeCommandListAppendMemoryFill(ze.list, c, &bad, sizeof bad, n * sizeof(float), nullptr, 0, nullptr));
      t0 = std::chrono::steady_clock::now();
      ZE_CHECK(zeCommandListAppendLaunchKernel(ze.list, kernels[which], &groups, nullptr, 0, nullptr));
      times[which].push_back(ms_since(t0));
    }
  }
  for (std::uint32_t i = 0; i < n; ++i) {
    if (c[i] != 1.5f * static_cast<float>(i)) ++bad;
  }
  const double native_ms = median(times[0]), spirv_ms = median(times[1]);
  std::printf("vector add: %u elements on device-resident shared memory, median of %d runs\n", n, reps);
  std::printf("  native kernel %.2f ms, SPIR-V kernel %.2f ms: SPIR-V runs at %.2fx the native throughput\n", native_ms,
              spirv_ms, native_ms / spirv_ms);
  std::printf("  SPIR-V module create: %.1f ms compiling, %.3f ms from the cache\n", cold_ms, cached_ms);
  std::printf("  %s\n", bad ? "MISMATCH" : "OK");
  for (ze_kernel_handle_t k : kernels) ZE_CHECK(zeKernelDestroy(k));
  ZE_CHECK(zeModuleDestroy(spirv));
  for (float* p : {a, b, c}) ZE_CHECK(zeMemFree(ze.ctx, p));
  return bad ? 1 : 0;
}
