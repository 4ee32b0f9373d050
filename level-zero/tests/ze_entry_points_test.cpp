// The entry points' handling of handles: the registry of live handles, the
// NULL output handle of a failed create, and a walk over every entry point
// of the 1.4 tables with NULL, unknown and valid handles (the fixture and
// how ctest runs the suite are described in ze_fixture.hpp).
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "ze_fixture.hpp"

namespace {

using namespace xesvm_ze_test;

// A create that fails leaves NULL in its output handle, so that a program
// which goes on with it gets INVALID_NULL_HANDLE rather than a crash. Each
// failure is one the driver itself reports (the validation layer passes
// these calls through).
TEST_F(Ze, FailedCreatesLeaveNullHandles) {
  const bool intercept = intercept_mode();
  ze_device_handle_t bad_dev = bogus<ze_device_handle_t>();
  ze_context_desc_t cd{ZE_STRUCTURE_TYPE_CONTEXT_DESC, nullptr, 0};
  ze_context_handle_t c = bogus<ze_context_handle_t>();
  if (!intercept) {
    ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ARGUMENT, zeContextCreateEx(driver, &cd, 1, &bad_dev, &c));
    EXPECT_EQ(nullptr, c);
  }
  ze_command_queue_desc_t qd{ZE_STRUCTURE_TYPE_COMMAND_QUEUE_DESC, nullptr, 1, 0, 0, ZE_COMMAND_QUEUE_MODE_DEFAULT,
                             ZE_COMMAND_QUEUE_PRIORITY_NORMAL};  // ordinal 1: there is one queue group
  ze_command_queue_handle_t q = bogus<ze_command_queue_handle_t>();
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ARGUMENT, zeCommandQueueCreate(ctx, device, &qd, &q));
  EXPECT_EQ(nullptr, q);
  ze_command_list_handle_t l = bogus<ze_command_list_handle_t>();
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ARGUMENT, zeCommandListCreateImmediate(ctx, device, &qd, &l));
  EXPECT_EQ(nullptr, l);
  ze_command_list_desc_t ld{ZE_STRUCTURE_TYPE_COMMAND_LIST_DESC, nullptr, 1, 0};
  l = bogus<ze_command_list_handle_t>();
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ARGUMENT, zeCommandListCreate(ctx, device, &ld, &l));
  EXPECT_EQ(nullptr, l);
  ze_event_desc_t ed{ZE_STRUCTURE_TYPE_EVENT_DESC, nullptr, 8, 0, 0};  // the pool has 8 events
  ze_event_handle_t e = bogus<ze_event_handle_t>();
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ARGUMENT, zeEventCreate(pool, &ed, &e));
  EXPECT_EQ(nullptr, e);
  ze_device_mem_alloc_desc_t dd{ZE_STRUCTURE_TYPE_DEVICE_MEM_ALLOC_DESC, nullptr, 0, 0};
  ze_host_mem_alloc_desc_t hd{ZE_STRUCTURE_TYPE_HOST_MEM_ALLOC_DESC, nullptr, 0};
  void* p = &e;
  ZE_EXPECT(ZE_RESULT_ERROR_UNSUPPORTED_SIZE, zeMemAllocShared(ctx, &dd, &hd, 2 * vram, 0, device, &p));
  EXPECT_EQ(nullptr, p);
  p = &e;
  ZE_EXPECT(ZE_RESULT_ERROR_UNSUPPORTED_SIZE, zeMemAllocDevice(ctx, &dd, 2 * vram, 0, device, &p));
  EXPECT_EQ(nullptr, p);
  p = &e;
  ZE_EXPECT(ZE_RESULT_ERROR_UNSUPPORTED_ALIGNMENT, zeMemAllocHost(ctx, &hd, 64, std::size_t{1} << 31, &p));
  EXPECT_EQ(nullptr, p);
  const char junk[] = "not a kernel library";
  ze_module_desc_t md{ZE_STRUCTURE_TYPE_MODULE_DESC,
                      nullptr,
                      ZE_MODULE_FORMAT_NATIVE,
                      sizeof junk,
                      reinterpret_cast<const std::uint8_t*>(junk),
                      nullptr,
                      nullptr};
  ze_module_handle_t m = bogus<ze_module_handle_t>();
  if (copy_only) return;  // no modules on this device (ZeXe.ModulesAreUnsupportedWithABuildLog)
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NATIVE_BINARY, zeModuleCreate(ctx, device, &md, &m, nullptr));
  EXPECT_EQ(nullptr, m);
  m = module_from_path();
  ze_kernel_desc_t kd{ZE_STRUCTURE_TYPE_KERNEL_DESC, nullptr, 0, "no_such_kernel"};
  ze_kernel_handle_t k = bogus<ze_kernel_handle_t>();
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_KERNEL_NAME, zeKernelCreate(m, &kd, &k));
  EXPECT_EQ(nullptr, k);
  if (!intercept) {
    ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_HANDLE, zeKernelDestroy(k));  // the program goes on with it
    ze_fence_desc_t fd{ZE_STRUCTURE_TYPE_FENCE_DESC, nullptr, 0};
    ze_fence_handle_t f = bogus<ze_fence_handle_t>();
    ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ARGUMENT, zeFenceCreate(bogus<ze_command_queue_handle_t>(), &fd, &f));
    EXPECT_EQ(nullptr, f);
  }
  ZE_OK(zeModuleDestroy(m));
}

