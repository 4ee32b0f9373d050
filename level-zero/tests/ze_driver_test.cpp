// Tests of the xesvm Level Zero driver through the system loader: what each
// entry point does, byte-checked (the fixture and how ctest runs the suite
// are described in ze_fixture.hpp).
#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <numeric>

#include "ze_fixture.hpp"

namespace {

using namespace xesvm_ze_test;

// --- driver and device queries ----------------------------------------------

TEST_F(Ze, InitIsIdempotentAndChecksFlags) {
  ZE_OK(zeInit(0));
  ZE_OK(zeInit(ZE_INIT_FLAG_GPU_ONLY));
  std::uint32_t n = 0;
  ZE_OK(zeDriverGet(&n, nullptr));
  EXPECT_EQ(1u, n);
}

TEST_F(Ze, DriverQueries) {
  ze_api_version_t v{};
  ZE_OK(zeDriverGetApiVersion(driver, &v));
  EXPECT_EQ(ZE_API_VERSION_1_4, v);
  ze_driver_properties_t dp{ZE_STRUCTURE_TYPE_DRIVER_PROPERTIES, nullptr};
  ZE_OK(zeDriverGetProperties(driver, &dp));
  EXPECT_EQ(ZE_STRUCTURE_TYPE_DRIVER_PROPERTIES, dp.stype);
  EXPECT_EQ(0x100u, dp.driverVersion);
  ze_driver_ipc_properties_t ip{ZE_STRUCTURE_TYPE_DRIVER_IPC_PROPERTIES, nullptr};
  ZE_OK(zeDriverGetIpcProperties(driver, &ip));
  EXPECT_EQ(0u, ip.flags);
  std::uint32_t n = 0;
  ZE_OK(zeDriverGetExtensionProperties(driver, &n, nullptr));
  ASSERT_EQ(1u, n);
  ze_driver_extension_properties_t ext{};
  ZE_OK(zeDriverGetExtensionProperties(driver, &n, &ext));
  EXPECT_STREQ(ZE_RELAXED_ALLOCATION_LIMITS_EXP_NAME, ext.name);
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER, zeDriverGetApiVersion(driver, nullptr));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER, zeDriverGetProperties(driver, nullptr));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER, zeDriverGetIpcProperties(driver, nullptr));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER, zeDriverGetExtensionProperties(driver, nullptr, nullptr));
}

// One device per backend URI in XESVM_BACKEND (or, when that is unset, its
// deprecated alias XESVM_ZE_BACKEND); the device's name carries the URI.
TEST_F(Ze, DeviceIsTheBackendTheEnvironmentNames) {
  const char* uri = std::getenv("XESVM_BACKEND");
  if (!uri || !*uri) uri = std::getenv("XESVM_ZE_BACKEND");
  if (!uri || !*uri) GTEST_SKIP() << "neither XESVM_BACKEND nor XESVM_ZE_BACKEND is set";
  ze_device_properties_t p{ZE_STRUCTURE_TYPE_DEVICE_PROPERTIES, nullptr};
  ZE_OK(zeDeviceGetProperties(device, &p));
  const std::string s = uri;
  if (s.rfind("sim", 0) == 0) {
    EXPECT_EQ("xesvm " + s, p.name);
    const std::uint64_t mib = std::stoull(s.substr(s.find("vram=") + 5));
    EXPECT_EQ(mib << 20, p.maxMemAllocSize);
  } else {
    // xe: the URI, then what the kernel driver says the device is.
    EXPECT_EQ(0u, std::string(p.name).rfind("xesvm " + s + " Intel Xe device 0x", 0)) << p.name;
  }
}

TEST_F(Ze, DeviceQueries) {
  std::uint32_t n = 0;
  ZE_OK(zeDeviceGet(driver, &n, nullptr));
  EXPECT_EQ(1u, n);
  ze_device_properties_t p{ZE_STRUCTURE_TYPE_DEVICE_PROPERTIES, nullptr};
  ZE_OK(zeDeviceGetProperties(device, &p));
  EXPECT_EQ(ZE_DEVICE_TYPE_GPU, p.type);
  EXPECT_TRUE(p.flags & ZE_DEVICE_PROPERTY_FLAG_ONDEMANDPAGING);
  // The sim of ctest (16 MiB), or the guest's Xe device (ZeXe.* check its properties).
  const std::uint64_t memory = copy_only ? p.maxMemAllocSize : 16u << 20;
  EXPECT_EQ(memory, p.maxMemAllocSize);
  EXPECT_NE(nullptr, std::strstr(p.name, copy_only ? "Intel Xe" : "sim"));

  ze_device_compute_properties_t cp{ZE_STRUCTURE_TYPE_DEVICE_COMPUTE_PROPERTIES, nullptr};
  ZE_OK(zeDeviceGetComputeProperties(device, &cp));
  EXPECT_EQ(copy_only ? 0u : 1024u, cp.maxTotalGroupSize);

  const auto mp = only_entry<ze_device_memory_properties_t>(
      ZE_STRUCTURE_TYPE_DEVICE_MEMORY_PROPERTIES,
      [&](std::uint32_t* count, auto* out) { return zeDeviceGetMemoryProperties(device, count, out); });
  EXPECT_EQ(memory, mp.totalSize);
  EXPECT_EQ(ZE_STRUCTURE_TYPE_DEVICE_MEMORY_PROPERTIES, mp.stype);

  ze_device_memory_access_properties_t ap{ZE_STRUCTURE_TYPE_DEVICE_MEMORY_ACCESS_PROPERTIES, nullptr};
  ZE_OK(zeDeviceGetMemoryAccessProperties(device, &ap));
  EXPECT_TRUE(ap.sharedSingleDeviceAllocCapabilities & ZE_MEMORY_ACCESS_CAP_FLAG_CONCURRENT);
  EXPECT_TRUE(ap.deviceAllocCapabilities & ZE_MEMORY_ACCESS_CAP_FLAG_RW);
  // The sim: malloc'd memory is shared-system memory; not on xe.
  EXPECT_EQ(!copy_only, (ap.sharedSystemAllocCapabilities & ZE_MEMORY_ACCESS_CAP_FLAG_RW) != 0);

  const auto qg = only_entry<ze_command_queue_group_properties_t>(
      ZE_STRUCTURE_TYPE_COMMAND_QUEUE_GROUP_PROPERTIES,
      [&](std::uint32_t* count, auto* out) { return zeDeviceGetCommandQueueGroupProperties(device, count, out); });
  EXPECT_EQ(!copy_only, (qg.flags & ZE_COMMAND_QUEUE_GROUP_PROPERTY_FLAG_COMPUTE) != 0);
  EXPECT_TRUE(qg.flags & ZE_COMMAND_QUEUE_GROUP_PROPERTY_FLAG_COPY);
  EXPECT_EQ(128u, qg.maxMemoryFillPatternSize);

  n = 5;
  ZE_OK(zeDeviceGetCacheProperties(device, &n, nullptr));
  EXPECT_EQ(0u, n);  // no device caches are modelled

  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER, zeDeviceGet(driver, nullptr, nullptr));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER, zeDeviceGetProperties(device, nullptr));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER, zeDeviceGetComputeProperties(device, nullptr));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER, zeDeviceGetMemoryProperties(device, nullptr, nullptr));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER, zeDeviceGetMemoryAccessProperties(device, nullptr));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER, zeDeviceGetCommandQueueGroupProperties(device, nullptr, nullptr));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER, zeDeviceGetCacheProperties(device, nullptr, nullptr));
}

TEST_F(Ze, NullHandlesAreRejected) {
  SKIP_IF_INTERCEPT();
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER, zeDriverGet(nullptr, nullptr));
  ze_api_version_t v;
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_HANDLE, zeDriverGetApiVersion(nullptr, &v));
  ze_driver_properties_t dp{ZE_STRUCTURE_TYPE_DRIVER_PROPERTIES, nullptr};
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_HANDLE, zeDriverGetProperties(nullptr, &dp));
  std::uint32_t n = 0;
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_HANDLE, zeDeviceGet(nullptr, &n, nullptr));
  ze_device_properties_t p{ZE_STRUCTURE_TYPE_DEVICE_PROPERTIES, nullptr};
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_HANDLE, zeDeviceGetProperties(nullptr, &p));
  ze_context_desc_t cd{ZE_STRUCTURE_TYPE_CONTEXT_DESC, nullptr, 0};
  ze_context_handle_t c;
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_HANDLE, zeContextCreate(nullptr, &cd, &c));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_HANDLE, zeContextDestroy(nullptr));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_HANDLE, zeContextGetStatus(nullptr));
  ze_device_mem_alloc_desc_t dd{ZE_STRUCTURE_TYPE_DEVICE_MEM_ALLOC_DESC, nullptr, 0, 0};
  ze_host_mem_alloc_desc_t hd{ZE_STRUCTURE_TYPE_HOST_MEM_ALLOC_DESC, nullptr, 0};
  void* ptr;
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_HANDLE, zeMemAllocShared(nullptr, &dd, &hd, 64, 0, device, &ptr));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_HANDLE, zeMemAllocDevice(ctx, &dd, 64, 0, nullptr, &ptr));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_HANDLE, zeMemAllocHost(nullptr, &hd, 64, 0, &ptr));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_HANDLE, zeMemFree(nullptr, &v));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_HANDLE, zeCommandQueueSynchronize(nullptr, 0));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_HANDLE, zeCommandListClose(nullptr));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_HANDLE, zeCommandListAppendBarrier(nullptr, nullptr, 0, nullptr));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_HANDLE, zeCommandListAppendSignalEvent(list, nullptr));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_HANDLE, zeCommandListAppendEventReset(list, nullptr));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_HANDLE, zeEventHostSignal(nullptr));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_HANDLE, zeEventQueryStatus(nullptr));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_HANDLE, zeFenceQueryStatus(nullptr));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_HANDLE, zeKernelSetGroupSize(nullptr, 1, 1, 1));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_HANDLE, zeContextMakeMemoryResident(ctx, nullptr, &v, 4));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_HANDLE, zeContextEvictMemory(nullptr, device, &v, 4));
  int x = 0;
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_HANDLE,
            zeCommandListAppendMemAdvise(list, nullptr, &x, 4, ZE_MEMORY_ADVICE_SET_READ_MOSTLY));
  // NULL arrays with a count.
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_SIZE, zeCommandListAppendBarrier(list, nullptr, 1, nullptr));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER, zeCommandQueueExecuteCommandLists(queue, 1, nullptr, nullptr));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER, zeCommandListAppendWaitOnEvents(list, 1, nullptr));
}

