// The translator program, spawned per translation (see
// spirv_translator_process.hpp).
#include "level-zero/spirv_translator_process.hpp"

#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <utility>
#include <vector>

extern char** environ;

#ifndef XESVM_SPIRV_TRANSLATOR_NAME
#error "XESVM_SPIRV_TRANSLATOR_NAME must name the translator program"
#endif
#ifndef XESVM_SPIRV_TRANSLATOR_FROM_DRIVER_DIR
#error "XESVM_SPIRV_TRANSLATOR_FROM_DRIVER_DIR must give the installed program's directory relative to the driver's"
#endif

namespace xesvm::ze {

namespace {

// An owned file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) reset(std::exchange(o.fd_, -1));
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

[[noreturn]] void fail_with(const std::string& what) { throw TranslatorError(what); }

std::string errno_text(int e) { return std::strerror(e); }

// fd moved above the standard descriptors (close-on-exec), so that the
// child's dup2 onto 0, 1 and 2 never overwrites another of them.
Fd above_stdio(Fd fd, const char* what) {
  if (fd.get() > 2) return fd;
  const int moved = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3);
  if (moved < 0) fail_with(std::string("cannot move the ") + what + ": " + errno_text(errno));
  return Fd(moved);
}

bool executable_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// The directory of the file this library was loaded from ("" if unknown).
std::string driver_directory() {
  Dl_info info{};
  if (::dladdr(reinterpret_cast<void*>(&translator_program), &info) == 0 || !info.dli_fname) return "";
  const std::string lib = info.dli_fname;
  const std::size_t slash = lib.rfind('/');
  return slash == std::string::npos ? "." : lib.substr(0, slash);
}

std::chrono::milliseconds timeout() {
  const char* s = std::getenv("XESVM_SPIRV_TRANSLATOR_TIMEOUT");
  if (!s || !*s) return kTranslateTimeout;
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s, &end);
  if (errno != 0 || *end != '\0' || !(v > 0) || v > 24 * 3600) {
    fail_with(std::string("XESVM_SPIRV_TRANSLATOR_TIMEOUT is '") + s +
              "'; expected a number of seconds greater than 0 (up to 86400)");
  }
  return std::chrono::milliseconds(std::max<long long>(1, static_cast<long long>(v * 1000)));
}

std::string seconds_text(std::chrono::milliseconds t) {
  if (t.count() % 1000 == 0) return std::to_string(t.count() / 1000) + " s";
  return std::to_string(t.count()) + " ms";
}

// A memory file holding bytes, sealed, its offset at 0.
Fd request_file(const std::string& bytes) {
  Fd fd(::memfd_create("xesvm-spirv-request", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd.valid()) fail_with("cannot create a memory file for the request: " + errno_text(errno));
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail_with("cannot write the request to a memory file: " + errno_text(errno));
    done += static_cast<std::size_t>(n);
  }
  ::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
  if (::lseek(fd.get(), 0, SEEK_SET) != 0) fail_with("cannot rewind the request file: " + errno_text(errno));
  return fd;
}

// Reads fd until end of file or the deadline; false on timeout.
bool read_until(int fd, std::string* out, std::chrono::steady_clock::time_point deadline) {
  char buf[65536];
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left.count(), 1000)));
    if (r <= 0) continue;  // timeout slice or EINTR: look at the deadline again
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return true;
    out->append(buf, static_cast<std::size_t>(n));
  }
}

// The first line of the last 4 KiB the program wrote to standard error: an
// assertion or a fatal error says there what it found.
std::string last_message(int err_fd) {
  char buf[4096];
  const off_t size = ::lseek(err_fd, 0, SEEK_END);
  const off_t from = size > static_cast<off_t>(sizeof buf) ? size - static_cast<off_t>(sizeof buf) : 0;
  const ssize_t n = size > 0 ? ::pread(err_fd, buf, sizeof buf, from) : 0;
  std::string msg = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  if (const std::size_t nl = msg.find('\n'); nl != std::string::npos) msg.resize(nl);
  return msg;
}

std::string signal_text(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  const char* descr = ::sigdescr_np(sig);
  std::string s = "signal " + std::to_string(sig);
  if (abbrev) s += std::string(" (SIG") + abbrev + (descr ? std::string(", ") + descr : std::string()) + ")";
  return s;
}

// The spawned program: reaped on every path out of the caller.
class Child {
 public:
  explicit Child(pid_t pid) : pid_(pid) {}
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (pid_ > 0) kill_and_reap();
  }
  // Waits until the program exits or the deadline passes. Returns true with
  // its wait status in *status when it was reaped; false on timeout. A
  // process whose status is lost (SIGCHLD ignored: the kernel reaps it)
  // counts as reaped with *known false.
  bool wait_until(std::chrono::steady_clock::time_point deadline, int* status, bool* known) {
    std::chrono::microseconds nap(200);
    for (;;) {
      const pid_t r = ::waitpid(pid_, status, WNOHANG);
      if (r == pid_ || (r < 0 && errno == ECHILD)) {
        *known = r == pid_;
        pid_ = -1;
        return true;
      }
      if (r < 0 && errno != EINTR) {
        *known = false;
        return false;
      }
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(nap);
      nap = std::min<std::chrono::microseconds>(nap * 2, std::chrono::milliseconds(20));
    }
  }
  void kill_and_reap() {
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }

 private:
  pid_t pid_;
};

