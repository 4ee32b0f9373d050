// IR lowering of SPIR-V kernels for the sim device (see spirv_lowering.hpp).
#include "level-zero/spirv_lowering.hpp"

#include <llvm/Analysis/ValueTracking.h>
#include <llvm/IR/Constants.h>
#include <llvm/IR/DataLayout.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/InstIterator.h>
#include <llvm/IR/Instructions.h>
#include <llvm/IR/IntrinsicInst.h>
#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/ReplaceConstant.h>

#include <cstring>
#include <map>
#include <set>

#include "level-zero/atomic_op.hpp"
#include "level-zero/printf_format.hpp"
#include "level-zero/spirv_device_calls.hpp"
#include "level-zero/work_group.hpp"

namespace xesvm::ze {

using namespace llvm;

namespace {

constexpr unsigned kPrivate = 0, kGlobal = 1, kConstant = 2, kLocal = 3, kGeneric = 4;

// The most bytes of program-scope variables a module may have.
constexpr std::uint64_t kMaxGlobalsBytes = 256u << 20;

bool device_space(unsigned as) { return as == kGlobal || as == kConstant || as == kGeneric; }

// A pointer into the module's own data: after lowering, only the private
// copies of the string constants printf reads on the host (the
// program-scope variables moved into the globals block, local ones into the
// group's arena).
bool module_data(const Value* p) {
  const auto* gv = dyn_cast<GlobalVariable>(getUnderlyingObject(p, 0));
  return gv && gv->getAddressSpace() == kPrivate;
}

// Whether an access of p goes through the device calls.
bool lowered_access(const Value* p) { return device_space(p->getType()->getPointerAddressSpace()) && !module_data(p); }

// The name inside an Itanium-mangled built-in: _Z13get_global_idj ->
// get_global_id. Other names are returned as they are.
std::string base_name(StringRef n) {
  if (!n.startswith("_Z")) return n.str();
  StringRef r = n.drop_front(2);
  unsigned len = 0;
  if (r.consumeInteger(10, len) || len > r.size()) return n.str();
  return r.take_front(len).str();
}

// The signedness of a built-in's integer arguments from the last type code
// of its mangled name: true for signed (char, short, int, long).
bool signed_args(StringRef mangled) {
  if (mangled.empty()) return true;
  const char c = mangled.back();
  return c == 'c' || c == 'a' || c == 's' || c == 'i' || c == 'l' || c == 'x';
}

const std::map<std::string, WorkItemQuery>& work_item_functions() {
  static const std::map<std::string, WorkItemQuery> m = {
      {"get_global_id", WorkItemQuery::kGlobalId},
      {"get_local_id", WorkItemQuery::kLocalId},
      {"get_group_id", WorkItemQuery::kGroupId},
      {"get_global_size", WorkItemQuery::kGlobalSize},
      {"get_local_size", WorkItemQuery::kLocalSize},
      {"get_enqueued_local_size", WorkItemQuery::kLocalSize},
      {"get_num_groups", WorkItemQuery::kNumGroups},
      {"get_global_offset", WorkItemQuery::kGlobalOffset},
      {"get_work_dim", WorkItemQuery::kWorkDim},
      {"get_global_linear_id", WorkItemQuery::kGlobalLinearId},
      {"get_local_linear_id", WorkItemQuery::kLocalLinearId},
  };
  return m;
}

const std::map<std::string, Intrinsic::ID>& math_functions() {
  static const std::map<std::string, Intrinsic::ID> m = {
      {"sqrt", Intrinsic::sqrt},   {"fabs", Intrinsic::fabs},         {"floor", Intrinsic::floor},
      {"ceil", Intrinsic::ceil},   {"trunc", Intrinsic::trunc},       {"round", Intrinsic::round},
      {"rint", Intrinsic::rint},   {"fma", Intrinsic::fma},           {"mad", Intrinsic::fmuladd},
      {"fmin", Intrinsic::minnum}, {"fmax", Intrinsic::maxnum},       {"min", Intrinsic::minnum},
      {"max", Intrinsic::maxnum},  {"exp", Intrinsic::exp},           {"exp2", Intrinsic::exp2},
      {"log", Intrinsic::log},     {"log2", Intrinsic::log2},         {"log10", Intrinsic::log10},
      {"sin", Intrinsic::sin},     {"cos", Intrinsic::cos},           {"pow", Intrinsic::pow},
      {"powr", Intrinsic::pow},    {"copysign", Intrinsic::copysign},
  };
  return m;
}

const std::map<std::string, AtomicOp>& atomic_functions() {
  static const std::map<std::string, AtomicOp> m = {
      {"add", AtomicOp::kAdd}, {"sub", AtomicOp::kSub},         {"xchg", AtomicOp::kXchg}, {"inc", AtomicOp::kAdd},
      {"dec", AtomicOp::kSub}, {"cmpxchg", AtomicOp::kCmpXchg}, {"and", AtomicOp::kAnd},   {"or", AtomicOp::kOr},
      {"xor", AtomicOp::kXor}, {"min", AtomicOp::kMinS},        {"max", AtomicOp::kMaxS},
  };
  return m;
}

class Lowerer {
 public:
  explicit Lowerer(llvm::Module& m)
      : m_(m),
        c_(m.getContext()),
        dl_(m.getDataLayout()),
        i8_(Type::getInt8Ty(c_)),
        i32_(Type::getInt32Ty(c_)),
        i64_(Type::getInt64Ty(c_)),
        i8p_(PointerType::get(i8_, kPrivate)) {
    Type* v = Type::getVoidTy(c_);
    load_ = declare("__xesvm_load", FunctionType::get(v, {i64_, i8p_, i64_}, false));
    store_ = declare("__xesvm_store", FunctionType::get(v, {i64_, i8p_, i64_}, false));
    copy_ = declare("__xesvm_copy", FunctionType::get(v, {i64_, i64_, i64_}, false));
    fill_ = declare("__xesvm_fill", FunctionType::get(v, {i64_, i8_, i64_}, false));
    atomic_ = declare("__xesvm_atomic", FunctionType::get(i64_, {i64_, i32_, i64_, i64_}, false));
    work_item_ = declare("__xesvm_work_item", FunctionType::get(i64_, {i32_, i32_}, false));
    work_item_->setDoesNotAccessMemory();
    work_item_->setWillReturn();
    barrier_ = declare("__xesvm_barrier", FunctionType::get(v, {}, false));
    barrier_->setConvergent();
    local_base_ = declare("__xesvm_local_base", FunctionType::get(i8p_, {}, false));
    local_base_->setDoesNotAccessMemory();
    globals_base_ = declare("__xesvm_globals_base", FunctionType::get(i64_, {}, false));
    globals_base_->setDoesNotAccessMemory();
    globals_base_->setWillReturn();
    printf_ = declare("__xesvm_printf", FunctionType::get(i32_, {i8p_, PointerType::get(i64_, kPrivate), i32_}, false));
    enter_ = declare("__xesvm_enter", FunctionType::get(v, {i8p_, i8p_, i8p_, i8p_}, false));
  }

