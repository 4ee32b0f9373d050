// SPIR-V modules: validation, translation, lowering, JIT and the cache (see
// spirv_module.hpp).
#include "level-zero/spirv_module.hpp"

#include <LLVMSPIRVLib/LLVMSPIRVLib.h>
#include <llvm/ExecutionEngine/Orc/ExecutionUtils.h>
#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/ExecutionEngine/Orc/ThreadSafeModule.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/SHA1.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>

#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <spirv-tools/libspirv.hpp>
#include <sstream>

#include "level-zero/spirv_device_calls.hpp"
#include "level-zero/spirv_lowering.hpp"

namespace xesvm::ze {

namespace {

constexpr std::uint32_t kSpirvMagic = 0x07230203;
constexpr std::size_t kCacheEntries = 64;

// What the device's compiler handles (level-zero/README.md).
const std::set<std::string>& supported_capabilities() {
  static const std::set<std::string> s = {"Addresses",    "Linkage",        "Kernel",       "Vector16",
                                          "Int8",         "Int16",          "Int64",        "Float64",
                                          "Int64Atomics", "GenericPointer", "Float16Buffer"};
  return s;
}
const std::set<std::string>& supported_extensions() {
  static const std::set<std::string> s = {"SPV_KHR_no_integer_wrap_decoration"};
  return s;
}

[[noreturn]] void build_failure(const std::string& log) { fail(ZE_RESULT_ERROR_MODULE_BUILD_FAILURE, log); }

std::string join(const std::set<std::string>& s) {
  std::string r;
  for (const auto& x : s) r += (r.empty() ? "" : ", ") + x;
  return r;
}

spv_target_env target_env(std::uint32_t version) {
  switch (version) {
    case 0x00010000:
      return SPV_ENV_UNIVERSAL_1_0;
    case 0x00010100:
      return SPV_ENV_UNIVERSAL_1_1;
    case 0x00010200:
      return SPV_ENV_UNIVERSAL_1_2;
    case 0x00010300:
      return SPV_ENV_UNIVERSAL_1_3;
    case 0x00010400:
      return SPV_ENV_UNIVERSAL_1_4;
    default:
      build_failure("SPIR-V version " + std::to_string(version >> 16) + "." + std::to_string((version >> 8) & 0xff) +
                    " is not supported; expected 1.0 to 1.4");
  }
}

// Validates the module and checks its capabilities and extensions.
void validate(const std::vector<std::uint32_t>& words) {
  spvtools::SpirvTools tools(target_env(words[1]));
  std::string messages;
  tools.SetMessageConsumer([&](spv_message_level_t, const char*, const spv_position_t& pos, const char* msg) {
    messages += "  word " + std::to_string(pos.index) + ": " + msg + "\n";
  });
  if (!tools.Validate(words)) build_failure("the SPIR-V module is not valid (spirv-val):\n" + messages);
  std::string text;
  if (!tools.Disassemble(words, &text, SPV_BINARY_TO_TEXT_OPTION_NONE))
    build_failure("the SPIR-V module cannot be disassembled:\n" + messages);
  std::set<std::string> bad_caps, bad_exts;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream in(line);
    std::string op, arg;
    in >> op >> arg;
    if (op == "OpCapability" && !supported_capabilities().count(arg)) bad_caps.insert(arg);
    if (op == "OpExtension") {
      if (arg.size() >= 2 && arg.front() == '"') arg = arg.substr(1, arg.size() - 2);
      if (!supported_extensions().count(arg)) bad_exts.insert(arg);
    }
  }
  std::string log;
  if (!bad_caps.empty()) {
    log += "unsupported SPIR-V capability: " + join(bad_caps) + " (the sim device supports " +
           join(supported_capabilities()) + ")\n";
  }
  if (!bad_exts.empty()) {
    log += "unsupported SPIR-V extension: " + join(bad_exts) + " (the sim device supports " +
           join(supported_extensions()) + ")\n";
  }
  if (!log.empty()) build_failure(log);
}

std::string to_string(llvm::Error e) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << e;
  return os.str();
}

struct Compiled {
  std::shared_ptr<const Program> program;
  std::string log;
};

// The JIT'd code of one module: kept alive by its Program.
struct JitCode {
  std::unique_ptr<llvm::orc::LLJIT> jit;
};

