// SPIR-V modules on the sim device (level-zero/spirv_module.hpp): OpenCL C
// kernels compiled at build time with clang-15 -target spir64 and
// llvm-spirv-15 (tests/spirv/*.cl), run through the loader like any
// application's SPIR-V. Every global access of these kernels goes through
// the device accessor, so the data moves as GPU faults move it.
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <locale>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string_view>
#include <thread>

#include "ze_fixture.hpp"

#ifndef XESVM_ZE_SPIRV_DIR
#error "XESVM_ZE_SPIRV_DIR must name the directory of the compiled test kernels"
#endif

namespace xesvm_ze_test {
namespace {

std::vector<std::uint8_t> read_spirv(const char* name) {
  std::ifstream f(std::string(XESVM_ZE_SPIRV_DIR) + "/" + name, std::ios::binary);
  return std::vector<std::uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

std::string log_text(ze_module_build_log_handle_t log) {
  std::size_t n = 0;
  EXPECT_EQ(ZE_RESULT_SUCCESS, zeModuleBuildLogGetString(log, &n, nullptr));
  std::string text(n, '\0');
  EXPECT_EQ(ZE_RESULT_SUCCESS, zeModuleBuildLogGetString(log, &n, text.data()));
  zeModuleBuildLogDestroy(log);
  return text;
}

class ZeSpirv : public Ze {
 protected:
  void SetUp() override {
    Ze::SetUp();
    spirv = read_spirv("kernels.spv");
    ASSERT_GT(spirv.size(), 20u) << "the build compiles tests/spirv/kernels.cl to " << XESVM_ZE_SPIRV_DIR;
    module = create(spirv, nullptr);
    ASSERT_NE(nullptr, module);
  }
  void TearDown() override {
    if (module) zeModuleDestroy(module);
    Ze::TearDown();
  }
  ze_module_handle_t create(const std::vector<std::uint8_t>& il, ze_module_build_log_handle_t* log,
                            ze_result_t expect = ZE_RESULT_SUCCESS) {
    ze_module_desc_t md{
        ZE_STRUCTURE_TYPE_MODULE_DESC, nullptr, ZE_MODULE_FORMAT_IL_SPIRV, il.size(), il.data(), "", nullptr};
    ze_module_handle_t m = nullptr;
    EXPECT_EQ(expect, zeModuleCreate(ctx, device, &md, &m, log));
    return m;
  }
  std::vector<std::uint8_t> spirv;
  ze_module_handle_t module = nullptr;
};

TEST_F(ZeSpirv, DeviceReportsSpirvAndTheModuleItsKernels) {
  ze_device_module_properties_t mp{ZE_STRUCTURE_TYPE_DEVICE_MODULE_PROPERTIES, nullptr};
  ZE_OK(zeDeviceGetModuleProperties(device, &mp));
  EXPECT_EQ(ZE_MAKE_VERSION(1, 4), mp.spirvVersionSupported);
  std::uint32_t n = 0;
  ZE_OK(zeModuleGetKernelNames(module, &n, nullptr));
  std::vector<const char*> names(n);
  ZE_OK(zeModuleGetKernelNames(module, &n, names.data()));
  std::vector<std::string> got(names.begin(), names.end());
  std::sort(got.begin(), got.end());
  EXPECT_EQ((std::vector<std::string>{"atomics", "load_at", "math", "reduce", "touch", "vector_add"}), got);
  ze_kernel_handle_t k = kernel(module, "vector_add");
  ze_kernel_properties_t kp{ZE_STRUCTURE_TYPE_KERNEL_PROPERTIES, nullptr};
  ZE_OK(zeKernelGetProperties(k, &kp));
  EXPECT_EQ(4u, kp.numKernelArgs);
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_KERNEL_ARGUMENT_SIZE, zeKernelSetArgumentValue(k, 3, 8, &n));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_KERNEL_ARGUMENT_INDEX, zeKernelSetArgumentValue(k, 4, 4, &n));
  std::uint32_t x = 0, y = 0, z = 0;
  ZE_OK(zeKernelSuggestGroupSize(k, 1000, 1, 1, &x, &y, &z));
  EXPECT_EQ(0u, 1000 % x);
  EXPECT_LE(x, 256u);
  ZE_OK(zeKernelDestroy(k));
}

TEST_F(ZeSpirv, EachKernelReportsOnlyTheLocalMemoryItUses) {
  // kernels.cl has two local variables: reduce's tag and atomics'
  // group_count (4 bytes each); the other kernels use none.
  std::map<std::string, std::uint32_t> local;
  for (const char* name : {"vector_add", "touch", "load_at", "math", "reduce", "atomics"}) {
    ze_kernel_handle_t k = kernel(module, name);
    ze_kernel_properties_t kp{ZE_STRUCTURE_TYPE_KERNEL_PROPERTIES, nullptr};
    ZE_OK(zeKernelGetProperties(k, &kp));
    local[name] = kp.localMemSize;
    ZE_OK(zeKernelDestroy(k));
  }
  for (const char* name : {"vector_add", "touch", "load_at", "math"}) EXPECT_EQ(0u, local[name]) << name;
  EXPECT_GE(local["reduce"], 4u);
  EXPECT_GE(local["atomics"], 4u);
  EXPECT_LE(local["reduce"], 8u);
  EXPECT_LE(local["atomics"], 8u);
}

TEST_F(ZeSpirv, VectorAddOnSharedAndDeviceMemory) {
  constexpr std::uint32_t n = 100000;
  ze_kernel_handle_t k = kernel(module, "vector_add");
  float* const c = vector_add_inputs(k, n).c;
  ZE_OK(zeKernelSetGroupSize(k, 128, 1, 1));
  const ze_group_count_t g{(n + 127) / 128, 1, 1};
  ZE_OK(zeCommandListAppendLaunchKernel(sync_imm, k, &g, nullptr, 0, nullptr));
  EXPECT_LT(cpu_resident_pages(c, n * 4), n * 4 / 4096) << "the kernel's stores moved pages to the device";
  for (std::uint32_t i = 0; i < n; ++i) ASSERT_EQ(static_cast<float>(3 * i) + 0.5f, c[i]) << i;
  // Device allocations: the kernel reaches them through the translation.
  void* d = dev_mem(n * 4);
  ZE_OK(zeKernelSetArgumentValue(k, 2, 8, &d));
  ZE_OK(zeCommandListAppendLaunchKernel(sync_imm, k, &g, nullptr, 0, nullptr));
  std::vector<float> out(n);
  ZE_OK(zeCommandListAppendMemoryCopy(sync_imm, out.data(), d, n * 4, nullptr, 0, nullptr));
  for (std::uint32_t i = 0; i < n; ++i) ASSERT_EQ(static_cast<float>(3 * i) + 0.5f, out[i]) << i;
  ZE_OK(zeKernelDestroy(k));
}

TEST_F(ZeSpirv, ReductionWithBarriersAndLocalMemory) {
  ze_kernel_handle_t k = kernel(module, "reduce");
  expect_reduction(k, 128, 32);
  ZE_OK(zeKernelDestroy(k));
}

TEST_F(ZeSpirv, GlobalAndLocalAtomics) {
  constexpr std::uint32_t kGroup = 64, kGroups = 64, kItems = kGroup * kGroups;
  auto* c = static_cast<std::uint32_t*>(shared(4096));
  auto* wide = static_cast<std::uint64_t*>(shared(4096));
  c[0] = 0;
  c[1] = 0;
  c[2] = UINT32_MAX;
  c[3] = 0;
  c[4] = 0;
  wide[0] = 0;
  ze_kernel_handle_t k = kernel(module, "atomics");
  ZE_OK(zeKernelSetArgumentValue(k, 0, 8, &c));
  ZE_OK(zeKernelSetArgumentValue(k, 1, 8, &wide));
  ZE_OK(zeKernelSetGroupSize(k, kGroup, 1, 1));
  const ze_group_count_t g{kGroups, 1, 1};
  ZE_OK(zeCommandListAppendLaunchKernel(sync_imm, k, &g, nullptr, 0, nullptr));
  EXPECT_EQ(kItems, c[0]);
  EXPECT_EQ(kItems - 1, c[1]);
  EXPECT_EQ(0u, c[2]);
  EXPECT_GE(c[3], 1u);
  EXPECT_LE(c[3], kItems);
  EXPECT_EQ(kItems, c[4]) << "local counters";
  EXPECT_EQ(std::uint64_t{kItems} * (kItems - 1) / 2, wide[0]);
  ZE_OK(zeKernelDestroy(k));
}

TEST_F(ZeSpirv, MathBuiltinsUseTheHostLibm) {
  auto* x = static_cast<float*>(shared(64 * 4));
  auto* y = static_cast<float*>(shared(64 * 4));
  for (int i = 0; i < 64; ++i) x[i] = static_cast<float>(i);
  ze_kernel_handle_t k = kernel(module, "math");
  ZE_OK(zeKernelSetArgumentValue(k, 0, 8, &x));
  ZE_OK(zeKernelSetArgumentValue(k, 1, 8, &y));
  ZE_OK(zeKernelSetGroupSize(k, 64, 1, 1));
  const ze_group_count_t g{1, 1, 1};
  ZE_OK(zeCommandListAppendLaunchKernel(sync_imm, k, &g, nullptr, 0, nullptr));
  for (int i = 0; i < 64; ++i) {
    const float v = static_cast<float>(i);
    const float want = std::sqrt(v) + v + std::floor(v / 3.0f) + std::max(v, 2.0f) + 1.0f + (v * 2.0f + 1.0f);
    EXPECT_NEAR(want, y[i], 1e-4f * want) << i;
  }
  ZE_OK(zeKernelDestroy(k));
}

TEST_F(ZeSpirv, KernelOverTwiceTheDeviceMemoryKeepsEveryByte) {
  // Twice the device memory, in two allocations of the largest size the
  // device allows (maxMemAllocSize), both touched by kernels of one list.
  const std::size_t each = vram, n = each / 4;
  std::uint32_t* bufs[2];
  for (int b = 0; b < 2; ++b) {
    bufs[b] = static_cast<std::uint32_t*>(shared(each));
    ASSERT_NE(nullptr, bufs[b]);
    for (std::size_t i = 0; i < n; ++i) bufs[b][i] = static_cast<std::uint32_t>(i ^ (0x5a5a5a5a + b));
  }
  ze_kernel_handle_t k = kernel(module, "touch");
  const std::uint64_t words = n;
  ZE_OK(zeKernelSetArgumentValue(k, 1, 8, &words));
  ZE_OK(zeKernelSetGroupSize(k, 256, 1, 1));
  const ze_group_count_t g{static_cast<std::uint32_t>(n / 256), 1, 1};
  for (auto* p : bufs) {
    ZE_OK(zeKernelSetArgumentValue(k, 0, 8, &p));
    ZE_OK(zeCommandListAppendLaunchKernel(list, k, &g, nullptr, 0, nullptr));
  }
  ZE_OK(run_list());
  // GPU faults moved pages to the device; it holds at most its memory, so
  // the rest was evicted back to RAM.
  const std::size_t pages = 2 * each / 4096;
  const std::size_t resident = cpu_resident_pages(bufs[0], each) + cpu_resident_pages(bufs[1], each);
  EXPECT_LT(resident, pages) << "no page moved to the device";
  EXPECT_GE(resident, pages - vram / 4096) << "more pages on the device than it has memory";
  for (int b = 0; b < 2; ++b) {
    for (std::size_t i = 0; i < n; ++i) {
      ASSERT_EQ(static_cast<std::uint32_t>(i ^ (0x5a5a5a5a + b)) * 3u + static_cast<std::uint32_t>(i), bufs[b][i])
          << b << " " << i;
    }
  }
  ZE_OK(zeKernelDestroy(k));
}

TEST_F(ZeSpirv, KernelSeesWhatTheCpuWroteAfterTheLastLaunch) {
  // A kernel leaves the data on the device; the CPU then writes some of it
  // (its touches bring those pages back), and the next kernel must see the
  // CPU's bytes, not a stale device copy.
  constexpr std::uint32_t n = 64 * 1024, per_page = 1024;
  auto* p = static_cast<std::uint32_t*>(shared(n * 4));
  ASSERT_NE(nullptr, p);
  for (std::uint32_t i = 0; i < n; ++i) p[i] = i;
  ze_kernel_handle_t k = kernel(module, "touch");
  const std::uint64_t words = n;
  ZE_OK(zeKernelSetArgumentValue(k, 0, 8, &p));
  ZE_OK(zeKernelSetArgumentValue(k, 1, 8, &words));
  ZE_OK(zeKernelSetGroupSize(k, 256, 1, 1));
  const ze_group_count_t g{n / 256, 1, 1};
  ZE_OK(zeCommandListAppendLaunchKernel(sync_imm, k, &g, nullptr, 0, nullptr));
  ASSERT_LT(cpu_resident_pages(p, n * 4), n / per_page) << "the kernel left pages on the device";
  // One word per page, written without reading the rest.
  for (std::uint32_t i = 0; i < n; i += per_page) p[i] = 5 + i;
  ZE_OK(zeCommandListAppendLaunchKernel(sync_imm, k, &g, nullptr, 0, nullptr));
  for (std::uint32_t i = 0; i < n; ++i) {
    const std::uint32_t before = i % per_page == 0 ? 5 + i : i * 3 + i;
    ASSERT_EQ(before * 3 + i, p[i]) << i;
  }
  ZE_OK(zeKernelDestroy(k));
}

TEST_F(ZeSpirv, FaultOnAnUnmappedAddressIsDeviceLostAndHarmsNothingElse) {
  ze_kernel_handle_t k = kernel(module, "load_at");
  auto* out = static_cast<std::uint32_t*>(shared(4096));
  *out = 7;
  const std::uint64_t bad = reinterpret_cast<std::uint64_t>(unmapped_page());
  ZE_OK(zeKernelSetArgumentValue(k, 0, 8, &bad));
  ZE_OK(zeKernelSetArgumentValue(k, 1, 8, &out));
  const ze_group_count_t g{1, 1, 1};
  ZE_OK(zeCommandListAppendLaunchKernel(list, k, &g, nullptr, 0, nullptr));
  EXPECT_EQ(ZE_RESULT_ERROR_DEVICE_LOST, run_list());
  // A good address afterwards works, and the same module still runs.
  auto* src = static_cast<std::uint32_t*>(shared(4096));
  *src = 42;
  const std::uint64_t good = reinterpret_cast<std::uint64_t>(src);
  ZE_OK(zeKernelSetArgumentValue(k, 0, 8, &good));
  ZE_OK(zeCommandListAppendLaunchKernel(sync_imm, k, &g, nullptr, 0, nullptr));
  EXPECT_EQ(42u, *out);
  ZE_OK(zeKernelDestroy(k));
}

TEST_F(ZeSpirv, SecondCreateOfTheSameModuleIsServedFromTheCache) {
  ze_module_build_log_handle_t log = nullptr;
  ze_module_handle_t again = create(spirv, &log);
  ASSERT_NE(nullptr, again);
  EXPECT_NE(std::string::npos, log_text(log).find("in-memory cache"));
  ZE_OK(zeModuleDestroy(again));
  // Other build flags are another module.
  ze_module_desc_t md{ZE_STRUCTURE_TYPE_MODULE_DESC, nullptr, ZE_MODULE_FORMAT_IL_SPIRV, spirv.size(), spirv.data(),
                      "-cl-fast-relaxed-math",       nullptr};
  ZE_OK(zeModuleCreate(ctx, device, &md, &again, &log));
  EXPECT_NE(std::string::npos, log_text(log).find("compiled 6 kernels")) << "flags are part of the cache key";
  ZE_OK(zeModuleDestroy(again));
}

// ---- Built-ins of OpenCL C 2.0 applications (tests/spirv/features.cl) ----

class ZeSpirvFeatures : public Ze {
 protected:
  void SetUp() override {
    Ze::SetUp();
    std::string text;
    ASSERT_EQ(ZE_RESULT_SUCCESS, build("features.spv", &module, &text)) << text;
  }
  // Creates a module from the compiled test kernels in file; *log gets the
  // build log (empty in intercept mode, where the loader does not pass the
  // log of a failed build).
  ze_result_t build(const char* file, ze_module_handle_t* m, std::string* log) {
    const std::vector<std::uint8_t> il = read_spirv(file);
    EXPECT_GT(il.size(), 20u) << "the build compiles tests/spirv/ to " << XESVM_ZE_SPIRV_DIR;
    ze_module_desc_t md{
        ZE_STRUCTURE_TYPE_MODULE_DESC, nullptr, ZE_MODULE_FORMAT_IL_SPIRV, il.size(), il.data(), "", nullptr};
    ze_module_build_log_handle_t h = nullptr;
    const ze_result_t r = zeModuleCreate(ctx, device, &md, m, intercept_mode() ? nullptr : &h);
    log->clear();
    if (h) *log = log_text(h);
    return r;
  }
  // Requires the build of file to fail with a null module handle and, where
  // the log is passed (not in intercept mode), a log holding every needle.
  void expect_build_failure_naming(const char* file, std::initializer_list<const char*> needles) {
    ze_module_handle_t m = nullptr;
    std::string text;
    EXPECT_EQ(ZE_RESULT_ERROR_MODULE_BUILD_FAILURE, build(file, &m, &text));
    EXPECT_EQ(nullptr, m);
    if (intercept_mode()) return;
    for (const char* needle : needles) EXPECT_NE(std::string::npos, text.find(needle)) << text;
  }
  void TearDown() override {
    if (module) zeModuleDestroy(module);
    Ze::TearDown();
  }
  void launch(ze_kernel_handle_t k, std::uint32_t group, std::uint32_t groups) {
    ZE_OK(zeKernelSetGroupSize(k, group, 1, 1));
    const ze_group_count_t g{groups, 1, 1};
    ZE_OK(zeCommandListAppendLaunchKernel(sync_imm, k, &g, nullptr, 0, nullptr));
  }
  ze_module_handle_t module = nullptr;
};

TEST_F(ZeSpirvFeatures, VloadAndVstoreMoveWholeVectorsThroughTheAccessor) {
  constexpr std::uint32_t n = 4096;
  auto* a = static_cast<float*>(shared(n * 16));
  auto* b = static_cast<float*>(shared(n * 16));
  auto* x = static_cast<std::uint8_t*>(shared(n * 3));
  auto* c = static_cast<std::uint8_t*>(shared(n * 3));
  for (std::uint32_t i = 0; i < 4 * n; ++i) a[i] = static_cast<float>(i) * 0.25f;
  for (std::uint32_t i = 0; i < 3 * n; ++i) x[i] = static_cast<std::uint8_t>(i * 7 + 1);
  ze_kernel_handle_t k = kernel(module, "vectors");
  for (std::uint32_t i = 0; i < 4; ++i) {
    void* const args[] = {a, b, x, c};
    ZE_OK(zeKernelSetArgumentValue(k, i, 8, &args[i]));
  }
  launch(k, 64, n / 64);
  EXPECT_LT(cpu_resident_pages(b, n * 16), n * 16 / 4096) << "the kernel's vector stores moved pages to the device";
  for (std::uint32_t i = 0; i < 4 * n; ++i) ASSERT_EQ(static_cast<float>(i) * 0.5f, b[i]) << i;
  for (std::uint32_t i = 0; i < n; ++i) {
    for (std::uint32_t e = 0; e < 3; ++e) ASSERT_EQ(x[3 * i + 2 - e], c[3 * i + e]) << i << " " << e;
  }
  ZE_OK(zeKernelDestroy(k));
}

TEST_F(ZeSpirvFeatures, SubGroupsAreOneWorkItemWideAsTheKernelReports) {
  constexpr std::uint32_t kGroup = 64, kGroups = 4, kItems = kGroup * kGroups;
  ze_kernel_handle_t k = kernel(module, "sub_groups");
  ze_kernel_properties_t kp{ZE_STRUCTURE_TYPE_KERNEL_PROPERTIES, nullptr};
  ZE_OK(zeKernelGetProperties(k, &kp));
  EXPECT_EQ(1u, kp.maxSubgroupSize);
  EXPECT_EQ(0u, kp.requiredSubgroupSize);
  auto* o = static_cast<std::uint32_t*>(shared(kItems * 12 * 4));
  std::memset(o, 0xee, kItems * 12 * 4);
  ZE_OK(zeKernelSetArgumentValue(k, 0, 8, &o));
  launch(k, kGroup, kGroups);
  for (std::uint32_t i = 0; i < kItems; ++i) {
    const std::uint32_t* r = o + i * 12;
    const std::uint32_t want[12] = {1,
                                    1,
                                    kGroup,
                                    i % kGroup,
                                    0,
                                    i + 1,
                                    i + 2,
                                    i + 3,
                                    0,
                                    UINT32_MAX,
                                    (i % 2 != 0) + 2u * (i % 3 != 0),
                                    static_cast<std::uint32_t>(static_cast<int>(i) - 5)};
    for (int j = 0; j < 12; ++j) ASSERT_EQ(want[j], r[j]) << "item " << i << " result " << j;
  }
  ZE_OK(zeKernelDestroy(k));
}

TEST_F(ZeSpirvFeatures, ExplicitAndFloatAtomicsOnGlobalAndLocalMemory) {
  constexpr std::uint32_t kGroup = 64, kGroups = 64, kItems = kGroup * kGroups;
  auto* c = static_cast<std::uint32_t*>(shared(4096));
  auto* f = static_cast<float*>(shared(4096));
  auto* d = static_cast<double*>(shared(4096));
  auto* fl = static_cast<float*>(shared(kGroups * 4));
  std::memset(c, 0, 4096);
  f[0] = 0;
  d[0] = 0;
  ze_kernel_handle_t k = kernel(module, "explicit_atomics");
  void* const args[] = {c, f, d, fl};
  for (std::uint32_t i = 0; i < 4; ++i) ZE_OK(zeKernelSetArgumentValue(k, i, 8, &args[i]));
  launch(k, kGroup, kGroups);
  EXPECT_EQ(kItems, c[0]);
  EXPECT_EQ(kItems - 1, c[1]);
  EXPECT_GE(c[2], 1u);
  EXPECT_LE(c[2], kItems);
  EXPECT_EQ(9u, c[3]);
  EXPECT_EQ(9u, c[4]);
  EXPECT_EQ(kItems, c[5]) << "local counters";
  // Every partial sum is exact in binary floating point.
  EXPECT_EQ(0.5f * kItems, f[0]);
  EXPECT_EQ(0.25 * kItems, d[0]);
  for (std::uint32_t g = 0; g < kGroups; ++g) EXPECT_EQ(static_cast<float>(kGroup), fl[g]) << "group " << g;
  ZE_OK(zeKernelDestroy(k));
}

TEST_F(ZeSpirvFeatures, FiberModeIsDecidedPerKernelNotPerModule) {
  // The module has kernels with barriers; a kernel without one still runs
  // its items one after the other on the worker's stack (one address of a
  // private variable per group), while the kernel with a barrier runs them
  // as fibers (an address per item).
  constexpr std::uint32_t kGroup = 32, kGroups = 2, kItems = kGroup * kGroups;
  auto* out = static_cast<std::uint64_t*>(shared(kItems * 8));
  for (const char* name : {"stack_address", "stack_address_with_barrier"}) {
    ze_kernel_handle_t k = kernel(module, name);
    ZE_OK(zeKernelSetArgumentValue(k, 0, 8, &out));
    launch(k, kGroup, kGroups);
    for (std::uint32_t g = 0; g < kGroups; ++g) {
      const std::set<std::uint64_t> addrs(out + g * kGroup, out + (g + 1) * kGroup);
      if (std::string(name) == "stack_address") {
        EXPECT_EQ(1u, addrs.size()) << name << ": the items of group " << g << " did not share one stack";
      } else {
        EXPECT_EQ(kGroup, addrs.size()) << name << ": the items of group " << g << " are not fibers";
      }
    }
    ZE_OK(zeKernelDestroy(k));
  }
}

TEST_F(ZeSpirvFeatures, RequiredSubGroupSizeTheDeviceLacksFailsTheBuildNamingIt) {
  expect_build_failure_naming("wide_sub_groups.spv", {"kernel wide_sub_groups requires a sub-group size of 16"});
}

// Runs f with the process's stdout (file descriptor 1) sent to a temporary
// file; returns what was written there.
std::string capture_stdout(const std::function<void()>& f) {
  std::fflush(stdout);
  const int saved = ::dup(1);
  std::FILE* tmp = std::tmpfile();
  if (saved < 0 || !tmp) return "(stdout cannot be captured)";
  ::dup2(fileno(tmp), 1);
  f();
  std::fflush(stdout);
  ::dup2(saved, 1);
  ::close(saved);
  std::string out;
  std::rewind(tmp);
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, tmp)) > 0;) out.append(buf, n);
  std::fclose(tmp);
  return out;
}

