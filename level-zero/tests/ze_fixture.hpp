// The fixture of the Level Zero driver tests (ze_driver_test.cpp,
// ze_entry_points_test.cpp): one driver, device and context, immediate,
// synchronous immediate and regular lists, a queue and an event pool, with
// helpers that allocate, run lists and load the test kernels.
//
// The program links only the loader (libze_loader); ctest points
// ZE_ENABLE_ALT_DRIVERS at the built driver and XESVM_BACKEND at a small
// sim device, and runs it three times: plain, with the validation layer
// (parameter validation on) and in the loader's intercept mode. Intercept
// mode wraps every handle, and the loader dereferences handles and handle
// arrays before the driver sees them, so tests that pass NULL handles or NULL
// handle arrays skip there (saying so).
//
// Data movement is byte-checked; residency is observed with mincore(): a page
// the sim moved to device memory is no longer resident in the CPU's page
// tables.
//
// The same program runs against a device whose backend runs no kernels (the
// xe backend, in the QEMU guest of the kernel series: tests/xe/guest-suite.sh
// sets XESVM_BACKEND=xe:). Such a device reports no COMPUTE queue group
// (copy_only); its copies and fills are the GPU's, and:
//   - tests that need kernels skip when zeModuleCreate answers
//     ZE_RESULT_ERROR_UNSUPPORTED_FEATURE (MODULE_OR_SKIP), saying so;
//   - mincore() cannot see residency there (VRAM pages are device-private
//     entries, which mincore counts as resident), so those checks are the
//     sim's; the xe backend's own tests observe VRAM through MEM_REGIONS;
//   - the application's own memory (malloc, the stack) is reached by copies
//     and fills, but is not shared-system memory (sharedSystemAllocCapabilities
//     0): prefetch, advice and residency calls need driver allocations.
#pragma once

#include <gtest/gtest.h>
#include <level_zero/ze_api.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <numeric>
#include <string>
#include <vector>

#include "xesvm/ze_native_module.hpp"

#ifndef XESVM_ZE_TEST_KERNELS
#error "XESVM_ZE_TEST_KERNELS must name the test kernel library"
#endif

