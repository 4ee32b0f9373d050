// XeCopyEngine: device copy and fill as batch buffers on an Xe exec queue.
#include "runtime/backends/xe/xe_copy_engine.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <utility>

#include "runtime/backends/xe/xe_uapi.hpp"

namespace xesvm::xe {
namespace {

// Xe2 encodings (REFERENCE.md Part E.2): client 2 (blitter), opcode in
// bits 28:22, dword length - 2 in bits 7:0; linear byte mode (copy type 0,
// mode 0).
constexpr std::uint32_t kMemCopy = (2u << 29) | (0x5au << 22) | 8u;  // 10 dwords
constexpr std::uint32_t kMemSet = (2u << 29) | (0x5bu << 22) | 5u;   // 7 dwords
constexpr std::uint32_t kStoreDataImm = (0x20u << 23) | 2u;          // 4 dwords, PPGTT
constexpr std::uint32_t kBatchBufferEnd = 0x0au << 23;
// MI_FLUSH_DW with the immediate-dword length (4 dwords) and no post-sync
// operation, as the Xe driver's emit_flush_dw() writes it
// (xe_mi_commands.h: __MI_INSTR(0x26) | MI_FLUSH_IMM_DW).
constexpr std::uint32_t kFlushDw = (0x26u << 23) | 2u;

std::string hex(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string span_text(std::uint64_t start, std::uint64_t n) { return "[" + hex(start) + ", " + hex(start + n) + ")"; }

std::uint32_t lo(std::uint64_t v) { return static_cast<std::uint32_t>(v); }
std::uint32_t hi(std::uint64_t v) { return static_cast<std::uint32_t>(v >> 32); }

const char* class_name(std::uint16_t c) {
  switch (c) {
    case uapi::kEngineClassRender:
      return "render";
    case uapi::kEngineClassCopy:
      return "copy";
    case uapi::kEngineClassCompute:
      return "compute";
  }
  return "engine";
}

}  // namespace

// --- BatchBuilder ---------------------------------------------------------------

void BatchBuilder::rows(std::uint32_t dw0, std::uint64_t dst, std::uint64_t src, std::uint8_t value, std::uint64_t n) {
  // One command per row of at most kMaxRow bytes (height 1: linear mode is
  // one-dimensional; the software device also executes only the first row
  // of a taller command, see /work/coord/kernel-requests.md).
  while (n != 0) {
    const std::uint64_t width = std::min(n, kMaxRow);
    const std::uint64_t height = 1;
    const std::uint64_t bytes = width * height;
    dw_.push_back(dw0);
    dw_.push_back(lo(width - 1));
    dw_.push_back(lo(height - 1));
    if (dw0 == kMemCopy) {
      dw_.push_back(lo(width - 1));  // source pitch - 1
      dw_.push_back(lo(width - 1));  // destination pitch - 1
      dw_.push_back(lo(src));
      dw_.push_back(hi(src));
      dw_.push_back(lo(dst));
      dw_.push_back(hi(dst));
      dw_.push_back(0);  // MOCS: default
      src += bytes;
    } else {
      dw_.push_back(lo(width - 1));  // pitch - 1
      dw_.push_back(lo(dst));
      dw_.push_back(hi(dst));
      dw_.push_back(static_cast<std::uint32_t>(value) << 24);  // fill byte, MOCS 0
    }
    dst += bytes;
    n -= bytes;
  }
}

void BatchBuilder::mem_copy(std::uint64_t dst, std::uint64_t src, std::uint64_t n) { rows(kMemCopy, dst, src, 0, n); }

void BatchBuilder::mem_set(std::uint64_t dst, std::uint8_t value, std::uint64_t n) { rows(kMemSet, dst, 0, value, n); }

void BatchBuilder::store_dword(std::uint64_t addr, std::uint32_t value) {
  dw_.push_back(kStoreDataImm);
  dw_.push_back(lo(addr));
  dw_.push_back(hi(addr));
  dw_.push_back(value);
}

void BatchBuilder::flush_dw() {
  dw_.push_back(kFlushDw);
  dw_.push_back(0);  // address lo, hi and data: unused without a post-sync operation
  dw_.push_back(0);
  dw_.push_back(0);
}

void BatchBuilder::end() { dw_.push_back(kBatchBufferEnd); }

// --- Work -----------------------------------------------------------------------

class XeCopyEngine::Work final : public DeviceWork {
 public:
  Work(XeCopyEngine& e, Slot slot, std::uint64_t seq, std::uint32_t queue, std::string what)
      : e_(e), slot_(slot), seq_(seq), queue_(queue), what_(std::move(what)) {}
  ~Work() override {
    if (state_ == State::kPending) {
      int err = e_.wait_fence(fence_addr(), seq_, queue_, e_.options_.fence_timeout_ns);
      if (err == ETIME || err == ETIMEDOUT) return;  // the device may still write the slot: never reuse it
    }
    e_.give_slot(slot_);
  }

