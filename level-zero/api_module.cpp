// Entry points: modules, build logs and kernels (see api.hpp for the
// contract; loading native modules and launches are in module.cpp).
#include <cstring>

#include "level-zero/api.hpp"
#if XESVM_ZE_SPIRV
#include "level-zero/spirv_module.hpp"
#endif
#include "level-zero/work_group.hpp"

namespace xesvm::ze::api {

namespace {

const KernelInfo* find_kernel(const Module& m, const char* name) { return m.program->find(name); }

// --- modules and build logs -----------------------------------------------------------

ze_result_t ZE_APICALL ModuleCreate(ze_context_handle_t hContext, ze_device_handle_t hDevice,
                                    const ze_module_desc_t* desc, ze_module_handle_t* ph,
                                    ze_module_build_log_handle_t* phLog) {
  if (phLog) *phLog = nullptr;
  return create("zeModuleCreate", ph, [&]() -> ze_result_t {
    Context& c = live<Context>(hContext, "hContext");
    Device& d = live<Device>(hDevice, "hDevice");
    need(desc, "desc");
    need(desc->pInputModule, "desc->pInputModule");
    need(ph, "phModule");
    check_enum(desc->format, ZE_MODULE_FORMAT_NATIVE, "desc->format");
    if (desc->inputSize == 0) fail(ZE_RESULT_ERROR_INVALID_SIZE, "desc->inputSize is 0");
    try {
      auto m = create_module(c, d, *desc);
      if (phLog) *phLog = new BuildLog(m->build_log);
      *ph = m.release();
      return ZE_RESULT_SUCCESS;
    } catch (const ZeError& e) {
      if (phLog) *phLog = new BuildLog(e.what);  // a failed build still has its log
      throw;
    }
  });
}

ze_result_t ZE_APICALL ModuleDestroy(ze_module_handle_t h) {
  return destroy<Module>(
      "zeModuleDestroy", h, "hModule", [](const Module& m) { return m.kernels.load() != 0; },
      "the module still has kernels");
}

ze_result_t ZE_APICALL ModuleDynamicLink(std::uint32_t n, ze_module_handle_t* phModules,
                                         ze_module_build_log_handle_t* phLog) {
  if (phLog) *phLog = nullptr;
  return guard("zeModuleDynamicLink", [&]() -> ze_result_t {
    need(phModules, "phModules");
    for (std::uint32_t i = 0; i < n; ++i) live<Module>(phModules[i], "phModules[i]");
    if (phLog) *phLog = new BuildLog("");
    return ZE_RESULT_SUCCESS;  // native modules have no imports
  });
}

ze_result_t ZE_APICALL ModuleGetNativeBinary(ze_module_handle_t h, size_t* pSize, std::uint8_t* pBin) {
  return guard("zeModuleGetNativeBinary", [&]() -> ze_result_t {
    const auto& b = live<Module>(h, "hModule").binary;
    need(pSize, "pSize");
    if (pBin) {
      std::memcpy(pBin, b.data(), std::min(*pSize, b.size()));
    } else {
      *pSize = b.size();
    }
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL ModuleGetGlobalPointer(ze_module_handle_t h, const char* name, [[maybe_unused]] size_t* pSize,
                                              [[maybe_unused]] void** pptr) {
  return guard("zeModuleGetGlobalPointer", [&]() -> ze_result_t {
    [[maybe_unused]] const Module& m = live<Module>(h, "hModule");
    need(name, "pGlobalName");
#if XESVM_ZE_SPIRV
    // A SPIR-V module's exported program-scope variables (the module's own
    // block of device memory).
    if (SpirvGlobal g; find_spirv_global(*m.program, name, &g)) {
      if (pSize) *pSize = g.size;
      if (pptr) *pptr = reinterpret_cast<void*>(g.address);
      return ZE_RESULT_SUCCESS;
    }
#endif
    fail(ZE_RESULT_ERROR_INVALID_GLOBAL_NAME,
         std::string("the module exports no global variable named '") + name +
             "' (kernel libraries have none; a SPIR-V module's are its variables with linkage Export)");
  });
}

ze_result_t ZE_APICALL ModuleGetKernelNames(ze_module_handle_t h, std::uint32_t* pCount, const char** pNames) {
  return guard("zeModuleGetKernelNames", [&]() -> ze_result_t {
    const auto& ks = live<Module>(h, "hModule").program->kernels;
    return count_fill(pCount, pNames, static_cast<std::uint32_t>(ks.size()),
                      [&](const char*& s, std::uint32_t i) { s = ks[i].name.c_str(); });
  });
}

ze_result_t ZE_APICALL ModuleGetProperties(ze_module_handle_t h, ze_module_properties_t* p) {
  return query<Module>("zeModuleGetProperties", h, "hModule", p, [](Module&) { return ze_module_properties_t{}; });
}

ze_result_t ZE_APICALL ModuleGetFunctionPointer(ze_module_handle_t h, const char* name, void** pfn) {
  return guard("zeModuleGetFunctionPointer", [&]() -> ze_result_t {
    Module& m = live<Module>(h, "hModule");
    need(name, "pFunctionName");
    need(pfn, "pfnFunction");
    const auto* k = find_kernel(m, name);
    if (!k) fail(ZE_RESULT_ERROR_INVALID_FUNCTION_NAME, std::string("no kernel named '") + name + "'");
    *pfn = k->fn2 ? reinterpret_cast<void*>(k->fn2) : reinterpret_cast<void*>(k->fn1);
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL BuildLogDestroy(ze_module_build_log_handle_t h) {
  return destroy<BuildLog>("zeModuleBuildLogDestroy", h, "hModuleBuildLog");
}

ze_result_t ZE_APICALL BuildLogGetString(ze_module_build_log_handle_t h, size_t* pSize, char* out) {
  return guard("zeModuleBuildLogGetString",
               [&]() -> ze_result_t { return copy_string(live<BuildLog>(h, "hModuleBuildLog").text, pSize, out); });
}

// --- kernels ----------------------------------------------------------------------------

ze_result_t ZE_APICALL KernelCreate(ze_module_handle_t h, const ze_kernel_desc_t* desc, ze_kernel_handle_t* ph) {
  return create("zeKernelCreate", ph, [&]() -> ze_result_t {
    Module& m = live<Module>(h, "hModule");
    need(desc, "desc");
    need(desc->pKernelName, "desc->pKernelName");
    need(ph, "phKernel");
    check_enum(desc->flags, ZE_KERNEL_FLAG_FORCE_RESIDENCY | ZE_KERNEL_FLAG_EXPLICIT_RESIDENCY, "desc->flags");
    const auto* k = find_kernel(m, desc->pKernelName);
    if (!k) fail(ZE_RESULT_ERROR_INVALID_KERNEL_NAME, std::string("no kernel named '") + desc->pKernelName + "'");
    *ph = new Kernel(m, *k);
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL KernelDestroy(ze_kernel_handle_t h) { return destroy<Kernel>("zeKernelDestroy", h, "hKernel"); }

ze_result_t ZE_APICALL KernelSetCacheConfig(ze_kernel_handle_t h, ze_cache_config_flags_t flags) {
  return guard("zeKernelSetCacheConfig", [&]() -> ze_result_t {
    live<Kernel>(h, "hKernel");
    check_enum(flags, ZE_CACHE_CONFIG_FLAG_LARGE_SLM | ZE_CACHE_CONFIG_FLAG_LARGE_DATA, "flags");
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL KernelSetGroupSize(ze_kernel_handle_t h, std::uint32_t x, std::uint32_t y, std::uint32_t z) {
  return guard("zeKernelSetGroupSize", [&]() -> ze_result_t {
    Kernel& k = live<Kernel>(h, "hKernel");
    if (!x || !y || !z || std::uint64_t(x) * y * z > kMaxGroupSize) {
      fail(ZE_RESULT_ERROR_INVALID_GROUP_SIZE_DIMENSION,
           "a group size is 0 or the group has more than " + std::to_string(kMaxGroupSize) + " work items");
    }
    const auto& r = k.desc.required_group_size;
    if (r[0] && (x != r[0] || y != std::max(r[1], 1u) || z != std::max(r[2], 1u))) {
      fail(ZE_RESULT_ERROR_INVALID_GROUP_SIZE_DIMENSION, "the kernel requires another group size");
    }
    k.group[0] = x;
    k.group[1] = y;
    k.group[2] = z;
    return ZE_RESULT_SUCCESS;
  });
}

// Largest divisor of g that is at most limit.
std::uint32_t divisor(std::uint32_t g, std::uint32_t limit) {
  for (std::uint32_t d = std::min(g, limit); d > 1; --d) {
    if (g % d == 0) return d;
  }
  return 1;
}

ze_result_t ZE_APICALL KernelSuggestGroupSize(ze_kernel_handle_t h, std::uint32_t gx, std::uint32_t gy,
                                              std::uint32_t gz, std::uint32_t* px, std::uint32_t* py,
                                              std::uint32_t* pz) {
  return guard("zeKernelSuggestGroupSize", [&]() -> ze_result_t {
    const auto& r = live<Kernel>(h, "hKernel").desc.required_group_size;
    need(px, "groupSizeX");
    need(py, "groupSizeY");
    need(pz, "groupSizeZ");
    if (!gx || !gy || !gz) fail(ZE_RESULT_ERROR_INVALID_GLOBAL_WIDTH_DIMENSION, "a global size is 0");
    if (r[0]) {
      *px = r[0];
      *py = std::max(r[1], 1u);
      *pz = std::max(r[2], 1u);
      return ZE_RESULT_SUCCESS;
    }
    *px = divisor(gx, 256);
    *py = divisor(gy, 256 / *px);
    *pz = divisor(gz, 256 / (*px * *py));
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL KernelSetArgumentValue(ze_kernel_handle_t h, std::uint32_t idx, size_t size, const void* value) {
  return guard("zeKernelSetArgumentValue", [&]() -> ze_result_t {
    Kernel& k = live<Kernel>(h, "hKernel");
    const std::size_t nargs = k.desc.arg_sizes.size();
    if (idx >= nargs) {
      fail(ZE_RESULT_ERROR_INVALID_KERNEL_ARGUMENT_INDEX,
           "argIndex " + std::to_string(idx) + ": the kernel has " + std::to_string(nargs) + " arguments");
    }
    if (k.desc.arg_kinds[idx] == ArgKind::kLocal) {
      // A local-memory argument: size is the bytes wanted, the value NULL.
      if (value) {
        fail(ZE_RESULT_ERROR_INVALID_ARGUMENT,
             "argument " + std::to_string(idx) + " is local memory: pArgValue must be NULL (argSize is its bytes)");
      }
      if (size == 0 || size > kMaxLocalMemory) {
        fail(ZE_RESULT_ERROR_INVALID_KERNEL_ARGUMENT_SIZE, "argument " + std::to_string(idx) +
                                                               " is local memory: argSize must be 1.." +
                                                               std::to_string(kMaxLocalMemory));
      }
      k.local_sizes[idx] = size;
      k.set[idx] = true;
      return ZE_RESULT_SUCCESS;
    }
    if (size != k.desc.arg_sizes[idx]) {
      fail(ZE_RESULT_ERROR_INVALID_KERNEL_ARGUMENT_SIZE,
           "argument " + std::to_string(idx) + " has " + std::to_string(k.desc.arg_sizes[idx]) + " bytes");
    }
    if (value) {
      std::memcpy(k.args[idx].data(), value, size);
    } else {
      std::fill(k.args[idx].begin(), k.args[idx].end(), std::byte{0});
    }
    k.set[idx] = true;
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL KernelSetIndirectAccess(ze_kernel_handle_t h, ze_kernel_indirect_access_flags_t flags) {
  return guard("zeKernelSetIndirectAccess", [&]() -> ze_result_t {
    Kernel& k = live<Kernel>(h, "hKernel");
    check_enum(flags, 0x7, "flags");
    k.indirect = flags;  // every allocation is always reachable
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL KernelGetIndirectAccess(ze_kernel_handle_t h, ze_kernel_indirect_access_flags_t* flags) {
  return guard("zeKernelGetIndirectAccess", [&]() -> ze_result_t {
    Kernel& k = live<Kernel>(h, "hKernel");
    need(flags, "pFlags");
    *flags = k.indirect;
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL KernelGetSourceAttributes(ze_kernel_handle_t h, std::uint32_t* pSize, char** pString) {
  return guard("zeKernelGetSourceAttributes", [&]() -> ze_result_t {
    live<Kernel>(h, "hKernel");
    need(pSize, "pSize");
    need(pString, "pString");
    static char empty[1] = {0};
    *pSize = 1;
    *pString = empty;
    return ZE_RESULT_SUCCESS;
  });
}

ze_result_t ZE_APICALL KernelGetProperties(ze_kernel_handle_t h, ze_kernel_properties_t* p) {
  return query<Kernel>("zeKernelGetProperties", h, "hKernel", p, [](Kernel& k) {
    ze_kernel_properties_t v{};
    v.numKernelArgs = static_cast<std::uint32_t>(k.desc.arg_sizes.size());
    v.localMemSize = k.desc.local_mem_size;
    v.requiredGroupSizeX = k.desc.required_group_size[0];
    v.requiredGroupSizeY = k.desc.required_group_size[1];
    v.requiredGroupSizeZ = k.desc.required_group_size[2];
    v.requiredSubgroupSize = k.desc.required_sub_group_size;
    v.maxSubgroupSize = 1;  // sub-groups are one work item wide
    v.maxNumSubgroups = kMaxGroupSize;
    return v;
  });
}

ze_result_t ZE_APICALL KernelGetName(ze_kernel_handle_t h, size_t* pSize, char* pName) {
  return guard("zeKernelGetName", [&]() -> ze_result_t {
    return copy_string(live<Kernel>(h, "hKernel").desc.name.c_str(), pSize, pName);
  });
}

}  // namespace

void fill(ze_module_dditable_t& t) {
  // clang-format off
  t = {.pfnCreate = ModuleCreate, .pfnDestroy = ModuleDestroy, .pfnDynamicLink = ModuleDynamicLink,
       .pfnGetNativeBinary = ModuleGetNativeBinary, .pfnGetGlobalPointer = ModuleGetGlobalPointer,
       .pfnGetKernelNames = ModuleGetKernelNames, .pfnGetProperties = ModuleGetProperties,
       .pfnGetFunctionPointer = ModuleGetFunctionPointer, .pfnInspectLinkageExt = unsupported};
  // clang-format on
}

void fill(ze_module_build_log_dditable_t& t) { t = {.pfnDestroy = BuildLogDestroy, .pfnGetString = BuildLogGetString}; }

void fill(ze_kernel_dditable_t& t) {
  // clang-format off
  t = {.pfnCreate = KernelCreate, .pfnDestroy = KernelDestroy,
       .pfnSetCacheConfig = KernelSetCacheConfig, .pfnSetGroupSize = KernelSetGroupSize,
       .pfnSuggestGroupSize = KernelSuggestGroupSize,
       .pfnSuggestMaxCooperativeGroupCount = unsupported,
       .pfnSetArgumentValue = KernelSetArgumentValue,
       .pfnSetIndirectAccess = KernelSetIndirectAccess,
       .pfnGetIndirectAccess = KernelGetIndirectAccess,
       .pfnGetSourceAttributes = KernelGetSourceAttributes, .pfnGetProperties = KernelGetProperties,
       .pfnGetName = KernelGetName};
  // clang-format on
}

}  // namespace xesvm::ze::api