Compiled compile(const std::vector<std::uint32_t>& words, const ze_module_constants_t* constants) {
  const auto t0 = std::chrono::steady_clock::now();
  validate(words);
  static std::once_flag init;
  std::call_once(init, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
  });

  auto jtmb = llvm::orc::JITTargetMachineBuilder::detectHost();
  if (!jtmb) build_failure("cannot target the host: " + to_string(jtmb.takeError()));
  jtmb->setCodeGenOptLevel(llvm::CodeGenOpt::Default);
  auto tm = jtmb->createTargetMachine();
  if (!tm) build_failure("cannot create the host target machine: " + to_string(tm.takeError()));

  // SPIR-V -> LLVM IR.
  auto ctx = std::make_unique<llvm::LLVMContext>();
  ctx->setOpaquePointers(false);
  SPIRV::TranslatorOpts opts(SPIRV::VersionNumber::MaximumVersion);
  opts.setDesiredBIsRepresentation(SPIRV::BIsRepresentation::OpenCL12);
  if (constants) {
    for (std::uint32_t i = 0; i < constants->numConstants; ++i) {
      std::uint64_t v = 0;
      if (constants->pConstantValues && constants->pConstantValues[i])
        std::memcpy(&v, constants->pConstantValues[i], sizeof v);
      opts.setSpecConst(constants->pConstantIds[i], v);
    }
  }
  std::string bytes(reinterpret_cast<const char*>(words.data()), words.size() * 4);
  std::istringstream in(bytes);
  llvm::Module* raw = nullptr;
  std::string err;
  const bool ok = llvm::readSpirv(*ctx, opts, in, raw, err);
  std::unique_ptr<llvm::Module> m(raw);
  if (!ok || !m) build_failure("the SPIR-V module cannot be translated: " + err);
  m->setTargetTriple(tm.get()->getTargetTriple().str());
  m->setDataLayout(tm.get()->createDataLayout());

  LoweredModule lowered;
  try {
    lowered = lower_for_device(*m);
  } catch (const LoweringError& e) {
    build_failure(e.what());
  }
  {
    std::string v;
    llvm::raw_string_ostream os(v);
    if (llvm::verifyModule(*m, &os)) build_failure("internal error: the lowered module is invalid: " + os.str());
  }
  {
    llvm::LoopAnalysisManager lam;
    llvm::FunctionAnalysisManager fam;
    llvm::CGSCCAnalysisManager cgam;
    llvm::ModuleAnalysisManager mam;
    llvm::PassBuilder pb(tm.get().get());
    pb.registerModuleAnalyses(mam);
    pb.registerCGSCCAnalyses(cgam);
    pb.registerFunctionAnalyses(fam);
    pb.registerLoopAnalyses(lam);
    pb.crossRegisterProxies(lam, fam, cgam, mam);
    pb.buildPerModuleDefaultPipeline(llvm::OptimizationLevel::O2).run(*m, mam);
  }
  try {
    check_lowered(*m);
  } catch (const LoweringError& e) {
    build_failure(std::string("internal error: ") + e.what());
  }

  // Host code.
  auto jit = llvm::orc::LLJITBuilder().setJITTargetMachineBuilder(std::move(*jtmb)).create();
  if (!jit) build_failure("cannot create the JIT: " + to_string(jit.takeError()));
  llvm::orc::JITDylib& lib = (*jit)->getMainJITDylib();
  llvm::orc::SymbolMap calls;
  for (const auto& [name, addr] : device_call_symbols()) {
    calls[(*jit)->mangleAndIntern(name)] =
        llvm::JITEvaluatedSymbol(llvm::pointerToJITTargetAddress(addr), llvm::JITSymbolFlags::Exported);
  }
  if (auto e = lib.define(llvm::orc::absoluteSymbols(std::move(calls))))
    build_failure("cannot define the device calls: " + to_string(std::move(e)));
  // libm (the math intrinsics) and the C library (memcpy, memset).
  auto process =
      llvm::orc::DynamicLibrarySearchGenerator::GetForCurrentProcess((*jit)->getDataLayout().getGlobalPrefix());
  if (!process) build_failure("cannot search the process's symbols: " + to_string(process.takeError()));
  lib.addGenerator(std::move(*process));
  if (auto e = (*jit)->addIRModule(llvm::orc::ThreadSafeModule(std::move(m), std::move(ctx))))
    build_failure("cannot add the module to the JIT: " + to_string(std::move(e)));

  auto program = std::make_shared<Program>();
  for (const LoweredKernel& k : lowered.kernels) {
    auto addr = (*jit)->lookup(k.entry);
    if (!addr) build_failure("kernel " + k.name + " cannot be compiled: " + to_string(addr.takeError()));
    KernelInfo info;
    info.name = k.name;
    info.fn2 = addr->toPtr<xesvm_ze_group_kernel_fn>();
    info.arg_sizes = k.arg_sizes;
    for (bool local : k.arg_local) info.arg_kinds.push_back(local ? ArgKind::kLocal : ArgKind::kValue);
    std::copy(k.required_group_size, k.required_group_size + 3, info.required_group_size);
    info.local_mem_size = lowered.local_mem_size;
    info.barriers = lowered.barriers;
    program->kernels.push_back(std::move(info));
  }
  auto code = std::make_shared<JitCode>();
  code->jit = std::move(*jit);
  program->code = std::move(code);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  char buf[160];
  std::snprintf(buf, sizeof buf, "xesvm: compiled %zu kernels from SPIR-V %u.%u in %.1f ms\n", program->kernels.size(),
                words[1] >> 16, (words[1] >> 8) & 0xff, ms);
  return Compiled{std::move(program), buf};
}