// posix_spawn's file actions and attributes, destroyed with the object.
struct SpawnSetup {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  SpawnSetup() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;
};

}  // namespace

std::string translator_program() {
  if (const char* env = std::getenv("XESVM_SPIRV_TRANSLATOR"); env && *env) {
    if (!executable_file(env)) {
      fail_with(std::string("the SPIR-V translator program is missing: XESVM_SPIRV_TRANSLATOR names ") + env +
                ", which is not an executable file");
    }
    return env;
  }
  const std::string dir = driver_directory();
  std::vector<std::string> tried;
  if (!dir.empty()) {
    for (const std::string& d : {dir, dir + "/" + XESVM_SPIRV_TRANSLATOR_FROM_DRIVER_DIR}) {
      const std::string path = d + "/" + XESVM_SPIRV_TRANSLATOR_NAME;
      if (executable_file(path)) return path;
      tried.push_back(path);
    }
  }
  std::string list;
  for (const auto& t : tried) list += (list.empty() ? "" : ", ") + t;
  fail_with(std::string("the SPIR-V translator program " XESVM_SPIRV_TRANSLATOR_NAME " is missing: ") +
            (list.empty() ? "the driver library's own path is unknown" : "looked for " + list) +
            " (install it with the driver, or set XESVM_SPIRV_TRANSLATOR to its path)");
}

std::string translate_in_translator_process(const TranslationRequest& request) {
  const std::string program = translator_program();
  const std::chrono::milliseconds limit = timeout();
  Fd in = above_stdio(request_file(encode_request(request)), "request file");
  Fd err(::memfd_create("xesvm-spirv-translator-stderr", MFD_CLOEXEC));
  if (!err.valid()) fail_with("cannot create a memory file for the translator's messages: " + errno_text(errno));
  err = above_stdio(std::move(err), "error file");
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) fail_with("cannot create a pipe for the translator's answer: " + errno_text(errno));
  Fd answer_r(p[0]), answer_w(p[1]);
  answer_r = above_stdio(std::move(answer_r), "answer pipe");
  answer_w = above_stdio(std::move(answer_w), "answer pipe");

  SpawnSetup s;
  // The child gets the request as 0, the answer pipe as 1, the message file
  // as 2, and nothing else; default signal dispositions, no blocked
  // signals (whatever the calling thread blocks).
  posix_spawn_file_actions_adddup2(&s.actions, in.get(), 0);
  posix_spawn_file_actions_adddup2(&s.actions, answer_w.get(), 1);
  posix_spawn_file_actions_adddup2(&s.actions, err.get(), 2);
  posix_spawn_file_actions_addclosefrom_np(&s.actions, 3);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&s.attr, &none);
  posix_spawnattr_setsigdefault(&s.attr, &all);
  posix_spawnattr_setflags(&s.attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::string arg0 = program;
  char* argv[] = {arg0.data(), nullptr};
  pid_t pid = -1;
  if (const int rc = ::posix_spawn(&pid, program.c_str(), &s.actions, &s.attr, argv, environ); rc != 0)
    fail_with("cannot start the SPIR-V translator program " + program + ": " + errno_text(rc));
  Child child(pid);
  answer_w.reset();
  in.reset();

  const auto deadline = std::chrono::steady_clock::now() + limit;
  std::string bytes;
  int status = 0;
  bool known = false;
  const bool finished = read_until(answer_r.get(), &bytes, deadline) && child.wait_until(deadline, &status, &known);
  if (!finished) child.kill_and_reap();
  const std::string msg = last_message(err.get());
  const std::string said = msg.empty() ? "" : " (it said: " + msg + ")";
  const std::string who = "the translator program " + program;
  if (!finished)
    fail_with("the translator did not finish in " + seconds_text(limit) + ": " + who + " was killed" + said);
  if (known && WIFSIGNALED(status)) {
    fail_with("SPIRV-LLVM-Translator crashed on it: " + who + " was killed by " + signal_text(WTERMSIG(status)) + said);
  }
  if (known && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
    fail_with(who + " failed (exit status " + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + ")" +
              said);
  }
  TranslationAnswer answer;
  if (const std::string e = decode_answer(bytes, &answer); !e.empty()) {
    fail_with(e + " (" + program + (known ? "" : "; its exit status is unknown: SIGCHLD is ignored") + ")" + said);
  }
  if (answer.kind == TranslationAnswer::Kind::kError) fail_with(answer.payload);
  return std::move(answer.payload);
}

}  // namespace xesvm::ze
