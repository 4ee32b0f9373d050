// What the driver and the SPIR-V translator program (spirv_translator/,
// xesvm-spirv-translate) exchange: a translation request on the program's
// standard input, its answer on its standard output.
//
// The translator program runs SPIRV-LLVM-Translator in a process of its own
// (spirv_translator_process.hpp says why); these functions are the whole
// contract between the two. Both ends run on the same machine from the same
// build, so integers are in the host's byte order; every message starts with
// a magic number and a format version, so a foreign or stale program is
// refused by name instead of misread.
//
//   request: "XSTQ" u32 version, u32 n, n x (u32 id, u64 value)   spec constants
//            u64 words, words x u32                              the SPIR-V
//   answer:  "XSTA" u32 version, u8 kind ('B' bitcode, 'E' the translator's
//            error), u64 length, length bytes
//
// Concurrency: the functions are pure (no shared state).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace xesvm::ze {

/// What the translator program is asked to translate.
struct TranslationRequest {
  /// Specialization constants (SPIR-V SpecId, value in the low bytes).
  std::vector<std::pair<std::uint32_t, std::uint64_t>> spec_constants;
  std::vector<std::uint32_t> words;  ///< the SPIR-V module
};

/// What the translator program answers.
struct TranslationAnswer {
  enum class Kind : char { kBitcode = 'B', kError = 'E' };
  Kind kind = Kind::kError;
  /// LLVM bitcode of the translated module (kBitcode), or the translator's
  /// message saying why it refused the module (kError).
  std::string payload;
};

/// The bytes of r, as the translator program reads them.
std::string encode_request(const TranslationRequest& r);

/// Parses bytes into *out. Returns "" on success, else what is wrong with
/// them (truncated, a bad magic number or version, trailing bytes).
std::string decode_request(std::string_view bytes, TranslationRequest* out);

/// The bytes of a, as the driver reads them.
std::string encode_answer(const TranslationAnswer& a);

/// Parses bytes into *out. Returns "" on success, else what is wrong with
/// them (an incomplete answer is one: a program that died while writing).
std::string decode_answer(std::string_view bytes, TranslationAnswer* out);

}  // namespace xesvm::ze
