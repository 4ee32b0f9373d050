// Native modules (host kernel libraries, include/xesvm/ze_kernel.h) and
// kernel launches on the device's execution engine.
#include <dlfcn.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include "level-zero/driver.hpp"

namespace xesvm::ze {

Library::~Library() {
  if (handle) dlclose(handle);
  if (memfd >= 0) close(memfd);
}

namespace {

constexpr char kPrefix[] = XESVM_ZE_NATIVE_PREFIX;

std::shared_ptr<Library> load(const std::string& path, int memfd) {
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
  lib->desc = fn();
  if (!lib->desc || lib->desc->abi_version != XESVM_ZE_KERNEL_ABI_VERSION) {
    fail(ZE_RESULT_ERROR_INVALID_NATIVE_BINARY, "kernel library " + path + " has ABI version " +
                                                    std::to_string(lib->desc ? lib->desc->abi_version : 0) +
                                                    "; expected " + std::to_string(XESVM_ZE_KERNEL_ABI_VERSION));
  }
  for (std::uint32_t i = 0; i < lib->desc->num_kernels; ++i) {
    const xesvm_ze_kernel_desc& k = lib->desc->kernels[i];
    bool ok = k.name && k.fn && k.num_args <= XESVM_ZE_MAX_KERNEL_ARGS && (k.num_args == 0 || k.arg_sizes);
    for (std::uint32_t a = 0; ok && a < k.num_args; ++a)
      ok = k.arg_sizes[a] >= 1 && k.arg_sizes[a] <= XESVM_ZE_MAX_ARG_SIZE;
    if (!ok)
      fail(ZE_RESULT_ERROR_INVALID_NATIVE_BINARY,
           "kernel library " + path + ": kernel " + std::to_string(i) + " is malformed");
  }
  return lib;
}

}  // namespace

std::unique_ptr<Module> create_module(Context& ctx, Device& dev, const ze_module_desc_t& desc) {
  if (desc.format == ZE_MODULE_FORMAT_IL_SPIRV) {
    const std::string why =
        "zeModuleCreate: SPIR-V modules are not supported: the sim device has no SPIR-V compiler. "
        "Use ZE_MODULE_FORMAT_NATIVE with an xesvm kernel library (include/xesvm/ze_kernel.h); memory, copy, "
        "prefetch, advice and event paths work without kernels.";
    log(why);
    fail(ZE_RESULT_ERROR_UNSUPPORTED_FEATURE, why);
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
    m->lib = load(path, -1);
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
    m->lib = load("/proc/self/fd/" + std::to_string(fd), fd);
  } else {
    fail(ZE_RESULT_ERROR_INVALID_NATIVE_BINARY,
         "zeModuleCreate: a native module is \"" XESVM_ZE_NATIVE_PREFIX
         "/path/lib.so\" or an ELF shared library image (include/xesvm/ze_kernel.h)");
  }
  return m;
}

Kernel::Kernel(Module& m, const xesvm_ze_kernel_desc& d) : module(m), lib(m.lib), desc(d) {
  for (std::uint32_t i = 0; i < d.num_args; ++i) args.emplace_back(d.arg_sizes[i]);
  set.assign(d.num_args, false);
  if (d.required_group_size[0]) {
    for (int i = 0; i < 3; ++i) group[i] = d.required_group_size[i] ? d.required_group_size[i] : 1;
  }
  ++module.kernels;
}

Kernel::~Kernel() { --module.kernels; }

namespace {

// The accessor a kernel sees: translation, then the runtime's accessor.
struct MemCtx {
  DeviceAccessor* acc;
  const Xlate* xlate;
  /// The accessible mappings when the device shares plain system memory
  /// (Device::shared_system), else nullptr.
  const std::vector<std::pair<std::uint64_t, std::uint64_t>>* system;
  bool failed = false;
  std::string error;

  // Runs device_op on the translated address. Plain system memory the device
  // does not mirror (the accessor reports it as no SVM memory) is reached
  // with direct_op instead when the device shares system memory, as the copy
  // engine reaches it.
  template <class DeviceOp, class DirectOp>
  void access(std::uint64_t addr, std::size_t n, DeviceOp&& device_op, DirectOp&& direct_op) {
    const std::uint64_t a = at(addr, n);
    try {
      device_op(a);
    } catch (const Error& e) {
      if (e.code() != Error::Code::kDeviceLost || !system || a != addr || !accessible(*system, addr, n)) throw;
      direct_op(addr);
    }
  }

