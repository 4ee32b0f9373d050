// The messages between the driver and the SPIR-V translator program (see
// spirv_translator_protocol.hpp).
#include "level-zero/spirv_translator_protocol.hpp"

#include <cstring>

namespace xesvm::ze {

namespace {

constexpr char kRequestMagic[4] = {'X', 'S', 'T', 'Q'};
constexpr char kAnswerMagic[4] = {'X', 'S', 'T', 'A'};
constexpr std::uint32_t kVersion = 1;

template <typename T>
void put(std::string* out, T v) {
  char b[sizeof v];
  std::memcpy(b, &v, sizeof v);
  out->append(b, sizeof v);
}

// Reads the fields of a message in order; every read past the end fails.
class Reader {
 public:
  explicit Reader(std::string_view b) : b_(b) {}
  template <typename T>
  bool get(T* v) {
    if (b_.size() < sizeof *v) return false;
    std::memcpy(v, b_.data(), sizeof *v);
    b_.remove_prefix(sizeof *v);
    return true;
  }
  bool get_bytes(std::size_t n, std::string_view* v) {
    if (b_.size() < n) return false;
    *v = b_.substr(0, n);
    b_.remove_prefix(n);
    return true;
  }
  std::size_t left() const { return b_.size(); }

 private:
  std::string_view b_;
};

// "" if r starts with magic and the current version, else what it is.
std::string check_header(Reader& r, const char (&magic)[4], const char* what) {
  std::string_view m;
  std::uint32_t version = 0;
  if (!r.get_bytes(4, &m) || !r.get(&version)) return std::string(what) + " is truncated in its header";
  if (m != std::string_view(magic, 4)) return std::string(what) + " has a bad magic number";
  if (version != kVersion) {
    return std::string(what) + " has format version " + std::to_string(version) + ", expected " +
           std::to_string(kVersion);
  }
  return "";
}

}  // namespace

std::string encode_request(const TranslationRequest& r) {
  std::string out(kRequestMagic, 4);
  put(&out, kVersion);
  put(&out, static_cast<std::uint32_t>(r.spec_constants.size()));
  for (const auto& [id, value] : r.spec_constants) {
    put(&out, id);
    put(&out, value);
  }
  put(&out, static_cast<std::uint64_t>(r.words.size()));
  out.append(reinterpret_cast<const char*>(r.words.data()), r.words.size() * sizeof(std::uint32_t));
  return out;
}

std::string decode_request(std::string_view bytes, TranslationRequest* out) {
  Reader r(bytes);
  if (std::string e = check_header(r, kRequestMagic, "the request"); !e.empty()) return e;
  std::uint32_t n = 0;
  if (!r.get(&n) || n > r.left() / 12) return "the request is truncated in its specialization constants";
  out->spec_constants.resize(n);
  for (auto& [id, value] : out->spec_constants) {
    if (!r.get(&id) || !r.get(&value)) return "the request is truncated in its specialization constants";
  }
  std::uint64_t words = 0;
  if (!r.get(&words) || words > r.left() / 4) return "the request is truncated in its module";
  std::string_view w;
  r.get_bytes(static_cast<std::size_t>(words) * 4, &w);
  out->words.resize(static_cast<std::size_t>(words));
  std::memcpy(out->words.data(), w.data(), w.size());
  if (r.left() != 0) return "the request has " + std::to_string(r.left()) + " bytes after its module";
  return "";
}

std::string encode_answer(const TranslationAnswer& a) {
  std::string out(kAnswerMagic, 4);
  put(&out, kVersion);
  out.push_back(static_cast<char>(a.kind));
  put(&out, static_cast<std::uint64_t>(a.payload.size()));
  out += a.payload;
  return out;
}

std::string decode_answer(std::string_view bytes, TranslationAnswer* out) {
  if (bytes.empty()) return "the translator program answered nothing";
  Reader r(bytes);
  if (std::string e = check_header(r, kAnswerMagic, "the translator program's answer"); !e.empty()) return e;
  char kind = 0;
  std::uint64_t n = 0;
  if (!r.get(&kind) || !r.get(&n)) return "the translator program's answer is truncated in its header";
  if (kind != static_cast<char>(TranslationAnswer::Kind::kBitcode) &&
      kind != static_cast<char>(TranslationAnswer::Kind::kError)) {
    return "the translator program's answer is of unknown kind " + std::to_string(static_cast<int>(kind));
  }
  if (n != r.left()) {
    return "the translator program's answer has " + std::to_string(r.left()) + " bytes of the " + std::to_string(n) +
           " it announced";
  }
  out->kind = static_cast<TranslationAnswer::Kind>(kind);
  std::string_view p;
  r.get_bytes(static_cast<std::size_t>(n), &p);
  out->payload.assign(p);
  return "";
}

}  // namespace xesvm::ze
