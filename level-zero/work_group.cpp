// Work groups as fibers (see work_group.hpp).
#include "level-zero/work_group.hpp"

#include <pthread.h>
#include <sys/mman.h>

#include <boost/context/fiber.hpp>
#include <boost/context/stack_context.hpp>
#include <cstdlib>
#include <new>

#if defined(__SANITIZE_ADDRESS__)
#define XESVM_ZE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define XESVM_ZE_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define XESVM_ZE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define XESVM_ZE_TSAN 1
#endif
#endif
#ifdef XESVM_ZE_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef XESVM_ZE_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace xesvm::ze {

namespace bc = boost::context;

namespace {

#ifdef XESVM_ZE_ASAN
constexpr std::size_t kItemStack = 1u << 20;  // instrumented frames are larger
#else
constexpr std::size_t kItemStack = 256u << 10;
#endif
constexpr std::size_t kGuard = 4096;

// Fiber stacks, mmap'd once (with a PROT_NONE guard page below each) and
// reused by every group: pages a fiber never touched cost nothing.
class StackPool {
 public:
  StackPool() = default;
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;
  ~StackPool() {
    for (void* p : free_) {
      unpoison(p, kItemStack + kGuard);
      munmap(p, kItemStack + kGuard);
    }
  }
  void* take() {
    if (!free_.empty()) {
      void* p = free_.back();
      free_.pop_back();
      return p;
    }
    void* p =
        mmap(nullptr, kItemStack + kGuard, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    mprotect(p, kGuard, PROT_NONE);
    return p;
  }
  void give(void* p) {
    // Only the entry frames at the top never returned.
    unpoison(static_cast<std::byte*>(p) + kGuard + kItemStack - kEntryFrames, kEntryFrames);
    free_.push_back(p);
  }

 private:
  // A finished fiber leaves AddressSanitizer's poison of the frames that
  // never returned (its entry) on its stack; memory that gets the stack's
  // addresses next (another fiber's frames, or a later mapping) must not
  // inherit it.
  static void unpoison([[maybe_unused]] void* p, [[maybe_unused]] std::size_t n) {
#ifdef XESVM_ZE_ASAN
    __asan_unpoison_memory_region(p, n);
#endif
  }
  static constexpr std::size_t kEntryFrames = 8u << 10;

  std::vector<void*> free_;
};

// Boost.Context's StackAllocator concept over a StackPool; reports the stack
// it handed out to *last (for the sanitizers' fiber annotations).
struct PooledStack {
  StackPool* pool;
  bc::stack_context* last;
  bc::stack_context allocate() {
    auto* base = static_cast<std::byte*>(pool->take());
    bc::stack_context s;
    s.size = kItemStack;
    s.sp = base + kGuard + kItemStack;
    *last = s;
    return s;
  }
  void deallocate(bc::stack_context& s) noexcept { pool->give(static_cast<std::byte*>(s.sp) - kItemStack - kGuard); }
};

}  // namespace

// One fiber per work item, and what switching between them needs.
struct WorkGroupRunner::Fibers {
  struct Item {
    bc::fiber fiber;  // empty once the item returned
    bc::fiber sched;  // inside the item: the scheduler to switch back to
    bc::stack_context stack;
    bool waiting = false;  // at a barrier
#ifdef XESVM_ZE_ASAN
    void* fake_stack = nullptr;
#endif
#ifdef XESVM_ZE_TSAN
    void* tsan_fiber = nullptr;
#endif
  };
  StackPool stacks;  // outlives the fibers below
  std::vector<Item> items;
#ifdef XESVM_ZE_ASAN
  const void* sched_bottom = nullptr;
  std::size_t sched_size = 0;
  void* sched_fake = nullptr;
#endif
#ifdef XESVM_ZE_TSAN
  void* sched_tsan = nullptr;
#endif

  // From the scheduler: runs item i until it waits at a barrier or returns.
  void resume(std::uint32_t i) {
    Item& it = items[i];
#ifdef XESVM_ZE_ASAN
    __sanitizer_start_switch_fiber(&sched_fake, static_cast<std::byte*>(it.stack.sp) - it.stack.size, it.stack.size);
#endif
#ifdef XESVM_ZE_TSAN
    __tsan_switch_to_fiber(it.tsan_fiber, 0);
#endif
    it.fiber = std::move(it.fiber).resume();
#ifdef XESVM_ZE_ASAN
    __sanitizer_finish_switch_fiber(sched_fake, nullptr, nullptr);
#endif
  }

  // From inside item i: switches back to the scheduler (for good if done).
  void yield(std::uint32_t i, bool done) {
    Item& it = items[i];
#ifdef XESVM_ZE_ASAN
    __sanitizer_start_switch_fiber(done ? nullptr : &it.fake_stack, sched_bottom, sched_size);
#endif
#ifdef XESVM_ZE_TSAN
    __tsan_switch_to_fiber(sched_tsan, 0);
#endif
    if (done) return;  // the caller returns it.sched, which switches
    it.sched = std::move(it.sched).resume();
    entered(i);
  }

