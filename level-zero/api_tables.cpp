// The 46 table getters the loader requires (REFERENCE.md Part C), the only
// symbols the library exports, and the answer of every 1.4 entry point the
// driver does not provide.
//
// Every entry of every ze table is set, by the fill() of the api_*.cpp file
// of its object kind: an entry point the driver does not provide is
// `unsupported` (api.hpp). (A NULL table entry would also read as
// unsupported in the loader's direct mode, but its intercept mode reports
// such entries as ZE_RESULT_ERROR_UNINITIALIZED.) The zet and zes tables are left empty: the
// tools and sysman interfaces are not provided.
#include <level_zero/zes_ddi.h>
#include <level_zero/zet_ddi.h>

#include <cstring>

#include "level-zero/api.hpp"

namespace xesvm::ze::api {

// Tables of features the driver does not provide at all (the others' fill()
// is in their api_*.cpp).
void fill(ze_image_dditable_t& t) {
  // clang-format off
  t = {.pfnGetProperties = unsupported, .pfnCreate = unsupported_create, .pfnDestroy = unsupported,
       .pfnGetAllocPropertiesExt = unsupported};
  // clang-format on
}
void fill(ze_sampler_dditable_t& t) { t = {.pfnCreate = unsupported_create, .pfnDestroy = unsupported}; }
void fill(ze_physical_mem_dditable_t& t) { t = {.pfnCreate = unsupported_create, .pfnDestroy = unsupported}; }
void fill(ze_virtual_mem_dditable_t& t) {
  // clang-format off
  t = {.pfnReserve = unsupported_create, .pfnFree = unsupported, .pfnQueryPageSize = unsupported,
       .pfnMap = unsupported, .pfnUnmap = unsupported, .pfnSetAccessAttribute = unsupported,
       .pfnGetAccessAttribute = unsupported};
  // clang-format on
}

namespace {

template <class T>
ze_result_t start_table(ze_api_version_t version, T* t) {
  if (!t) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
  if (ZE_MAJOR_VERSION(version) != ZE_MAJOR_VERSION(ZE_API_VERSION_CURRENT)) {
    return ZE_RESULT_ERROR_UNSUPPORTED_VERSION;
  }
  std::memset(static_cast<void*>(t), 0, sizeof *t);
  return ZE_RESULT_SUCCESS;
}

template <class T>
ze_result_t ze_table(ze_api_version_t v, T* t) {
  if (const ze_result_t r = start_table(v, t)) return r;
  fill(*t);
  return ZE_RESULT_SUCCESS;
}

}  // namespace
}  // namespace xesvm::ze::api

using xesvm::ze::api::start_table;
using xesvm::ze::api::ze_table;

#define ZE_TABLE(getter, type) \
  extern "C" ZE_DLLEXPORT ze_result_t ZE_APICALL getter(ze_api_version_t v, type* t) { return ze_table(v, t); }
#define EMPTY_TABLE(getter, type) \
  extern "C" ZE_DLLEXPORT ze_result_t ZE_APICALL getter(ze_api_version_t v, type* t) { return start_table(v, t); }

ZE_TABLE(zeGetGlobalProcAddrTable, ze_global_dditable_t)
ZE_TABLE(zeGetDriverProcAddrTable, ze_driver_dditable_t)
ZE_TABLE(zeGetDeviceProcAddrTable, ze_device_dditable_t)
ZE_TABLE(zeGetContextProcAddrTable, ze_context_dditable_t)
ZE_TABLE(zeGetCommandQueueProcAddrTable, ze_command_queue_dditable_t)
ZE_TABLE(zeGetCommandListProcAddrTable, ze_command_list_dditable_t)
ZE_TABLE(zeGetFenceProcAddrTable, ze_fence_dditable_t)
ZE_TABLE(zeGetEventPoolProcAddrTable, ze_event_pool_dditable_t)
ZE_TABLE(zeGetEventProcAddrTable, ze_event_dditable_t)
ZE_TABLE(zeGetImageProcAddrTable, ze_image_dditable_t)
ZE_TABLE(zeGetKernelProcAddrTable, ze_kernel_dditable_t)
ZE_TABLE(zeGetMemProcAddrTable, ze_mem_dditable_t)
ZE_TABLE(zeGetModuleProcAddrTable, ze_module_dditable_t)
ZE_TABLE(zeGetModuleBuildLogProcAddrTable, ze_module_build_log_dditable_t)
ZE_TABLE(zeGetPhysicalMemProcAddrTable, ze_physical_mem_dditable_t)
ZE_TABLE(zeGetSamplerProcAddrTable, ze_sampler_dditable_t)
ZE_TABLE(zeGetVirtualMemProcAddrTable, ze_virtual_mem_dditable_t)

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