namespace xesvm_ze_test {

#define ZE_OK(x) ASSERT_EQ(ZE_RESULT_SUCCESS, (x))
#define ZE_EXPECT(code, x) EXPECT_EQ(code, (x))

inline bool intercept_mode() {
  const char* e = std::getenv("ZE_ENABLE_LOADER_INTERCEPT");
  return e && std::string(e) == "1";
}

#define SKIP_IF_INTERCEPT()                                                                            \
  if (intercept_mode())                                                                                \
  GTEST_SKIP() << "intercept mode: the loader dereferences NULL handles and handle arrays before the " \
                  "driver can return INVALID_NULL_HANDLE / INVALID_SIZE"

constexpr std::uint64_t kWait = 60'000'000'000ull;  // 60 s

// Loads the test kernel library as module `m` (a ze_module_handle_t declared
// here), or skips the test when the device answers that it runs no modules.
#define MODULE_OR_SKIP(m)                                                                                \
  ze_module_handle_t m = nullptr;                                                                        \
  {                                                                                                      \
    std::string why_;                                                                                    \
    const ze_result_t r_ = try_module(&m, &why_);                                                        \
    if (r_ == ZE_RESULT_ERROR_UNSUPPORTED_FEATURE)                                                       \
      GTEST_SKIP() << "zeModuleCreate: ZE_RESULT_ERROR_UNSUPPORTED_FEATURE: this device runs no kernels" \
                   << (why_.empty() ? std::string() : " (build log: " + why_ + ")");                     \
    ASSERT_EQ(ZE_RESULT_SUCCESS, r_) << why_;                                                            \
  }

// The one entry of a count-then-fill query (query(count, array)), after
// checking that the query reports exactly one.
template <class T, class Query>
T only_entry(ze_structure_type_t stype, Query query) {
  std::uint32_t n = 0;
  EXPECT_EQ(ZE_RESULT_SUCCESS, query(&n, static_cast<T*>(nullptr)));
  EXPECT_EQ(1u, n);
  T v{stype, nullptr};
  EXPECT_EQ(ZE_RESULT_SUCCESS, query(&n, &v));
  return v;
}

// What create(&out) makes, checking that it succeeds (T: the object type a
// handle points to, or void for memory).
template <class T, class Create>
T* made(Create create) {
  T* out = nullptr;
  EXPECT_EQ(ZE_RESULT_SUCCESS, create(&out));
  return out;
}

// An address the process cannot read or write (a page reserved PROT_NONE,
// kept for the life of the process so that nothing else lands there).
inline void* unmapped_page() {
  static void* const p = mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p;
}

// Pages of [p, p+n) resident in the CPU's page tables.
inline std::size_t cpu_resident_pages(const void* p, std::size_t n) {
  const long ps = sysconf(_SC_PAGESIZE);
  std::vector<unsigned char> v((n + ps - 1) / ps);
  if (mincore(const_cast<void*>(p), n, v.data()) != 0) return SIZE_MAX;
  std::size_t r = 0;
  for (unsigned char c : v) r += c & 1;
  return r;
}

class Ze : public ::testing::Test {
 protected:
  void SetUp() override {
    ZE_OK(zeInit(0));
    std::uint32_t n = 1;
    ZE_OK(zeDriverGet(&n, &driver));
    n = 1;
    ZE_OK(zeDeviceGet(driver, &n, &device));
    ze_context_desc_t cd{ZE_STRUCTURE_TYPE_CONTEXT_DESC, nullptr, 0};
    ZE_OK(zeContextCreate(driver, &cd, &ctx));
    ze_command_queue_desc_t qd{ZE_STRUCTURE_TYPE_COMMAND_QUEUE_DESC, nullptr, 0, 0, 0, ZE_COMMAND_QUEUE_MODE_DEFAULT,
                               ZE_COMMAND_QUEUE_PRIORITY_NORMAL};
    ZE_OK(zeCommandListCreateImmediate(ctx, device, &qd, &imm));
    qd.mode = ZE_COMMAND_QUEUE_MODE_SYNCHRONOUS;
    ZE_OK(zeCommandListCreateImmediate(ctx, device, &qd, &sync_imm));
    qd.mode = ZE_COMMAND_QUEUE_MODE_ASYNCHRONOUS;
    ZE_OK(zeCommandQueueCreate(ctx, device, &qd, &queue));
    ze_command_list_desc_t ld{ZE_STRUCTURE_TYPE_COMMAND_LIST_DESC, nullptr, 0, 0};
    ZE_OK(zeCommandListCreate(ctx, device, &ld, &list));
    ze_event_pool_desc_t pd{ZE_STRUCTURE_TYPE_EVENT_POOL_DESC, nullptr,
                            ZE_EVENT_POOL_FLAG_HOST_VISIBLE | ZE_EVENT_POOL_FLAG_KERNEL_TIMESTAMP, 8};
    ZE_OK(zeEventPoolCreate(ctx, &pd, 1, &device, &pool));
    ze_device_properties_t props{ZE_STRUCTURE_TYPE_DEVICE_PROPERTIES, nullptr};
    ZE_OK(zeDeviceGetProperties(device, &props));
    vram = props.maxMemAllocSize;
    std::uint32_t groups = 1;
    ze_command_queue_group_properties_t qg{ZE_STRUCTURE_TYPE_COMMAND_QUEUE_GROUP_PROPERTIES, nullptr};
    ZE_OK(zeDeviceGetCommandQueueGroupProperties(device, &groups, &qg));
    copy_only = !(qg.flags & ZE_COMMAND_QUEUE_GROUP_PROPERTY_FLAG_COMPUTE);
  }
  void TearDown() override {
    for (ze_event_handle_t e : events) zeEventDestroy(e);
    if (pool) zeEventPoolDestroy(pool);
    if (list) zeCommandListDestroy(list);
    if (queue) zeCommandQueueDestroy(queue);
    if (imm) zeCommandListDestroy(imm);
    if (sync_imm) zeCommandListDestroy(sync_imm);
    for (void* p : allocs) zeMemFree(ctx, p);
    if (ctx) zeContextDestroy(ctx);
  }

