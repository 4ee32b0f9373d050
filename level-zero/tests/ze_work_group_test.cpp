// Work groups (kernel ABI version 2, level-zero/include/xesvm/ze_work_group.h):
// local memory of the size the device reports, barriers, and what happens
// when a group's items do not meet.
#include "ze_fixture.hpp"

#ifndef XESVM_ZE_GROUP_KERNELS
#error "XESVM_ZE_GROUP_KERNELS must name the ABI 2 test kernel library"
#endif

namespace xesvm_ze_test {
namespace {

class ZeGroup : public Ze {
 protected:
  void SetUp() override {
    Ze::SetUp();
    module = module_from_library(XESVM_ZE_GROUP_KERNELS);
    ze_device_compute_properties_t cp{ZE_STRUCTURE_TYPE_DEVICE_COMPUTE_PROPERTIES, nullptr};
    ZE_OK(zeDeviceGetComputeProperties(device, &cp));
    slm = cp.maxSharedLocalMemory;
  }
  void TearDown() override {
    if (module) zeModuleDestroy(module);
    Ze::TearDown();
  }
  ze_module_handle_t module = nullptr;
  std::uint32_t slm = 0;
};

TEST_F(ZeGroup, DeviceReportsTheLocalMemoryAGroupHas) { EXPECT_EQ(64u << 10, slm); }

TEST_F(ZeGroup, ReductionWithBarriersAndLocalMemorySumsEveryGroup) {
  constexpr std::uint32_t kGroup = 256, kGroups = 64;
  auto* in = static_cast<std::uint32_t*>(shared(kGroup * kGroups * 4));
  auto* out = static_cast<std::uint32_t*>(shared(kGroups * 4));
  auto* errors = static_cast<std::uint32_t*>(shared(4));
  ASSERT_TRUE(in && out && errors);
  for (std::uint32_t i = 0; i < kGroup * kGroups; ++i) in[i] = i * 3 + 1;
  std::fill(out, out + kGroups, 0u);
  *errors = 0;
  ze_kernel_handle_t k = kernel(module, "reduce");
  ze_kernel_properties_t kp{ZE_STRUCTURE_TYPE_KERNEL_PROPERTIES, nullptr};
  ZE_OK(zeKernelGetProperties(k, &kp));
  EXPECT_EQ(64u, kp.localMemSize);
  ZE_OK(zeKernelSetArgumentValue(k, 0, 8, &in));
  ZE_OK(zeKernelSetArgumentValue(k, 1, 8, &out));
  ZE_OK(zeKernelSetArgumentValue(k, 2, kGroup * 4, nullptr));
  ZE_OK(zeKernelSetArgumentValue(k, 3, 8, &errors));
  ZE_OK(zeKernelSetGroupSize(k, kGroup, 1, 1));
  const ze_group_count_t g{kGroups, 1, 1};
  // Through a regular list and queue as well as an immediate list.
  ZE_OK(zeCommandListAppendLaunchKernel(list, k, &g, nullptr, 0, nullptr));
  ZE_OK(run_list());
  for (std::uint32_t grp = 0; grp < kGroups; ++grp) {
    std::uint64_t want = 0;
    for (std::uint32_t i = 0; i < kGroup; ++i) want += (grp * kGroup + i) * 3 + 1;
    EXPECT_EQ(static_cast<std::uint32_t>(want), out[grp]) << "group " << grp;
  }
  EXPECT_EQ(0u, *errors);
  std::fill(out, out + kGroups, 0u);
  ZE_OK(zeCommandListAppendLaunchKernel(sync_imm, k, &g, nullptr, 0, nullptr));
  EXPECT_EQ(static_cast<std::uint32_t>(kGroup * (kGroup - 1) / 2 * 3 + kGroup), out[0]);
  EXPECT_EQ(0u, *errors);
  ZE_OK(zeKernelDestroy(k));
}

TEST_F(ZeGroup, LocalMemoryOfTheReportedSizeIsUsableAndPrivateToItsGroup) {
  ze_kernel_handle_t k = kernel(module, "fill_local");
  auto* errors = static_cast<std::uint32_t*>(shared(4));
  *errors = 0;
  ZE_OK(zeKernelSetArgumentValue(k, 0, slm, nullptr));
  ZE_OK(zeKernelSetArgumentValue(k, 1, 4, &slm));
  ZE_OK(zeKernelSetArgumentValue(k, 2, 8, &errors));
  ZE_OK(zeKernelSetGroupSize(k, 64, 1, 1));
  const ze_group_count_t g{16, 1, 1};
  ZE_OK(zeCommandListAppendLaunchKernel(sync_imm, k, &g, nullptr, 0, nullptr));
  EXPECT_EQ(0u, *errors);
  // One byte more than the device has is refused, saying so.
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_KERNEL_ARGUMENT_SIZE, zeKernelSetArgumentValue(k, 0, slm + 1, nullptr));
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ARGUMENT, zeKernelSetArgumentValue(k, 0, 16, &slm));
  ZE_OK(zeKernelDestroy(k));
}

TEST_F(ZeGroup, LocalMemoryBeyondTheDeviceIsRefusedAtLaunch) {
  // The kernel's own 64 bytes plus a local argument of the whole arena.
  ze_kernel_handle_t k = kernel(module, "reduce");
  void* p = shared(4096);
  for (std::uint32_t i : {0u, 1u, 3u}) ZE_OK(zeKernelSetArgumentValue(k, i, 8, &p));
  ZE_OK(zeKernelSetArgumentValue(k, 2, slm, nullptr));
  const ze_group_count_t g{1, 1, 1};
  ZE_EXPECT(ZE_RESULT_ERROR_INVALID_ARGUMENT, zeCommandListAppendLaunchKernel(sync_imm, k, &g, nullptr, 0, nullptr));
  ZE_OK(zeKernelDestroy(k));
}

TEST_F(ZeGroup, ItemsThatDivergeAtABarrierLoseTheDevice) {
  for (const char* name : {"diverge", "undeclared_barrier"}) {
    ze_kernel_handle_t k = kernel(module, name);
    ZE_OK(zeKernelSetGroupSize(k, 8, 1, 1));
    const ze_group_count_t g{4, 1, 1};
    ZE_OK(zeCommandListAppendLaunchKernel(list, k, &g, nullptr, 0, nullptr));
    EXPECT_EQ(ZE_RESULT_ERROR_DEVICE_LOST, run_list()) << name;
    ZE_OK(zeKernelDestroy(k));
  }
  // The device still runs kernels afterwards.
  ze_kernel_handle_t k = kernel(module, "fill_local");
  auto* errors = static_cast<std::uint32_t*>(shared(4));
  *errors = 0;
  const std::uint32_t size = 4096;
  ZE_OK(zeKernelSetArgumentValue(k, 0, size, nullptr));
  ZE_OK(zeKernelSetArgumentValue(k, 1, 4, &size));
  ZE_OK(zeKernelSetArgumentValue(k, 2, 8, &errors));
  ZE_OK(zeKernelSetGroupSize(k, 32, 1, 1));
  const ze_group_count_t g{8, 1, 1};
  ZE_OK(zeCommandListAppendLaunchKernel(sync_imm, k, &g, nullptr, 0, nullptr));
  EXPECT_EQ(0u, *errors);
  ZE_OK(zeKernelDestroy(k));
}

}  // namespace
}  // namespace xesvm_ze_test
