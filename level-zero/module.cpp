// Native modules (host kernel libraries, include/xesvm/ze_kernel.h) and
// kernel launches on the device's execution engine.
#include <dlfcn.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "level-zero/driver.hpp"
#include "level-zero/kernel_memory.hpp"
#if XESVM_ZE_SPIRV
#include "level-zero/spirv_device_calls.hpp"
#include "level-zero/spirv_module.hpp"
#endif
#include "level-zero/work_group.hpp"

namespace xesvm::ze {

Library::~Library() {
  if (handle) dlclose(handle);
  if (memfd >= 0) close(memfd);
}

namespace {

constexpr char kPrefix[] = XESVM_ZE_NATIVE_PREFIX;

// Reads the kernel table of an ABI 1 or ABI 2 library into kernels.
template <class Desc>
void read_kernels(const std::string& path, const Desc* table, std::uint32_t n, std::vector<KernelInfo>& kernels) {
  constexpr bool kV2 = std::is_same_v<Desc, xesvm_ze_kernel_desc2>;
  if (n && !table) fail(ZE_RESULT_ERROR_INVALID_NATIVE_BINARY, "kernel library " + path + ": kernels is NULL");
  for (std::uint32_t i = 0; i < n; ++i) {
    const Desc& k = table[i];
    const std::string which = "kernel library " + path + ": kernel " + std::to_string(i);
    bool ok = k.name && k.fn && k.num_args <= XESVM_ZE_MAX_KERNEL_ARGS && (k.num_args == 0 || k.arg_sizes);
    for (std::uint32_t a = 0; ok && a < k.num_args; ++a)
      ok = k.arg_sizes[a] >= 1 && k.arg_sizes[a] <= XESVM_ZE_MAX_ARG_SIZE;
    if (!ok) fail(ZE_RESULT_ERROR_INVALID_NATIVE_BINARY, which + " is malformed");
    KernelInfo info;
    info.name = k.name;
    info.arg_sizes.assign(k.arg_sizes, k.arg_sizes + k.num_args);
    info.arg_kinds.assign(k.num_args, ArgKind::kValue);
    std::copy(k.required_group_size, k.required_group_size + 3, info.required_group_size);
    if constexpr (kV2) {
      info.fn2 = k.fn;
      info.barriers = (k.flags & XESVM_ZE_KERNEL_BARRIERS) != 0;
      if (k.flags & ~XESVM_ZE_KERNEL_BARRIERS)
        fail(ZE_RESULT_ERROR_INVALID_NATIVE_BINARY, which + " has unknown flags (expected XESVM_ZE_KERNEL_*)");
      if (k.local_mem_size > kMaxLocalMemory) {
        fail(ZE_RESULT_ERROR_INVALID_NATIVE_BINARY, which + " needs " + std::to_string(k.local_mem_size) +
                                                        " bytes of local memory; the device has " +
                                                        std::to_string(kMaxLocalMemory));
      }
      info.local_mem_size = k.local_mem_size;
      for (std::uint32_t a = 0; k.arg_kinds && a < k.num_args; ++a) {
        if (k.arg_kinds[a] == XESVM_ZE_ARG_LOCAL && k.arg_sizes[a] == 8) {
          info.arg_kinds[a] = ArgKind::kLocal;
        } else if (k.arg_kinds[a] != XESVM_ZE_ARG_VALUE) {
          fail(ZE_RESULT_ERROR_INVALID_NATIVE_BINARY,
               which + ": argument " + std::to_string(a) +
                   " has an unknown kind (expected XESVM_ZE_ARG_VALUE, or XESVM_ZE_ARG_LOCAL with size 8)");
        }
      }
    } else {
      info.fn1 = k.fn;
    }
    kernels.push_back(std::move(info));
  }
}

std::shared_ptr<const Program> load(const std::string& path, int memfd) {
  auto lib = std::make_shared<Library>();
  lib->memfd = memfd;
  lib->handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib->handle) {
    const char* e = dlerror();
    fail(ZE_RESULT_ERROR_MODULE_BUILD_FAILURE, "cannot load kernel library " + path + ": " + (e ? e : "?"));
  }
  auto fn = reinterpret_cast<xesvm_ze_module_fn>(dlsym(lib->handle, XESVM_ZE_MODULE_SYMBOL));
  if (!fn) {
    fail(ZE_RESULT_ERROR_INVALID_NATIVE_BINARY,
         "kernel library " + path + " does not export " XESVM_ZE_MODULE_SYMBOL " (see include/xesvm/ze_kernel.h)");
  }
  const xesvm_ze_module_desc* desc = fn();
  auto program = std::make_shared<Program>();
  if (desc && desc->abi_version == XESVM_ZE_KERNEL_ABI_VERSION) {
    read_kernels(path, desc->kernels, desc->num_kernels, program->kernels);
  } else if (desc && desc->abi_version == XESVM_ZE_KERNEL_ABI_VERSION_2) {
    const auto* d2 = reinterpret_cast<const xesvm_ze_module_desc2*>(desc);
    read_kernels(path, d2->kernels, d2->num_kernels, program->kernels);
  } else {
    fail(ZE_RESULT_ERROR_INVALID_NATIVE_BINARY,
         "kernel library " + path + " has ABI version " + std::to_string(desc ? desc->abi_version : 0) + "; expected " +
             std::to_string(XESVM_ZE_KERNEL_ABI_VERSION) + " or " + std::to_string(XESVM_ZE_KERNEL_ABI_VERSION_2));
  }
  program->code = std::move(lib);
  return program;
}

}  // namespace

