// Device copy and fill on an execution engine; Completion.
#include "runtime/device_copy.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <future>
#include <sstream>
#include <vector>

namespace xesvm {
namespace {

std::string hex(std::uint64_t v) {
  std::ostringstream os;
  os << "0x" << std::hex << v;
  return os.str();
}

// The engine runs the kernel on a thread of its own; the future carries the
// kernel's exception.
class EngineWork final : public DeviceWork {
 public:
  explicit EngineWork(std::future<void> f) : f_(std::move(f)) {}
  ~EngineWork() override {
    if (f_.valid()) f_.wait();
  }
  bool done() override { return !f_.valid() || f_.wait_for(std::chrono::seconds(0)) == std::future_status::ready; }
  void wait(std::chrono::nanoseconds timeout) override {
    if (f_.valid()) {
      if (f_.wait_for(timeout) != std::future_status::ready) {
        throw Error(Error::Code::kBusy, "device work not complete after " +
                                            std::to_string(timeout.count() / 1'000'000) + " ms; the work goes on");
      }
      f_.get();  // rethrows the kernel's Error; the future is spent after this
    }
  }

 private:
  std::future<void> f_;
};

constexpr std::uint64_t kChunk = kPageSize;

}  // namespace

std::unique_ptr<DeviceWork> engine_copy(Engine& engine, std::uint64_t dst, std::uint64_t src, std::uint64_t n) {
  const std::uint64_t items = (n + kChunk - 1) / kChunk;
  auto f = std::async(std::launch::async, [&engine, dst, src, n, items] {
    engine.launch(items, [=](const WorkItem& wi, DeviceAccessor& acc) {
      const std::uint64_t off = wi.global_id * kChunk;
      const std::uint64_t len = std::min(kChunk, n - off);
      std::byte buf[kChunk];
      acc.read(src + off, buf, len);
      acc.write(dst + off, buf, len);
    });
  });
  return std::make_unique<EngineWork>(std::move(f));
}

std::unique_ptr<DeviceWork> engine_fill(Engine& engine, std::uint64_t dst, std::uint32_t pattern, unsigned pattern_size,
                                        std::uint64_t n) {
  const std::uint64_t items = (n + kChunk - 1) / kChunk;
  auto f = std::async(std::launch::async, [&engine, dst, pattern, pattern_size, n, items] {
    std::uint8_t p[4];
    std::memcpy(p, &pattern, 4);
    std::byte chunk[kChunk];
    // kChunk is a multiple of every pattern size: each chunk starts at phase 0.
    for (std::uint64_t i = 0; i < kChunk; ++i) chunk[i] = static_cast<std::byte>(p[i % pattern_size]);
    engine.launch(items, [&](const WorkItem& wi, DeviceAccessor& acc) {
      const std::uint64_t off = wi.global_id * kChunk;
      acc.write(dst + off, chunk, std::min(kChunk, n - off));
    });
  });
  return std::make_unique<EngineWork>(std::move(f));
}

void check_cpu_mapped(std::string_view what, std::uint64_t start, std::uint64_t n) {
  const std::uint64_t lo = start & ~(std::uint64_t(kPageSize) - 1);
  const std::uint64_t hi = (start + n + kPageSize - 1) & ~(std::uint64_t(kPageSize) - 1);
  if (::msync(reinterpret_cast<void*>(lo), hi - lo, MS_ASYNC) == 0) return;
  // Find the first unmapped page: halve the span that fails.
  std::uint64_t a = lo, b = hi;
  while (b - a > kPageSize) {
    std::uint64_t mid = a + ((b - a) / 2 & ~(std::uint64_t(kPageSize) - 1));
    if (::msync(reinterpret_cast<void*>(a), mid - a, MS_ASYNC) != 0)
      b = mid;
    else
      a = mid;
  }
  throw Error(Error::Code::kInvalidArgument, std::string(what) + ": [" + hex(start) + ", " + hex(start + n) +
                                                 ") is not mapped by the CPU: the page at " + hex(a) +
                                                 " has no mapping; expected SVM memory (alloc_shared or a mirror)");
}

// --- Completion (include/xesvm/xesvm.hpp) --------------------------------------------

Completion::Completion() noexcept = default;
Completion::Completion(std::unique_ptr<DeviceWork> work) noexcept : work_(std::move(work)) {}
Completion::Completion(Completion&&) noexcept = default;
Completion& Completion::operator=(Completion&& o) noexcept {
  if (this != &o) {
    if (work_ && !waited_) {
      try {
        work_->wait(kDefaultTimeout);
      } catch (const Error&) {
      }
    }
    work_ = std::move(o.work_);
    waited_ = o.waited_;
    error_ = std::move(o.error_);
  }
  return *this;
}
Completion::~Completion() {
  if (work_ && !waited_ && !error_) {
    try {
      work_->wait(kDefaultTimeout);
    } catch (const Error&) {  // dropped: wait() reports errors
    }
  }
}

bool Completion::ready() const { return !work_ || waited_ || error_ || work_->done(); }

void Completion::wait(std::chrono::nanoseconds timeout) {
  if (error_) throw *error_;
  if (!work_ || waited_) return;
  try {
    work_->wait(timeout);
  } catch (const Error& e) {
    if (e.code() == Error::Code::kBusy) throw;  // still running: wait again
    error_ = std::make_shared<const Error>(e);
    throw;
  }
  waited_ = true;
}

}  // namespace xesvm
