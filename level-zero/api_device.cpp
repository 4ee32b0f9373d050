// Entry points: zeInit, drivers and devices (see api.hpp for the contract).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "level-zero/api.hpp"
#include "level-zero/work_group.hpp"

namespace xesvm::ze::api {

namespace {

std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

// --- driver ------------------------------------------------------------------

ze_result_t ZE_APICALL Init(ze_init_flags_t flags) {
  return guard("zeInit", [&]() -> ze_result_t {
    check_enum(flags, ZE_INIT_FLAG_GPU_ONLY | ZE_INIT_FLAG_VPU_ONLY, "flags");
    if (flags == ZE_INIT_FLAG_VPU_ONLY) return ZE_RESULT_ERROR_UNINITIALIZED;  // no VPU here
    Driver::get();
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL DriverGet(std::uint32_t* pCount, ze_driver_handle_t* phDrivers) {
  return guard("zeDriverGet", [&]() -> ze_result_t {
    need(pCount, "pCount");
    Driver& d = Driver::get();
    return count_fill(pCount, phDrivers, 1, [&](ze_driver_handle_t& h, std::uint32_t) { h = &d; });
  });
}

ze_result_t ZE_APICALL DriverGetApiVersion(ze_driver_handle_t hDriver, ze_api_version_t* version) {
  return guard("zeDriverGetApiVersion", [&]() -> ze_result_t {
    driver(hDriver);
    need(version, "version");
    *version = ZE_API_VERSION_1_4;
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL DriverGetProperties(ze_driver_handle_t hDriver, ze_driver_properties_t* p) {
  return query<Driver>("zeDriverGetProperties", hDriver, "hDriver", p, [](Driver&) {
    ze_driver_properties_t v{};
    std::memcpy(v.uuid.id, "xesvm-ze-driver", 16);
    v.driverVersion = kDriverVersion;
    return v;
  });
}

ze_result_t ZE_APICALL DriverGetIpcProperties(ze_driver_handle_t hDriver, ze_driver_ipc_properties_t* p) {
  // No IPC of memory or events.
  return query<Driver>("zeDriverGetIpcProperties", hDriver, "hDriver", p,
                       [](Driver&) { return ze_driver_ipc_properties_t{}; });
}

ze_result_t ZE_APICALL DriverGetExtensionProperties(ze_driver_handle_t hDriver, std::uint32_t* pCount,
                                                    ze_driver_extension_properties_t* props) {
  return guard("zeDriverGetExtensionProperties", [&]() -> ze_result_t {
    driver(hDriver);
    return count_fill(pCount, props, 1, [](ze_driver_extension_properties_t& e, std::uint32_t) {
      std::memset(e.name, 0, sizeof e.name);
      std::strncpy(e.name, ZE_RELAXED_ALLOCATION_LIMITS_EXP_NAME, sizeof e.name - 1);
      e.version = ZE_RELAXED_ALLOCATION_LIMITS_EXP_VERSION_CURRENT;
    });
  });
}

ze_result_t ZE_APICALL DriverGetExtensionFunctionAddress(ze_driver_handle_t hDriver, const char* name, void** pp) {
  return guard("zeDriverGetExtensionFunctionAddress", [&]() -> ze_result_t {
    driver(hDriver);
    need(name, "name");
    need(pp, "ppFunctionAddress");
    *pp = nullptr;
    return ZE_RESULT_ERROR_INVALID_ARGUMENT;  // no extension functions
  });
}

// --- device ------------------------------------------------------------------

ze_result_t ZE_APICALL DeviceGet(ze_driver_handle_t hDriver, std::uint32_t* pCount, ze_device_handle_t* ph) {
  return guard("zeDeviceGet", [&]() -> ze_result_t {
    auto& devs = driver(hDriver).devices();
    return count_fill(pCount, ph, static_cast<std::uint32_t>(devs.size()),
                      [&](ze_device_handle_t& h, std::uint32_t i) { h = devs[i].get(); });
  });
}

ze_result_t ZE_APICALL DeviceGetSubDevices(ze_device_handle_t hDevice, std::uint32_t* pCount, ze_device_handle_t*) {
  return guard("zeDeviceGetSubDevices", [&]() -> ze_result_t {
    live<Device>(hDevice, "hDevice");
    need(pCount, "pCount");
    *pCount = 0;
    return ZE_RESULT_SUCCESS;
  });
}

// The properties of a device whose backend runs no host kernels (xe): what
// its kernel driver reports (PCI device id, device memory from MEM_REGIONS),
// and nothing about compute units, which the runtime neither uses nor knows.
ze_device_properties_t kernel_driver_device_properties(Device& d) {
  ze_device_properties_t v{};
  v.type = ZE_DEVICE_TYPE_GPU;
  v.flags = ZE_DEVICE_PROPERTY_FLAG_ONDEMANDPAGING;  // a fault-mode VM
  v.vendorId = 0x8086;
  v.deviceId = static_cast<std::uint32_t>(std::strtoul(d.described("device_id").c_str(), nullptr, 16));
  v.maxMemAllocSize = d.vram();
  v.timerResolution = 1;  // ns of the host's monotonic clock
  v.timestampValidBits = v.kernelTimestampValidBits = 64;
  std::memcpy(v.uuid.id, "xesvm-ze-dev", 12);
  v.uuid.id[15] = static_cast<std::uint8_t>(d.index());
  const std::string node = d.described("node");
  std::snprintf(v.name, sizeof v.name, "xesvm %s Intel Xe device %s rev %s%s%s", d.uri().c_str(),
                d.described("device_id").c_str(), d.described("revision").c_str(), node.empty() ? "" : " at ",
                node.c_str());
  return v;
}

ze_result_t ZE_APICALL DeviceGetProperties(ze_device_handle_t hDevice, ze_device_properties_t* p) {
  return query<Device>("zeDeviceGetProperties", hDevice, "hDevice", p, [](Device& d) {
    if (!d.host_kernels()) return kernel_driver_device_properties(d);
    ze_device_properties_t v{};  // vendorId and maxCommandQueuePriority: 0
    v.type = ZE_DEVICE_TYPE_GPU;
    v.flags = ZE_DEVICE_PROPERTY_FLAG_ONDEMANDPAGING;
    v.coreClockRate = 1000;
    v.maxHardwareContexts = 64;
    // One work item at a time per engine worker: a worker is a subslice of
    // one single-lane EU.
    v.numThreadsPerEU = v.physicalEUSimdWidth = v.numEUsPerSubslice = v.numSlices = 1;
    v.numSubslicesPerSlice = d.workers();
    v.deviceId = d.index();
    v.maxMemAllocSize = d.vram();
    v.timerResolution = 1;  // ns
    v.timestampValidBits = v.kernelTimestampValidBits = 64;
    std::memcpy(v.uuid.id, "xesvm-ze-dev", 12);
    v.uuid.id[15] = static_cast<std::uint8_t>(d.index());
    std::snprintf(v.name, sizeof v.name, "xesvm %s", d.uri().c_str());
    return v;
  });
}

ze_result_t ZE_APICALL DeviceGetComputeProperties(ze_device_handle_t hDevice, ze_device_compute_properties_t* p) {
  return query<Device>("zeDeviceGetComputeProperties", hDevice, "hDevice", p, [](Device& d) {
    ze_device_compute_properties_t v{};
    if (!d.host_kernels()) return v;  // no kernels run on it through this driver: all 0
    v.maxTotalGroupSize = kMaxGroupSize;
    v.maxGroupSizeX = v.maxGroupSizeY = v.maxGroupSizeZ = kMaxGroupSize;
    v.maxGroupCountX = v.maxGroupCountY = v.maxGroupCountZ = 0xffffffffu;
    v.maxSharedLocalMemory = static_cast<std::uint32_t>(kMaxLocalMemory);
    v.numSubGroupSizes = 1;
    v.subGroupSizes[0] = 1;
    return v;
  });
}

ze_result_t ZE_APICALL DeviceGetModuleProperties(ze_device_handle_t hDevice, ze_device_module_properties_t* p) {
  return query<Device>("zeDeviceGetModuleProperties", hDevice, "hDevice", p, [](Device& d) {
    ze_device_module_properties_t v{};
    if (!d.host_kernels()) return v;  // no modules on it: all 0
#if XESVM_ZE_SPIRV
    v.spirvVersionSupported = ZE_MAKE_VERSION(1, 4);
#else
    v.spirvVersionSupported = 0;  // built without the SPIR-V compiler
#endif
    v.fp32flags = ZE_DEVICE_FP_FLAG_ROUND_TO_NEAREST | ZE_DEVICE_FP_FLAG_INF_NAN | ZE_DEVICE_FP_FLAG_DENORM;
    v.fp64flags = v.fp32flags;
    v.maxArgumentsSize = XESVM_ZE_MAX_KERNEL_ARGS * XESVM_ZE_MAX_ARG_SIZE;
    return v;
  });
}

ze_result_t ZE_APICALL DeviceGetCommandQueueGroupProperties(ze_device_handle_t hDevice, std::uint32_t* pCount,
                                                            ze_command_queue_group_properties_t* props) {
  return guard("zeDeviceGetCommandQueueGroupProperties", [&]() -> ze_result_t {
    Device& d = live<Device>(hDevice, "hDevice");
    return count_fill(pCount, props, 1, [&](ze_command_queue_group_properties_t& g, std::uint32_t) {
      ze_command_queue_group_properties_t v{};
      // Without host kernels the queues run copies and fills only (xe: the copy engine).
      v.flags = d.host_kernels()
                    ? ZE_COMMAND_QUEUE_GROUP_PROPERTY_FLAG_COMPUTE | ZE_COMMAND_QUEUE_GROUP_PROPERTY_FLAG_COPY
                    : ZE_COMMAND_QUEUE_GROUP_PROPERTY_FLAG_COPY;
      v.maxMemoryFillPatternSize = kMaxFillPattern;
      v.numQueues = kNumQueues;
      put(&g, v);
    });
  });
}

ze_result_t ZE_APICALL DeviceGetMemoryProperties(ze_device_handle_t hDevice, std::uint32_t* pCount,
                                                 ze_device_memory_properties_t* props) {
  return guard("zeDeviceGetMemoryProperties", [&]() -> ze_result_t {
    Device& d = live<Device>(hDevice, "hDevice");
    return count_fill(pCount, props, 1, [&](ze_device_memory_properties_t& m, std::uint32_t) {
      ze_device_memory_properties_t v{};
      if (d.host_kernels()) {  // the sim's modelled memory
        v.maxClockRate = 1000;
        v.maxBusWidth = 64;
      }  // xe: MEM_REGIONS gives the size only
      v.totalSize = d.vram();
      std::snprintf(v.name, sizeof v.name, "%s", d.host_kernels() || d.described("vram") != "none" ? "VRAM" : "system");
      put(&m, v);
    });
  });
}

ze_result_t ZE_APICALL DeviceGetMemoryAccessProperties(ze_device_handle_t hDevice,
                                                       ze_device_memory_access_properties_t* p) {
  return query<Device>("zeDeviceGetMemoryAccessProperties", hDevice, "hDevice", p, [](Device& d) {
    constexpr ze_memory_access_cap_flags_t kRwAtomic = ZE_MEMORY_ACCESS_CAP_FLAG_RW | ZE_MEMORY_ACCESS_CAP_FLAG_ATOMIC;
    ze_device_memory_access_properties_t v{};
    if (!d.host_kernels()) {
      // Copies and fills only (no kernels, so no device atomics through
      // this driver); driver allocations only.
      constexpr ze_memory_access_cap_flags_t kRw = ZE_MEMORY_ACCESS_CAP_FLAG_RW;
      v.hostAllocCapabilities = v.sharedSingleDeviceAllocCapabilities = kRw | ZE_MEMORY_ACCESS_CAP_FLAG_CONCURRENT;
      v.deviceAllocCapabilities = kRw;
      return v;
    }
    v.hostAllocCapabilities = kRwAtomic | ZE_MEMORY_ACCESS_CAP_FLAG_CONCURRENT;
    v.deviceAllocCapabilities = kRwAtomic;
    v.sharedSingleDeviceAllocCapabilities = kRwAtomic | ZE_MEMORY_ACCESS_CAP_FLAG_CONCURRENT;
    v.sharedCrossDeviceAllocCapabilities = 0;
    // The sim: the application's own memory, mirrored by the runtime on first
    // use (system_memory.cpp).
    v.sharedSystemAllocCapabilities = d.shared_system() ? kRwAtomic | ZE_MEMORY_ACCESS_CAP_FLAG_CONCURRENT : 0;
    return v;
  });
}

ze_result_t ZE_APICALL DeviceGetCacheProperties(ze_device_handle_t hDevice, std::uint32_t* pCount,
                                                ze_device_cache_properties_t*) {
  return guard("zeDeviceGetCacheProperties", [&]() -> ze_result_t {
    live<Device>(hDevice, "hDevice");
    need(pCount, "pCount");
    *pCount = 0;  // the sim models no device caches
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL DeviceGetImageProperties(ze_device_handle_t hDevice, ze_device_image_properties_t* p) {
  return query<Device>("zeDeviceGetImageProperties", hDevice, "hDevice", p,
                       [](Device&) { return ze_device_image_properties_t{}; });
}

ze_result_t ZE_APICALL DeviceGetExternalMemoryProperties(ze_device_handle_t hDevice,
                                                         ze_device_external_memory_properties_t* p) {
  return query<Device>("zeDeviceGetExternalMemoryProperties", hDevice, "hDevice", p,
                       [](Device&) { return ze_device_external_memory_properties_t{}; });
}

ze_result_t ZE_APICALL DeviceGetP2PProperties(ze_device_handle_t hDevice, ze_device_handle_t hPeer,
                                              ze_device_p2p_properties_t* p) {
  return guard("zeDeviceGetP2PProperties", [&]() -> ze_result_t {
    live<Device>(hDevice, "hDevice");
    live<Device>(hPeer, "hPeerDevice");
    need(p, "pP2PProperties");
    put(p, ze_device_p2p_properties_t{});
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL DeviceCanAccessPeer(ze_device_handle_t hDevice, ze_device_handle_t hPeer, ze_bool_t* value) {
  return guard("zeDeviceCanAccessPeer", [&]() -> ze_result_t {
    Device& d = live<Device>(hDevice, "hDevice");
    Device& peer = live<Device>(hPeer, "hPeerDevice");
    need(value, "value");
    *value = &d == &peer;
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL DeviceGetStatus(ze_device_handle_t hDevice) {
  return guard("zeDeviceGetStatus", [&]() -> ze_result_t {
    live<Device>(hDevice, "hDevice");
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL DeviceGetGlobalTimestamps(ze_device_handle_t hDevice, std::uint64_t* host,
                                                 std::uint64_t* device) {
  return guard("zeDeviceGetGlobalTimestamps", [&]() -> ze_result_t {
    Device& d = live<Device>(hDevice, "hDevice");
    need(host, "hostTimestamp");
    need(device, "deviceTimestamp");
    *host = now_ns();
    *device = d.clock_ns();
    return ZE_RESULT_SUCCESS;
  });
}

}  // namespace

bool debug_log() {
  static const bool on = [] {
    const char* e = std::getenv("XESVM_ZE_DEBUG");
    return e && *e == '1';
  }();
  return on;
}

ze_result_t copy_string(const std::string& s, size_t* size, char* out) {
  need(size, "pSize");
  if (!out) {
    *size = s.size() + 1;
    return ZE_RESULT_SUCCESS;
  }
  if (*size == 0) fail(ZE_RESULT_ERROR_INVALID_SIZE, "*pSize is 0 but a buffer was passed");
  const std::size_t n = std::min(*size - 1, s.size());
  std::memcpy(out, s.data(), n);
  out[n] = '\0';
  return ZE_RESULT_SUCCESS;
}

void fill(ze_global_dditable_t& t) { t = {.pfnInit = Init}; }

void fill(ze_driver_dditable_t& t) {
  // clang-format off
  t = {.pfnGet = DriverGet, .pfnGetApiVersion = DriverGetApiVersion, .pfnGetProperties = DriverGetProperties,
       .pfnGetIpcProperties = DriverGetIpcProperties, .pfnGetExtensionProperties = DriverGetExtensionProperties,
       .pfnGetExtensionFunctionAddress = DriverGetExtensionFunctionAddress};
  // clang-format on
}

void fill(ze_device_dditable_t& t) {
  // clang-format off
  t = {.pfnGet = DeviceGet, .pfnGetSubDevices = DeviceGetSubDevices, .pfnGetProperties = DeviceGetProperties,
       .pfnGetComputeProperties = DeviceGetComputeProperties, .pfnGetModuleProperties = DeviceGetModuleProperties,
       .pfnGetCommandQueueGroupProperties = DeviceGetCommandQueueGroupProperties,
       .pfnGetMemoryProperties = DeviceGetMemoryProperties,
       .pfnGetMemoryAccessProperties = DeviceGetMemoryAccessProperties,
       .pfnGetCacheProperties = DeviceGetCacheProperties, .pfnGetImageProperties = DeviceGetImageProperties,
       .pfnGetExternalMemoryProperties = DeviceGetExternalMemoryProperties,
       .pfnGetP2PProperties = DeviceGetP2PProperties, .pfnCanAccessPeer = DeviceCanAccessPeer,
       .pfnGetStatus = DeviceGetStatus, .pfnGetGlobalTimestamps = DeviceGetGlobalTimestamps,
       .pfnReserveCacheExt = unsupported, .pfnSetCacheAdviceExt = unsupported, .pfnPciGetPropertiesExt = unsupported};
  // clang-format on
}

}  // namespace xesvm::ze::api
