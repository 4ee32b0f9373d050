// Events, fences, executors and command lists (see driver.hpp).
#include <chrono>

#include "level-zero/driver.hpp"

namespace xesvm::ze {

namespace {

// Waits on the driver's event condition until pred() or the timeout.
template <class Pred>
bool wait_driver(std::uint64_t timeout_ns, Pred pred) {
  Driver& d = Driver::get();
  std::unique_lock lk(d.ev_mu);
  if (timeout_ns == UINT64_MAX) {
    d.ev_cv.wait(lk, pred);
    return true;
  }
  return d.ev_cv.wait_for(lk, std::chrono::nanoseconds(timeout_ns), pred);
}

void notify_driver() {
  Driver& d = Driver::get();
  std::lock_guard lk(d.ev_mu);
  d.ev_cv.notify_all();
}

}  // namespace

// --- events ----------------------------------------------------------------

void Event::signal(std::uint64_t end) {
  end_.store(end, std::memory_order_relaxed);
  const std::uint64_t start = start_.load(std::memory_order_relaxed);
  if (start == 0 || start > end) start_.store(end, std::memory_order_relaxed);
  Driver& d = Driver::get();
  std::lock_guard lk(d.ev_mu);
  state_.store(true, std::memory_order_release);
  d.ev_cv.notify_all();
}

void Event::reset() {
  std::lock_guard lk(Driver::get().ev_mu);
  state_.store(false, std::memory_order_release);
  start_.store(0);
  end_.store(0);
}

void Event::mark_start(std::uint64_t start) { start_.store(start, std::memory_order_relaxed); }

bool Event::wait(std::uint64_t timeout_ns, const std::atomic<bool>* cancel) {
  if (signaled()) return true;
  if (timeout_ns == 0) return false;
  return wait_driver(timeout_ns, [&] { return signaled() || (cancel && cancel->load()); }) && signaled();
}

ze_kernel_timestamp_result_t Event::timestamps() const {
  ze_kernel_timestamp_result_t r{};
  r.global.kernelStart = r.context.kernelStart = start_.load();
  r.global.kernelEnd = r.context.kernelEnd = end_.load();
  return r;
}

void Fence::signal() {
  Driver& d = Driver::get();
  std::lock_guard lk(d.ev_mu);
  signaled.store(true);
  d.ev_cv.notify_all();
}

// --- executor --------------------------------------------------------------

Executor::Executor() : thread_([this] { loop(); }) {}

Executor::~Executor() {
  {
    std::unique_lock lk(mu_);
    idle_cv_.wait_for(lk, std::chrono::seconds(10), [&] { return jobs_.empty() && !busy_; });
    stop_ = true;
  }
  cv_.notify_all();
  notify_driver();  // cancels an event wait that would never end
  thread_.join();
}

void Executor::submit(CommandBatch batch, Fence* fence) {
  {
    std::lock_guard lk(mu_);
    jobs_.push_back(Job{std::move(batch), fence});
  }
  cv_.notify_one();
}

ze_result_t Executor::synchronize(std::uint64_t timeout_ns) {
  std::unique_lock lk(mu_);
  auto idle = [&] { return jobs_.empty() && !busy_; };
  if (timeout_ns == UINT64_MAX) {
    idle_cv_.wait(lk, idle);
  } else if (!idle_cv_.wait_for(lk, std::chrono::nanoseconds(timeout_ns), idle)) {
    return ZE_RESULT_NOT_READY;
  }
  ze_result_t r = error_;
  error_ = ZE_RESULT_SUCCESS;
  return r;
}

ze_result_t Executor::take_error() {
  std::lock_guard lk(mu_);
  ze_result_t r = error_;
  error_ = ZE_RESULT_SUCCESS;
  return r;
}

void Executor::loop() {
  for (;;) {
    Job job;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stop_ || !jobs_.empty(); });
      if (jobs_.empty()) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
      busy_ = true;
    }
    ze_result_t err = ZE_RESULT_SUCCESS;
    std::string what;
    for (const auto& c : job.batch) {
      // After a failure the rest of the submission is skipped, but its
      // events are still signaled so that no waiter hangs.
      if (err == ZE_RESULT_SUCCESS) {
        for (Event* e : c->waits) {
          if (!e->wait(UINT64_MAX, &stop_)) {
            err = ZE_RESULT_ERROR_DEVICE_LOST;
            what = "command queue destroyed while waiting on an event";
            break;
          }
        }
      }
      if (err == ZE_RESULT_SUCCESS) {
        try {
          if (c->signal) c->signal->mark_start(c->dev ? c->dev->clock_ns() : 0);
          if (c->body) c->body();
          if (c->reset) c->reset->reset();
        } catch (const Error& e) {
          err = to_result(e);
          what = e.what();
        } catch (const ZeError& e) {
          err = e.code;
          what = e.what;
        } catch (const std::exception& e) {
          err = ZE_RESULT_ERROR_UNKNOWN;
          what = e.what();
        }
      }
      if (c->signal) c->signal->signal(c->dev ? c->dev->clock_ns() : 0);
    }
    if (err != ZE_RESULT_SUCCESS) log("command failed (" + std::to_string(static_cast<unsigned>(err)) + "): " + what);
    if (job.fence) job.fence->signal();
    {
      std::lock_guard lk(mu_);
      if (err != ZE_RESULT_SUCCESS && error_ == ZE_RESULT_SUCCESS) error_ = err;
      busy_ = false;
    }
    idle_cv_.notify_all();
  }
}