TEST_F(Ze, ContextLifecycle) {
  ZE_OK(zeContextGetStatus(ctx));
  ze_context_desc_t cd{ZE_STRUCTURE_TYPE_CONTEXT_DESC, nullptr, 2};
  ze_context_handle_t c = nullptr;
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ENUMERATION, zeContextCreate(driver, &cd, &c));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER, zeContextCreate(driver, nullptr, &c));
  cd.flags = 0;
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER, zeContextCreate(driver, &cd, nullptr));
  ZE_OK(zeContextCreate(driver, &cd, &c));
  // Destroying a context frees what it still owns.
  ze_host_mem_alloc_desc_t hd{ZE_STRUCTURE_TYPE_HOST_MEM_ALLOC_DESC, nullptr, 0};
  void* p = nullptr;
  ZE_OK(zeMemAllocHost(c, &hd, 4096, 0, &p));
  ZE_OK(zeContextDestroy(c));
}

TEST_F(Ze, MiscellaneousEntryPoints) {
  ZE_OK(zeDeviceGetStatus(device));
  ze_bool_t peer = 0;
  ZE_OK(zeDeviceCanAccessPeer(device, device, &peer));
  EXPECT_TRUE(peer);
  std::uint64_t host = 0, dev = 0;
  ZE_OK(zeDeviceGetGlobalTimestamps(device, &host, &dev));
  EXPECT_NE(0u, host);
  ze_device_module_properties_t mp{ZE_STRUCTURE_TYPE_DEVICE_MODULE_PROPERTIES, nullptr};
  ZE_OK(zeDeviceGetModuleProperties(device, &mp));
#ifdef XESVM_ZE_SPIRV_DIR
  EXPECT_EQ(copy_only ? 0u : ZE_MAKE_VERSION(1, 4), mp.spirvVersionSupported) << "SPIR-V 1.0 to 1.4, on the sim";
#else
  EXPECT_EQ(0u, mp.spirvVersionSupported) << "built without the SPIR-V compiler";
#endif
  ZE_OK(zeContextSystemBarrier(ctx, device));
  ze_context_desc_t cd{ZE_STRUCTURE_TYPE_CONTEXT_DESC, nullptr, 0};
  ze_context_handle_t c2 = nullptr;
  ZE_OK(zeContextCreateEx(driver, &cd, 1, &device, &c2));
  ZE_OK(zeContextDestroy(c2));
  // zeMemFreeExt and its policy check.
  void* p = host_mem(4096);
  ze_memory_free_ext_desc_t fd{ZE_STRUCTURE_TYPE_MEMORY_FREE_EXT_DESC, nullptr, 0x4};
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ENUMERATION, zeMemFreeExt(ctx, &fd, p));
  fd.freePolicy = ZE_DRIVER_MEMORY_FREE_POLICY_EXT_FLAG_BLOCKING_FREE;
  ZE_OK(zeMemFreeExt(ctx, &fd, p));
  forget(p);
  // Kernel attributes (on a device that runs kernels: ZeXe.* check the
  // answer of one that does not).
  ze_module_handle_t m = nullptr;
  std::string why;
  const ze_result_t loaded = try_module(&m, &why);
  if (loaded != ZE_RESULT_ERROR_UNSUPPORTED_FEATURE) {
    ZE_OK(loaded);
    ze_module_properties_t mprops{ZE_STRUCTURE_TYPE_MODULE_PROPERTIES, nullptr};
    ZE_OK(zeModuleGetProperties(m, &mprops));
    ze_kernel_handle_t k = kernel(m, "count");
    ZE_OK(zeKernelSetIndirectAccess(k, ZE_KERNEL_INDIRECT_ACCESS_FLAG_SHARED));
    ze_kernel_indirect_access_flags_t ia = 0;
    ZE_OK(zeKernelGetIndirectAccess(k, &ia));
    EXPECT_EQ(ZE_KERNEL_INDIRECT_ACCESS_FLAG_SHARED, ia);
    ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ENUMERATION, zeKernelSetIndirectAccess(k, 0x8));
    ZE_OK(zeKernelSetCacheConfig(k, ZE_CACHE_CONFIG_FLAG_LARGE_SLM));
    ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ENUMERATION, zeKernelSetCacheConfig(k, 0x4));
    std::uint32_t len = 0;
    char* attrs = nullptr;
    ZE_OK(zeKernelGetSourceAttributes(k, &len, &attrs));
    EXPECT_EQ(1u, len);
    ZE_OK(zeKernelDestroy(k));
    ZE_OK(zeModuleDestroy(m));
  }
  // A global timestamp written by the device, in device-clock nanoseconds.
  auto* ts = static_cast<std::uint64_t*>(shared(8));
  *ts = ~0ull;
  std::vector<char> bytes(1 << 16, 1);
  void* d = dev_mem(bytes.size());
  ZE_OK(zeCommandListAppendMemoryCopy(sync_imm, d, bytes.data(), bytes.size(), nullptr, 0, nullptr));
  ZE_OK(zeCommandListAppendWriteGlobalTimestamp(sync_imm, ts, nullptr, 0, nullptr));
  std::uint64_t host2 = 0, dev2 = 0;
  ZE_OK(zeDeviceGetGlobalTimestamps(device, &host2, &dev2));
  EXPECT_NE(~0ull, *ts);
  EXPECT_LE(*ts, dev2);
  EXPECT_GT(dev2, dev) << "device work advances the device clock";
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER,
            zeCommandListAppendWriteGlobalTimestamp(imm, nullptr, nullptr, 0, nullptr));
}

// --- allocations --------------------------------------------------------------

TEST_F(Ze, AllocationAlignmentSizeAndFlags) {
  for (std::size_t align : {0ul, 1ul, 64ul, 4096ul, 65536ul, 2ul << 20, 8ul << 20}) {
    SCOPED_TRACE(align);
    void* s = shared(1000, align);
    void* d = dev_mem(1000, align);
    void* h = host_mem(1000, align);
    ASSERT_TRUE(s && d && h);
    if (align) {
      EXPECT_EQ(0u, reinterpret_cast<std::uintptr_t>(s) % align);
      EXPECT_EQ(0u, reinterpret_cast<std::uintptr_t>(d) % align);
      EXPECT_EQ(0u, reinterpret_cast<std::uintptr_t>(h) % align);
    }
  }
  ze_device_mem_alloc_desc_t dd{ZE_STRUCTURE_TYPE_DEVICE_MEM_ALLOC_DESC, nullptr, 0, 0};
  ze_host_mem_alloc_desc_t hd{ZE_STRUCTURE_TYPE_HOST_MEM_ALLOC_DESC, nullptr, 0};
  void* p = nullptr;
  ZE_EXPECT(ZE_RESULT_ERROR_UNSUPPORTED_ALIGNMENT, zeMemAllocShared(ctx, &dd, &hd, 64, 3, device, &p));
  ZE_EXPECT(ZE_RESULT_ERROR_UNSUPPORTED_ALIGNMENT, zeMemAllocDevice(ctx, &dd, 64, 48, device, &p));
  ZE_EXPECT(ZE_RESULT_ERROR_UNSUPPORTED_ALIGNMENT, zeMemAllocHost(ctx, &hd, 64, 4097, &p));
  ZE_EXPECT(ZE_RESULT_ERROR_UNSUPPORTED_SIZE, zeMemAllocShared(ctx, &dd, &hd, 0, 0, device, &p));
  ZE_EXPECT(ZE_RESULT_ERROR_UNSUPPORTED_SIZE, zeMemAllocDevice(ctx, &dd, 0, 0, device, &p));
  ZE_EXPECT(ZE_RESULT_ERROR_UNSUPPORTED_SIZE, zeMemAllocHost(ctx, &hd, 0, 0, &p));
  ZE_EXPECT(ZE_RESULT_ERROR_UNSUPPORTED_SIZE, zeMemAllocDevice(ctx, &dd, vram + 1, 0, device, &p));
  ZE_EXPECT(ZE_RESULT_ERROR_UNSUPPORTED_SIZE, zeMemAllocShared(ctx, &dd, &hd, vram + 1, 0, device, &p));
  // The relaxed-limits extension lifts maxMemAllocSize for shared memory.
  ze_relaxed_allocation_limits_exp_desc_t relaxed{ZE_STRUCTURE_TYPE_RELAXED_ALLOCATION_LIMITS_EXP_DESC, nullptr,
                                                  ZE_RELAXED_ALLOCATION_LIMITS_EXP_FLAG_MAX_SIZE};
  dd.pNext = &relaxed;
  ZE_OK(zeMemAllocShared(ctx, &dd, &hd, 2 * vram, 0, device, &p));
  ZE_OK(zeMemFree(ctx, p));
  dd.pNext = nullptr;
  dd.flags = 0x8;
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ENUMERATION, zeMemAllocShared(ctx, &dd, &hd, 64, 0, device, &p));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ENUMERATION, zeMemAllocDevice(ctx, &dd, 64, 0, device, &p));
  dd.flags = ZE_DEVICE_MEM_ALLOC_FLAG_BIAS_CACHED;
  hd.flags = 0x10;
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ENUMERATION, zeMemAllocShared(ctx, &dd, &hd, 64, 0, device, &p));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ENUMERATION, zeMemAllocHost(ctx, &hd, 64, 0, &p));
  hd.flags = ZE_HOST_MEM_ALLOC_FLAG_BIAS_UNCACHED;
  ZE_OK(zeMemAllocShared(ctx, &dd, &hd, 64, 0, nullptr, &p));  // no device: still shared
  ZE_OK(zeMemFree(ctx, p));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER, zeMemAllocShared(ctx, nullptr, &hd, 64, 0, device, &p));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER, zeMemAllocShared(ctx, &dd, nullptr, 64, 0, device, &p));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER, zeMemAllocDevice(ctx, &dd, 64, 0, device, nullptr));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER, zeMemAllocHost(ctx, nullptr, 64, 0, &p));
}

