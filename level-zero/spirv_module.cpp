// SPIR-V modules: validation, translation, lowering, JIT and the cache (see
// spirv_module.hpp).
#include "level-zero/spirv_module.hpp"

#include <llvm/ADT/StringMap.h>
#include <llvm/Bitcode/BitcodeReader.h>
#include <llvm/Bitcode/BitcodeWriter.h>
#include <llvm/Config/llvm-config.h>
#include <llvm/ExecutionEngine/Orc/ExecutionUtils.h>
#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/ExecutionEngine/Orc/ThreadSafeModule.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/Host.h>
#include <llvm/Support/MemoryBuffer.h>
#include <llvm/Support/SHA1.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <spirv-tools/libspirv.hpp>
#include <sstream>

#include "level-zero/spirv_device_calls.hpp"
#include "level-zero/spirv_lowering.hpp"
#include "level-zero/spirv_translator_process.hpp"

namespace xesvm::ze {

namespace {

constexpr std::uint32_t kSpirvMagic = 0x07230203;
constexpr std::size_t kCacheEntries = 64;

// What the device's compiler handles (level-zero/README.md).
const std::set<std::string>& supported_capabilities() {
  static const std::set<std::string> s = {"Addresses",
                                          "Linkage",
                                          "Kernel",
                                          "Vector16",
                                          "Int8",
                                          "Int16",
                                          "Int64",
                                          "Float64",
                                          "Int64Atomics",
                                          "GenericPointer",
                                          "Float16Buffer",
                                          "Groups",
                                          "SubgroupDispatch",
                                          "AtomicFloat32AddEXT",
                                          "AtomicFloat64AddEXT"};
  return s;
}
const std::set<std::string>& supported_extensions() {
  static const std::set<std::string> s = {"SPV_KHR_no_integer_wrap_decoration", "SPV_EXT_shader_atomic_float_add"};
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

// The largest alignment a module may ask for (of a variable or an access):
// private variables live on the work item's stack.
constexpr std::uint64_t kMaxAlignment = 64u << 10;

// What the translator needs beyond what spirv-val checks (it asserts on
// some valid modules; translate_isolated contains that, this names the
// problem): each alignment a power of two the device can honour, literal
// strings zero-padded, lifetime markers of pointers, scopes and memory
// semantics it can map, extended instructions of the OpenCL sets only; and
// what the device cannot honour: atomics of CrossDevice scope. Returns the
// problems found, one line each.
std::string check_for_translator(spv_target_env env, const std::vector<std::uint32_t>& words) {
  struct State {
    std::set<std::string> problems;
    std::map<std::uint32_t, std::uint32_t> constants;  // 32-bit OpConstant values by id
    std::map<std::uint32_t, std::uint32_t> types;      // result id -> its type id
    std::set<std::uint32_t> pointer_types;             // OpTypePointer ids
  } st;
  auto on_insn = [](void* user, const spv_parsed_instruction_t* in) -> spv_result_t {
    auto& st = *static_cast<State*>(user);
    auto alignment = [&](std::uint64_t a, const char* what) {
      if (a == 0 || (a & (a - 1)) != 0 || a > kMaxAlignment) {
        st.problems.insert(std::string(what) + " " + std::to_string(a) + " (expected a power of two up to " +
                           std::to_string(kMaxAlignment) + ")");
      }
    };
    constexpr std::uint32_t kAlignmentDecoration = 44, kAlignedAccess = 0x2;
    if ((in->opcode == 71 /* OpDecorate */ && in->num_words >= 4 && in->words[2] == kAlignmentDecoration) ||
        (in->opcode == 72 /* OpMemberDecorate */ && in->num_words >= 5 && in->words[3] == kAlignmentDecoration)) {
      alignment(in->words[in->num_words - 1], "Alignment decoration");
    }
    for (std::uint16_t i = 0; i < in->num_operands; ++i) {
      const spv_parsed_operand_t& op = in->operands[i];
      if (op.type == SPV_OPERAND_TYPE_LITERAL_STRING) {
        // The bytes after the terminating NUL must be zero, as SPIR-V says.
        const auto* b = reinterpret_cast<const unsigned char*>(in->words + op.offset);
        const std::size_t n = op.num_words * 4u;
        std::size_t end = 0;
        while (end < n && b[end]) ++end;
        for (std::size_t j = end; j < n; ++j) {
          if (b[j]) {
            st.problems.insert("literal string with non-zero padding after its terminating NUL (instruction " +
                               std::to_string(in->opcode) + ")");
            break;
          }
        }
      }
      if (op.type != SPV_OPERAND_TYPE_MEMORY_ACCESS && op.type != SPV_OPERAND_TYPE_OPTIONAL_MEMORY_ACCESS) continue;
      if ((in->words[op.offset] & kAlignedAccess) && i + 1 < in->num_operands)
        alignment(in->words[in->operands[i + 1].offset], "memory access Aligned");
    }
    if (in->opcode == 43 /* OpConstant */ && in->num_words == 4) st.constants[in->result_id] = in->words[3];
    if (in->opcode == 32 /* OpTypePointer */) st.pointer_types.insert(in->result_id);
    if (in->result_id && in->type_id) st.types[in->result_id] = in->type_id;
    if ((in->opcode == 256 || in->opcode == 257) /* OpLifetimeStart/Stop */ && in->num_words >= 2) {
      const auto t = st.types.find(in->words[1]);
      if (t == st.types.end() || !st.pointer_types.count(t->second))
        st.problems.insert("OpLifetimeStart/OpLifetimeStop of an object that is not a pointer");
    }
    // Scopes and memory semantics the translator maps to OpenCL's: a known
    // scope, at most one memory order.
    for (std::uint16_t i = 0; i < in->num_operands; ++i) {
      const spv_parsed_operand_t& op = in->operands[i];
      if (op.type != SPV_OPERAND_TYPE_SCOPE_ID && op.type != SPV_OPERAND_TYPE_MEMORY_SEMANTICS_ID) continue;
      const auto c = st.constants.find(in->words[op.offset]);
      if (c == st.constants.end()) continue;
      if (op.type == SPV_OPERAND_TYPE_SCOPE_ID && c->second > 4) {
        st.problems.insert("memory scope " + std::to_string(c->second) + " (expected CrossDevice .. Invocation, 0..4)");
      }
      const std::uint32_t order = c->second & 0x1f;
      if (op.type == SPV_OPERAND_TYPE_MEMORY_SEMANTICS_ID && order != 0 && order != 2 && order != 4 && order != 8 &&
          order != 16) {
        st.problems.insert("memory semantics " + std::to_string(c->second) +
                           " (expected at most one of Acquire, Release, AcquireRelease, SequentiallyConsistent)");
      }
    }
    // Atomics are atomic among the device's work items, not with the host:
    // an atomic of scope CrossDevice (memory_scope_all_svm_devices) would
    // get less than it asks for.
    const bool atomic = (in->opcode >= 227 && in->opcode <= 242) || in->opcode == 318 || in->opcode == 319 ||
                        in->opcode == 5614 || in->opcode == 5615 || in->opcode == 6035;
    // The scope is the operand after the pointer: (result type, result,)
    // pointer, scope, semantics, ...
    const std::size_t scope_at = in->type_id ? 4 : 2;
    if (atomic && scope_at < in->num_words) {
      const auto c = st.constants.find(in->words[scope_at]);
      if (c != st.constants.end() && c->second == 0 /* CrossDevice */) {
        st.problems.insert(
            "atomic scope CrossDevice (memory_scope_all_svm_devices): the device's atomics are atomic among its work "
            "items, not with the host (expected at most Device scope)");
      }
    }
    if (in->opcode == 11 /* OpExtInstImport */ && in->num_operands >= 2) {
      const auto* name = reinterpret_cast<const char*>(in->words + in->operands[1].offset);
      const std::string set(name, strnlen(name, in->operands[1].num_words * 4u));
      if (set != "OpenCL.std" && set != "OpenCL.DebugInfo.100")
        st.problems.insert("extended instruction set \"" + set + "\" (expected OpenCL.std, OpenCL.DebugInfo.100)");
    }
    return SPV_SUCCESS;
  };
  spv_context ctx = spvContextCreate(env);
  spv_diagnostic diag = nullptr;
  const spv_result_t r = spvBinaryParse(ctx, &st, words.data(), words.size(), nullptr, on_insn, &diag);
  std::string out;
  if (r != SPV_SUCCESS)
    out = std::string("the module cannot be parsed: ") + (diag && diag->error ? diag->error : "?") + "\n";
  spvDiagnosticDestroy(diag);
  spvContextDestroy(ctx);
  for (const auto& p : st.problems) out += "unsupported " + p + "\n";
  return out;
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
  if (log.empty()) log = check_for_translator(target_env(words[1]), words);
  if (!log.empty()) build_failure(log);
}

std::string to_string(llvm::Error e) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << e;
  return os.str();
}

// SPIR-V -> LLVM IR with SPIRV-LLVM-Translator, in the translator program
// (spirv_translator_process.hpp): the translator asserts or crashes on some
// modules that pass every check before it (validate), and must not take the
// application with it. A translator that refuses the module, dies, or does
// not finish in time is a build failure saying so, with its last message.
// Throws ZeError.
std::unique_ptr<llvm::Module> translate_isolated(llvm::LLVMContext& ctx, const TranslationRequest& request) {
  std::string bitcode;
  try {
    bitcode = translate_in_translator_process(request);
  } catch (const TranslatorError& e) {
    build_failure(std::string("the SPIR-V module cannot be translated: ") + e.what());
  }
  auto m = llvm::parseBitcodeFile(llvm::MemoryBufferRef(llvm::StringRef(bitcode), "spirv"), ctx);
  if (!m) build_failure("internal error: the translated module does not load: " + to_string(m.takeError()));
  return std::move(*m);
}

// What the loader needs besides the object file: the kernels' entries and
// their interface (a disk cache entry stores both).
struct ModuleInterface {
  std::vector<LoweredKernel> kernels;
  std::uint32_t local_mem_size = 0;
  bool barriers = false;
  GlobalsLayout globals;
};

// The JIT'd code of one module: kept alive by its Program (the compiled
// one, shared by the modules made of the same SPIR-V through the cache).
struct JitCode {
  std::unique_ptr<llvm::orc::LLJIT> jit;
  GlobalsLayout globals;  ///< what each module instance allocates
};

llvm::orc::JITTargetMachineBuilder host_target() {
  static std::once_flag init;
  std::call_once(init, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
  });
  auto jtmb = llvm::orc::JITTargetMachineBuilder::detectHost();
  if (!jtmb) build_failure("cannot target the host: " + to_string(jtmb.takeError()));
  jtmb->setCodeGenOptLevel(llvm::CodeGenOpt::Default);
  return std::move(*jtmb);
}

// Validates, translates, lowers, optimizes and compiles the module to a
// host object file (what ORC's compile layer would make of it).
std::string compile_to_object(const std::vector<std::uint32_t>& words, const ze_module_constants_t* constants,
                              ModuleInterface* iface) {
  validate(words);
  auto jtmb = host_target();
  auto tm = jtmb.createTargetMachine();
  if (!tm) build_failure("cannot create the host target machine: " + to_string(tm.takeError()));

  // SPIR-V -> LLVM IR.
  llvm::LLVMContext ctx;
  ctx.setOpaquePointers(false);
  // The translator program enables the extensions the device supports
  // (validate checked that the module uses no other).
  TranslationRequest request;
  request.words = words;
  if (constants) {
    for (std::uint32_t i = 0; i < constants->numConstants; ++i) {
      std::uint64_t v = 0;
      if (constants->pConstantValues && constants->pConstantValues[i])
        std::memcpy(&v, constants->pConstantValues[i], sizeof v);
      request.spec_constants.emplace_back(constants->pConstantIds[i], v);
    }
  }
  std::unique_ptr<llvm::Module> m = translate_isolated(ctx, request);
  {
    // The translator may accept a module it makes invalid IR of; lowering
    // needs valid IR.
    std::string v;
    llvm::raw_string_ostream os(v);
    if (llvm::verifyModule(*m, &os))
      build_failure("the SPIR-V module cannot be translated: its LLVM IR is invalid: " + os.str());
  }
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

  // Host code, as an object file.
  llvm::SmallVector<char, 0> object;
  {
    llvm::raw_svector_ostream os(object);
    llvm::legacy::PassManager pm;
    if (tm.get()->addPassesToEmitFile(pm, os, nullptr, llvm::CGFT_ObjectFile))
      build_failure("internal error: the host target cannot emit object files");
    pm.run(*m);
  }
  iface->kernels = std::move(lowered.kernels);
  iface->local_mem_size = lowered.local_mem_size;
  iface->barriers = lowered.barriers;
  iface->globals = std::move(lowered.globals);
  return std::string(object.data(), object.size());
}

// Links an object file made by compile_to_object into a JIT and finds the
// kernels' entries. Throws ZeError (MODULE_BUILD_FAILURE) saying why not.
std::shared_ptr<const Program> load_object(const std::string& object, const ModuleInterface& iface) {
  auto jit = llvm::orc::LLJITBuilder().setJITTargetMachineBuilder(host_target()).create();
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
  if (auto e = (*jit)->addObjectFile(llvm::MemoryBuffer::getMemBufferCopy(object, "xesvm-spirv-module")))
    build_failure("cannot add the module to the JIT: " + to_string(std::move(e)));

  auto program = std::make_shared<Program>();
  for (const LoweredKernel& k : iface.kernels) {
    auto addr = (*jit)->lookup(k.entry);
    if (!addr) build_failure("kernel " + k.name + " cannot be linked: " + to_string(addr.takeError()));
    KernelInfo info;
    info.name = k.name;
    info.fn2 = addr->toPtr<xesvm_ze_group_kernel_fn>();
    info.arg_sizes = k.arg_sizes;
    for (bool local : k.arg_local) info.arg_kinds.push_back(local ? ArgKind::kLocal : ArgKind::kValue);
    std::copy(k.required_group_size, k.required_group_size + 3, info.required_group_size);
    info.local_mem_size = k.local_mem_size;
    info.barriers = k.barriers;
    info.required_sub_group_size = k.required_sub_group_size;
    program->kernels.push_back(std::move(info));
  }
  auto code = std::make_shared<JitCode>();
  code->jit = std::move(*jit);
  code->globals = iface.globals;
  program->code = std::move(code);
  return program;
}

// ---- The disk cache (XESVM_KERNEL_CACHE) ----
//
// One file per module, named after the hex cache key, written to a
// temporary file in the same directory and renamed into place (readers
// see a whole entry or none). Layout, little-endian:
//   "XESVMZEC" | u32 format | 20-byte key | u64 payload size |
//   20-byte SHA-1 of the payload | payload
// payload: u32 local_mem_size | u8 barriers | u32 kernels |
//   per kernel: str name | str entry | u32 n, n x u32 size | n x u8 local |
//   3 x u32 required group size | u32 required sub-group size |
//   u32 local memory | u8 barriers
//   | globals: u64 align | u32 vars | per var: str name | u64 offset |
//     u64 size | u8 exported | str image | u32 relocs | per reloc: u64 at |
//     u64 target
//   | str object file      (str = u32 length + bytes)
// An entry whose magic, format, key, size or checksum does not match, or
// that does not parse or link, is ignored (and rewritten by the build).

constexpr char kEntryMagic[8] = {'X', 'E', 'S', 'V', 'M', 'Z', 'E', 'C'};
constexpr std::uint32_t kEntryFormat = 4;

std::string sha1(const std::string& bytes) {
  llvm::SHA1 h;
  h.update(bytes);
  const auto d = h.final();
  return std::string(reinterpret_cast<const char*>(d.data()), d.size());
}

std::string hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string r;
  for (unsigned char c : bytes) {
    r += digits[c >> 4];
    r += digits[c & 15];
  }
  return r;
}