// Handles are checked against the objects alive: a destroyed handle, a
// handle of another kind and garbage are INVALID_ARGUMENT, never a crash.
TEST_F(Ze, DestroyedAndForeignHandlesAreRejected) {
  if (intercept_mode()) GTEST_SKIP() << "intercept mode: the loader dereferences the handle before the driver sees it";
  ze_event_handle_t e = event(2);
  ZE_OK(zeEventDestroy(e));
  events.erase(std::find(events.begin(), events.end(), e));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ARGUMENT, zeEventQueryStatus(e));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ARGUMENT, zeEventDestroy(e));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ARGUMENT, zeCommandListAppendSignalEvent(imm, e));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ARGUMENT, zeCommandListAppendWaitOnEvents(imm, 1, &e));
  // A list where an event is expected, an event where a list is.
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ARGUMENT, zeEventHostSignal(reinterpret_cast<ze_event_handle_t>(list)));
  ze_event_handle_t ok = event(3);
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ARGUMENT, zeCommandListClose(reinterpret_cast<ze_command_list_handle_t>(ok)));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ARGUMENT, zeContextGetStatus(bogus<ze_context_handle_t>()));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ARGUMENT, zeKernelSetGroupSize(bogus<ze_kernel_handle_t>(), 1, 1, 1));
}

// Every entry point of the 1.4 tables, walked with a NULL, an unknown and a
// valid handle in its first handle parameter: NULL is
// ZE_RESULT_ERROR_INVALID_NULL_HANDLE, an unknown handle
// ZE_RESULT_ERROR_INVALID_ARGUMENT, a valid one the documented result.
// Entry points the driver does not provide answer UNSUPPORTED_FEATURE and
// leave NULL in their output handle.
class EntryPoints : public Ze {
 protected:
  enum class Pass { kNull, kUnknown, kValid };

  // The handle to pass in this pass: h, NULL or garbage.
  template <class H>
  H pick(H h) const {
    switch (pass_) {
      case Pass::kNull:
        return nullptr;
      case Pass::kUnknown:
        return bogus<H>();
      case Pass::kValid:
        break;
    }
    return h;
  }
  bool valid() const { return pass_ == Pass::kValid; }

  struct Row {
    const char* name;
    std::function<ze_result_t()> call;
    ze_result_t expected = ZE_RESULT_SUCCESS;  ///< with valid handles
    const char* not_in_intercept = nullptr;    ///< why the row cannot run in intercept mode
  };

  // Runs every row in the three passes (in intercept mode only the valid
  // one: the loader dereferences the handles it wraps).
  void walk(const std::vector<Row>& rows) {
    for (Pass p : {Pass::kNull, Pass::kUnknown, Pass::kValid}) {
      if (intercept_mode() && p != Pass::kValid) continue;
      pass_ = p;
      for (const Row& r : rows) {
        if (intercept_mode() && r.not_in_intercept) {
          std::printf("not run in intercept mode: %s: %s\n", r.name, r.not_in_intercept);
          continue;
        }
        const ze_result_t want = p == Pass::kNull      ? ZE_RESULT_ERROR_INVALID_NULL_HANDLE
                                 : p == Pass::kUnknown ? ZE_RESULT_ERROR_INVALID_ARGUMENT
                                                       : r.expected;
        EXPECT_EQ(want, r.call()) << r.name
                                  << (p == Pass::kNull      ? " with a NULL handle"
                                      : p == Pass::kUnknown ? " with an unknown handle"
                                                            : " with valid handles");
      }
    }
    pass_ = Pass::kValid;
  }

