// DOC: Overview
//
// HugePageArena (huge_page_arena.hpp): 2 MiB-aligned anonymous regions,
// advised MADV_HUGEPAGE, carved from the front. A request larger than what
// is left of the current region gets a region of its own size (rounded up
// to 2 MiB) when it is large, or starts a new 2 MiB region.
#include "runtime/huge_page_arena.hpp"

#include <sys/mman.h>

#include <cstdint>
#include <new>

namespace xesvm {
namespace {

constexpr std::size_t kHuge = std::size_t{2} << 20;

std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

// A region of `len` bytes (a multiple of 2 MiB) at a 2 MiB boundary.
void* map_huge(std::size_t len) {
  void* raw = mmap(nullptr, len + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const auto base = reinterpret_cast<std::uintptr_t>(raw);
  const std::uintptr_t aligned = round_up(base, kHuge);
  if (aligned > base) munmap(raw, aligned - base);
  const std::uintptr_t tail = aligned + len;
  if (const std::uintptr_t end = base + len + kHuge; end > tail) {
    munmap(reinterpret_cast<void*>(tail), end - tail);  // NOLINT(performance-no-int-to-ptr)
  }
  void* p = reinterpret_cast<void*>(aligned);  // NOLINT(performance-no-int-to-ptr)
  madvise(p, len, MADV_HUGEPAGE);              // a hint; ordinary pages if refused
  return p;
}

}  // namespace

HugePageArena::~HugePageArena() {
  for (auto [p, len] : regions_) munmap(p, len);
}

void* HugePageArena::do_allocate(std::size_t bytes, std::size_t align) {
  if (align > kHuge) throw std::bad_alloc();
  std::lock_guard lk(mu_);
  const auto pad = [&] {
    return round_up(reinterpret_cast<std::uintptr_t>(next_), align) - reinterpret_cast<std::uintptr_t>(next_);
  };
  if (next_ == nullptr || pad() + bytes > left_) {
    if (bytes > kHuge / 2) {  // its own region; the current one stays current
      const std::size_t len = round_up(bytes, kHuge);
      void* p = map_huge(len);
      regions_.emplace_back(p, len);
      return p;
    }
    next_ = static_cast<char*>(map_huge(kHuge));
    left_ = kHuge;
    regions_.emplace_back(next_, kHuge);
  }
  const std::size_t skip = pad();
  char* p = next_ + skip;
  next_ = p + bytes;
  left_ -= skip + bytes;
  return p;
}

}  // namespace xesvm