class Writer {
 public:
  void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u32(std::uint32_t v) {
    for (int i = 0; i < 4; ++i) u8(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  void u64(std::uint64_t v) {
    for (int i = 0; i < 8; ++i) u8(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  void raw(const std::string& s) { out_ += s; }
  void str(const std::string& s) {
    u32(static_cast<std::uint32_t>(s.size()));
    raw(s);
  }
  std::string& bytes() { return out_; }

 private:
  std::string out_;
};

// Reads what Writer wrote; every read past the end or implausible length
// sets bad() instead of reading out of bounds.
class Reader {
 public:
  explicit Reader(const std::string& s) : s_(s) {}
  bool bad() const { return bad_; }
  bool at_end() const { return pos_ == s_.size(); }
  std::uint8_t u8() {
    if (pos_ >= s_.size()) {
      bad_ = true;
      return 0;
    }
    return static_cast<std::uint8_t>(s_[pos_++]);
  }
  std::uint32_t u32() {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= std::uint32_t{u8()} << (8 * i);
    return v;
  }
  std::uint64_t u64() {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= std::uint64_t{u8()} << (8 * i);
    return v;
  }
  std::string raw(std::size_t n) {
    if (n > s_.size() - pos_) {
      bad_ = true;
      return {};
    }
    std::string r = s_.substr(pos_, n);
    pos_ += n;
    return r;
  }
  std::string str() { return raw(u32()); }

 private:
  const std::string& s_;
  std::size_t pos_ = 0;
  bool bad_ = false;
};

std::string encode_entry(const std::string& key, const ModuleInterface& iface, const std::string& object) {
  Writer p;
  p.u32(iface.local_mem_size);
  p.u8(iface.barriers ? 1 : 0);
  p.u32(static_cast<std::uint32_t>(iface.kernels.size()));
  for (const LoweredKernel& k : iface.kernels) {
    p.str(k.name);
    p.str(k.entry);
    p.u32(static_cast<std::uint32_t>(k.arg_sizes.size()));
    for (std::uint32_t s : k.arg_sizes) p.u32(s);
    for (std::size_t i = 0; i < k.arg_sizes.size(); ++i) p.u8(i < k.arg_local.size() && k.arg_local[i] ? 1 : 0);
    for (std::uint32_t g : k.required_group_size) p.u32(g);
    p.u32(k.required_sub_group_size);
    p.u32(k.local_mem_size);
    p.u8(k.barriers ? 1 : 0);
  }
  const GlobalsLayout& g = iface.globals;
  p.u64(g.align);
  p.u32(static_cast<std::uint32_t>(g.vars.size()));
  for (const GlobalVariableInfo& v : g.vars) {
    p.str(v.name);
    p.u64(v.offset);
    p.u64(v.size);
    p.u8(v.exported ? 1 : 0);
  }
  p.str(g.image);
  p.u32(static_cast<std::uint32_t>(g.relocs.size()));
  for (const auto& [at, target] : g.relocs) {
    p.u64(at);
    p.u64(target);
  }
  p.str(object);
  Writer e;
  e.raw(std::string(kEntryMagic, sizeof kEntryMagic));
  e.u32(kEntryFormat);
  e.raw(key);
  e.u64(p.bytes().size());
  e.raw(sha1(p.bytes()));
  e.raw(p.bytes());
  return std::move(e.bytes());
}

// Decodes an entry for key; on failure returns false and *why says what
// did not match.
bool decode_entry(const std::string& bytes, const std::string& key, ModuleInterface* iface, std::string* object,
                  std::string* why) {
  Reader r(bytes);
  if (r.raw(sizeof kEntryMagic) != std::string(kEntryMagic, sizeof kEntryMagic) || r.bad()) {
    *why = "not a cache entry of this driver (bad magic)";
    return false;
  }
  if (const std::uint32_t f = r.u32(); f != kEntryFormat) {
    *why = "entry format " + std::to_string(f) + ", expected " + std::to_string(kEntryFormat);
    return false;
  }
  if (r.raw(key.size()) != key) {
    *why = "the entry is of another module (its key does not match)";
    return false;
  }
  const std::uint64_t size = r.u64();
  const std::string sum = r.raw(20);
  const std::string payload = r.raw(size);
  if (r.bad() || !r.at_end()) {
    *why = "the entry is truncated or has trailing bytes";
    return false;
  }
  if (sha1(payload) != sum) {
    *why = "the entry's checksum does not match (corrupt)";
    return false;
  }
  Reader p(payload);
  iface->local_mem_size = p.u32();
  iface->barriers = p.u8() != 0;
  const std::uint32_t n = p.u32();
  for (std::uint32_t i = 0; i < n && !p.bad(); ++i) {
    LoweredKernel k;
    k.name = p.str();
    k.entry = p.str();
    const std::uint32_t args = p.u32();
    for (std::uint32_t a = 0; a < args && !p.bad(); ++a) k.arg_sizes.push_back(p.u32());
    for (std::uint32_t a = 0; a < args && !p.bad(); ++a) k.arg_local.push_back(p.u8() != 0);
    for (std::uint32_t& g : k.required_group_size) g = p.u32();
    k.required_sub_group_size = p.u32();
    k.local_mem_size = p.u32();
    k.barriers = p.u8() != 0;
    iface->kernels.push_back(std::move(k));
  }
  GlobalsLayout& g = iface->globals;
  g.align = p.u64();
  const std::uint32_t vars = p.u32();
  for (std::uint32_t i = 0; i < vars && !p.bad(); ++i) {
    GlobalVariableInfo v;
    v.name = p.str();
    v.offset = p.u64();
    v.size = p.u64();
    v.exported = p.u8() != 0;
    g.vars.push_back(std::move(v));
  }
  g.image = p.str();
  const std::uint32_t relocs = p.u32();
  for (std::uint32_t i = 0; i < relocs && !p.bad(); ++i) {
    const std::uint64_t at = p.u64();
    g.relocs.emplace_back(at, p.u64());
  }
  *object = p.str();
  if (p.bad() || !p.at_end()) {
    *why = "the entry's contents do not parse";
    return false;
  }
  // The layout must describe a block its image fills.
  bool layout_ok = g.align != 0 && (g.align & (g.align - 1)) == 0;
  for (const GlobalVariableInfo& v : g.vars)
    layout_ok &= v.offset <= g.image.size() && v.size <= g.image.size() - v.offset;
  for (const auto& [at, target] : g.relocs)
    layout_ok &= g.image.size() >= 8 && at <= g.image.size() - 8 && target <= g.image.size();
  if (!layout_ok) {
    *why = "the entry's global variables do not fit their block";
    return false;
  }
  return true;
}

// Reads the whole file; false if it cannot be opened or read.
bool read_file(const std::string& path, std::string* out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  out->clear();
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return false;
    }
    if (n == 0) break;
    out->append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return true;
}

// Writes bytes to path atomically (temporary file + rename). Returns an
// empty string on success, else what failed.
std::string write_file_atomically(const std::string& dir, const std::string& path, const std::string& bytes) {
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
    return "cannot create the directory " + dir + ": " + std::strerror(errno);
  std::string tmp = path + ".tmp.XXXXXX";
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0) return "cannot create a file in " + dir + ": " + std::strerror(errno);
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string e = std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      return "cannot write " + tmp + ": " + e;
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const std::string e = std::strerror(errno);
    ::unlink(tmp.c_str());
    return "cannot write " + tmp + ": " + e;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string e = std::strerror(errno);
    ::unlink(tmp.c_str());
    return "cannot rename " + tmp + " to " + path + ": " + e;
  }
  return {};
}

// What the driver counts about SPIR-V builds (XESVM_ZE_STATS=1 prints them
// as one JSON line on stderr at exit).
struct BuildStats {
  std::atomic<std::uint64_t> compiled{0};      ///< modules compiled from SPIR-V
  std::atomic<std::uint64_t> memory_hits{0};   ///< served from the in-memory cache
  std::atomic<std::uint64_t> disk_hits{0};     ///< loaded from XESVM_KERNEL_CACHE
  std::atomic<std::uint64_t> disk_writes{0};   ///< entries written there
  std::atomic<std::uint64_t> disk_ignored{0};  ///< corrupt or foreign entries skipped
};

BuildStats& stats() {
  static BuildStats* s = new BuildStats;  // never destroyed: read at exit
  return *s;
}

void print_stats() {
  const BuildStats& s = stats();
  std::fprintf(
      stderr,
      "xesvm-ze: {\"spirv_compiled\":%llu,\"spirv_memory_cache_hits\":%llu,\"spirv_disk_cache_hits\":%llu,"
      "\"spirv_disk_cache_writes\":%llu,\"spirv_disk_cache_ignored\":%llu}\n",
      static_cast<unsigned long long>(s.compiled.load()), static_cast<unsigned long long>(s.memory_hits.load()),
      static_cast<unsigned long long>(s.disk_hits.load()), static_cast<unsigned long long>(s.disk_writes.load()),
      static_cast<unsigned long long>(s.disk_ignored.load()));
}

void register_stats_report() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* e = std::getenv("XESVM_ZE_STATS");
    if (e && *e && std::strcmp(e, "0") != 0) std::atexit(print_stats);
  });
}