  bool done() override {
    if (state_ != State::kPending) return true;
    if (fence_value() >= seq_) {
      state_ = State::kDone;
      return true;
    }
    // A zero-timeout wait on the queue says whether it was banned.
    int err = e_.wait_fence(fence_addr(), seq_, queue_, 0);
    if (err == 0) state_ = State::kDone;
    if (err == EIO) failed(err);
    return state_ != State::kPending;
  }

  void wait(std::chrono::nanoseconds timeout) override {
    if (state_ == State::kPending) {
      int err = e_.wait_fence(fence_addr(), seq_, queue_, timeout.count());
      if (err == 0) {
        state_ = State::kDone;
      } else if (err == ETIME || err == ETIMEDOUT) {
        throw Error(Error::Code::kBusy, "xe: " + what_ + ": not complete after " +
                                            std::to_string(timeout.count() / 1'000'000) +
                                            " ms (DRM_IOCTL_XE_WAIT_USER_FENCE: ETIME); the work goes on");
      } else {
        failed(err);
      }
    }
    if (state_ == State::kFailed) throw error_;
  }

 private:
  enum class State { kPending, kDone, kFailed };
  std::uint64_t fence_addr() const { return slot_.base + kFenceOffset; }
  std::uint64_t fence_value() const {
    return std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(fence_addr()))
        .load(std::memory_order_acquire);
  }
  void failed(int err) {
    state_ = State::kFailed;
    if (err == EIO) {
      e_.on_banned(queue_);
      error_ = Error(Error::Code::kDeviceLost,
                     "xe: " + what_ +
                         ": the GPU faulted on an address it cannot resolve (no CPU mapping) and the exec queue "
                         "was banned (DRM_IOCTL_XE_WAIT_USER_FENCE: EIO); the device does not report which "
                         "address, the batch touched only the spans named");
    } else {
      error_ = ioctl_error(what_ + ": wait for the user fence", uapi::kIoctlWaitUserFence, err);
    }
  }