  // A fresh object for the Destroy rows: destroyed by the row in the valid
  // pass, here otherwise.
  template <class H, class Make, class Destroy>
  ze_result_t destroy_fresh(Make make, Destroy destroy) {
    H h = make();
    const ze_result_t r = destroy(pick(h));
    if (!valid()) destroy(h);
    return r;
  }
  // The result of a create row; what it created (valid pass) is destroyed.
  template <class H, class Destroy>
  ze_result_t created(ze_result_t r, H* h, Destroy destroy) {
    if (r == ZE_RESULT_SUCCESS && *h) destroy(*h);
    return r;
  }

  Pass pass_ = Pass::kValid;
};

TEST_F(EntryPoints, EveryEntryPointChecksItsHandles) {
  // What the valid calls work on.
  auto* buf = static_cast<unsigned char*>(shared(8192));
  auto* stamp = static_cast<std::uint64_t*>(host_mem(64));
  ze_event_handle_t ev = event(0);
  {
    MODULE_OR_SKIP(probe);
    ZE_OK(zeModuleDestroy(probe));
  }
  ze_module_build_log_handle_t log = nullptr;
  ze_module_handle_t mod = module_from_path(&log);
  ze_kernel_handle_t kern = kernel(mod, "count");
  ZE_OK(zeKernelSetArgumentValue(kern, 0, sizeof(void*), &stamp));
  ze_fence_desc_t fd{ZE_STRUCTURE_TYPE_FENCE_DESC, nullptr, ZE_FENCE_FLAG_SIGNALED};
  ze_fence_handle_t fence = nullptr;
  ZE_OK(zeFenceCreate(queue, &fd, &fence));
  ze_command_list_desc_t ld{ZE_STRUCTURE_TYPE_COMMAND_LIST_DESC, nullptr, 0, 0};
  ze_command_list_handle_t closed = nullptr, scratch = nullptr;
  ZE_OK(zeCommandListCreate(ctx, device, &ld, &closed));
  ZE_OK(zeCommandListClose(closed));
  ZE_OK(zeCommandListCreate(ctx, device, &ld, &scratch));
  ze_context_desc_t cd{ZE_STRUCTURE_TYPE_CONTEXT_DESC, nullptr, 0};
  ze_command_queue_desc_t qd{ZE_STRUCTURE_TYPE_COMMAND_QUEUE_DESC, nullptr, 0, 0, 0, ZE_COMMAND_QUEUE_MODE_DEFAULT,
                             ZE_COMMAND_QUEUE_PRIORITY_NORMAL};
  ze_device_mem_alloc_desc_t dd{ZE_STRUCTURE_TYPE_DEVICE_MEM_ALLOC_DESC, nullptr, 0, 0};
  ze_host_mem_alloc_desc_t hd{ZE_STRUCTURE_TYPE_HOST_MEM_ALLOC_DESC, nullptr, 0};
  ze_event_pool_desc_t pd{ZE_STRUCTURE_TYPE_EVENT_POOL_DESC, nullptr, ZE_EVENT_POOL_FLAG_HOST_VISIBLE, 1};
  ze_event_desc_t ed{ZE_STRUCTURE_TYPE_EVENT_DESC, nullptr, 5, 0, 0};
  const xesvm::ze::NativeModuleDesc native(XESVM_ZE_TEST_KERNELS);
  const ze_module_desc_t& md = *native.get();
  ze_kernel_desc_t kd{ZE_STRUCTURE_TYPE_KERNEL_DESC, nullptr, 0, "count"};
  const ze_copy_region_t region{0, 0, 0, 16, 2, 1};
  const ze_group_count_t groups{1, 1, 1};
  std::uint32_t n = 0, x = 0, y = 0, z = 0;
  std::size_t size = 0;
  ze_bool_t b = 0;
  std::uint64_t t0 = 0, t1 = 0;
  void* p = nullptr;
  const unsigned char pat = 7;
  const std::size_t range_size = 64;
  const void* range = buf;
  ze_api_version_t ver{};
  ze_driver_properties_t dp{ZE_STRUCTURE_TYPE_DRIVER_PROPERTIES, nullptr};
  ze_driver_ipc_properties_t ipcp{ZE_STRUCTURE_TYPE_DRIVER_IPC_PROPERTIES, nullptr};
  ze_device_properties_t devp{ZE_STRUCTURE_TYPE_DEVICE_PROPERTIES, nullptr};
  ze_device_compute_properties_t cp{ZE_STRUCTURE_TYPE_DEVICE_COMPUTE_PROPERTIES, nullptr};
  ze_device_module_properties_t modp{ZE_STRUCTURE_TYPE_DEVICE_MODULE_PROPERTIES, nullptr};
  ze_device_memory_access_properties_t ap{ZE_STRUCTURE_TYPE_DEVICE_MEMORY_ACCESS_PROPERTIES, nullptr};
  ze_device_image_properties_t ip{ZE_STRUCTURE_TYPE_DEVICE_IMAGE_PROPERTIES, nullptr};
  ze_device_external_memory_properties_t ep{ZE_STRUCTURE_TYPE_DEVICE_EXTERNAL_MEMORY_PROPERTIES, nullptr};
  ze_device_p2p_properties_t pp{ZE_STRUCTURE_TYPE_DEVICE_P2P_PROPERTIES, nullptr};
  ze_memory_allocation_properties_t map{ZE_STRUCTURE_TYPE_MEMORY_ALLOCATION_PROPERTIES, nullptr};
  ze_memory_free_ext_desc_t fx{ZE_STRUCTURE_TYPE_MEMORY_FREE_EXT_DESC, nullptr, 0};
  ze_module_properties_t mp{ZE_STRUCTURE_TYPE_MODULE_PROPERTIES, nullptr};
  ze_kernel_properties_t kp{ZE_STRUCTURE_TYPE_KERNEL_PROPERTIES, nullptr};
  ze_kernel_timestamp_result_t ts{};
  ze_kernel_indirect_access_flags_t ia = 0;
  char* attrs = nullptr;

  auto free_mem = [&](void* q) { return zeMemFree(ctx, q); };
  auto new_mem = [&] {
    return made<void>([&](void** q) { return zeMemAllocShared(ctx, &dd, &hd, 64, 0, device, q); });
  };
  auto new_context = [&] {
    return made<_ze_context_handle_t>([&](auto* h) { return zeContextCreate(driver, &cd, h); });
  };
  auto new_queue = [&] {
    return made<_ze_command_queue_handle_t>([&](auto* h) { return zeCommandQueueCreate(ctx, device, &qd, h); });
  };
  auto new_pool = [&] {
    return made<_ze_event_pool_handle_t>([&](auto* h) { return zeEventPoolCreate(ctx, &pd, 0, nullptr, h); });
  };
  auto new_list = [&] {
    return made<_ze_command_list_handle_t>([&](auto* h) { return zeCommandListCreate(ctx, device, &ld, h); });
  };
  auto new_event = [&] { return made<_ze_event_handle_t>([&](auto* h) { return zeEventCreate(pool, &ed, h); }); };
  auto new_module = [&] {
    return made<_ze_module_handle_t>([&](auto* h) { return zeModuleCreate(ctx, device, &md, h, nullptr); });
  };
  auto new_fence = [&] { return made<_ze_fence_handle_t>([&](auto* h) { return zeFenceCreate(queue, &fd, h); }); };
  auto new_log = [&] {
    ze_module_build_log_handle_t l = nullptr;
    zeModuleDestroy(made<_ze_module_handle_t>([&](auto* h) { return zeModuleCreate(ctx, device, &md, h, &l); }));
    return l;
  };
  auto new_kernel = [&] { return made<_ze_kernel_handle_t>([&](auto* h) { return zeKernelCreate(mod, &kd, h); }); };
  ze_context_handle_t c2 = nullptr;
  ze_command_queue_handle_t q2 = nullptr;
  ze_command_list_handle_t l2 = nullptr;
  ze_event_pool_handle_t p2 = nullptr;
  ze_event_handle_t e2 = nullptr;
  ze_fence_handle_t f2 = nullptr;
  ze_module_handle_t m2 = nullptr;
  ze_kernel_handle_t k2 = nullptr;
  ze_module_handle_t mods[1] = {};

  const std::vector<Row> rows = {
      // driver
      {"zeDriverGetApiVersion", [&] { return zeDriverGetApiVersion(pick(driver), &ver); }},
      {"zeDriverGetProperties", [&] { return zeDriverGetProperties(pick(driver), &dp); }},
      {"zeDriverGetIpcProperties", [&] { return zeDriverGetIpcProperties(pick(driver), &ipcp); }},
      {"zeDriverGetExtensionProperties", [&] { return zeDriverGetExtensionProperties(pick(driver), &n, nullptr); }},
      {"zeDriverGetExtensionFunctionAddress",
       [&] { return zeDriverGetExtensionFunctionAddress(pick(driver), "zexNoSuchFunction", &p); },
       ZE_RESULT_ERROR_INVALID_ARGUMENT},
      {"zeDeviceGet", [&] { return zeDeviceGet(pick(driver), &n, nullptr); }},
      {"zeContextCreate", [&] { return created(zeContextCreate(pick(driver), &cd, &c2), &c2, zeContextDestroy); }},
      {"zeContextCreateEx",
       [&] { return created(zeContextCreateEx(pick(driver), &cd, 1, &device, &c2), &c2, zeContextDestroy); }},
      // device
      {"zeDeviceGetSubDevices", [&] { return zeDeviceGetSubDevices(pick(device), &n, nullptr); }},
      {"zeDeviceGetProperties", [&] { return zeDeviceGetProperties(pick(device), &devp); }},
      {"zeDeviceGetComputeProperties", [&] { return zeDeviceGetComputeProperties(pick(device), &cp); }},
      {"zeDeviceGetModuleProperties", [&] { return zeDeviceGetModuleProperties(pick(device), &modp); }},
      {"zeDeviceGetCommandQueueGroupProperties",
       [&] { return zeDeviceGetCommandQueueGroupProperties(pick(device), &n, nullptr); }},
      {"zeDeviceGetMemoryProperties", [&] { return zeDeviceGetMemoryProperties(pick(device), &n, nullptr); }},
      {"zeDeviceGetMemoryAccessProperties", [&] { return zeDeviceGetMemoryAccessProperties(pick(device), &ap); }},
      {"zeDeviceGetCacheProperties", [&] { return zeDeviceGetCacheProperties(pick(device), &n, nullptr); }},
      {"zeDeviceGetImageProperties", [&] { return zeDeviceGetImageProperties(pick(device), &ip); }},
      {"zeDeviceGetExternalMemoryProperties", [&] { return zeDeviceGetExternalMemoryProperties(pick(device), &ep); }},
      {"zeDeviceGetP2PProperties", [&] { return zeDeviceGetP2PProperties(pick(device), device, &pp); }},
      {"zeDeviceCanAccessPeer", [&] { return zeDeviceCanAccessPeer(pick(device), device, &b); }},
      {"zeDeviceGetStatus", [&] { return zeDeviceGetStatus(pick(device)); }},
      {"zeDeviceGetGlobalTimestamps", [&] { return zeDeviceGetGlobalTimestamps(pick(device), &t0, &t1); }},
      // context and memory
      {"zeContextGetStatus", [&] { return zeContextGetStatus(pick(ctx)); }},
      {"zeContextSystemBarrier", [&] { return zeContextSystemBarrier(pick(ctx), device); }},
      {"zeContextMakeMemoryResident", [&] { return zeContextMakeMemoryResident(pick(ctx), device, buf, 4096); }},
      {"zeContextEvictMemory", [&] { return zeContextEvictMemory(pick(ctx), device, buf, 4096); }},
      {"zeContextDestroy", [&] { return destroy_fresh<ze_context_handle_t>(new_context, zeContextDestroy); }},
      {"zeMemAllocShared",
       [&] { return created(zeMemAllocShared(pick(ctx), &dd, &hd, 64, 0, device, &p), &p, free_mem); }},
      {"zeMemAllocDevice", [&] { return created(zeMemAllocDevice(pick(ctx), &dd, 64, 0, device, &p), &p, free_mem); }},
      {"zeMemAllocHost", [&] { return created(zeMemAllocHost(pick(ctx), &hd, 64, 0, &p), &p, free_mem); }},
      {"zeMemFree",
       [&] {
         void* q = new_mem();
         const ze_result_t r = zeMemFree(pick(ctx), q);
         if (!valid()) zeMemFree(ctx, q);
         return r;
       }},
      {"zeMemFreeExt",
       [&] {
         void* q = new_mem();
         const ze_result_t r = zeMemFreeExt(pick(ctx), &fx, q);
         if (!valid()) zeMemFree(ctx, q);
         return r;
       }},
      {"zeMemGetAllocProperties", [&] { return zeMemGetAllocProperties(pick(ctx), buf, &map, nullptr); }},
      {"zeMemGetAddressRange", [&] { return zeMemGetAddressRange(pick(ctx), buf, &p, &size); }},
      // queues
      {"zeCommandQueueCreate",
       [&] { return created(zeCommandQueueCreate(pick(ctx), device, &qd, &q2), &q2, zeCommandQueueDestroy); }},
      {"zeCommandQueueDestroy",
       [&] { return destroy_fresh<ze_command_queue_handle_t>(new_queue, zeCommandQueueDestroy); }},
      {"zeCommandQueueExecuteCommandLists",
       [&] { return zeCommandQueueExecuteCommandLists(pick(queue), 1, &closed, nullptr); }},
      {"zeCommandQueueSynchronize", [&] { return zeCommandQueueSynchronize(pick(queue), kWait); }},
      // lists
      {"zeCommandListCreate",
       [&] { return created(zeCommandListCreate(pick(ctx), device, &ld, &l2), &l2, zeCommandListDestroy); }},
      {"zeCommandListCreateImmediate",
       [&] { return created(zeCommandListCreateImmediate(pick(ctx), device, &qd, &l2), &l2, zeCommandListDestroy); }},
      {"zeCommandListDestroy", [&] { return destroy_fresh<ze_command_list_handle_t>(new_list, zeCommandListDestroy); }},
      {"zeCommandListClose", [&] { return zeCommandListClose(pick(scratch)); }},
      {"zeCommandListReset", [&] { return zeCommandListReset(pick(scratch)); }},
      {"zeCommandListAppendWriteGlobalTimestamp",
       [&] { return zeCommandListAppendWriteGlobalTimestamp(pick(sync_imm), stamp, nullptr, 0, nullptr); }},
      {"zeCommandListAppendBarrier", [&] { return zeCommandListAppendBarrier(pick(sync_imm), nullptr, 0, nullptr); }},
      {"zeCommandListAppendMemoryRangesBarrier",
       [&] {
         return zeCommandListAppendMemoryRangesBarrier(pick(sync_imm), 1, &range_size, &range, nullptr, 0, nullptr);
       }},
      {"zeCommandListAppendMemoryCopy",
       [&] { return zeCommandListAppendMemoryCopy(pick(sync_imm), buf + 4096, buf, 64, nullptr, 0, nullptr); }},
      {"zeCommandListAppendMemoryFill",
       [&] { return zeCommandListAppendMemoryFill(pick(sync_imm), buf, &pat, 1, 64, nullptr, 0, nullptr); }},
      {"zeCommandListAppendMemoryCopyRegion",
       [&] {
         return zeCommandListAppendMemoryCopyRegion(pick(sync_imm), buf + 4096, &region, 64, 0, buf, &region, 64, 0,
                                                    nullptr, 0, nullptr);
       }},
      {"zeCommandListAppendMemoryCopyFromContext",
       [&] {
         return zeCommandListAppendMemoryCopyFromContext(pick(sync_imm), buf + 4096, ctx, buf, 64, nullptr, 0, nullptr);
       }},
      {"zeCommandListAppendMemoryPrefetch",
       [&] { return zeCommandListAppendMemoryPrefetch(pick(sync_imm), buf, 4096); }},
      {"zeCommandListAppendMemAdvise",
       [&] {
         return zeCommandListAppendMemAdvise(pick(sync_imm), device, buf, 4096, ZE_MEMORY_ADVICE_SET_READ_MOSTLY);
       }},
      {"zeCommandListAppendSignalEvent", [&] { return zeCommandListAppendSignalEvent(pick(sync_imm), ev); }},
      {"zeCommandListAppendWaitOnEvents", [&] { return zeCommandListAppendWaitOnEvents(pick(sync_imm), 1, &ev); }},
      {"zeCommandListAppendEventReset", [&] { return zeCommandListAppendEventReset(pick(sync_imm), ev); }},
      {"zeCommandListAppendLaunchKernel",
       [&] { return zeCommandListAppendLaunchKernel(pick(sync_imm), kern, &groups, nullptr, 0, nullptr); }},
      // events and fences
      {"zeEventPoolCreate",
       [&] { return created(zeEventPoolCreate(pick(ctx), &pd, 0, nullptr, &p2), &p2, zeEventPoolDestroy); }},
      {"zeEventPoolDestroy", [&] { return destroy_fresh<ze_event_pool_handle_t>(new_pool, zeEventPoolDestroy); }},
      {"zeEventCreate", [&] { return created(zeEventCreate(pick(pool), &ed, &e2), &e2, zeEventDestroy); }},
      {"zeEventDestroy", [&] { return destroy_fresh<ze_event_handle_t>(new_event, zeEventDestroy); }},
      {"zeEventHostSignal", [&] { return zeEventHostSignal(pick(ev)); }},
      {"zeEventHostSynchronize", [&] { return zeEventHostSynchronize(pick(ev), 0); }},
      {"zeEventQueryStatus", [&] { return zeEventQueryStatus(pick(ev)); }},
      {"zeEventQueryKernelTimestamp", [&] { return zeEventQueryKernelTimestamp(pick(ev), &ts); }},
      {"zeEventHostReset", [&] { return zeEventHostReset(pick(ev)); }},
      {"zeFenceCreate", [&] { return created(zeFenceCreate(pick(queue), &fd, &f2), &f2, zeFenceDestroy); }},
      {"zeFenceDestroy", [&] { return destroy_fresh<ze_fence_handle_t>(new_fence, zeFenceDestroy); }},
      {"zeFenceHostSynchronize", [&] { return zeFenceHostSynchronize(pick(fence), 0); }},
      {"zeFenceQueryStatus", [&] { return zeFenceQueryStatus(pick(fence)); }},
      {"zeFenceReset", [&] { return zeFenceReset(pick(fence)); }},
      // modules and kernels
      {"zeModuleCreate",
       [&] { return created(zeModuleCreate(pick(ctx), device, &md, &m2, nullptr), &m2, zeModuleDestroy); }},
      {"zeModuleDestroy", [&] { return destroy_fresh<ze_module_handle_t>(new_module, zeModuleDestroy); }},
      {"zeModuleDynamicLink",
       [&] {
         mods[0] = pick(mod);
         ze_module_build_log_handle_t link_log = nullptr;
         return created(zeModuleDynamicLink(1, mods, &link_log), &link_log, zeModuleBuildLogDestroy);
       },
       ZE_RESULT_SUCCESS, "loader 1.8.12 crashes in its zeModuleDynamicLink intercept before calling the driver"},
      {"zeModuleGetNativeBinary", [&] { return zeModuleGetNativeBinary(pick(mod), &size, nullptr); }},
      {"zeModuleGetGlobalPointer", [&] { return zeModuleGetGlobalPointer(pick(mod), "g", &size, &p); },
       ZE_RESULT_ERROR_INVALID_GLOBAL_NAME},
      {"zeModuleGetKernelNames", [&] { return zeModuleGetKernelNames(pick(mod), &n, nullptr); }},
      {"zeModuleGetProperties", [&] { return zeModuleGetProperties(pick(mod), &mp); }},
      {"zeModuleGetFunctionPointer", [&] { return zeModuleGetFunctionPointer(pick(mod), "count", &p); }},
      {"zeModuleBuildLogGetString", [&] { return zeModuleBuildLogGetString(pick(log), &size, nullptr); }},
      {"zeModuleBuildLogDestroy",
       [&] { return destroy_fresh<ze_module_build_log_handle_t>(new_log, zeModuleBuildLogDestroy); }},
      {"zeKernelCreate", [&] { return created(zeKernelCreate(pick(mod), &kd, &k2), &k2, zeKernelDestroy); }},
      {"zeKernelDestroy", [&] { return destroy_fresh<ze_kernel_handle_t>(new_kernel, zeKernelDestroy); }},
      {"zeKernelSetCacheConfig", [&] { return zeKernelSetCacheConfig(pick(kern), 0); }},
      {"zeKernelSetGroupSize", [&] { return zeKernelSetGroupSize(pick(kern), 1, 1, 1); }},
      {"zeKernelSuggestGroupSize", [&] { return zeKernelSuggestGroupSize(pick(kern), 8, 1, 1, &x, &y, &z); }},
      {"zeKernelSetArgumentValue", [&] { return zeKernelSetArgumentValue(pick(kern), 0, sizeof(void*), &stamp); }},
      {"zeKernelSetIndirectAccess", [&] { return zeKernelSetIndirectAccess(pick(kern), 0); }},
      {"zeKernelGetIndirectAccess", [&] { return zeKernelGetIndirectAccess(pick(kern), &ia); }},
      {"zeKernelGetSourceAttributes", [&] { return zeKernelGetSourceAttributes(pick(kern), &n, &attrs); }},
      {"zeKernelGetProperties", [&] { return zeKernelGetProperties(pick(kern), &kp); }},
      {"zeKernelGetName", [&] { return zeKernelGetName(pick(kern), &size, nullptr); }},
  };
  walk(rows);
  ZE_OK(zeKernelDestroy(kern));
  ZE_OK(zeModuleDestroy(mod));
  ZE_OK(zeModuleBuildLogDestroy(log));
  ZE_OK(zeFenceDestroy(fence));
  ZE_OK(zeCommandListDestroy(closed));
  ZE_OK(zeCommandListDestroy(scratch));
}