TEST_F(Ze, AllocPropertiesAddressRangeAndFree) {
  void* s = shared(10000);
  void* d = dev_mem(5000);
  void* h = host_mem(3000);
  struct Case {
    void* p;
    std::size_t n;
    ze_memory_type_t t;
    ze_device_handle_t dev;
  } cases[] = {{s, 10000, ZE_MEMORY_TYPE_SHARED, device},
               {d, 5000, ZE_MEMORY_TYPE_DEVICE, device},
               {h, 3000, ZE_MEMORY_TYPE_HOST, nullptr}};
  std::vector<std::uint64_t> ids;
  for (const Case& c : cases) {
    for (std::size_t off : {std::size_t{0}, c.n / 2, c.n - 1}) {
      const void* q = static_cast<const char*>(c.p) + off;
      ze_memory_allocation_properties_t mp{ZE_STRUCTURE_TYPE_MEMORY_ALLOCATION_PROPERTIES, nullptr};
      ze_device_handle_t dh = reinterpret_cast<ze_device_handle_t>(1);
      ZE_OK(zeMemGetAllocProperties(ctx, q, &mp, &dh));
      EXPECT_EQ(c.t, mp.type);
      EXPECT_EQ(c.dev, dh);
      EXPECT_NE(0u, mp.id);
      if (off == 0) ids.push_back(mp.id);
      void* base = nullptr;
      std::size_t size = 0;
      ZE_OK(zeMemGetAddressRange(ctx, q, &base, &size));
      EXPECT_EQ(c.p, base);
      EXPECT_EQ(c.n, size);
    }
  }
  EXPECT_NE(ids[0], ids[1]);
  EXPECT_NE(ids[1], ids[2]);
  int stack = 0;
  ze_memory_allocation_properties_t mp{ZE_STRUCTURE_TYPE_MEMORY_ALLOCATION_PROPERTIES, nullptr};
  ZE_OK(zeMemGetAllocProperties(ctx, &stack, &mp, nullptr));
  EXPECT_EQ(ZE_MEMORY_TYPE_UNKNOWN, mp.type);
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ARGUMENT, zeMemGetAddressRange(ctx, &stack, nullptr, nullptr));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER, zeMemGetAllocProperties(ctx, nullptr, &mp, nullptr));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER, zeMemGetAllocProperties(ctx, s, nullptr, nullptr));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER, zeMemGetAddressRange(ctx, nullptr, nullptr, nullptr));
  // Free: NULL, interior pointers, foreign pointers and double frees.
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER, zeMemFree(ctx, nullptr));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ARGUMENT, zeMemFree(ctx, static_cast<char*>(s) + 8));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ARGUMENT, zeMemFree(ctx, &stack));
  ZE_OK(zeMemFree(ctx, d));
  forget(d);
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ARGUMENT, zeMemFree(ctx, d));
  ZE_OK(zeMemGetAllocProperties(ctx, d, &mp, nullptr));
  EXPECT_EQ(ZE_MEMORY_TYPE_UNKNOWN, mp.type);
}

TEST_F(Ze, SharedMemoryIsOnePointerForCpuAndDevice) {
  const std::size_t n = 1 << 16;
  auto* p = static_cast<std::uint32_t*>(shared(n * 4));
  for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<std::uint32_t>(i * 7);
  ZE_OK(zeContextMakeMemoryResident(ctx, device, p, n * 4));
  if (!copy_only) {
    EXPECT_EQ(0u, cpu_resident_pages(p, n * 4)) << "the data should be in device memory now";
  }
  for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(i * 7, p[i]);  // CPU touches migrate back
  EXPECT_EQ(n * 4 / 4096, cpu_resident_pages(p, n * 4));
  ZE_OK(zeContextMakeMemoryResident(ctx, device, p, n * 4));
  ZE_OK(zeContextEvictMemory(ctx, device, p, n * 4));
  EXPECT_EQ(n * 4 / 4096, cpu_resident_pages(p, n * 4)) << "eviction brings the pages back to RAM";
  for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(i * 7, p[i]);
  int stack = 0;  // system memory: shared with the sim device, not with xe
  ZE_EXPECT(copy_only ? ZE_RESULT_ERROR_INVALID_ARGUMENT : ZE_RESULT_SUCCESS,
            zeContextMakeMemoryResident(ctx, device, &stack, 4));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ARGUMENT, zeContextMakeMemoryResident(ctx, device, unmapped_page(), 4));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_SIZE, zeContextEvictMemory(ctx, device, p, n * 4 + 1));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER, zeContextMakeMemoryResident(ctx, device, nullptr, 4));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER, zeContextEvictMemory(ctx, device, nullptr, 4));
}

TEST_F(Ze, DeviceMemoryIsNotCpuAccessible) {
  void* d = dev_mem(8192);
  int fds[2];
  ASSERT_EQ(0, pipe(fds));
  errno = 0;
  EXPECT_EQ(-1, write(fds[1], d, 16)) << "the kernel reads a device allocation like a CPU would";
  EXPECT_EQ(EFAULT, errno);
  close(fds[0]);
  close(fds[1]);
}

TEST_F(Ze, DeviceMemoryDereferenceFaults) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto* d = static_cast<volatile int*>(dev_mem(4096));
  EXPECT_DEATH({ (void)*d; }, "");
}

// --- copies and fills ---------------------------------------------------------

TEST_F(Ze, CopyRoundTripThroughEveryKind) {
  const std::size_t n = (3u << 20) + 123;  // several copy pieces, odd tail
  std::vector<unsigned char> src(n), back(n, 0);
  for (std::size_t i = 0; i < n; ++i) src[i] = static_cast<unsigned char>(i * 131 + 7);
  void* h = host_mem(n);
  void* d = dev_mem(n);
  void* s = shared(n);
  // malloc'd -> host -> device -> shared -> malloc'd, on a regular list.
  ZE_OK(zeCommandListAppendMemoryCopy(list, h, src.data(), n, nullptr, 0, nullptr));
  ZE_OK(zeCommandListAppendBarrier(list, nullptr, 0, nullptr));
  ZE_OK(zeCommandListAppendMemoryCopy(list, d, h, n, nullptr, 0, nullptr));
  ZE_OK(zeCommandListAppendMemoryCopy(list, s, d, n, nullptr, 0, nullptr));
  ZE_OK(zeCommandListAppendMemoryCopy(list, back.data(), s, n, nullptr, 0, nullptr));
  ZE_OK(run_list());
  EXPECT_EQ(0, std::memcmp(src.data(), back.data(), n));
  EXPECT_EQ(0, std::memcmp(src.data(), s, n));  // the CPU reads the shared copy directly
  EXPECT_EQ(0, std::memcmp(src.data(), h, n));
  // And back on the synchronous immediate list, at unaligned offsets.
  std::vector<unsigned char> back2(n, 0);
  ZE_OK(zeCommandListAppendMemoryCopy(sync_imm, static_cast<char*>(d) + 1, static_cast<char*>(s) + 3, n - 3, nullptr, 0,
                                      nullptr));
  ZE_OK(zeCommandListAppendMemoryCopy(sync_imm, back2.data(), static_cast<char*>(d) + 1, n - 3, nullptr, 0, nullptr));
  EXPECT_EQ(0, std::memcmp(src.data() + 3, back2.data(), n - 3));
  // Errors.
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_SIZE,
            zeCommandListAppendMemoryCopy(imm, d, src.data(), n + 1, nullptr, 0, nullptr));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER,
            zeCommandListAppendMemoryCopy(imm, nullptr, s, 4, nullptr, 0, nullptr));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER,
            zeCommandListAppendMemoryCopy(imm, s, nullptr, 4, nullptr, 0, nullptr));
}

TEST_F(Ze, FillPatterns) {
  const std::size_t n = 200000 - 200000 % 128;
  void* d = dev_mem(n);
  void* s = shared(n);
  std::vector<unsigned char> out(n);
  for (std::size_t ps : {1u, 2u, 4u, 16u, 128u}) {
    SCOPED_TRACE(ps);
    std::vector<unsigned char> pat(ps);
    for (std::size_t i = 0; i < ps; ++i) pat[i] = static_cast<unsigned char>(0xA0 + i * 3);
    ZE_OK(on_immediate([&](ze_command_list_handle_t l, ze_event_handle_t e) {
      return zeCommandListAppendMemoryFill(l, d, pat.data(), ps, n, e, 0, nullptr);
    }));
    ZE_OK(zeCommandListAppendMemoryFill(sync_imm, s, pat.data(), ps, n, nullptr, 0, nullptr));
    ZE_OK(zeCommandListAppendMemoryCopy(sync_imm, out.data(), d, n, nullptr, 0, nullptr));
    for (std::size_t i = 0; i < n; ++i) {
      ASSERT_EQ(pat[i % ps], out[i]) << i;
      ASSERT_EQ(pat[i % ps], static_cast<unsigned char*>(s)[i]) << i;
    }
  }
  unsigned char pat[256] = {};
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_SIZE, zeCommandListAppendMemoryFill(imm, d, pat, 3, 96, nullptr, 0, nullptr));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_SIZE, zeCommandListAppendMemoryFill(imm, d, pat, 256, 512, nullptr, 0, nullptr));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_SIZE, zeCommandListAppendMemoryFill(imm, d, pat, 0, 512, nullptr, 0, nullptr));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_SIZE, zeCommandListAppendMemoryFill(imm, d, pat, 4, n + 4, nullptr, 0, nullptr));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER,
            zeCommandListAppendMemoryFill(imm, d, nullptr, 4, 4, nullptr, 0, nullptr));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER,
            zeCommandListAppendMemoryFill(imm, nullptr, pat, 4, 4, nullptr, 0, nullptr));
}

