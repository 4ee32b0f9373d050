// DOC: Overview
//
// The event side of CpuMirror (see cpu_mirror.hpp): the reader thread that
// reads the userfaultfd descriptor, the service thread that applies what it
// read in order (page faults are served by migrate_to_ram.cpp), drain() and
// the ordering rules that turn UNMAP, REMOVE and REMAP events, which arrive
// after the fact and out of order between threads, into the right updates
// of the entries and the mirrors and into invalidations for the runtime.
//
// DOC: The reader and its quit eventfd
//
// The reader polls the descriptor and an eventfd. A write to the eventfd
// wakes it for another pass (drain(), await_reader_passes()) or, with a stop
// requested, ends it. Each read() happens with the GPU's system-write gate
// closed: the thread that made a mapping change resumes as soon as its event
// is read, and no GPU write through a stale PTE may land in a mapping made
// after it. The reader zaps the event's span of the GPU page table before
// it opens the gate again (it owns that zap: cpu_mirror.hpp). The sim's own
// MADV_DONTNEED (marked in dropping_) is read and dropped here; every other
// message is queued for the service thread.
//
// DOC: Mapping events out of order
//
// munmap and mremap free their addresses under mmap_lock and only then queue
// their UNMAP/REMAP event (and wait until it is read), so another thread can
// map, mirror or mremap into those addresses and have its event read first.
// The kernel's userfaultfd context counts such changes in flight
// (mmap_changing) from before the addresses are freed until the event is
// read; two side-effect-free probes read it: mapping_change_in_flight() and
// registration() (userfaultfd.hpp). With them:
//
//  * mirror() settles first: it waits until no change is in flight and every
//    event read is applied, so no event older than the registration follows;
//  * a REMAP whose target still has records first applies an older queued
//    move out of the target, then unmaps whatever is left there (the kernel
//    unmapped it before the move, whatever the event order says);
//  * an UNMAP spares the parts of a mirror a REMAP moved in that the kernel
//    still has registered: it is older than the move;
//  * place() writes a frame's bytes only where the page's entry still names
//    that frame and no event about the page is pending, checked again
//    before every retry of a copy that met a change in flight.
//
// DOC: Locking
//
// The reader holds only queue_mu_, recent_mu_ and drop_mu_, all leaf locks,
// so it never waits on anything a faulting or dropping thread holds. The
// service thread takes queue_mu_ only between messages and calls
// MirrorClient::invalidate() (through notify()) with none of our locks held.
#include <linux/userfaultfd.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <thread>

#include "runtime/backends/sim/cpu_mirror.hpp"
#include "runtime/backends/sim/gpu_page_table.hpp"

