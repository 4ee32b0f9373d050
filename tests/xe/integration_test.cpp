// On a machine with an Xe device: the backend against the real kernel, and
// the `xesvm` tool with the xe backend URI. Elsewhere each test skips and
// says why (what discovery looked at, or that the tool is not built).
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "runtime/backends/xe/xe_backend.hpp"
#include "runtime/backends/xe/xe_discovery.hpp"

namespace {

using xesvm::Error;
namespace xe = xesvm::xe;

struct RunResult {
  int exit_code = -1;
  std::string output;
};

// Runs a command line, capturing stdout and stderr.
RunResult run(const std::string& cmd) {
  RunResult r;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

bool tool_built() {
  struct stat st {};
  return ::stat(XESVM_TOOL_PATH, &st) == 0 && (st.st_mode & S_IXUSR) != 0;
}

// Opens the real backend, or says why the test cannot run.
std::unique_ptr<xesvm::Backend> open_real(std::string* why) {
  xe::Discovery d = xe::discover_render_nodes();
  if (!d.first_xe()) {
    *why = "no Xe device on this machine: " + d.describe();
    return nullptr;
  }
  try {
    return xe::open_xe_backend("");
  } catch (const Error& e) {
    if (e.code() == Error::Code::kUnsupported) {
      *why = "the Xe device cannot do SVM here: " + std::string(e.what());
      return nullptr;
    }
    throw;
  }
}

TEST(XeIntegration, PrefetchEvictAndAdviseOnTheRealKernel) {
  std::string why;
  std::unique_ptr<xesvm::Backend> be = open_real(&why);
  if (!be) GTEST_SKIP() << why;
  xesvm::PolicyFace* pf = be->policy();
  ASSERT_NE(pf, nullptr);
  EXPECT_EQ(be->mechanism(), nullptr);

  constexpr std::size_t kLen = 8u << 20;
  void* mem = ::mmap(nullptr, kLen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  std::memset(mem, 0x5a, kLen);
  const auto addr = reinterpret_cast<std::uint64_t>(mem);
  pf->mirror(addr, kLen);
  xesvm::Advice a;
  a.preferred = xesvm::Location::kDevice;
  (void)pf->advise(addr, kLen, a);  // false on kernels without MADVISE
  pf->prefetch(addr, kLen, xesvm::Location::kDevice);
  xesvm::EvictResult r = pf->evict(addr, kLen);
  EXPECT_EQ(r.pages_skipped, 0u);
  pf->wait();
  // The CPU sees its bytes after the round trip.
  const auto* bytes = static_cast<const unsigned char*>(mem);
  for (std::size_t i = 0; i < kLen; i += 4096) ASSERT_EQ(bytes[i], 0x5a) << "offset " << i;
  pf->unmirror(addr, kLen);
  xesvm::DeviceMemoryUse use = pf->device_memory();
  EXPECT_GE(use.total, use.used);
  ::munmap(mem, kLen);
}

TEST(XeIntegration, ToolInfoWithoutXeDeviceSaysWhy) {
  if (!tool_built()) GTEST_SKIP() << "the xesvm tool is not built at " XESVM_TOOL_PATH;
  if (xe::discover_render_nodes().first_xe()) GTEST_SKIP() << "this machine has an Xe device";
  RunResult r = run(std::string(XESVM_TOOL_PATH) + " info --backend xe:");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("no Xe render node"), std::string::npos) << r.output;
}

TEST(XeIntegration, ToolInfoAndStressOnARealXeDevice) {
  std::string why;
  if (!open_real(&why)) GTEST_SKIP() << why;
  if (!tool_built()) GTEST_SKIP() << "the xesvm tool is not built at " XESVM_TOOL_PATH;
  RunResult info = run(std::string(XESVM_TOOL_PATH) + " info --backend xe:");
  ASSERT_EQ(info.exit_code, 0) << info.output;
  EXPECT_NE(info.output.find("xe"), std::string::npos) << info.output;
  // A small run (the guest suite runs the full-size one): device copies
  // and fills, every byte verified.
  RunResult stress = run(std::string(XESVM_TOOL_PATH) +
                         " stress --backend xe: --oversubscription 0.125 --passes 1 --pattern random --no-progress");
  EXPECT_EQ(stress.exit_code, 0) << stress.output;
  EXPECT_NE(stress.output.find("device copy/fill"), std::string::npos) << stress.output;
  EXPECT_NE(stress.output.find("data errors        0"), std::string::npos) << stress.output;
}

}  // namespace