// The specification does not ask for a size that is a multiple of the
// pattern: whole patterns are written, then the pattern's leading bytes.
TEST_F(Ze, FillOfAnySizeEndsWithTheLeadingBytesOfThePattern) {
  constexpr std::size_t kSlack = 64;
  for (std::size_t ps = 1; ps <= 128; ps *= 2) {
    for (std::size_t size : {ps + 1, 3 * ps + ps / 2 + 1, 5 * ps - 1, std::size_t{70001}}) {
      SCOPED_TRACE("pattern " + std::to_string(ps) + " size " + std::to_string(size));
      std::vector<unsigned char> pat(ps);
      for (std::size_t i = 0; i < ps; ++i) pat[i] = static_cast<unsigned char>(0x11 + 7 * i);
      auto* s = static_cast<unsigned char*>(shared(size + kSlack));
      auto* h = static_cast<unsigned char*>(host_mem(size + kSlack));
      void* d = dev_mem(size + kSlack);
      std::memset(s, 0xEE, size + kSlack);
      std::memset(h, 0xEE, size + kSlack);
      ZE_OK(zeCommandListAppendMemoryCopy(sync_imm, d, s, size + kSlack, nullptr, 0, nullptr));
      for (void* p : {static_cast<void*>(s), static_cast<void*>(h), d}) {
        ZE_OK(zeCommandListAppendMemoryFill(sync_imm, p, pat.data(), ps, size, nullptr, 0, nullptr));
      }
      std::vector<unsigned char> out(size + kSlack);
      ZE_OK(zeCommandListAppendMemoryCopy(sync_imm, out.data(), d, out.size(), nullptr, 0, nullptr));
      for (const unsigned char* got : {static_cast<const unsigned char*>(s), static_cast<const unsigned char*>(h),
                                       static_cast<const unsigned char*>(out.data())}) {
        for (std::size_t i = 0; i < size + kSlack; ++i) {
          ASSERT_EQ(i < size ? pat[i % ps] : 0xEE, got[i]) << "byte " << i;
        }
      }
      for (void* p : {static_cast<void*>(s), static_cast<void*>(h), d}) {
        ZE_OK(zeMemFree(ctx, p));
        forget(p);
      }
    }
  }
}

// ze_copy_region_t.depth: "Set this to 0 for 2D copy".
TEST_F(Ze, CopyRegionOfDepthZeroIsOneSlice) {
  auto* src = static_cast<unsigned char*>(shared(4096));
  auto* dst = static_cast<unsigned char*>(shared(4096));
  for (int i = 0; i < 4096; ++i) src[i] = static_cast<unsigned char>(i * 7 + 1);
  std::memset(dst, 0, 4096);
  const ze_copy_region_t sr{3, 2, 0, 10, 5, 0}, dr{1, 4, 0, 10, 5, 0};
  // Slice pitch 0 as a 2D copy has no slices; a 3D-shaped slice pitch is ignored too.
  ZE_OK(zeCommandListAppendMemoryCopyRegion(sync_imm, dst, &dr, 32, 0, src, &sr, 64, 64 * 16, nullptr, 0, nullptr));
  for (int y = 0; y < 16; ++y) {
    for (int x = 0; x < 32; ++x) {
      const bool in = x >= 1 && x < 11 && y >= 4 && y < 9;
      ASSERT_EQ(in ? src[(y - 4 + 2) * 64 + (x - 1 + 3)] : 0, dst[y * 32 + x]) << x << "," << y;
    }
  }
  // Depth 0 and depth 1 are the same extent.
  const ze_copy_region_t one{0, 0, 0, 4, 1, 1}, zero{0, 0, 0, 4, 1, 0};
  ZE_OK(zeCommandListAppendMemoryCopyRegion(sync_imm, dst + 1024, &one, 64, 0, src, &zero, 64, 0, nullptr, 0, nullptr));
  EXPECT_EQ(0, std::memcmp(dst + 1024, src, 4));
}

// A command rejected at append time must not leave its signal event in a
// state no command will ever change: waiters return, and the error reaches
// the application (from the append, and from the queue's synchronize).
TEST_F(Ze, RejectedAppendStillSignalsItsEvent) {
  auto* a = static_cast<unsigned char*>(shared(4096));
  const ze_copy_region_t r{0, 0, 0, 16, 2, 1}, bad{0, 0, 0, 16, 3, 1};  // regions of different sizes
  ze_event_handle_t e = event(0);
  ze_event_handle_t after = event(1);
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ARGUMENT,
            zeCommandListAppendMemoryCopyRegion(list, a + 2048, &r, 64, 0, a, &bad, 64, 0, e, 0, nullptr));
  ZE_OK(zeCommandListAppendSignalEvent(list, after));
  ZE_OK(zeCommandListClose(list));
  ZE_OK(zeCommandQueueExecuteCommandLists(queue, 1, &list, nullptr));
  EXPECT_EQ(ZE_RESULT_SUCCESS, zeEventHostSynchronize(e, 10'000'000'000ull));
  EXPECT_EQ(ZE_RESULT_SUCCESS, zeEventHostSynchronize(after, 10'000'000'000ull));
  EXPECT_EQ(ZE_RESULT_ERROR_INVALID_ARGUMENT, zeCommandQueueSynchronize(queue, kWait));
  EXPECT_EQ(ZE_RESULT_SUCCESS, zeCommandQueueSynchronize(queue, kWait));  // reported once
  ZE_OK(zeCommandListReset(list));

  // Immediate lists: the event is signaled in order, the append returns the error.
  ZE_OK(zeEventHostReset(e));
  unsigned char pat[3] = {1, 2, 3};
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_SIZE, zeCommandListAppendMemoryFill(imm, a, pat, 3, 9, e, 0, nullptr));
  EXPECT_EQ(ZE_RESULT_SUCCESS, zeEventHostSynchronize(e, 10'000'000'000ull));
  ZE_OK(zeEventHostReset(e));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_SIZE,  // the source runs past the end of its allocation
            zeCommandListAppendMemoryCopy(sync_imm, a, a + 4000, 200, e, 0, nullptr));
  EXPECT_EQ(ZE_RESULT_SUCCESS, zeEventHostSynchronize(e, 10'000'000'000ull));
  // Later commands on the lists are unaffected.
  ZE_OK(zeCommandListAppendMemoryFill(sync_imm, a, pat, 1, 16, nullptr, 0, nullptr));
  EXPECT_EQ(1, a[15]);
}

TEST_F(Ze, CopyRegion2DAnd3D) {
  // Source: a 64 x 32 x 4 box of bytes, pitch 64, slice pitch 2048.
  const std::uint32_t W = 64, H = 32, D = 4;
  auto* src = static_cast<unsigned char*>(shared(W * H * D));
  for (std::uint32_t i = 0; i < W * H * D; ++i) src[i] = static_cast<unsigned char>(i * 13 + i / 64);
  auto* dst = static_cast<unsigned char*>(dev_mem(100 * 40 * 5));
  std::vector<unsigned char> zero(100 * 40 * 5, 0), out(100 * 40 * 5);
  ZE_OK(zeCommandListAppendMemoryCopy(sync_imm, dst, zero.data(), zero.size(), nullptr, 0, nullptr));
  // Copy the sub-box x 5..25, y 3..13, z 1..3 into dst at (7, 2, 0), pitch 100, slice 4000.
  ze_copy_region_t sr{5, 3, 1, 20, 10, 2}, dr{7, 2, 0, 20, 10, 2};
  ZE_OK(zeCommandListAppendMemoryCopyRegion(list, dst, &dr, 100, 4000, src, &sr, W, W * H, nullptr, 0, nullptr));
  ZE_OK(run_list());
  ZE_OK(zeCommandListAppendMemoryCopy(sync_imm, out.data(), dst, out.size(), nullptr, 0, nullptr));
  for (std::uint32_t z = 0; z < 5; ++z) {
    for (std::uint32_t y = 0; y < 40; ++y) {
      for (std::uint32_t x = 0; x < 100; ++x) {
        const bool in = x >= 7 && x < 27 && y >= 2 && y < 12 && z < 2;
        const unsigned char want = in ? src[(z + 1) * W * H + (y - 2 + 3) * W + (x - 7 + 5)] : 0;
        ASSERT_EQ(want, out[z * 4000 + y * 100 + x]) << x << "," << y << "," << z;
      }
    }
  }
  // 2D, depth 1, slice pitch 0.
  auto* s2 = static_cast<unsigned char*>(shared(4096));
  ze_copy_region_t r2s{0, 0, 0, 8, 4, 1}, r2d{2, 1, 0, 8, 4, 1};
  ZE_OK(zeCommandListAppendMemoryCopyRegion(sync_imm, s2, &r2d, 16, 0, src, &r2s, W, 0, nullptr, 0, nullptr));
  for (std::uint32_t y = 0; y < 4; ++y) {
    for (std::uint32_t x = 0; x < 8; ++x) ASSERT_EQ(src[y * W + x], s2[(y + 1) * 16 + x + 2]);
  }
  // Errors: overlap, mismatched regions, zero extents, pitch too small.
  ze_copy_region_t a{0, 0, 0, 16, 4, 1}, b{8, 2, 0, 16, 4, 1};
  ZE_EXPECT(ZE_RESULT_ERROR_OVERLAPPING_REGIONS,
            zeCommandListAppendMemoryCopyRegion(imm, src, &a, W, 0, src, &b, W, 0, nullptr, 0, nullptr));
  ze_copy_region_t c{0, 0, 0, 16, 5, 1};
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ARGUMENT,
            zeCommandListAppendMemoryCopyRegion(imm, dst, &a, 100, 0, src, &c, W, 0, nullptr, 0, nullptr));
  ze_copy_region_t z0{0, 0, 0, 0, 1, 1};
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_SIZE,
            zeCommandListAppendMemoryCopyRegion(imm, dst, &z0, 100, 0, src, &z0, W, 0, nullptr, 0, nullptr));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_SIZE,
            zeCommandListAppendMemoryCopyRegion(imm, dst, &a, 8, 0, src, &a, W, 0, nullptr, 0, nullptr));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER,
            zeCommandListAppendMemoryCopyRegion(imm, dst, nullptr, 100, 0, src, &a, W, 0, nullptr, 0, nullptr));
}

// --- prefetch, advice ---------------------------------------------------------

TEST_F(Ze, PrefetchMovesSharedMemoryToTheDevice) {
  const std::size_t n = 256 << 10;
  auto* p = static_cast<unsigned char*>(shared(n));
  std::memset(p, 0x5A, n);
  ASSERT_EQ(n / 4096, cpu_resident_pages(p, n));
  ZE_OK(zeCommandListAppendMemoryPrefetch(list, p, n));
  ZE_OK(run_list());
  if (!copy_only) {
    EXPECT_EQ(0u, cpu_resident_pages(p, n));
  }
  for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(0x5A, p[i]);
  // A device allocation prefetches its backing; a host allocation stays.
  void* d = dev_mem(n);
  void* h = host_mem(n);
  std::memset(h, 1, n);
  ZE_OK(zeCommandListAppendMemoryPrefetch(sync_imm, d, n));
  ZE_OK(zeCommandListAppendMemoryPrefetch(sync_imm, h, n));
  EXPECT_EQ(n / 4096, cpu_resident_pages(h, n));
  int stack = 0;  // system memory: shared with the sim device, not with xe
  ZE_EXPECT(copy_only ? ZE_RESULT_ERROR_INVALID_ARGUMENT : ZE_RESULT_SUCCESS,
            zeCommandListAppendMemoryPrefetch(sync_imm, &stack, 4));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ARGUMENT, zeCommandListAppendMemoryPrefetch(imm, unmapped_page(), 4));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_SIZE, zeCommandListAppendMemoryPrefetch(imm, p, n + 1));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER, zeCommandListAppendMemoryPrefetch(imm, nullptr, 4));
}

