// KernelPressure: LRU victims over 2 MiB chunks, evicted through the policy face.
#include "runtime/kernel_pressure.hpp"

#include <algorithm>

namespace xesvm {
namespace {

PressurePolicy::Options pressure_options(const RuntimeOptions& o) {
  PressurePolicy::Options p;
  p.high = o.high_watermark;
  p.low = o.low_watermark;
  p.thrash_threshold = o.thrash_threshold;
  p.thrash_window_ns = o.thrash_window_ns;
  p.thrash_cooldown_ns = o.thrash_cooldown_ns;
  return p;
}

}  // namespace

KernelPressure::KernelPressure(PolicyFace& policy, const RuntimeOptions& options)
    : policy_(policy), pressure_(pressure_options(options), counters_) {}

void KernelPressure::advise(std::uint64_t start, std::uint64_t len, const Advice& advice) {
  std::lock_guard lk(mu_);
  const std::uint64_t end = start + len;
  // Drop overlapping records, then add this one if it prefers the device.
  for (auto it = device_advice_.begin(); it != device_advice_.end();) {
    if (it->first < end && it->second > start)
      it = device_advice_.erase(it);
    else
      ++it;
  }
  if (advice.preferred == Location::kDevice || advice.atomic) device_advice_.emplace(start, end);
  for (auto it = chunks_.lower_bound(start & ~(kChunk - 1)); it != chunks_.end() && it->first < end; ++it) {
    it->second.prefer_device = advice.preferred == Location::kDevice || advice.atomic;
  }
}

void KernelPressure::forget(std::uint64_t start, std::uint64_t len) {
  std::lock_guard lk(mu_);
  const std::uint64_t end = start + len;
  chunks_.erase(chunks_.lower_bound(start), chunks_.lower_bound(end));
  for (auto it = device_advice_.begin(); it != device_advice_.end();) {
    if (it->first >= start && it->second <= end)
      it = device_advice_.erase(it);
    else
      ++it;
  }
}

std::uint64_t KernelPressure::before_device_use(std::span<const std::pair<std::uint64_t, std::uint64_t>> spans,
                                                std::uint64_t need) {
  std::vector<std::uint64_t> now_used;
  {
    std::lock_guard lk(mu_);
    const std::uint64_t t = ++tick_;
    for (auto [start, len] : spans) {
      for (std::uint64_t c = start & ~(kChunk - 1); c < start + len; c += kChunk) {
        Chunk& ch = chunks_[c];
        ch.last_use = t;
        auto adv = device_advice_.upper_bound(c);
        ch.prefer_device = adv != device_advice_.begin() && std::prev(adv)->second > c;
        now_used.push_back(c);
      }
    }
  }
  std::sort(now_used.begin(), now_used.end());
  const DeviceMemoryUse use = policy_.device_memory();
  if (use.total == 0) return 0;
  std::uint64_t to_free = pressure_.bytes_to_free(use, need);
  if (to_free == 0) return 0;

  // Victims: least recently used first, advised-to-device last, never a chunk
  // the new work uses.
  std::vector<std::pair<std::uint64_t, Chunk>> victims;
  {
    std::lock_guard lk(mu_);
    for (const auto& [c, ch] : chunks_) {
      if (std::binary_search(now_used.begin(), now_used.end(), c)) continue;
      victims.emplace_back(c, ch);
    }
  }
  std::stable_sort(victims.begin(), victims.end(), [](const auto& a, const auto& b) {
    if (a.second.prefer_device != b.second.prefer_device) return b.second.prefer_device;
    return a.second.last_use < b.second.last_use;
  });

  std::uint64_t evicted = 0;
  std::size_t next = 0;
  while (to_free != 0 && next < victims.size()) {
    // Evict a batch worth what must be freed, then look at the device again.
    std::uint64_t batch = 0;
    while (batch < to_free && next < victims.size()) {
      const std::uint64_t c = victims[next++].first;
      EvictResult r = policy_.evict(c, kChunk);
      {
        std::lock_guard lk(mu_);
        chunks_.erase(c);
      }
      evictions_.fetch_add(1, std::memory_order_relaxed);
      pages_evicted_.fetch_add(r.pages_evicted, std::memory_order_relaxed);
      batch += kChunk;
    }
    evicted += batch;
    to_free = pressure_.bytes_to_free(policy_.device_memory(), need);
  }
  return evicted;
}

}  // namespace xesvm