  LoweredModule run() {
    LoweredModule out;
    copy_printf_strings();
    out.globals = place_module_variables();
    out.local_mem_size = place_local_variables();
    std::vector<Function*> kernels;
    for (Function& f : m_) {
      if (f.getCallingConv() == CallingConv::SPIR_KERNEL) kernels.push_back(&f);
    }
    for (Function& f : m_) {
      if (f.isDeclaration()) continue;
      f.setCallingConv(CallingConv::C);
      lower_function(f, out);
    }
    if (!unsupported_.empty() || !printf_errors_.empty()) {
      std::string what;
      if (!unsupported_.empty()) {
        what = "unsupported built-in functions:";
        for (const auto& s : unsupported_) what += " " + s;
      }
      for (const auto& s : printf_errors_) what += (what.empty() ? "" : "\n") + s;
      throw LoweringError(what);
    }
    for (Function* k : kernels) {
      out.kernels.push_back(make_entry(*k));
      decide_per_kernel(*k, out, &out.kernels.back());
    }
    // Everything but the entries may be inlined and dropped.
    for (Function& f : m_) {
      if (!f.isDeclaration() && !f.getName().startswith("__xesvm_entry.")) f.setLinkage(GlobalValue::InternalLinkage);
    }
    return out;
  }

 private:
  Function* declare(const char* name, FunctionType* t) {
    return cast<Function>(m_.getOrInsertFunction(name, t).getCallee());
  }

  AllocaInst* temp(Function& f, Type* t) {
    IRBuilder<> b(&f.getEntryBlock(), f.getEntryBlock().getFirstInsertionPt());
    return b.CreateAlloca(t);
  }

  // Turns the constant expressions over g that instructions use into
  // instructions, so that every such use is an instruction of some function,
  // and returns the instructions that use g.
  static std::vector<Instruction*> instruction_users(GlobalVariable* g) {
    std::vector<ConstantExpr*> exprs;
    for (User* u : g->users()) {
      if (auto* ce = dyn_cast<ConstantExpr>(u)) exprs.push_back(ce);
    }
    for (ConstantExpr* ce : exprs) {
      std::vector<Instruction*> users;
      std::vector<User*> work(ce->user_begin(), ce->user_end());
      while (!work.empty()) {
        User* u = work.back();
        work.pop_back();
        if (auto* i = dyn_cast<Instruction>(u)) {
          users.push_back(i);
        } else if (isa<ConstantExpr>(u)) {
          work.insert(work.end(), u->user_begin(), u->user_end());
        }
      }
      for (Instruction* i : users) convertConstantExprsToInstructions(i, ce);
    }
    std::vector<Instruction*> users;
    for (User* u : g->users()) {
      if (auto* i = dyn_cast<Instruction>(u)) users.push_back(i);
    }
    return users;
  }

  // Replaces every instruction's use of g with the pointer make(b) builds
  // at the start of the using function's entry block (once per function).
  // Returns the functions that use g.
  template <class Make>
  std::set<Function*> rebase(GlobalVariable* g, Make&& make) {
    std::map<Function*, Value*> at;
    for (Instruction* i : instruction_users(g)) {
      Function* f = i->getFunction();
      Value*& p = at[f];
      if (!p) {
        IRBuilder<> b(&f->getEntryBlock(), f->getEntryBlock().getFirstInsertionPt());
        p = make(b);
      }
      i->replaceUsesOfWith(g, p);
    }
    std::set<Function*> fs;
    for (const auto& [f, p] : at) fs.insert(f);
    return fs;
  }

  // The string constants printf reads (its format, %s arguments) are read on
  // the host when the call runs (__xesvm_printf): each call gets a private
  // copy of them, module data, so that the variables themselves can move to
  // device memory with the others.
  void copy_printf_strings() {
    std::map<std::string, Constant*> copies;
    for (Function& f : m_) {
      for (Instruction& i : instructions(f)) {
        auto* call = dyn_cast<CallInst>(&i);
        Function* callee = call ? call->getCalledFunction() : nullptr;
        if (!callee || !callee->isDeclaration() || base_name(callee->getName()) != "printf") continue;
        for (unsigned a = 0; a < call->arg_size(); ++a) {
          Value* v = call->getArgOperand(a);
          StringRef str;
          if (!v->getType()->isPointerTy() || !getConstantStringInfo(v, str)) continue;
          Constant*& c = copies[str.str()];
          if (!c) {
            Constant* init = ConstantDataArray::getString(c_, str, true);
            auto* g = new GlobalVariable(m_, init->getType(), true, GlobalValue::PrivateLinkage, init, ".xesvm.str",
                                         nullptr, GlobalValue::NotThreadLocal, kPrivate);
            g->setUnnamedAddr(GlobalValue::UnnamedAddr::Global);
            c = ConstantExpr::getInBoundsGetElementPtr(
                init->getType(), g, ArrayRef<Constant*>{ConstantInt::get(i64_, 0), ConstantInt::get(i64_, 0)});
          }
          call->setArgOperand(a, ConstantExpr::getPointerBitCastOrAddrSpaceCast(c, v->getType()));
        }
      }
    }
  }