// On the sim, plain malloc'd memory is shared-system memory: every command
// takes it. Its whole pages are mirrored on first use and migrate like a
// shared allocation's (prefetch moves them off the CPU, a CPU touch brings
// them back); the partial pages at its edges stay in system memory.
TEST_F(Ze, MallocdMemoryGoesThroughEveryCommand) {
  ze_device_memory_access_properties_t ap{ZE_STRUCTURE_TYPE_DEVICE_MEMORY_ACCESS_PROPERTIES, nullptr};
  ZE_OK(zeDeviceGetMemoryAccessProperties(device, &ap));
  if (copy_only && ap.sharedSystemAllocCapabilities == 0)
    GTEST_SKIP() << "sharedSystemAllocCapabilities is 0: this device takes malloc'd memory in copies and fills "
                    "only (ZeXe.MallocdMemoryInCopiesAndFills)";
  EXPECT_TRUE(ap.sharedSystemAllocCapabilities & ZE_MEMORY_ACCESS_CAP_FLAG_RW);
  // A buffer of its own mapping, with partial pages at both ends. glibc
  // raises its mmap threshold after large frees, and then serves such a
  // malloc from the brk heap, which the driver never mirrors (README.md):
  // the threshold is pinned so that this malloc is an mmap. (A no-op where
  // malloc is not glibc's: AddressSanitizer's maps every large block anyway.)
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  const std::size_t n = (1u << 20) + 123;
  auto fresh = [&] {
    auto* m = static_cast<unsigned char*>(std::malloc(n));
    for (std::size_t i = 0; i < n; ++i) m[i] = static_cast<unsigned char>(i * 13 + 5);
    return m;
  };
  auto check = [&](const unsigned char* m, std::size_t from, std::size_t to) {
    for (std::size_t i = from; i < to; ++i) {
      if (m[i] != static_cast<unsigned char>(i * 13 + 5)) return testing::AssertionFailure() << "byte " << i;
    }
    return testing::AssertionSuccess();
  };
  unsigned char* m = fresh();
  // Its whole pages.
  auto interior = [&] {
    return reinterpret_cast<unsigned char*>((reinterpret_cast<std::uintptr_t>(m) + 4095) & ~std::uintptr_t{4095});
  };
  const std::size_t whole = ((reinterpret_cast<std::uintptr_t>(m) + n) & ~std::uintptr_t{4095}) -
                            reinterpret_cast<std::uintptr_t>(interior());

  // Copies in and out, through device memory.
  void* d = dev_mem(n);
  std::vector<unsigned char> out(n);
  ZE_OK(zeCommandListAppendMemoryCopy(sync_imm, d, m, n, nullptr, 0, nullptr));
  ZE_OK(zeCommandListAppendMemoryCopy(sync_imm, out.data(), d, n, nullptr, 0, nullptr));
  EXPECT_TRUE(check(out.data(), 0, n));
  // Prefetch moves its whole pages to the device; the CPU reads them back.
  ZE_OK(zeCommandListAppendMemoryPrefetch(sync_imm, m, n));
  EXPECT_EQ(0u, cpu_resident_pages(interior(), whole)) << "prefetched pages are on the device";
  EXPECT_TRUE(check(m, 0, n));
  // Residency and eviction.
  ZE_OK(zeContextMakeMemoryResident(ctx, device, m, n));
  EXPECT_EQ(0u, cpu_resident_pages(interior(), whole));
  ZE_OK(zeContextEvictMemory(ctx, device, m, n));
  EXPECT_EQ(whole / 4096, cpu_resident_pages(interior(), whole)) << "eviction brings the pages back";
  EXPECT_TRUE(check(m, 0, n));
  // Every advice value.
  for (int a = ZE_MEMORY_ADVICE_SET_READ_MOSTLY; a <= ZE_MEMORY_ADVICE_BIAS_UNCACHED; ++a) {
    ZE_OK(zeCommandListAppendMemAdvise(sync_imm, device, m, n, static_cast<ze_memory_advice_t>(a)));
  }
  EXPECT_TRUE(check(m, 0, n));
  // A copy from device-resident pages of it (on a regular list, with an event).
  ZE_OK(zeCommandListAppendMemoryPrefetch(sync_imm, m, n));
  std::vector<unsigned char> back(n, 0);
  ze_event_handle_t e = event(6);
  ZE_OK(zeCommandListAppendMemoryCopy(list, back.data(), m, n, e, 0, nullptr));
  ZE_OK(run_list());
  EXPECT_EQ(ZE_RESULT_SUCCESS, zeEventHostSynchronize(e, kWait));
  EXPECT_TRUE(check(back.data(), 0, n));
  // A fill across the edge pages, of a length that is no multiple of its pattern.
  const unsigned char pat[4] = {0xA1, 0xB2, 0xC3, 0xD4};
  ZE_OK(zeCommandListAppendMemoryPrefetch(sync_imm, m, n));
  ZE_OK(zeCommandListAppendMemoryFill(sync_imm, m + 3, pat, 4, n - 10, nullptr, 0, nullptr));
  EXPECT_TRUE(check(m, 0, 3));
  for (std::size_t i = 3; i < n - 7; ++i) ASSERT_EQ(pat[(i - 3) % 4], m[i]) << i;
  EXPECT_TRUE(check(m, n - 7, n));
  // A region copy within it, and a timestamp written into it.
  std::free(m);
  m = fresh();
  const ze_copy_region_t from{0, 0, 0, 100, 50, 0}, to{8, 0, 0, 100, 50, 0};
  ZE_OK(zeCommandListAppendMemoryCopyRegion(sync_imm, m + 600000, &to, 200, 0, m, &from, 256, 0, nullptr, 0, nullptr));
  for (std::size_t y = 0; y < 50; ++y) {
    for (std::size_t x = 0; x < 100; ++x) {
      ASSERT_EQ(static_cast<unsigned char>((y * 256 + x) * 13 + 5), m[600000 + y * 200 + 8 + x]) << x << "," << y;
    }
  }
  ZE_OK(zeCommandListAppendWriteGlobalTimestamp(sync_imm, reinterpret_cast<std::uint64_t*>(interior()), nullptr, 0,
                                                nullptr));
  std::uint64_t stamp = 0;
  std::memcpy(&stamp, interior(), 8);
  EXPECT_NE(0u, stamp);
  // A kernel on it: atomics on the first word (a partial, plain page) and
  // on a word of a whole page the device has mirrored.
  std::free(m);
  m = fresh();
  ZE_OK(zeCommandListAppendMemoryPrefetch(sync_imm, m, n));
  ze_module_handle_t km = module_from_path();
  ze_kernel_handle_t k = kernel(km, "count");
  std::uint32_t* words[] = {reinterpret_cast<std::uint32_t*>(m), reinterpret_cast<std::uint32_t*>(interior() + 8192)};
  for (std::uint32_t* w : words) {
    *w = 0;
    ZE_OK(zeKernelSetArgumentValue(k, 0, sizeof w, &w));
    ZE_OK(zeKernelSetGroupSize(k, 64, 1, 1));
    const ze_group_count_t g{4, 1, 1};
    ZE_OK(zeCommandListAppendLaunchKernel(sync_imm, k, &g, nullptr, 0, nullptr));
    EXPECT_EQ(256u, *w);
  }
  ZE_OK(zeKernelDestroy(k));
  ZE_OK(zeModuleDestroy(km));
  // Memory no mapping covers is refused, not touched.
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ARGUMENT,
            zeCommandListAppendMemoryCopy(sync_imm, out.data(), unmapped_page(), 64, nullptr, 0, nullptr));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ARGUMENT,
            zeCommandListAppendMemoryFill(sync_imm, unmapped_page(), pat, 4, 64, nullptr, 0, nullptr));
  // Freed and allocated again (the same addresses, most likely): a new buffer.
  std::free(m);
  m = fresh();
  ZE_OK(zeCommandListAppendMemoryPrefetch(sync_imm, m, n));
  ZE_OK(zeCommandListAppendMemoryCopy(sync_imm, out.data(), m, n, nullptr, 0, nullptr));
  EXPECT_TRUE(check(out.data(), 0, n));
  EXPECT_TRUE(check(m, 0, n));
  std::free(m);
}

