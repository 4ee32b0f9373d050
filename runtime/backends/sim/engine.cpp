#include "runtime/backends/sim/engine.hpp"

#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>

namespace xesvm::sim {
namespace {

constexpr std::uint64_t kPageMask = kPageSize - 1;

// The engine whose worker the current thread is (nullptr elsewhere).
thread_local const SimEngine* tl_worker_of = nullptr;

std::string hex(std::uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

const char* access_name(Access a) {
  switch (a) {
    case Access::kRead:
      return "read";
    case Access::kWrite:
      return "write";
    case Access::kAtomic:
      return "atomic";
  }
  return "unknown";
}

Error invalid(const std::string& what) { return Error(Error::Code::kInvalidArgument, what); }

// Moves n bytes between this process's address `remote` and `local` without
// dereferencing `remote`. Returns false when the transfer faults (EFAULT or
// a short transfer); throws Error(kBackend) for any other failure.
bool vm_transfer(pid_t pid, bool write, std::uint64_t remote, void* local, std::size_t n) {
  iovec l{local, n};
  iovec r{reinterpret_cast<void*>(remote), n};
  const ssize_t done = write ? ::process_vm_writev(pid, &l, 1, &r, 1, 0) : ::process_vm_readv(pid, &l, 1, &r, 1, 0);
  if (done == static_cast<ssize_t>(n)) return true;
  if (done >= 0 || errno == EFAULT) return false;
  throw Error(Error::Code::kBackend, std::string("GPU access to system memory at ") + hex(remote) + ": " +
                                         (write ? "process_vm_writev" : "process_vm_readv") + " failed: " +
                                         std::strerror(errno) + "; expected the process to be able to access itself");
}

}  // namespace

class SimEngine::Accessor final : public DeviceAccessor {
 public:
  explicit Accessor(SimEngine& engine) : e_(engine), pid_(::getpid()) {}
  Accessor(const Accessor&) = delete;
  Accessor& operator=(const Accessor&) = delete;

  void read(std::uint64_t src, void* dst, std::size_t n) override {
    check_range(src, n, "read");
    auto* out = static_cast<std::byte*>(dst);
    while (n != 0) {
      const std::size_t chunk = std::min<std::size_t>(n, kPageSize - (src & kPageMask));
      on_page(
          src, Access::kRead,
          [&](std::byte* p) {
            std::memcpy(out, p, chunk);
            dev_bytes_ += chunk;
          },
          [&](std::uint64_t gen) {
            if (!vm_transfer(pid_, false, src, out, chunk)) return Sys::kFault;
            if (e_.table_.generation() != gen) return Sys::kRetry;
            sys_bytes_ += chunk;
            ++sys_transfers_;
            return Sys::kDone;
          });
      src += chunk;
      out += chunk;
      n -= chunk;
    }
  }

  void write(std::uint64_t dst, const void* src, std::size_t n) override {
    check_range(dst, n, "write");
    const auto* in = static_cast<const std::byte*>(src);
    while (n != 0) {
      const std::size_t chunk = std::min<std::size_t>(n, kPageSize - (dst & kPageMask));
      on_page(
          dst, Access::kWrite,
          [&](std::byte* p) {
            std::memcpy(p, in, chunk);
            dev_bytes_ += chunk;
          },
          [&](std::uint64_t gen) {
            if (const Sys s = gated_write(gen, dst, in, chunk); s != Sys::kDone) return s;
            // Rewriting the same bytes is harmless: redo if a PTE was torn
            // down meanwhile, so the bytes reach the page's current home.
            if (e_.table_.generation() != gen) return Sys::kRetry;
            sys_bytes_ += chunk;
            ++sys_transfers_;
            return Sys::kDone;
          });
      dst += chunk;
      in += chunk;
      n -= chunk;
    }
  }

  std::uint32_t atomic_add(std::uint64_t addr, std::uint32_t v) override {
    return atomic_add_impl<std::uint32_t>(addr, v);
  }
  std::uint64_t atomic_add64(std::uint64_t addr, std::uint64_t v) override {
    return atomic_add_impl<std::uint64_t>(addr, v);
  }

  void with_page(std::uint64_t addr, std::size_t n, Access access,
                 const std::function<void(std::span<std::byte>)>& fn) override {
    check_range(addr, n, "with_page");
    if ((addr & kPageMask) + n > kPageSize) {
      throw invalid("with_page: [" + hex(addr) + ", +" + std::to_string(n) +
                    ") crosses a page boundary; expected a range inside one 4 KiB page");
    }
    if (n == 0) {
      fn(std::span<std::byte>());
      return;
    }
    on_page(
        addr, access,
        [&](std::byte* p) {
          fn(std::span<std::byte>(p, n));
          dev_bytes_ += n;
        },
        [&](std::uint64_t gen) {
          std::unique_lock<std::mutex> stripe;
          if (access == Access::kAtomic) stripe = std::unique_lock(e_.atomic_stripes_[stripe_of(addr)]);
          if (!vm_transfer(pid_, false, addr, bounce_.data(), n)) return Sys::kFault;
          if (e_.table_.generation() != gen) return Sys::kRetry;
          fn(std::span<std::byte>(bounce_.data(), n));
          if (access != Access::kRead) {
            if (const Sys s = gated_write(gen, addr, bounce_.data(), n); s != Sys::kDone) return s;
            sys_bytes_ += n;
            ++sys_transfers_;
          }
          sys_bytes_ += n;
          ++sys_transfers_;
          return Sys::kDone;
        });
  }

