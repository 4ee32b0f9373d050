// The CPU protection query: both sources report what mprotect() set, page
// for page, and agree with each other.
#include "runtime/backends/sim/cpu_protection.hpp"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstdint>
#include <vector>

namespace xesvm::sim {
namespace {

constexpr std::size_t kPage = 4096;

// A mapping of `n` pages with a hole after page 5 and protections
// rw, r, none, rw, r, rw | hole | rw ...
struct Layout {
  std::uint8_t* base = nullptr;
  std::size_t n = 12;
  Layout() {
    base = static_cast<std::uint8_t*>(
        mmap(nullptr, n * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (base == MAP_FAILED) {
      base = nullptr;
      return;
    }
    mprotect(base + 1 * kPage, kPage, PROT_READ);
    mprotect(base + 2 * kPage, kPage, PROT_NONE);
    mprotect(base + 4 * kPage, kPage, PROT_READ);
    munmap(base + 6 * kPage, kPage);
  }
  ~Layout() {
    if (base) munmap(base, n * kPage);
  }
  std::uint64_t addr(std::size_t page) const { return reinterpret_cast<std::uint64_t>(base) + page * kPage; }
};

// Per page: 'w' read-write, 'r' read-only, '-' no access, ' ' unmapped.
std::string per_page(const std::vector<CpuProtection>& prot, std::uint64_t start, std::size_t n) {
  std::string s(n, ' ');
  for (const CpuProtection& p : prot) {
    for (std::uint64_t a = p.start; a < p.end; a += kPage) {
      if (a < start || a >= start + n * kPage) continue;
      s[(a - start) / kPage] = p.writable ? 'w' : p.readable ? 'r' : '-';
    }
  }
  return s;
}

TEST(CpuProtection, MapsTextReportsEveryPageAsMprotectLeftIt) {
  Layout l;
  ASSERT_NE(l.base, nullptr);
  EXPECT_EQ(per_page(read_cpu_protection(l.addr(0), l.addr(l.n), ProtectionSource::kMapsText), l.addr(0), l.n),
            "wr-wrw wwwww");
}

TEST(CpuProtection, ProcmapQueryAgreesWithTheMapsText) {
  if (!procmap_query_supported()) GTEST_SKIP() << "this kernel has no PROCMAP_QUERY (Linux 6.11 or later)";
  Layout l;
  ASSERT_NE(l.base, nullptr);
  // Every sub-span, so clipping at both ends is checked too.
  for (std::size_t a = 0; a < l.n; ++a) {
    for (std::size_t b = a + 1; b <= l.n; ++b) {
      const auto text = read_cpu_protection(l.addr(a), l.addr(b), ProtectionSource::kMapsText);
      const auto q = read_cpu_protection(l.addr(a), l.addr(b), ProtectionSource::kProcmapQuery);
      ASSERT_EQ(per_page(q, l.addr(a), b - a), per_page(text, l.addr(a), b - a)) << "pages [" << a << ", " << b << ")";
      ASSERT_EQ(q.size(), text.size()) << "pages [" << a << ", " << b << ")";
      for (std::size_t i = 0; i < q.size(); ++i) {
        EXPECT_EQ(q[i].start, text[i].start);
        EXPECT_EQ(q[i].end, text[i].end);
      }
    }
  }
}

TEST(CpuProtection, DefaultSourceSeesAnMprotectMadeJustBefore) {
  Layout l;
  ASSERT_NE(l.base, nullptr);
  ASSERT_EQ(mprotect(l.base + 3 * kPage, kPage, PROT_NONE), 0);
  EXPECT_EQ(per_page(read_cpu_protection(l.addr(0), l.addr(l.n)), l.addr(0), l.n), "wr--rw wwwww");
}

}  // namespace
}  // namespace xesvm::sim
