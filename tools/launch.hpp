// `xesvm run`: starts a Level Zero application on the xesvm driver.
//
// Debian's Level Zero loader loads only Intel's own driver names
// (libze_intel_gpu.so.1, libze_intel_vpu.so.1) unless ZE_ENABLE_ALT_DRIVERS
// replaces that list. xesvm's driver is therefore installed in a private
// directory under a name of its own, where it can never shadow Intel's, and
// `xesvm run` points the loader at it for one application:
//   ZE_ENABLE_ALT_DRIVERS  the driver's absolute path (with
//                          keep_system_drivers also Intel's GPU driver name)
//   XESVM_BACKEND          the backend URI, when one was chosen
//   XESVM_ZE_KERNELS       the installed samples' kernels module, unless set
// and then replaces itself with the application (execvp), so the
// application's exit status is the command's.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace xesvm::tools {

struct LaunchOptions {
  std::string backend;  ///< empty: leave XESVM_BACKEND as the environment has it
  std::string driver;   ///< empty: the installed (or build-tree) driver
  bool keep_system_drivers = false;
  std::vector<std::string> command;  ///< the application and its arguments
};

struct LaunchPlan {
  std::string driver;
  std::vector<std::pair<std::string, std::string>> env;  ///< set before exec
  std::vector<std::string> command;
};

/// Why a launch could not be planned or started; exit_code is the
/// command's exit status (4: no driver, 126/127: cannot execute / not found).
struct LaunchError {
  int exit_code;
  std::string message;
};

/// The directory of the running executable (from /proc/self/exe).
std::string self_dir();

/// Where the Level Zero driver is: opt.driver if set (it must exist), else
/// the installed layout next to this executable, else the build tree's.
/// Throws LaunchError (4) naming every place it looked.
std::string find_ze_driver(const std::string& explicit_path);

/// Works out the environment for opt. Throws LaunchError.
LaunchPlan plan_launch(const LaunchOptions& opt);

/// Sets the plan's environment and replaces this process with its command.
/// Returns only on failure, with the exit status to use (126 or 127) and a
/// message in err.
int exec_plan(const LaunchPlan& plan, std::string& err);

}  // namespace xesvm::tools