  XeCopyEngine& e_;
  Slot slot_;
  std::uint64_t seq_;
  std::uint32_t queue_;
  std::string what_;
  State state_ = State::kPending;
  Error error_{Error::Code::kBackend, ""};
};

// --- XeCopyEngine -----------------------------------------------------------------

XeCopyEngine::XeCopyEngine(XeIoctl& io, Options options) : io_(io), options_(std::move(options)) {
  const std::uint64_t most = options_.max_batch_bytes;
  if (most < 4096 || most > kMaxBytes || most % 4096 != 0) {
    throw Error(Error::Code::kInvalidArgument,
                "xe: device copy: the largest span of one batch (" + std::to_string(most) +
                    " bytes) must be a multiple of 4096 in [4096, " + std::to_string(kMaxBytes) + "]");
  }
  if (options_.engines.empty()) {
    throw Error(Error::Code::kUnsupported,
                "xe: device copy: the device lists no engine (DEVICE_QUERY ENGINES is empty)");
  }
  EngineId pick = options_.engines.front();
  for (const EngineId& e : options_.engines) {
    if (e.engine_class == uapi::kEngineClassCopy) {
      pick = e;
      break;
    }
  }
  engine_class_ = pick.engine_class;
  engine_instance_ = pick.engine_instance;
  gt_id_ = pick.gt_id;
  engine_name_ = std::string(class_name(engine_class_)) + " " + std::to_string(engine_instance_) + " on GT " +
                 std::to_string(gt_id_);
  std::lock_guard lk(mu_);
  create_queue();
}

XeCopyEngine::~XeCopyEngine() {
  std::lock_guard lk(mu_);
  auto destroy = [&](std::uint32_t q) {
    uapi::drm_xe_exec_queue_destroy d{};
    d.exec_queue_id = q;
    (void)io_.ioctl(uapi::kIoctlExecQueueDestroy, &d);
  };
  if (queue_ != 0) destroy(queue_);
  for (std::uint32_t q : dead_queues_) destroy(q);
  for (auto& [p, n] : regions_) ::munmap(p, n);
}

void XeCopyEngine::create_queue() {
  uapi::drm_xe_engine_class_instance inst{};
  inst.engine_class = engine_class_;
  inst.engine_instance = engine_instance_;
  inst.gt_id = gt_id_;
  uapi::drm_xe_exec_queue_create c{};
  c.width = 1;
  c.num_placements = 1;
  c.vm_id = options_.vm_id;
  c.instances = reinterpret_cast<std::uintptr_t>(&inst);
  if (int err = io_.ioctl(uapi::kIoctlExecQueueCreate, &c); err != 0) {
    throw ioctl_error("device copy: create an exec queue on " + engine_name_, uapi::kIoctlExecQueueCreate, err);
  }
  queue_ = c.exec_queue_id;
}

void XeCopyEngine::on_banned(std::uint32_t queue) {
  std::lock_guard lk(mu_);
  if (queue_ != queue) return;  // replaced already
  banned_.fetch_add(1, std::memory_order_relaxed);
  dead_queues_.push_back(queue_);
  queue_ = 0;  // the next submission creates a fresh queue
}

XeCopyEngine::Slot XeCopyEngine::take_slot() {
  std::lock_guard lk(mu_);
  if (free_slots_.empty()) {
    void* p = ::mmap(nullptr, kRegionSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      throw Error(Error::Code::kOutOfMemory,
                  "xe: device copy: mmap of a 2 MiB batch region failed: " + errno_text(errno));
    }
    regions_.emplace_back(p, kRegionSize);
    const auto base = reinterpret_cast<std::uint64_t>(p);
    if (options_.advise_system) (void)options_.advise_system(base, kRegionSize);
    for (std::uint64_t off = kRegionSize; off != 0; off -= kSlotSize)
      free_slots_.push_back(Slot{base + off - kSlotSize});
  }
  Slot s = free_slots_.back();
  free_slots_.pop_back();
  return s;
}

void XeCopyEngine::give_slot(Slot s) {
  std::lock_guard lk(mu_);
  free_slots_.push_back(s);
}

int XeCopyEngine::wait_fence(std::uint64_t fence_addr, std::uint64_t seq, std::uint32_t queue,
                             std::int64_t timeout_ns) {
  uapi::drm_xe_wait_user_fence w{};
  w.addr = fence_addr;
  w.op = uapi::kUfenceWaitOpGte;
  w.value = seq;
  w.mask = ~0ull;
  w.timeout = timeout_ns;
  w.exec_queue_id = queue;
  return io_.ioctl(uapi::kIoctlWaitUserFence, &w);
}

std::unique_ptr<DeviceWork> XeCopyEngine::submit(const std::vector<std::uint32_t>& dwords, Slot slot,
                                                 std::string what) {
  if (dwords.size() * 4 > kSeedOffset) {
    give_slot(slot);
    throw Error(Error::Code::kInvalidArgument, "xe: " + what + ": batch of " + std::to_string(dwords.size()) +
                                                   " dwords does not fit a 4 KiB batch slot");
  }
  std::memcpy(reinterpret_cast<void*>(slot.base), dwords.data(), dwords.size() * 4);
  auto* fence = reinterpret_cast<std::uint64_t*>(slot.base + kFenceOffset);
  std::atomic_ref<std::uint64_t>(*fence).store(0, std::memory_order_release);

  uapi::drm_xe_sync sync{};
  sync.type = uapi::kSyncTypeUserFence;
  sync.flags = uapi::kSyncFlagSignal;
  sync.addr = slot.base + kFenceOffset;
  uapi::drm_xe_exec ex{};
  ex.num_syncs = 1;
  ex.syncs = reinterpret_cast<std::uintptr_t>(&sync);
  ex.address = slot.base;
  ex.num_batch_buffer = 1;

  std::unique_lock lk(mu_);
  try {
    if (queue_ == 0) create_queue();
  } catch (...) {
    lk.unlock();
    give_slot(slot);
    throw;
  }
  const std::uint64_t seq = next_seq_ + 1;
  sync.timeline_value = seq;
  ex.exec_queue_id = queue_;
  if (int err = io_.ioctl(uapi::kIoctlExec, &ex); err != 0) {
    lk.unlock();
    give_slot(slot);
    throw ioctl_error(what + ": submit the batch", uapi::kIoctlExec, err);
  }
  next_seq_ = seq;
  const std::uint32_t queue = queue_;
  lk.unlock();
  submitted_.fetch_add(1, std::memory_order_relaxed);
  return std::make_unique<Work>(*this, slot, seq, queue, std::move(what));
}

// The batches of one operation, completed as one work: done when all are;
// wait() waits for each in order within the one timeout.
class XeCopyEngine::Batches final : public DeviceWork {
 public:
  explicit Batches(std::vector<std::unique_ptr<DeviceWork>> parts) : parts_(std::move(parts)) {}
  bool done() override {
    for (auto& p : parts_) {
      if (!p->done()) return false;
    }
    return true;
  }
  void wait(std::chrono::nanoseconds timeout) override {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (auto& p : parts_) {
      const auto left =
          std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - std::chrono::steady_clock::now());
      p->wait(std::max(left, std::chrono::nanoseconds(0)));
    }
  }