  // Writes the initializer c of a variable at off of the globals image;
  // pointers to variables of the block become relocations. Throws
  // LoweringError for what cannot be laid out (what names the variable).
  void lay_out(Constant* c, std::uint64_t off, const std::map<const GlobalVariable*, std::uint64_t>& offsets,
               GlobalsLayout& out, const std::string& what) {
    if (!c) throw LoweringError(what + ": an initializer the device does not support (a constant expression)");
    Type* t = c->getType();
    if (isa<ConstantAggregateZero>(c) || isa<ConstantPointerNull>(c) || isa<UndefValue>(c)) return;  // zeros
    auto put = [&](const APInt& v) {
      const std::uint64_t n = dl_.getTypeStoreSize(t);
      for (std::uint64_t b = 0; b < n; ++b) {
        out.image[off + b] = static_cast<char>(v.extractBitsAsZExtValue(8, static_cast<unsigned>(b * 8)));
      }
    };
    if (auto* ci = dyn_cast<ConstantInt>(c)) {
      if (ci->getBitWidth() % 8 != 0) throw LoweringError(what + ": an initializer of " + type_name(t));
      put(ci->getValue());
      return;
    }
    if (auto* cf = dyn_cast<ConstantFP>(c)) {
      put(cf->getValueAPF().bitcastToAPInt());
      return;
    }
    if (auto* at = dyn_cast<ArrayType>(t)) {
      const std::uint64_t stride = dl_.getTypeAllocSize(at->getElementType());
      for (std::uint64_t i = 0; i < at->getNumElements(); ++i) {
        lay_out(c->getAggregateElement(static_cast<unsigned>(i)), off + i * stride, offsets, out, what);
      }
      return;
    }
    if (auto* vt = dyn_cast<FixedVectorType>(t)) {
      const std::uint64_t bits = dl_.getTypeSizeInBits(vt->getElementType());
      if (bits % 8 != 0) throw LoweringError(what + ": an initializer of " + type_name(t));
      for (unsigned i = 0; i < vt->getNumElements(); ++i) {
        lay_out(c->getAggregateElement(i), off + i * (bits / 8), offsets, out, what);
      }
      return;
    }
    if (auto* st = dyn_cast<StructType>(t)) {
      const StructLayout* sl = dl_.getStructLayout(st);
      for (unsigned i = 0; i < st->getNumElements(); ++i) {
        lay_out(c->getAggregateElement(i), off + sl->getElementOffset(i), offsets, out, what);
      }
      return;
    }
    if (t->isPointerTy()) {
      std::int64_t addend = 0;
      const Value* base = GetPointerBaseWithConstantOffset(c, addend, dl_);
      const auto* gv = dyn_cast<GlobalVariable>(base);
      const auto it = gv ? offsets.find(gv) : offsets.end();
      if (it == offsets.end() || dl_.getTypeStoreSize(t) != 8) {
        throw LoweringError(what + ": its initializer holds the address of " +
                            (base->hasName() ? base->getName().str() : std::string("an unsupported value")) +
                            "; only addresses of the module's global and constant variables are supported");
      }
      out.relocs.emplace_back(off, it->second + static_cast<std::uint64_t>(addend));
      return;
    }
    throw LoweringError(what + ": an initializer the device does not support (" + type_name(t) + ")");
  }

  // Moves every program-scope variable of the global and constant address
  // spaces into the module's globals block: a use becomes
  // __xesvm_globals_base() + its offset (a device address). Returns the
  // block's layout.
  GlobalsLayout place_module_variables() {
    GlobalsLayout out;
    std::vector<GlobalVariable*> vars;
    std::set<std::string> imports;
    for (GlobalVariable& g : m_.globals()) {
      if (!device_space(g.getAddressSpace()) || g.getName().startswith("llvm.")) continue;
      if (g.isDeclaration()) {
        if (!g.use_empty()) imports.insert(g.getName().str());
        continue;
      }
      vars.push_back(&g);
    }
    if (!imports.empty()) {
      std::string names;
      for (const auto& n : imports) names += (names.empty() ? "" : ", ") + n;
      throw LoweringError("the module imports global variables it does not define: " + names +
                          " (modules cannot import: every global variable must be defined in its module)");
    }
    std::map<const GlobalVariable*, std::uint64_t> offsets;
    std::uint64_t size = 0;
    for (GlobalVariable* g : vars) {
      Type* t = g->getValueType();
      const std::uint64_t align =
          std::max<std::uint64_t>(g->getAlign().valueOrOne().value(), dl_.getABITypeAlign(t).value());
      size = (size + align - 1) / align * align;
      offsets[g] = size;
      out.vars.push_back({g->getName().str(), size, dl_.getTypeAllocSize(t), !g->hasLocalLinkage()});
      out.align = std::max(out.align, align);
      size += dl_.getTypeAllocSize(t);
      if (size > kMaxGlobalsBytes) {
        throw LoweringError("the module's global variables need more than " + std::to_string(kMaxGlobalsBytes) +
                            " bytes");
      }
    }
    out.image.assign(vars.empty() ? 0 : std::max<std::uint64_t>(size, 1), '\0');  // a block even of empty ones
    for (GlobalVariable* g : vars) {
      if (g->hasInitializer())
        lay_out(g->getInitializer(), offsets[g], offsets, out, "global variable " + g->getName().str());
    }
    for (GlobalVariable* g : vars) {
      rebase(g, [&](IRBuilder<>& b) {
        return b.CreateIntToPtr(b.CreateAdd(b.CreateCall(globals_base_), ConstantInt::get(i64_, offsets[g])),
                                g->getType());
      });
    }
    // What is left of the variables are their initializers' references to
    // each other (laid out above) and the llvm.used lists.
    for (GlobalVariable* g : vars) g->setInitializer(nullptr);
    for (const char* list : {"llvm.used", "llvm.compiler.used"}) {
      if (GlobalVariable* u = m_.getNamedGlobal(list)) u->eraseFromParent();
    }
    for (GlobalVariable* g : vars) {
      g->removeDeadConstantUsers();
      if (!g->use_empty()) {
        throw LoweringError("global variable " + g->getName().str() +
                            " is used in a way the device does not support (outside an instruction)");
      }
    }
    for (GlobalVariable* g : vars) g->eraseFromParent();
    return out;
  }