  // Publishes this worker's counters and cost-model charges.
  void flush() {
    e_.device_bytes_.fetch_add(dev_bytes_, std::memory_order_relaxed);
    e_.system_bytes_.fetch_add(sys_bytes_, std::memory_order_relaxed);
    e_.faults_.fetch_add(faults_, std::memory_order_relaxed);
    e_.cost_.charge_access(dev_bytes_, sys_transfers_ != 0 ? sys_bytes_ : 0, sys_transfers_);
    dev_bytes_ = sys_bytes_ = sys_transfers_ = faults_ = 0;
  }

 private:
  enum class Sys { kDone, kRetry, kFault };
  enum class Next { kDone, kSystem, kFault };

  static std::size_t stripe_of(std::uint64_t addr) {
    return static_cast<std::size_t>((addr >> kPageShift) % kAtomicStripes);
  }

  static void check_range(std::uint64_t addr, std::size_t n, const char* what) {
    if (n != 0 && addr + n - 1 < addr) {
      throw invalid(std::string(what) + ": [" + hex(addr) + ", +" + std::to_string(n) +
                    ") wraps around the address space; expected a valid GPU address range");
    }
  }

  // Runs one access to the page holding addr: dev(frame_ptr_at_addr) under
  // the table's shared lock for a device page, sys(generation) without locks
  // for a system page; faults and retries as the header describes.
  template <class DevFn, class SysFn>
  void on_page(std::uint64_t addr, Access access, DevFn&& dev, SysFn&& sys) {
    const bool writes = access != Access::kRead;
    const std::uint64_t page = addr & ~kPageMask;
    for (unsigned attempt = 0;; ++attempt) {
      if (attempt == kMaxPageRetries) {
        throw Error(Error::Code::kBusy, "GPU " + std::string(access_name(access)) + " at " + hex(addr) +
                                            " still not possible after " + std::to_string(kMaxPageRetries) +
                                            " retries of page " + hex(page) +
                                            "; expected the fault handler to map the page or fail the fault");
      }
      std::uint64_t gen = 0;
      const Next next = e_.table_.with_access(page, [&](const Pte& pte) {
        if (writes && !pte.writable) return Next::kFault;
        switch (pte.kind) {
          case Pte::Kind::kDevice:
            dev(e_.pool_.data(pte.frame) + (addr - page));
            return Next::kDone;
          case Pte::Kind::kSystem:
            gen = e_.table_.generation();
            return Next::kSystem;
          case Pte::Kind::kNone:
            break;
        }
        return Next::kFault;
      });
      if (next == Next::kDone) return;
      if (next == Next::kSystem) {
        const Sys r = sys(gen);
        if (r == Sys::kDone) return;
        if (r == Sys::kRetry) continue;
      }
      fault(addr, page, access);
    }
  }

  void fault(std::uint64_t addr, std::uint64_t page, Access access) {
    ++faults_;
    e_.cost_.charge_faults(1);
    GpuFaultHandler* handler = e_.handler_.load(std::memory_order_acquire);
    if (handler == nullptr) {
      throw Error(Error::Code::kDeviceLost,
                  "GPU fault at " + hex(addr) + " (" + access_name(access) +
                      "): address is not SVM memory (no GPU mapping and no fault handler is set)");
    }
    if (!handler->handle_gpu_fault(page, access)) {
      throw Error(Error::Code::kDeviceLost,
                  "GPU fault at " + hex(addr) + " (" + access_name(access) +
                      "): address is not SVM memory (the fault handler could not resolve it)");
    }
  }

  template <class T>
  T atomic_add_impl(std::uint64_t addr, T v) {
    if (addr % sizeof(T) != 0) {
      throw invalid("atomic_add: address " + hex(addr) + " is not aligned to " + std::to_string(sizeof(T)) +
                    " bytes; expected a naturally aligned word");
    }
    T result{};
    on_page(
        addr, Access::kAtomic,
        [&](std::byte* p) {
          result = std::atomic_ref<T>(*reinterpret_cast<T*>(p)).fetch_add(v, std::memory_order_seq_cst);
          dev_bytes_ += sizeof(T);
        },
        [&](std::uint64_t gen) {
          std::lock_guard stripe(e_.atomic_stripes_[stripe_of(addr)]);
          T old{};
          if (!vm_transfer(pid_, false, addr, &old, sizeof old)) return Sys::kFault;
          if (e_.table_.generation() != gen) return Sys::kRetry;
          T updated = static_cast<T>(old + v);
          if (const Sys s = gated_write(gen, addr, &updated, sizeof updated); s != Sys::kDone) return s;
          result = old;
          sys_bytes_ += sizeof(T);
          ++sys_transfers_;
          return Sys::kDone;
        });
    return result;
  }

