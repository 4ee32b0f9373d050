// A Level Zero device over a backend that runs no kernels (the xe backend:
// XESVM_BACKEND=xe: in the QEMU guest of the kernel series, through
// tests/xe/guest-suite.sh): what it reports, that modules are refused, and
// copies and fills done by the GPU's copy engine, byte-checked. The tests
// that need such a device skip on the sim, saying so; the others run on
// both devices.
#include <malloc.h>
#include <sys/mman.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "ze_fixture.hpp"

namespace {

using namespace xesvm_ze_test;

#define SKIP_UNLESS_COPY_ONLY() \
  if (!copy_only) GTEST_SKIP() << "the device runs kernels (the sim); this checks a device that does not (xe)"

// zeModuleCreate on a device without kernels: ZE_RESULT_ERROR_UNSUPPORTED_FEATURE
// for native and SPIR-V modules alike, NULL in the module handle, and a
// build log that says why.
TEST_F(Ze, XeModulesAreUnsupportedWithABuildLog) {
  SKIP_UNLESS_COPY_ONLY();
  const xesvm::ze::NativeModuleDesc native(XESVM_ZE_TEST_KERNELS);
  const std::uint8_t spirv[20] = {0x03, 0x02, 0x23, 0x07};
  ze_module_desc_t il{
      ZE_STRUCTURE_TYPE_MODULE_DESC, nullptr, ZE_MODULE_FORMAT_IL_SPIRV, sizeof spirv, spirv, nullptr, nullptr};
  for (const ze_module_desc_t* md : {native.get(), static_cast<const ze_module_desc_t*>(&il)}) {
    SCOPED_TRACE(md->format == ZE_MODULE_FORMAT_NATIVE ? "native" : "SPIR-V");
    ze_module_handle_t m = bogus<ze_module_handle_t>();
    ze_module_build_log_handle_t log = nullptr;
    ZE_EXPECT(ZE_RESULT_ERROR_UNSUPPORTED_FEATURE,
              zeModuleCreate(ctx, device, md, &m, intercept_mode() ? nullptr : &log));
    EXPECT_EQ(nullptr, m);
    if (m && m != bogus<ze_module_handle_t>()) zeModuleDestroy(m);
    if (intercept_mode()) continue;  // the loader wraps the log of a successful build only
    ASSERT_NE(nullptr, log);
    std::size_t n = 0;
    ZE_OK(zeModuleBuildLogGetString(log, &n, nullptr));
    EXPECT_GT(n, 1u) << "the build log says why";
    ZE_OK(zeModuleBuildLogDestroy(log));
  }
}

// The device is what the kernel driver reports: Intel's vendor id, the PCI
// device id and the device memory of MEM_REGIONS, and no compute units,
// sub-groups or modules (none run on it through this driver).
TEST_F(Ze, XeDeviceReportsTheKernelDriversDevice) {
  SKIP_UNLESS_COPY_ONLY();
  ze_device_properties_t p{ZE_STRUCTURE_TYPE_DEVICE_PROPERTIES, nullptr};
  ZE_OK(zeDeviceGetProperties(device, &p));
  EXPECT_EQ(0x8086u, p.vendorId);
  char id[16];
  std::snprintf(id, sizeof id, "0x%04x", p.deviceId);
  EXPECT_NE(nullptr, std::strstr(p.name, id)) << p.name;
  EXPECT_NE(nullptr, std::strstr(p.name, "Intel Xe device")) << p.name;
  EXPECT_TRUE(p.flags & ZE_DEVICE_PROPERTY_FLAG_ONDEMANDPAGING);
  EXPECT_EQ(0u, p.numSlices);
  EXPECT_EQ(0u, p.numEUsPerSubslice);
  EXPECT_EQ(0u, p.coreClockRate);
  const auto mp = only_entry<ze_device_memory_properties_t>(
      ZE_STRUCTURE_TYPE_DEVICE_MEMORY_PROPERTIES,
      [&](std::uint32_t* count, auto* out) { return zeDeviceGetMemoryProperties(device, count, out); });
  EXPECT_GT(mp.totalSize, 0u);
  EXPECT_EQ(mp.totalSize, p.maxMemAllocSize);
  ze_device_compute_properties_t cp{ZE_STRUCTURE_TYPE_DEVICE_COMPUTE_PROPERTIES, nullptr};
  ZE_OK(zeDeviceGetComputeProperties(device, &cp));
  EXPECT_EQ(0u, cp.maxTotalGroupSize);
  EXPECT_EQ(0u, cp.numSubGroupSizes);
  EXPECT_EQ(0u, cp.maxSharedLocalMemory);
  ze_device_module_properties_t modp{ZE_STRUCTURE_TYPE_DEVICE_MODULE_PROPERTIES, nullptr};
  ZE_OK(zeDeviceGetModuleProperties(device, &modp));
  EXPECT_EQ(0u, modp.spirvVersionSupported);
  const auto qg = only_entry<ze_command_queue_group_properties_t>(
      ZE_STRUCTURE_TYPE_COMMAND_QUEUE_GROUP_PROPERTIES,
      [&](std::uint32_t* count, auto* out) { return zeDeviceGetCommandQueueGroupProperties(device, count, out); });
  EXPECT_EQ(ZE_COMMAND_QUEUE_GROUP_PROPERTY_FLAG_COPY, qg.flags);
  ze_device_memory_access_properties_t ap{ZE_STRUCTURE_TYPE_DEVICE_MEMORY_ACCESS_PROPERTIES, nullptr};
  ZE_OK(zeDeviceGetMemoryAccessProperties(device, &ap));
  EXPECT_EQ(0u, ap.sharedSystemAllocCapabilities);
}

// Copies of several MiB through every kind of memory, and fills that start
// and end off the pattern's alignment (the device fills the aligned middle
// with the pattern rotated to it; the head and tail come from staging
// memory), every byte and the bytes around the fill checked.
TEST_F(Ze, LargeCopiesAndUnalignedFillsKeepEveryByte) {
  const std::size_t n = std::min<std::size_t>((6u << 20) + 4097, vram / 2);
  std::vector<unsigned char> src(n), back(n, 0);
  for (std::size_t i = 0; i < n; ++i) src[i] = static_cast<unsigned char>(i * 151 + i / 8191);
  void* h = host_mem(n);
  void* d = dev_mem(n);
  auto* s = static_cast<unsigned char*>(shared(n));
  ASSERT_TRUE(h && d && s);
  ZE_OK(zeCommandListAppendMemoryCopy(list, h, src.data(), n, nullptr, 0, nullptr));
  ZE_OK(zeCommandListAppendMemoryCopy(list, d, h, n, nullptr, 0, nullptr));
  ZE_OK(zeCommandListAppendMemoryCopy(list, s, d, n, nullptr, 0, nullptr));
  ZE_OK(zeCommandListAppendMemoryCopy(list, back.data(), s, n, nullptr, 0, nullptr));
  ZE_OK(run_list());
  ASSERT_EQ(0, std::memcmp(src.data(), back.data(), n));
  ASSERT_EQ(0, std::memcmp(src.data(), s, n));
  for (std::size_t ps : {1u, 2u, 4u, 8u, 128u}) {
    SCOPED_TRACE(ps);
    std::vector<unsigned char> pat(ps);
    for (std::size_t i = 0; i < ps; ++i) pat[i] = static_cast<unsigned char>(0x11 + i * 5);
    const std::size_t at = 3, len = n - 10;  // off the alignment at both ends, no whole number of patterns
    std::memcpy(s, src.data(), n);
    ZE_OK(zeCommandListAppendMemoryCopy(sync_imm, d, src.data(), n, nullptr, 0, nullptr));
    ZE_OK(zeCommandListAppendMemoryFill(sync_imm, s + at, pat.data(), ps, len, nullptr, 0, nullptr));
    ZE_OK(
        zeCommandListAppendMemoryFill(sync_imm, static_cast<char*>(d) + at, pat.data(), ps, len, nullptr, 0, nullptr));
    ZE_OK(zeCommandListAppendMemoryCopy(sync_imm, back.data(), d, n, nullptr, 0, nullptr));
    for (const unsigned char* got :
         {static_cast<const unsigned char*>(s), static_cast<const unsigned char*>(back.data())}) {
      for (std::size_t i = 0; i < n; ++i) {
        const unsigned char want = i >= at && i < at + len ? pat[(i - at) % ps] : src[i];
        ASSERT_EQ(want, got[i]) << "byte " << i;
      }
    }
  }
}

// The application's own memory (malloc'd, its own mapping) in copies and
// fills, on any device; on a device without shared-system memory,
// prefetch and advice refuse it, naming the reason.
TEST_F(Ze, MallocdMemoryInCopiesAndFills) {
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  const std::size_t n = (1u << 20) + 333;
  auto* m = static_cast<unsigned char*>(std::malloc(n));
  ASSERT_TRUE(m);
  for (std::size_t i = 0; i < n; ++i) m[i] = static_cast<unsigned char>(i * 29 + 1);
  void* d = dev_mem(n);
  std::vector<unsigned char> out(n, 0);
  ZE_OK(zeCommandListAppendMemoryCopy(sync_imm, d, m, n, nullptr, 0, nullptr));
  ZE_OK(zeCommandListAppendMemoryCopy(sync_imm, out.data(), d, n, nullptr, 0, nullptr));
  for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(static_cast<unsigned char>(i * 29 + 1), out[i]) << i;
  const std::uint16_t pat = 0xBEEF;
  ZE_OK(zeCommandListAppendMemoryFill(sync_imm, m + 1, &pat, 2, n - 2, nullptr, 0, nullptr));
  EXPECT_EQ(1, m[0]);
  for (std::size_t i = 1; i < n - 1; ++i)
    ASSERT_EQ(reinterpret_cast<const unsigned char*>(&pat)[(i - 1) % 2], m[i]) << i;
  EXPECT_EQ(static_cast<unsigned char>((n - 1) * 29 + 1), m[n - 1]);
  if (copy_only) {
    ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ARGUMENT, zeCommandListAppendMemoryPrefetch(sync_imm, m, n));
    ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ARGUMENT,
              zeCommandListAppendMemAdvise(sync_imm, device, m, n, ZE_MEMORY_ADVICE_SET_PREFERRED_LOCATION));
  }
  std::free(m);
}

