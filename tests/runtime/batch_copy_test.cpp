// The parallel pfn batch copy on its own, over a copy engine that moves
// bytes between two buffers of this process and can stop partway through a
// run: which runs it plans, and that every page lands exactly once.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <vector>

#include "runtime/batch_copy.hpp"

namespace xesvm {
namespace {

constexpr std::size_t kPages = 64;

// Source "frames" and destination "RAM", one page each; copies are counted
// per destination page.
class BufferEngine final : public CopyEngine {
 public:
  BufferEngine() : src_(kPages * kPageSize), dst_(kPages * kPageSize), copies_(kPages) {
    for (std::size_t i = 0; i < src_.size(); ++i) src_[i] = static_cast<std::byte>(i * 31 + 7);
  }
  const std::byte* src(std::size_t page) const { return src_.data() + page * kPageSize; }
  std::uint64_t dst(std::size_t page) const { return reinterpret_cast<std::uint64_t>(dst_.data() + page * kPageSize); }
  // The next run longer than `pages` pages copies `pages` of them, then fails.
  void stop_next_run_after(std::size_t pages) { stop_after_.store(pages); }

  CopyStatus copy(const CopyRun& run) override {
    std::size_t len = run.len;
    int error = 0;
    if (std::size_t k = stop_after_.load(); k && len > k * kPageSize && stop_after_.compare_exchange_strong(k, 0)) {
      len = k * kPageSize;
      error = EAGAIN;
    }
    std::lock_guard lk(mu_);
    for (std::size_t off = 0; off < len; off += kPageSize) {
      const std::size_t page = (run.dst + off - dst(0)) / kPageSize;
      if (copies_[page]++ > 0) return {off, EEXIST};  // like UFFDIO_COPY onto a present page
      std::memcpy(reinterpret_cast<void*>(run.dst + off), run.src + off, kPageSize);
    }
    runs_.push_back(run.len);
    return {len, error};
  }
  std::uint64_t current_address(std::size_t index) override { return dst(index); }

  std::vector<unsigned> copies() const {
    std::lock_guard lk(mu_);
    return copies_;
  }
  bool bytes_match() const { return std::memcmp(src_.data(), dst_.data(), src_.size()) == 0; }
  std::vector<std::size_t> runs() const {
    std::lock_guard lk(mu_);
    return runs_;
  }

 private:
  std::vector<std::byte> src_, dst_;
  mutable std::mutex mu_;
  std::vector<unsigned> copies_;
  std::vector<std::size_t> runs_;  // lengths of runs copied in full or in part
  std::atomic<std::size_t> stop_after_{0};
};

std::vector<CopyPage> contiguous_pages(const BufferEngine& e) {
  std::vector<CopyPage> pages;
  for (std::size_t i = 0; i < kPages; ++i) pages.push_back({e.src(i), e.dst(i)});
  return pages;
}

TEST(BatchCopy, ContiguousFramesAndDestinationsCoalesceIntoBatchSizedRuns) {
  BufferEngine e;
  BatchCopier copier({2, 0, 16 * kPageSize, true});
  std::vector<CopyRun> runs = copier.plan(contiguous_pages(e));
  ASSERT_EQ(runs.size(), kPages / 16);
  for (std::size_t r = 0; r < runs.size(); ++r) {
    EXPECT_EQ(runs[r].len, 16 * kPageSize);
    EXPECT_EQ(runs[r].first, r * 16);
  }
}

TEST(BatchCopy, ScatteredSourcesStaySeparateRuns) {
  BufferEngine e;
  std::vector<CopyPage> pages = contiguous_pages(e);
  for (std::size_t i = 0; i < kPages; ++i) pages[i].src = e.src((i * 7) % kPages);  // 7 is prime to 64
  BatchCopier copier({2, 0, 16 * kPageSize, true});
  EXPECT_EQ(copier.plan(pages).size(), kPages);
}

TEST(BatchCopy, PagesCopiedBeforeARunFailsAreDoneAndNeverCopiedTwice) {
  for (unsigned workers : {1u, 2u}) {
    BufferEngine e;
    BatchCopier copier({workers, 0, 32 * kPageSize, true});
    std::vector<CopyPage> pages = contiguous_pages(e);
    std::vector<std::uint8_t> done(kPages, 0);
    e.stop_next_run_after(5);
    copier.copy(pages, e, done);
    for (std::size_t i = 0; i < kPages; ++i) {
      EXPECT_EQ(done[i], 1) << "page " << i << ", " << workers << " worker(s)";
      EXPECT_EQ(e.copies()[i], 1u) << "page " << i << ", " << workers << " worker(s)";
    }
    EXPECT_TRUE(e.bytes_match());
  }
}

TEST(BatchCopy, APageThatFailsForGoodStaysNotDone) {
  // A destination that is already populated fails with EEXIST, which is not
  // retried: that page is reported not done, its neighbours are done.
  BufferEngine e;
  std::vector<CopyPage> pages = contiguous_pages(e);
  std::vector<std::uint8_t> done(kPages, 0);
  ASSERT_EQ(e.copy(CopyRun{e.dst(10), e.src(10), kPageSize, 10}).error, 0);
  BatchCopier copier({1, 0, 32 * kPageSize, true});
  copier.copy(pages, e, done);
  for (std::size_t i = 0; i < kPages; ++i) EXPECT_EQ(done[i], i == 10 ? 0 : 1) << "page " << i;
}

}  // namespace
}  // namespace xesvm