// What else decides the code a module compiles to: the compiler (LLVM's
// version, the entry format, the device calls the code links against) and
// the host CPU it targets. An entry made by another build of the driver or
// on another CPU has another key.
std::string toolchain_id() {
  static const std::string id = [] {
    std::string s = "llvm " LLVM_VERSION_STRING " entry " + std::to_string(kEntryFormat);
    s += " cpu " + llvm::sys::getHostCPUName().str();
    llvm::StringMap<bool> features;
    if (llvm::sys::getHostCPUFeatures(features)) {
      std::vector<std::string> on;
      for (const auto& f : features)
        if (f.getValue()) on.push_back(f.getKey().str());
      std::sort(on.begin(), on.end());
      for (const auto& f : on) s += " +" + f;
    }
    for (const auto& call : device_call_symbols()) {
      s += " ";
      s += call.first;
    }
    return s;
  }();
  return id;
}

// The cache key: SHA-1 of the SPIR-V, the flags, the constants and the
// toolchain.
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
  h.update(std::string("\0toolchain:", 11) + toolchain_id());
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

std::string version_text(const std::vector<std::uint32_t>& words) {
  return std::to_string(words[1] >> 16) + "." + std::to_string((words[1] >> 8) & 0xff);
}

std::string elapsed_ms(std::chrono::steady_clock::time_point t0) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f ms",
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  return buf;
}