  // Moves every local-memory variable into the group's arena: a use becomes
  // __xesvm_local_base() + its offset. Returns the bytes they take.
  std::uint32_t place_local_variables() {
    std::uint64_t size = 0;
    std::vector<GlobalVariable*> locals;
    for (GlobalVariable& g : m_.globals()) {
      if (g.getAddressSpace() == kLocal) locals.push_back(&g);
    }
    for (GlobalVariable* g : locals) {
      Type* t = g->getValueType();
      const std::uint64_t align =
          std::max<std::uint64_t>(g->getAlign().valueOrOne().value(), dl_.getABITypeAlign(t).value());
      size = (size + align - 1) / align * align;
      const std::uint64_t offset = size;
      size += dl_.getTypeAllocSize(t);
      for (Function* f : rebase(g, [&](IRBuilder<>& b) {
             Value* byte = b.CreateConstGEP1_64(i8_, b.CreateCall(local_base_), offset);
             return b.CreatePointerBitCastOrAddrSpaceCast(byte, g->getType());
           })) {
        std::uint64_t& end = local_end_[f];
        end = std::max(end, offset + dl_.getTypeAllocSize(t));
      }
      g->removeDeadConstantUsers();
      if (!g->use_empty()) throw LoweringError("a local-memory variable is used outside any function");
      g->eraseFromParent();
    }
    if (size > kMaxLocalMemory) {
      throw LoweringError("the module's local variables need " + std::to_string(size) + " bytes; the device has " +
                          std::to_string(kMaxLocalMemory));
    }
    return static_cast<std::uint32_t>(size);
  }

  void lower_function(Function& f, LoweredModule& out) {
    std::vector<Instruction*> todo;
    for (Instruction& i : instructions(f)) todo.push_back(&i);
    for (Instruction* i : todo) {
      if (auto* l = dyn_cast<LoadInst>(i)) {
        lower_load(f, l);
      } else if (auto* s = dyn_cast<StoreInst>(i)) {
        lower_store(f, s);
      } else if (auto* mt = dyn_cast<MemTransferInst>(i)) {
        lower_transfer(mt);
      } else if (auto* ms = dyn_cast<MemSetInst>(i)) {
        lower_set(ms);
      } else if (auto* rmw = dyn_cast<AtomicRMWInst>(i)) {
        lower_rmw(rmw);
      } else if (auto* cx = dyn_cast<AtomicCmpXchgInst>(i)) {
        lower_cmpxchg(cx);
      } else if (auto* call = dyn_cast<CallInst>(i)) {
        lower_call(call, out);
      }
    }
    for (Instruction* i : dead_) i->eraseFromParent();
    dead_.clear();
  }

  Value* address(IRBuilder<>& b, Value* p) { return b.CreatePtrToInt(p, i64_); }
  Value* size_of(Type* t) { return ConstantInt::get(i64_, dl_.getTypeStoreSize(t)); }

  void lower_load(Function& f, LoadInst* l) {
    if (!lowered_access(l->getPointerOperand())) return;
    IRBuilder<> b(l);
    AllocaInst* tmp = temp(f, l->getType());
    b.CreateCall(load_, {address(b, l->getPointerOperand()), b.CreatePointerCast(tmp, i8p_), size_of(l->getType())});
    l->replaceAllUsesWith(b.CreateLoad(l->getType(), tmp));
    dead_.push_back(l);
  }

  void lower_store(Function& f, StoreInst* s) {
    if (!lowered_access(s->getPointerOperand())) return;
    IRBuilder<> b(s);
    Type* t = s->getValueOperand()->getType();
    AllocaInst* tmp = temp(f, t);
    b.CreateStore(s->getValueOperand(), tmp);
    b.CreateCall(store_, {address(b, s->getPointerOperand()), b.CreatePointerCast(tmp, i8p_), size_of(t)});
    dead_.push_back(s);
  }

  void lower_transfer(MemTransferInst* mt) {
    const bool dst_dev = lowered_access(mt->getRawDest()), src_dev = lowered_access(mt->getRawSource());
    if (!dst_dev && !src_dev) return;
    IRBuilder<> b(mt);
    Value* len = b.CreateZExtOrTrunc(mt->getLength(), i64_);
    if (dst_dev && src_dev) {
      b.CreateCall(copy_, {address(b, mt->getRawDest()), address(b, mt->getRawSource()), len});
    } else if (dst_dev) {  // from module data or private memory
      b.CreateCall(
          store_, {address(b, mt->getRawDest()), b.CreatePointerBitCastOrAddrSpaceCast(mt->getRawSource(), i8p_), len});
    } else {
      b.CreateCall(
          load_, {address(b, mt->getRawSource()), b.CreatePointerBitCastOrAddrSpaceCast(mt->getRawDest(), i8p_), len});
    }
    dead_.push_back(mt);
  }

  void lower_set(MemSetInst* ms) {
    if (!lowered_access(ms->getRawDest())) return;
    IRBuilder<> b(ms);
    b.CreateCall(fill_, {address(b, ms->getRawDest()), b.CreateZExtOrTrunc(ms->getValue(), i8_),
                         b.CreateZExtOrTrunc(ms->getLength(), i64_)});
    dead_.push_back(ms);
  }

  // An atomic on device memory: __xesvm_atomic on the integer bits of v.
  Value* device_atomic(IRBuilder<>& b, Value* p, AtomicOp op, Value* v, Value* cmp, Type* result) {
    const std::uint64_t size = dl_.getTypeStoreSize(result);
    if (size != 4 && size != 8) throw LoweringError("an atomic on a " + std::to_string(size) + "-byte value");
    Type* it = IntegerType::get(c_, static_cast<unsigned>(size * 8));
    auto bits = [&](Value* x) { return x ? b.CreateZExt(b.CreateBitCast(x, it), i64_) : ConstantInt::get(i64_, 0); };
    Value* r = b.CreateCall(
        atomic_, {address(b, p), ConstantInt::get(i32_, static_cast<unsigned>(op) | size << 8), bits(v), bits(cmp)});
    return b.CreateBitCast(b.CreateTrunc(r, it), result);
  }

  static AtomicOp rmw_op(AtomicRMWInst::BinOp op) {
    switch (op) {
      case AtomicRMWInst::Add:
        return AtomicOp::kAdd;
      case AtomicRMWInst::Sub:
        return AtomicOp::kSub;
      case AtomicRMWInst::Xchg:
        return AtomicOp::kXchg;
      case AtomicRMWInst::And:
        return AtomicOp::kAnd;
      case AtomicRMWInst::Or:
        return AtomicOp::kOr;
      case AtomicRMWInst::Xor:
        return AtomicOp::kXor;
      case AtomicRMWInst::Min:
        return AtomicOp::kMinS;
      case AtomicRMWInst::Max:
        return AtomicOp::kMaxS;
      case AtomicRMWInst::UMin:
        return AtomicOp::kMinU;
      case AtomicRMWInst::UMax:
        return AtomicOp::kMaxU;
      case AtomicRMWInst::FAdd:
        return AtomicOp::kFAdd;
      default:
        throw LoweringError(std::string("unsupported atomicrmw operation ") +
                            AtomicRMWInst::getOperationName(op).str() + " on global memory");
    }
  }

