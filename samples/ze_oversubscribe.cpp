// Oversubscription through Level Zero: shared allocations of twice the
// device memory, streamed by a kernel in two ways, with both throughputs.
//
//   plain faulting     the kernel touches each buffer; GPU faults migrate its
//                      pages in, memory pressure evicts the least recently
//                      used ones to make room.
//   prefetch + advice  each buffer is advised to prefer device memory,
//                      prefetched (zeCommandListAppendMemoryPrefetch) before
//                      its kernel and evicted (zeContextEvictMemory) after it,
//                      so migrations are bulk and eviction never stalls a fault.
//
// On a device that runs no kernels (the xe backend: its queue group has no
// COMPUTE flag and zeModuleCreate answers
// ZE_RESULT_ERROR_UNSUPPORTED_FEATURE) the GPU work is the device's own
// copies and fills instead: per buffer and pass, a fill of its first half
// with a word that names the buffer and the pass, then a copy of the first
// half onto the second; afterwards every byte of every buffer is checked.
//
// Usage: ze_oversubscribe [passes]   (default 2). Unless XESVM_BACKEND is
// set, the sample asks the driver for a 64 MiB sim device. Throughput is
// bytes streamed per second, of device time (the driver's device clock, which
// on the sim is the cost model's modelled time: link transfers, GPU faults,
// device-memory traffic) and of wall time (on the sim the "GPU" is the host's
// own cores and RAM, so wall time hides what a real link costs). Links only
// the Level Zero loader.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "ze_sample_util.hpp"