  template <class F>
  int guard(F&& f) {
    if (failed) return -1;
    try {
      f();
      return 0;
    } catch (const std::exception& e) {
      failed = true;
      error = e.what();
    } catch (...) {
      failed = true;
      error = "unknown error";
    }
    return -1;
  }
  std::uint64_t at(std::uint64_t addr, std::size_t n) {
    std::uint64_t a = (*xlate)(addr, n);
    if (!a)
      throw Error(Error::Code::kDeviceLost,
                  "access of " + std::to_string(n) + " bytes runs past the end of a device allocation");
    return a;
  }
};

int mem_read(void* c, std::uint64_t src, void* dst, std::size_t n) {
  auto* m = static_cast<MemCtx*>(c);
  int r = m->guard([&] {
    m->access(
        src, n, [&](std::uint64_t a) { m->acc->read(a, dst, n); },
        [&](std::uint64_t a) { std::memcpy(dst, reinterpret_cast<const void*>(a), n); });
  });
  if (r) std::memset(dst, 0, n);
  return r;
}
int mem_write(void* c, std::uint64_t dst, const void* src, std::size_t n) {
  auto* m = static_cast<MemCtx*>(c);
  return m->guard([&] {
    m->access(
        dst, n, [&](std::uint64_t a) { m->acc->write(a, src, n); },
        [&](std::uint64_t a) { std::memcpy(reinterpret_cast<void*>(a), src, n); });
  });
}
// Atomic fetch-add of a 32- or 64-bit word; *old (if not NULL) gets the
// previous value (0 after a fault).
template <class T>
int mem_add(void* c, std::uint64_t addr, T v, T* old) {
  auto* m = static_cast<MemCtx*>(c);
  T o = 0;
  int r = m->guard([&] {
    m->access(
        addr, sizeof(T),
        [&](std::uint64_t a) {
          if constexpr (sizeof(T) == 4) {
            o = m->acc->atomic_add(a, v);
          } else {
            o = m->acc->atomic_add64(a, v);
          }
        },
        [&](std::uint64_t a) { o = __atomic_fetch_add(reinterpret_cast<T*>(a), v, __ATOMIC_SEQ_CST); });
  });
  if (old) *old = o;
  return r;
}

}  // namespace

std::function<void()> launch_body(Kernel& k, Device& dev, const ze_group_count_t& groups) {
  for (std::uint32_t i = 0; i < k.desc.num_args; ++i) {
    if (!k.set[i]) {
      fail(ZE_RESULT_ERROR_INVALID_ARGUMENT, std::string("zeCommandListAppendLaunchKernel: argument ") +
                                                 std::to_string(i) + " of kernel '" + k.desc.name + "' was never set");
    }
  }
  struct Launch {
    std::shared_ptr<Library> lib;
    xesvm_ze_kernel_fn fn;
    std::vector<std::vector<std::byte>> args;
    std::uint32_t local[3];
    std::uint32_t count[3];
  };
  auto l = std::make_shared<Launch>(Launch{k.lib,
                                           k.desc.fn,
                                           k.args,
                                           {k.group[0], k.group[1], k.group[2]},
                                           {groups.groupCountX, groups.groupCountY, groups.groupCountZ}});
  Device* d = &dev;
  return [l, d] {
    const std::uint64_t per_group = std::uint64_t(l->local[0]) * l->local[1] * l->local[2];
    const std::uint64_t ngroups = std::uint64_t(l->count[0]) * l->count[1] * l->count[2];
    if (per_group == 0 || ngroups == 0) return;
    const Xlate xlate = Driver::get().xlate();
    const auto maps =
        d->shared_system() ? accessible_mappings() : std::vector<std::pair<std::uint64_t, std::uint64_t>>{};
    std::vector<const void*> argv;
    for (auto& a : l->args) argv.push_back(a.data());
    const std::uint64_t gsize[3] = {std::uint64_t(l->count[0]) * l->local[0], std::uint64_t(l->count[1]) * l->local[1],
                                    std::uint64_t(l->count[2]) * l->local[2]};
    d->runtime().launch(per_group * ngroups, [&](const WorkItem& wi, DeviceAccessor& acc) {
      xesvm_ze_item it{};
      std::uint64_t g = wi.global_id / per_group, li = wi.global_id % per_group;
      for (int i = 0; i < 3; ++i) {
        it.group_id[i] = static_cast<std::uint32_t>(g % l->count[i]);
        g /= l->count[i];
        it.local_id[i] = static_cast<std::uint32_t>(li % l->local[i]);
        li /= l->local[i];
        it.local_size[i] = l->local[i];
        it.group_count[i] = l->count[i];
        it.global_size[i] = gsize[i];
        it.global_id[i] = std::uint64_t(it.group_id[i]) * l->local[i] + it.local_id[i];
      }
      it.global_linear_id = it.global_id[0] + gsize[0] * (it.global_id[1] + gsize[1] * it.global_id[2]);
      it.global_linear_size = wi.global_size;
      MemCtx ctx{&acc, &xlate, d->shared_system() ? &maps : nullptr, false, {}};
      const xesvm_ze_memory mem{&ctx, mem_read, mem_write, mem_add<std::uint32_t>, mem_add<std::uint64_t>};
      l->fn(&it, &mem, argv.data());
      if (ctx.failed) throw Error(Error::Code::kDeviceLost, "GPU fault in kernel: " + ctx.error);
    });
  };
}

}  // namespace xesvm::ze
