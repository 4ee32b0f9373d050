// The SPIR-V translator as a program of its own: SPIR-V -> LLVM bitcode in
// a process the driver spawns for each translation.
//
// SPIRV-LLVM-Translator asserts or crashes on some modules that pass every
// check the driver makes first, and such a module must fail its build, not
// end the application; so it runs in another process. That process must not
// be a fork of the application: the application is multi-threaded (the
// runtime's fault and engine threads, its own), and a fork's child may only
// make async-signal-safe calls until it execs, while the translator
// allocates, uses C++ streams and LLVM, and would deadlock on a lock another
// thread held at the fork. So the driver spawns (posix_spawn: nothing runs
// between the clone and the exec) the translator program
// xesvm-spirv-translate (spirv_translator/), which translates one request
// (spirv_translator_protocol.hpp) and exits.
//
// The program is found, in this order:
//   1. $XESVM_SPIRV_TRANSLATOR, if set (the only place then);
//   2. next to the driver library (the build tree: both in level-zero/);
//   3. where the install puts it relative to the installed driver
//      (<libdir>/xesvm/libze_xesvm.so -> <libexecdir>/xesvm/).
//
// The request goes to the program's standard input in a sealed memory file,
// its answer comes back on a pipe, its standard error goes to another
// memory file; every descriptor of the driver is close-on-exec and the
// child gets only these three. The program has kTranslateTimeout
// ($XESVM_SPIRV_TRANSLATOR_TIMEOUT seconds, if set) to answer; then it is
// killed.
//
// Concurrency: thread-safe; each call runs its own process (the driver
// serialises builds anyway). Reaps only the process it started.
#pragma once

#include <chrono>
#include <stdexcept>
#include <string>

#include "level-zero/spirv_translator_protocol.hpp"

namespace xesvm::ze {

/// A translation that failed; what() is the build log's line saying why
/// (the translator's refusal, a missing or failing translator program, the
/// signal that killed it or the timeout, with its last message on standard
/// error).
class TranslatorError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// How long the translator program may take on one module by default.
inline constexpr std::chrono::seconds kTranslateTimeout{120};

/// The path of the translator program (the order above). Throws
/// TranslatorError naming every path looked at when none is an executable
/// file.
std::string translator_program();

/// Translates request in the translator program; returns the LLVM bitcode
/// of the module. Throws TranslatorError. Never leaves the program running:
/// it has exited, or it was killed and reaped.
std::string translate_in_translator_process(const TranslationRequest& request);

}  // namespace xesvm::ze