// Builds the module (not in the in-memory cache): from the disk cache if
// XESVM_KERNEL_CACHE names one that holds it, else compiled (and stored
// there). The disk cache never fails a build: what went wrong with it is a
// line of the log.
std::shared_ptr<const Program> build(const std::vector<std::uint32_t>& words, const std::string& key,
                                     const ze_module_constants_t* constants, std::string* log) {
  const auto t0 = std::chrono::steady_clock::now();
  const char* env = std::getenv("XESVM_KERNEL_CACHE");
  const std::string dir = env && *env ? env : "";
  const std::string path = dir.empty() ? "" : dir + "/" + hex(key) + ".xzc";
  std::string notes;
  if (!path.empty()) {
    std::string bytes;
    if (read_file(path, &bytes)) {
      ModuleInterface iface;
      std::string object, why;
      if (decode_entry(bytes, key, &iface, &object, &why)) {
        try {
          auto program = load_object(object, iface);
          stats().disk_hits++;
          *log = "xesvm: loaded " + std::to_string(program->kernels.size()) +
                 " compiled kernels from the disk cache (" + path + ") in " + elapsed_ms(t0) + "\n";
          return program;
        } catch (const ZeError& e) {
          why = "it does not link: " + e.what;
        }
      }
      stats().disk_ignored++;
      notes += "xesvm: ignored the disk cache entry " + path + ": " + why + "; compiling again\n";
    }
  }
  ModuleInterface iface;
  const std::string object = compile_to_object(words, constants, &iface);
  auto program = load_object(object, iface);
  stats().compiled++;
  *log = notes + "xesvm: compiled " + std::to_string(program->kernels.size()) + " kernels from SPIR-V " +
         version_text(words) + " in " + elapsed_ms(t0) + "\n";
  if (!path.empty()) {
    const std::string err = write_file_atomically(dir, path, encode_entry(key, iface, object));
    if (err.empty()) {
      stats().disk_writes++;
      *log += "xesvm: stored the compiled module in the disk cache (" + path + ")\n";
    } else {
      *log += "xesvm: XESVM_KERNEL_CACHE: " + err + " (the module is not cached on disk)\n";
    }
  }
  return program;
}

