// Entry points: command queues and command lists, every Append* (see api.hpp
// for the contract; execution is in exec.cpp, copies in memory.cpp).
#include "level-zero/api.hpp"

namespace xesvm::ze::api {

namespace {

// --- command queues --------------------------------------------------------------

// The checks a queue descriptor gets, for queues and immediate lists alike.
void check_queue_desc(const ze_command_queue_desc_t& desc) {
  check_enum(desc.flags, ZE_COMMAND_QUEUE_FLAG_EXPLICIT_ONLY, "desc->flags");
  check_enum(desc.mode, ZE_COMMAND_QUEUE_MODE_ASYNCHRONOUS, "desc->mode");
  check_enum(desc.priority, ZE_COMMAND_QUEUE_PRIORITY_PRIORITY_HIGH, "desc->priority");
  if (desc.ordinal >= 1) fail(ZE_RESULT_ERROR_INVALID_ARGUMENT, "desc->ordinal: the device has one queue group");
  if (desc.index >= kNumQueues) {
    fail(ZE_RESULT_ERROR_INVALID_ARGUMENT,
         "desc->index: the queue group has " + std::to_string(kNumQueues) + " queues");
  }
}

// The create calls of queues and lists: the context, the device, the
// descriptor and the output handle are checked, then *ph = make(context,
// device, descriptor).
template <class Desc, class T, class Make>
ze_result_t create_on_device(const char* fn, ze_context_handle_t hContext, ze_device_handle_t hDevice, const Desc* desc,
                             T** ph, Make make) {
  return create(fn, ph, [&]() -> ze_result_t {
    Context& c = live<Context>(hContext, "hContext");
    Device& d = live<Device>(hDevice, "hDevice");
    need(desc, "desc");
    need(ph, "the output handle");
    *ph = make(c, d, *desc);
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL CommandQueueCreate(ze_context_handle_t hContext, ze_device_handle_t hDevice,
                                          const ze_command_queue_desc_t* desc, ze_command_queue_handle_t* ph) {
  return create_on_device("zeCommandQueueCreate", hContext, hDevice, desc, ph,
                          [](Context& c, Device& d, const ze_command_queue_desc_t& desc) {
                            check_queue_desc(desc);
                            return new CommandQueue(c, d, desc);
                          });
}

ze_result_t ZE_APICALL CommandQueueDestroy(ze_command_queue_handle_t h) {
  return destroy<CommandQueue>("zeCommandQueueDestroy", h, "hCommandQueue");
}

ze_result_t ZE_APICALL CommandQueueExecuteCommandLists(ze_command_queue_handle_t hQueue, std::uint32_t n,
                                                       ze_command_list_handle_t* lists, ze_fence_handle_t hFence) {
  return guard("zeCommandQueueExecuteCommandLists", [&]() -> ze_result_t {
    CommandQueue& q = live<CommandQueue>(hQueue, "hCommandQueue");
    need(lists, "phCommandLists");
    if (n == 0) fail(ZE_RESULT_ERROR_INVALID_SIZE, "numCommandLists is 0");
    CommandBatch batch;
    for (std::uint32_t i = 0; i < n; ++i) {
      CommandList& l = live<CommandList>(lists[i], "phCommandLists[i]");
      if (l.immediate || l.ordinal != q.ordinal) {
        fail(ZE_RESULT_ERROR_INVALID_COMMAND_LIST_TYPE, "an immediate list, or one of another queue group");
      }
      if (&l.dev != &q.dev) fail(ZE_RESULT_ERROR_INVALID_ARGUMENT, "a command list of another device");
      if (!l.closed) fail(ZE_RESULT_ERROR_INVALID_ARGUMENT, "a command list that is not closed");
      batch.insert(batch.end(), l.cmds.begin(), l.cmds.end());
    }
    Fence* f = optional<Fence>(hFence, "hFence");
    if (f && &f->queue != &q) {
      fail(ZE_RESULT_ERROR_INVALID_SYNCHRONIZATION_OBJECT, "hFence was created on another queue");
    }
    q.exec.submit(std::move(batch), f);
    if (q.mode == ZE_COMMAND_QUEUE_MODE_SYNCHRONOUS) return q.exec.synchronize(UINT64_MAX);
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL CommandQueueSynchronize(ze_command_queue_handle_t hQueue, std::uint64_t timeout) {
  return guard("zeCommandQueueSynchronize",
               [&]() -> ze_result_t { return live<CommandQueue>(hQueue, "hCommandQueue").exec.synchronize(timeout); });
}

// --- command lists -----------------------------------------------------------------

ze_result_t ZE_APICALL CommandListCreate(ze_context_handle_t hContext, ze_device_handle_t hDevice,
                                         const ze_command_list_desc_t* desc, ze_command_list_handle_t* ph) {
  return create_on_device(
      "zeCommandListCreate", hContext, hDevice, desc, ph,
      [](Context& c, Device& d, const ze_command_list_desc_t& desc) {
        check_enum(desc.flags, 0x7, "desc->flags");
        if (desc.commandQueueGroupOrdinal >= 1) {
          fail(ZE_RESULT_ERROR_INVALID_ARGUMENT, "desc->commandQueueGroupOrdinal: the device has one queue group");
        }
        return new CommandList(c, d, desc.commandQueueGroupOrdinal, false, ZE_COMMAND_QUEUE_MODE_DEFAULT);
      });
}

ze_result_t ZE_APICALL CommandListCreateImmediate(ze_context_handle_t hContext, ze_device_handle_t hDevice,
                                                  const ze_command_queue_desc_t* desc, ze_command_list_handle_t* ph) {
  return create_on_device("zeCommandListCreateImmediate", hContext, hDevice, desc, ph,
                          [](Context& c, Device& d, const ze_command_queue_desc_t& desc) {
                            check_queue_desc(desc);
                            return new CommandList(c, d, desc.ordinal, true, desc.mode);
                          });
}

ze_result_t ZE_APICALL CommandListDestroy(ze_command_list_handle_t h) {
  return destroy<CommandList>("zeCommandListDestroy", h, "hCommandList");
}

ze_result_t ZE_APICALL CommandListClose(ze_command_list_handle_t h) {
  return guard("zeCommandListClose", [&]() -> ze_result_t {
    live<CommandList>(h, "hCommandList").closed = true;
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL CommandListReset(ze_command_list_handle_t h) {
  return guard("zeCommandListReset", [&]() -> ze_result_t {
    CommandList& l = live<CommandList>(h, "hCommandList");
    if (l.immediate) l.exec->synchronize(UINT64_MAX);
    l.cmds.clear();
    l.closed = false;
    return ZE_RESULT_SUCCESS;
  });
}

// Every Append*: resolves the list and the signal event, then builds the
// command with build(list) (which checks the command's own arguments) and
// the wait list, and records it. When the command cannot be built, the
// error is returned and the list still gets a command in its place that
// signals the signal event (so no waiter hangs on an event no command would
// ever signal); on a regular list that command also fails its submission
// with the same error, which zeCommandQueueSynchronize then reports.
template <class Build>
ze_result_t append(const char* fn, ze_command_list_handle_t h, ze_event_handle_t hSignal, std::uint32_t nWait,
                   ze_event_handle_t* phWait, Build&& build) {
  return guard(fn, [&]() -> ze_result_t {
    CommandList& l = live<CommandList>(h, "hCommandList");
    Event* signal = optional<Event>(hSignal, "hSignalEvent");
    Command c;
    std::string why;
    const ze_result_t r = guard(fn, [&]() -> ze_result_t {
      try {
        c = build(l);
        c.waits = wait_list(nWait, phWait);
      } catch (const ZeError& e) {
        why = e.what;
        throw;
      }
      return ZE_RESULT_SUCCESS;
    });
    if (r != ZE_RESULT_SUCCESS) {
      if (signal) l.add_failed(signal, r, std::string(fn) + " failed when it was appended: " + why);
      return r;
    }
    c.signal = signal;
    l.add(std::move(c));
    return ZE_RESULT_SUCCESS;
  });
}

// Checks that a span that starts in an allocation of the driver stays in
// it, and that any other span is mapped memory (the copy engine reaches it
// directly).
void check_span(const void* p, std::size_t n, const char* what) {
  if (n == 0) return;
  const std::uint64_t a = reinterpret_cast<std::uint64_t>(p);
  if (Driver::get().find(a)) {
    require_range(p, n, what);
  } else if (!system_mapped(a, n)) {
    fail(ZE_RESULT_ERROR_INVALID_ARGUMENT, std::string(what) + ": " + std::to_string(n) +
                                               " bytes that are neither in an allocation of the driver nor mapped");
  }
}

// A command that copies segs (fills them with pattern, if not empty).
Command copy_command(CommandList& l, std::vector<CopySeg> segs, std::vector<std::byte> pattern = {}) {
  Command c;
  Device* d = &l.dev;
  c.body = [d, segs = std::move(segs), pattern = std::move(pattern)] { run_copy(*d, segs, pattern); };
  return c;
}

ze_result_t ZE_APICALL AppendBarrier(ze_command_list_handle_t h, ze_event_handle_t hSignal, std::uint32_t nWait,
                                     ze_event_handle_t* phWait) {
  return append("zeCommandListAppendBarrier", h, hSignal, nWait, phWait,
                [&](CommandList&) { return Command{}; });  // in order: every earlier command is done
}

ze_result_t ZE_APICALL AppendMemoryRangesBarrier(ze_command_list_handle_t h, std::uint32_t, const size_t* sizes,
                                                 const void** ranges, ze_event_handle_t hSignal, std::uint32_t nWait,
                                                 ze_event_handle_t* phWait) {
  return append("zeCommandListAppendMemoryRangesBarrier", h, hSignal, nWait, phWait, [&](CommandList&) {
    need(sizes, "pRangeSizes");
    need(ranges, "pRanges");
    return Command{};
  });
}

// zeCommandListAppendMemoryCopy and ...CopyFromContext (one address space:
// a copy from another context is a copy like any other).
ze_result_t copy(const char* fn, ze_command_list_handle_t h, void* dst, const ze_context_handle_t* hSrcContext,
                 const void* src, size_t size, ze_event_handle_t hSignal, std::uint32_t nWait,
                 ze_event_handle_t* phWait) {
  return append(fn, h, hSignal, nWait, phWait, [&](CommandList& l) {
    if (hSrcContext) live<Context>(*hSrcContext, "hContextSrc");
    need(dst, "dstptr");
    need(src, "srcptr");
    check_span(dst, size, "dstptr");
    check_span(src, size, "srcptr");
    if (size == 0) return Command{};
    return copy_command(l, {{reinterpret_cast<std::uint64_t>(dst), reinterpret_cast<std::uint64_t>(src), size}});
  });
}

ze_result_t ZE_APICALL AppendMemoryCopy(ze_command_list_handle_t h, void* dst, const void* src, size_t size,
                                        ze_event_handle_t hSignal, std::uint32_t nWait, ze_event_handle_t* phWait) {
  return copy("zeCommandListAppendMemoryCopy", h, dst, nullptr, src, size, hSignal, nWait, phWait);
}

ze_result_t ZE_APICALL AppendMemoryCopyFromContext(ze_command_list_handle_t h, void* dst,
                                                   ze_context_handle_t hSrcContext, const void* src, size_t size,
                                                   ze_event_handle_t hSignal, std::uint32_t nWait,
                                                   ze_event_handle_t* phWait) {
  return copy("zeCommandListAppendMemoryCopyFromContext", h, dst, &hSrcContext, src, size, hSignal, nWait, phWait);
}

ze_result_t ZE_APICALL AppendMemoryFill(ze_command_list_handle_t h, void* ptr, const void* pattern, size_t psize,
                                        size_t size, ze_event_handle_t hSignal, std::uint32_t nWait,
                                        ze_event_handle_t* phWait) {
  return append("zeCommandListAppendMemoryFill", h, hSignal, nWait, phWait, [&](CommandList& l) {
    need(ptr, "ptr");
    need(pattern, "pattern");
    if (psize == 0 || (psize & (psize - 1)) || psize > kMaxFillPattern) {
      fail(ZE_RESULT_ERROR_INVALID_SIZE, "pattern_size " + std::to_string(psize) +
                                             " is not a power of two up to maxMemoryFillPatternSize (" +
                                             std::to_string(kMaxFillPattern) + ")");
    }
    check_span(ptr, size, "ptr");
    if (size == 0) return Command{};
    // Whole patterns, then the leading bytes of the pattern for the rest
    // (run_copy repeats the pattern from the start of the range).
    const auto* p = static_cast<const std::byte*>(pattern);
    return copy_command(l, {{reinterpret_cast<std::uint64_t>(ptr), 0, size}}, std::vector<std::byte>(p, p + psize));
  });
}

// The segments of a region copy. Regions of depth 0 are 2D: one slice.
std::vector<CopySeg> region_segments(std::uint64_t d0, ze_copy_region_t dr, std::uint64_t dpitch, std::uint64_t dslice,
                                     std::uint64_t s0, ze_copy_region_t sr, std::uint64_t spitch,
                                     std::uint64_t sslice) {
  dr.depth = std::max(dr.depth, 1u);
  sr.depth = std::max(sr.depth, 1u);
  if (dr.width != sr.width || dr.height != sr.height || dr.depth != sr.depth) {
    fail(ZE_RESULT_ERROR_INVALID_ARGUMENT, "the source and destination regions differ in size");
  }
  if (!dr.width || !dr.height) fail(ZE_RESULT_ERROR_INVALID_SIZE, "region width or height is 0");
  auto geometry_ok = [](const ze_copy_region_t& r, std::uint64_t pitch, std::uint64_t slice) {
    if (std::uint64_t(r.originX) + r.width > pitch) return false;
    return !((r.depth > 1 || r.originZ > 0) && (std::uint64_t(r.originY) + r.height) * pitch > slice);
  };
  if (!geometry_ok(dr, dpitch, dslice) || !geometry_ok(sr, spitch, sslice)) {
    fail(ZE_RESULT_ERROR_INVALID_SIZE, "a region does not fit its pitch or slice pitch");
  }
  auto offset = [](const ze_copy_region_t& r, std::uint64_t pitch, std::uint64_t slice, std::uint64_t y,
                   std::uint64_t z) { return (r.originZ + z) * slice + (r.originY + y) * pitch + r.originX; };
  const std::uint64_t dlast = offset(dr, dpitch, dslice, dr.height - 1, dr.depth - 1) + dr.width;
  const std::uint64_t slast = offset(sr, spitch, sslice, sr.height - 1, sr.depth - 1) + sr.width;
  const std::uint64_t dfirst = offset(dr, dpitch, dslice, 0, 0), sfirst = offset(sr, spitch, sslice, 0, 0);
  // Overlap: boxes of the same buffer layout, or byte spans otherwise.
  bool overlap = false;
  if (d0 == s0 && dpitch == spitch && dslice == sslice) {
    auto ov = [](std::uint64_t a, std::uint64_t b, std::uint64_t n) { return a < b + n && b < a + n; };
    overlap = ov(dr.originX, sr.originX, dr.width) && ov(dr.originY, sr.originY, dr.height) &&
              ov(dr.originZ, sr.originZ, dr.depth);
  } else {
    overlap = d0 + dfirst < s0 + slast && s0 + sfirst < d0 + dlast;
  }
  if (overlap) fail(ZE_RESULT_ERROR_OVERLAPPING_REGIONS, "the source and destination regions overlap");
  check_span(reinterpret_cast<void*>(d0 + dfirst), dlast - dfirst, "dstptr region");
  check_span(reinterpret_cast<void*>(s0 + sfirst), slast - sfirst, "srcptr region");
  std::vector<CopySeg> segs;
  for (std::uint64_t z = 0; z < dr.depth; ++z) {
    for (std::uint64_t y = 0; y < dr.height; ++y) {
      segs.push_back({d0 + offset(dr, dpitch, dslice, y, z), s0 + offset(sr, spitch, sslice, y, z), dr.width});
    }
  }
  return segs;
}

ze_result_t ZE_APICALL AppendMemoryCopyRegion(ze_command_list_handle_t h, void* dst, const ze_copy_region_t* dr,
                                              std::uint32_t dpitch, std::uint32_t dslice, const void* src,
                                              const ze_copy_region_t* sr, std::uint32_t spitch, std::uint32_t sslice,
                                              ze_event_handle_t hSignal, std::uint32_t nWait,
                                              ze_event_handle_t* phWait) {
  return append("zeCommandListAppendMemoryCopyRegion", h, hSignal, nWait, phWait, [&](CommandList& l) {
    need(dst, "dstptr");
    need(dr, "dstRegion");
    need(src, "srcptr");
    need(sr, "srcRegion");
    return copy_command(l, region_segments(reinterpret_cast<std::uint64_t>(dst), *dr, dpitch, dslice,
                                           reinterpret_cast<std::uint64_t>(src), *sr, spitch, sslice));
  });
}

ze_result_t ZE_APICALL AppendWriteGlobalTimestamp(ze_command_list_handle_t h, std::uint64_t* dst,
                                                  ze_event_handle_t hSignal, std::uint32_t nWait,
                                                  ze_event_handle_t* phWait) {
  return append("zeCommandListAppendWriteGlobalTimestamp", h, hSignal, nWait, phWait, [&](CommandList& l) {
    need(dst, "dstptr");
    check_span(dst, 8, "dstptr");
    Command c;
    Device* d = &l.dev;
    c.body = [d, dst] {
      const std::uint64_t ts = d->clock_ns();
      device_write(*d, reinterpret_cast<std::uint64_t>(dst), &ts, sizeof ts);
    };
    return c;
  });
}

ze_result_t ZE_APICALL AppendMemoryPrefetch(ze_command_list_handle_t h, const void* ptr, size_t size) {
  return append("zeCommandListAppendMemoryPrefetch", h, nullptr, 0, nullptr, [&](CommandList& l) {
    need(ptr, "ptr");
    require_device_range(l.dev, ptr, size, "ptr");
    Command c;
    c.body = [d = &l.dev, ptr, size] { prefetch_to_device(*d, ptr, size); };
    return c;
  });
}

ze_result_t ZE_APICALL AppendMemAdvise(ze_command_list_handle_t h, ze_device_handle_t hDevice, const void* ptr,
                                       size_t size, ze_memory_advice_t advice) {
  return append("zeCommandListAppendMemAdvise", h, nullptr, 0, nullptr, [&](CommandList&) {
    Device& d = live<Device>(hDevice, "hDevice");
    need(ptr, "ptr");
    check_enum(advice, ZE_MEMORY_ADVICE_BIAS_UNCACHED, "advice");
    if (size == 0) fail(ZE_RESULT_ERROR_INVALID_SIZE, "size is 0");
    require_device_range(d, ptr, size, "ptr");
    Command c;
    c.body = [d = &d, ptr, size, advice] { apply_advice(*d, ptr, size, advice); };
    return c;
  });
}

ze_result_t ZE_APICALL AppendSignalEvent(ze_command_list_handle_t h, ze_event_handle_t hEvent) {
  return append("zeCommandListAppendSignalEvent", h, hEvent, 0, nullptr, [&](CommandList&) {
    live<Event>(hEvent, "hEvent");
    return Command{};
  });
}

ze_result_t ZE_APICALL AppendWaitOnEvents(ze_command_list_handle_t h, std::uint32_t n, ze_event_handle_t* phEvents) {
  return append("zeCommandListAppendWaitOnEvents", h, nullptr, n, phEvents, [&](CommandList&) {
    need(phEvents, "phEvents");
    return Command{};
  });
}

ze_result_t ZE_APICALL AppendEventReset(ze_command_list_handle_t h, ze_event_handle_t hEvent) {
  return append("zeCommandListAppendEventReset", h, nullptr, 0, nullptr, [&](CommandList&) {
    Command c;
    c.reset = &live<Event>(hEvent, "hEvent");
    return c;
  });
}

ze_result_t ZE_APICALL AppendLaunchKernel(ze_command_list_handle_t h, ze_kernel_handle_t hKernel,
                                          const ze_group_count_t* args, ze_event_handle_t hSignal, std::uint32_t nWait,
                                          ze_event_handle_t* phWait) {
  return append("zeCommandListAppendLaunchKernel", h, hSignal, nWait, phWait, [&](CommandList& l) {
    Kernel& k = live<Kernel>(hKernel, "hKernel");
    need(args, "pLaunchFuncArgs");
    Command c;
    c.body = launch_body(k, l.dev, *args);
    return c;
  });
}

}  // namespace

void fill(ze_command_queue_dditable_t& t) {
  // clang-format off
  t = {.pfnCreate = CommandQueueCreate, .pfnDestroy = CommandQueueDestroy,
       .pfnExecuteCommandLists = CommandQueueExecuteCommandLists, .pfnSynchronize = CommandQueueSynchronize};
  // clang-format on
}

void fill(ze_command_list_dditable_t& t) {
  // clang-format off
  t = {.pfnCreate = CommandListCreate, .pfnCreateImmediate = CommandListCreateImmediate,
       .pfnDestroy = CommandListDestroy, .pfnClose = CommandListClose, .pfnReset = CommandListReset,
       .pfnAppendWriteGlobalTimestamp = AppendWriteGlobalTimestamp, .pfnAppendBarrier = AppendBarrier,
       .pfnAppendMemoryRangesBarrier = AppendMemoryRangesBarrier, .pfnAppendMemoryCopy = AppendMemoryCopy,
       .pfnAppendMemoryFill = AppendMemoryFill, .pfnAppendMemoryCopyRegion = AppendMemoryCopyRegion,
       .pfnAppendMemoryCopyFromContext = AppendMemoryCopyFromContext, .pfnAppendImageCopy = unsupported,
       .pfnAppendImageCopyRegion = unsupported, .pfnAppendImageCopyToMemory = unsupported,
       .pfnAppendImageCopyFromMemory = unsupported, .pfnAppendMemoryPrefetch = AppendMemoryPrefetch,
       .pfnAppendMemAdvise = AppendMemAdvise, .pfnAppendSignalEvent = AppendSignalEvent,
       .pfnAppendWaitOnEvents = AppendWaitOnEvents, .pfnAppendEventReset = AppendEventReset,
       .pfnAppendQueryKernelTimestamps = unsupported, .pfnAppendLaunchKernel = AppendLaunchKernel,
       .pfnAppendLaunchCooperativeKernel = unsupported, .pfnAppendLaunchKernelIndirect = unsupported,
       .pfnAppendLaunchMultipleKernelsIndirect = unsupported, .pfnAppendImageCopyToMemoryExt = unsupported,
       .pfnAppendImageCopyFromMemoryExt = unsupported};
  // clang-format on
}

}  // namespace xesvm::ze::api
