#include "tools/launch.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

namespace xesvm::tools {
namespace {

bool is_file(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string absolute(const std::string& p) {
  char buf[PATH_MAX];
  if (::realpath(p.c_str(), buf)) return buf;
  return p;
}

}  // namespace

std::string self_dir() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  std::string s(buf, static_cast<std::size_t>(n));
  const auto slash = s.rfind('/');
  return slash == std::string::npos ? "." : s.substr(0, slash);
}

std::string find_ze_driver(const std::string& explicit_path) {
  if (!explicit_path.empty()) {
    if (!is_file(explicit_path)) {
      throw LaunchError{4, "--driver '" + explicit_path + "' is not a file; expected the path of libze_xesvm.so"};
    }
    return absolute(explicit_path);
  }
  std::vector<std::string> tried;
#ifdef XESVM_ZE_DRIVER_FROM_BINDIR
  tried.push_back(self_dir() + "/" + XESVM_ZE_DRIVER_FROM_BINDIR);
#endif
#ifdef XESVM_ZE_DRIVER_IN_BUILD_TREE
  tried.emplace_back(XESVM_ZE_DRIVER_IN_BUILD_TREE);
#endif
  for (const auto& p : tried) {
    if (is_file(p)) return absolute(p);
  }
  std::string where;
  for (const auto& p : tried) where += (where.empty() ? "" : ", ") + p;
  throw LaunchError{
      4, "the xesvm Level Zero driver (libze_xesvm.so) was not found" +
             (where.empty() ? std::string(" (this build has none: libze-dev was missing)") : " at " + where) +
             "; install xesvm with its driver or pass --driver PATH"};
}

LaunchPlan plan_launch(const LaunchOptions& opt) {
  if (opt.command.empty()) {
    throw LaunchError{2, "no application given; expected `xesvm run [options] -- APP [ARGS...]`"};
  }
  LaunchPlan plan;
  plan.driver = find_ze_driver(opt.driver);
  if (plan.driver.find(',') != std::string::npos || plan.driver.find(' ') != std::string::npos) {
    throw LaunchError{4, "the driver path '" + plan.driver +
                             "' contains a comma or space, which ZE_ENABLE_ALT_DRIVERS cannot carry; "
                             "expected a path without them"};
  }
  plan.env.emplace_back("ZE_ENABLE_ALT_DRIVERS",
                        opt.keep_system_drivers ? plan.driver + ",libze_intel_gpu.so.1" : plan.driver);
  if (!opt.backend.empty()) {
    plan.env.emplace_back("XESVM_BACKEND", opt.backend);
  }
#ifdef XESVM_SAMPLE_KERNELS_FROM_BINDIR
  const char* k = std::getenv("XESVM_ZE_KERNELS");
  const std::string kernels = self_dir() + "/" + XESVM_SAMPLE_KERNELS_FROM_BINDIR;
  if ((!k || !*k) && is_file(kernels)) plan.env.emplace_back("XESVM_ZE_KERNELS", absolute(kernels));
#endif
  plan.command = opt.command;
  return plan;
}

int exec_plan(const LaunchPlan& plan, std::string& err) {
  for (const auto& [k, v] : plan.env) ::setenv(k.c_str(), v.c_str(), 1);
  std::vector<char*> argv;
  for (const auto& a : plan.command) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  ::execvp(argv[0], argv.data());
  const int e = errno;
  err = "cannot run '" + plan.command[0] + "': " + std::strerror(e);
  return e == ENOENT ? 127 : 126;
}

}  // namespace xesvm::tools
