// A Level Zero application that links only the loader (libze_loader): it
// must see the xesvm device and move bytes through it correctly. Started by
// the install tests through `xesvm run`.
//
//   ze_app URI VRAM_BYTES
// checks that the one device is named "xesvm URI" with VRAM_BYTES of device
// memory, then copies 12 MiB from a shared allocation through a device
// allocation into a second shared allocation (with a fill in between) and
// checks every byte on the CPU. Prints "ze_app: ok" and exits 0, or says
// what was wrong and exits 1.
#include <level_zero/ze_api.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#define CHECK(call)                                                                        \
  do {                                                                                     \
    const ze_result_t r_ = (call);                                                         \
    if (r_ != ZE_RESULT_SUCCESS) {                                                         \
      std::printf("ze_app: FAILED: %s returned 0x%x\n", #call, static_cast<unsigned>(r_)); \
      return 1;                                                                            \
    }                                                                                      \
  } while (0)

static std::uint8_t pattern(std::size_t i) { return static_cast<std::uint8_t>((i * 131u) ^ (i >> 12)); }

int main(int argc, char** argv) {
  if (argc != 3) {
    std::printf("usage: ze_app URI VRAM_BYTES\n");
    return 2;
  }
  const std::string want_name = std::string("xesvm ") + argv[1];
  const std::uint64_t want_vram = std::strtoull(argv[2], nullptr, 0);

  CHECK(zeInit(ZE_INIT_FLAG_GPU_ONLY));
  std::uint32_t ndrivers = 0;
  CHECK(zeDriverGet(&ndrivers, nullptr));
  if (ndrivers != 1) {
    std::printf("ze_app: FAILED: %u drivers, expected exactly the xesvm driver\n", ndrivers);
    return 1;
  }
  ze_driver_handle_t driver;
  CHECK(zeDriverGet(&ndrivers, &driver));
  std::uint32_t ndevices = 0;
  CHECK(zeDeviceGet(driver, &ndevices, nullptr));
  if (ndevices != 1) {
    std::printf("ze_app: FAILED: %u devices, expected 1\n", ndevices);
    return 1;
  }
  ze_device_handle_t dev;
  CHECK(zeDeviceGet(driver, &ndevices, &dev));
  ze_device_properties_t props{ZE_STRUCTURE_TYPE_DEVICE_PROPERTIES, nullptr};
  CHECK(zeDeviceGetProperties(dev, &props));
  if (want_name != props.name) {
    std::printf("ze_app: FAILED: device is '%s', expected '%s'\n", props.name, want_name.c_str());
    return 1;
  }
  std::uint32_t nmem = 1;
  ze_device_memory_properties_t mem{ZE_STRUCTURE_TYPE_DEVICE_MEMORY_PROPERTIES, nullptr};
  CHECK(zeDeviceGetMemoryProperties(dev, &nmem, &mem));
  if (mem.totalSize != want_vram) {
    std::printf("ze_app: FAILED: device memory %llu bytes, expected %llu\n",
                static_cast<unsigned long long>(mem.totalSize), static_cast<unsigned long long>(want_vram));
    return 1;
  }

  ze_context_desc_t cdesc{ZE_STRUCTURE_TYPE_CONTEXT_DESC, nullptr, 0};
  ze_context_handle_t ctx;
  CHECK(zeContextCreate(driver, &cdesc, &ctx));
  ze_command_queue_desc_t qdesc{ZE_STRUCTURE_TYPE_COMMAND_QUEUE_DESC};
  qdesc.mode = ZE_COMMAND_QUEUE_MODE_SYNCHRONOUS;
  ze_command_list_handle_t list;
  CHECK(zeCommandListCreateImmediate(ctx, dev, &qdesc, &list));

  const std::size_t n = 12u << 20;
  ze_device_mem_alloc_desc_t ddesc{ZE_STRUCTURE_TYPE_DEVICE_MEM_ALLOC_DESC};
  ze_host_mem_alloc_desc_t hdesc{ZE_STRUCTURE_TYPE_HOST_MEM_ALLOC_DESC};
  void *src = nullptr, *dst = nullptr, *on_dev = nullptr;
  CHECK(zeMemAllocShared(ctx, &ddesc, &hdesc, n, 0, dev, &src));
  CHECK(zeMemAllocShared(ctx, &ddesc, &hdesc, n, 0, dev, &dst));
  CHECK(zeMemAllocDevice(ctx, &ddesc, n, 0, dev, &on_dev));
  auto* s = static_cast<std::uint8_t*>(src);
  auto* d = static_cast<std::uint8_t*>(dst);
  for (std::size_t i = 0; i < n; ++i) s[i] = pattern(i);
  std::memset(d, 0xee, n);

  const std::uint8_t fill = 0x3c;
  CHECK(zeCommandListAppendMemoryCopy(list, on_dev, src, n, nullptr, 0, nullptr));
  CHECK(zeCommandListAppendMemoryFill(list, src, &fill, 1, n, nullptr, 0, nullptr));
  CHECK(zeCommandListAppendMemoryCopy(list, dst, on_dev, n, nullptr, 0, nullptr));

  std::size_t bad_copy = 0, bad_fill = 0;
  for (std::size_t i = 0; i < n; ++i) {
    bad_copy += d[i] != pattern(i);
    bad_fill += s[i] != fill;
  }
  CHECK(zeMemFree(ctx, on_dev));
  CHECK(zeMemFree(ctx, dst));
  CHECK(zeMemFree(ctx, src));
  CHECK(zeCommandListDestroy(list));
  CHECK(zeContextDestroy(ctx));
  if (bad_copy || bad_fill) {
    std::printf("ze_app: FAILED: %zu wrong bytes after shared->device->shared copies, %zu after the fill\n", bad_copy,
                bad_fill);
    return 1;
  }
  std::printf("ze_app: ok: '%s', %llu bytes of device memory, %zu bytes moved and checked\n", props.name,
              static_cast<unsigned long long>(mem.totalSize), 2 * n);
  return 0;
}