std::unique_ptr<Module> create_module(Context& ctx, Device& dev, const ze_module_desc_t& desc) {
  if ((desc.format == ZE_MODULE_FORMAT_IL_SPIRV || desc.format == ZE_MODULE_FORMAT_NATIVE) &&
      !dev.runtime().capabilities().host_kernels) {
    // Both kinds of module run as host code on the device's engine; this
    // device's engine runs copies and fills only.
    const std::string why = "zeModuleCreate: device " + dev.uri() + " (" + dev.runtime().capabilities().backend +
                            " backend) runs copies and fills only: it cannot run kernels, so it takes no modules";
    log(why);
    fail(ZE_RESULT_ERROR_UNSUPPORTED_FEATURE, why);
  }
  if (desc.format == ZE_MODULE_FORMAT_IL_SPIRV) {
#if XESVM_ZE_SPIRV
    auto m = std::make_unique<Module>(ctx, dev);
    m->binary.assign(desc.pInputModule, desc.pInputModule + desc.inputSize);
    m->program = instantiate_spirv(
        ctx, dev, build_spirv(desc.pInputModule, desc.inputSize, desc.pBuildFlags, desc.pConstants, &m->build_log));
    return m;
#else
    const std::string why =
        "zeModuleCreate: SPIR-V modules are not supported: this driver was built without its SPIR-V compiler "
        "(XESVM_ZE_SPIRV=OFF). Use ZE_MODULE_FORMAT_NATIVE with an xesvm kernel library "
        "(include/xesvm/ze_kernel.h).";
    log(why);
    fail(ZE_RESULT_ERROR_UNSUPPORTED_FEATURE, why);
#endif
  }
  if (desc.format != ZE_MODULE_FORMAT_NATIVE)
    fail(ZE_RESULT_ERROR_INVALID_ENUMERATION, "zeModuleCreate: unknown format");
  auto m = std::make_unique<Module>(ctx, dev);
  const auto* in = desc.pInputModule;
  m->binary.assign(in, in + desc.inputSize);
  const std::size_t plen = sizeof(kPrefix) - 1;
  if (desc.inputSize > plen && std::memcmp(in, kPrefix, plen) == 0) {
    std::string path(reinterpret_cast<const char*>(in) + plen, desc.inputSize - plen);
    if (!path.empty() && path.back() == '\0') path.pop_back();
    if (path.empty() || path.find('\0') != std::string::npos)
      fail(ZE_RESULT_ERROR_INVALID_NATIVE_BINARY, "zeModuleCreate: bad library path");
    m->program = load(path, -1);
  } else if (desc.inputSize >= 4 && std::memcmp(in,
                                                "\x7f"
                                                "ELF",
                                                4) == 0) {
    int fd = memfd_create("xesvm-ze-kernels", MFD_CLOEXEC);
    if (fd < 0) fail(ZE_RESULT_ERROR_OUT_OF_HOST_MEMORY, "zeModuleCreate: memfd_create failed");
    std::size_t done = 0;
    while (done < desc.inputSize) {
      ssize_t w = write(fd, in + done, desc.inputSize - done);
      if (w <= 0) {
        close(fd);
        fail(ZE_RESULT_ERROR_OUT_OF_HOST_MEMORY, "zeModuleCreate: cannot write the library image");
      }
      done += static_cast<std::size_t>(w);
    }
    m->program = load("/proc/self/fd/" + std::to_string(fd), fd);
  } else {
    fail(ZE_RESULT_ERROR_INVALID_NATIVE_BINARY,
         "zeModuleCreate: a native module is \"" XESVM_ZE_NATIVE_PREFIX
         "/path/lib.so\" or an ELF shared library image (include/xesvm/ze_kernel.h)");
  }
  return m;
}