  void lower_rmw(AtomicRMWInst* rmw) {
    if (!lowered_access(rmw->getPointerOperand())) return;
    IRBuilder<> b(rmw);
    rmw->replaceAllUsesWith(device_atomic(b, rmw->getPointerOperand(), rmw_op(rmw->getOperation()),
                                          rmw->getValOperand(), nullptr, rmw->getType()));
    dead_.push_back(rmw);
  }

  void lower_cmpxchg(AtomicCmpXchgInst* cx) {
    if (!lowered_access(cx->getPointerOperand())) return;
    IRBuilder<> b(cx);
    Type* t = cx->getNewValOperand()->getType();
    Value* old = device_atomic(b, cx->getPointerOperand(), AtomicOp::kCmpXchg, cx->getNewValOperand(),
                               cx->getCompareOperand(), t);
    Value* r = b.CreateInsertValue(UndefValue::get(cx->getType()), old, 0);
    r = b.CreateInsertValue(r, b.CreateICmpEQ(old, cx->getCompareOperand()), 1);
    cx->replaceAllUsesWith(r);
    dead_.push_back(cx);
  }

  // An OpenCL atomic_<op> / atom_<op> built-in.
  bool lower_atomic_call(CallInst* call, const std::string& name, StringRef mangled) {
    std::string op_name;
    if (StringRef(name).startswith("atomic_")) {
      op_name = name.substr(7);
    } else if (StringRef(name).startswith("atom_")) {
      op_name = name.substr(5);
    } else {
      return false;
    }
    const auto it = atomic_functions().find(op_name);
    if (it == atomic_functions().end() || call->arg_size() < 1) return false;
    AtomicOp op = it->second;
    const bool is_signed = signed_args(mangled);
    if (op == AtomicOp::kMinS && !is_signed) op = AtomicOp::kMinU;
    if (op == AtomicOp::kMaxS && !is_signed) op = AtomicOp::kMaxU;
    Value* p = call->getArgOperand(0);
    Type* t = call->getType();
    if (t->isFloatingPointTy()) {
      // The float atomics (SPV_EXT_shader_atomic_float_add): add, and the
      // exchanges, which move bits.
      if (op == AtomicOp::kAdd && op_name == "add") {
        op = AtomicOp::kFAdd;
      } else if (op != AtomicOp::kXchg && op != AtomicOp::kCmpXchg) {
        unsupported_.insert(name + " on " + (t->isFloatTy() ? std::string("float") : std::string("double")) + " (" +
                            mangled.str() + ")");
        dead_.push_back(call);
        call->replaceAllUsesWith(UndefValue::get(t));
        return true;
      }
    }
    IRBuilder<> b(call);
    Value* v = nullptr;
    Value* cmp = nullptr;
    if (op_name == "inc" || op_name == "dec") {
      v = ConstantInt::get(t, 1);
    } else if (op == AtomicOp::kCmpXchg && call->arg_size() == 3) {
      cmp = call->getArgOperand(1);
      v = call->getArgOperand(2);
    } else if (call->arg_size() == 2) {
      v = call->getArgOperand(1);
    } else {
      return false;
    }
    Value* r = nullptr;
    if (lowered_access(p)) {
      r = device_atomic(b, p, op, v, cmp, t);
    } else {
      // Local or private memory: a CPU atomic on the host address.
      const std::uint64_t size = dl_.getTypeStoreSize(t);
      Type* it_t = IntegerType::get(c_, static_cast<unsigned>(size * 8));
      Value* ip = b.CreatePointerCast(p, PointerType::get(it_t, p->getType()->getPointerAddressSpace()));
      Value* iv = b.CreateBitCast(v, it_t);
      if (op == AtomicOp::kCmpXchg) {
        Value* pair =
            b.CreateAtomicCmpXchg(ip, b.CreateBitCast(cmp, it_t), iv, MaybeAlign(size),
                                  AtomicOrdering::SequentiallyConsistent, AtomicOrdering::SequentiallyConsistent);
        r = b.CreateExtractValue(pair, 0);
      } else {
        static const std::map<AtomicOp, AtomicRMWInst::BinOp> kBin = {
            {AtomicOp::kAdd, AtomicRMWInst::Add},   {AtomicOp::kSub, AtomicRMWInst::Sub},
            {AtomicOp::kXchg, AtomicRMWInst::Xchg}, {AtomicOp::kAnd, AtomicRMWInst::And},
            {AtomicOp::kOr, AtomicRMWInst::Or},     {AtomicOp::kXor, AtomicRMWInst::Xor},
            {AtomicOp::kMinS, AtomicRMWInst::Min},  {AtomicOp::kMaxS, AtomicRMWInst::Max},
            {AtomicOp::kMinU, AtomicRMWInst::UMin}, {AtomicOp::kMaxU, AtomicRMWInst::UMax}};
        if (op == AtomicOp::kFAdd) {
          r = b.CreateAtomicRMW(AtomicRMWInst::FAdd,
                                b.CreatePointerCast(p, PointerType::get(t, p->getType()->getPointerAddressSpace())), v,
                                MaybeAlign(size), AtomicOrdering::SequentiallyConsistent);
          r = b.CreateBitCast(r, it_t);
        } else {
          r = b.CreateAtomicRMW(kBin.at(op), ip, iv, MaybeAlign(size), AtomicOrdering::SequentiallyConsistent);
        }
      }
      r = b.CreateBitCast(r, t);
    }
    call->replaceAllUsesWith(r);
    dead_.push_back(call);
    return true;
  }

