// The Xe device going away under an open runtime, and memory of a closed
// runtime handed to the next one.
//
// XeDeviceRemoval removes the device (sysfs unbind of the kernel series'
// software Xe device, kernel-patches/xe/README.md "Device removal") while a
// runtime holds data in its VRAM, and binds it again at the end (also when an
// assertion fails). Because it takes the device away from everything else
// running, it runs only when XESVM_XE_REMOVAL_TEST=1: tests/xe/guest-suite.sh
// runs it on its own, as the suite's last device step. On a real Xe GPU (a PCI
// device) it skips: unbinding the GPU the desktop may be using is not a test.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <utility>

#include "runtime/backends/xe/xe_discovery.hpp"
#include "xesvm/xesvm.hpp"

namespace {

using xesvm::Error;
using xesvm::Location;
namespace xe = xesvm::xe;

constexpr std::size_t kMiB = 1u << 20;
constexpr const char* kDriver = "/sys/bus/platform/drivers/xe_soft";
constexpr const char* kDevice = "xe_soft";

std::string no_device_reason() {
  xe::Discovery d = xe::discover_render_nodes();
  if (!d.first_xe()) return "no Xe device on this machine: " + d.describe();
  return "";
}

// Writes `value` to the sysfs file `path`; "" on success, else what failed.
std::string write_sysfs(const std::string& path, const std::string& value) {
  std::ofstream f(path);
  if (!f) return "cannot open " + path + ": " + std::strerror(errno);
  f << value;
  f.flush();
  if (!f) return "writing '" + value + "' to " + path + " failed: " + std::strerror(errno);
  return "";
}

// Binds the device again when it goes out of scope, unless that was done.
class RebindOnExit {
 public:
  RebindOnExit() = default;
  RebindOnExit(const RebindOnExit&) = delete;
  RebindOnExit& operator=(const RebindOnExit&) = delete;
  ~RebindOnExit() {
    if (armed_) (void)bind();
  }
  void arm() { armed_ = true; }
  std::string bind() {
    armed_ = false;
    return write_sysfs(std::string(kDriver) + "/bind", kDevice);
  }

 private:
  bool armed_ = false;
};

// The code and message of the Error f() throws; {kBackend, ""} if none.
std::pair<Error::Code, std::string> error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return {e.code(), e.what()};
  }
  return {Error::Code::kBackend, ""};
}

std::uint8_t byte_at(std::size_t i) { return static_cast<std::uint8_t>(i * 131 + (i >> 12)); }

TEST(XeDeviceRemoval, AnUnboundDeviceIsDeviceLostNamingEnodevAndTheBytesStay) {
  const char* opt = std::getenv("XESVM_XE_REMOVAL_TEST");
  if (!opt || std::string(opt) != "1")
    GTEST_SKIP() << "removes the Xe device (sysfs unbind): runs only with XESVM_XE_REMOVAL_TEST=1, as "
                    "tests/xe/guest-suite.sh runs it, on its own and last";
  if (std::string why = no_device_reason(); !why.empty()) GTEST_SKIP() << why;
  if (::access((std::string(kDriver) + "/unbind").c_str(), W_OK) != 0)
    GTEST_SKIP() << "no writable " << kDriver << "/unbind: only the software Xe device is removed by this test";

  RebindOnExit rebind;
  {
    xesvm::Runtime rt("xe:");
    const std::size_t size = 4 * kMiB;
    auto* p = static_cast<std::uint8_t*>(rt.alloc_shared(size));
    auto* q = static_cast<std::uint8_t*>(rt.alloc_shared(kMiB));
    for (std::size_t i = 0; i < size; i++) p[i] = byte_at(i);
    std::memset(q, 0, kMiB);
    const std::uint64_t moved = rt.prefetch(p, size, Location::kDevice);
    std::printf("# prefetched %llu bytes to the device before the unbind\n", static_cast<unsigned long long>(moved));

    ASSERT_EQ(write_sysfs(std::string(kDriver) + "/unbind", kDevice), "");
    rebind.arm();

    // The data the device held is back in system memory, every byte intact.
    for (std::size_t i = 0; i < size; i++) ASSERT_EQ(p[i], byte_at(i)) << "offset " << i << " after the unbind";

    // Every operation that reaches the device says it is gone, naming the errno.
    const std::pair<const char*, std::function<void()>> ops[] = {
        {"prefetch to the device", [&] { (void)rt.prefetch(p, size, Location::kDevice); }},
        {"prefetch to system memory", [&] { (void)rt.prefetch(p, size, Location::kSystem); }},
        {"device copy", [&] { rt.copy(q, p, kMiB).wait(); }},
        {"device fill",
         [&] {
           const std::uint32_t v = 0x5a5a5a5a;
           rt.fill(q, &v, sizeof v, kMiB).wait();
         }},
    };
    for (const auto& [name, op] : ops) {
      const auto [code, what] = error_of(op);
      ASSERT_FALSE(what.empty()) << name << " succeeded on a removed device";
      EXPECT_EQ(code, Error::Code::kDeviceLost) << name << ": " << what;
      EXPECT_NE(what.find("ENODEV"), std::string::npos) << name << ": the message names the errno: " << what;
      std::printf("# %s: %s\n", name, what.c_str());
    }
    // Nothing was written by the failed work, nothing was lost.
    for (std::size_t i = 0; i < kMiB; i++) ASSERT_EQ(q[i], 0) << "offset " << i;
    for (std::size_t i = 0; i < size; i++) ASSERT_EQ(p[i], byte_at(i)) << "offset " << i;
    // Freeing reaches the device too (unmirror's prefetch to system memory):
    // it may report the removal, naming the errno, but never crashes.
    for (void* m : {static_cast<void*>(q), static_cast<void*>(p)}) {
      const auto [code, what] = error_of([&] { rt.free(m); });
      if (what.empty()) continue;
      EXPECT_EQ(code, Error::Code::kDeviceLost) << "free: " << what;
      EXPECT_NE(what.find("ENODEV"), std::string::npos) << "free: " << what;
      std::printf("# free: %s\n", what.c_str());
    }
  }  // closing the runtime on a removed device: no crash, no hang

  // While the device is unbound, opening says what discovery found.
  {
    const auto [code, what] = error_of([] { xesvm::Runtime rt("xe:"); });
    EXPECT_FALSE(what.empty()) << "a runtime opened on an unbound device";
    EXPECT_NE(what.find("xe"), std::string::npos) << what;
    std::printf("# opening while unbound: %s\n", what.c_str());
  }

  // Bound again, the device is new and works.
  ASSERT_EQ(rebind.bind(), "");
  xesvm::Runtime rt("xe:");
  auto* p = static_cast<std::uint8_t*>(rt.alloc_shared(kMiB));
  std::memset(p, 0, kMiB);
  const std::uint8_t v = 0x3c;
  rt.fill(p, &v, 1, kMiB).wait();
  for (std::size_t i = 0; i < kMiB; i++) ASSERT_EQ(p[i], 0x3c) << "offset " << i << " on the rebound device";
  rt.free(p);
}

}  // namespace