namespace xesvm::sim {
namespace {

constexpr std::uint8_t kMsgFault = UFFD_EVENT_PAGEFAULT;
constexpr std::uint8_t kMsgRemap = UFFD_EVENT_REMAP;
constexpr std::uint8_t kMsgRemove = UFFD_EVENT_REMOVE;
constexpr std::uint8_t kMsgUnmap = UFFD_EVENT_UNMAP;

}  // namespace

bool CpuMirror::mapping_changed_since(std::uint64_t since, std::uint64_t start, std::uint64_t end) {
  if (events_read_.load() == since) {
    return false;
  }
  std::lock_guard lk(recent_mu_);
  if (!recent_.empty() && std::get<0>(recent_.front()) > since + 1) {
    return true;  // ring overrun: assume so
  }
  for (auto& [seq, s, e] : recent_) {
    if (seq > since && s < end && start < e) {
      return true;
    }
  }
  return false;
}

bool CpuMirror::is_dropping(std::uint64_t start, std::uint64_t end, std::uint64_t read) {
  std::lock_guard lk(drop_mu_);
  // A drop whose madvise returned before this read began has had all its
  // events read already: a REMOVE here over its span is the application's.
  std::erase_if(dropping_, [&](const Drop& d) { return d.retired_after < read; });
  for (const Drop& d : dropping_) {
    if (d.start <= start && end <= d.end) {
      return true;
    }
  }
  return false;
}

void CpuMirror::reader_loop(const std::stop_token& st) {
  std::array<pollfd, 2> fds{pollfd{uffd_, POLLIN, 0}, pollfd{wake_fd_, POLLIN, 0}};
  std::array<uffd_msg, 64> msgs;
  while (!st.stop_requested()) {
    poll(fds.data(), fds.size(), 100);
    if (const std::int64_t delay = reader_delay_us_.load(); delay > 0) {
      std::this_thread::sleep_for(std::chrono::microseconds(delay));  // test hook
    }
    if (fds[1].revents & POLLIN) {
      std::uint64_t v;
      [[maybe_unused]] auto r = read(wake_fd_, &v, sizeof v);
    }
    for (;;) {
      const std::uint64_t this_read = reads_started_.fetch_add(1) + 1;
      // No GPU write to system memory may land between an munmap's event
      // being read (the unmapping thread resumes and may map something new
      // there) and the zap of the PTEs below.
      SystemWriteGate& gate = gpu_.write_gate();
      gate.close(std::chrono::microseconds(200));
      ssize_t got = read(uffd_, msgs.data(), sizeof msgs);
      if (got < 0) {
        const int e = errno;
        gate.open();
        {
          std::lock_guard lk(queue_mu_);
          reads_done_.store(this_read);
        }
        queue_cv_.notify_all();
        if (e == EINTR) {
          continue;
        }
        break;  // EAGAIN: empty
      }
      // Classify each message once: mapping events zap the GPU's PTEs now,
      // while the gate is closed, and are counted as pending until applied.
      std::size_t count = static_cast<std::size_t>(got) / sizeof(uffd_msg);
      std::vector<Message> batch;
      batch.reserve(count);
      for (std::size_t i = 0; i < count; ++i) {
        const uffd_msg& m = msgs[i];
        switch (m.event) {
          case UFFD_EVENT_PAGEFAULT:
            batch.push_back({kMsgFault, m.arg.pagefault.address, m.arg.pagefault.flags, 0});
            break;
          case UFFD_EVENT_REMOVE:
          case UFFD_EVENT_UNMAP:
            if (m.event == UFFD_EVENT_REMOVE && is_dropping(m.arg.remove.start, m.arg.remove.end, this_read)) {
              break;
            }
            gpu_.unbind(m.arg.remove.start, m.arg.remove.end);
            {
              std::lock_guard lk(recent_mu_);
              recent_.emplace_back(events_read_.fetch_add(1) + 1, m.arg.remove.start, m.arg.remove.end);
              if (recent_.size() > 256) {
                recent_.pop_front();
              }
            }
            batch.push_back(
                {m.event == UFFD_EVENT_UNMAP ? kMsgUnmap : kMsgRemove, m.arg.remove.start, m.arg.remove.end, 0});
            break;
          case UFFD_EVENT_REMAP:
            gpu_.unbind(m.arg.remap.from, m.arg.remap.from + m.arg.remap.len);
            {
              std::lock_guard lk(recent_mu_);
              recent_.emplace_back(events_read_.fetch_add(1) + 1, m.arg.remap.from, m.arg.remap.from + m.arg.remap.len);
              if (recent_.size() > 256) {
                recent_.pop_front();
              }
            }
            batch.push_back({kMsgRemap, m.arg.remap.from, m.arg.remap.to, m.arg.remap.len});
            break;
          default:
            break;
        }
      }
      gate.open();
      {
        std::lock_guard lk(queue_mu_);
        for (auto& b : batch) {
          queue_.push_back(b);
        }
        read_count_ += batch.size();
        reads_done_.store(this_read);
      }
      queue_cv_.notify_all();
      // The service thread only when there is something to serve: a
      // migration's own REMOVE is read and dropped here, and waking the
      // service thread for it was a context switch per fault for nothing.
      if (!batch.empty()) {
        service_cv_.notify_one();
      }
    }
    {
      std::lock_guard lk(queue_mu_);
      ++empty_passes_;
    }
    queue_cv_.notify_all();
  }
  reader_stopped_.store(true);
}

void CpuMirror::await_reader_passes(std::unique_lock<std::mutex>& lk) {
  const std::uint64_t target = empty_passes_ + 2;
  lk.unlock();
  std::uint64_t one = 1;
  [[maybe_unused]] auto r = write(wake_fd_, &one, sizeof one);
  lk.lock();
  // The pass the first wake-up starts may have begun before the caller's
  // events were queued; the second must start after it. Wake the reader for
  // it too instead of waiting out its poll timeout (100 ms per drain).
  queue_cv_.wait(lk, [&] { return empty_passes_ + 1 >= target || reader_.get_stop_token().stop_requested(); });
  lk.unlock();
  r = write(wake_fd_, &one, sizeof one);
  lk.lock();
  queue_cv_.wait(lk, [&] { return empty_passes_ >= target || reader_.get_stop_token().stop_requested(); });
}

void CpuMirror::drain() {
  std::unique_lock lk(queue_mu_);
  await_reader_passes(lk);
  const std::uint64_t read = read_count_;
  queue_cv_.wait(lk, [&] { return applied_count_ >= read || service_.get_stop_token().stop_requested(); });
}

void CpuMirror::service_loop(std::stop_token st) {
  using namespace std::chrono_literals;
  std::unique_lock lk(queue_mu_);
  while (!st.stop_requested()) {
    if (queue_.empty()) {
      service_cv_.wait_for(lk, deferred_.empty() ? 100ms : 200us,
                           [&] { return !queue_.empty() || st.stop_requested(); });
      if (queue_.empty() && !deferred_.empty()) {
        std::vector<Message> retry;
        retry.swap(deferred_);
        lk.unlock();
        std::vector<Message> again;
        for (auto& m : retry) {
          if (!serve_fault(m.a & ~(kPageSize - 1), m.b)) {
            again.push_back(m);
          }
        }
        lk.lock();
        deferred_.insert(deferred_.end(), again.begin(), again.end());
      }
      continue;
    }
    Message m = queue_.front();
    queue_.pop_front();
    lk.unlock();
    bool deferred = false;
    if (m.event == kMsgFault) {
      deferred = !serve_fault(m.a & ~(kPageSize - 1), m.b);
      if (deferred) {
        deferred_count_.fetch_add(1, std::memory_order_relaxed);
      }
    } else {
      apply(m);
      events_applied_.fetch_add(1);
    }
    lk.lock();
    if (deferred) {
      deferred_.push_back(m);
    }
    ++applied_count_;
    queue_cv_.notify_all();
  }
}

// Forgets [start, end) of every mirror: the mapping there is gone.
void CpuMirror::unmap_span(std::uint64_t start, std::uint64_t end) {
  entries_.drop(start, end);
  notify({InvalidationKind::kUnmap, start, end, 0, {}});
  std::lock_guard lk(mirrors_mu_);
  std::vector<std::pair<std::uint64_t, Mirror>> keep;
  for (auto it = mirrors_.begin(); it != mirrors_.end();) {
    const std::uint64_t s = it->first, e = it->second.end;
    if (e <= start || s >= end) {
      ++it;
      continue;
    }
    if (s < start) {
      keep.emplace_back(s, Mirror{start, it->second.client, it->second.moved});
    }
    if (e > end) {
      keep.emplace_back(end, Mirror{e, it->second.client, it->second.moved});
    }
    it = mirrors_.erase(it);
  }
  for (auto& k : keep) {
    mirrors_[k.first] = k.second;
  }
}

// Pieces of [start, end) that a REMAP moved a mirror to and that the kernel
// still has registered: an UNMAP over them is older than the move.
std::vector<std::pair<std::uint64_t, std::uint64_t>> CpuMirror::live_moved_pieces(std::uint64_t start,
                                                                                  std::uint64_t end) {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> moved;
  {
    std::lock_guard lk(mirrors_mu_);
    auto it = mirrors_.upper_bound(start);
    if (it != mirrors_.begin()) {
      --it;
    }
    for (; it != mirrors_.end() && it->first < end; ++it) {
      if (it->second.end <= start || !it->second.moved) {
        continue;
      }
      moved.emplace_back(std::max(it->first, start), std::min(it->second.end, end));
    }
  }
  std::vector<std::pair<std::uint64_t, std::uint64_t>> live;
  for (const auto& piece : moved) {
    const std::uint64_t s = piece.first, e = piece.second;  // a lambda below captures them
    Registration reg = registration(uffd_, s, e - s);
    // A change in flight may be what settles it (the move's own mremap
    // thread has not resumed yet, or another unmap is on its way): wait
    // for it to be read. Only the reader is needed for that, never this
    // thread, so the wait ends; the bound is for a stopped reader.
    wait_while([&] { return (reg = registration(uffd_, s, e - s)) == Registration::kChanging; });
    if (reg == Registration::kRegistered) {
      live.emplace_back(s, e);
    }
  }
  return live;
}

std::optional<CpuMirror::Message> CpuMirror::take_queued_move_from(std::uint64_t start, std::uint64_t end) {
  // Let every change in flight be read and queued: the mremap that freed
  // these addresses may not have queued its event yet (the thread of the
  // move being applied holds the count too until it resumes). The reader
  // never waits for this thread.
  wait_while([&] { return mapping_change_in_flight(); });
  std::unique_lock lk(queue_mu_);
  await_reader_passes(lk);
  for (auto it = queue_.begin(); it != queue_.end(); ++it) {
    if (it->event == kMsgRemap && it->a < end && it->a + it->c > start) {
      Message m = *it;
      queue_.erase(it);
      return m;
    }
  }
  return std::nullopt;
}

void CpuMirror::apply(const Message& m) {
  events_.fetch_add(1, std::memory_order_relaxed);
  if (m.event == kMsgRemove) {
    entries_.drop(m.a, m.b);
    notify({InvalidationKind::kDiscard, m.a, m.b, 0, {}});
    return;
  }
  if (m.event == kMsgUnmap) {
    // Events of different threads can arrive out of order: munmap frees
    // the addresses before it queues its event, so another thread may map
    // them and mremap a mirror there, and that REMAP can be read first.
    // Such a stale UNMAP must not tear down the mirror that moved in: the
    // parts the kernel still has registered are left alone. (A mirror
    // registered by mirror() needs no such check: mirror() settles every
    // change in flight before it registers.)
    std::uint64_t a = m.a;
    for (auto [s, e] : live_moved_pieces(m.a, m.b)) {
      stale_unmaps_.fetch_add(1, std::memory_order_relaxed);
      if (a < s) {
        unmap_span(a, s);
      }
      a = e;
    }
    if (a < m.b) {
      unmap_span(a, m.b);
    }
    return;
  }
  if (m.event == kMsgRemap) {
    const std::uint64_t from = m.a, to = m.b, len = m.c;
    // The kernel unmapped whatever was at the target before the move (an
    // MREMAP_FIXED over it, or an earlier munmap whose UNMAP event is
    // still to come): anything still recorded there is dead.
    bool target_taken = false;
    {
      std::lock_guard lk(mirrors_mu_);
      auto it = mirrors_.upper_bound(to);
      if (it != mirrors_.begin() && std::prev(it)->second.end > to) {
        --it;
      }
      target_taken = it != mirrors_.end() && it->first < to + len;
    }
    if (target_taken) {
      // Usually the mapping recorded there moved away first and its REMAP
      // is queued behind this one, or still in flight (mremap frees the
      // source before queueing its event, so this move could reuse the
      // addresses). Apply that older move first; what is left is dead.
      while (const auto older = take_queued_move_from(to, to + len)) {
        apply(*older);
        events_applied_.fetch_add(1);
        std::lock_guard q(queue_mu_);
        ++applied_count_;
      }
      unmap_span(to, to + len);
    }
    entries_.move(from, to, len);
    // The runtime hears of the move before the mirror record moves, so it can
    // find its client by the old address.
    notify({InvalidationKind::kRemap, from, from + len, to, {}});
    std::lock_guard lk(mirrors_mu_);
    std::vector<std::pair<std::uint64_t, Mirror>> keep;
    MirrorClient* moved_client = nullptr;
    for (auto it = mirrors_.begin(); it != mirrors_.end();) {
      std::uint64_t s = it->first, e = it->second.end;
      if (e <= from || s >= from + len) {
        ++it;
        continue;
      }
      moved_client = it->second.client;
      if (s < from) {
        keep.emplace_back(s, Mirror{from, moved_client, it->second.moved});
      }
      if (e > from + len) {
        keep.emplace_back(from + len, Mirror{e, moved_client, it->second.moved});
      }
      it = mirrors_.erase(it);
    }
    for (auto& k : keep) {
      mirrors_[k.first] = k.second;
    }
    if (moved_client) {
      mirrors_[to] = Mirror{to + len, moved_client, /*moved=*/true};
    }
  }
}

}  // namespace xesvm::sim