  bool lower_math_call(CallInst* call, std::string name, StringRef mangled) {
    for (const char* prefix : {"native_", "half_"}) {
      if (StringRef(name).startswith(prefix)) name = name.substr(std::strlen(prefix));
    }
    Type* t = call->getType();
    for (const Use& a : call->args()) {
      if (a->getType() != t) return false;
    }
    IRBuilder<> b(call);
    Value* r = nullptr;
    if (t->isIntOrIntVectorTy() && (name == "min" || name == "max") && call->arg_size() == 2) {
      Value* x = call->getArgOperand(0);
      Value* y = call->getArgOperand(1);
      const bool s = signed_args(mangled);
      Value* lt = s ? b.CreateICmpSLT(x, y) : b.CreateICmpULT(x, y);
      r = name == "min" ? b.CreateSelect(lt, x, y) : b.CreateSelect(lt, y, x);
    } else if (t->isFPOrFPVectorTy()) {
      if (name == "rsqrt" && call->arg_size() == 1) {
        Value* s = b.CreateIntrinsic(Intrinsic::sqrt, {t}, {call->getArgOperand(0)});
        r = b.CreateFDiv(ConstantFP::get(t, 1.0), s);
      } else {
        const auto it = math_functions().find(name);
        if (it == math_functions().end()) return false;
        Function* fn = Intrinsic::getDeclaration(&m_, it->second, {t});
        if (fn->getFunctionType()->getNumParams() != call->arg_size()) return false;
        std::vector<Value*> args(call->arg_begin(), call->arg_end());
        r = b.CreateCall(fn, args);
      }
    } else {
      return false;
    }
    call->replaceAllUsesWith(r);
    dead_.push_back(call);
    return true;
  }

  static std::string type_name(Type* t) {
    std::string s;
    raw_string_ostream os(s);
    t->print(os);
    return os.str();
  }

  // printf(format, ...): the format must be a constant string; it is parsed
  // now and every argument checked against its conversion (a mismatch fails
  // the build, named in the log). The call becomes __xesvm_printf(format,
  // slots, n) with one 64-bit slot per argument (printf_format.hpp).
  void lower_printf(CallInst* call) {
    const std::string where = "printf in " + call->getFunction()->getName().str();
    StringRef fmt;
    if (call->arg_size() < 1 || !getConstantStringInfo(call->getArgOperand(0), fmt)) {
      printf_errors_.insert(where + ": the format is not a constant string");
      dead_.push_back(call);
      return;
    }
    const std::string shown = "\"" + std::string(StringRef(fmt).take_front(60)) + "\"";
    std::vector<PrintfPiece> pieces;
    std::string why;
    if (!parse_printf_format(fmt, &pieces, &why)) {
      printf_errors_.insert(where + ", format " + shown + ": " + why);
      dead_.push_back(call);
      return;
    }
    std::vector<const PrintfPiece*> convs;
    for (const PrintfPiece& p : pieces) {
      if (p.arg != PrintfArg::kNone) convs.push_back(&p);
    }
    if (convs.size() != call->arg_size() - 1) {
      printf_errors_.insert(where + ", format " + shown + ": " + std::to_string(convs.size()) + " conversions but " +
                            std::to_string(call->arg_size() - 1) + " arguments");
      dead_.push_back(call);
      return;
    }
    IRBuilder<> b(call);
    const auto n = static_cast<std::uint32_t>(convs.size());
    AllocaInst* slots = temp(*call->getFunction(), ArrayType::get(i64_, std::max<std::uint32_t>(n, 1)));
    for (std::uint32_t i = 0; i < n; ++i) {
      const PrintfPiece& p = *convs[i];
      Value* a = call->getArgOperand(i + 1);
      Type* t = a->getType();
      Value* slot = nullptr;
      std::string expected;
      switch (p.arg) {
        case PrintfArg::kInt:
        case PrintfArg::kChar: {
          const unsigned want = p.length == "l" ? 64 : 32;
          if (t->isIntegerTy(want)) {
            slot = p.conversion == 'd' || p.conversion == 'i' ? b.CreateSExt(a, i64_) : b.CreateZExt(a, i64_);
          } else {
            expected = want == 64 ? "a 64-bit integer (long, ulong)" : "a 32-bit integer (int, uint or promoted char)";
          }
          break;
        }
        case PrintfArg::kFloat:
          if (t->isFloatTy() || t->isDoubleTy() || t->isHalfTy()) {
            slot = b.CreateBitCast(b.CreateFPExt(a, Type::getDoubleTy(c_)), i64_);
          } else {
            expected = "a floating-point value";
          }
          break;
        case PrintfArg::kString: {
          StringRef str;
          if (t->isPointerTy() && getConstantStringInfo(a, str)) {
            slot = b.CreatePtrToInt(a, i64_);  // the module's own constant data
          } else {
            expected = "a string literal";
          }
          break;
        }
        case PrintfArg::kPointer:
          if (t->isPointerTy()) {
            slot = b.CreatePtrToInt(a, i64_);
          } else {
            expected = "a pointer";
          }
          break;
        case PrintfArg::kNone:
          break;
      }
      if (!slot) {
        printf_errors_.insert(where + ", format " + shown + ": conversion " + std::to_string(i + 1) + " (" + p.text +
                              ") expects " + expected + ", the argument is " + type_name(t));
        dead_.push_back(call);
        return;
      }
      b.CreateStore(slot, b.CreateConstGEP2_64(slots->getAllocatedType(), slots, 0, i));
    }
    Value* fmt_ptr = b.CreatePointerBitCastOrAddrSpaceCast(call->getArgOperand(0), i8p_);
    Value* r = b.CreateCall(
        printf_, {fmt_ptr, b.CreatePointerCast(slots, PointerType::get(i64_, kPrivate)), ConstantInt::get(i32_, n)});
    call->replaceAllUsesWith(b.CreateZExtOrTrunc(r, call->getType()));
    dead_.push_back(call);
  }

