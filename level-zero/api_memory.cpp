// Entry points: contexts, USM allocations and residency (see api.hpp for the
// contract; the allocation rules are in memory.cpp).
#include "level-zero/api.hpp"

namespace xesvm::ze::api {

namespace {

// --- contexts ------------------------------------------------------------------

ze_result_t ZE_APICALL ContextCreateEx(ze_driver_handle_t hDriver, const ze_context_desc_t* desc, std::uint32_t n,
                                       ze_device_handle_t* phDevices, ze_context_handle_t* ph) {
  return create("zeContextCreate", ph, [&]() -> ze_result_t {
    Driver& d = driver(hDriver);
    need(desc, "desc");
    need(ph, "phContext");
    check_enum(desc->flags, ZE_CONTEXT_FLAG_TBD, "desc->flags");
    if (!phDevices && n > 0) fail(ZE_RESULT_ERROR_INVALID_SIZE, "phDevices is NULL but numDevices > 0");
    for (std::uint32_t i = 0; i < n; ++i) live<Device>(phDevices[i], "phDevices[i]");
    *ph = new Context(d);
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL ContextCreate(ze_driver_handle_t hDriver, const ze_context_desc_t* desc,
                                     ze_context_handle_t* ph) {
  return ContextCreateEx(hDriver, desc, 0, nullptr, ph);
}

ze_result_t ZE_APICALL ContextDestroy(ze_context_handle_t hContext) {
  return guard("zeContextDestroy", [&]() -> ze_result_t {
    Context& c = live<Context>(hContext, "hContext");
    for (std::uint64_t base : c.driver.allocations_of(&c)) {
      if (auto a = c.driver.remove_allocation(base)) release_allocation(a);
    }
    delete &c;
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL ContextGetStatus(ze_context_handle_t hContext) {
  return guard("zeContextGetStatus", [&]() -> ze_result_t {
    live<Context>(hContext, "hContext");
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL ContextSystemBarrier(ze_context_handle_t hContext, ze_device_handle_t hDevice) {
  return guard("zeContextSystemBarrier", [&]() -> ze_result_t {
    live<Context>(hContext, "hContext");
    live<Device>(hDevice, "hDevice");
    return ZE_RESULT_SUCCESS;  // every command completes before its event or fence is signaled
  });
}

// zeContextMakeMemoryResident and zeContextEvictMemory: the same checks, then
// op on the range.
template <class Op>
ze_result_t residency(const char* fn, ze_context_handle_t hContext, ze_device_handle_t hDevice, void* ptr, size_t size,
                      Op op) {
  return guard(fn, [&]() -> ze_result_t {
    live<Context>(hContext, "hContext");
    Device& d = live<Device>(hDevice, "hDevice");
    need(ptr, "ptr");
    op(d, ptr, size);
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL ContextMakeMemoryResident(ze_context_handle_t hContext, ze_device_handle_t hDevice, void* ptr,
                                                 size_t size) {
  return residency("zeContextMakeMemoryResident", hContext, hDevice, ptr, size, prefetch_to_device);
}

ze_result_t ZE_APICALL ContextEvictMemory(ze_context_handle_t hContext, ze_device_handle_t hDevice, void* ptr,
                                          size_t size) {
  return residency("zeContextEvictMemory", hContext, hDevice, ptr, size, evict_to_system);
}

// --- allocations -----------------------------------------------------------------

ze_result_t ZE_APICALL MemAllocShared(ze_context_handle_t hContext, const ze_device_mem_alloc_desc_t* ddesc,
                                      const ze_host_mem_alloc_desc_t* hdesc, size_t size, size_t alignment,
                                      ze_device_handle_t hDevice, void** pptr) {
  return create("zeMemAllocShared", pptr, [&]() -> ze_result_t {
    Context& c = live<Context>(hContext, "hContext");
    Device* d = optional<Device>(hDevice, "hDevice");
    need(ddesc, "device_desc");
    need(hdesc, "host_desc");
    need(pptr, "pptr");
    *pptr = allocate(c, MemKind::kShared, d, size, alignment, ddesc->flags, hdesc->flags, ddesc->pNext, ddesc->ordinal);
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL MemAllocDevice(ze_context_handle_t hContext, const ze_device_mem_alloc_desc_t* ddesc,
                                      size_t size, size_t alignment, ze_device_handle_t hDevice, void** pptr) {
  return create("zeMemAllocDevice", pptr, [&]() -> ze_result_t {
    Context& c = live<Context>(hContext, "hContext");
    Device& d = live<Device>(hDevice, "hDevice");
    need(ddesc, "device_desc");
    need(pptr, "pptr");
    *pptr = allocate(c, MemKind::kDevice, &d, size, alignment, ddesc->flags, 0, ddesc->pNext, ddesc->ordinal);
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL MemAllocHost(ze_context_handle_t hContext, const ze_host_mem_alloc_desc_t* hdesc, size_t size,
                                    size_t alignment, void** pptr) {
  return create("zeMemAllocHost", pptr, [&]() -> ze_result_t {
    Context& c = live<Context>(hContext, "hContext");
    need(hdesc, "host_desc");
    need(pptr, "pptr");
    *pptr = allocate(c, MemKind::kHost, nullptr, size, alignment, 0, hdesc->flags, hdesc->pNext, 0);
    return ZE_RESULT_SUCCESS;
  });
}

// zeMemFree (ext == false) and zeMemFreeExt, whose descriptor is required.
ze_result_t free_memory(bool ext, ze_context_handle_t hContext, const ze_memory_free_ext_desc_t* desc, void* ptr) {
  return guard(ext ? "zeMemFreeExt" : "zeMemFree", [&]() -> ze_result_t {
    Context& c = live<Context>(hContext, "hContext");
    if (ext) {
      need(desc, "pMemFreeDesc");
      check_enum(desc->freePolicy,
                 ZE_DRIVER_MEMORY_FREE_POLICY_EXT_FLAG_BLOCKING_FREE | ZE_DRIVER_MEMORY_FREE_POLICY_EXT_FLAG_DEFER_FREE,
                 "pMemFreeDesc->freePolicy");
    }
    need(ptr, "ptr");
    release(c, ptr);  // nothing runs asynchronously on freed memory: every policy frees now
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL MemFree(ze_context_handle_t hContext, void* ptr) {
  return free_memory(false, hContext, nullptr, ptr);
}

ze_result_t ZE_APICALL MemFreeExt(ze_context_handle_t hContext, const ze_memory_free_ext_desc_t* desc, void* ptr) {
  return free_memory(true, hContext, desc, ptr);
}

ze_result_t ZE_APICALL MemGetAllocProperties(ze_context_handle_t hContext, const void* ptr,
                                             ze_memory_allocation_properties_t* p, ze_device_handle_t* phDevice) {
  return guard("zeMemGetAllocProperties", [&]() -> ze_result_t {
    Context& c = live<Context>(hContext, "hContext");
    need(ptr, "ptr");
    need(p, "pMemAllocProperties");
    auto a = c.driver.find(reinterpret_cast<std::uint64_t>(ptr));
    ze_memory_allocation_properties_t v{};
    Device* owner = nullptr;
    if (a && a->ctx == &c) {
      v.type = a->kind == MemKind::kHost     ? ZE_MEMORY_TYPE_HOST
               : a->kind == MemKind::kDevice ? ZE_MEMORY_TYPE_DEVICE
                                             : ZE_MEMORY_TYPE_SHARED;
      v.id = a->id;
      v.pageSize = 4096;
      owner = a->device;
    } else {
      v.type = ZE_MEMORY_TYPE_UNKNOWN;
    }
    if (phDevice) *phDevice = owner;
    put(p, v);
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL MemGetAddressRange(ze_context_handle_t hContext, const void* ptr, void** pBase, size_t* pSize) {
  return guard("zeMemGetAddressRange", [&]() -> ze_result_t {
    Context& c = live<Context>(hContext, "hContext");
    need(ptr, "ptr");
    auto a = c.driver.find(reinterpret_cast<std::uint64_t>(ptr));
    if (!a || a->ctx != &c) fail(ZE_RESULT_ERROR_INVALID_ARGUMENT, "ptr is not in an allocation of this context");
    if (pBase) *pBase = reinterpret_cast<void*>(a->base);
    if (pSize) *pSize = a->size;
    return ZE_RESULT_SUCCESS;
  });
}

}  // namespace

void fill(ze_context_dditable_t& t) {
  // clang-format off
  t = {.pfnCreate = ContextCreate, .pfnDestroy = ContextDestroy, .pfnGetStatus = ContextGetStatus,
       .pfnSystemBarrier = ContextSystemBarrier, .pfnMakeMemoryResident = ContextMakeMemoryResident,
       .pfnEvictMemory = ContextEvictMemory, .pfnMakeImageResident = unsupported, .pfnEvictImage = unsupported,
       .pfnCreateEx = ContextCreateEx};
  // clang-format on
}

void fill(ze_mem_dditable_t& t) {
  // clang-format off
  t = {.pfnAllocShared = MemAllocShared, .pfnAllocDevice = MemAllocDevice, .pfnAllocHost = MemAllocHost,
       .pfnFree = MemFree, .pfnGetAllocProperties = MemGetAllocProperties, .pfnGetAddressRange = MemGetAddressRange,
       .pfnGetIpcHandle = unsupported, .pfnOpenIpcHandle = unsupported_create, .pfnCloseIpcHandle = unsupported,
       .pfnFreeExt = MemFreeExt};
  // clang-format on
}

}  // namespace xesvm::ze::api