// The device removed under an open context (sysfs unbind of the kernel
// series' software Xe device) while shared memory is on it: copies and fills
// answer ZE_RESULT_ERROR_DEVICE_LOST (the driver's log line names the
// kernel's ENODEV), the shared memory keeps every byte, and tearing down the
// context and lists does not crash or hang. The device is bound again at the
// end. It takes the device from everything else, so it runs only with
// XESVM_XE_REMOVAL_TEST=1 (tests/xe/guest-suite.sh: on its own, last).
TEST_F(Ze, XeDeviceRemovedUnderAnOpenContextIsDeviceLost) {
  SKIP_UNLESS_COPY_ONLY();
  const char* opt = std::getenv("XESVM_XE_REMOVAL_TEST");
  if (!opt || std::string(opt) != "1")
    GTEST_SKIP() << "removes the Xe device (sysfs unbind): runs only with XESVM_XE_REMOVAL_TEST=1, as "
                    "tests/xe/guest-suite.sh runs it, on its own and last";
  const std::string drv = "/sys/bus/platform/drivers/xe_soft";
  if (access((drv + "/unbind").c_str(), W_OK) != 0)
    GTEST_SKIP() << "no writable " << drv << "/unbind: only the software Xe device is removed by this test";
  auto sysfs = [&](const char* file) {
    std::ofstream f(drv + "/" + file);
    f << "xe_soft";
    f.flush();
    return static_cast<bool>(f);
  };
  struct Rebind {
    std::function<bool(const char*)> write;
    bool armed = false;
    ~Rebind() {
      if (armed) write("bind");
    }
  } rebind{sysfs};
  const std::size_t n = 4u << 20;
  auto* p = static_cast<unsigned char*>(shared(n));
  auto* q = static_cast<unsigned char*>(shared(1u << 20));
  ASSERT_NE(nullptr, p);
  ASSERT_NE(nullptr, q);
  for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<unsigned char>(i * 13 + 5);
  std::memset(q, 0, 1u << 20);
  ZE_OK(zeCommandListAppendMemoryPrefetch(sync_imm, p, n));
  ASSERT_TRUE(sysfs("unbind")) << "unbind failed: " << std::strerror(errno);
  rebind.armed = true;
  for (std::size_t i = 0; i < n; ++i)
    ASSERT_EQ(static_cast<unsigned char>(i * 13 + 5), p[i]) << "offset " << i << " after the unbind";
  ZE_EXPECT(ZE_RESULT_ERROR_DEVICE_LOST, zeCommandListAppendMemoryCopy(sync_imm, q, p, 1u << 20, nullptr, 0, nullptr));
  const std::uint32_t pat = 0x5a5a5a5a;
  ZE_EXPECT(ZE_RESULT_ERROR_DEVICE_LOST,
            zeCommandListAppendMemoryFill(sync_imm, q, &pat, sizeof pat, 1u << 20, nullptr, 0, nullptr));
  for (std::size_t i = 0; i < (1u << 20); ++i) ASSERT_EQ(0, q[i]) << "offset " << i;
  for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(static_cast<unsigned char>(i * 13 + 5), p[i]) << "offset " << i;
  // TearDown frees the memory and destroys the lists and the context on the
  // removed device; the device is bound again after that (Rebind) or here.
}

}  // namespace
