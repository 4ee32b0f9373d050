// A recording, scripted stand-in for the Xe kernel driver's ioctls.
//
// FakeXe implements XeIoctl: every request is recorded with the exact bytes
// the backend sent (and, for VM_BIND, the bytes of its sync array), and
// answered from a small model of an Xe device held in FakeXeState: CONFIG
// and MEM_REGIONS queries with the two-call size protocol, VM_CREATE filling
// vm_id, user fences written either at bind time or when waited for (the
// kernel's fence write, simulated), MADVISE and QUERY_MEM_RANGE_ATTRS present
// or absent, and scripted errnos per request.
//
// Concurrency: FakeXe::ioctl() may be called from several threads; the state
// is guarded by FakeXeState::mu. Tests read `calls` after the backend's work
// is done (or under mu).
#pragma once

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "runtime/backends/xe/xe_ioctl.hpp"
#include "runtime/backends/xe/xe_uapi.hpp"

namespace xesvm::xe::testing {

namespace u = ::xesvm::xe::uapi;

/// One recorded request.
struct RecordedCall {
  unsigned long request = 0;
  std::vector<std::byte> arg;    ///< the argument as sent (before the reply)
  std::vector<std::byte> syncs;  ///< VM_BIND: drm_xe_sync[num_syncs] as sent

  template <class T>
  T as() const {
    T v{};
    std::memcpy(&v, arg.data(), std::min(sizeof v, arg.size()));
    return v;
  }
  u::drm_xe_sync sync(std::size_t i = 0) const {
    u::drm_xe_sync s{};
    if ((i + 1) * sizeof s <= syncs.size()) std::memcpy(&s, syncs.data() + i * sizeof s, sizeof s);
    return s;
  }
};

/// When the simulated kernel writes a user fence.
enum class FenceMode {
  kOnBind,  ///< at VM_BIND time (the bind completed at once)
  kOnWait,  ///< when WAIT_USER_FENCE is called (the bind completes during the wait)
  kNever,   ///< never: waits time out (ETIME)
};

/// The modelled device and the script.
struct FakeXeState {
  std::mutex mu;
  // Device.
  std::uint32_t device_id = 0xe20b;  // a Battlemage id
  std::uint32_t revision = 1;
  std::uint64_t config_flags = u::kQueryConfigFlagHasVram | u::kQueryConfigFlagHasCpuAddrMirror;
  std::uint64_t min_alignment = 4096;
  std::uint32_t va_bits = 48;
  std::vector<u::drm_xe_mem_region> regions;
  bool fault_mode = true;
  bool madvise = true;
  std::uint32_t vm_id = 7;
  FenceMode fence_mode = FenceMode::kOnBind;
  // Script.
  std::map<unsigned long, std::deque<int>> fail_next;  ///< errnos returned in order, per request
  unsigned range_attr_enospc = 0;                      ///< fill calls of QUERY_MEM_RANGE_ATTRS answered ENOSPC
  std::vector<u::drm_xe_mem_range_attr> range_attrs;
  // Observed.
  std::vector<RecordedCall> calls;
  std::uint64_t pending_fence_addr = 0;
  std::uint64_t pending_fence_value = 0;

  FakeXeState() {
    u::drm_xe_mem_region sys{};
    sys.mem_class = u::kMemRegionClassSysmem;
    sys.instance = 0;
    sys.min_page_size = 4096;
    sys.total_size = 32ull << 30;
    u::drm_xe_mem_region vram{};
    vram.mem_class = u::kMemRegionClassVram;
    vram.instance = 2;  // not 1, so a test can tell an instance from an index
    vram.min_page_size = 4096;
    vram.total_size = 12ull << 30;
    vram.used = 1ull << 30;
    vram.cpu_visible_size = 256ull << 20;
    regions = {sys, vram};
  }

  /// Makes the device an integrated one (no VRAM region, no HAS_VRAM).
  void make_integrated() {
    config_flags &= ~u::kQueryConfigFlagHasVram;
    regions.resize(1);
  }

  /// Calls of one request, in order.
  std::vector<RecordedCall> calls_of(unsigned long request) {
    std::lock_guard<std::mutex> lock(mu);
    std::vector<RecordedCall> out;
    for (const RecordedCall& c : calls) {
      if (c.request == request) out.push_back(c);
    }
    return out;
  }
  std::size_t count(unsigned long request) { return calls_of(request).size(); }
  void clear_calls() {
    std::lock_guard<std::mutex> lock(mu);
    calls.clear();
  }
  void fail(unsigned long request, int err) {
    std::lock_guard<std::mutex> lock(mu);
    fail_next[request].push_back(err);
  }
};

/// The transport handed to XeBackend; shares the state with the test.
class FakeXe final : public XeIoctl {
 public:
  explicit FakeXe(std::shared_ptr<FakeXeState> state) : s_(std::move(state)) {}