  // vloadN(offset, p) and vstoreN(data, offset, p), N = 2, 3, 4, 8, 16: a
  // vector access of the N elements at p + offset * N (aligned to the
  // element), lowered like any other access of its address space.
  bool lower_vector_access(CallInst* call, const std::string& name) {
    const bool is_load = StringRef(name).startswith("vload");
    if (!is_load && !StringRef(name).startswith("vstore")) return false;
    const std::string n_text = name.substr(is_load ? 5 : 6);
    if (n_text != "2" && n_text != "3" && n_text != "4" && n_text != "8" && n_text != "16") return false;
    const unsigned n = static_cast<unsigned>(std::stoul(n_text));
    auto* vt = dyn_cast<FixedVectorType>(is_load ? call->getType() : call->getArgOperand(0)->getType());
    if (!vt || vt->getNumElements() != n || call->arg_size() != (is_load ? 2u : 3u)) return false;
    Value* offset = call->getArgOperand(is_load ? 0 : 1);
    Value* p = call->getArgOperand(is_load ? 1 : 2);
    if (!p->getType()->isPointerTy()) return false;
    Type* et = vt->getElementType();
    const unsigned as = p->getType()->getPointerAddressSpace();
    IRBuilder<> b(call);
    Value* first = b.CreateGEP(et, b.CreatePointerCast(p, PointerType::get(et, as)),
                               b.CreateMul(b.CreateZExtOrTrunc(offset, i64_), ConstantInt::get(i64_, n)));
    Value* vp = b.CreatePointerCast(first, PointerType::get(vt, as));
    const Align align = dl_.getABITypeAlign(et);
    Function& f = *call->getFunction();
    if (is_load) {
      LoadInst* l = b.CreateAlignedLoad(vt, vp, align);
      call->replaceAllUsesWith(l);
      lower_load(f, l);
    } else {
      lower_store(f, b.CreateAlignedStore(call->getArgOperand(0), vp, align));
    }
    dead_.push_back(call);
    return true;
  }

  // Sub-groups are one work item wide (the device reports a sub-group size
  // of 1): each item is its own sub-group, so a collective over a
  // sub-group is the item's own value (an exclusive scan the operation's
  // identity), and a sub-group barrier has nothing to wait for.
  bool lower_sub_group_call(CallInst* call, const std::string& name, StringRef mangled, LoweredModule&) {
    if (!StringRef(name).startswith("sub_group_") && !StringRef(name).startswith("get_sub_group_") &&
        name != "get_max_sub_group_size" && name != "get_num_sub_groups" && name != "get_enqueued_num_sub_groups")
      return false;
    IRBuilder<> b(call);
    Type* t = call->getType();
    Value* r = nullptr;
    auto local_size = [&]() {
      Value* total = ConstantInt::get(i64_, 1);
      for (std::uint32_t d = 0; d < 3; ++d) {
        total = b.CreateMul(
            total,
            b.CreateCall(work_item_, {ConstantInt::get(i32_, static_cast<std::uint32_t>(WorkItemQuery::kLocalSize)),
                                      ConstantInt::get(i32_, d)}));
      }
      return total;
    };
    if (name == "get_sub_group_size" || name == "get_max_sub_group_size") {
      r = ConstantInt::get(t, 1);
    } else if (name == "get_sub_group_local_id") {
      r = ConstantInt::get(t, 0);
    } else if (name == "get_num_sub_groups" || name == "get_enqueued_num_sub_groups") {
      r = b.CreateZExtOrTrunc(local_size(), t);
    } else if (name == "get_sub_group_id") {
      r = b.CreateZExtOrTrunc(
          b.CreateCall(work_item_, {ConstantInt::get(i32_, static_cast<std::uint32_t>(WorkItemQuery::kLocalLinearId)),
                                    ConstantInt::get(i32_, 0)}),
          t);
    } else if (name == "sub_group_barrier") {
      dead_.push_back(call);
      return true;
    } else if ((name == "sub_group_all" || name == "sub_group_any") && call->arg_size() == 1) {
      Value* x = call->getArgOperand(0);
      r = b.CreateZExt(b.CreateICmpNE(x, Constant::getNullValue(x->getType())), t);
    } else if (name == "sub_group_broadcast" && call->arg_size() == 2 && call->getArgOperand(0)->getType() == t) {
      r = call->getArgOperand(0);  // the only valid id is 0
    } else if (call->arg_size() == 1 && call->getArgOperand(0)->getType() == t &&
               (StringRef(name).startswith("sub_group_reduce_") ||
                StringRef(name).startswith("sub_group_scan_inclusive_"))) {
      const std::string op = name.substr(name.rfind('_') + 1);
      if (op != "add" && op != "min" && op != "max") return false;
      r = call->getArgOperand(0);
    } else if (call->arg_size() == 1 && call->getArgOperand(0)->getType() == t &&
               StringRef(name).startswith("sub_group_scan_exclusive_")) {
      const std::string op = name.substr(name.rfind('_') + 1);
      const bool s = signed_args(mangled);
      if (op == "add") {
        r = Constant::getNullValue(t);
      } else if (op == "min" || op == "max") {
        const bool min = op == "min";
        if (t->isFloatingPointTy()) {
          r = ConstantFP::getInfinity(t, !min);
        } else if (auto* it = dyn_cast<IntegerType>(t)) {
          const unsigned w = it->getBitWidth();
          const APInt v = min ? (s ? APInt::getSignedMaxValue(w) : APInt::getMaxValue(w))
                              : (s ? APInt::getSignedMinValue(w) : APInt::getMinValue(w));
          r = ConstantInt::get(t, v);
        }
      }
      if (!r) return false;
    } else {
      return false;
    }
    call->replaceAllUsesWith(r);
    dead_.push_back(call);
    return true;
  }

  void lower_call(CallInst* call, LoweredModule& out) {
    call->setCallingConv(CallingConv::C);
    Function* callee = call->getCalledFunction();
    if (!callee || !callee->isDeclaration() || callee->isIntrinsic() || callee->getName().startswith("__xesvm_"))
      return;
    const StringRef mangled = callee->getName();
    const std::string name = base_name(mangled);
    IRBuilder<> b(call);
    if (const auto wi = work_item_functions().find(name); wi != work_item_functions().end()) {
      Value* dim = call->arg_size() ? b.CreateZExtOrTrunc(call->getArgOperand(0), i32_) : ConstantInt::get(i32_, 0);
      Value* r = b.CreateCall(work_item_, {ConstantInt::get(i32_, static_cast<std::uint32_t>(wi->second)), dim});
      call->replaceAllUsesWith(b.CreateZExtOrTrunc(r, call->getType()));
      dead_.push_back(call);
      return;
    }
    if (name == "barrier" || name == "work_group_barrier") {
      b.CreateCall(barrier_)->setConvergent();
      out.barriers = true;
      barrier_callers_.insert(call->getFunction());
      dead_.push_back(call);
      return;
    }
    if (name == "mem_fence" || name == "read_mem_fence" || name == "write_mem_fence") {
      // The items of a group run on one thread; device atomics are
      // sequentially consistent.
      dead_.push_back(call);
      return;
    }
    if (name == "printf") {
      lower_printf(call);
      return;
    }
    if (lower_vector_access(call, name) || lower_sub_group_call(call, name, mangled, out)) return;
    if (lower_atomic_call(call, name, mangled) || lower_math_call(call, name, mangled)) return;
    unsupported_.insert(name == mangled ? name : name + " (" + mangled.str() + ")");
  }