TEST_F(Ze, EveryAdviceValueIsAccepted) {
  const std::size_t n = 64 << 10;
  auto* p = static_cast<unsigned char*>(shared(n));
  std::memset(p, 0x33, n);
  void* d = dev_mem(n);
  for (int a = ZE_MEMORY_ADVICE_SET_READ_MOSTLY; a <= ZE_MEMORY_ADVICE_BIAS_UNCACHED; ++a) {
    SCOPED_TRACE(a);
    ZE_OK(zeCommandListAppendMemAdvise(sync_imm, device, p + 4096, 8192, static_cast<ze_memory_advice_t>(a)));
    ZE_OK(zeCommandListAppendMemAdvise(list, device, d, n, static_cast<ze_memory_advice_t>(a)));
  }
  ZE_OK(run_list());
  // Preferred location = device: a GPU touch (a copy) then moves the data there.
  ZE_OK(zeCommandListAppendMemAdvise(sync_imm, device, p, n, ZE_MEMORY_ADVICE_SET_PREFERRED_LOCATION));
  std::vector<unsigned char> out(n);
  ZE_OK(zeCommandListAppendMemoryCopy(sync_imm, out.data(), p, n, nullptr, 0, nullptr));
  if (!copy_only) {
    EXPECT_EQ(0u, cpu_resident_pages(p, n));
  }
  for (unsigned char c : out) ASSERT_EQ(0x33, c);
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ENUMERATION,
            zeCommandListAppendMemAdvise(imm, device, p, n,
                                         static_cast<ze_memory_advice_t>(ZE_MEMORY_ADVICE_BIAS_UNCACHED + 1)));
  int stack = 0;  // system memory: shared with the sim device, not with xe
  ZE_EXPECT(copy_only ? ZE_RESULT_ERROR_INVALID_ARGUMENT : ZE_RESULT_SUCCESS,
            zeCommandListAppendMemAdvise(sync_imm, device, &stack, 4, ZE_MEMORY_ADVICE_SET_READ_MOSTLY));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ARGUMENT,
            zeCommandListAppendMemAdvise(imm, device, unmapped_page(), 4, ZE_MEMORY_ADVICE_SET_READ_MOSTLY));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_SIZE,
            zeCommandListAppendMemAdvise(imm, device, p, 0, ZE_MEMORY_ADVICE_SET_READ_MOSTLY));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_SIZE,
            zeCommandListAppendMemAdvise(imm, device, p, n + 1, ZE_MEMORY_ADVICE_SET_READ_MOSTLY));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER,
            zeCommandListAppendMemAdvise(imm, device, nullptr, 4, ZE_MEMORY_ADVICE_SET_READ_MOSTLY));
}

// --- events, fences, queues, lists ------------------------------------------------

TEST_F(Ze, EventsHostSignalQueryResetAndWait) {
  ze_event_handle_t e = event(0);
  ZE_EXPECT(ZE_RESULT_NOT_READY, zeEventQueryStatus(e));
  ZE_EXPECT(ZE_RESULT_NOT_READY, zeEventHostSynchronize(e, 0));
  ZE_EXPECT(ZE_RESULT_NOT_READY, zeEventHostSynchronize(e, 1000000));
  ZE_OK(zeEventHostSignal(e));
  ZE_OK(zeEventQueryStatus(e));
  ZE_OK(zeEventHostSynchronize(e, UINT64_MAX));
  ZE_OK(zeEventHostReset(e));
  ZE_EXPECT(ZE_RESULT_NOT_READY, zeEventQueryStatus(e));
  // A queue waits on an event the host signals later.
  ze_event_handle_t done = event(1);
  std::vector<std::uint32_t> a(1024, 0xabcd1234u), b(1024, 0);
  void* s = shared(4096);
  ZE_OK(zeCommandListAppendWaitOnEvents(list, 1, &e));
  ZE_OK(zeCommandListAppendMemoryCopy(list, s, a.data(), 4096, nullptr, 0, nullptr));
  ZE_OK(zeCommandListAppendMemoryCopy(list, b.data(), s, 4096, done, 0, nullptr));
  ZE_OK(zeCommandListAppendEventReset(list, e));
  ZE_OK(zeCommandListClose(list));
  ZE_OK(zeCommandQueueExecuteCommandLists(queue, 1, &list, nullptr));
  ZE_EXPECT(ZE_RESULT_NOT_READY, zeCommandQueueSynchronize(queue, 0));
  ZE_EXPECT(ZE_RESULT_NOT_READY, zeEventHostSynchronize(done, 20000000));
  EXPECT_EQ(0u, b[0]);
  ZE_OK(zeEventHostSignal(e));
  ZE_OK(zeEventHostSynchronize(done, kWait));
  ZE_OK(zeCommandQueueSynchronize(queue, kWait));
  EXPECT_EQ(a, b);
  ZE_EXPECT(ZE_RESULT_NOT_READY, zeEventQueryStatus(e)) << "AppendEventReset ran";
  // Kernel timestamps of a signaled timestamp event.
  ze_kernel_timestamp_result_t ts{};
  ZE_OK(zeEventQueryKernelTimestamp(done, &ts));
  EXPECT_LE(ts.global.kernelStart, ts.global.kernelEnd);
  EXPECT_NE(0u, ts.global.kernelEnd);
  // Signal from an immediate list.
  ze_event_handle_t imm_ev = event(2);
  ZE_OK(zeCommandListAppendSignalEvent(imm, imm_ev));
  ZE_OK(zeEventHostSynchronize(imm_ev, kWait));
  // Errors.
  ze_event_desc_t ed{ZE_STRUCTURE_TYPE_EVENT_DESC, nullptr, 8, 0, 0};
  ze_event_handle_t bad = nullptr;
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ARGUMENT, zeEventCreate(pool, &ed, &bad));
  ed.index = 3;
  ed.signal = 0x8;
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ENUMERATION, zeEventCreate(pool, &ed, &bad));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER, zeEventCreate(pool, nullptr, &bad));
  ze_event_pool_desc_t pd{ZE_STRUCTURE_TYPE_EVENT_POOL_DESC, nullptr, 0, 0};
  ze_event_pool_handle_t p2 = nullptr;
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_SIZE, zeEventPoolCreate(ctx, &pd, 0, nullptr, &p2));
  pd.count = 1;
  pd.flags = 0x8;
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ENUMERATION, zeEventPoolCreate(ctx, &pd, 0, nullptr, &p2));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER, zeEventPoolCreate(ctx, nullptr, 0, nullptr, &p2));
  ZE_EXPECT(ZE_RESULT_ERROR_HANDLE_OBJECT_IN_USE, zeEventPoolDestroy(pool));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER, zeEventQueryKernelTimestamp(done, nullptr));
}

TEST_F(Ze, Fences) {
  ze_fence_desc_t fd{ZE_STRUCTURE_TYPE_FENCE_DESC, nullptr, 0};
  ze_fence_handle_t f = nullptr;
  ZE_OK(zeFenceCreate(queue, &fd, &f));
  ZE_EXPECT(ZE_RESULT_NOT_READY, zeFenceQueryStatus(f));
  ZE_EXPECT(ZE_RESULT_NOT_READY, zeFenceHostSynchronize(f, 0));
  std::vector<std::uint32_t> a(4096, 9), b(4096, 0);
  void* d = dev_mem(a.size() * 4);
  ZE_OK(zeCommandListAppendMemoryCopy(list, d, a.data(), a.size() * 4, nullptr, 0, nullptr));
  ZE_OK(zeCommandListAppendBarrier(list, nullptr, 0, nullptr));
  ZE_OK(zeCommandListAppendMemoryCopy(list, b.data(), d, a.size() * 4, nullptr, 0, nullptr));
  ZE_OK(zeCommandListClose(list));
  ZE_OK(zeCommandQueueExecuteCommandLists(queue, 1, &list, f));
  ZE_OK(zeFenceHostSynchronize(f, kWait));
  ZE_OK(zeFenceQueryStatus(f));
  EXPECT_EQ(a, b);
  ZE_OK(zeFenceReset(f));
  ZE_EXPECT(ZE_RESULT_NOT_READY, zeFenceQueryStatus(f));
  // Re-execute the same closed list.
  std::fill(b.begin(), b.end(), 0);
  ZE_OK(zeCommandQueueExecuteCommandLists(queue, 1, &list, f));
  ZE_OK(zeFenceHostSynchronize(f, kWait));
  EXPECT_EQ(a, b);
  ZE_OK(zeFenceDestroy(f));
  fd.flags = ZE_FENCE_FLAG_SIGNALED;
  ZE_OK(zeFenceCreate(queue, &fd, &f));
  ZE_OK(zeFenceQueryStatus(f));
  ZE_OK(zeFenceDestroy(f));
  fd.flags = 0x2;
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ENUMERATION, zeFenceCreate(queue, &fd, &f));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER, zeFenceCreate(queue, nullptr, &f));
}