TEST_F(ZeSpirvFeatures, PrintfWritesEachItemsLinesInOrderToStdout) {
  constexpr int kGroup = 16, kGroups = 4, kItems = kGroup * kGroups;
  auto* a = static_cast<float*>(shared(kItems * 4));
  for (int i = 0; i < kItems; ++i) a[i] = static_cast<float>(i) * 1.25f - 7.0f;
  ze_kernel_handle_t k = kernel(module, "print_items");
  const int n = kItems;
  ZE_OK(zeKernelSetArgumentValue(k, 0, 8, &a));
  ZE_OK(zeKernelSetArgumentValue(k, 1, 4, &n));
  const std::string out = capture_stdout([&] { launch(k, kGroup, kGroups); });
  std::vector<std::string> lines;
  std::istringstream in(out);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  ASSERT_EQ(static_cast<std::size_t>(2 * kItems), lines.size()) << out;
  std::map<std::string, std::size_t> at;  // line -> its position
  for (std::size_t j = 0; j < lines.size(); ++j) at[lines[j]] = j;
  for (int i = 0; i < kItems; ++i) {
    char first[256], second[64];
    std::snprintf(first, sizeof first, "item %d/%d: %u %5.2f %e %s %lld %llu %c %x %X %o %%", i, n, i * 3u,
                  static_cast<double>(a[i]), static_cast<double>(a[i]) * 1e10, "str", static_cast<long long>(i) - 100,
                  static_cast<unsigned long long>(i) << 40, 'a' + i % 26, 255u + i, 0xabcu, 8u);
    std::snprintf(second, sizeof second, "done %03d", i);
    ASSERT_EQ(1u, at.count(first)) << "missing: " << first << "\n" << out;
    ASSERT_EQ(1u, at.count(second)) << "missing: " << second << "\n" << out;
    EXPECT_LT(at[first], at[second]) << "item " << i << "'s lines are out of order";
  }
  ZE_OK(zeKernelDestroy(k));
}