  void* shared(std::size_t n, std::size_t align = 0) {
    ze_device_mem_alloc_desc_t dd{ZE_STRUCTURE_TYPE_DEVICE_MEM_ALLOC_DESC, nullptr, 0, 0};
    ze_host_mem_alloc_desc_t hd{ZE_STRUCTURE_TYPE_HOST_MEM_ALLOC_DESC, nullptr, 0};
    void* p = nullptr;
    EXPECT_EQ(ZE_RESULT_SUCCESS, zeMemAllocShared(ctx, &dd, &hd, n, align, device, &p));
    if (p) allocs.push_back(p);
    return p;
  }
  void* dev_mem(std::size_t n, std::size_t align = 0) {
    ze_device_mem_alloc_desc_t dd{ZE_STRUCTURE_TYPE_DEVICE_MEM_ALLOC_DESC, nullptr, 0, 0};
    void* p = nullptr;
    EXPECT_EQ(ZE_RESULT_SUCCESS, zeMemAllocDevice(ctx, &dd, n, align, device, &p));
    if (p) allocs.push_back(p);
    return p;
  }
  void* host_mem(std::size_t n, std::size_t align = 0) {
    ze_host_mem_alloc_desc_t hd{ZE_STRUCTURE_TYPE_HOST_MEM_ALLOC_DESC, nullptr, 0};
    void* p = nullptr;
    EXPECT_EQ(ZE_RESULT_SUCCESS, zeMemAllocHost(ctx, &hd, n, align, &p));
    if (p) allocs.push_back(p);
    return p;
  }
  void forget(void* p) { allocs.erase(std::find(allocs.begin(), allocs.end(), p)); }
  ze_event_handle_t event(std::uint32_t index) {
    ze_event_desc_t ed{ZE_STRUCTURE_TYPE_EVENT_DESC, nullptr, index, ZE_EVENT_SCOPE_FLAG_HOST,
                       ZE_EVENT_SCOPE_FLAG_HOST};
    ze_event_handle_t e = nullptr;
    EXPECT_EQ(ZE_RESULT_SUCCESS, zeEventCreate(pool, &ed, &e));
    if (e) events.push_back(e);
    return e;
  }
  // Closes `list`, runs it on `queue`, waits, and resets it.
  ze_result_t run_list() {
    ze_result_t r = zeCommandListClose(list);
    if (r != ZE_RESULT_SUCCESS) return r;
    r = zeCommandQueueExecuteCommandLists(queue, 1, &list, nullptr);
    if (r != ZE_RESULT_SUCCESS) return r;
    r = zeCommandQueueSynchronize(queue, kWait);
    zeCommandListReset(list);
    return r;
  }
  // Runs one immediate command and waits for it through an event.
  template <class F>
  ze_result_t on_immediate(F&& append) {
    ze_event_handle_t e = event(7);
    zeEventHostReset(e);
    ze_result_t r = append(imm, e);
    if (r != ZE_RESULT_SUCCESS) return r;
    return zeEventHostSynchronize(e, kWait);
  }
  // zeModuleCreate of the test kernel library; *why gets the build log of
  // a failed build.
  ze_result_t try_module(ze_module_handle_t* m, std::string* why) {
    const xesvm::ze::NativeModuleDesc md(XESVM_ZE_TEST_KERNELS);
    ze_module_build_log_handle_t log = nullptr;
    const ze_result_t r = zeModuleCreate(ctx, device, md.get(), m, intercept_mode() ? nullptr : &log);
    if (log) {
      std::size_t n = 0;
      if (r != ZE_RESULT_SUCCESS && zeModuleBuildLogGetString(log, &n, nullptr) == ZE_RESULT_SUCCESS && n > 1) {
        why->assign(n, '\0');
        zeModuleBuildLogGetString(log, &n, why->data());
        why->resize(n - 1);
      }
      zeModuleBuildLogDestroy(log);
    }
    return r;
  }
  ze_module_handle_t module_from_path(ze_module_build_log_handle_t* log = nullptr) {
    return module_from_library(XESVM_ZE_TEST_KERNELS, log);
  }
  ze_module_handle_t module_from_library(const char* path, ze_module_build_log_handle_t* log = nullptr) {
    const xesvm::ze::NativeModuleDesc md(path);
    return made<_ze_module_handle_t>([&](auto* h) { return zeModuleCreate(ctx, device, md.get(), h, log); });
  }
  // Shared a, b, c of n floats for vector add: a[i] = i, b[i] = 2i + 0.5,
  // c[i] = -1 (so c = a + b is 3i + 0.5). Binds them and n as arguments
  // 0..3 of k.
  struct Vectors {
    float *a, *b, *c;
  };
  Vectors vector_add_inputs(ze_kernel_handle_t k, std::uint32_t n) {
    Vectors v{static_cast<float*>(shared(n * 4)), static_cast<float*>(shared(n * 4)),
              static_cast<float*>(shared(n * 4))};
    for (std::uint32_t i = 0; i < n; ++i) {
      v.a[i] = static_cast<float>(i);
      v.b[i] = static_cast<float>(2 * i) + 0.5f;
      v.c[i] = -1;
    }
    EXPECT_EQ(ZE_RESULT_SUCCESS, zeKernelSetArgumentValue(k, 0, 8, &v.a));
    EXPECT_EQ(ZE_RESULT_SUCCESS, zeKernelSetArgumentValue(k, 1, 8, &v.b));
    EXPECT_EQ(ZE_RESULT_SUCCESS, zeKernelSetArgumentValue(k, 2, 8, &v.c));
    EXPECT_EQ(ZE_RESULT_SUCCESS, zeKernelSetArgumentValue(k, 3, 4, &n));
    return v;
  }
  // Runs a reduction kernel k(in, out, scratch (local), errors) over groups
  // groups of `group` items through `list` and the queue, and checks that
  // out holds each group's sum and that no item counted an error.
  void expect_reduction(ze_kernel_handle_t k, std::uint32_t group, std::uint32_t groups) {
    auto* in = static_cast<std::uint32_t*>(shared(group * groups * 4));
    auto* out = static_cast<std::uint32_t*>(shared(groups * 4));
    auto* errors = static_cast<std::uint32_t*>(shared(4));
    ASSERT_TRUE(in && out && errors);
    for (std::uint32_t i = 0; i < group * groups; ++i) in[i] = i * 7 + 3;
    std::fill(out, out + groups, 0u);
    *errors = 0;
    ZE_OK(zeKernelSetArgumentValue(k, 0, 8, &in));
    ZE_OK(zeKernelSetArgumentValue(k, 1, 8, &out));
    ZE_OK(zeKernelSetArgumentValue(k, 2, group * 4, nullptr));
    ZE_OK(zeKernelSetArgumentValue(k, 3, 8, &errors));
    ZE_OK(zeKernelSetGroupSize(k, group, 1, 1));
    const ze_group_count_t g{groups, 1, 1};
    ZE_OK(zeCommandListAppendLaunchKernel(list, k, &g, nullptr, 0, nullptr));
    ZE_OK(run_list());
    for (std::uint32_t grp = 0; grp < groups; ++grp) {
      std::uint32_t want = 0;
      for (std::uint32_t i = 0; i < group; ++i) want += (grp * group + i) * 7 + 3;
      EXPECT_EQ(want, out[grp]) << "group " << grp;
    }
    EXPECT_EQ(0u, *errors) << "a group saw another group's local memory";
  }
  ze_kernel_handle_t kernel(ze_module_handle_t m, const char* name) {
    ze_kernel_desc_t kd{ZE_STRUCTURE_TYPE_KERNEL_DESC, nullptr, 0, name};
    return made<_ze_kernel_handle_t>([&](auto* h) { return zeKernelCreate(m, &kd, h); });
  }

  ze_driver_handle_t driver = nullptr;
  ze_device_handle_t device = nullptr;
  ze_context_handle_t ctx = nullptr;
  ze_command_list_handle_t imm = nullptr, sync_imm = nullptr, list = nullptr;
  ze_command_queue_handle_t queue = nullptr;
  ze_event_pool_handle_t pool = nullptr;
  std::vector<ze_event_handle_t> events;
  std::vector<void*> allocs;
  std::uint64_t vram = 0;
  bool copy_only = false;  ///< the device's queues run copies and fills only (xe)
};

// Not a handle of any object: what an uninitialised local might hold.
template <class H>
H bogus() {
  static std::uint64_t garbage[16] = {};
  return reinterpret_cast<H>(&garbage[3]);
}

}  // namespace xesvm_ze_test