  // Local memory and fiber mode of one kernel: the functions it reaches
  // through direct calls decide (an indirect call reaches anything: the
  // module's values then).
  void decide_per_kernel(Function& k, const LoweredModule& m, LoweredKernel* out) {
    std::set<Function*> seen{&k};
    std::vector<Function*> work{&k};
    bool indirect = false;
    while (!work.empty()) {
      Function* f = work.back();
      work.pop_back();
      for (Instruction& i : instructions(*f)) {
        auto* call = dyn_cast<CallBase>(&i);
        if (!call) continue;
        Function* callee = call->getCalledFunction();
        if (!callee) {
          indirect = !call->isInlineAsm() || indirect;
          continue;
        }
        if (!callee->isDeclaration() && seen.insert(callee).second) work.push_back(callee);
      }
    }
    if (indirect) {
      out->local_mem_size = m.local_mem_size;
      out->barriers = m.barriers;
      return;
    }
    std::uint64_t end = 0;
    for (Function* f : seen) {
      if (const auto it = local_end_.find(f); it != local_end_.end()) end = std::max(end, it->second);
      if (barrier_callers_.count(f)) out->barriers = true;
    }
    out->local_mem_size = static_cast<std::uint32_t>(end);
  }

  LoweredKernel make_entry(Function& k) {
    LoweredKernel out;
    out.name = k.getName().str();
    out.entry = "__xesvm_entry." + out.name;
    if (const MDNode* md = k.getMetadata("reqd_work_group_size"); md && md->getNumOperands() == 3) {
      for (unsigned i = 0; i < 3; ++i) {
        if (auto* c = mdconst::dyn_extract<ConstantInt>(md->getOperand(i)))
          out.required_group_size[i] = static_cast<std::uint32_t>(c->getZExtValue());
      }
    }
    if (const MDNode* md = k.getMetadata("intel_reqd_sub_group_size"); md && md->getNumOperands() == 1) {
      if (auto* c = mdconst::dyn_extract<ConstantInt>(md->getOperand(0))) {
        if (c->getZExtValue() != 1) {
          throw LoweringError("kernel " + out.name + " requires a sub-group size of " +
                              std::to_string(c->getZExtValue()) + "; the device's sub-groups are 1 work item wide");
        }
        out.required_sub_group_size = 1;
      }
    }
    Type* i8pp = PointerType::get(i8p_, kPrivate);
    auto* ft = FunctionType::get(Type::getVoidTy(c_), {i8p_, i8p_, i8pp, i8p_}, false);
    Function* e = Function::Create(ft, GlobalValue::ExternalLinkage, out.entry, m_);
    IRBuilder<> b(BasicBlock::Create(c_, "entry", e));
    AllocaInst* env = b.CreateAlloca(ArrayType::get(i8_, sizeof(ItemEnv)));
    env->setAlignment(Align(16));
    b.CreateCall(enter_, {b.CreatePointerCast(env, i8p_), e->getArg(0), e->getArg(1), e->getArg(3)});
    std::vector<Value*> actuals;
    for (Argument& a : k.args()) {
      Value* slot = b.CreateLoad(i8p_, b.CreateConstGEP1_64(i8p_, e->getArg(2), a.getArgNo()));
      Type* t = a.getType();
      if (a.hasByValAttr()) {
        actuals.push_back(b.CreatePointerBitCastOrAddrSpaceCast(slot, t));
        out.arg_sizes.push_back(static_cast<std::uint32_t>(dl_.getTypeAllocSize(a.getParamByValType())));
        out.arg_local.push_back(false);
        continue;
      }
      actuals.push_back(b.CreateLoad(t, b.CreatePointerCast(slot, PointerType::get(t, kPrivate))));
      out.arg_sizes.push_back(static_cast<std::uint32_t>(dl_.getTypeAllocSize(t)));
      out.arg_local.push_back(t->isPointerTy() && t->getPointerAddressSpace() == kLocal);
    }
    b.CreateCall(&k, actuals)->setCallingConv(CallingConv::C);
    b.CreateRetVoid();
    return out;
  }

  llvm::Module& m_;
  LLVMContext& c_;
  const DataLayout& dl_;
  Type* i8_;
  Type* i32_;
  Type* i64_;
  PointerType* i8p_;
  Function *load_, *store_, *copy_, *fill_, *atomic_, *work_item_, *barrier_, *local_base_, *globals_base_, *printf_,
      *enter_;
  std::vector<Instruction*> dead_;
  std::set<std::string> unsupported_;
  std::set<std::string> printf_errors_;
  std::map<Function*, std::uint64_t> local_end_;  ///< the end of the last local variable each function uses
  std::set<Function*> barrier_callers_;           ///< functions that call a barrier
};

}  // namespace

LoweredModule lower_for_device(llvm::Module& m) { return Lowerer(m).run(); }

void check_lowered(const llvm::Module& m) {
  for (const Function& f : m) {
    for (const Instruction& i : instructions(f)) {
      const Value* p = nullptr;
      if (const auto* l = dyn_cast<LoadInst>(&i)) p = l->getPointerOperand();
      if (const auto* s = dyn_cast<StoreInst>(&i)) p = s->getPointerOperand();
      if (const auto* r = dyn_cast<AtomicRMWInst>(&i)) p = r->getPointerOperand();
      if (const auto* c = dyn_cast<AtomicCmpXchgInst>(&i)) p = c->getPointerOperand();
      if (const auto* mi = dyn_cast<MemIntrinsic>(&i)) {
        if (lowered_access(mi->getRawDest())) p = mi->getRawDest();
        if (const auto* mt = dyn_cast<MemTransferInst>(mi); mt && lowered_access(mt->getRawSource()))
          p = mt->getRawSource();
      }
      if (p && lowered_access(p)) {
        throw LoweringError("function " + f.getName().str() + " still accesses address space " +
                            std::to_string(p->getType()->getPointerAddressSpace()) + " directly (" + i.getOpcodeName() +
                            ")");
      }
    }
  }
}

}  // namespace xesvm::ze