const KernelInfo* Program::find(const char* name) const {
  for (const KernelInfo& k : kernels) {
    if (k.name == name) return &k;
  }
  return nullptr;
}

Kernel::Kernel(Module& m, const KernelInfo& d) : module(m), program(m.program), desc(d) {
  for (std::size_t i = 0; i < d.arg_sizes.size(); ++i) {
    args.emplace_back(d.arg_kinds[i] == ArgKind::kLocal ? 0 : d.arg_sizes[i]);
  }
  local_sizes.assign(d.arg_sizes.size(), 0);
  set.assign(d.arg_sizes.size(), false);
  if (d.required_group_size[0]) {
    for (int i = 0; i < 3; ++i) group[i] = d.required_group_size[i] ? d.required_group_size[i] : 1;
  }
  ++module.kernels;
}

Kernel::~Kernel() { --module.kernels; }

namespace {

int mem_read(void* c, std::uint64_t src, void* dst, std::size_t n) {
  return static_cast<KernelMemory*>(c)->read(src, dst, n);
}
int mem_write(void* c, std::uint64_t dst, const void* src, std::size_t n) {
  return static_cast<KernelMemory*>(c)->write(dst, src, n);
}
template <class T>
int mem_add(void* c, std::uint64_t addr, T v, T* old) {
  return static_cast<KernelMemory*>(c)->atomic<T>(addr, AtomicOp::kAdd, v, 0, old);
}

}  // namespace

xesvm_ze_memory kernel_memory_abi(KernelMemory& m) {
  return xesvm_ze_memory{&m, mem_read, mem_write, mem_add<std::uint32_t>, mem_add<std::uint64_t>};
}