TEST_F(ZeSpirvFeatures, AtomicWithTheHostFailsTheBuildNamingItsScope) {
  // memory_scope_all_svm_devices asks for atomicity with the host, which
  // the device's atomics do not give: refused rather than weakened.
  expect_build_failure_naming("host_atomics.spv", {"atomic scope CrossDevice"});
}

TEST_F(ZeSpirvFeatures, PrintfWhoseArgumentDoesNotMatchFailsTheBuildNamingIt) {
  expect_build_failure_naming(
      "bad_printf.spv", {"printf in bad_printf, format \"value %d\n\": conversion 1 (%d) expects a 32-bit integer",
                         "the argument is double"});
}

// ---- The disk cache (XESVM_KERNEL_CACHE), across processes ----

extern "C" char** environ;

struct ChildRun {
  int status = -1;  ///< exit status, or -1 if it did not exit
  std::string output;
  /// A counter of the driver's XESVM_ZE_STATS line, or -1 if absent.
  long counter(const std::string& name) const {
    const std::size_t line = output.find("xesvm-ze: {");
    if (line == std::string::npos) return -1;
    const std::size_t at = output.find("\"" + name + "\":", line);
    if (at == std::string::npos) return -1;
    return std::strtol(output.c_str() + at + name.size() + 3, nullptr, 10);
  }
};