// ---- Module instances: each module's own globals block ----

// The instance of a compiled program for one module whose SPIR-V has
// program-scope variables: the module's block of them, a device allocation
// of its context (so kernels reach it through the driver's translation and
// the device accessor, like any device allocation), freed with the last
// reference to the instance (the module, its kernels, launches in flight).
class ModuleInstance {
 public:
  ModuleInstance(std::shared_ptr<const Program> compiled, const GlobalsLayout& layout, std::uint64_t base,
                 std::uint64_t alloc_id)
      : compiled_(std::move(compiled)), layout_(&layout), base_(base), alloc_id_(alloc_id) {}
  ~ModuleInstance();
  ModuleInstance(const ModuleInstance&) = delete;
  ModuleInstance& operator=(const ModuleInstance&) = delete;

  std::uint64_t base() const { return base_; }
  const GlobalsLayout& layout() const { return *layout_; }

 private:
  std::shared_ptr<const Program> compiled_;  // keeps the code and the layout alive
  const GlobalsLayout* layout_;
  std::uint64_t base_;
  std::uint64_t alloc_id_;
};

// The live instances, by address (a Program's code is one of them, a
// JitCode or a native Library).
struct Instances {
  std::shared_mutex mu;
  std::set<const void*> live;
};

Instances& instances() {
  static Instances* i = new Instances;  // never destroyed: modules may outlive statics
  return *i;
}