// --- command lists -----------------------------------------------------------

void CommandList::add(Command c) {
  c.dev = &dev;
  auto cmd = std::make_shared<const Command>(std::move(c));
  if (!immediate) {
    if (closed)
      fail(ZE_RESULT_ERROR_INVALID_ARGUMENT, "append to a closed command list (zeCommandListReset reopens it)");
    cmds.push_back(std::move(cmd));
    return;
  }
  // An asynchronous immediate list reports a failure at the next append.
  ze_result_t prev = exec->take_error();
  exec->submit(CommandBatch{std::move(cmd)}, nullptr);
  if (mode == ZE_COMMAND_QUEUE_MODE_SYNCHRONOUS) {
    ze_result_t r = exec->synchronize(UINT64_MAX);
    if (r != ZE_RESULT_SUCCESS) fail(r, "immediate command failed");
  }
  if (prev != ZE_RESULT_SUCCESS) fail(prev, "an earlier immediate command failed");
}

void CommandList::add_failed(Event* signal, ze_result_t code, std::string what) {
  Command c;
  c.signal = signal;
  c.dev = &dev;
  if (immediate) {
    // Not through add(): an earlier command's error stays for the next append.
    exec->submit(CommandBatch{std::make_shared<const Command>(std::move(c))}, nullptr);
    return;
  }
  if (closed) return;
  c.body = [code, what = std::move(what)] { fail(code, what); };
  cmds.push_back(std::make_shared<const Command>(std::move(c)));
}

std::vector<Event*> wait_list(std::uint32_t n, ze_event_handle_t* events) {
  if (n > 0 && !events) fail(ZE_RESULT_ERROR_INVALID_SIZE, "phWaitEvents is NULL but numWaitEvents > 0");
  std::vector<Event*> out;
  for (std::uint32_t i = 0; i < n; ++i) {
    const std::string what = "phWaitEvents[" + std::to_string(i) + "]";
    if (!events[i]) fail(ZE_RESULT_ERROR_INVALID_NULL_HANDLE, what + " is NULL");
    if (!handles::is(events[i], HandleKind::kEvent)) {
      fail(ZE_RESULT_ERROR_INVALID_ARGUMENT, what + " is not a live event handle");
    }
    out.push_back(static_cast<Event*>(events[i]));
  }
  return out;
}

}  // namespace xesvm::ze