// Runs this test program again, as a separate process, for one test, with
// the variables of env set in its environment (replacing the same names;
// an empty value removes the name); returns its exit status and everything
// it printed.
ChildRun run_this_program(const std::string& filter, const std::map<std::string, std::string>& env) {
  ChildRun r;
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  std::vector<std::string> env_text;
  for (char** e = environ; *e; ++e) {
    const std::string_view entry(*e);
    if (!env.count(std::string(entry.substr(0, entry.find('='))))) env_text.emplace_back(*e);
  }
  for (const auto& [name, value] : env) {
    if (!value.empty()) env_text.push_back(name + "=" + value);
  }
  std::vector<char*> envp;
  for (auto& e : env_text) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string arg0 = self, arg1 = "--gtest_filter=" + filter;
  char* argv[] = {arg0.data(), arg1.data(), nullptr};
  int fds[2];
  if (::pipe(fds) != 0) return r;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, self.c_str(), &fa, nullptr, argv, envp.data());
  posix_spawn_file_actions_destroy(&fa);
  ::close(fds[1]);
  if (rc == 0) {
    char buf[4096];
    for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) != 0;) {
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) break;
      r.output.append(buf, static_cast<std::size_t>(n));
    }
    int st = 0;
    if (::waitpid(pid, &st, 0) == pid && WIFEXITED(st)) r.status = WEXITSTATUS(st);
  }
  ::close(fds[0]);
  return r;
}

// The byte-checked vector add of kernels.cl in another process with
// XESVM_KERNEL_CACHE=cache and XESVM_ZE_STATS=1.
ChildRun run_with_cache(const std::string& cache) {
  return run_this_program("ZeSpirv.VectorAddOnSharedAndDeviceMemory",
                          {{"XESVM_KERNEL_CACHE", cache}, {"XESVM_ZE_STATS", "1"}});
}

// The one entry file in dir.
std::filesystem::path only_entry_file(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) files.push_back(e.path());
  EXPECT_EQ(1u, files.size()) << "one module, one entry (no temporary files left)";
  return files.empty() ? std::filesystem::path() : files[0];
}