// The cache key: SHA-1 of the SPIR-V, the flags and the constants.
std::string cache_key(const std::vector<std::uint32_t>& words, const char* flags,
                      const ze_module_constants_t* constants) {
  llvm::SHA1 h;
  h.update(llvm::ArrayRef<std::uint8_t>(reinterpret_cast<const std::uint8_t*>(words.data()), words.size() * 4));
  const std::string f = std::string("\0flags:", 7) + (flags ? flags : "");
  h.update(f);
  if (constants) {
    for (std::uint32_t i = 0; i < constants->numConstants; ++i) {
      std::uint64_t v = 0;
      if (constants->pConstantValues && constants->pConstantValues[i])
        std::memcpy(&v, constants->pConstantValues[i], sizeof v);
      const std::uint64_t pair[2] = {constants->pConstantIds[i], v};
      h.update(llvm::ArrayRef<std::uint8_t>(reinterpret_cast<const std::uint8_t*>(pair), sizeof pair));
    }
  }
  const auto digest = h.final();
  return std::string(reinterpret_cast<const char*>(digest.data()), digest.size());
}

struct Cache {
  std::mutex mu;  // also serialises builds
  std::map<std::string, std::shared_ptr<const Program>> programs;
  std::deque<std::string> order;  // oldest first
};

Cache& cache() {
  // Never destroyed: programs must not outlive LLVM's own statics at exit.
  static Cache* c = new Cache;
  return *c;
}

}  // namespace

bool spirv_supported() { return true; }

std::shared_ptr<const Program> build_spirv(const std::uint8_t* il, std::size_t size, const char* flags,
                                           const ze_module_constants_t* constants, std::string* log) {
  if (size < 20 || size % 4 != 0) {
    build_failure("not a SPIR-V module: " + std::to_string(size) +
                  " bytes; expected a multiple of 4 of at least 20 (the header)");
  }
  std::vector<std::uint32_t> words(size / 4);
  std::memcpy(words.data(), il, size);
  if (words[0] != kSpirvMagic) build_failure("not a SPIR-V module: the first word is not the magic number 0x07230203");
  if (constants && constants->numConstants && !constants->pConstantIds)
    fail(ZE_RESULT_ERROR_INVALID_NULL_POINTER, "pConstants->pConstantIds is NULL");
  const std::string key = cache_key(words, flags, constants);
  Cache& c = cache();
  std::lock_guard lk(c.mu);
  if (auto it = c.programs.find(key); it != c.programs.end()) {
    if (log) *log = "xesvm: reused the compiled module from the in-memory cache\n";
    return it->second;
  }
  Compiled built = compile(words, constants);
  c.programs[key] = built.program;
  c.order.push_back(key);
  if (c.order.size() > kCacheEntries) {
    c.programs.erase(c.order.front());
    c.order.pop_front();
  }
  if (log) *log = built.log;
  return built.program;
}

}  // namespace xesvm::ze