const ModuleInstance* instance_of(const Program& p) {
  Instances& in = instances();
  std::shared_lock lk(in.mu);
  return in.live.count(p.code.get()) ? static_cast<const ModuleInstance*>(p.code.get()) : nullptr;
}

ModuleInstance::~ModuleInstance() {
  {
    Instances& in = instances();
    std::unique_lock lk(in.mu);
    in.live.erase(this);
  }
  // The block is the module's: freed unless the application freed the
  // context (and so the block) first.
  Driver* drv = Driver::instance();
  if (!drv) return;
  auto a = drv->find(base_);
  if (a && a->base == base_ && a->id == alloc_id_ && drv->remove_allocation(base_)) release_allocation(a);
}

}  // namespace

std::shared_ptr<const Program> instantiate_spirv(Context& ctx, Device& dev, std::shared_ptr<const Program> compiled) {
  const auto* code = static_cast<const JitCode*>(compiled->code.get());
  const GlobalsLayout& layout = code->globals;
  if (layout.image.empty()) return compiled;
  void* p = allocate(ctx, MemKind::kDevice, &dev, layout.image.size(), std::max<std::uint64_t>(layout.align, 64), 0, 0,
                     nullptr, 0);
  const auto base = reinterpret_cast<std::uint64_t>(p);
  Driver& drv = Driver::get();
  const auto alloc = drv.find(base);
  auto inst = std::make_shared<ModuleInstance>(compiled, layout, base, alloc ? alloc->id : 0);
  {
    Instances& in = instances();
    std::unique_lock lk(in.mu);
    in.live.insert(inst.get());
  }
  // The initial bytes, with the variables' addresses in pointers to them,
  // written by the device through the accessor.
  std::string image = layout.image;
  for (const auto& [at, target] : layout.relocs) {
    const std::uint64_t v = base + target;
    std::memcpy(image.data() + at, &v, sizeof v);
  }
  try {
    const std::uint64_t backing = drv.xlate()(base, image.size());
    dev.runtime().launch(1,
                         [&](const WorkItem&, DeviceAccessor& acc) { acc.write(backing, image.data(), image.size()); });
  } catch (const Error& e) {
    fail(to_result(e), std::string("zeModuleCreate: cannot initialise the module's global variables: ") + e.what());
  }
  auto program = std::make_shared<Program>();
  program->kernels = compiled->kernels;
  program->code = std::move(inst);
  return program;
}

std::uint64_t spirv_globals_base(const Program& p) {
  const ModuleInstance* inst = instance_of(p);
  return inst ? inst->base() : 0;
}

bool find_spirv_global(const Program& p, const std::string& name, SpirvGlobal* out) {
  const ModuleInstance* inst = instance_of(p);
  if (!inst) return false;
  for (const GlobalVariableInfo& v : inst->layout().vars) {
    if (v.exported && v.name == name) {
      out->address = inst->base() + v.offset;
      out->size = v.size;
      return true;
    }
  }
  return false;
}

bool spirv_supported() { return true; }

std::shared_ptr<const Program> build_spirv(const std::uint8_t* il, std::size_t size, const char* flags,
                                           const ze_module_constants_t* constants, std::string* log) {
  register_stats_report();
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
    stats().memory_hits++;
    if (log) *log = "xesvm: reused the compiled module from the in-memory cache\n";
    return it->second;
  }
  std::string text;
  auto program = build(words, key, constants, &text);
  c.programs[key] = program;
  c.order.push_back(key);
  if (c.order.size() > kCacheEntries) {
    c.programs.erase(c.order.front());
    c.order.pop_front();
  }
  if (log) *log = std::move(text);
  return program;
}

}  // namespace xesvm::ze