class ZeSpirvDiskCache : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/xesvm-ze-cache-XXXXXX";
    ASSERT_NE(nullptr, ::mkdtemp(tmpl));
    dir = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir); }
  // The child: a byte-checked vector add from the module of kernels.cl.
  ChildRun child() { return run_with_cache(dir.string()); }
  std::filesystem::path dir;
};

TEST_F(ZeSpirvDiskCache, SecondProcessLoadsTheCompiledModuleAndCompilesNothing) {
  const ChildRun first = child();
  ASSERT_EQ(0, first.status) << first.output;
  EXPECT_EQ(1, first.counter("spirv_compiled")) << first.output;
  EXPECT_EQ(1, first.counter("spirv_disk_cache_writes")) << first.output;
  EXPECT_EQ(0, first.counter("spirv_disk_cache_hits")) << first.output;
  const std::filesystem::path entry = only_entry_file(dir);
  EXPECT_EQ(".xzc", entry.extension());
  const ChildRun second = child();
  ASSERT_EQ(0, second.status) << second.output;
  EXPECT_EQ(0, second.counter("spirv_compiled")) << second.output;
  EXPECT_EQ(1, second.counter("spirv_disk_cache_hits")) << second.output;
  EXPECT_EQ(0, second.counter("spirv_disk_cache_writes")) << second.output;
}

