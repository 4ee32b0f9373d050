// Out-of-tree consumer: moves bytes to the device and back and checks them.
#include <xesvm/xesvm.hpp>

#include <cstdint>
#include <cstdio>

int main() {
  xesvm::Runtime rt("sim:vram=16M,workers=2");
  const std::size_t n = 1u << 20;  // 4 MiB of uint32_t
  auto* a = static_cast<std::uint32_t*>(rt.alloc_shared(n * sizeof(std::uint32_t)));
  for (std::size_t i = 0; i < n; ++i) a[i] = static_cast<std::uint32_t>(i * 2654435761u);
  rt.launch(n, [&](const xesvm::WorkItem& wi, xesvm::DeviceAccessor& acc) {
    std::uint32_t v = acc.load(a + wi.global_id);
    acc.store(a + wi.global_id, v ^ 0x5a5a5a5au);
  });
  std::size_t bad = 0;
  for (std::size_t i = 0; i < n; ++i) bad += a[i] != (static_cast<std::uint32_t>(i * 2654435761u) ^ 0x5a5a5a5au);
  const xesvm::Stats s = rt.stats();
  rt.free(a);
  if (bad || s.gpu_faults == 0 || s.bytes_to_device < n * sizeof(std::uint32_t)) {
    std::printf("consumer: FAILED: %zu wrong words, %llu GPU faults, %llu bytes to device\n", bad,
                static_cast<unsigned long long>(s.gpu_faults), static_cast<unsigned long long>(s.bytes_to_device));
    return 1;
  }
  std::printf("consumer: ok (%llu GPU faults, %llu bytes to device, all bytes checked)\n",
              static_cast<unsigned long long>(s.gpu_faults), static_cast<unsigned long long>(s.bytes_to_device));
  return 0;
}
