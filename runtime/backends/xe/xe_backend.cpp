// The Xe backend: the policy face over the Xe SVM uAPI.
#include "runtime/backends/xe/xe_backend.hpp"

#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <utility>

#include "runtime/backends/xe/xe_uapi.hpp"

namespace xesvm::xe {
namespace {

static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
static_assert(sizeof(std::atomic<std::uint64_t>) == sizeof(std::uint64_t));

constexpr unsigned kRangeAttrRestarts = 16;

std::string hex(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string range_text(std::uint64_t start, std::uint64_t len) {
  return "[" + hex(start) + ", " + hex(start + len) + ")";
}

std::string bytes_text(std::uint64_t v) {
  if (v != 0 && v % (1ull << 30) == 0) return std::to_string(v >> 30) + " GiB";
  if (v != 0 && v % (1ull << 20) == 0) return std::to_string(v >> 20) + " MiB";
  return std::to_string(v) + " B";
}

template <class T>
T read_at(const std::vector<std::byte>& data, std::size_t offset) {
  T v{};
  if (offset + sizeof(T) <= data.size()) std::memcpy(&v, data.data() + offset, sizeof(T));
  return v;
}

std::uint64_t ptr_value(const void* p) { return reinterpret_cast<std::uintptr_t>(p); }

bool is_pvc(std::uint32_t device_id) {
  // Ponte Vecchio: 0x0BD0-0x0BDB, 0x0B69, 0x0B6E.
  return (device_id >= 0x0bd0 && device_id <= 0x0bdb) || device_id == 0x0b69 || device_id == 0x0b6e;
}

// MEM_REGIONS reports `used` only to CAP_PERFMON or CAP_SYS_ADMIN (else 0).
bool process_may_read_vram_used() {
  __user_cap_header_struct hdr{};
  hdr.version = _LINUX_CAPABILITY_VERSION_3;
  hdr.pid = 0;
  __user_cap_data_struct data[2]{};
  if (::syscall(SYS_capget, &hdr, data) != 0) return false;
  auto has = [&](int cap) { return (data[cap / 32].effective >> (cap % 32)) & 1u; };
  constexpr int kCapSysAdmin = 21, kCapPerfmon = 38;
  return has(kCapSysAdmin) || has(kCapPerfmon);
}

}  // namespace

std::uint16_t wb_pat_index_for_device(std::uint32_t device_id) {
  return is_pvc(device_id) ? kPatIndexWbPvc : kPatIndexWbXe2;
}

XeBackend::XeBackend(std::unique_ptr<XeIoctl> io, XeOptions options)
    : io_(std::move(io)), options_(std::move(options)) {
  if (!io_) throw Error(Error::Code::kInvalidArgument, "xe: no ioctl transport");
  try {
    open_sequence();
  } catch (...) {
    destroy_vm();
    throw;
  }
}

XeBackend::~XeBackend() {
  copier_.reset();  // its queues belong to the VM
  if (vm_created_) {
    try {
      wait();
    } catch (const Error&) {
      // Teardown goes on: VM_DESTROY stops the VM's bind queue.
    }
  }
  destroy_vm();
}

std::uint64_t XeBackend::fence_address() const noexcept { return ptr_value(&fence_); }

void XeBackend::open_sequence() {
  query_config();
  const std::string where = options_.node_path.empty() ? std::string("device") : options_.node_path;
  if ((config_.flags & uapi::kQueryConfigFlagHasCpuAddrMirror) == 0) {
    throw Error(Error::Code::kUnsupported,
                "xe: " + where +
                    ": refused: the kernel does not offer CPU address mirroring "
                    "(DRM_XE_QUERY_CONFIG_FLAG_HAS_CPU_ADDR_MIRROR is clear in the CONFIG query; "
                    "SVM needs Linux 6.15 or later with CONFIG_DRM_XE_GPUSVM on a GPU with "
                    "recoverable page faults)");
  }
  if (config_.va_bits < 32 || config_.va_bits > 57) {
    throw Error(Error::Code::kUnsupported, "xe: " + where + ": refused: the CONFIG query reports " +
                                               std::to_string(config_.va_bits) + " VA bits (expected 32..57)");
  }
  mirror_end_ = 1ull << config_.va_bits;
  pat_index_ = options_.pat_index == kPatIndexAuto ? wb_pat_index_for_device(config_.device_id) : options_.pat_index;

  can_read_used_ = process_may_read_vram_used();
  regions_ = query_mem_regions();
  for (const XeMemRegion& r : regions_) {
    if (r.mem_class == uapi::kMemRegionClassVram) {
      vram_instance_ = r.instance;
      break;
    }
  }

  uapi::drm_xe_vm_create create{};
  create.flags = uapi::kVmCreateFlagLrMode | uapi::kVmCreateFlagFaultMode;
  if (int err = io_->ioctl(uapi::kIoctlVmCreate, &create); err != 0) {
    if (err == EINVAL || err == EOPNOTSUPP || err == ENOTTY) {
      throw Error(Error::Code::kUnsupported, "xe: " + where +
                                                 ": refused: the kernel has no fault mode for this device "
                                                 "(DRM_IOCTL_XE_VM_CREATE with LR_MODE | FAULT_MODE failed: " +
                                                 errno_text(err) + "); SVM needs recoverable GPU page faults");
    }
    throw ioctl_error("open: create an LR_MODE | FAULT_MODE VM", uapi::kIoctlVmCreate, err);
  }
  vm_id_ = create.vm_id;
  vm_created_ = true;

  std::uint64_t seq = submit_bind(uapi::kVmBindOpMap, uapi::kVmBindFlagCpuAddrMirror, 0, mirror_end_, 0,
                                  "open: bind the CPU address mirror " + range_text(0, mirror_end_));
  wait_fence(seq, "open: bind the CPU address mirror");
  probe_madvise();
}

std::vector<std::byte> XeBackend::device_query(std::uint32_t query, std::string_view what) {
  // Two calls: size = 0 learns the size; the second fills exactly that size.
  // A size that changed in between (EINVAL) is retried once with the new size.
  for (int attempt = 0;; ++attempt) {
    uapi::drm_xe_device_query q{};
    q.query = query;
    if (int err = io_->ioctl(uapi::kIoctlDeviceQuery, &q); err != 0) {
      throw ioctl_error(std::string(what) + " (size)", uapi::kIoctlDeviceQuery, err);
    }
    std::vector<std::byte> data(q.size);
    if (q.size == 0) return data;
    // u64-aligned storage for the kernel to fill.
    std::vector<std::uint64_t> buf((q.size + 7) / 8, 0);
    q.data = ptr_value(buf.data());
    int err = io_->ioctl(uapi::kIoctlDeviceQuery, &q);
    if (err == EINVAL && attempt == 0) continue;
    if (err != 0) throw ioctl_error(what, uapi::kIoctlDeviceQuery, err);
    std::memcpy(data.data(), buf.data(), data.size());
    return data;
  }
}

void XeBackend::query_config() {
  std::vector<std::byte> data = device_query(uapi::kDeviceQueryConfig, "open: query the device config");
  auto num = read_at<std::uint32_t>(data, 0);
  auto info = [&](std::uint32_t index) -> std::uint64_t {
    if (index >= num) return 0;
    return read_at<std::uint64_t>(data, uapi::kQueryConfigInfoOffset + 8u * index);
  };
  const std::uint64_t rev_dev = info(uapi::kQueryConfigRevAndDeviceId);
  config_.device_id = static_cast<std::uint32_t>(rev_dev & 0xffff);
  config_.revision = static_cast<std::uint32_t>((rev_dev >> 16) & 0xff);
  config_.flags = info(uapi::kQueryConfigFlags);
  config_.min_alignment = info(uapi::kQueryConfigMinAlignment);
  config_.va_bits = static_cast<std::uint32_t>(info(uapi::kQueryConfigVaBits));
}

std::vector<XeMemRegion> XeBackend::parse_regions(const std::vector<std::byte>& data) const {
  std::vector<XeMemRegion> out;
  auto num = read_at<std::uint32_t>(data, 0);
  for (std::uint32_t i = 0; i < num; ++i) {
    std::size_t off = uapi::kQueryMemRegionsArrayOffset + i * sizeof(uapi::drm_xe_mem_region);
    if (off + sizeof(uapi::drm_xe_mem_region) > data.size()) break;
    auto r = read_at<uapi::drm_xe_mem_region>(data, off);
    out.push_back(XeMemRegion{r.mem_class, r.instance, r.min_page_size, r.total_size, r.used, r.cpu_visible_size});
  }
  return out;
}

std::vector<XeMemRegion> XeBackend::query_mem_regions() {
  return parse_regions(device_query(uapi::kDeviceQueryMemRegions, "query the memory regions"));
}

void XeBackend::probe_madvise() {
  // MADVISE and QUERY_MEM_RANGE_ATTRS arrived together (Linux 6.18). The
  // query's size call is read-only, so it is the probe: an unknown driver
  // ioctl answers EINVAL (drm_ioctl) or ENOTTY.
  uapi::drm_xe_vm_query_mem_range_attr q{};
  q.vm_id = vm_id_;
  q.start = 0;
  q.range = kPageSize;
  int err = io_->ioctl(uapi::kIoctlVmQueryMemRangeAttrs, &q);
  if (err == 0) {
    has_madvise_.store(true, std::memory_order_relaxed);
    madvise_probe_note_ = "yes";
  } else {
    madvise_probe_note_ = "no (DRM_IOCTL_XE_VM_QUERY_MEM_RANGE_ATTRS probe: " + errno_text(err) + ")";
  }
}

void XeBackend::destroy_vm() noexcept {
  if (!vm_created_) return;
  uapi::drm_xe_vm_destroy d{};
  d.vm_id = vm_id_;
  (void)io_->ioctl(uapi::kIoctlVmDestroy, &d);
  vm_created_ = false;
}

void XeBackend::check_range(std::string_view op, std::uint64_t start, std::size_t len) const {
  std::string why;
  if (len == 0) {
    why = "the length is zero";
  } else if (start % kPageSize != 0 || len % kPageSize != 0) {
    why = "start and length must be multiples of 4096";
  } else if (start >= mirror_end_ || len > mirror_end_ - start) {
    why = "the range leaves the mirrored GPU VA span " + range_text(0, mirror_end_);
  }
  if (!why.empty()) {
    throw Error(Error::Code::kInvalidArgument, "xe: " + std::string(op) + " " + range_text(start, len) + ": " + why);
  }
}

int XeBackend::try_submit_bind(std::uint32_t op, std::uint32_t flags, std::uint64_t addr, std::uint64_t range,
                               std::uint32_t region, std::uint64_t* seq_out) {
  uapi::drm_xe_sync sync{};
  sync.type = uapi::kSyncTypeUserFence;
  sync.flags = uapi::kSyncFlagSignal;
  sync.addr = fence_address();

  uapi::drm_xe_vm_bind bind{};
  bind.vm_id = vm_id_;
  bind.exec_queue_id = 0;
  bind.num_binds = 1;
  bind.bind.obj = 0;
  bind.bind.pat_index = pat_index_;
  bind.bind.cpu_addr_mirror_offset = 0;
  bind.bind.range = range;
  bind.bind.addr = addr;
  bind.bind.op = op;
  bind.bind.flags = flags;
  bind.bind.prefetch_mem_region_instance = region;
  bind.num_syncs = 1;
  bind.syncs = ptr_value(&sync);

  // One submitter at a time, so fence values reach the kernel's in-order
  // bind queue in increasing order. A failed submission consumes no value.
  std::lock_guard<std::mutex> lock(bind_mutex_);
  const std::uint64_t seq = next_seq_ + 1;
  sync.timeline_value = seq;
  if (int err = io_->ioctl(uapi::kIoctlVmBind, &bind); err != 0) return err;
  next_seq_ = seq;
  last_issued_.store(seq, std::memory_order_release);
  *seq_out = seq;
  return 0;
}

std::uint64_t XeBackend::submit_bind(std::uint32_t op, std::uint32_t flags, std::uint64_t addr, std::uint64_t range,
                                     std::uint32_t region, std::string_view what) {
  std::uint64_t seq = 0;
  if (int err = try_submit_bind(op, flags, addr, range, region, &seq); err != 0) {
    throw ioctl_error(what, uapi::kIoctlVmBind, err);
  }
  return seq;
}

void XeBackend::wait_fence(std::uint64_t value, std::string_view what) {
  if (value == 0 || fence_.load(std::memory_order_acquire) >= value) return;
  uapi::drm_xe_wait_user_fence w{};
  w.addr = fence_address();
  w.op = uapi::kUfenceWaitOpGte;
  w.flags = 0;
  w.value = value;
  w.mask = ~0ull;
  w.timeout = options_.fence_timeout_ns;
  w.exec_queue_id = 0;
  if (int err = io_->ioctl(uapi::kIoctlWaitUserFence, &w); err != 0) {
    throw ioctl_error(std::string(what) + ": wait for user fence value " + std::to_string(value),
                      uapi::kIoctlWaitUserFence, err);
  }
}

void XeBackend::mirror(std::uint64_t start, std::size_t len) {
  check_range("mirror", start, len);
  if (::msync(reinterpret_cast<void*>(start), len, MS_ASYNC) != 0) {
    throw Error(Error::Code::kInvalidArgument,
                "xe: mirror " + range_text(start, len) +
                    ": the CPU has no mapping for all of it (msync: " + errno_text(errno) + ")");
  }
  std::lock_guard<std::mutex> lock(mirrors_mutex_);
  const std::uint64_t end = start + len;
  auto it = mirrors_.lower_bound(start);
  bool overlap = (it != mirrors_.end() && it->first < end);
  if (!overlap && it != mirrors_.begin()) overlap = std::prev(it)->second > start;
  if (overlap) {
    throw Error(Error::Code::kInvalidArgument,
                "xe: mirror " + range_text(start, len) + ": overlaps a region mirrored before");
  }
  mirrors_.emplace(start, end);
}

void XeBackend::unmirror(std::uint64_t start, std::size_t len) {
  check_range("unmirror", start, len);
  const std::uint64_t end = start + len;
  {
    std::lock_guard<std::mutex> lock(mirrors_mutex_);
    auto it = mirrors_.upper_bound(start);
    if (it == mirrors_.begin() || std::prev(it)->second < end) {
      throw Error(Error::Code::kInvalidArgument,
                  "xe: unmirror " + range_text(start, len) + ": not inside one mirrored region");
    }
  }
  if (has_vram()) {
    std::uint64_t seq = submit_bind(uapi::kVmBindOpPrefetch, 0, start, len, 0,
                                    "unmirror " + range_text(start, len) + ": prefetch to system memory");
    wait_fence(seq, "unmirror");
  }
  std::lock_guard<std::mutex> lock(mirrors_mutex_);
  auto it = mirrors_.upper_bound(start);
  if (it == mirrors_.begin()) return;  // a concurrent unmirror took it
  --it;
  const std::uint64_t rs = it->first;
  const std::uint64_t re = it->second;
  if (re < end) return;
  mirrors_.erase(it);
  if (rs < start) mirrors_.emplace(rs, start);
  if (end < re) mirrors_.emplace(end, re);
}

int XeBackend::madvise_call(std::uint64_t start, std::uint64_t len, std::uint32_t type, std::uint32_t value,
                            std::string_view what) {
  uapi::drm_xe_madvise m{};
  m.start = start;
  m.range = len;
  m.vm_id = vm_id_;
  m.type = type;
  if (type == uapi::kMemRangeAttrPreferredLoc) {
    m.preferred_mem_loc.devmem_fd = value;
    m.preferred_mem_loc.migration_policy = uapi::kMigrateAllPages;
    m.preferred_mem_loc.region_instance = 0;
  } else {
    m.atomic.val = value;
  }
  int err = io_->ioctl(uapi::kIoctlMadvise, &m);
  if (err == ENOTTY) return err;
  if (err != 0) throw ioctl_error(what, uapi::kIoctlMadvise, err);
  return 0;
}

bool XeBackend::advise(std::uint64_t start, std::size_t len, const Advice& advice) {
  check_range("advise", start, len);
  if (!has_madvise() || advice.read_mostly) return false;
  const std::uint32_t loc =
      advice.preferred == Location::kSystem ? uapi::kPreferredLocDefaultSystem : uapi::kPreferredLocDefaultDevice;
  std::uint32_t atomic = uapi::kAtomicUndefined;
  if (advice.atomic) {
    atomic = advice.preferred == Location::kSystem ? uapi::kAtomicGlobal : uapi::kAtomicDevice;
  }
  const std::string r = range_text(start, len);
  if (madvise_call(start, len, uapi::kMemRangeAttrPreferredLoc, loc, "advise " + r + ": preferred location") ==
      ENOTTY) {
    has_madvise_.store(false, std::memory_order_relaxed);
    return false;
  }
  if (madvise_call(start, len, uapi::kMemRangeAttrAtomic, atomic, "advise " + r + ": atomic policy") == ENOTTY) {
    has_madvise_.store(false, std::memory_order_relaxed);
    return false;
  }
  return true;
}

std::uint64_t XeBackend::prefetch(std::uint64_t start, std::size_t len, Location where) {
  check_range("prefetch", start, len);
  const std::string r = range_text(start, len);
  std::uint32_t region = 0;
  std::string what;
  switch (where) {
    case Location::kDevice:
      region = has_vram() ? static_cast<std::uint32_t>(vram_instance_) : 0;
      what = "prefetch " + r + " to " +
             (has_vram() ? "VRAM instance " + std::to_string(region) : std::string("system memory (no VRAM)"));
      break;
    case Location::kSystem:
      region = 0;
      what = "prefetch " + r + " to system memory";
      break;
    case Location::kNone:
      if (!has_madvise()) {
        throw Error(
            Error::Code::kUnsupported,
            "xe: prefetch " + r + " to the advised location: the kernel has no MADVISE (" + madvise_probe_note_ + ")");
      }
      region = uapi::kConsultMemAdvisePrefLoc;
      what = "prefetch " + r + " to the advised location";
      break;
  }
  std::uint64_t seq = submit_bind(uapi::kVmBindOpPrefetch, 0, start, len, region, what);
  wait_fence(seq, what);
  if (!has_vram()) return 0;
  if (where == Location::kSystem) {
    prefetches_to_system_.fetch_add(1, std::memory_order_relaxed);
    bytes_to_system_.fetch_add(len, std::memory_order_relaxed);
  } else {
    prefetches_to_device_.fetch_add(1, std::memory_order_relaxed);
    bytes_to_device_.fetch_add(len, std::memory_order_relaxed);
  }
  return len;
}

EvictResult XeBackend::evict(std::uint64_t start, std::size_t len) {
  check_range("evict", start, len);
  EvictResult result;
  if (!has_vram()) return result;
  const std::string what = "evict " + range_text(start, len) + " (prefetch to system memory)";
  for (unsigned attempt = 0;; ++attempt) {
    std::uint64_t seq = 0;
    int err = try_submit_bind(uapi::kVmBindOpPrefetch, 0, start, len, 0, &seq);
    if (err == 0) {
      wait_fence(seq, what);
      result.pages_evicted = len / kPageSize;
      break;
    }
    if (err != EBUSY) throw ioctl_error(what, uapi::kIoctlVmBind, err);
    if (attempt >= options_.evict_busy_retries) {
      result.pages_skipped = len / kPageSize;
      break;
    }
    ++result.retries;
  }
  evictions_.fetch_add(1, std::memory_order_relaxed);
  pages_evicted_.fetch_add(result.pages_evicted, std::memory_order_relaxed);
  pages_evict_skipped_.fetch_add(result.pages_skipped, std::memory_order_relaxed);
  if (result.pages_evicted != 0) {
    prefetches_to_system_.fetch_add(1, std::memory_order_relaxed);
    bytes_to_system_.fetch_add(len, std::memory_order_relaxed);
  }
  return result;
}

Residency XeBackend::residency(std::uint64_t start, std::size_t len) {
  check_range("residency", start, len);
  Residency r;
  if (!has_vram()) {
    r.system_bytes = len;
    return r;
  }
  if (can_read_used_ && device_memory().used == 0) {
    r.system_bytes = len;  // no page of this device is in VRAM
    return r;
  }
  r.unknown_bytes = len;
  return r;
}

std::vector<XeCopyEngine::EngineId> XeBackend::query_engines() {
  std::vector<std::byte> data = device_query(uapi::kDeviceQueryEngines, "query the engines");
  std::vector<XeCopyEngine::EngineId> out;
  const auto num = read_at<std::uint32_t>(data, 0);
  constexpr std::size_t kEngineSize = 32;  // struct drm_xe_engine
  for (std::uint32_t i = 0; i < num; ++i) {
    const std::size_t off = 8 + i * kEngineSize;
    if (off + kEngineSize > data.size()) break;
    auto inst = read_at<uapi::drm_xe_engine_class_instance>(data, off);
    out.push_back(XeCopyEngine::EngineId{inst.engine_class, inst.engine_instance, inst.gt_id});
  }
  return out;
}

CopyFace* XeBackend::copier() {
  std::lock_guard lk(copier_mutex_);
  if (!copier_) {
    XeCopyEngine::Options o;
    o.vm_id = vm_id_;
    o.engines = query_engines();
    o.fence_timeout_ns = options_.fence_timeout_ns;
    o.va_end = mirror_end_;
    o.max_batch_bytes = options_.max_batch_bytes;
    o.advise_system = [this](std::uint64_t start, std::uint64_t len) {
      if (!has_madvise()) return false;
      Advice a;
      a.preferred = Location::kSystem;
      return advise(start, len, a);
    };
    copier_ = std::make_unique<XeCopyEngine>(*io_, std::move(o));
  }
  return copier_.get();
}

std::string XeBackend::launch_unsupported_reason() const {
  return "the xe backend runs no C++ kernels: its device executes batch buffers of GPU commands "
         "(MEM_COPY, MEM_SET, MI_STORE_DATA_IMM, MI_ATOMIC), and the runtime compiles no GPU code; "
         "use Runtime::copy() and Runtime::fill() for device work on xe";
}

DeviceMemoryUse XeBackend::device_memory() {
  DeviceMemoryUse use;
  for (const XeMemRegion& r : query_mem_regions()) {
    if (r.mem_class != uapi::kMemRegionClassVram) continue;
    use.total += r.total_size;
    use.used += r.used;
  }
  vram_total_.store(use.total, std::memory_order_relaxed);
  vram_used_.store(use.used, std::memory_order_relaxed);
  std::uint64_t hw = vram_high_water_.load(std::memory_order_relaxed);
  while (use.used > hw && !vram_high_water_.compare_exchange_weak(hw, use.used, std::memory_order_relaxed)) {
  }
  use.high_water = std::max(hw, use.used);
  return use;
}

void XeBackend::wait() { wait_fence(last_issued_.load(std::memory_order_acquire), "wait"); }

std::vector<XeRangeAttributes> XeBackend::range_attributes(std::uint64_t start, std::size_t len) {
  check_range("range attributes of", start, len);
  const std::string what = "query the memory attributes of " + range_text(start, len);
  if (!has_madvise()) {
    throw Error(
        Error::Code::kUnsupported,
        "xe: " + what + ": the kernel has no DRM_IOCTL_XE_VM_QUERY_MEM_RANGE_ATTRS (" + madvise_probe_note_ + ")");
  }
  for (unsigned attempt = 0; attempt < kRangeAttrRestarts; ++attempt) {
    uapi::drm_xe_vm_query_mem_range_attr q{};
    q.vm_id = vm_id_;
    q.start = start;
    q.range = len;
    if (int err = io_->ioctl(uapi::kIoctlVmQueryMemRangeAttrs, &q); err != 0) {
      throw ioctl_error(what + " (count)", uapi::kIoctlVmQueryMemRangeAttrs, err);
    }
    const std::uint32_t count = q.num_mem_ranges;
    const std::uint64_t elem = q.sizeof_mem_range_attr;
    if (count == 0) return {};
    if (elem == 0 || elem > (1u << 16)) {
      throw Error(Error::Code::kBackend,
                  "xe: " + what + ": the kernel reports an element size of " + std::to_string(elem) + " bytes");
    }
    std::vector<std::uint64_t> buf((count * elem + 7) / 8, 0);
    q.vector_of_mem_attr = ptr_value(buf.data());
    int err = io_->ioctl(uapi::kIoctlVmQueryMemRangeAttrs, &q);
    if (err == ENOSPC) continue;  // the ranges changed between the calls
    if (err != 0) throw ioctl_error(what, uapi::kIoctlVmQueryMemRangeAttrs, err);
    std::vector<XeRangeAttributes> out;
    const auto* base = reinterpret_cast<const std::byte*>(buf.data());
    const std::uint32_t filled = std::min(count, q.num_mem_ranges);
    for (std::uint32_t i = 0; i < filled; ++i) {
      uapi::drm_xe_mem_range_attr a{};
      std::memcpy(&a, base + i * elem, std::min<std::uint64_t>(elem, sizeof a));
      out.push_back(XeRangeAttributes{a.start, a.end, a.preferred_mem_loc.devmem_fd,
                                      a.preferred_mem_loc.migration_policy, a.atomic.val, a.pat_index.val});
    }
    return out;
  }
  throw Error(Error::Code::kBusy,
              "xe: " + what + ": the ranges kept changing (ENOSPC " + std::to_string(kRangeAttrRestarts) + " times)");
}

BackendInfo XeBackend::info() const {
  BackendInfo bi;
  bi.name = "xe";
  char dev[16];
  std::snprintf(dev, sizeof dev, "0x%04x", config_.device_id);
  bi.description = "Intel Xe kernel driver, SVM through CPU address mirroring (" +
                   (options_.node_path.empty() ? std::string("device") : options_.node_path) + ", device " + dev +
                   " rev " + std::to_string(config_.revision) + ")";
  auto& p = bi.properties;
  p.emplace_back("node", options_.node_path);
  p.emplace_back("device_id", dev);
  p.emplace_back("revision", std::to_string(config_.revision));
  p.emplace_back("va_bits", std::to_string(config_.va_bits));
  p.emplace_back("min_alignment", std::to_string(config_.min_alignment));
  p.emplace_back("vm_id", std::to_string(vm_id_));
  p.emplace_back("vm_flags", "LR_MODE | FAULT_MODE");
  p.emplace_back("mirror", range_text(0, mirror_end_));
  p.emplace_back("pat_index", std::to_string(pat_index_));
  std::string regions;
  for (const XeMemRegion& r : regions_) {
    if (!regions.empty()) regions += ", ";
    regions += (r.mem_class == uapi::kMemRegionClassVram ? "vram" : "sysmem");
    regions += std::to_string(r.instance) + " " + bytes_text(r.total_size);
  }
  p.emplace_back("memory_regions", regions);
  p.emplace_back("vram", has_vram() ? "instance " + std::to_string(vram_instance_) : std::string("none"));
  p.emplace_back("madvise", madvise_probe_note_);
  p.emplace_back("residency", !has_vram() ? "exact (no VRAM: all data in system memory)"
                              : can_read_used_
                                  ? "system when MEM_REGIONS reports no VRAM used, else unknown (no per-page query)"
                                  : "unknown (no per-page query; VRAM `used` needs CAP_PERFMON)");
  p.emplace_back("mechanism", "kernel (drm_gpusvm)");
  p.emplace_back("device_work", "copy/fill as MEM_COPY/MEM_SET batch buffers on an exec queue; no C++ kernels");
  return bi;
}

void XeBackend::add_stats(Stats& stats) const {
  stats.migrations_to_device += prefetches_to_device_.load(std::memory_order_relaxed);
  stats.bytes_to_device += bytes_to_device_.load(std::memory_order_relaxed);
  stats.migrations_to_system += prefetches_to_system_.load(std::memory_order_relaxed);
  stats.bytes_to_system += bytes_to_system_.load(std::memory_order_relaxed);
  stats.evictions += evictions_.load(std::memory_order_relaxed);
  stats.pages_evicted += pages_evicted_.load(std::memory_order_relaxed);
  stats.pages_evict_skipped += pages_evict_skipped_.load(std::memory_order_relaxed);
  stats.device_bytes_total = vram_total_.load(std::memory_order_relaxed);
  stats.device_bytes_in_use = vram_used_.load(std::memory_order_relaxed);
  stats.device_bytes_high_water = vram_high_water_.load(std::memory_order_relaxed);
}

// --- opening by path --------------------------------------------------------------

std::unique_ptr<Backend> open_xe_backend(std::string_view path_or_empty, std::string_view dri_dir, XeOptions options) {
  std::string path(path_or_empty);
  if (path.empty()) {
    Discovery d = discover_render_nodes(dri_dir);
    std::optional<std::string> found = d.first_xe();
    if (!found) throw Error(Error::Code::kUnsupported, "xe: no Xe render node: " + d.describe());
    path = *found;
  } else {
    RenderNodeProbe probe = probe_render_node(path);
    if (probe.driver != kXeDriverName) {
      throw Error(Error::Code::kUnsupported,
                  "xe: " + path + " is not an Xe render node: " +
                      (probe.driver.empty() ? probe.problem : "its DRM driver is \"" + probe.driver + "\""));
    }
  }
  int err = 0;
  DrmFd fd = DrmFd::open(path, &err);
  if (!fd.valid()) throw Error(Error::Code::kUnsupported, "xe: cannot open " + path + ": " + errno_text(err));
  options.node_path = path;
  return std::make_unique<XeBackend>(std::make_unique<DrmIoctl>(std::move(fd)), std::move(options));
}

std::unique_ptr<Backend> open_xe_backend(std::string_view path_or_empty) {
  return open_xe_backend(path_or_empty, "/dev/dri", XeOptions{});
}

}  // namespace xesvm::xe