TEST_F(ZeSpirvDiskCache, CorruptOrForeignEntryIsIgnoredAndRebuilt) {
  ASSERT_EQ(0, child().status);
  const std::filesystem::path entry = only_entry_file(dir);
  std::string good;
  {
    std::ifstream f(entry, std::ios::binary);
    good.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  ASSERT_GT(good.size(), 100u);
  std::string flipped = good;
  flipped[flipped.size() / 2] = static_cast<char>(flipped[flipped.size() / 2] ^ 0x5a);
  std::string foreign = good;  // the header of another module: its key differs
  foreign[12] = static_cast<char>(foreign[12] ^ 1);
  const std::pair<const char*, std::string> bad[] = {
      {"a flipped byte", flipped},
      {"truncated", good.substr(0, good.size() / 2)},
      {"garbage", std::string(4096, '\x7f')},
      {"empty", std::string()},
      {"another module's", foreign},
  };
  for (const auto& [what, bytes] : bad) {
    {
      std::ofstream f(entry, std::ios::binary | std::ios::trunc);
      f << bytes;
    }
    const ChildRun r = child();
    ASSERT_EQ(0, r.status) << what << " entry:\n" << r.output;
    EXPECT_EQ(1, r.counter("spirv_disk_cache_ignored")) << what << " entry:\n" << r.output;
    EXPECT_EQ(1, r.counter("spirv_compiled")) << what << " entry:\n" << r.output;
    EXPECT_EQ(1, r.counter("spirv_disk_cache_writes")) << what << " entry:\n" << r.output;
  }
  // The last build wrote a good entry again.
  const ChildRun r = child();
  ASSERT_EQ(0, r.status) << r.output;
  EXPECT_EQ(0, r.counter("spirv_compiled")) << r.output;
  EXPECT_EQ(1, r.counter("spirv_disk_cache_hits")) << r.output;
}

TEST_F(ZeSpirvDiskCache, UnwritableCacheDirectoryDoesNotFailTheBuild) {
  const ChildRun r = run_with_cache("/proc/xesvm-no-such-directory");
  ASSERT_EQ(0, r.status) << r.output;
  EXPECT_EQ(1, r.counter("spirv_compiled")) << r.output;
  EXPECT_EQ(0, r.counter("spirv_disk_cache_writes")) << r.output;
}

TEST_F(ZeSpirv, UnsupportedCapabilityFailsTheBuildNamingIt) {
  const std::vector<std::uint8_t> image = read_spirv("image.spv");
  ASSERT_GT(image.size(), 20u);
  ze_module_build_log_handle_t log = nullptr;
  ze_module_build_log_handle_t* plog = intercept_mode() ? nullptr : &log;
  EXPECT_EQ(nullptr, create(image, plog, ZE_RESULT_ERROR_MODULE_BUILD_FAILURE));
  if (plog) {
    const std::string text = log_text(log);
    EXPECT_NE(std::string::npos, text.find("unsupported SPIR-V capability: ImageBasic")) << text;
  }
  // A corrupted module fails validation, with spirv-val's message.
  const std::vector<std::uint8_t> broken(spirv.data(), spirv.data() + spirv.size() - 8);
  EXPECT_EQ(nullptr, create(broken, plog, ZE_RESULT_ERROR_MODULE_BUILD_FAILURE));
  if (plog) {
    EXPECT_NE(std::string::npos, log_text(log).find("not valid (spirv-val)"));
  }
}

// ---- Hostile modules: every one is a clean error, never a crash ----

// The words of a SPIR-V module and the word index of each instruction.
struct SpirvWords {
  std::vector<std::uint32_t> w;
  std::vector<std::size_t> insns;
  explicit SpirvWords(const std::vector<std::uint8_t>& bytes) : w(bytes.size() / 4) {
    std::memcpy(w.data(), bytes.data(), w.size() * 4);
    for (std::size_t i = 5; i < w.size() && (w[i] >> 16) != 0; i += w[i] >> 16) insns.push_back(i);
  }
  std::vector<std::uint8_t> bytes() const {
    std::vector<std::uint8_t> b(w.size() * 4);
    std::memcpy(b.data(), w.data(), b.size());
    return b;
  }
  // The first instruction with opcode op whose word count is at least n, or
  // 0.
  std::size_t find(std::uint32_t op, std::uint32_t n = 1) const {
    for (std::size_t i : insns) {
      if ((w[i] & 0xffff) == op && (w[i] >> 16) >= n) return i;
    }
    return 0;
  }
};

TEST_F(ZeSpirv, MalformedAndMutatedModulesAreBuildFailuresWithALog) {
  std::vector<std::pair<std::string, std::vector<std::uint8_t>>> cases;
  const SpirvWords good(spirv);
  ASSERT_GT(good.insns.size(), 50u);
  for (std::size_t n = 1; n < spirv.size(); n += n < 64 ? 1 : 97)
    cases.emplace_back("truncated to " + std::to_string(n) + " bytes",
                       std::vector<std::uint8_t>(spirv.begin(), spirv.begin() + n));
  auto with = [&](const std::string& what, auto&& change) {
    SpirvWords m = good;
    change(m);
    cases.emplace_back(what, m.bytes());
  };
  with("bad magic", [](SpirvWords& m) { m.w[0] = 0x07230204; });
  with("byte-swapped magic", [](SpirvWords& m) { m.w[0] = 0x03022307; });
  with("SPIR-V 1.6", [](SpirvWords& m) { m.w[1] = 0x00010600; });
  with("id bound 0", [](SpirvWords& m) { m.w[3] = 0; });
  with("unknown opcode", [](SpirvWords& m) { m.w[m.insns[m.insns.size() / 2]] |= 0xfff0; });
  with("word count 0", [](SpirvWords& m) { m.w[m.insns[m.insns.size() / 2]] &= 0xffff; });
  with("word count past the end", [](SpirvWords& m) { m.w[m.insns.back()] |= 0xffff0000; });
  // What the translator asserts on although spirv-val accepts it: an
  // alignment that is no power of two.
  const std::size_t load = good.find(61 /* OpLoad */, 6);  // with memory operands
  ASSERT_NE(0u, load) << "kernels.spv has an OpLoad with memory operands";
  with("OpLoad Aligned 6", [&](SpirvWords& m) {
    m.w[load + 4] |= 2;  // Aligned
    m.w[load + 5] = 6;
    m.w[load] = (m.w[load] & 0xffff) | (6u << 16);
  });
  // A string whose padding after its NUL is not zero (an OpName whose last
  // word is padding only).
  std::size_t name = 0;
  for (std::size_t i : good.insns) {
    if ((good.w[i] & 0xffff) == 5 /* OpName */ && good.w[i + (good.w[i] >> 16) - 1] == 0) name = i;
  }
  ASSERT_NE(0u, name) << "kernels.spv has an OpName padded with a whole word";
  with("string padding", [&](SpirvWords& m) { m.w[name + (m.w[name] >> 16) - 1] = 0x40000000; });
  // Random mutations of 1 to 3 words of the valid modules, the same ones
  // every run (XESVM_ZE_HOSTILE_SEED and XESVM_ZE_HOSTILE_COUNT, per
  // module, choose others for a longer search).
  const char* seed_env = std::getenv("XESVM_ZE_HOSTILE_SEED");
  const char* count_env = std::getenv("XESVM_ZE_HOSTILE_COUNT");
  std::mt19937 rng(seed_env ? static_cast<std::uint32_t>(std::strtoul(seed_env, nullptr, 0)) : 16u);
  const int count = count_env ? std::atoi(count_env) : 100;
  for (const char* file : {"kernels.spv", "features.spv", "globals.spv"}) {
    const SpirvWords valid(read_spirv(file));
    ASSERT_GT(valid.w.size(), 5u) << file;
    for (int i = 0; i < count; ++i) {
      SpirvWords m = valid;
      const int k = 1 + static_cast<int>(rng() % 3);
      for (int j = 0; j < k; ++j) {
        const std::size_t at = 5 + rng() % (m.w.size() - 5);
        switch (rng() % 3) {
          case 0:
            m.w[at] = static_cast<std::uint32_t>(rng());
            break;
          case 1:
            m.w[at] ^= 1u << (rng() % 32);
            break;
          default:
            m.w[at] = (m.w[at] & 0xffff0000) | (rng() % 400);  // another opcode
        }
      }
      cases.emplace_back(std::string(file) + " mutation " + std::to_string(i), m.bytes());
    }
  }
  int built = 0, failed = 0;
  for (const auto& [what, il] : cases) {
    ze_module_build_log_handle_t log = nullptr;
    ze_module_desc_t md{
        ZE_STRUCTURE_TYPE_MODULE_DESC, nullptr, ZE_MODULE_FORMAT_IL_SPIRV, il.size(), il.data(), "", nullptr};
    ze_module_handle_t m = nullptr;
    const ze_result_t r = zeModuleCreate(ctx, device, &md, &m, intercept_mode() ? nullptr : &log);
    const std::string text = log ? log_text(log) : std::string();
    if (r == ZE_RESULT_SUCCESS) {
      ++built;  // a mutation that left a valid module
      ASSERT_NE(nullptr, m) << what;
      ZE_OK(zeModuleDestroy(m));
      continue;
    }
    ++failed;
    ASSERT_EQ(ZE_RESULT_ERROR_MODULE_BUILD_FAILURE, r) << what << ": " << text;
    EXPECT_EQ(nullptr, m) << what;
    if (intercept_mode()) continue;  // no log of a failed build there
    EXPECT_FALSE(text.empty()) << what << ": a failed build says why";
    if (what == "OpLoad Aligned 6") {
      EXPECT_NE(std::string::npos, text.find("memory access Aligned 6")) << text;
    }
    if (what == "string padding") {
      EXPECT_NE(std::string::npos, text.find("non-zero padding")) << text;
    }
    if (what == "bad magic") {
      EXPECT_NE(std::string::npos, text.find("magic")) << text;
    }
  }
  EXPECT_GT(failed, 100);
  std::printf("hostile modules: %d failed to build (each with a log), %d still valid and built\n", failed, built);
}

// ---- Program-scope variables (tests/spirv/globals.cl) ----

class ZeSpirvGlobals : public ZeSpirvFeatures {
 protected:
  void SetUp() override {
    Ze::SetUp();
    std::string text;
    ASSERT_EQ(ZE_RESULT_SUCCESS, build("globals.spv", &module, &text)) << text;
  }
  // The exported variable name of m: its address and size.
  std::pair<void*, std::size_t> global(ze_module_handle_t m, const char* name) {
    void* p = nullptr;
    std::size_t n = 0;
    EXPECT_EQ(ZE_RESULT_SUCCESS, zeModuleGetGlobalPointer(m, name, &n, &p)) << name;
    return {p, n};
  }
  // The int at device address p, copied to the host.
  std::int32_t read_int(void* p) {
    std::int32_t v = 0;
    EXPECT_EQ(ZE_RESULT_SUCCESS, zeCommandListAppendMemoryCopy(sync_imm, &v, p, sizeof v, nullptr, 0, nullptr));
    return v;
  }
  void run_bump(ze_module_handle_t m, std::int32_t v, std::uint32_t items) {
    ze_kernel_handle_t k = kernel(m, "bump");
    ZE_OK(zeKernelSetArgumentValue(k, 0, 4, &v));
    launch(k, 16, items / 16);
    ZE_OK(zeKernelDestroy(k));
  }
};

TEST_F(ZeSpirvGlobals, KernelReadsInitialisedTablesStructsAndPointers) {
  constexpr int n = 1000;
  auto* out = static_cast<std::int64_t*>(shared((n + 8) * 8));
  std::fill(out, out + n + 8, -1);
  ze_kernel_handle_t k = kernel(module, "read_tables");
  ZE_OK(zeKernelSetArgumentValue(k, 0, 8, &out));
  ZE_OK(zeKernelSetArgumentValue(k, 1, 4, &n));
  launch(k, 8, n / 8);
  const int table[8] = {2, 3, 5, 7, 11, 13, 17, 19};
  for (int i = 0; i < n; ++i) ASSERT_EQ(table[i % 8], out[i]) << i;  // zeros[] is all zero
  EXPECT_EQ(-4, out[n]);                                             // rec.a
  EXPECT_EQ(25, out[n + 1]);                                         // rec.b * 10
  EXPECT_EQ(1234567890123, out[n + 2]);                              // rec.c
  EXPECT_EQ('r' + '!', out[n + 3]);                                  // rec.tag
  EXPECT_EQ(7, out[n + 4]);    // *counter_ptr: the initializer's pointer was relocated
  EXPECT_EQ(299, out[n + 5]);  // &zeros[299] - zeros
  EXPECT_EQ(41, out[n + 6]);   // the variable without linkage
  EXPECT_EQ(7, out[n + 7]);    // counter
  ZE_OK(zeKernelDestroy(k));
}

TEST_F(ZeSpirvGlobals, VariablesAreDeviceMemoryTheHostReadsThroughTheirPointer) {
  const auto [counter, size] = global(module, "counter");
  ASSERT_NE(nullptr, counter);
  EXPECT_EQ(4u, size);
  // Device memory of the module: a device allocation the CPU cannot touch.
  ze_memory_allocation_properties_t ap{ZE_STRUCTURE_TYPE_MEMORY_ALLOCATION_PROPERTIES, nullptr};
  ze_device_handle_t owner = nullptr;
  ZE_OK(zeMemGetAllocProperties(ctx, counter, &ap, &owner));
  EXPECT_EQ(ZE_MEMORY_TYPE_DEVICE, ap.type);
  EXPECT_EQ(device, owner);
  EXPECT_EQ(7, read_int(counter));
  run_bump(module, 99, 256);
  EXPECT_EQ(7 + 256, read_int(counter));
  const auto [rec, rec_size] = global(module, "rec");
  EXPECT_EQ(24u, rec_size);
  EXPECT_EQ(99, read_int(rec));
  // Sizes of the others; the pointer's value is the address of counter.
  EXPECT_EQ(32u, global(module, "table").second);
  EXPECT_EQ(1200u, global(module, "zeros").second);
  void* p = global(module, "counter_ptr").first;
  void* pointee = nullptr;
  ZE_OK(zeCommandListAppendMemoryCopy(sync_imm, &pointee, p, 8, nullptr, 0, nullptr));
  EXPECT_EQ(counter, pointee);
}

TEST_F(ZeSpirvGlobals, KernelSeesWhatTheHostWroteToAVariable) {
  constexpr std::uint32_t n = 256;
  void* scale = global(module, "scale").first;
  ASSERT_NE(nullptr, scale);
  const std::int32_t three = 3;
  ZE_OK(zeCommandListAppendMemoryCopy(sync_imm, scale, &three, 4, nullptr, 0, nullptr));
  auto* out = static_cast<std::int32_t*>(shared(n * 4));
  ze_kernel_handle_t k = kernel(module, "scaled");
  ZE_OK(zeKernelSetArgumentValue(k, 0, 8, &out));
  launch(k, 32, n / 32);
  for (std::uint32_t i = 0; i < n; ++i) ASSERT_EQ(static_cast<std::int32_t>(3 * i), out[i]) << i;
  ZE_OK(zeKernelDestroy(k));
}

TEST_F(ZeSpirvGlobals, TwoModulesOfTheSameSpirvHaveTheirOwnVariables) {
  ze_module_handle_t other = nullptr;
  std::string text;
  ASSERT_EQ(ZE_RESULT_SUCCESS, build("globals.spv", &other, &text)) << text;
  void* a = global(module, "counter").first;
  void* b = global(other, "counter").first;
  ASSERT_NE(nullptr, b);
  EXPECT_NE(a, b);
  run_bump(module, 5, 64);
  EXPECT_EQ(7 + 64, read_int(a));
  EXPECT_EQ(7, read_int(b)) << "the second module shares the first one's storage";
  run_bump(other, 6, 32);
  EXPECT_EQ(7 + 64, read_int(a));
  EXPECT_EQ(7 + 32, read_int(b));
  ZE_OK(zeModuleDestroy(other));
  // Its block went with it.
  ze_memory_allocation_properties_t ap{ZE_STRUCTURE_TYPE_MEMORY_ALLOCATION_PROPERTIES, nullptr};
  ze_device_handle_t owner = nullptr;
  ZE_OK(zeMemGetAllocProperties(ctx, b, &ap, &owner));
  EXPECT_EQ(ZE_MEMORY_TYPE_UNKNOWN, ap.type);
  EXPECT_EQ(7 + 64, read_int(a));
}

TEST_F(ZeSpirvGlobals, GetGlobalPointerAnswersAsTheSpecificationSays) {
  // Both outputs are optional.
  std::size_t n = 0;
  ZE_OK(zeModuleGetGlobalPointer(module, "table", &n, nullptr));
  EXPECT_EQ(32u, n);
  void* p = nullptr;
  ZE_OK(zeModuleGetGlobalPointer(module, "table", nullptr, &p));
  EXPECT_NE(nullptr, p);
  ZE_OK(zeModuleGetGlobalPointer(module, "table", nullptr, nullptr));
  // Unknown names, the variable without linkage and kernel names are not
  // globals.
  for (const char* name : {"nope", "hidden", "bump", ""}) {
    ZE_EXPECT(ZE_RESULT_ERROR_INVALID_GLOBAL_NAME, zeModuleGetGlobalPointer(module, name, &n, &p)) << name;
  }
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER, zeModuleGetGlobalPointer(module, nullptr, &n, &p));
  if (!intercept_mode()) {
    ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_HANDLE, zeModuleGetGlobalPointer(nullptr, "table", &n, &p));
  }
  // A module without variables has none.
  ze_module_handle_t plain = nullptr;
  std::string text;
  ASSERT_EQ(ZE_RESULT_SUCCESS, build("kernels.spv", &plain, &text)) << text;
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_GLOBAL_NAME, zeModuleGetGlobalPointer(plain, "table", &n, &p));
  ZE_OK(zeModuleDestroy(plain));
}