// Images, samplers, virtual and physical memory, IPC, cooperative and
// indirect launches, timestamp queries: UNSUPPORTED_FEATURE, with NULL in
// what a create would have returned, and nothing else changed.
TEST_F(EntryPoints, UnsupportedFeaturesSayso) {
  auto* buf = static_cast<unsigned char*>(shared(4096));
  buf[0] = 42;
  ze_event_handle_t ev = event(1);
  MODULE_OR_SKIP(mod);
  ze_kernel_handle_t kern = kernel(mod, "count");
  const ze_group_count_t groups{1, 1, 1};
  ze_image_desc_t id{ZE_STRUCTURE_TYPE_IMAGE_DESC, nullptr};
  id.type = ZE_IMAGE_TYPE_2D;
  id.width = id.height = 16;
  ze_image_properties_t ipr{ZE_STRUCTURE_TYPE_IMAGE_PROPERTIES, nullptr};
  ze_image_handle_t img = bogus<ze_image_handle_t>();
  ze_sampler_desc_t sd{ZE_STRUCTURE_TYPE_SAMPLER_DESC, nullptr, ZE_SAMPLER_ADDRESS_MODE_NONE,
                       ZE_SAMPLER_FILTER_MODE_NEAREST, 0};
  ze_sampler_handle_t smp = bogus<ze_sampler_handle_t>();
  ze_physical_mem_desc_t pmd{ZE_STRUCTURE_TYPE_PHYSICAL_MEM_DESC, nullptr, 0, 65536};
  ze_physical_mem_handle_t pm = bogus<ze_physical_mem_handle_t>();
  void* vp = buf;
  std::size_t page = 0;
  ze_ipc_mem_handle_t mh{};
  void* opened = buf;
  ze_ipc_event_pool_handle_t eh{};
  ze_event_pool_handle_t opened_pool = bogus<ze_event_pool_handle_t>();
  std::uint32_t n = 0;
  const ze_result_t kU = ZE_RESULT_ERROR_UNSUPPORTED_FEATURE;
  ZE_EXPECT(kU, zeImageGetProperties(device, &id, &ipr));
  ZE_EXPECT(kU, zeImageCreate(ctx, device, &id, &img));
  EXPECT_EQ(nullptr, img);
  ZE_EXPECT(kU, zeSamplerCreate(ctx, device, &sd, &smp));
  EXPECT_EQ(nullptr, smp);
  ZE_EXPECT(kU, zePhysicalMemCreate(ctx, device, &pmd, &pm));
  EXPECT_EQ(nullptr, pm);
  ZE_EXPECT(kU, zeVirtualMemReserve(ctx, reinterpret_cast<void*>(std::uintptr_t{1} << 44), 65536, &vp));
  EXPECT_EQ(nullptr, vp);
  ZE_EXPECT(kU, zeVirtualMemQueryPageSize(ctx, device, 65536, &page));
  ZE_EXPECT(kU, zeMemGetIpcHandle(ctx, buf, &mh));
  ZE_EXPECT(kU, zeMemOpenIpcHandle(ctx, device, mh, 0, &opened));
  EXPECT_EQ(nullptr, opened);
  ZE_EXPECT(kU, zeEventPoolGetIpcHandle(pool, &eh));
  ZE_EXPECT(kU, zeEventPoolOpenIpcHandle(ctx, eh, &opened_pool));
  EXPECT_EQ(nullptr, opened_pool);
  ZE_EXPECT(kU, zeCommandListAppendLaunchCooperativeKernel(sync_imm, kern, &groups, ev, 0, nullptr));
  ZE_EXPECT(kU, zeKernelSuggestMaxCooperativeGroupCount(kern, &n));
  ZE_EXPECT(kU, zeCommandListAppendQueryKernelTimestamps(sync_imm, 1, &ev, buf, nullptr, nullptr, 0, nullptr));
  // Nothing happened: the event is not signaled, the memory unchanged.
  ZE_EXPECT(ZE_RESULT_NOT_READY, zeEventQueryStatus(ev));
  EXPECT_EQ(42, buf[0]);
  ZE_OK(zeKernelDestroy(kern));
  ZE_OK(zeModuleDestroy(mod));
}

}  // namespace