  // A write to system memory through the write gate: no write lands once
  // the reader has seen a CPU mapping change that zapped the PTE.
  Sys gated_write(std::uint64_t gen, std::uint64_t addr, const void* src, std::size_t n) {
    SystemWriteGate& gate = e_.table_.write_gate();
    gate.enter();
    if (e_.table_.generation() != gen) {
      gate.exit();
      return Sys::kRetry;
    }
    const bool ok = vm_transfer(pid_, true, addr, const_cast<void*>(src), n);
    gate.exit();
    return ok ? Sys::kDone : Sys::kFault;
  }

  SimEngine& e_;
  const pid_t pid_;
  std::uint64_t dev_bytes_ = 0;
  std::uint64_t sys_bytes_ = 0;
  std::uint64_t sys_transfers_ = 0;
  std::uint64_t faults_ = 0;
  std::array<std::byte, kPageSize> bounce_{};
};

SimEngine::SimEngine(GpuPageTable& table, FramePool& pool, CostModel& cost, unsigned workers)
    : table_(table), pool_(pool), cost_(cost), workers_(workers) {
  if (workers == 0) {
    throw invalid("SimEngine: 0 workers; expected at least one worker thread");
  }
  work_cvs_ = std::make_unique<std::condition_variable[]>(workers);
  threads_.reserve(workers);
  try {
    for (unsigned w = 0; w < workers; ++w) threads_.emplace_back([this, w] { worker_main(w); });
  } catch (...) {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    for (unsigned w = 0; w < workers_; ++w) work_cvs_[w].notify_all();
    threads_.clear();
    throw;
  }
}

SimEngine::~SimEngine() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  for (unsigned w = 0; w < workers_; ++w) work_cvs_[w].notify_all();
  threads_.clear();  // joins
}

void SimEngine::set_fault_handler(GpuFaultHandler* handler) { handler_.store(handler, std::memory_order_release); }

void SimEngine::launch(std::uint64_t global_size, const Kernel& kernel) {
  if (!kernel) {
    throw invalid("SimEngine::launch: the kernel is empty; expected a callable kernel");
  }
  if (tl_worker_of == this) {
    throw invalid(
        "SimEngine::launch: called from inside a kernel of the same engine; expected a launch "
        "from outside the engine's workers");
  }
  if (global_size == 0) return;
  std::lock_guard serial(launch_mu_);
  std::exception_ptr error;
  {
    std::unique_lock lk(mu_);
    kernel_ = &kernel;
    global_size_ = global_size;
    // Worker w's share is empty when w >= global_size (see worker_main()).
    active_ = static_cast<unsigned>(std::min<std::uint64_t>(workers_, global_size));
    running_ = active_;
    error_ = nullptr;
    abort_.store(false, std::memory_order_relaxed);
    ++epoch_;
    for (unsigned w = 0; w < active_; ++w) work_cvs_[w].notify_one();
    done_cv_.wait(lk, [&] { return running_ == 0; });
    kernel_ = nullptr;
    error = std::exchange(error_, nullptr);
  }
  if (error) std::rethrow_exception(error);
}

void SimEngine::worker_main(unsigned w) {
  tl_worker_of = this;
  Accessor accessor(*this);
  std::uint64_t seen = 0;
  for (;;) {
    const Kernel* kernel = nullptr;
    std::uint64_t n = 0;
    {
      std::unique_lock lk(mu_);
      // A worker outside the epoch's active set sleeps through it.
      work_cvs_[w].wait(lk, [&] { return stop_ || (epoch_ != seen && w < active_); });
      if (stop_) return;
      seen = epoch_;
      kernel = kernel_;
      n = global_size_;
    }
    const std::uint64_t base = n / workers_;
    const std::uint64_t rem = n % workers_;
    const std::uint64_t begin = w * base + std::min<std::uint64_t>(w, rem);
    const std::uint64_t end = begin + base + (w < rem ? 1 : 0);
    try {
      for (std::uint64_t gid = begin; gid < end && !abort_.load(std::memory_order_relaxed); ++gid) {
        (*kernel)(WorkItem{gid, n, w}, accessor);
      }
    } catch (...) {
      std::lock_guard lk(mu_);
      if (!error_) error_ = std::current_exception();
      abort_.store(true, std::memory_order_relaxed);
    }
    accessor.flush();
    {
      std::lock_guard lk(mu_);
      if (--running_ == 0) done_cv_.notify_all();
    }
  }
}

}  // namespace xesvm::sim