// ---- The translator program (level-zero/spirv_translator_process.hpp) ----

// Sets an environment variable for the scope of the object (the driver
// reads the translator's variables at each translation).
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

class ZeSpirvTranslator : public Ze {
 protected:
  void SetUp() override {
    Ze::SetUp();
    char tmpl[] = "/tmp/xesvm-ze-translator-XXXXXX";
    ASSERT_NE(nullptr, ::mkdtemp(tmpl));
    dir = tmpl;
  }
  void TearDown() override {
    std::filesystem::remove_all(dir);
    Ze::TearDown();
  }
  // Builds file with build flags unique to this call (each build a cold
  // one, translated: the caches never have it); *log gets the build log
  // (empty in intercept mode).
  ze_result_t build(const char* file, std::string* log) {
    const std::vector<std::uint8_t> il = read_spirv(file);
    EXPECT_GT(il.size(), 20u) << file;
    static int serial = 0;
    const std::string flags = "-DXESVM_TRANSLATOR_TEST=" + std::to_string(::getpid()) + "." + std::to_string(++serial);
    ze_module_desc_t md{ZE_STRUCTURE_TYPE_MODULE_DESC,
                        nullptr,
                        ZE_MODULE_FORMAT_IL_SPIRV,
                        il.size(),
                        il.data(),
                        flags.c_str(),
                        nullptr};
    ze_module_build_log_handle_t h = nullptr;
    ze_module_handle_t m = nullptr;
    const ze_result_t r = zeModuleCreate(ctx, device, &md, &m, intercept_mode() ? nullptr : &h);
    log->clear();
    if (h) *log = log_text(h);
    if (r == ZE_RESULT_SUCCESS) {
      EXPECT_NE(nullptr, m);
      EXPECT_EQ(ZE_RESULT_SUCCESS, zeModuleDestroy(m));
    } else {
      EXPECT_EQ(nullptr, m);
    }
    return r;
  }
  // An executable shell script in dir named name.
  std::string script(const std::string& name, const std::string& body) {
    const std::string path = (dir / name).string();
    std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
    std::filesystem::permissions(path, std::filesystem::perms::owner_all);
    return path;
  }
  // Requires the build of kernels.spv to fail, with a log holding every
  // needle where the log is passed (not in intercept mode).
  void expect_build_failure_naming(const std::vector<std::string>& needles) {
    std::string text;
    EXPECT_EQ(ZE_RESULT_ERROR_MODULE_BUILD_FAILURE, build("kernels.spv", &text));
    if (intercept_mode()) return;
    for (const auto& needle : needles) EXPECT_NE(std::string::npos, text.find(needle)) << needle << " in:\n" << text;
  }
  std::filesystem::path dir;
};

