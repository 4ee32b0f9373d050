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
    ze_module_handle_t probe = nullptr;
    std::string why;
    if (try_module(&probe, &why) == ZE_RESULT_ERROR_UNSUPPORTED_FEATURE)
      GTEST_SKIP() << "zeModuleCreate: ZE_RESULT_ERROR_UNSUPPORTED_FEATURE: this device runs no kernels" << why;
    if (probe) zeModuleDestroy(probe);
    module = module_from_library(XESVM_ZE_GROUP_KERNELS);
    ze_device_compute_properties_t cp{ZE_STRUCTURE_TYPE_DEVICE_COMPUTE_PROPERTIES, nullptr};
    ZE_OK(zeDeviceGetComputeProperties(device, &cp));
    slm = cp.maxSharedLocalMemory;
  }
  void TearDown() override {
    if (module) zeModuleDestroy(module);
    Ze::TearDown();
  }
  // Runs fill_local with a local block of size bytes over groups groups of
  // `group` items; returns the bytes the items found wrong.
  std::uint32_t fill_local(ze_kernel_handle_t k, std::uint32_t size, std::uint32_t group, std::uint32_t groups) {
    auto* errors = static_cast<std::uint32_t*>(shared(4));
    *errors = 0;
    EXPECT_EQ(ZE_RESULT_SUCCESS, zeKernelSetArgumentValue(k, 0, size, nullptr));
    EXPECT_EQ(ZE_RESULT_SUCCESS, zeKernelSetArgumentValue(k, 1, 4, &size));
    EXPECT_EQ(ZE_RESULT_SUCCESS, zeKernelSetArgumentValue(k, 2, 8, &errors));
    EXPECT_EQ(ZE_RESULT_SUCCESS, zeKernelSetGroupSize(k, group, 1, 1));
    const ze_group_count_t g{groups, 1, 1};
    EXPECT_EQ(ZE_RESULT_SUCCESS, zeCommandListAppendLaunchKernel(sync_imm, k, &g, nullptr, 0, nullptr));
    return *errors;
  }
  ze_module_handle_t module = nullptr;
  std::uint32_t slm = 0;
};

TEST_F(ZeGroup, DeviceReportsTheLocalMemoryAGroupHas) { EXPECT_EQ(64u << 10, slm); }

TEST_F(ZeGroup, ReductionWithBarriersAndLocalMemorySumsEveryGroup) {
  ze_kernel_handle_t k = kernel(module, "reduce");
  ze_kernel_properties_t kp{ZE_STRUCTURE_TYPE_KERNEL_PROPERTIES, nullptr};
  ZE_OK(zeKernelGetProperties(k, &kp));
  EXPECT_EQ(64u, kp.localMemSize);
  expect_reduction(k, 256, 64);
  expect_reduction(k, 1024, 4);  // the largest group
  ZE_OK(zeKernelDestroy(k));
}

TEST_F(ZeGroup, LocalMemoryOfTheReportedSizeIsUsableAndPrivateToItsGroup) {
  ze_kernel_handle_t k = kernel(module, "fill_local");
  EXPECT_EQ(0u, fill_local(k, slm, 64, 16));
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
  EXPECT_EQ(0u, fill_local(k, 4096, 32, 8));
  ZE_OK(zeKernelDestroy(k));
}

}  // namespace
}  // namespace xesvm_ze_test
