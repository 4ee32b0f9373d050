// The agreement check of the three records of frame -> page: the runtime's
// (a range's frames, read through residency()), the sim device's entries
// (page <-> frame) and the frame pool's owner tags, together with the GPU
// page table's device PTEs (SimDevice::check_books()).
#pragma once

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "test_util.hpp"

namespace xesvm::test {

/// A span of SVM memory whose pages the check compares page by page.
using Span = std::pair<const void*, std::size_t>;

/// Applies every pending CPU event, then returns one line per disagreement
/// between the records ("" if they agree): the device's own check, and per
/// page of `spans` whether the runtime counts it device-resident exactly
/// when the device has an entry for it. Call it when no operation is in
/// flight; the runtime's garbage collection of unmapped ranges runs
/// asynchronously, so use agreed_books() after changes of the CPU mapping.
inline std::string frame_books(Runtime& rt, const std::vector<Span>& spans) {
  drain_events(rt);
  sim::SimDevice& dev = sim_device(rt);
  std::ostringstream bad;
  bad << dev.check_books();
  for (const auto& [p, n] : spans) {
    const auto base = reinterpret_cast<std::uint64_t>(p);
    for (std::uint64_t a = base; a < base + n; a += 4096) {
      const bool runtime_device = rt.residency(reinterpret_cast<const void*>(a), 4096).device_bytes != 0;
      const auto entry = dev.cpu().entries().lookup(a);
      if (runtime_device != entry.has_value()) {
        bad << std::hex << "page 0x" << a << ": the runtime says " << (runtime_device ? "device" : "system")
            << ", the device " << (entry ? "has an entry (frame " + std::to_string(entry->frame) + ")" : "has none")
            << "\n";
      }
    }
  }
  return bad.str();
}

/// frame_books() once the runtime's asynchronous work has settled: polls
/// until the records agree or `timeout` passes, and returns the last answer.
inline std::string agreed_books(Runtime& rt, const std::vector<Span>& spans,
                                std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
  std::string last;
  wait_until([&] { return (last = frame_books(rt, spans)).empty(); }, timeout);
  return last;
}

/// Binds device-resident [p, p+n) for the GPU (a read kernel faults every
/// page in) and returns the frame of each page, adding a test failure for a
/// page that is not on the device or that the GPU does not map to its frame.
inline std::vector<FrameId> gpu_bound_frames(Runtime& rt, std::uint8_t* p, std::size_t n) {
  rt.launch(pages(n), touch_pages_kernel(p, n, 0, /*write=*/false));
  std::vector<FrameId> frames = device_frames(rt, p, n);
  const sim::GpuPageTable& gpu = sim_device(rt).page_table();
  for (std::size_t i = 0; i < frames.size(); ++i) {
    const std::uint64_t a = reinterpret_cast<std::uint64_t>(p) + i * 4096;
    EXPECT_NE(frames[i], kNoFrame) << "page " << i << " is not on the device";
    if (frames[i] == kNoFrame) continue;
    EXPECT_EQ(gpu.address_of(frames[i]).value_or(0), a) << "the GPU does not map page " << i << " to its frame";
  }
  return frames;
}

/// A fixture: a Runtime and 2 MiB of alloc_shared() memory filled with
/// pattern(offset, kGen), prefetched to the device and bound for the GPU
/// (gpu_bound_frames(): frames_ holds the frame of each page); SetUp()
/// checks that the records agree. The memory is freed at the end.
class BoundDeviceData : public ::testing::Test {
 protected:
  static constexpr std::size_t kLen = 2u << 20;
  static constexpr std::uint32_t kGen = 3;
  void SetUp() override {
    p_ = device_resident_shared(rt_, kLen, kGen);
    ASSERT_NE(p_, nullptr);
    frames_ = gpu_bound_frames(rt_, p_, kLen);
    ASSERT_FALSE(HasFailure());
    ASSERT_EQ(frame_books(rt_, {{p_, kLen}}), "");
  }
  void TearDown() override {
    if (p_) rt_.free(p_);
  }
  Runtime rt_{test_uri("sim:vram=64M,workers=2")};
  std::uint8_t* p_ = nullptr;
  std::vector<FrameId> frames_;
};

}  // namespace xesvm::test