 private:
  std::vector<std::unique_ptr<DeviceWork>> parts_;
};

std::unique_ptr<DeviceWork> XeCopyEngine::in_batches(
    std::uint64_t n, const std::function<std::unique_ptr<DeviceWork>(std::uint64_t, std::uint64_t)>& part) {
  const std::uint64_t most = options_.max_batch_bytes;
  if (n <= most) return part(0, n);
  std::vector<std::unique_ptr<DeviceWork>> parts;  // waited for by their destructors if a submission throws
  for (std::uint64_t off = 0; off < n; off += most) parts.push_back(part(off, std::min(most, n - off)));
  return std::make_unique<Batches>(std::move(parts));
}

void XeCopyEngine::check_span(const std::string& what, std::uint64_t start, std::uint64_t n) const {
  const std::uint64_t end = options_.va_end;
  if (end != 0 && (start >= end || n > end - start)) {
    throw Error(Error::Code::kInvalidArgument,
                "xe: " + what + " " + span_text(start, n) + " leaves the mirrored GPU VA span " + span_text(0, end));
  }
}

std::unique_ptr<DeviceWork> XeCopyEngine::copy(std::uint64_t dst, std::uint64_t src, std::uint64_t n) {
  check_span("device copy: the source", src, n);
  check_span("device copy: the destination", dst, n);
  return in_batches(n, [&](std::uint64_t off, std::uint64_t len) { return copy_batch(dst + off, src + off, len); });
}

std::unique_ptr<DeviceWork> XeCopyEngine::fill(std::uint64_t dst, std::uint32_t pattern, unsigned pattern_size,
                                               std::uint64_t n) {
  check_span("device fill", dst, n);
  // Every batch starts a multiple of max_batch_bytes (4096 x k, so of the
  // pattern) after dst: at phase 0.
  return in_batches(
      n, [&](std::uint64_t off, std::uint64_t len) { return fill_batch(dst + off, pattern, pattern_size, len); });
}

std::unique_ptr<DeviceWork> XeCopyEngine::copy_batch(std::uint64_t dst, std::uint64_t src, std::uint64_t n) {
  BatchBuilder b;
  b.mem_copy(dst, src, n);
  b.end();
  return submit(b.dwords(), take_slot(), "device copy " + span_text(src, n) + " -> " + span_text(dst, n));
}

std::unique_ptr<DeviceWork> XeCopyEngine::fill_batch(std::uint64_t dst, std::uint32_t pattern, unsigned pattern_size,
                                                     std::uint64_t n) {
  std::uint8_t bytes[4];
  std::memcpy(bytes, &pattern, 4);
  bool uniform = true;
  for (unsigned i = 1; i < pattern_size; ++i) uniform = uniform && bytes[i] == bytes[0];
  const std::string what =
      "device fill " + span_text(dst, n) + " with a " + std::to_string(pattern_size) + "-byte pattern";
  Slot slot = take_slot();
  BatchBuilder b;
  if (uniform) {
    b.mem_set(dst, bytes[0], n);
  } else {
    // The seed: kSeedSize bytes of the pattern, phase 0 at dst (dst is a
    // multiple of pattern_size).
    auto* seed = reinterpret_cast<std::uint8_t*>(slot.base + kSeedOffset);
    for (std::uint64_t i = 0; i < kSeedSize; ++i) seed[i] = bytes[i % pattern_size];
    std::uint64_t filled = std::min<std::uint64_t>(n, kSeedSize);
    b.mem_copy(dst, slot.base + kSeedOffset, filled);
    while (filled < n) {
      const std::uint64_t chunk = std::min(filled, n - filled);
      b.flush_dw();  // the next copy reads what the last one wrote
      b.mem_copy(dst + filled, dst, chunk);
      filled += chunk;
    }
  }
  b.end();
  return submit(b.dwords(), slot, what);
}

std::unique_ptr<DeviceWork> XeCopyEngine::submit_raw(const std::vector<std::uint32_t>& dwords, std::string what) {
  return submit(dwords, take_slot(), std::move(what));
}

}  // namespace xesvm::xe