namespace {

constexpr std::size_t kBuffers = 4;

struct Run {
  double seconds = 0;         // wall time
  double device_seconds = 0;  // device clock: the sim's modelled device time
  bool ok = true;
};

Run stream(ZeSample& ze, ze_kernel_handle_t k, const std::vector<float*>& bufs, std::size_t bytes, int passes,
           bool managed) {
  for (float* b : bufs) {  // the CPU writes the input: the data starts in RAM
    for (std::size_t i = 0; i < bytes / sizeof(float); ++i) b[i] = 1.0f;
  }
  if (managed) {
    for (float* b : bufs) {
      ZE_CHECK(zeCommandListAppendMemAdvise(ze.list, ze.device, b, bytes, ZE_MEMORY_ADVICE_SET_PREFERRED_LOCATION));
    }
  }
  const float scale = 1.0f;
  ZE_CHECK(zeKernelSetArgumentValue(k, 1, sizeof scale, &scale));
  ZE_CHECK(zeKernelSetGroupSize(k, 64, 1, 1));
  const ze_group_count_t groups{static_cast<std::uint32_t>(bytes / 4096 / 64), 1, 1};
  std::uint64_t host0 = 0, dev0 = 0, host1 = 0, dev1 = 0;
  ZE_CHECK(zeDeviceGetGlobalTimestamps(ze.device, &host0, &dev0));
  const auto t0 = std::chrono::steady_clock::now();
  for (int p = 0; p < passes; ++p) {
    for (float* b : bufs) {
      if (managed) ZE_CHECK(zeCommandListAppendMemoryPrefetch(ze.list, b, bytes));
      ZE_CHECK(zeKernelSetArgumentValue(k, 0, sizeof b, &b));
      ZE_CHECK(zeCommandListAppendLaunchKernel(ze.list, k, &groups, nullptr, 0, nullptr));
      if (managed) ZE_CHECK(zeContextEvictMemory(ze.ctx, ze.device, b, bytes));
    }
  }
  Run r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ZE_CHECK(zeDeviceGetGlobalTimestamps(ze.device, &host1, &dev1));
  r.device_seconds = static_cast<double>(dev1 - dev0) * 1e-9;
  const float want = 1.0f + static_cast<float>(passes);
  for (std::size_t i = 0; i < bufs.size(); ++i) {
    for (std::size_t j = 0; j < bytes / sizeof(float) && r.ok; ++j) {
      if (bufs[i][j] != want) {
        std::fprintf(stderr, "buffer %zu, byte %zu: %g, expected %g\n", i, j * sizeof(float),
                     static_cast<double>(bufs[i][j]), static_cast<double>(want));
        r.ok = false;
      }
    }
  }
  if (managed) {
    for (float* b : bufs) {
      ZE_CHECK(zeCommandListAppendMemAdvise(ze.list, ze.device, b, bytes, ZE_MEMORY_ADVICE_CLEAR_PREFERRED_LOCATION));
    }
  }
  return r;
}

// The same streams as device copies and fills (no kernels on the device):
// each buffer's first half filled with word(pass, buffer), then copied onto
// its second half. Every byte is checked at the end.
std::uint32_t word(int pass, std::size_t buffer) {
  return 0x5a000000u | static_cast<std::uint32_t>(pass) << 8 | static_cast<std::uint32_t>(buffer);
}

Run stream_copies(ZeSample& ze, const std::vector<float*>& bufs, std::size_t bytes, int passes, bool managed) {
  for (float* b : bufs) {
    for (std::size_t i = 0; i < bytes / sizeof(float); ++i) b[i] = 1.0f;
  }
  if (managed) {
    for (float* b : bufs) {
      ZE_CHECK(zeCommandListAppendMemAdvise(ze.list, ze.device, b, bytes, ZE_MEMORY_ADVICE_SET_PREFERRED_LOCATION));
    }
  }
  const std::size_t half = bytes / 2;
  std::uint64_t host0 = 0, dev0 = 0, host1 = 0, dev1 = 0;
  ZE_CHECK(zeDeviceGetGlobalTimestamps(ze.device, &host0, &dev0));
  const auto t0 = std::chrono::steady_clock::now();
  for (int p = 0; p < passes; ++p) {
    for (std::size_t i = 0; i < bufs.size(); ++i) {
      auto* b = reinterpret_cast<unsigned char*>(bufs[i]);
      if (managed) ZE_CHECK(zeCommandListAppendMemoryPrefetch(ze.list, b, bytes));
      const std::uint32_t w = word(p, i);
      ZE_CHECK(zeCommandListAppendMemoryFill(ze.list, b, &w, sizeof w, half, nullptr, 0, nullptr));
      ZE_CHECK(zeCommandListAppendMemoryCopy(ze.list, b + half, b, half, nullptr, 0, nullptr));
      if (managed) ZE_CHECK(zeContextEvictMemory(ze.ctx, ze.device, b, bytes));
    }
  }
  Run r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ZE_CHECK(zeDeviceGetGlobalTimestamps(ze.device, &host1, &dev1));
  r.device_seconds = static_cast<double>(dev1 - dev0) * 1e-9;
  for (std::size_t i = 0; i < bufs.size(); ++i) {
    const std::uint32_t want = word(passes - 1, i);
    const auto* w = reinterpret_cast<const std::uint32_t*>(bufs[i]);
    for (std::size_t j = 0; j < bytes / sizeof want && r.ok; ++j) {
      if (w[j] != want) {
        std::fprintf(stderr, "buffer %zu, byte %zu: 0x%08x, expected 0x%08x\n", i, j * sizeof want, w[j], want);
        r.ok = false;
      }
    }
  }
  if (managed) {
    for (float* b : bufs) {
      ZE_CHECK(zeCommandListAppendMemAdvise(ze.list, ze.device, b, bytes, ZE_MEMORY_ADVICE_CLEAR_PREFERRED_LOCATION));
    }
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const int passes = argc > 1 ? std::atoi(argv[1]) : 2;
  setenv("XESVM_BACKEND", "sim:vram=64M", 0);
  ZeSample ze;
  std::uint32_t n = 1;
  ze_device_memory_properties_t mem{ZE_STRUCTURE_TYPE_DEVICE_MEMORY_PROPERTIES, nullptr};
  ZE_CHECK(zeDeviceGetMemoryProperties(ze.device, &n, &mem));
  const std::size_t total = 2 * mem.totalSize;
  const std::size_t each = total / kBuffers;  // a multiple of 256 KiB: whole work groups
  std::printf("device memory %zu MiB; %zu shared buffers of %zu MiB (%zu MiB, 2x device memory); %d passes\n",
              static_cast<std::size_t>(mem.totalSize >> 20), kBuffers, each >> 20, total >> 20, passes);

  std::vector<float*> bufs;
  for (std::size_t i = 0; i < kBuffers; ++i) bufs.push_back(static_cast<float*>(ze.shared(each)));
  // Kernels where the device's queues run compute work and the module loaded.
  std::uint32_t groups = 1;
  ze_command_queue_group_properties_t qg{ZE_STRUCTURE_TYPE_COMMAND_QUEUE_GROUP_PROPERTIES, nullptr};
  ZE_CHECK(zeDeviceGetCommandQueueGroupProperties(ze.device, &groups, &qg));
  const bool kernels = ze.runs_kernels() && (qg.flags & ZE_COMMAND_QUEUE_GROUP_PROPERTY_FLAG_COMPUTE);
  ze_kernel_handle_t k = kernels ? ze.kernel("stream_scale") : nullptr;
  if (!kernels) std::printf("the device runs no kernels: device copies and fills stream the buffers\n");

  const double gb = static_cast<double>(total) * passes / 1e9;
  const Run plain = kernels ? stream(ze, k, bufs, each, passes, false) : stream_copies(ze, bufs, each, passes, false);
  std::printf("                   device time%s   wall time\n", kernels ? " (modelled)" : "            ");
  std::printf("plain faulting:    %7.3f s %7.2f GB/s   %7.3f s %7.2f GB/s  %s\n", plain.device_seconds,
              gb / plain.device_seconds, plain.seconds, gb / plain.seconds, plain.ok ? "OK" : "WRONG DATA");
  const Run managed = kernels ? stream(ze, k, bufs, each, passes, true) : stream_copies(ze, bufs, each, passes, true);
  std::printf("prefetch + advice: %7.3f s %7.2f GB/s   %7.3f s %7.2f GB/s  %s\n", managed.device_seconds,
              gb / managed.device_seconds, managed.seconds, gb / managed.seconds, managed.ok ? "OK" : "WRONG DATA");

  if (k) ZE_CHECK(zeKernelDestroy(k));
  for (float* b : bufs) ZE_CHECK(zeMemFree(ze.ctx, b));
  return plain.ok && managed.ok ? 0 : 1;
}
