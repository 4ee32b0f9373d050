// The kernel behaviour CpuMirror::settle_mapping_changes() relies on: an
// munmap of userfaultfd-registered memory frees its addresses before its
// UNMAP event can be read, and mapping_change_in_flight() reports the event
// from the moment the addresses are gone until it has been read.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "runtime/backends/sim/cpu_mirror.hpp"

namespace xesvm::sim {
namespace {

// A raw descriptor asking for UNMAP events and nothing reading it, so the
// test decides when the event is read.
int open_unmap_uffd() {
  int fd = static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY));
  if (fd < 0) fd = static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
  if (fd < 0) return -1;
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = UFFD_FEATURE_EVENT_UNMAP;
  if (ioctl(fd, UFFDIO_API, &api) < 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

TEST(MappingChangeProbe, ReportsAnUnmapWhoseAddressesAreFreeUntilItsEventIsRead) {
  const int fd = open_unmap_uffd();
  if (fd < 0) GTEST_SKIP() << "userfaultfd with UFFD_FEATURE_EVENT_UNMAP is unavailable: " << std::strerror(errno);
  const std::size_t len = 4 * kPageSize;
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  uffdio_register reg{};
  reg.range = {reinterpret_cast<std::uint64_t>(p), len};
  reg.mode = UFFDIO_REGISTER_MODE_MISSING;
  ASSERT_EQ(ioctl(fd, UFFDIO_REGISTER, &reg), 0) << std::strerror(errno);
  EXPECT_FALSE(mapping_change_in_flight(fd)) << "nothing changed yet";

  std::atomic<bool> returned{false};
  std::thread unmapper([&] {
    munmap(p, len);  // blocks until the UNMAP event is read
    returned.store(true);
  });
  // The change shows before the event is read, and the addresses are free:
  // a new mapping can take them while the unmapper still waits.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  bool seen = false;
  while (!(seen = mapping_change_in_flight(fd)) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  EXPECT_TRUE(seen) << "an munmap waiting for its event was not reported";
  void* again = mmap(p, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  EXPECT_EQ(again, p) << "the unmapped addresses were not free while the event was in flight";
  EXPECT_FALSE(returned.load()) << "munmap returned before its event was read";

  uffd_msg msg{};
  pollfd pf{fd, POLLIN, 0};
  const bool readable = poll(&pf, 1, 5000) == 1;
  EXPECT_TRUE(readable) << "no event to read";
  if (!readable || read(fd, &msg, sizeof msg) != static_cast<ssize_t>(sizeof msg)) {
    ::close(fd);  // releases the unmapper
    unmapper.join();
    FAIL() << "could not read the UNMAP event";
  }
  EXPECT_EQ(msg.event, UFFD_EVENT_UNMAP);
  EXPECT_EQ(msg.arg.remove.start, reinterpret_cast<std::uint64_t>(p));
  EXPECT_EQ(msg.arg.remove.end, reinterpret_cast<std::uint64_t>(p) + len);
  unmapper.join();
  EXPECT_FALSE(mapping_change_in_flight(fd)) << "the event was read";
  if (again != MAP_FAILED) munmap(again, len);
  ::close(fd);
}

TEST(MappingChangeProbe, RegistrationProbeTellsRegisteredFromPlainAndUnmappedMemory) {
  const int fd = open_unmap_uffd();
  if (fd < 0) GTEST_SKIP() << "userfaultfd with UFFD_FEATURE_EVENT_UNMAP is unavailable: " << std::strerror(errno);
  const std::size_t len = 8 * kPageSize;
  auto* p = static_cast<std::uint8_t*>(mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(p, MAP_FAILED);
  p[0] = 7;  // one present page, the rest never touched
  const auto a = reinterpret_cast<std::uint64_t>(p);
  uffdio_register reg{};
  reg.range = {a, len / 2};
  reg.mode = UFFDIO_REGISTER_MODE_MISSING;
  ASSERT_EQ(ioctl(fd, UFFDIO_REGISTER, &reg), 0) << std::strerror(errno);
  EXPECT_EQ(registration(fd, a, len / 2), Registration::kRegistered);
  EXPECT_EQ(registration(fd, a + kPageSize, kPageSize), Registration::kRegistered);
  EXPECT_EQ(registration(fd, a + len / 2, len / 2), Registration::kUnregistered) << "mapped, not registered";
  EXPECT_EQ(registration(fd, a, len), Registration::kUnregistered) << "only half of it is registered";
  // The probe changed nothing: the present page kept its byte, the others
  // are still missing (a read would fault to the registrant).
  EXPECT_EQ(p[0], 7);
  unsigned char vec[4] = {};
  ASSERT_EQ(mincore(p, len / 2, vec), 0);
  EXPECT_EQ(vec[1] & 1, 0) << "the probe populated a missing page";
  uffdio_range r{a, len / 2};
  ASSERT_EQ(ioctl(fd, UFFDIO_UNREGISTER, &r), 0);
  munmap(p, len);
  EXPECT_EQ(registration(fd, a, len / 2), Registration::kUnregistered) << "unmapped";
  ::close(fd);
}

}  // namespace
}  // namespace xesvm::sim