TEST_F(Ze, QueueAndListRules) {
  ze_command_queue_desc_t qd{ZE_STRUCTURE_TYPE_COMMAND_QUEUE_DESC, nullptr, 1, 0, 0, ZE_COMMAND_QUEUE_MODE_DEFAULT,
                             ZE_COMMAND_QUEUE_PRIORITY_NORMAL};
  ze_command_queue_handle_t q = nullptr;
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ARGUMENT, zeCommandQueueCreate(ctx, device, &qd, &q));
  qd.ordinal = 0;
  qd.index = 4;
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ARGUMENT, zeCommandQueueCreate(ctx, device, &qd, &q));
  qd.index = 0;
  qd.mode = static_cast<ze_command_queue_mode_t>(3);
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ENUMERATION, zeCommandQueueCreate(ctx, device, &qd, &q));
  ze_command_list_handle_t il = nullptr;
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ENUMERATION, zeCommandListCreateImmediate(ctx, device, &qd, &il));
  qd.mode = ZE_COMMAND_QUEUE_MODE_DEFAULT;
  qd.flags = 0x2;
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ENUMERATION, zeCommandQueueCreate(ctx, device, &qd, &q));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER, zeCommandQueueCreate(ctx, device, nullptr, &q));
  ze_command_list_desc_t ld{ZE_STRUCTURE_TYPE_COMMAND_LIST_DESC, nullptr, 0, 0x8};
  ze_command_list_handle_t l = nullptr;
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ENUMERATION, zeCommandListCreate(ctx, device, &ld, &l));
  ld.flags = 0;
  ld.commandQueueGroupOrdinal = 1;
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ARGUMENT, zeCommandListCreate(ctx, device, &ld, &l));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER, zeCommandListCreate(ctx, device, nullptr, &l));
  // Execution rules.
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_SIZE, zeCommandQueueExecuteCommandLists(queue, 0, &list, nullptr));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ARGUMENT, zeCommandQueueExecuteCommandLists(queue, 1, &list, nullptr))
      << "not closed";
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_COMMAND_LIST_TYPE, zeCommandQueueExecuteCommandLists(queue, 1, &imm, nullptr));
  ZE_OK(zeCommandListClose(list));
  int x = 0, y = 1;
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ARGUMENT, zeCommandListAppendMemoryCopy(list, &x, &y, 4, nullptr, 0, nullptr))
      << "closed";
  ZE_OK(zeCommandListReset(list));
  ZE_OK(zeCommandListAppendMemoryCopy(list, &x, &y, 4, nullptr, 0, nullptr));
  ZE_OK(run_list());
  EXPECT_EQ(1, x);
  // Two lists in one submission, executed in order.
  ze_command_list_handle_t l2 = nullptr;
  ld.commandQueueGroupOrdinal = 0;
  ZE_OK(zeCommandListCreate(ctx, device, &ld, &l2));
  int z = 5;
  ZE_OK(zeCommandListAppendMemoryCopy(list, &x, &z, 4, nullptr, 0, nullptr));
  ZE_OK(zeCommandListAppendMemoryCopy(l2, &y, &x, 4, nullptr, 0, nullptr));
  ZE_OK(zeCommandListClose(list));
  ZE_OK(zeCommandListClose(l2));
  ze_command_list_handle_t both[] = {list, l2};
  ZE_OK(zeCommandQueueExecuteCommandLists(queue, 2, both, nullptr));
  ZE_OK(zeCommandQueueSynchronize(queue, kWait));
  EXPECT_EQ(5, y);
  ZE_OK(zeCommandListDestroy(l2));
}

// --- modules and kernels ----------------------------------------------------------

TEST_F(Ze, NativeModuleFromPathAndImage) {
  {
    MODULE_OR_SKIP(probe);
    ZE_OK(zeModuleDestroy(probe));
  }
  ze_module_build_log_handle_t log = nullptr;
  ze_module_handle_t m = module_from_path(&log);
  ASSERT_TRUE(m);
  ASSERT_TRUE(log);
  ZE_OK(zeModuleBuildLogDestroy(log));
  std::uint32_t n = 0;
  ZE_OK(zeModuleGetKernelNames(m, &n, nullptr));
  EXPECT_EQ(6u, n);
  std::vector<const char*> names(n);
  ZE_OK(zeModuleGetKernelNames(m, &n, names.data()));
  EXPECT_STREQ("vector_add", names[0]);
  std::size_t bin = 0;
  ZE_OK(zeModuleGetNativeBinary(m, &bin, nullptr));
  EXPECT_GT(bin, 14u);
  void* fn = nullptr;
  ZE_OK(zeModuleGetFunctionPointer(m, "count", &fn));
  EXPECT_NE(nullptr, fn);
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_FUNCTION_NAME, zeModuleGetFunctionPointer(m, "nope", &fn));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_GLOBAL_NAME, zeModuleGetGlobalPointer(m, "g", nullptr, nullptr));

  ze_kernel_handle_t k = kernel(m, "vector_add");
  ze_kernel_properties_t kp{ZE_STRUCTURE_TYPE_KERNEL_PROPERTIES, nullptr};
  ZE_OK(zeKernelGetProperties(k, &kp));
  EXPECT_EQ(4u, kp.numKernelArgs);
  std::size_t len = 0;
  ZE_OK(zeKernelGetName(k, &len, nullptr));
  std::string name(len, '\0');
  ZE_OK(zeKernelGetName(k, &len, name.data()));
  EXPECT_STREQ("vector_add", name.c_str());
  ZE_EXPECT(ZE_RESULT_ERROR_HANDLE_OBJECT_IN_USE, zeModuleDestroy(m));
  ZE_OK(zeKernelDestroy(k));
  ZE_OK(zeModuleDestroy(m));

  // The library image itself as the native binary.
  std::ifstream f(XESVM_ZE_TEST_KERNELS, std::ios::binary);
  std::vector<std::uint8_t> image((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  ASSERT_GT(image.size(), 4u);
  ze_module_desc_t md{
      ZE_STRUCTURE_TYPE_MODULE_DESC, nullptr, ZE_MODULE_FORMAT_NATIVE, image.size(), image.data(), nullptr, nullptr};
  ZE_OK(zeModuleCreate(ctx, device, &md, &m, nullptr));
  ze_kernel_handle_t k2 = kernel(m, "count");
  auto* counter = static_cast<std::uint32_t*>(shared(4));
  *counter = 0;
  ZE_OK(zeKernelSetArgumentValue(k2, 0, sizeof counter, &counter));
  ze_group_count_t g{10, 1, 1};
  ZE_OK(zeKernelSetGroupSize(k2, 32, 1, 1));
  ZE_OK(zeCommandListAppendLaunchKernel(sync_imm, k2, &g, nullptr, 0, nullptr));
  EXPECT_EQ(320u, *counter);
  ZE_OK(zeKernelDestroy(k2));
  ZE_OK(zeModuleDestroy(m));
}

TEST_F(Ze, ModuleErrors) {
  {
    MODULE_OR_SKIP(probe);
    ZE_OK(zeModuleDestroy(probe));
  }
  ze_module_handle_t m = nullptr;
  ze_module_build_log_handle_t log = nullptr;
  // The 1.8 loader wraps a build log only when zeModuleCreate succeeds, so in
  // intercept mode the log of a failed build cannot be used: ask for none.
  ze_module_build_log_handle_t* plog = intercept_mode() ? nullptr : &log;
  const std::uint8_t spirv[] = {0x03, 0x02, 0x23, 0x07, 0, 0, 1, 0};
  ze_module_desc_t md{
      ZE_STRUCTURE_TYPE_MODULE_DESC, nullptr, ZE_MODULE_FORMAT_IL_SPIRV, sizeof spirv, spirv, nullptr, nullptr};
#ifdef XESVM_ZE_SPIRV_DIR
  // Eight bytes are no SPIR-V module: the build fails, saying why.
  ZE_EXPECT(ZE_RESULT_ERROR_MODULE_BUILD_FAILURE, zeModuleCreate(ctx, device, &md, &m, plog));
  const char* const expected[] = {"not a SPIR-V module", "at least 20"};
#else
  ZE_EXPECT(ZE_RESULT_ERROR_UNSUPPORTED_FEATURE, zeModuleCreate(ctx, device, &md, &m, plog));
  const char* const expected[] = {"SPIR-V", "without its SPIR-V compiler"};
#endif
  EXPECT_EQ(nullptr, m);
  std::size_t n = 0;
  if (plog) {
    ASSERT_TRUE(log);
    ZE_OK(zeModuleBuildLogGetString(log, &n, nullptr));
    std::string text(n, '\0');
    ZE_OK(zeModuleBuildLogGetString(log, &n, text.data()));
    for (const char* e : expected) EXPECT_NE(std::string::npos, text.find(e)) << text;
    ZE_OK(zeModuleBuildLogDestroy(log));
  }

  md.format = ZE_MODULE_FORMAT_NATIVE;
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NATIVE_BINARY, zeModuleCreate(ctx, device, &md, &m, nullptr));
  const std::string missing = "xesvm-kernels:/nonexistent/libnothing.so";
  md.inputSize = missing.size();
  md.pInputModule = reinterpret_cast<const std::uint8_t*>(missing.data());
  ZE_EXPECT(ZE_RESULT_ERROR_MODULE_BUILD_FAILURE, zeModuleCreate(ctx, device, &md, &m, plog));
  if (plog) {
    n = 0;
    ZE_OK(zeModuleBuildLogGetString(log, &n, nullptr));
    EXPECT_GT(n, 1u);
    ZE_OK(zeModuleBuildLogDestroy(log));
  }
  md.inputSize = 0;
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_SIZE, zeModuleCreate(ctx, device, &md, &m, nullptr));
  md.inputSize = missing.size();
  md.format = static_cast<ze_module_format_t>(2);
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ENUMERATION, zeModuleCreate(ctx, device, &md, &m, nullptr));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER, zeModuleCreate(ctx, device, nullptr, &m, nullptr));

  m = module_from_path();
  ze_kernel_desc_t kd{ZE_STRUCTURE_TYPE_KERNEL_DESC, nullptr, 0, "nope"};
  ze_kernel_handle_t k = nullptr;
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_KERNEL_NAME, zeKernelCreate(m, &kd, &k));
  kd.flags = 0x4;
  kd.pKernelName = "count";
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ENUMERATION, zeKernelCreate(m, &kd, &k));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER, zeKernelCreate(m, nullptr, &k));
  k = kernel(m, "vector_add");
  float* p = nullptr;
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_KERNEL_ARGUMENT_INDEX, zeKernelSetArgumentValue(k, 4, 8, &p));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_KERNEL_ARGUMENT_SIZE, zeKernelSetArgumentValue(k, 3, 8, &p));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_GROUP_SIZE_DIMENSION, zeKernelSetGroupSize(k, 0, 1, 1));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_GROUP_SIZE_DIMENSION, zeKernelSetGroupSize(k, 1024, 2, 1));
  std::uint32_t gx, gy, gz;
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_GLOBAL_WIDTH_DIMENSION, zeKernelSuggestGroupSize(k, 0, 1, 1, &gx, &gy, &gz));
  ZE_OK(zeKernelSuggestGroupSize(k, 1000, 6, 1, &gx, &gy, &gz));
  EXPECT_EQ(0u, 1000 % gx);
  EXPECT_EQ(0u, 6 % gy);
  EXPECT_LE(gx * gy * gz, 1024u);
  ze_group_count_t g{1, 1, 1};
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ARGUMENT, zeCommandListAppendLaunchKernel(imm, k, &g, nullptr, 0, nullptr))
      << "arguments unset";
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_POINTER,
            zeCommandListAppendLaunchKernel(imm, k, nullptr, nullptr, 0, nullptr));
  ze_kernel_handle_t fixed = kernel(m, "fixed_group");
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_GROUP_SIZE_DIMENSION, zeKernelSetGroupSize(fixed, 8, 1, 1));
  ZE_OK(zeKernelSetGroupSize(fixed, 4, 2, 1));
  ZE_OK(zeKernelSuggestGroupSize(fixed, 64, 64, 1, &gx, &gy, &gz));
  EXPECT_EQ(4u, gx);
  EXPECT_EQ(2u, gy);
  ZE_OK(zeKernelDestroy(fixed));
  ZE_OK(zeKernelDestroy(k));
  ZE_OK(zeModuleDestroy(m));
}