// The old translator ran in a fork of this (multi-threaded) process, where
// only async-signal-safe calls are allowed: a lock another thread held at
// the fork stayed locked in the child, which then hung on it until the
// timeout (under ASan: the allocator's locks, about one build in 170). The
// spawned program shares no lock with this process: every build finishes
// however busy the other threads are with the allocator and with the C++
// library's locale lock.
TEST_F(ZeSpirvTranslator, ModulesBuildWhileOtherThreadsKeepAllocatingAndTakingLocks) {
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> rounds{0};
  std::vector<std::thread> busy;
  for (int t = 0; t < 2; ++t) {
    busy.emplace_back([&, t] {
      std::mt19937 rng(static_cast<std::uint32_t>(t));
      std::vector<std::unique_ptr<char[]>> held(64);
      while (!stop.load(std::memory_order_relaxed)) {
        // Allocations of every size class, from small to mmap'd ones.
        const std::size_t size = std::size_t{1} << (rng() % 18);
        held[rng() % held.size()] = std::make_unique<char[]>(size);
        rounds.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  // std::locale::global takes the lock a new stream's locale takes.
  busy.emplace_back([&] {
    const std::locale custom(std::locale::classic(), new std::numpunct<char>);
    while (!stop.load(std::memory_order_relaxed)) {
      std::locale::global(custom);
      std::locale::global(std::locale::classic());
    }
  });
  const int builds = 9;
  int built = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < builds; ++i) {
    std::string text;
    // wide_sub_groups.spv fails after its translation (when lowered), so
    // most builds are translations only; every third one is a whole build.
    const bool whole = i % 3 == 0;
    const ze_result_t r = build(whole ? "kernels.spv" : "wide_sub_groups.spv", &text);
    if (whole) {
      EXPECT_EQ(ZE_RESULT_SUCCESS, r) << "build " << i << ": " << text;
      built += r == ZE_RESULT_SUCCESS;
    } else {
      EXPECT_EQ(ZE_RESULT_ERROR_MODULE_BUILD_FAILURE, r) << "build " << i << ": " << text;
      if (!intercept_mode()) {
        EXPECT_NE(std::string::npos, text.find("requires a sub-group size of 16")) << "build " << i << ": " << text;
      }
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  stop = true;
  for (auto& t : busy) t.join();
  EXPECT_EQ(builds / 3, built);
  EXPECT_GT(rounds.load(), 1000u) << "the other threads allocated throughout";
  std::printf("%d builds in %.1f s while 3 threads allocated (%llu allocations) and took the locale lock\n", builds,
              seconds, static_cast<unsigned long long>(rounds.load()));
}

TEST_F(ZeSpirvTranslator, MissingTranslatorProgramFailsTheBuildNamingThePath) {
  const std::string missing = (dir / "no-such-translator").string();
  const ScopedEnv env("XESVM_SPIRV_TRANSLATOR", missing);
  expect_build_failure_naming({"translator program is missing", missing});
  // A directory or a file that is not executable is no program either.
  const std::string plain = (dir / "plain-file").string();
  std::ofstream(plain) << "not a program\n";
  for (const std::string& p : {dir.string(), plain}) {
    const ScopedEnv e("XESVM_SPIRV_TRANSLATOR", p);
    expect_build_failure_naming({"translator program is missing", p + ", which is not an executable file"});
  }
}

TEST_F(ZeSpirvTranslator, TranslatorKilledByASignalFailsTheBuildNamingTheSignal) {
  const std::string crash = script("crash", "echo 'translator: about to crash' >&2\nkill -SEGV $$");
  {
    const ScopedEnv env("XESVM_SPIRV_TRANSLATOR", crash);
    expect_build_failure_naming({"SPIRV-LLVM-Translator crashed on it", crash,
                                 "was killed by signal 11 (SIGSEGV, Segmentation fault)",
                                 "it said: translator: about to crash"});
  }
  {
    const std::string abort = script("abort", "kill -ABRT $$");
    const ScopedEnv env("XESVM_SPIRV_TRANSLATOR", abort);
    expect_build_failure_naming({"was killed by signal 6 (SIGABRT"});
  }
  // The application goes on: the real translator builds the next module.
  std::string text;
  EXPECT_EQ(ZE_RESULT_SUCCESS, build("kernels.spv", &text)) << text;
}

TEST_F(ZeSpirvTranslator, TranslatorThatDoesNotFinishIsKilledAndTheBuildFailsSayingSo) {
  // The program never answers: the driver kills it at the timeout.
  const std::string hang = script("hang", "echo 'translator: thinking' >&2\nexec sleep 600");
  const ScopedEnv env("XESVM_SPIRV_TRANSLATOR", hang);
  const ScopedEnv timeout("XESVM_SPIRV_TRANSLATOR_TIMEOUT", "1.5");
  const auto t0 = std::chrono::steady_clock::now();
  expect_build_failure_naming({"did not finish in 1500 ms", hang + " was killed", "it said: translator: thinking"});
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(seconds, 30.0) << "the timeout ended the build";
  EXPECT_GE(seconds, 1.4);
  const ScopedEnv bad("XESVM_SPIRV_TRANSLATOR_TIMEOUT", "soon");
  expect_build_failure_naming({"XESVM_SPIRV_TRANSLATOR_TIMEOUT is 'soon'"});
}

TEST_F(ZeSpirvTranslator, TranslatorThatExitsWithoutAnAnswerFailsTheBuildSayingSo) {
  const struct {
    const char* body;
    std::vector<std::string> needles;
  } cases[] = {
      {"echo 'translator: out of luck' >&2\nexit 3", {"failed (exit status 3)", "it said: translator: out of luck"}},
      {"cat > /dev/null\nexit 0", {"the translator program answered nothing"}},
      {"printf 'XSTA'\nexit 0", {"the translator program's answer is truncated in its header"}},
      {"printf 'hello, world'\nexit 0", {"the translator program's answer has a bad magic number"}},
  };
  int i = 0;
  for (const auto& c : cases) {
    const std::string p = script("case" + std::to_string(i++), c.body);
    const ScopedEnv env("XESVM_SPIRV_TRANSLATOR", p);
    auto needles = c.needles;
    needles.push_back(p);
    expect_build_failure_naming(needles);
  }
}

// The driver finds the program where the build and the install put it,
// relative to its own file: a driver elsewhere (here: this build's, linked
// into a directory of its own) without the program next to it or at the
// installed place fails its builds naming both paths; with the program at
// the installed place (libexecdir/xesvm) it builds.
TEST_F(ZeSpirvTranslator, DriverFindsTheProgramNextToItOrWhereTheInstallPutsIt) {
  const char* driver = std::getenv("ZE_ENABLE_ALT_DRIVERS");
  ASSERT_NE(nullptr, driver) << "the tests run the driver through ZE_ENABLE_ALT_DRIVERS";
  const std::filesystem::path built_driver = driver;
  const std::filesystem::path program = built_driver.parent_path() / "xesvm-spirv-translate";
  ASSERT_TRUE(std::filesystem::exists(program)) << "the build puts the program next to the driver: " << program;
  const std::filesystem::path lib = dir / "lib" / "xesvm";
  std::filesystem::create_directories(lib);
  std::filesystem::create_symlink(built_driver, lib / built_driver.filename());
  const std::filesystem::path installed =
      (lib / XESVM_SPIRV_TRANSLATOR_FROM_DRIVER_DIR / "xesvm-spirv-translate").lexically_normal();
  const auto child = [&] {
    return run_this_program("ZeSpirv.DeviceReportsSpirvAndTheModuleItsKernels",
                            {{"ZE_ENABLE_ALT_DRIVERS", (lib / built_driver.filename()).string()},
                             {"XESVM_SPIRV_TRANSLATOR", ""},
                             {"XESVM_ZE_DEBUG", "1"}});
  };
  const ChildRun missing = child();
  EXPECT_NE(0, missing.status) << missing.output;
  EXPECT_NE(std::string::npos, missing.output.find("translator program xesvm-spirv-translate is missing"))
      << missing.output;
  EXPECT_NE(std::string::npos, missing.output.find((lib / "xesvm-spirv-translate").string())) << missing.output;
  EXPECT_NE(std::string::npos, missing.output.find("xesvm/" XESVM_SPIRV_TRANSLATOR_FROM_DRIVER_DIR)) << missing.output;
  std::filesystem::create_directories(installed.parent_path());
  std::filesystem::create_symlink(program, installed);
  const ChildRun found = child();
  EXPECT_EQ(0, found.status) << found.output;
}

}  // namespace
}  // namespace xesvm_ze_test