  // First thing on item i's stack after a switch to it.
  void entered([[maybe_unused]] std::uint32_t i) {
#ifdef XESVM_ZE_ASAN
    __sanitizer_finish_switch_fiber(items[i].fake_stack, &sched_bottom, &sched_size);
#endif
  }
};

void WorkGroupRunner::LocalFree::operator()(std::byte* p) const { std::free(p); }

WorkGroupRunner::WorkGroupRunner() : local_(static_cast<std::byte*>(std::aligned_alloc(64, kMaxLocalMemory))) {
  if (!local_) throw std::bad_alloc();
}

WorkGroupRunner::~WorkGroupRunner() = default;

WorkGroupRunner& WorkGroupRunner::current() {
  thread_local WorkGroupRunner runner;
  return runner;
}

std::string WorkGroupRunner::run(std::uint32_t n, bool barriers, const std::function<void(std::uint32_t)>& item) {
  in_run_ = true;
  barrier_broken_ = false;
  error_.clear();
  struct Reset {
    WorkGroupRunner& r;
    ~Reset() {
      r.in_run_ = false;
      r.current_ = UINT32_MAX;
    }
  } reset{*this};
  if (!barriers) {
    for (std::uint32_t i = 0; i < n; ++i) {
      current_ = i;
      item(i);
    }
    return error_;
  }
  if (!fibers_) fibers_ = std::make_unique<Fibers>();
  Fibers& f = *fibers_;
  f.items.clear();
  f.items.resize(n);
#ifdef XESVM_ZE_TSAN
  f.sched_tsan = __tsan_get_current_fiber();
#endif
  for (std::uint32_t i = 0; i < n; ++i) {
    Fibers::Item& it = f.items[i];
#ifdef XESVM_ZE_TSAN
    it.tsan_fiber = __tsan_create_fiber(0);
#endif
    it.fiber = bc::fiber(std::allocator_arg, PooledStack{&f.stacks, &it.stack},
                         [this, &f, &item, i](bc::fiber&& sched) -> bc::fiber {
                           f.items[i].sched = std::move(sched);
                           f.entered(i);
                           item(i);
                           f.items[i].waiting = false;
                           f.yield(i, true);
                           return std::move(f.items[i].sched);
                         });
  }
  // Rounds: every item still running runs to its next barrier or its end.
  for (;;) {
    bool any_waiting = false, any_returned = false;
    for (std::uint32_t i = 0; i < n; ++i) {
      if (!f.items[i].fiber) continue;
      current_ = i;
      f.items[i].waiting = false;
      f.resume(i);
      if (f.items[i].fiber) {
        any_waiting = true;
      } else {
        any_returned = true;
      }
    }
    if (!any_waiting) break;
    if (any_returned && !barrier_broken_) {
      // Some items returned while others wait: the barrier can never be
      // complete. Let the waiting items run on to their end.
      barrier_broken_ = true;
      if (error_.empty()) error_ = "the work items of a group diverged: some returned while others waited at a barrier";
    }
  }
#ifdef XESVM_ZE_TSAN
  for (auto& it : f.items) __tsan_destroy_fiber(it.tsan_fiber);
#endif
  f.items.clear();
  return error_;
}

void WorkGroupRunner::barrier() {
  if (!in_run_ || current_ == UINT32_MAX) return;
  if (!fibers_ || fibers_->items.empty()) {
    if (error_.empty()) error_ = "a kernel called a barrier but does not declare XESVM_ZE_KERNEL_BARRIERS";
    barrier_broken_ = true;
    return;
  }
  if (barrier_broken_) return;
  const std::uint32_t self = current_;
  fibers_->items[self].waiting = true;
  fibers_->yield(self, false);
  current_ = self;
}

std::pair<std::uintptr_t, std::uintptr_t> WorkGroupRunner::item_stack() const {
  if (fibers_ && current_ < fibers_->items.size()) {
    const bc::stack_context& s = fibers_->items[current_].stack;
    const auto top = reinterpret_cast<std::uintptr_t>(s.sp);
    return {top - s.size, top};
  }
  // The thread's own stack, read once per thread.
  thread_local const std::pair<std::uintptr_t, std::uintptr_t> thread_stack = [] {
    std::pair<std::uintptr_t, std::uintptr_t> r{0, 0};
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
      void* lo = nullptr;
      std::size_t size = 0;
      if (pthread_attr_getstack(&attr, &lo, &size) == 0) {
        r = {reinterpret_cast<std::uintptr_t>(lo), reinterpret_cast<std::uintptr_t>(lo) + size};
      }
      pthread_attr_destroy(&attr);
    }
    return r;
  }();
  return thread_stack;
}

void group_barrier(void* ctx) { static_cast<WorkGroupRunner*>(ctx)->barrier(); }

}  // namespace xesvm::ze
