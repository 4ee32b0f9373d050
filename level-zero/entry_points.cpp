// The Level Zero entry points of the xesvm driver and the 46 table getters the
// loader requires (REFERENCE.md Part C). Only the getters are exported; every
// entry point is a file-local function reached through the tables, so none of
// them can bind to the loader's own symbols of the same API name.
//
// Each entry point validates its arguments in the order the validation layer
// does (null handles, null pointers, enumerations, sizes) and returns the code
// a conformant driver returns; no C++ exception leaves this file.
#include <level_zero/ze_ddi.h>
#include <level_zero/zes_ddi.h>
#include <level_zero/zet_ddi.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "level-zero/driver.hpp"

using namespace xesvm::ze;
using xesvm::Error;

namespace {

constexpr std::uint32_t kNumQueues = 4;
constexpr std::size_t kMaxFillPattern = 128;
constexpr std::uint32_t kMaxGroupSize = 1024;
constexpr std::uint32_t kDriverVersion = 0x00000100;  // 0.1.0

bool debug_log() {
  static const bool on = [] {
    const char* e = std::getenv("XESVM_ZE_DEBUG");
    return e && *e == '1';
  }();
  return on;
}

template <class F>
ze_result_t guard(const char* fn, F&& f) noexcept {
  try {
    return f();
  } catch (const ZeError& e) {
    if (debug_log()) log(std::string(fn) + ": " + e.what);
    return e.code;
  } catch (const Error& e) {
    if (debug_log()) log(std::string(fn) + ": " + e.what());
    return to_result(e);
  } catch (const std::bad_alloc&) {
    return ZE_RESULT_ERROR_OUT_OF_HOST_MEMORY;
  } catch (...) {
    return ZE_RESULT_ERROR_UNKNOWN;
  }
}

#define ENTRY(fn) [&]() -> ze_result_t
#define REQ_HANDLE(h) \
  if (!(h)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE
#define REQ_PTR(p) \
  if (!(p)) return ZE_RESULT_ERROR_INVALID_NULL_POINTER

// Copies v into *out keeping the caller's stype and pNext.
template <class T>
void put(T* out, T v) {
  v.stype = out->stype;
  v.pNext = out->pNext;
  *out = v;
}

template <class T, class F>
ze_result_t count_fill(std::uint32_t* count, T* out, std::uint32_t avail, F&& fill) {
  if (*count == 0 || !out) {
    *count = avail;
    return ZE_RESULT_SUCCESS;
  }
  const std::uint32_t n = std::min(*count, avail);
  for (std::uint32_t i = 0; i < n; ++i) fill(out[i], i);
  *count = n;
  return ZE_RESULT_SUCCESS;
}

Device* dev_of(ze_device_handle_t h) { return static_cast<Device*>(h); }
Context* ctx_of(ze_context_handle_t h) { return static_cast<Context*>(h); }
CommandList* list_of(ze_command_list_handle_t h) { return static_cast<CommandList*>(h); }
Event* ev_of(ze_event_handle_t h) { return static_cast<Event*>(h); }

std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

// ============================================================================
// Driver

ze_result_t ZE_APICALL xInit(ze_init_flags_t flags) {
  return guard("zeInit", ENTRY() {
    if (flags > 0x3) return ZE_RESULT_ERROR_INVALID_ENUMERATION;
    if (flags == ZE_INIT_FLAG_VPU_ONLY) return ZE_RESULT_ERROR_UNINITIALIZED;  // no VPU here
    Driver::get();
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL xDriverGet(std::uint32_t* pCount, ze_driver_handle_t* phDrivers) {
  return guard("zeDriverGet", ENTRY() {
    REQ_PTR(pCount);
    Driver& d = Driver::get();
    return count_fill(pCount, phDrivers, 1, [&](ze_driver_handle_t& h, std::uint32_t) { h = &d; });
  });
}

ze_result_t ZE_APICALL xDriverGetApiVersion(ze_driver_handle_t hDriver, ze_api_version_t* version) {
  REQ_HANDLE(hDriver);
  REQ_PTR(version);
  *version = ZE_API_VERSION_1_4;
  return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL xDriverGetProperties(ze_driver_handle_t hDriver, ze_driver_properties_t* p) {
  REQ_HANDLE(hDriver);
  REQ_PTR(p);
  ze_driver_properties_t v{};
  std::memcpy(v.uuid.id, "xesvm-ze-driver", 16);
  v.driverVersion = kDriverVersion;
  put(p, v);
  return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL xDriverGetIpcProperties(ze_driver_handle_t hDriver, ze_driver_ipc_properties_t* p) {
  REQ_HANDLE(hDriver);
  REQ_PTR(p);
  ze_driver_ipc_properties_t v{};
  v.flags = ZE_IPC_PROPERTY_FLAG_FORCE_UINT32 & 0;  // no IPC of memory or events
  put(p, v);
  return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL xDriverGetExtensionProperties(ze_driver_handle_t hDriver, std::uint32_t* pCount,
                                                     ze_driver_extension_properties_t* props) {
  REQ_HANDLE(hDriver);
  REQ_PTR(pCount);
  return count_fill(pCount, props, 1, [](ze_driver_extension_properties_t& e, std::uint32_t) {
    std::memset(e.name, 0, sizeof e.name);
    std::strncpy(e.name, ZE_RELAXED_ALLOCATION_LIMITS_EXP_NAME, sizeof e.name - 1);
    e.version = ZE_RELAXED_ALLOCATION_LIMITS_EXP_VERSION_CURRENT;
  });
}

ze_result_t ZE_APICALL xDriverGetExtensionFunctionAddress(ze_driver_handle_t hDriver, const char* name, void** pp) {
  REQ_HANDLE(hDriver);
  REQ_PTR(name);
  REQ_PTR(pp);
  *pp = nullptr;
  return ZE_RESULT_ERROR_INVALID_ARGUMENT;  // no extension functions
}

// ============================================================================
// Device

ze_result_t ZE_APICALL xDeviceGet(ze_driver_handle_t hDriver, std::uint32_t* pCount, ze_device_handle_t* ph) {
  REQ_HANDLE(hDriver);
  REQ_PTR(pCount);
  auto& devs = static_cast<Driver*>(hDriver)->devices();
  return count_fill(pCount, ph, static_cast<std::uint32_t>(devs.size()),
                    [&](ze_device_handle_t& h, std::uint32_t i) { h = devs[i].get(); });
}

ze_result_t ZE_APICALL xDeviceGetSubDevices(ze_device_handle_t hDevice, std::uint32_t* pCount, ze_device_handle_t*) {
  REQ_HANDLE(hDevice);
  REQ_PTR(pCount);
  *pCount = 0;
  return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL xDeviceGetProperties(ze_device_handle_t hDevice, ze_device_properties_t* p) {
  REQ_HANDLE(hDevice);
  REQ_PTR(p);
  Device& d = *dev_of(hDevice);
  ze_device_properties_t v{};
  v.type = ZE_DEVICE_TYPE_GPU;
  v.vendorId = 0;
  v.deviceId = d.index();
  v.flags = ZE_DEVICE_PROPERTY_FLAG_ONDEMANDPAGING;
  v.coreClockRate = 1000;
  v.maxMemAllocSize = d.vram();
  v.maxHardwareContexts = 64;
  v.maxCommandQueuePriority = 0;
  v.numThreadsPerEU = 1;
  v.physicalEUSimdWidth = 1;
  v.numEUsPerSubslice = 1;
  v.numSubslicesPerSlice = d.workers();
  v.numSlices = 1;
  v.timerResolution = 1;
  v.timestampValidBits = 64;
  v.kernelTimestampValidBits = 64;
  std::memcpy(v.uuid.id, "xesvm-ze-dev", 12);
  v.uuid.id[15] = static_cast<std::uint8_t>(d.index());
  std::snprintf(v.name, sizeof v.name, "xesvm %s", d.uri().c_str());
  put(p, v);
  return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL xDeviceGetComputeProperties(ze_device_handle_t hDevice, ze_device_compute_properties_t* p) {
  REQ_HANDLE(hDevice);
  REQ_PTR(p);
  ze_device_compute_properties_t v{};
  v.maxTotalGroupSize = kMaxGroupSize;
  v.maxGroupSizeX = v.maxGroupSizeY = v.maxGroupSizeZ = kMaxGroupSize;
  v.maxGroupCountX = v.maxGroupCountY = v.maxGroupCountZ = 0xffffffffu;
  v.maxSharedLocalMemory = 0;
  v.numSubGroupSizes = 1;
  v.subGroupSizes[0] = 1;
  put(p, v);
  return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL xDeviceGetModuleProperties(ze_device_handle_t hDevice, ze_device_module_properties_t* p) {
  REQ_HANDLE(hDevice);
  REQ_PTR(p);
  ze_device_module_properties_t v{};
  v.spirvVersionSupported = 0;  // no SPIR-V compiler
  v.fp32flags = ZE_DEVICE_FP_FLAG_ROUND_TO_NEAREST | ZE_DEVICE_FP_FLAG_INF_NAN | ZE_DEVICE_FP_FLAG_DENORM;
  v.fp64flags = v.fp32flags;
  v.maxArgumentsSize = XESVM_ZE_MAX_KERNEL_ARGS * XESVM_ZE_MAX_ARG_SIZE;
  put(p, v);
  return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL xDeviceGetCommandQueueGroupProperties(ze_device_handle_t hDevice, std::uint32_t* pCount,
                                                             ze_command_queue_group_properties_t* props) {
  REQ_HANDLE(hDevice);
  REQ_PTR(pCount);
  return count_fill(pCount, props, 1, [](ze_command_queue_group_properties_t& g, std::uint32_t) {
    ze_command_queue_group_properties_t v{};
    v.flags = ZE_COMMAND_QUEUE_GROUP_PROPERTY_FLAG_COMPUTE | ZE_COMMAND_QUEUE_GROUP_PROPERTY_FLAG_COPY;
    v.maxMemoryFillPatternSize = kMaxFillPattern;
    v.numQueues = kNumQueues;
    put(&g, v);
  });
}

ze_result_t ZE_APICALL xDeviceGetMemoryProperties(ze_device_handle_t hDevice, std::uint32_t* pCount,
                                                  ze_device_memory_properties_t* props) {
  REQ_HANDLE(hDevice);
  REQ_PTR(pCount);
  Device& d = *dev_of(hDevice);
  return count_fill(pCount, props, 1, [&](ze_device_memory_properties_t& m, std::uint32_t) {
    ze_device_memory_properties_t v{};
    v.maxClockRate = 1000;
    v.maxBusWidth = 64;
    v.totalSize = d.vram();
    std::snprintf(v.name, sizeof v.name, "VRAM");
    put(&m, v);
  });
}

ze_result_t ZE_APICALL xDeviceGetMemoryAccessProperties(ze_device_handle_t hDevice, ze_device_memory_access_properties_t* p) {
  REQ_HANDLE(hDevice);
  REQ_PTR(p);
  ze_device_memory_access_properties_t v{};
  v.hostAllocCapabilities = ZE_MEMORY_ACCESS_CAP_FLAG_RW | ZE_MEMORY_ACCESS_CAP_FLAG_ATOMIC | ZE_MEMORY_ACCESS_CAP_FLAG_CONCURRENT;
  v.deviceAllocCapabilities = ZE_MEMORY_ACCESS_CAP_FLAG_RW | ZE_MEMORY_ACCESS_CAP_FLAG_ATOMIC;
  v.sharedSingleDeviceAllocCapabilities =
      ZE_MEMORY_ACCESS_CAP_FLAG_RW | ZE_MEMORY_ACCESS_CAP_FLAG_ATOMIC | ZE_MEMORY_ACCESS_CAP_FLAG_CONCURRENT;
  v.sharedCrossDeviceAllocCapabilities = 0;
  v.sharedSystemAllocCapabilities = 0;
  put(p, v);
  return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL xDeviceGetCacheProperties(ze_device_handle_t hDevice, std::uint32_t* pCount,
                                                 ze_device_cache_properties_t*) {
  REQ_HANDLE(hDevice);
  REQ_PTR(pCount);
  *pCount = 0;  // the sim models no device caches
  return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL xDeviceGetImageProperties(ze_device_handle_t hDevice, ze_device_image_properties_t* p) {
  REQ_HANDLE(hDevice);
  REQ_PTR(p);
  put(p, ze_device_image_properties_t{});  // no images
  return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL xDeviceGetExternalMemoryProperties(ze_device_handle_t hDevice, ze_device_external_memory_properties_t* p) {
  REQ_HANDLE(hDevice);
  REQ_PTR(p);
  put(p, ze_device_external_memory_properties_t{});
  return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL xDeviceGetP2PProperties(ze_device_handle_t hDevice, ze_device_handle_t hPeer, ze_device_p2p_properties_t* p) {
  REQ_HANDLE(hDevice);
  REQ_HANDLE(hPeer);
  REQ_PTR(p);
  put(p, ze_device_p2p_properties_t{});
  return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL xDeviceCanAccessPeer(ze_device_handle_t hDevice, ze_device_handle_t hPeer, ze_bool_t* value) {
  REQ_HANDLE(hDevice);
  REQ_HANDLE(hPeer);
  REQ_PTR(value);
  *value = hDevice == hPeer;
  return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL xDeviceGetStatus(ze_device_handle_t hDevice) {
  REQ_HANDLE(hDevice);
  return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL xDeviceGetGlobalTimestamps(ze_device_handle_t hDevice, std::uint64_t* host, std::uint64_t* device) {
  REQ_HANDLE(hDevice);
  REQ_PTR(host);
  REQ_PTR(device);
  *host = now_ns();
  *device = dev_of(hDevice)->clock_ns();
  return ZE_RESULT_SUCCESS;
}

// ============================================================================
// Context

ze_result_t ZE_APICALL xContextCreate(ze_driver_handle_t hDriver, const ze_context_desc_t* desc, ze_context_handle_t* ph) {
  return guard("zeContextCreate", ENTRY() {
    REQ_HANDLE(hDriver);
    REQ_PTR(desc);
    REQ_PTR(ph);
    if (desc->flags > 0x1) return ZE_RESULT_ERROR_INVALID_ENUMERATION;
    *ph = new Context(*static_cast<Driver*>(hDriver));
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL xContextCreateEx(ze_driver_handle_t hDriver, const ze_context_desc_t* desc, std::uint32_t n,
                                        ze_device_handle_t* phDevices, ze_context_handle_t* ph) {
  REQ_HANDLE(hDriver);
  REQ_PTR(desc);
  REQ_PTR(ph);
  if (desc->flags > 0x1) return ZE_RESULT_ERROR_INVALID_ENUMERATION;
  if (!phDevices && n > 0) return ZE_RESULT_ERROR_INVALID_SIZE;
  for (std::uint32_t i = 0; i < n; ++i) REQ_HANDLE(phDevices[i]);
  return xContextCreate(hDriver, desc, ph);
}

ze_result_t ZE_APICALL xContextDestroy(ze_context_handle_t hContext) {
  return guard("zeContextDestroy", ENTRY() {
    REQ_HANDLE(hContext);
    Context* c = ctx_of(hContext);
    for (std::uint64_t base : c->driver.allocations_of(c)) {
      if (auto a = c->driver.remove_allocation(base)) release_allocation(a);
    }
    delete c;
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL xContextGetStatus(ze_context_handle_t hContext) {
  REQ_HANDLE(hContext);
  return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL xContextSystemBarrier(ze_context_handle_t hContext, ze_device_handle_t hDevice) {
  REQ_HANDLE(hContext);
  REQ_HANDLE(hDevice);
  return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL xContextMakeMemoryResident(ze_context_handle_t hContext, ze_device_handle_t hDevice, void* ptr, size_t size) {
  return guard("zeContextMakeMemoryResident", ENTRY() {
    REQ_HANDLE(hContext);
    REQ_HANDLE(hDevice);
    REQ_PTR(ptr);
    prefetch_to_device(ptr, size);
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL xContextEvictMemory(ze_context_handle_t hContext, ze_device_handle_t hDevice, void* ptr, size_t size) {
  return guard("zeContextEvictMemory", ENTRY() {
    REQ_HANDLE(hContext);
    REQ_HANDLE(hDevice);
    REQ_PTR(ptr);
    evict_to_system(ptr, size);
    return ZE_RESULT_SUCCESS;
  });
}

// ============================================================================
// Memory

ze_result_t ZE_APICALL xMemAllocShared(ze_context_handle_t hContext, const ze_device_mem_alloc_desc_t* ddesc,
                                       const ze_host_mem_alloc_desc_t* hdesc, size_t size, size_t alignment,
                                       ze_device_handle_t hDevice, void** pptr) {
  return guard("zeMemAllocShared", ENTRY() {
    REQ_HANDLE(hContext);
    REQ_PTR(ddesc);
    REQ_PTR(hdesc);
    REQ_PTR(pptr);
    *pptr = allocate(*ctx_of(hContext), MemKind::kShared, dev_of(hDevice), size, alignment, ddesc->flags, hdesc->flags,
                     ddesc->pNext, ddesc->ordinal);
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL xMemAllocDevice(ze_context_handle_t hContext, const ze_device_mem_alloc_desc_t* ddesc, size_t size,
                                       size_t alignment, ze_device_handle_t hDevice, void** pptr) {
  return guard("zeMemAllocDevice", ENTRY() {
    REQ_HANDLE(hContext);
    REQ_HANDLE(hDevice);
    REQ_PTR(ddesc);
    REQ_PTR(pptr);
    *pptr = allocate(*ctx_of(hContext), MemKind::kDevice, dev_of(hDevice), size, alignment, ddesc->flags, 0, ddesc->pNext,
                     ddesc->ordinal);
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL xMemAllocHost(ze_context_handle_t hContext, const ze_host_mem_alloc_desc_t* hdesc, size_t size,
                                     size_t alignment, void** pptr) {
  return guard("zeMemAllocHost", ENTRY() {
    REQ_HANDLE(hContext);
    REQ_PTR(hdesc);
    REQ_PTR(pptr);
    *pptr = allocate(*ctx_of(hContext), MemKind::kHost, nullptr, size, alignment, 0, hdesc->flags, hdesc->pNext, 0);
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL xMemFree(ze_context_handle_t hContext, void* ptr) {
  return guard("zeMemFree", ENTRY() {
    REQ_HANDLE(hContext);
    REQ_PTR(ptr);
    release(*ctx_of(hContext), ptr);
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL xMemFreeExt(ze_context_handle_t hContext, const ze_memory_free_ext_desc_t* desc, void* ptr) {
  REQ_HANDLE(hContext);
  REQ_PTR(desc);
  REQ_PTR(ptr);
  if (desc->freePolicy > 0x3) return ZE_RESULT_ERROR_INVALID_ENUMERATION;
  return xMemFree(hContext, ptr);  // nothing runs asynchronously on freed memory
}

ze_result_t ZE_APICALL xMemGetAllocProperties(ze_context_handle_t hContext, const void* ptr,
                                              ze_memory_allocation_properties_t* p, ze_device_handle_t* phDevice) {
  return guard("zeMemGetAllocProperties", ENTRY() {
    REQ_HANDLE(hContext);
    REQ_PTR(ptr);
    REQ_PTR(p);
    auto a = ctx_of(hContext)->driver.find(reinterpret_cast<std::uint64_t>(ptr));
    ze_memory_allocation_properties_t v{};
    if (a && a->ctx == ctx_of(hContext)) {
      v.type = a->kind == MemKind::kHost ? ZE_MEMORY_TYPE_HOST : a->kind == MemKind::kDevice ? ZE_MEMORY_TYPE_DEVICE : ZE_MEMORY_TYPE_SHARED;
      v.id = a->id;
      v.pageSize = 4096;
      if (phDevice) *phDevice = a->device;
    } else {
      v.type = ZE_MEMORY_TYPE_UNKNOWN;
      if (phDevice) *phDevice = nullptr;
    }
    put(p, v);
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL xMemGetAddressRange(ze_context_handle_t hContext, const void* ptr, void** pBase, size_t* pSize) {
  return guard("zeMemGetAddressRange", ENTRY() {
    REQ_HANDLE(hContext);
    REQ_PTR(ptr);
    auto a = ctx_of(hContext)->driver.find(reinterpret_cast<std::uint64_t>(ptr));
    if (!a || a->ctx != ctx_of(hContext)) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    if (pBase) *pBase = reinterpret_cast<void*>(a->base);
    if (pSize) *pSize = a->size;
    return ZE_RESULT_SUCCESS;
  });
}

// ============================================================================
// Command queues

// The checks a queue descriptor gets, for queues and immediate lists alike.
ze_result_t check_queue_desc(const ze_command_queue_desc_t& desc) {
  if (desc.flags > 0x1 || desc.mode > ZE_COMMAND_QUEUE_MODE_ASYNCHRONOUS ||
      desc.priority > ZE_COMMAND_QUEUE_PRIORITY_PRIORITY_HIGH) {
    return ZE_RESULT_ERROR_INVALID_ENUMERATION;
  }
  if (desc.ordinal >= 1 || desc.index >= kNumQueues) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
  return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL xCommandQueueCreate(ze_context_handle_t hContext, ze_device_handle_t hDevice,
                                           const ze_command_queue_desc_t* desc, ze_command_queue_handle_t* ph) {
  return guard("zeCommandQueueCreate", ENTRY() {
    REQ_HANDLE(hContext);
    REQ_HANDLE(hDevice);
    REQ_PTR(desc);
    REQ_PTR(ph);
    if (const ze_result_t r = check_queue_desc(*desc); r != ZE_RESULT_SUCCESS) return r;
    *ph = new CommandQueue(*ctx_of(hContext), *dev_of(hDevice), *desc);
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL xCommandQueueDestroy(ze_command_queue_handle_t h) {
  REQ_HANDLE(h);
  delete static_cast<CommandQueue*>(h);
  return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL xCommandQueueExecuteCommandLists(ze_command_queue_handle_t hQueue, std::uint32_t n,
                                                        ze_command_list_handle_t* lists, ze_fence_handle_t hFence) {
  return guard("zeCommandQueueExecuteCommandLists", ENTRY() {
    REQ_HANDLE(hQueue);
    REQ_PTR(lists);
    if (n == 0) return ZE_RESULT_ERROR_INVALID_SIZE;
    auto* q = static_cast<CommandQueue*>(hQueue);
    CommandBatch batch;
    for (std::uint32_t i = 0; i < n; ++i) {
      REQ_HANDLE(lists[i]);
      CommandList* l = list_of(lists[i]);
      if (l->immediate || l->ordinal != q->ordinal) return ZE_RESULT_ERROR_INVALID_COMMAND_LIST_TYPE;
      if (&l->dev != &q->dev) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
      if (!l->closed) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
      batch.insert(batch.end(), l->cmds.begin(), l->cmds.end());
    }
    Fence* f = static_cast<Fence*>(hFence);
    if (f && &f->queue != q) return ZE_RESULT_ERROR_INVALID_SYNCHRONIZATION_OBJECT;
    q->exec.submit(std::move(batch), f);
    if (q->mode == ZE_COMMAND_QUEUE_MODE_SYNCHRONOUS) return q->exec.synchronize(UINT64_MAX);
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL xCommandQueueSynchronize(ze_command_queue_handle_t hQueue, std::uint64_t timeout) {
  return guard("zeCommandQueueSynchronize", ENTRY() {
    REQ_HANDLE(hQueue);
    return static_cast<CommandQueue*>(hQueue)->exec.synchronize(timeout);
  });
}

// ============================================================================
// Command lists

ze_result_t ZE_APICALL xCommandListCreate(ze_context_handle_t hContext, ze_device_handle_t hDevice,
                                          const ze_command_list_desc_t* desc, ze_command_list_handle_t* ph) {
  return guard("zeCommandListCreate", ENTRY() {
    REQ_HANDLE(hContext);
    REQ_HANDLE(hDevice);
    REQ_PTR(desc);
    REQ_PTR(ph);
    if (desc->flags > 0x7) return ZE_RESULT_ERROR_INVALID_ENUMERATION;
    if (desc->commandQueueGroupOrdinal >= 1) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    *ph = new CommandList(*ctx_of(hContext), *dev_of(hDevice), desc->commandQueueGroupOrdinal, false,
                          ZE_COMMAND_QUEUE_MODE_DEFAULT);
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL xCommandListCreateImmediate(ze_context_handle_t hContext, ze_device_handle_t hDevice,
                                                   const ze_command_queue_desc_t* desc, ze_command_list_handle_t* ph) {
  return guard("zeCommandListCreateImmediate", ENTRY() {
    REQ_HANDLE(hContext);
    REQ_HANDLE(hDevice);
    REQ_PTR(desc);
    REQ_PTR(ph);
    if (const ze_result_t r = check_queue_desc(*desc); r != ZE_RESULT_SUCCESS) return r;
    *ph = new CommandList(*ctx_of(hContext), *dev_of(hDevice), desc->ordinal, true, desc->mode);
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL xCommandListDestroy(ze_command_list_handle_t h) {
  REQ_HANDLE(h);
  delete list_of(h);
  return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL xCommandListClose(ze_command_list_handle_t h) {
  REQ_HANDLE(h);
  list_of(h)->closed = true;
  return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL xCommandListReset(ze_command_list_handle_t h) {
  REQ_HANDLE(h);
  CommandList* l = list_of(h);
  if (l->immediate) {
    l->exec->synchronize(UINT64_MAX);
  }
  l->cmds.clear();
  l->closed = false;
  return ZE_RESULT_SUCCESS;
}

// Validates the signal event and wait list every Append* takes, then adds.
ze_result_t append(CommandList* l, Command c, ze_event_handle_t hSignal, std::uint32_t nWait, ze_event_handle_t* phWait) {
  c.waits = wait_list(nWait, phWait);
  c.signal = ev_of(hSignal);
  l->add(std::move(c));
  return ZE_RESULT_SUCCESS;
}

void check_span(const void* p, std::size_t n, const char* what) {
  if (n == 0) return;
  if (Driver::get().find(reinterpret_cast<std::uint64_t>(p))) require_range(p, n, what);
}

ze_result_t ZE_APICALL xAppendBarrier(ze_command_list_handle_t h, ze_event_handle_t hSignal, std::uint32_t nWait,
                                      ze_event_handle_t* phWait) {
  return guard("zeCommandListAppendBarrier", ENTRY() {
    REQ_HANDLE(h);
    if (!phWait && nWait > 0) return ZE_RESULT_ERROR_INVALID_SIZE;
    return append(list_of(h), Command{}, hSignal, nWait, phWait);
  });
}

ze_result_t ZE_APICALL xAppendMemoryRangesBarrier(ze_command_list_handle_t h, std::uint32_t, const size_t* sizes,
                                                  const void** ranges, ze_event_handle_t hSignal, std::uint32_t nWait,
                                                  ze_event_handle_t* phWait) {
  return guard("zeCommandListAppendMemoryRangesBarrier", ENTRY() {
    REQ_HANDLE(h);
    REQ_PTR(sizes);
    REQ_PTR(ranges);
    if (!phWait && nWait > 0) return ZE_RESULT_ERROR_INVALID_SIZE;
    return append(list_of(h), Command{}, hSignal, nWait, phWait);
  });
}

ze_result_t ZE_APICALL xAppendMemoryCopy(ze_command_list_handle_t h, void* dst, const void* src, size_t size,
                                         ze_event_handle_t hSignal, std::uint32_t nWait, ze_event_handle_t* phWait) {
  return guard("zeCommandListAppendMemoryCopy", ENTRY() {
    REQ_HANDLE(h);
    REQ_PTR(dst);
    REQ_PTR(src);
    if (!phWait && nWait > 0) return ZE_RESULT_ERROR_INVALID_SIZE;
    check_span(dst, size, "zeCommandListAppendMemoryCopy (dst)");
    check_span(src, size, "zeCommandListAppendMemoryCopy (src)");
    CommandList* l = list_of(h);
    Device* d = &l->dev;
    std::vector<CopySeg> segs{{reinterpret_cast<std::uint64_t>(dst), reinterpret_cast<std::uint64_t>(src), size}};
    Command c;
    if (size) c.body = [d, segs] { run_copy(*d, segs, {}); };
    return append(l, std::move(c), hSignal, nWait, phWait);
  });
}

ze_result_t ZE_APICALL xAppendMemoryFill(ze_command_list_handle_t h, void* ptr, const void* pattern, size_t psize,
                                         size_t size, ze_event_handle_t hSignal, std::uint32_t nWait,
                                         ze_event_handle_t* phWait) {
  return guard("zeCommandListAppendMemoryFill", ENTRY() {
    REQ_HANDLE(h);
    REQ_PTR(ptr);
    REQ_PTR(pattern);
    if (!phWait && nWait > 0) return ZE_RESULT_ERROR_INVALID_SIZE;
    if (psize == 0 || (psize & (psize - 1)) || psize > kMaxFillPattern) return ZE_RESULT_ERROR_INVALID_SIZE;
    if (size % psize) return ZE_RESULT_ERROR_INVALID_SIZE;
    check_span(ptr, size, "zeCommandListAppendMemoryFill");
    CommandList* l = list_of(h);
    Device* d = &l->dev;
    std::vector<std::byte> pat(static_cast<const std::byte*>(pattern), static_cast<const std::byte*>(pattern) + psize);
    std::vector<CopySeg> segs{{reinterpret_cast<std::uint64_t>(ptr), 0, size}};
    Command c;
    if (size) c.body = [d, segs, pat] { run_copy(*d, segs, pat); };
    return append(l, std::move(c), hSignal, nWait, phWait);
  });
}

ze_result_t ZE_APICALL xAppendMemoryCopyRegion(ze_command_list_handle_t h, void* dst, const ze_copy_region_t* dr,
                                               std::uint32_t dpitch, std::uint32_t dslice, const void* src,
                                               const ze_copy_region_t* sr, std::uint32_t spitch, std::uint32_t sslice,
                                               ze_event_handle_t hSignal, std::uint32_t nWait, ze_event_handle_t* phWait) {
  return guard("zeCommandListAppendMemoryCopyRegion", ENTRY() {
    REQ_HANDLE(h);
    REQ_PTR(dst);
    REQ_PTR(dr);
    REQ_PTR(src);
    REQ_PTR(sr);
    if (!phWait && nWait > 0) return ZE_RESULT_ERROR_INVALID_SIZE;
    if (dr->width != sr->width || dr->height != sr->height || dr->depth != sr->depth) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    if (!dr->width || !dr->height || !dr->depth) return ZE_RESULT_ERROR_INVALID_SIZE;
    auto geometry_ok = [](const ze_copy_region_t* r, std::uint64_t pitch, std::uint64_t slice) {
      if (std::uint64_t(r->originX) + r->width > pitch) return false;
      if ((r->depth > 1 || r->originZ > 0) && std::uint64_t(r->originY + r->height) * pitch > slice) return false;
      return true;
    };
    if (!geometry_ok(dr, dpitch, dslice) || !geometry_ok(sr, spitch, sslice)) return ZE_RESULT_ERROR_INVALID_SIZE;
    auto offset = [](const ze_copy_region_t* r, std::uint64_t pitch, std::uint64_t slice, std::uint64_t y, std::uint64_t z) {
      return (r->originZ + z) * slice + (r->originY + y) * pitch + r->originX;
    };
    const std::uint64_t d0 = reinterpret_cast<std::uint64_t>(dst), s0 = reinterpret_cast<std::uint64_t>(src);
    const std::uint64_t dlast = offset(dr, dpitch, dslice, dr->height - 1, dr->depth - 1) + dr->width;
    const std::uint64_t slast = offset(sr, spitch, sslice, sr->height - 1, sr->depth - 1) + sr->width;
    const std::uint64_t dfirst = offset(dr, dpitch, dslice, 0, 0), sfirst = offset(sr, spitch, sslice, 0, 0);
    // Overlap: boxes of the same buffer layout, or byte spans otherwise.
    if (d0 == s0 && dpitch == spitch && dslice == sslice) {
      auto ov = [](std::uint64_t a, std::uint64_t b, std::uint64_t n) { return a < b + n && b < a + n; };
      if (ov(dr->originX, sr->originX, dr->width) && ov(dr->originY, sr->originY, dr->height) &&
          ov(dr->originZ, sr->originZ, dr->depth)) {
        return ZE_RESULT_ERROR_OVERLAPPING_REGIONS;
      }
    } else if (d0 + dfirst < s0 + slast && s0 + sfirst < d0 + dlast) {
      return ZE_RESULT_ERROR_OVERLAPPING_REGIONS;
    }
    check_span(reinterpret_cast<void*>(d0 + dfirst), dlast - dfirst, "zeCommandListAppendMemoryCopyRegion (dst)");
    check_span(reinterpret_cast<void*>(s0 + sfirst), slast - sfirst, "zeCommandListAppendMemoryCopyRegion (src)");
    std::vector<CopySeg> segs;
    for (std::uint64_t z = 0; z < dr->depth; ++z) {
      for (std::uint64_t y = 0; y < dr->height; ++y) {
        segs.push_back({d0 + offset(dr, dpitch, dslice, y, z), s0 + offset(sr, spitch, sslice, y, z), dr->width});
      }
    }
    CommandList* l = list_of(h);
    Device* d = &l->dev;
    Command c;
    c.body = [d, segs] { run_copy(*d, segs, {}); };
    return append(l, std::move(c), hSignal, nWait, phWait);
  });
}

ze_result_t ZE_APICALL xAppendWriteGlobalTimestamp(ze_command_list_handle_t h, std::uint64_t* dst, ze_event_handle_t hSignal,
                                                   std::uint32_t nWait, ze_event_handle_t* phWait) {
  return guard("zeCommandListAppendWriteGlobalTimestamp", ENTRY() {
    REQ_HANDLE(h);
    REQ_PTR(dst);
    if (!phWait && nWait > 0) return ZE_RESULT_ERROR_INVALID_SIZE;
    check_span(dst, 8, "zeCommandListAppendWriteGlobalTimestamp");
    CommandList* l = list_of(h);
    Device* d = &l->dev;
    Command c;
    c.body = [d, dst] {
      const std::uint64_t ts = d->clock_ns();
      run_copy(*d, {{reinterpret_cast<std::uint64_t>(dst), reinterpret_cast<std::uint64_t>(&ts), 8}}, {});
    };
    return append(l, std::move(c), hSignal, nWait, phWait);
  });
}

ze_result_t ZE_APICALL xAppendMemoryPrefetch(ze_command_list_handle_t h, const void* ptr, size_t size) {
  return guard("zeCommandListAppendMemoryPrefetch", ENTRY() {
    REQ_HANDLE(h);
    REQ_PTR(ptr);
    require_range(ptr, size, "zeCommandListAppendMemoryPrefetch");
    Command c;
    c.body = [ptr, size] { prefetch_to_device(ptr, size); };
    list_of(h)->add(std::move(c));
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL xAppendMemAdvise(ze_command_list_handle_t h, ze_device_handle_t hDevice, const void* ptr, size_t size,
                                        ze_memory_advice_t advice) {
  return guard("zeCommandListAppendMemAdvise", ENTRY() {
    REQ_HANDLE(h);
    REQ_HANDLE(hDevice);
    REQ_PTR(ptr);
    if (static_cast<std::uint32_t>(advice) > ZE_MEMORY_ADVICE_BIAS_UNCACHED) return ZE_RESULT_ERROR_INVALID_ENUMERATION;
    if (size == 0) return ZE_RESULT_ERROR_INVALID_SIZE;
    require_range(ptr, size, "zeCommandListAppendMemAdvise");
    Device* d = dev_of(hDevice);
    Command c;
    c.body = [d, ptr, size, advice] { apply_advice(*d, ptr, size, advice); };
    list_of(h)->add(std::move(c));
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL xAppendSignalEvent(ze_command_list_handle_t h, ze_event_handle_t hEvent) {
  return guard("zeCommandListAppendSignalEvent", ENTRY() {
    REQ_HANDLE(h);
    REQ_HANDLE(hEvent);
    return append(list_of(h), Command{}, hEvent, 0, nullptr);
  });
}

ze_result_t ZE_APICALL xAppendWaitOnEvents(ze_command_list_handle_t h, std::uint32_t n, ze_event_handle_t* phEvents) {
  return guard("zeCommandListAppendWaitOnEvents", ENTRY() {
    REQ_HANDLE(h);
    REQ_PTR(phEvents);
    return append(list_of(h), Command{}, nullptr, n, phEvents);
  });
}

ze_result_t ZE_APICALL xAppendEventReset(ze_command_list_handle_t h, ze_event_handle_t hEvent) {
  return guard("zeCommandListAppendEventReset", ENTRY() {
    REQ_HANDLE(h);
    REQ_HANDLE(hEvent);
    Command c;
    c.reset = ev_of(hEvent);
    list_of(h)->add(std::move(c));
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL xAppendLaunchKernel(ze_command_list_handle_t h, ze_kernel_handle_t hKernel,
                                           const ze_group_count_t* args, ze_event_handle_t hSignal, std::uint32_t nWait,
                                           ze_event_handle_t* phWait) {
  return guard("zeCommandListAppendLaunchKernel", ENTRY() {
    REQ_HANDLE(h);
    REQ_HANDLE(hKernel);
    REQ_PTR(args);
    if (!phWait && nWait > 0) return ZE_RESULT_ERROR_INVALID_SIZE;
    CommandList* l = list_of(h);
    Command c;
    c.body = launch_body(*static_cast<Kernel*>(hKernel), l->dev, *args);
    return append(l, std::move(c), hSignal, nWait, phWait);
  });
}

// ============================================================================
// Event pools and events

ze_result_t ZE_APICALL xEventPoolCreate(ze_context_handle_t hContext, const ze_event_pool_desc_t* desc, std::uint32_t n,
                                        ze_device_handle_t* phDevices, ze_event_pool_handle_t* ph) {
  return guard("zeEventPoolCreate", ENTRY() {
    REQ_HANDLE(hContext);
    REQ_PTR(desc);
    REQ_PTR(ph);
    if (desc->flags > 0x7) return ZE_RESULT_ERROR_INVALID_ENUMERATION;
    if (desc->count == 0 || (!phDevices && n > 0)) return ZE_RESULT_ERROR_INVALID_SIZE;
    *ph = new EventPool(*ctx_of(hContext), desc->flags, desc->count);
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL xEventPoolDestroy(ze_event_pool_handle_t h) {
  REQ_HANDLE(h);
  auto* p = static_cast<EventPool*>(h);
  if (p->live.load()) return ZE_RESULT_ERROR_HANDLE_OBJECT_IN_USE;
  delete p;
  return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL xEventCreate(ze_event_pool_handle_t hPool, const ze_event_desc_t* desc, ze_event_handle_t* ph) {
  return guard("zeEventCreate", ENTRY() {
    REQ_HANDLE(hPool);
    REQ_PTR(desc);
    REQ_PTR(ph);
    if (desc->signal > 0x7 || desc->wait > 0x7) return ZE_RESULT_ERROR_INVALID_ENUMERATION;
    auto* p = static_cast<EventPool*>(hPool);
    if (desc->index >= p->count) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    *ph = new Event(*p, desc->index);
    ++p->live;
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL xEventDestroy(ze_event_handle_t h) {
  REQ_HANDLE(h);
  Event* e = ev_of(h);
  --e->pool.live;
  delete e;
  return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL xEventHostSignal(ze_event_handle_t h) {
  return guard("zeEventHostSignal", ENTRY() {
    REQ_HANDLE(h);
    ev_of(h)->signal(Driver::get().devices().front()->clock_ns());
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL xEventHostSynchronize(ze_event_handle_t h, std::uint64_t timeout) {
  return guard("zeEventHostSynchronize", ENTRY() {
    REQ_HANDLE(h);
    return ev_of(h)->wait(timeout) ? ZE_RESULT_SUCCESS : ZE_RESULT_NOT_READY;
  });
}

ze_result_t ZE_APICALL xEventQueryStatus(ze_event_handle_t h) {
  REQ_HANDLE(h);
  return ev_of(h)->signaled() ? ZE_RESULT_SUCCESS : ZE_RESULT_NOT_READY;
}

ze_result_t ZE_APICALL xEventHostReset(ze_event_handle_t h) {
  return guard("zeEventHostReset", ENTRY() {
    REQ_HANDLE(h);
    ev_of(h)->reset();
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL xEventQueryKernelTimestamp(ze_event_handle_t h, ze_kernel_timestamp_result_t* dst) {
  REQ_HANDLE(h);
  REQ_PTR(dst);
  Event* e = ev_of(h);
  if (!(e->pool.flags & ZE_EVENT_POOL_FLAG_KERNEL_TIMESTAMP)) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
  if (!e->signaled()) return ZE_RESULT_NOT_READY;
  *dst = e->timestamps();
  return ZE_RESULT_SUCCESS;
}

// ============================================================================
// Fences

ze_result_t ZE_APICALL xFenceCreate(ze_command_queue_handle_t hQueue, const ze_fence_desc_t* desc, ze_fence_handle_t* ph) {
  return guard("zeFenceCreate", ENTRY() {
    REQ_HANDLE(hQueue);
    REQ_PTR(desc);
    REQ_PTR(ph);
    if (desc->flags > 0x1) return ZE_RESULT_ERROR_INVALID_ENUMERATION;
    auto* f = new Fence(*static_cast<CommandQueue*>(hQueue));
    f->signaled = (desc->flags & ZE_FENCE_FLAG_SIGNALED) != 0;
    *ph = f;
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL xFenceDestroy(ze_fence_handle_t h) {
  REQ_HANDLE(h);
  delete static_cast<Fence*>(h);
  return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL xFenceHostSynchronize(ze_fence_handle_t h, std::uint64_t timeout) {
  return guard("zeFenceHostSynchronize", ENTRY() {
    REQ_HANDLE(h);
    auto* f = static_cast<Fence*>(h);
    if (f->signaled) return ZE_RESULT_SUCCESS;
    if (timeout == 0) return ZE_RESULT_NOT_READY;
    Driver& d = Driver::get();
    std::unique_lock lk(d.ev_mu);
    auto pred = [&] { return f->signaled.load(); };
    if (timeout == UINT64_MAX) d.ev_cv.wait(lk, pred);
    else if (!d.ev_cv.wait_for(lk, std::chrono::nanoseconds(timeout), pred)) return ZE_RESULT_NOT_READY;
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL xFenceQueryStatus(ze_fence_handle_t h) {
  REQ_HANDLE(h);
  return static_cast<Fence*>(h)->signaled ? ZE_RESULT_SUCCESS : ZE_RESULT_NOT_READY;
}

ze_result_t ZE_APICALL xFenceReset(ze_fence_handle_t h) {
  REQ_HANDLE(h);
  static_cast<Fence*>(h)->signaled = false;
  return ZE_RESULT_SUCCESS;
}

// ============================================================================
// Modules, build logs, kernels

ze_result_t ZE_APICALL xModuleCreate(ze_context_handle_t hContext, ze_device_handle_t hDevice, const ze_module_desc_t* desc,
                                     ze_module_handle_t* ph, ze_module_build_log_handle_t* phLog) {
  return guard("zeModuleCreate", ENTRY() {
    REQ_HANDLE(hContext);
    REQ_HANDLE(hDevice);
    REQ_PTR(desc);
    REQ_PTR(desc->pInputModule);
    REQ_PTR(ph);
    if (desc->format > ZE_MODULE_FORMAT_NATIVE) return ZE_RESULT_ERROR_INVALID_ENUMERATION;
    if (desc->inputSize == 0) return ZE_RESULT_ERROR_INVALID_SIZE;
    if (phLog) *phLog = nullptr;
    try {
      auto m = create_module(*ctx_of(hContext), *dev_of(hDevice), *desc);
      if (phLog) *phLog = new BuildLog("");
      *ph = m.release();
      return ZE_RESULT_SUCCESS;
    } catch (const ZeError& e) {
      if (phLog) *phLog = new BuildLog(e.what);
      throw;
    }
  });
}

ze_result_t ZE_APICALL xModuleDestroy(ze_module_handle_t h) {
  REQ_HANDLE(h);
  auto* m = static_cast<Module*>(h);
  if (m->kernels.load()) return ZE_RESULT_ERROR_HANDLE_OBJECT_IN_USE;
  delete m;
  return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL xModuleDynamicLink(std::uint32_t, ze_module_handle_t* phModules, ze_module_build_log_handle_t* phLog) {
  REQ_PTR(phModules);
  if (phLog) *phLog = new BuildLog("");
  return ZE_RESULT_SUCCESS;  // native modules have no imports
}

ze_result_t ZE_APICALL xModuleGetNativeBinary(ze_module_handle_t h, size_t* pSize, std::uint8_t* pBin) {
  REQ_HANDLE(h);
  REQ_PTR(pSize);
  auto& b = static_cast<Module*>(h)->binary;
  if (pBin) std::memcpy(pBin, b.data(), std::min(*pSize, b.size()));
  else *pSize = b.size();
  return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL xModuleGetGlobalPointer(ze_module_handle_t h, const char* name, size_t*, void**) {
  REQ_HANDLE(h);
  REQ_PTR(name);
  return ZE_RESULT_ERROR_INVALID_GLOBAL_NAME;  // kernel libraries have no device globals
}

ze_result_t ZE_APICALL xModuleGetKernelNames(ze_module_handle_t h, std::uint32_t* pCount, const char** pNames) {
  REQ_HANDLE(h);
  REQ_PTR(pCount);
  const auto* d = static_cast<Module*>(h)->lib->desc;
  return count_fill(pCount, pNames, d->num_kernels, [&](const char*& s, std::uint32_t i) { s = d->kernels[i].name; });
}

ze_result_t ZE_APICALL xModuleGetProperties(ze_module_handle_t h, ze_module_properties_t* p) {
  REQ_HANDLE(h);
  REQ_PTR(p);
  put(p, ze_module_properties_t{});
  return ZE_RESULT_SUCCESS;
}

const xesvm_ze_kernel_desc* find_kernel(Module* m, const char* name) {
  const auto* d = m->lib->desc;
  for (std::uint32_t i = 0; i < d->num_kernels; ++i) {
    if (std::strcmp(d->kernels[i].name, name) == 0) return &d->kernels[i];
  }
  return nullptr;
}

ze_result_t ZE_APICALL xModuleGetFunctionPointer(ze_module_handle_t h, const char* name, void** pfn) {
  REQ_HANDLE(h);
  REQ_PTR(name);
  REQ_PTR(pfn);
  const auto* k = find_kernel(static_cast<Module*>(h), name);
  if (!k) return ZE_RESULT_ERROR_INVALID_FUNCTION_NAME;
  *pfn = reinterpret_cast<void*>(k->fn);
  return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL xBuildLogDestroy(ze_module_build_log_handle_t h) {
  REQ_HANDLE(h);
  delete static_cast<BuildLog*>(h);
  return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL xBuildLogGetString(ze_module_build_log_handle_t h, size_t* pSize, char* out) {
  REQ_HANDLE(h);
  REQ_PTR(pSize);
  const std::string& s = static_cast<BuildLog*>(h)->text;
  if (!out) {
    *pSize = s.size() + 1;
    return ZE_RESULT_SUCCESS;
  }
  if (*pSize == 0) return ZE_RESULT_ERROR_INVALID_SIZE;
  const std::size_t n = std::min(*pSize - 1, s.size());
  std::memcpy(out, s.data(), n);
  out[n] = '\0';
  return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL xKernelCreate(ze_module_handle_t h, const ze_kernel_desc_t* desc, ze_kernel_handle_t* ph) {
  return guard("zeKernelCreate", ENTRY() {
    REQ_HANDLE(h);
    REQ_PTR(desc);
    REQ_PTR(desc->pKernelName);
    REQ_PTR(ph);
    if (desc->flags > 0x3) return ZE_RESULT_ERROR_INVALID_ENUMERATION;
    auto* m = static_cast<Module*>(h);
    const auto* k = find_kernel(m, desc->pKernelName);
    if (!k) return ZE_RESULT_ERROR_INVALID_KERNEL_NAME;
    *ph = new Kernel(*m, *k);
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL xKernelDestroy(ze_kernel_handle_t h) {
  REQ_HANDLE(h);
  delete static_cast<Kernel*>(h);
  return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL xKernelSetCacheConfig(ze_kernel_handle_t h, ze_cache_config_flags_t flags) {
  REQ_HANDLE(h);
  if (flags > 0x3) return ZE_RESULT_ERROR_INVALID_ENUMERATION;
  return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL xKernelSetGroupSize(ze_kernel_handle_t h, std::uint32_t x, std::uint32_t y, std::uint32_t z) {
  REQ_HANDLE(h);
  auto* k = static_cast<Kernel*>(h);
  if (!x || !y || !z || std::uint64_t(x) * y * z > kMaxGroupSize) return ZE_RESULT_ERROR_INVALID_GROUP_SIZE_DIMENSION;
  const auto& r = k->desc.required_group_size;
  if (r[0] && (x != r[0] || y != std::max(r[1], 1u) || z != std::max(r[2], 1u))) return ZE_RESULT_ERROR_INVALID_GROUP_SIZE_DIMENSION;
  k->group[0] = x;
  k->group[1] = y;
  k->group[2] = z;
  return ZE_RESULT_SUCCESS;
}

// Largest divisor of g that is at most limit.
std::uint32_t divisor(std::uint32_t g, std::uint32_t limit) {
  for (std::uint32_t d = std::min(g, limit); d > 1; --d) {
    if (g % d == 0) return d;
  }
  return 1;
}

ze_result_t ZE_APICALL xKernelSuggestGroupSize(ze_kernel_handle_t h, std::uint32_t gx, std::uint32_t gy, std::uint32_t gz,
                                               std::uint32_t* px, std::uint32_t* py, std::uint32_t* pz) {
  REQ_HANDLE(h);
  REQ_PTR(px);
  REQ_PTR(py);
  REQ_PTR(pz);
  if (!gx || !gy || !gz) return ZE_RESULT_ERROR_INVALID_GLOBAL_WIDTH_DIMENSION;
  const auto& r = static_cast<Kernel*>(h)->desc.required_group_size;
  if (r[0]) {
    *px = r[0];
    *py = std::max(r[1], 1u);
    *pz = std::max(r[2], 1u);
    return ZE_RESULT_SUCCESS;
  }
  *px = divisor(gx, 256);
  *py = divisor(gy, 256 / *px);
  *pz = divisor(gz, 256 / (*px * *py));
  return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL xKernelSetArgumentValue(ze_kernel_handle_t h, std::uint32_t idx, size_t size, const void* value) {
  REQ_HANDLE(h);
  auto* k = static_cast<Kernel*>(h);
  if (idx >= k->desc.num_args) return ZE_RESULT_ERROR_INVALID_KERNEL_ARGUMENT_INDEX;
  if (size != k->desc.arg_sizes[idx]) return ZE_RESULT_ERROR_INVALID_KERNEL_ARGUMENT_SIZE;
  if (value) std::memcpy(k->args[idx].data(), value, size);
  else std::fill(k->args[idx].begin(), k->args[idx].end(), std::byte{0});
  k->set[idx] = true;
  return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL xKernelSetIndirectAccess(ze_kernel_handle_t h, ze_kernel_indirect_access_flags_t flags) {
  REQ_HANDLE(h);
  if (flags > 0x7) return ZE_RESULT_ERROR_INVALID_ENUMERATION;
  static_cast<Kernel*>(h)->indirect = flags;  // every allocation is always reachable
  return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL xKernelGetIndirectAccess(ze_kernel_handle_t h, ze_kernel_indirect_access_flags_t* flags) {
  REQ_HANDLE(h);
  REQ_PTR(flags);
  *flags = static_cast<Kernel*>(h)->indirect;
  return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL xKernelGetSourceAttributes(ze_kernel_handle_t h, std::uint32_t* pSize, char** pString) {
  REQ_HANDLE(h);
  REQ_PTR(pSize);
  REQ_PTR(pString);
  static char empty[1] = {0};
  *pSize = 1;
  *pString = empty;
  return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL xKernelGetProperties(ze_kernel_handle_t h, ze_kernel_properties_t* p) {
  REQ_HANDLE(h);
  REQ_PTR(p);
  auto* k = static_cast<Kernel*>(h);
  ze_kernel_properties_t v{};
  v.numKernelArgs = k->desc.num_args;
  v.requiredGroupSizeX = k->desc.required_group_size[0];
  v.requiredGroupSizeY = k->desc.required_group_size[1];
  v.requiredGroupSizeZ = k->desc.required_group_size[2];
  v.maxSubgroupSize = 1;
  v.maxNumSubgroups = kMaxGroupSize;
  put(p, v);
  return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL xKernelGetName(ze_kernel_handle_t h, size_t* pSize, char* pName) {
  REQ_HANDLE(h);
  REQ_PTR(pSize);
  const std::string s = static_cast<Kernel*>(h)->desc.name;
  if (!pName) {
    *pSize = s.size() + 1;
    return ZE_RESULT_SUCCESS;
  }
  if (*pSize == 0) return ZE_RESULT_ERROR_INVALID_SIZE;
  const std::size_t n = std::min(*pSize - 1, s.size());
  std::memcpy(pName, s.data(), n);
  pName[n] = '\0';
  return ZE_RESULT_SUCCESS;
}

// ============================================================================
// Table getters

template <class T>
ze_result_t start_table(ze_api_version_t version, T* t) {
  if (!t) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
  if (ZE_MAJOR_VERSION(version) != ZE_MAJOR_VERSION(ZE_API_VERSION_CURRENT)) return ZE_RESULT_ERROR_UNSUPPORTED_VERSION;
  std::memset(static_cast<void*>(t), 0, sizeof *t);
  return ZE_RESULT_SUCCESS;
}

}  // namespace

#define EMPTY_TABLE(getter, type)                                      \
  extern "C" ZE_DLLEXPORT ze_result_t ZE_APICALL getter(ze_api_version_t v, type* t) { \
    return start_table(v, t);                                          \
  }

extern "C" {

ZE_DLLEXPORT ze_result_t ZE_APICALL zeGetGlobalProcAddrTable(ze_api_version_t v, ze_global_dditable_t* t) {
  if (ze_result_t r = start_table(v, t)) return r;
  t->pfnInit = xInit;
  return ZE_RESULT_SUCCESS;
}

ZE_DLLEXPORT ze_result_t ZE_APICALL zeGetDriverProcAddrTable(ze_api_version_t v, ze_driver_dditable_t* t) {
  if (ze_result_t r = start_table(v, t)) return r;
  t->pfnGet = xDriverGet;
  t->pfnGetApiVersion = xDriverGetApiVersion;
  t->pfnGetProperties = xDriverGetProperties;
  t->pfnGetIpcProperties = xDriverGetIpcProperties;
  t->pfnGetExtensionProperties = xDriverGetExtensionProperties;
  t->pfnGetExtensionFunctionAddress = xDriverGetExtensionFunctionAddress;
  return ZE_RESULT_SUCCESS;
}

ZE_DLLEXPORT ze_result_t ZE_APICALL zeGetDeviceProcAddrTable(ze_api_version_t v, ze_device_dditable_t* t) {
  if (ze_result_t r = start_table(v, t)) return r;
  t->pfnGet = xDeviceGet;
  t->pfnGetSubDevices = xDeviceGetSubDevices;
  t->pfnGetProperties = xDeviceGetProperties;
  t->pfnGetComputeProperties = xDeviceGetComputeProperties;
  t->pfnGetModuleProperties = xDeviceGetModuleProperties;
  t->pfnGetCommandQueueGroupProperties = xDeviceGetCommandQueueGroupProperties;
  t->pfnGetMemoryProperties = xDeviceGetMemoryProperties;
  t->pfnGetMemoryAccessProperties = xDeviceGetMemoryAccessProperties;
  t->pfnGetCacheProperties = xDeviceGetCacheProperties;
  t->pfnGetImageProperties = xDeviceGetImageProperties;
  t->pfnGetExternalMemoryProperties = xDeviceGetExternalMemoryProperties;
  t->pfnGetP2PProperties = xDeviceGetP2PProperties;
  t->pfnCanAccessPeer = xDeviceCanAccessPeer;
  t->pfnGetStatus = xDeviceGetStatus;
  t->pfnGetGlobalTimestamps = xDeviceGetGlobalTimestamps;
  return ZE_RESULT_SUCCESS;
}

ZE_DLLEXPORT ze_result_t ZE_APICALL zeGetContextProcAddrTable(ze_api_version_t v, ze_context_dditable_t* t) {
  if (ze_result_t r = start_table(v, t)) return r;
  t->pfnCreate = xContextCreate;
  t->pfnDestroy = xContextDestroy;
  t->pfnGetStatus = xContextGetStatus;
  t->pfnSystemBarrier = xContextSystemBarrier;
  t->pfnMakeMemoryResident = xContextMakeMemoryResident;
  t->pfnEvictMemory = xContextEvictMemory;
  t->pfnCreateEx = xContextCreateEx;
  return ZE_RESULT_SUCCESS;
}

ZE_DLLEXPORT ze_result_t ZE_APICALL zeGetCommandQueueProcAddrTable(ze_api_version_t v, ze_command_queue_dditable_t* t) {
  if (ze_result_t r = start_table(v, t)) return r;
  t->pfnCreate = xCommandQueueCreate;
  t->pfnDestroy = xCommandQueueDestroy;
  t->pfnExecuteCommandLists = xCommandQueueExecuteCommandLists;
  t->pfnSynchronize = xCommandQueueSynchronize;
  return ZE_RESULT_SUCCESS;
}

ZE_DLLEXPORT ze_result_t ZE_APICALL zeGetCommandListProcAddrTable(ze_api_version_t v, ze_command_list_dditable_t* t) {
  if (ze_result_t r = start_table(v, t)) return r;
  t->pfnCreate = xCommandListCreate;
  t->pfnCreateImmediate = xCommandListCreateImmediate;
  t->pfnDestroy = xCommandListDestroy;
  t->pfnClose = xCommandListClose;
  t->pfnReset = xCommandListReset;
  t->pfnAppendWriteGlobalTimestamp = xAppendWriteGlobalTimestamp;
  t->pfnAppendBarrier = xAppendBarrier;
  t->pfnAppendMemoryRangesBarrier = xAppendMemoryRangesBarrier;
  t->pfnAppendMemoryCopy = xAppendMemoryCopy;
  t->pfnAppendMemoryFill = xAppendMemoryFill;
  t->pfnAppendMemoryCopyRegion = xAppendMemoryCopyRegion;
  t->pfnAppendMemoryPrefetch = xAppendMemoryPrefetch;
  t->pfnAppendMemAdvise = xAppendMemAdvise;
  t->pfnAppendSignalEvent = xAppendSignalEvent;
  t->pfnAppendWaitOnEvents = xAppendWaitOnEvents;
  t->pfnAppendEventReset = xAppendEventReset;
  t->pfnAppendLaunchKernel = xAppendLaunchKernel;
  return ZE_RESULT_SUCCESS;
}

ZE_DLLEXPORT ze_result_t ZE_APICALL zeGetFenceProcAddrTable(ze_api_version_t v, ze_fence_dditable_t* t) {
  if (ze_result_t r = start_table(v, t)) return r;
  t->pfnCreate = xFenceCreate;
  t->pfnDestroy = xFenceDestroy;
  t->pfnHostSynchronize = xFenceHostSynchronize;
  t->pfnQueryStatus = xFenceQueryStatus;
  t->pfnReset = xFenceReset;
  return ZE_RESULT_SUCCESS;
}

ZE_DLLEXPORT ze_result_t ZE_APICALL zeGetEventPoolProcAddrTable(ze_api_version_t v, ze_event_pool_dditable_t* t) {
  if (ze_result_t r = start_table(v, t)) return r;
  t->pfnCreate = xEventPoolCreate;
  t->pfnDestroy = xEventPoolDestroy;
  return ZE_RESULT_SUCCESS;
}

ZE_DLLEXPORT ze_result_t ZE_APICALL zeGetEventProcAddrTable(ze_api_version_t v, ze_event_dditable_t* t) {
  if (ze_result_t r = start_table(v, t)) return r;
  t->pfnCreate = xEventCreate;
  t->pfnDestroy = xEventDestroy;
  t->pfnHostSignal = xEventHostSignal;
  t->pfnHostSynchronize = xEventHostSynchronize;
  t->pfnQueryStatus = xEventQueryStatus;
  t->pfnHostReset = xEventHostReset;
  t->pfnQueryKernelTimestamp = xEventQueryKernelTimestamp;
  return ZE_RESULT_SUCCESS;
}

ZE_DLLEXPORT ze_result_t ZE_APICALL zeGetMemProcAddrTable(ze_api_version_t v, ze_mem_dditable_t* t) {
  if (ze_result_t r = start_table(v, t)) return r;
  t->pfnAllocShared = xMemAllocShared;
  t->pfnAllocDevice = xMemAllocDevice;
  t->pfnAllocHost = xMemAllocHost;
  t->pfnFree = xMemFree;
  t->pfnGetAllocProperties = xMemGetAllocProperties;
  t->pfnGetAddressRange = xMemGetAddressRange;
  t->pfnFreeExt = xMemFreeExt;
  return ZE_RESULT_SUCCESS;
}

ZE_DLLEXPORT ze_result_t ZE_APICALL zeGetModuleProcAddrTable(ze_api_version_t v, ze_module_dditable_t* t) {
  if (ze_result_t r = start_table(v, t)) return r;
  t->pfnCreate = xModuleCreate;
  t->pfnDestroy = xModuleDestroy;
  t->pfnDynamicLink = xModuleDynamicLink;
  t->pfnGetNativeBinary = xModuleGetNativeBinary;
  t->pfnGetGlobalPointer = xModuleGetGlobalPointer;
  t->pfnGetKernelNames = xModuleGetKernelNames;
  t->pfnGetProperties = xModuleGetProperties;
  t->pfnGetFunctionPointer = xModuleGetFunctionPointer;
  return ZE_RESULT_SUCCESS;
}

ZE_DLLEXPORT ze_result_t ZE_APICALL zeGetModuleBuildLogProcAddrTable(ze_api_version_t v, ze_module_build_log_dditable_t* t) {
  if (ze_result_t r = start_table(v, t)) return r;
  t->pfnDestroy = xBuildLogDestroy;
  t->pfnGetString = xBuildLogGetString;
  return ZE_RESULT_SUCCESS;
}

ZE_DLLEXPORT ze_result_t ZE_APICALL zeGetKernelProcAddrTable(ze_api_version_t v, ze_kernel_dditable_t* t) {
  if (ze_result_t r = start_table(v, t)) return r;
  t->pfnCreate = xKernelCreate;
  t->pfnDestroy = xKernelDestroy;
  t->pfnSetCacheConfig = xKernelSetCacheConfig;
  t->pfnSetGroupSize = xKernelSetGroupSize;
  t->pfnSuggestGroupSize = xKernelSuggestGroupSize;
  t->pfnSetArgumentValue = xKernelSetArgumentValue;
  t->pfnSetIndirectAccess = xKernelSetIndirectAccess;
  t->pfnGetIndirectAccess = xKernelGetIndirectAccess;
  t->pfnGetSourceAttributes = xKernelGetSourceAttributes;
  t->pfnGetProperties = xKernelGetProperties;
  t->pfnGetName = xKernelGetName;
  return ZE_RESULT_SUCCESS;
}

}  // extern "C"

// Tables of features the sim device does not have: every entry NULL, which
// the loader reports as ZE_RESULT_ERROR_UNSUPPORTED_FEATURE.
EMPTY_TABLE(zeGetImageProcAddrTable, ze_image_dditable_t)
EMPTY_TABLE(zeGetPhysicalMemProcAddrTable, ze_physical_mem_dditable_t)
EMPTY_TABLE(zeGetSamplerProcAddrTable, ze_sampler_dditable_t)
EMPTY_TABLE(zeGetVirtualMemProcAddrTable, ze_virtual_mem_dditable_t)
EMPTY_TABLE(zetGetDeviceProcAddrTable, zet_device_dditable_t)
EMPTY_TABLE(zetGetContextProcAddrTable, zet_context_dditable_t)
EMPTY_TABLE(zetGetCommandListProcAddrTable, zet_command_list_dditable_t)
EMPTY_TABLE(zetGetKernelProcAddrTable, zet_kernel_dditable_t)
EMPTY_TABLE(zetGetModuleProcAddrTable, zet_module_dditable_t)
EMPTY_TABLE(zetGetDebugProcAddrTable, zet_debug_dditable_t)
EMPTY_TABLE(zetGetMetricProcAddrTable, zet_metric_dditable_t)
EMPTY_TABLE(zetGetMetricGroupProcAddrTable, zet_metric_group_dditable_t)
EMPTY_TABLE(zetGetMetricQueryProcAddrTable, zet_metric_query_dditable_t)
EMPTY_TABLE(zetGetMetricQueryPoolProcAddrTable, zet_metric_query_pool_dditable_t)
EMPTY_TABLE(zetGetMetricStreamerProcAddrTable, zet_metric_streamer_dditable_t)
EMPTY_TABLE(zetGetTracerExpProcAddrTable, zet_tracer_exp_dditable_t)
EMPTY_TABLE(zesGetDeviceProcAddrTable, zes_device_dditable_t)
EMPTY_TABLE(zesGetDriverProcAddrTable, zes_driver_dditable_t)
EMPTY_TABLE(zesGetDiagnosticsProcAddrTable, zes_diagnostics_dditable_t)
EMPTY_TABLE(zesGetEngineProcAddrTable, zes_engine_dditable_t)
EMPTY_TABLE(zesGetFabricPortProcAddrTable, zes_fabric_port_dditable_t)
EMPTY_TABLE(zesGetFanProcAddrTable, zes_fan_dditable_t)
EMPTY_TABLE(zesGetFirmwareProcAddrTable, zes_firmware_dditable_t)
EMPTY_TABLE(zesGetFrequencyProcAddrTable, zes_frequency_dditable_t)
EMPTY_TABLE(zesGetLedProcAddrTable, zes_led_dditable_t)
EMPTY_TABLE(zesGetMemoryProcAddrTable, zes_memory_dditable_t)
EMPTY_TABLE(zesGetPerformanceFactorProcAddrTable, zes_performance_factor_dditable_t)
EMPTY_TABLE(zesGetPowerProcAddrTable, zes_power_dditable_t)
EMPTY_TABLE(zesGetPsuProcAddrTable, zes_psu_dditable_t)
EMPTY_TABLE(zesGetRasProcAddrTable, zes_ras_dditable_t)
EMPTY_TABLE(zesGetSchedulerProcAddrTable, zes_scheduler_dditable_t)
EMPTY_TABLE(zesGetStandbyProcAddrTable, zes_standby_dditable_t)
EMPTY_TABLE(zesGetTemperatureProcAddrTable, zes_temperature_dditable_t)
