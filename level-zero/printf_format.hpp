// OpenCL C printf formats (OpenCL C 2.0, 6.13.13): parsing, the argument
// each conversion takes, and formatting a call's arguments on the host.
//
// The SPIR-V lowering parses a kernel's format string when the module is
// built (a constant string is required) and checks every argument against
// its conversion, so a bad format fails the build, named in the log; the
// device call that prints parses the same string again and formats the
// arguments, which the compiled kernel passes as 64-bit slots: integers
// sign- or zero-extended, floating-point values as the bits of a double,
// strings and pointers as addresses.
//
// Not supported (the parse fails saying so): vector conversions (%v),
// '*' widths or precisions, %n, and length modifiers other than hh, h, l.
//
// Thread-safety: pure functions.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace xesvm::ze {

/// What a conversion consumes.
enum class PrintfArg { kNone, kInt, kFloat, kChar, kString, kPointer };

/// One piece of a format: literal text, or one conversion.
struct PrintfPiece {
  std::string text;  ///< the literal text, or the whole conversion ("%-5.2f")
  PrintfArg arg = PrintfArg::kNone;
  char conversion = 0;  ///< 'd', 'f', ... (0 for text)
  std::string length;   ///< "", "hh", "h" or "l"
};

/// Parses fmt. On success returns true and fills *out; else returns false
/// and *why says what is wrong, at which conversion.
inline bool parse_printf_format(std::string_view fmt, std::vector<PrintfPiece>* out, std::string* why) {
  out->clear();
  std::string text;
  for (std::size_t i = 0; i < fmt.size();) {
    if (fmt[i] != '%') {
      text += fmt[i++];
      continue;
    }
    if (i + 1 < fmt.size() && fmt[i + 1] == '%') {
      text += '%';
      i += 2;
      continue;
    }
    if (!text.empty()) out->push_back(PrintfPiece{std::move(text), PrintfArg::kNone, 0, ""});
    text.clear();
    const std::size_t start = i++;
    PrintfPiece p;
    while (i < fmt.size() && std::strchr("-+ #0", fmt[i])) ++i;
    auto digits = [&] {
      while (i < fmt.size() && fmt[i] >= '0' && fmt[i] <= '9') ++i;
    };
    if (i < fmt.size() && fmt[i] == '*') {
      *why = "a '*' width in conversion " + std::string(fmt.substr(start, i + 1 - start)) + " is not supported";
      return false;
    }
    digits();
    if (i < fmt.size() && fmt[i] == '.') {
      ++i;
      if (i < fmt.size() && fmt[i] == '*') {
        *why = "a '*' precision in conversion " + std::string(fmt.substr(start, i + 1 - start)) + " is not supported";
        return false;
      }
      digits();
    }
    if (i < fmt.size() && fmt[i] == 'v') {
      *why = "vector conversion " + std::string(fmt.substr(start, i + 1 - start)) + "... is not supported";
      return false;
    }
    const std::size_t len_start = i;
    while (i < fmt.size() && (fmt[i] == 'h' || fmt[i] == 'l')) ++i;
    p.length = std::string(fmt.substr(len_start, i - len_start));
    if (p.length != "" && p.length != "h" && p.length != "hh" && p.length != "l") {
      *why = "length modifier '" + p.length + "' is not one of hh, h, l (OpenCL C)";
      return false;
    }
    if (i >= fmt.size()) {
      *why = "the format ends inside conversion " + std::string(fmt.substr(start));
      return false;
    }
    p.conversion = fmt[i++];
    p.text = std::string(fmt.substr(start, i - start));
    switch (p.conversion) {
      case 'd':
      case 'i':
      case 'o':
      case 'u':
      case 'x':
      case 'X':
        p.arg = PrintfArg::kInt;
        break;
      case 'f':
      case 'F':
      case 'e':
      case 'E':
      case 'g':
      case 'G':
      case 'a':
      case 'A':
        p.arg = PrintfArg::kFloat;
        break;
      case 'c':
        p.arg = PrintfArg::kChar;
        break;
      case 's':
        p.arg = PrintfArg::kString;
        break;
      case 'p':
        p.arg = PrintfArg::kPointer;
        break;
      default:
        *why = "conversion " + p.text + " is not an OpenCL C printf conversion";
        return false;
    }
    if (!p.length.empty() && p.arg != PrintfArg::kInt && !(p.arg == PrintfArg::kFloat && p.length == "l")) {
      *why = "length modifier in " + p.text + " applies only to integer conversions";
      return false;
    }
    out->push_back(std::move(p));
  }
  if (!text.empty()) out->push_back(PrintfPiece{std::move(text), PrintfArg::kNone, 0, ""});
  return true;
}

/// Formats the pieces with args (one 64-bit slot per conversion, as the
/// header describes) into a string.
inline std::string format_printf(const std::vector<PrintfPiece>& pieces, const std::uint64_t* args) {
  std::string r;
  std::size_t next = 0;
  char buf[512];
  for (const PrintfPiece& p : pieces) {
    if (p.arg == PrintfArg::kNone) {
      r += p.text;
      continue;
    }
    const std::uint64_t v = args[next++];
    // The host's spec: OpenCL's 'l' is 64 bits (the host's "ll").
    std::string spec = p.text.substr(0, p.text.size() - 1 - p.length.size());
    int n = 0;
    switch (p.arg) {
      case PrintfArg::kInt: {
        const bool sgn = p.conversion == 'd' || p.conversion == 'i';
        spec += (p.length == "l" ? "ll" : p.length) + std::string(1, p.conversion);
        if (p.length == "l") {
          n = sgn ? std::snprintf(buf, sizeof buf, spec.c_str(), static_cast<long long>(v))
                  : std::snprintf(buf, sizeof buf, spec.c_str(), static_cast<unsigned long long>(v));
        } else {
          n = sgn ? std::snprintf(buf, sizeof buf, spec.c_str(), static_cast<int>(static_cast<std::uint32_t>(v)))
                  : std::snprintf(buf, sizeof buf, spec.c_str(), static_cast<unsigned>(v));
        }
        break;
      }
      case PrintfArg::kFloat: {
        double d = 0;
        std::memcpy(&d, &v, sizeof d);
        spec += p.conversion;
        n = std::snprintf(buf, sizeof buf, spec.c_str(), d);
        break;
      }
      case PrintfArg::kChar:
        spec += 'c';
        n = std::snprintf(buf, sizeof buf, spec.c_str(), static_cast<int>(static_cast<unsigned char>(v)));
        break;
      case PrintfArg::kString:
        spec += 's';
        n = std::snprintf(buf, sizeof buf, spec.c_str(), reinterpret_cast<const char*>(v));
        break;
      case PrintfArg::kPointer:
        spec += 'p';
        n = std::snprintf(buf, sizeof buf, spec.c_str(), reinterpret_cast<const void*>(v));
        break;
      case PrintfArg::kNone:
        break;
    }
    if (n > 0) r.append(buf, std::min<std::size_t>(static_cast<std::size_t>(n), sizeof buf - 1));
  }
  return r;
}

}  // namespace xesvm::ze