  int ioctl(unsigned long request, void* arg) override {
    std::lock_guard<std::mutex> lock(s_->mu);
    RecordedCall call;
    call.request = request;
    const std::size_t size = u::ioc_size(request);
    call.arg.resize(size);
    std::memcpy(call.arg.data(), arg, size);
    if (request == u::kIoctlVmBind) {
      auto b = call.as<u::drm_xe_vm_bind>();
      call.syncs.resize(b.num_syncs * sizeof(u::drm_xe_sync));
      if (b.num_syncs != 0) std::memcpy(call.syncs.data(), reinterpret_cast<const void*>(b.syncs), call.syncs.size());
    }
    s_->calls.push_back(call);

    if (auto it = s_->fail_next.find(request); it != s_->fail_next.end() && !it->second.empty()) {
      int err = it->second.front();
      it->second.pop_front();
      return err;
    }
    switch (request) {
      case u::kIoctlDeviceQuery:
        return device_query(*static_cast<u::drm_xe_device_query*>(arg));
      case u::kIoctlVmCreate:
        return vm_create(*static_cast<u::drm_xe_vm_create*>(arg));
      case u::kIoctlVmDestroy:
        return 0;
      case u::kIoctlVmBind:
        return vm_bind(*static_cast<u::drm_xe_vm_bind*>(arg));
      case u::kIoctlWaitUserFence:
        return wait_fence(*static_cast<u::drm_xe_wait_user_fence*>(arg));
      case u::kIoctlMadvise:
        return s_->madvise ? 0 : EINVAL;
      case u::kIoctlVmQueryMemRangeAttrs:
        return query_attrs(*static_cast<u::drm_xe_vm_query_mem_range_attr*>(arg));
      default:
        return EINVAL;  // what drm_ioctl answers for an unknown driver ioctl
    }
  }

 private:
  static void write_fence(std::uint64_t addr, std::uint64_t value) {
    reinterpret_cast<std::atomic<std::uint64_t>*>(addr)->store(value, std::memory_order_release);
  }
  static std::uint64_t read_fence(std::uint64_t addr) {
    return reinterpret_cast<std::atomic<std::uint64_t>*>(addr)->load(std::memory_order_acquire);
  }

  int device_query(u::drm_xe_device_query& q) {
    std::vector<std::byte> reply;
    auto put = [&reply](const void* p, std::size_t n) {
      const auto* b = static_cast<const std::byte*>(p);
      reply.insert(reply.end(), b, b + n);
    };
    if (q.query == u::kDeviceQueryConfig) {
      u::drm_xe_query_config hdr{5, 0};
      put(&hdr, sizeof hdr);
      std::uint64_t info[5] = {(static_cast<std::uint64_t>(s_->revision) << 16) | s_->device_id, s_->config_flags,
                               s_->min_alignment, s_->va_bits, 2};
      put(info, sizeof info);
    } else if (q.query == u::kDeviceQueryMemRegions) {
      u::drm_xe_query_mem_regions hdr{static_cast<std::uint32_t>(s_->regions.size()), 0};
      put(&hdr, sizeof hdr);
      for (const auto& r : s_->regions) put(&r, sizeof r);
    } else {
      return EINVAL;
    }
    if (q.size == 0) {
      q.size = static_cast<std::uint32_t>(reply.size());
      return 0;
    }
    if (q.size != reply.size()) return EINVAL;
    std::memcpy(reinterpret_cast<void*>(q.data), reply.data(), reply.size());
    return 0;
  }

  int vm_create(u::drm_xe_vm_create& c) {
    if ((c.flags & u::kVmCreateFlagFaultMode) != 0) {
      if (!s_->fault_mode || (c.flags & u::kVmCreateFlagLrMode) == 0) return EINVAL;
    }
    c.vm_id = s_->vm_id;
    return 0;
  }

  int vm_bind(const u::drm_xe_vm_bind& b) {
    if (b.vm_id != s_->vm_id || b.num_binds != 1) return EINVAL;
    const auto* syncs = reinterpret_cast<const u::drm_xe_sync*>(b.syncs);
    for (std::uint32_t i = 0; i < b.num_syncs; ++i) {
      if (syncs[i].type != u::kSyncTypeUserFence) continue;
      if (s_->fence_mode == FenceMode::kOnBind) {
        write_fence(syncs[i].addr, syncs[i].timeline_value);
      } else {
        s_->pending_fence_addr = syncs[i].addr;
        s_->pending_fence_value = syncs[i].timeline_value;
      }
    }
    return 0;
  }

  int wait_fence(const u::drm_xe_wait_user_fence& w) {
    if (s_->fence_mode == FenceMode::kOnWait && s_->pending_fence_addr != 0) {
      write_fence(s_->pending_fence_addr, s_->pending_fence_value);
    }
    if (w.op != u::kUfenceWaitOpGte) return EINVAL;
    return (read_fence(w.addr) & w.mask) >= w.value ? 0 : ETIME;
  }

  int query_attrs(u::drm_xe_vm_query_mem_range_attr& q) {
    if (!s_->madvise) return EINVAL;
    if (q.num_mem_ranges == 0 && q.vector_of_mem_attr == 0) {
      q.num_mem_ranges = static_cast<std::uint32_t>(s_->range_attrs.empty() ? 1 : s_->range_attrs.size());
      q.sizeof_mem_range_attr = sizeof(u::drm_xe_mem_range_attr);
      return 0;
    }
    if (s_->range_attr_enospc > 0) {
      --s_->range_attr_enospc;
      return ENOSPC;
    }
    if (q.sizeof_mem_range_attr != sizeof(u::drm_xe_mem_range_attr)) return EINVAL;
    if (q.num_mem_ranges < s_->range_attrs.size()) return ENOSPC;
    std::memcpy(reinterpret_cast<void*>(q.vector_of_mem_attr), s_->range_attrs.data(),
                s_->range_attrs.size() * sizeof(u::drm_xe_mem_range_attr));
    q.num_mem_ranges = static_cast<std::uint32_t>(s_->range_attrs.size());
    return 0;
  }

  std::shared_ptr<FakeXeState> s_;
};

}  // namespace xesvm::xe::testing
