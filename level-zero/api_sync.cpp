// Entry points: event pools, events and fences (see api.hpp for the contract;
// signalling and waiting are in exec.cpp).
#include <chrono>

#include "level-zero/api.hpp"

namespace xesvm::ze::api {

namespace {

// --- event pools and events ---------------------------------------------------------

ze_result_t ZE_APICALL EventPoolCreate(ze_context_handle_t hContext, const ze_event_pool_desc_t* desc, std::uint32_t n,
                                       ze_device_handle_t* phDevices, ze_event_pool_handle_t* ph) {
  return create("zeEventPoolCreate", ph, [&]() -> ze_result_t {
    Context& c = live<Context>(hContext, "hContext");
    need(desc, "desc");
    need(ph, "phEventPool");
    check_enum(desc->flags, 0x7, "desc->flags");
    if (desc->count == 0) fail(ZE_RESULT_ERROR_INVALID_SIZE, "desc->count is 0");
    if (!phDevices && n > 0) fail(ZE_RESULT_ERROR_INVALID_SIZE, "phDevices is NULL but numDevices > 0");
    for (std::uint32_t i = 0; i < n; ++i) live<Device>(phDevices[i], "phDevices[i]");
    *ph = new EventPool(c, desc->flags, desc->count);
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL EventPoolDestroy(ze_event_pool_handle_t h) {
  return destroy<EventPool>(
      "zeEventPoolDestroy", h, "hEventPool", [](const EventPool& p) { return p.live.load() != 0; },
      "the pool still has events");
}

ze_result_t ZE_APICALL EventCreate(ze_event_pool_handle_t hPool, const ze_event_desc_t* desc, ze_event_handle_t* ph) {
  return create("zeEventCreate", ph, [&]() -> ze_result_t {
    EventPool& p = live<EventPool>(hPool, "hEventPool");
    need(desc, "desc");
    need(ph, "phEvent");
    check_enum(desc->signal, 0x7, "desc->signal");
    check_enum(desc->wait, 0x7, "desc->wait");
    if (desc->index >= p.count) {
      fail(ZE_RESULT_ERROR_INVALID_ARGUMENT, "desc->index is not below the pool's count " + std::to_string(p.count));
    }
    *ph = new Event(p, desc->index);
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL EventDestroy(ze_event_handle_t h) { return destroy<Event>("zeEventDestroy", h, "hEvent"); }

ze_result_t ZE_APICALL EventHostSignal(ze_event_handle_t h) {
  return guard("zeEventHostSignal", [&]() -> ze_result_t {
    live<Event>(h, "hEvent").signal(Driver::get().devices().front()->clock_ns());
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL EventHostSynchronize(ze_event_handle_t h, std::uint64_t timeout) {
  return guard("zeEventHostSynchronize", [&]() -> ze_result_t {
    return live<Event>(h, "hEvent").wait(timeout) ? ZE_RESULT_SUCCESS : ZE_RESULT_NOT_READY;
  });
}

ze_result_t ZE_APICALL EventQueryStatus(ze_event_handle_t h) {
  return guard("zeEventQueryStatus", [&]() -> ze_result_t {
    return live<Event>(h, "hEvent").signaled() ? ZE_RESULT_SUCCESS : ZE_RESULT_NOT_READY;
  });
}

ze_result_t ZE_APICALL EventHostReset(ze_event_handle_t h) {
  return guard("zeEventHostReset", [&]() -> ze_result_t {
    live<Event>(h, "hEvent").reset();
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL EventQueryKernelTimestamp(ze_event_handle_t h, ze_kernel_timestamp_result_t* dst) {
  return guard("zeEventQueryKernelTimestamp", [&]() -> ze_result_t {
    Event& e = live<Event>(h, "hEvent");
    need(dst, "dstptr");
    if (!(e.pool.flags & ZE_EVENT_POOL_FLAG_KERNEL_TIMESTAMP)) {
      fail(ZE_RESULT_ERROR_INVALID_ARGUMENT, "the event's pool has no ZE_EVENT_POOL_FLAG_KERNEL_TIMESTAMP");
    }
    if (!e.signaled()) return ZE_RESULT_NOT_READY;
    *dst = e.timestamps();
    return ZE_RESULT_SUCCESS;
  });
}

// --- fences ------------------------------------------------------------------------

ze_result_t ZE_APICALL FenceCreate(ze_command_queue_handle_t hQueue, const ze_fence_desc_t* desc,
                                   ze_fence_handle_t* ph) {
  return create("zeFenceCreate", ph, [&]() -> ze_result_t {
    CommandQueue& q = live<CommandQueue>(hQueue, "hCommandQueue");
    need(desc, "desc");
    need(ph, "phFence");
    check_enum(desc->flags, ZE_FENCE_FLAG_SIGNALED, "desc->flags");
    auto f = std::make_unique<Fence>(q);
    f->signaled = (desc->flags & ZE_FENCE_FLAG_SIGNALED) != 0;
    *ph = f.release();
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL FenceDestroy(ze_fence_handle_t h) { return destroy<Fence>("zeFenceDestroy", h, "hFence"); }

ze_result_t ZE_APICALL FenceHostSynchronize(ze_fence_handle_t h, std::uint64_t timeout) {
  return guard("zeFenceHostSynchronize", [&]() -> ze_result_t {
    Fence& f = live<Fence>(h, "hFence");
    if (f.signaled) return ZE_RESULT_SUCCESS;
    if (timeout == 0) return ZE_RESULT_NOT_READY;
    Driver& d = Driver::get();
    std::unique_lock lk(d.ev_mu);
    auto pred = [&] { return f.signaled.load(); };
    if (timeout == UINT64_MAX) {
      d.ev_cv.wait(lk, pred);
    } else if (!d.ev_cv.wait_for(lk, std::chrono::nanoseconds(timeout), pred)) {
      return ZE_RESULT_NOT_READY;
    }
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL FenceQueryStatus(ze_fence_handle_t h) {
  return guard("zeFenceQueryStatus", [&]() -> ze_result_t {
    return live<Fence>(h, "hFence").signaled ? ZE_RESULT_SUCCESS : ZE_RESULT_NOT_READY;
  });
}

ze_result_t ZE_APICALL FenceReset(ze_fence_handle_t h) {
  return guard("zeFenceReset", [&]() -> ze_result_t {
    live<Fence>(h, "hFence").signaled = false;
    return ZE_RESULT_SUCCESS;
  });
}

}  // namespace

void fill(ze_event_pool_dditable_t& t) {
  // clang-format off
  t = {.pfnCreate = EventPoolCreate, .pfnDestroy = EventPoolDestroy, .pfnGetIpcHandle = unsupported,
       .pfnOpenIpcHandle = unsupported_create, .pfnCloseIpcHandle = unsupported};
  // clang-format on
}

void fill(ze_event_dditable_t& t) {
  // clang-format off
  t = {.pfnCreate = EventCreate, .pfnDestroy = EventDestroy, .pfnHostSignal = EventHostSignal,
       .pfnHostSynchronize = EventHostSynchronize, .pfnQueryStatus = EventQueryStatus, .pfnHostReset = EventHostReset,
       .pfnQueryKernelTimestamp = EventQueryKernelTimestamp};
  // clang-format on
}

void fill(ze_fence_dditable_t& t) {
  // clang-format off
  t = {.pfnCreate = FenceCreate, .pfnDestroy = FenceDestroy, .pfnHostSynchronize = FenceHostSynchronize,
       .pfnQueryStatus = FenceQueryStatus, .pfnReset = FenceReset};
  // clang-format on
}

}  // namespace xesvm::ze::api
