// Memory and the raw userfaultfd mechanism for the runtime benchmarks: the
// baselines the runtime's migrations are measured against.
#pragma once

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <thread>
#include <vector>

#include "runtime/backend.hpp"
#include "tests/runtime/aligned_mapping.hpp"

namespace xesvm::bench {

/// test::map_aligned(), throwing std::runtime_error when mmap fails.
inline void* map_aligned(std::size_t bytes, std::size_t align = 2u << 20) {
  void* p = test::map_aligned(bytes, align);
  if (!p) throw std::runtime_error("mmap failed");
  return p;
}

// The raw mechanism: an empty range registered with a userfaultfd of its
// own for missing faults, filled by UFFDIO_COPY.
class RawUffd {
 public:
  explicit RawUffd(std::size_t bytes) : bytes_(bytes) {
    fd_ = static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
    if (fd_ < 0) fd_ = static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY));
    if (fd_ < 0) throw std::runtime_error("userfaultfd failed");
    uffdio_api api{UFFD_API, 0, 0};
    if (ioctl(fd_, UFFDIO_API, &api) < 0) throw std::runtime_error("UFFDIO_API failed");
    dst_ = static_cast<std::uint8_t*>(map_aligned(bytes));
    uffdio_register reg{};
    reg.range = {reinterpret_cast<std::uint64_t>(dst_), bytes};
    reg.mode = UFFDIO_REGISTER_MODE_MISSING;
    if (ioctl(fd_, UFFDIO_REGISTER, &reg) < 0) throw std::runtime_error("UFFDIO_REGISTER failed");
  }
  ~RawUffd() {
    munmap(dst_, bytes_);
    close(fd_);
  }
  RawUffd(const RawUffd&) = delete;
  RawUffd& operator=(const RawUffd&) = delete;
  void empty() { madvise(dst_, bytes_, MADV_DONTNEED); }
  std::uint8_t* dst() const { return dst_; }
  CopyStatus copy(std::uint64_t dst, const void* src, std::size_t len) const {
    uffdio_copy c{};
    c.dst = dst;
    c.src = reinterpret_cast<std::uint64_t>(src);
    c.len = len;
    if (ioctl(fd_, UFFDIO_COPY, &c) == 0) return {len, 0};
    return {c.copy > 0 ? static_cast<std::size_t>(c.copy) : 0, errno};
  }
  // UFFDIO_COPY into the whole range in pieces of `piece` bytes on
  // `threads` threads; piece k comes from src + k * src_stride (a stride
  // larger than the piece reads scattered sources, like scattered frames).
  void place_all(const std::uint8_t* src, std::size_t piece, unsigned threads = 1, std::size_t src_stride = 0) {
    if (src_stride == 0) src_stride = piece;
    auto work = [&](unsigned t) {
      const std::size_t per = bytes_ / threads;
      for (std::size_t off = t * per; off < (t + 1) * per; off += piece) {
        if (copy(reinterpret_cast<std::uint64_t>(dst_) + off, src + (off / piece) * src_stride, piece).error) {
          throw std::runtime_error("UFFDIO_COPY failed");
        }
      }
    };
    if (threads == 1) return work(0);
    std::vector<std::thread> ts;
    for (unsigned t = 0; t < threads; ++t) ts.emplace_back(work, t);
    for (auto& th : ts) th.join();
  }

 private:
  std::size_t bytes_;
  int fd_ = -1;
  std::uint8_t* dst_ = nullptr;
};

}  // namespace xesvm::bench