TEST_F(Ze, VectorAddOnSharedMemory) {
  const std::uint32_t n = 100000;
  MODULE_OR_SKIP(m);
  ze_kernel_handle_t k = kernel(m, "vector_add");
  float* const c = vector_add_inputs(k, n).c;
  std::uint32_t gx, gy, gz;
  ZE_OK(zeKernelSuggestGroupSize(k, n, 1, 1, &gx, &gy, &gz));
  ZE_OK(zeKernelSetGroupSize(k, gx, gy, gz));
  ze_group_count_t g{n / gx, 1, 1};
  ze_event_handle_t done = event(0);
  ZE_OK(zeCommandListAppendLaunchKernel(list, k, &g, done, 0, nullptr));
  ZE_OK(run_list());
  ZE_OK(zeEventQueryStatus(done));
  for (std::uint32_t i = 0; i < n; ++i) ASSERT_EQ(static_cast<float>(3 * i) + 0.5f, c[i]) << i;
  ZE_OK(zeKernelDestroy(k));
  ZE_OK(zeModuleDestroy(m));
}

TEST_F(Ze, KernelsOnDeviceMemoryAnd3DIds) {
  MODULE_OR_SKIP(m);
  // scale on a device allocation: the kernel reaches it through translation.
  const std::uint32_t n = 8192;
  std::vector<std::uint32_t> in(n), out(n);
  std::iota(in.begin(), in.end(), 100u);
  void* d = dev_mem(n * 4);
  ze_kernel_handle_t k = kernel(m, "scale");
  ZE_OK(zeKernelSetArgumentValue(k, 0, 8, &d));
  ZE_OK(zeKernelSetGroupSize(k, 64, 1, 1));
  ze_group_count_t g{n / 64, 1, 1};
  ZE_OK(zeCommandListAppendMemoryCopy(list, d, in.data(), n * 4, nullptr, 0, nullptr));
  ZE_OK(zeCommandListAppendBarrier(list, nullptr, 0, nullptr));
  ZE_OK(zeCommandListAppendLaunchKernel(list, k, &g, nullptr, 0, nullptr));
  ZE_OK(zeCommandListAppendBarrier(list, nullptr, 0, nullptr));
  ZE_OK(zeCommandListAppendMemoryCopy(list, out.data(), d, n * 4, nullptr, 0, nullptr));
  ZE_OK(run_list());
  for (std::uint32_t i = 0; i < n; ++i) ASSERT_EQ(in[i] * 2 + i, out[i]) << i;
  ZE_OK(zeKernelDestroy(k));

  // ids3d over a 3D grid: groups (3,2,2) of (4,3,2).
  ze_kernel_handle_t k3 = kernel(m, "ids3d");
  const std::uint32_t X = 12, Y = 6, Z = 4;
  auto* ids = static_cast<std::uint32_t*>(host_mem(X * Y * Z * 4));
  ZE_OK(zeKernelSetArgumentValue(k3, 0, 8, &ids));
  ZE_OK(zeKernelSetGroupSize(k3, 4, 3, 2));
  ze_group_count_t g3{3, 2, 2};
  ZE_OK(zeCommandListAppendLaunchKernel(sync_imm, k3, &g3, nullptr, 0, nullptr));
  for (std::uint32_t z = 0; z < Z; ++z) {
    for (std::uint32_t y = 0; y < Y; ++y) {
      for (std::uint32_t x = 0; x < X; ++x) ASSERT_EQ(x | y << 10 | z << 20, ids[x + X * (y + Y * z)]);
    }
  }
  ZE_OK(zeKernelDestroy(k3));
  ZE_OK(zeModuleDestroy(m));
}

TEST_F(Ze, KernelFaultOnUnmappedMemoryIsDeviceLost) {
  MODULE_OR_SKIP(m);
  ze_kernel_handle_t k = kernel(m, "load_at");
  void* p = unmapped_page();  // no memory at all
  ZE_OK(zeKernelSetArgumentValue(k, 0, 8, &p));
  ze_group_count_t g{1, 1, 1};
  ZE_OK(zeCommandListAppendLaunchKernel(list, k, &g, nullptr, 0, nullptr));
  ZE_OK(zeCommandListClose(list));
  ZE_OK(zeCommandQueueExecuteCommandLists(queue, 1, &list, nullptr));
  ZE_EXPECT(ZE_RESULT_ERROR_DEVICE_LOST, zeCommandQueueSynchronize(queue, kWait));
  ZE_OK(zeCommandQueueSynchronize(queue, kWait)) << "the error is reported once";
  // Past the end of a device allocation.
  void* d = dev_mem(4096);
  void* end = static_cast<char*>(d) + 4094;
  ZE_OK(zeKernelSetArgumentValue(k, 0, 8, &end));
  ZE_EXPECT(ZE_RESULT_ERROR_DEVICE_LOST, zeCommandListAppendLaunchKernel(sync_imm, k, &g, nullptr, 0, nullptr));
  ZE_OK(zeKernelDestroy(k));
  ZE_OK(zeModuleDestroy(m));
}

TEST_F(Ze, OversubscribedSharedMemoryKeepsItsBytes) {
  {
    MODULE_OR_SKIP(probe);
    ZE_OK(zeModuleDestroy(probe));
  }
  // Twice the device memory in shared allocations, all touched by kernels.
  ze_device_mem_alloc_desc_t dd{ZE_STRUCTURE_TYPE_DEVICE_MEM_ALLOC_DESC, nullptr, 0, 0};
  ze_host_mem_alloc_desc_t hd{ZE_STRUCTURE_TYPE_HOST_MEM_ALLOC_DESC, nullptr, 0};
  const std::size_t each = vram / 2;
  std::vector<std::uint32_t*> bufs;
  for (int i = 0; i < 4; ++i) {
    void* p = nullptr;
    ZE_OK(zeMemAllocShared(ctx, &dd, &hd, each, 0, device, &p));
    allocs.push_back(p);
    bufs.push_back(static_cast<std::uint32_t*>(p));
    for (std::size_t j = 0; j < each / 4; ++j) bufs.back()[j] = static_cast<std::uint32_t>(j + i);
  }
  ze_module_handle_t m = module_from_path();
  ze_kernel_handle_t k = kernel(m, "scale");
  ZE_OK(zeKernelSetGroupSize(k, 256, 1, 1));
  ze_group_count_t g{static_cast<std::uint32_t>(each / 4 / 256), 1, 1};
  for (auto* b : bufs) {
    ZE_OK(zeKernelSetArgumentValue(k, 0, 8, &b));
    ZE_OK(zeCommandListAppendLaunchKernel(list, k, &g, nullptr, 0, nullptr));
  }
  ZE_OK(run_list());
  for (int i = 0; i < 4; ++i) {
    for (std::size_t j = 0; j < each / 4; ++j) ASSERT_EQ((j + i) * 2 + j, bufs[i][j]) << i << " " << j;
  }
  ZE_OK(zeKernelDestroy(k));
  ZE_OK(zeModuleDestroy(m));
}

// zeCommandListAppendMemoryCopyFromContext: one address space, so a copy
// from another context's allocation is a copy like any other.
TEST_F(Ze, CopyFromAnotherContext) {
  ze_context_desc_t cd{ZE_STRUCTURE_TYPE_CONTEXT_DESC, nullptr, 0};
  ze_context_handle_t other = nullptr;
  ZE_OK(zeContextCreate(driver, &cd, &other));
  ze_device_mem_alloc_desc_t dd{ZE_STRUCTURE_TYPE_DEVICE_MEM_ALLOC_DESC, nullptr, 0, 0};
  ze_host_mem_alloc_desc_t hd{ZE_STRUCTURE_TYPE_HOST_MEM_ALLOC_DESC, nullptr, 0};
  const std::size_t n = 300000;
  void* theirs = nullptr;
  ZE_OK(zeMemAllocShared(other, &dd, &hd, n, 0, device, &theirs));
  auto* src = static_cast<unsigned char*>(theirs);
  for (std::size_t i = 0; i < n; ++i) src[i] = static_cast<unsigned char>(i * 31 + i / 4096);
  void* mine = dev_mem(n);
  ZE_OK(on_immediate([&](ze_command_list_handle_t l, ze_event_handle_t e) {
    return zeCommandListAppendMemoryCopyFromContext(l, mine, other, theirs, n, e, 0, nullptr);
  }));
  std::vector<unsigned char> out(n);
  ZE_OK(zeCommandListAppendMemoryCopy(sync_imm, out.data(), mine, n, nullptr, 0, nullptr));
  EXPECT_EQ(0, std::memcmp(out.data(), src, n));
  // On a regular list, signalling an event.
  std::vector<unsigned char> back(n, 0);
  ze_event_handle_t e = event(4);
  ZE_OK(zeCommandListAppendMemoryCopyFromContext(list, back.data(), other, theirs, n, e, 0, nullptr));
  ZE_OK(run_list());
  EXPECT_EQ(ZE_RESULT_SUCCESS, zeEventHostSynchronize(e, kWait));
  EXPECT_EQ(0, std::memcmp(back.data(), src, n));
  if (!intercept_mode()) {
    ZE_EXPECT(ZE_RESULT_ERROR_INVALID_NULL_HANDLE,
              zeCommandListAppendMemoryCopyFromContext(imm, mine, nullptr, theirs, n, nullptr, 0, nullptr));
  }
  ZE_OK(zeMemFree(other, theirs));
  ZE_OK(zeContextDestroy(other));
}

}  // namespace
