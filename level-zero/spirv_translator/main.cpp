// xesvm-spirv-translate: SPIR-V -> LLVM bitcode with SPIRV-LLVM-Translator,
// the Level Zero driver's translator program.
//
// The driver starts it for each SPIR-V module it compiles (see
// level-zero/spirv_translator_process.hpp): one request on standard input,
// one answer on standard output (level-zero/spirv_translator_protocol.hpp),
// nothing else. Exit status 0 with an answer, bitcode or the translator's
// refusal; 2 with a message on standard error when the request cannot be
// read. An assertion or a crash of the translator ends this process only:
// the driver reports it as a failed build with the last message written to
// standard error.
//
// The translator options (SPIR-V extensions, OpenCL 1.2 built-ins) are the
// ones the driver's device supports: the driver checks every module against
// that list before it asks.
#include <LLVMSPIRVLib/LLVMSPIRVLib.h>
#include <llvm/Bitcode/BitcodeWriter.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/Support/raw_ostream.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>

#include "level-zero/spirv_translator_protocol.hpp"

namespace {

// All of fd until end of file; false (errno set) on a read error.
bool read_all(int fd, std::string* out) {
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) return true;
    out->append(buf, static_cast<std::size_t>(n));
  }
}

bool write_all(int fd, const std::string& bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

xesvm::ze::TranslationAnswer translate(const xesvm::ze::TranslationRequest& request) {
  llvm::LLVMContext ctx;
  ctx.setOpaquePointers(false);
  SPIRV::TranslatorOpts opts(SPIRV::VersionNumber::MaximumVersion,
                             {{SPIRV::ExtensionID::SPV_KHR_no_integer_wrap_decoration, true},
                              {SPIRV::ExtensionID::SPV_EXT_shader_atomic_float_add, true}});
  opts.setDesiredBIsRepresentation(SPIRV::BIsRepresentation::OpenCL12);
  for (const auto& [id, value] : request.spec_constants) opts.setSpecConst(id, value);
  std::istringstream in(
      std::string(reinterpret_cast<const char*>(request.words.data()), request.words.size() * sizeof(std::uint32_t)));
  llvm::Module* raw = nullptr;
  std::string err;
  const bool ok = llvm::readSpirv(ctx, opts, in, raw, err);
  const std::unique_ptr<llvm::Module> m(raw);
  xesvm::ze::TranslationAnswer answer;
  if (!ok || !m) {
    answer.payload = err.empty() ? "the translator gave no reason" : err;
    return answer;
  }
  answer.kind = xesvm::ze::TranslationAnswer::Kind::kBitcode;
  llvm::raw_string_ostream os(answer.payload);
  llvm::WriteBitcodeToFile(*m, os);
  os.flush();
  return answer;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 1) {
    std::fprintf(stderr,
                 "usage: %s < request > answer\n"
                 "Translates one SPIR-V module for the xesvm Level Zero driver, which runs this program.\n",
                 argv[0]);
    return 2;
  }
  std::string bytes;
  if (!read_all(0, &bytes)) {
    std::fprintf(stderr, "xesvm-spirv-translate: cannot read the request: %s\n", std::strerror(errno));
    return 2;
  }
  xesvm::ze::TranslationRequest request;
  if (const std::string e = xesvm::ze::decode_request(bytes, &request); !e.empty()) {
    std::fprintf(stderr, "xesvm-spirv-translate: %s\n", e.c_str());
    return 2;
  }
  bytes.clear();
  bytes.shrink_to_fit();
  if (!write_all(1, xesvm::ze::encode_answer(translate(request)))) {
    std::fprintf(stderr, "xesvm-spirv-translate: cannot write the answer: %s\n", std::strerror(errno));
    return 2;
  }
  return 0;
}