std::function<void()> launch_body(Kernel& k, Device& dev, const ze_group_count_t& groups) {
  const KernelInfo& info = k.desc;
  const std::size_t nargs = info.arg_sizes.size();
  for (std::size_t i = 0; i < nargs; ++i) {
    if (!k.set[i]) {
      fail(ZE_RESULT_ERROR_INVALID_ARGUMENT, "zeCommandListAppendLaunchKernel: argument " + std::to_string(i) +
                                                 " of kernel '" + info.name + "' was never set");
    }
  }
  // The group's arena: the kernel's own local data, then each local argument.
  auto align64 = [](std::size_t n) { return (n + 63) & ~std::size_t{63}; };
  std::vector<std::size_t> local_offset(nargs, 0);
  std::size_t local_total = align64(info.local_mem_size);
  for (std::size_t i = 0; i < nargs; ++i) {
    if (info.arg_kinds[i] != ArgKind::kLocal) continue;
    local_offset[i] = local_total;
    local_total += align64(k.local_sizes[i]);
  }
  if (local_total > kMaxLocalMemory) {
    fail(ZE_RESULT_ERROR_INVALID_ARGUMENT, "zeCommandListAppendLaunchKernel: kernel '" + info.name + "' needs " +
                                               std::to_string(local_total) +
                                               " bytes of local memory per group; the device has " +
                                               std::to_string(kMaxLocalMemory) + " (maxSharedLocalMemory)");
  }
  struct Launch {
    std::shared_ptr<const Program> program;
    const KernelInfo* info;
    std::vector<std::vector<std::byte>> args;
    std::vector<std::size_t> local_offset;
    std::size_t local_total;
    std::uint32_t local[3];
    std::uint32_t count[3];
  };
  auto l = std::make_shared<Launch>(Launch{k.program,
                                           &info,
                                           k.args,
                                           std::move(local_offset),
                                           local_total,
                                           {k.group[0], k.group[1], k.group[2]},
                                           {groups.groupCountX, groups.groupCountY, groups.groupCountZ}});
  Device* d = &dev;
  return [l, d] {
    const std::uint32_t per_group = l->local[0] * l->local[1] * l->local[2];
    const std::uint64_t ngroups = std::uint64_t(l->count[0]) * l->count[1] * l->count[2];
    if (per_group == 0 || ngroups == 0) return;
    const Xlate xlate = Driver::get().xlate();
    const auto maps =
        d->shared_system() ? accessible_mappings() : std::vector<std::pair<std::uint64_t, std::uint64_t>>{};
    const std::uint64_t gsize[3] = {std::uint64_t(l->count[0]) * l->local[0], std::uint64_t(l->count[1]) * l->local[1],
                                    std::uint64_t(l->count[2]) * l->local[2]};
    const KernelInfo& info = *l->info;
#if XESVM_ZE_SPIRV
    const std::uint64_t globals = spirv_globals_base(*l->program);  // a SPIR-V module's variables
#endif
    // One engine work item per work group: its items run on that worker.
    d->runtime().launch(ngroups, [&](const WorkItem& wg, DeviceAccessor& acc) {
#if XESVM_ZE_SPIRV
      const GlobalsScope globals_scope(globals);
#endif
      WorkGroupRunner& runner = WorkGroupRunner::current();
      std::byte* arena = runner.local_memory();
      std::vector<std::uint64_t> local_ptr(info.arg_sizes.size(), 0);
      std::vector<const void*> argv(info.arg_sizes.size());
      for (std::size_t i = 0; i < argv.size(); ++i) {
        if (info.arg_kinds[i] == ArgKind::kLocal) {
          local_ptr[i] = reinterpret_cast<std::uint64_t>(arena + l->local_offset[i]);
          argv[i] = &local_ptr[i];
        } else {
          argv[i] = l->args[i].data();
        }
      }
      std::uint32_t group_id[3];
      std::uint64_t g = wg.global_id;
      for (int i = 0; i < 3; ++i) {
        group_id[i] = static_cast<std::uint32_t>(g % l->count[i]);
        g /= l->count[i];
      }
      const xesvm_ze_group grp{arena, l->local_total, &runner, group_barrier};
      std::vector<KernelMemory> ctx(per_group,
                                    KernelMemory{&acc, &xlate, d->shared_system() ? &maps : nullptr, false, {}});
      const std::string group_error = runner.run(per_group, info.barriers, [&](std::uint32_t li) {
        xesvm_ze_item it{};
        std::uint32_t rest = li;
        for (int i = 0; i < 3; ++i) {
          it.local_id[i] = rest % l->local[i];
          rest /= l->local[i];
          it.group_id[i] = group_id[i];
          it.local_size[i] = l->local[i];
          it.group_count[i] = l->count[i];
          it.global_size[i] = gsize[i];
          it.global_id[i] = std::uint64_t(group_id[i]) * l->local[i] + it.local_id[i];
        }
        it.global_linear_id = it.global_id[0] + gsize[0] * (it.global_id[1] + gsize[1] * it.global_id[2]);
        it.global_linear_size = gsize[0] * gsize[1] * gsize[2];
        const xesvm_ze_memory mem = kernel_memory_abi(ctx[li]);
        if (info.fn2) {
          info.fn2(&it, &mem, argv.data(), &grp);
        } else {
          info.fn1(&it, &mem, argv.data());
        }
      });
      for (const KernelMemory& c : ctx) {
        if (c.failed) throw Error(Error::Code::kDeviceLost, "GPU fault in kernel '" + info.name + "': " + c.error);
      }
      if (!group_error.empty()) throw Error(Error::Code::kDeviceLost, "kernel '" + info.name + "': " + group_error);
    });
  };
}

}  // namespace xesvm::ze
