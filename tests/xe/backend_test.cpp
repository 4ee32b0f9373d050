// XeBackend over the recording ioctl layer: the exact requests each
// operation sends, the refusals at open, the errno -> Error path, user-fence
// completion and the MADVISE / QUERY_MEM_RANGE_ATTRS protocols.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "fake_xe.hpp"
#include "runtime/backends/xe/xe_backend.hpp"

namespace {

using xesvm::Advice;
using xesvm::Error;
using xesvm::Location;
using xesvm::xe::XeBackend;
using xesvm::xe::XeOptions;
using xesvm::xe::testing::FakeXe;
using xesvm::xe::testing::FakeXeState;
using xesvm::xe::testing::FenceMode;
using xesvm::xe::testing::RecordedCall;
namespace u = xesvm::xe::uapi;

constexpr std::uint64_t kVa48 = 1ull << 48;

std::unique_ptr<XeBackend> open(const std::shared_ptr<FakeXeState>& s, XeOptions opts = {}) {
  opts.node_path = "/dev/dri/renderD128";
  return std::make_unique<XeBackend>(std::make_unique<FakeXe>(s), opts);
}

template <class T>
std::vector<std::byte> bytes_of(const T& v) {
  std::vector<std::byte> b(sizeof v);
  std::memcpy(b.data(), &v, sizeof v);
  return b;
}

// The exact VM_BIND a single-op request must be: everything not named is zero.
u::drm_xe_vm_bind expected_bind(const RecordedCall& sent, std::uint32_t vm_id, std::uint32_t op, std::uint32_t flags,
                                std::uint64_t addr, std::uint64_t range, std::uint32_t region, std::uint16_t pat) {
  u::drm_xe_vm_bind b;
  std::memset(&b, 0, sizeof b);
  b.vm_id = vm_id;
  b.num_binds = 1;
  b.bind.pat_index = pat;
  b.bind.range = range;
  b.bind.addr = addr;
  b.bind.op = op;
  b.bind.flags = flags;
  b.bind.prefetch_mem_region_instance = region;
  b.num_syncs = 1;
  b.syncs = sent.as<u::drm_xe_vm_bind>().syncs;  // a host pointer: checked separately
  return b;
}

void expect_user_fence_sync(const RecordedCall& sent, const XeBackend& be, std::uint64_t value) {
  ASSERT_EQ(sent.syncs.size(), sizeof(u::drm_xe_sync));
  u::drm_xe_sync want;
  std::memset(&want, 0, sizeof want);
  want.type = u::kSyncTypeUserFence;
  want.flags = u::kSyncFlagSignal;
  want.addr = be.fence_address();
  want.timeline_value = value;
  EXPECT_EQ(sent.syncs, bytes_of(want));
  EXPECT_EQ(be.fence_address() % 8, 0u);
}

// --- open ---------------------------------------------------------------------------

TEST(XeOpen, SendsQueriesVmCreateMirrorBindAndProbeInOrder) {
  auto s = std::make_shared<FakeXeState>();
  auto be = open(s);
  std::vector<unsigned long> order;
  for (const RecordedCall& c : s->calls) order.push_back(c.request);
  const std::vector<unsigned long> want = {
      u::kIoctlDeviceQuery,
      u::kIoctlDeviceQuery,  // CONFIG: size, data
      u::kIoctlDeviceQuery,
      u::kIoctlDeviceQuery,  // MEM_REGIONS: size, data
      u::kIoctlVmCreate,
      u::kIoctlVmBind,                // fence written at bind: no wait needed
      u::kIoctlVmQueryMemRangeAttrs,  // MADVISE probe
  };
  EXPECT_EQ(order, want);

  auto q0 = s->calls[0].as<u::drm_xe_device_query>();
  EXPECT_EQ(q0.query, u::kDeviceQueryConfig);
  EXPECT_EQ(q0.size, 0u);
  EXPECT_EQ(q0.data, 0u);
  auto q1 = s->calls[1].as<u::drm_xe_device_query>();
  EXPECT_EQ(q1.query, u::kDeviceQueryConfig);
  EXPECT_EQ(q1.size, 8u + 5 * 8u);
  EXPECT_NE(q1.data, 0u);
  EXPECT_EQ(q1.reserved[0] | q1.reserved[1] | q1.extensions, 0u);
  EXPECT_EQ(s->calls[2].as<u::drm_xe_device_query>().query, u::kDeviceQueryMemRegions);

  EXPECT_EQ(be->config().va_bits, 48u);
  EXPECT_EQ(be->config().device_id, 0xe20bu);
  EXPECT_EQ(be->config().revision, 1u);
  EXPECT_EQ(be->vm_id(), 7u);
  EXPECT_EQ(be->mirror_end(), kVa48);
  EXPECT_TRUE(be->has_vram());
  EXPECT_EQ(be->vram_instance(), 2);
  EXPECT_TRUE(be->has_madvise());
  ASSERT_EQ(be->regions().size(), 2u);
  EXPECT_EQ(be->regions()[1].total_size, 12ull << 30);
  EXPECT_EQ(be->mechanism(), nullptr);
  EXPECT_EQ(be->engine(), nullptr);
  EXPECT_EQ(be->policy(), be.get());
}

TEST(XeOpen, VmCreateIsLongRunningFaultModeWithEverythingElseZero) {
  auto s = std::make_shared<FakeXeState>();
  auto be = open(s);
  auto calls = s->calls_of(u::kIoctlVmCreate);
  ASSERT_EQ(calls.size(), 1u);
  u::drm_xe_vm_create want;
  std::memset(&want, 0, sizeof want);
  want.flags = u::kVmCreateFlagLrMode | u::kVmCreateFlagFaultMode;
  EXPECT_EQ(calls[0].arg, bytes_of(want));
  EXPECT_EQ(want.flags, 6u);
}

TEST(XeOpen, MirrorBindCoversTheWholeVaSpanWithCpuAddrMirror) {
  auto s = std::make_shared<FakeXeState>();
  auto be = open(s);
  auto binds = s->calls_of(u::kIoctlVmBind);
  ASSERT_EQ(binds.size(), 1u);
  const RecordedCall& c = binds[0];
  EXPECT_EQ(c.arg, bytes_of(expected_bind(c, 7, u::kVmBindOpMap, u::kVmBindFlagCpuAddrMirror, 0, kVa48, 0, 2)));
  auto b = c.as<u::drm_xe_vm_bind>();
  EXPECT_EQ(b.bind.obj, 0u);
  EXPECT_EQ(b.bind.cpu_addr_mirror_offset, 0);
  EXPECT_EQ(b.bind.flags, 0x20u);
  EXPECT_EQ(b.exec_queue_id, 0u);
  expect_user_fence_sync(c, *be, 1);
  EXPECT_EQ(be->last_fence_value(), 1u);
}

TEST(XeOpen, MirrorBindWaitsForItsUserFence) {
  auto s = std::make_shared<FakeXeState>();
  s->fence_mode = FenceMode::kOnWait;
  auto be = open(s);
  auto waits = s->calls_of(u::kIoctlWaitUserFence);
  ASSERT_EQ(waits.size(), 1u);
  u::drm_xe_wait_user_fence want;
  std::memset(&want, 0, sizeof want);
  want.addr = be->fence_address();
  want.op = u::kUfenceWaitOpGte;
  want.value = 1;
  want.mask = ~0ull;
  want.timeout = XeOptions{}.fence_timeout_ns;
  EXPECT_EQ(waits[0].arg, bytes_of(want));
}

TEST(XeOpen, PatIndexFollowsTheDevice) {
  auto s = std::make_shared<FakeXeState>();
  s->device_id = 0x0bd5;  // Ponte Vecchio
  auto be = open(s);
  EXPECT_EQ(be->pat_index(), xesvm::xe::kPatIndexWbPvc);
  EXPECT_EQ(s->calls_of(u::kIoctlVmBind)[0].as<u::drm_xe_vm_bind>().bind.pat_index, 3u);

  auto s2 = std::make_shared<FakeXeState>();
  XeOptions opts;
  opts.pat_index = 5;
  auto be2 = open(s2, opts);
  EXPECT_EQ(s2->calls_of(u::kIoctlVmBind)[0].as<u::drm_xe_vm_bind>().bind.pat_index, 5u);
  EXPECT_EQ(xesvm::xe::wb_pat_index_for_device(0xe20b), 2u);
  EXPECT_EQ(xesvm::xe::wb_pat_index_for_device(0x64a0), 2u);
}

TEST(XeOpen, RefusedWithoutCpuAddressMirroring) {
  auto s = std::make_shared<FakeXeState>();
  s->config_flags = u::kQueryConfigFlagHasVram;
  try {
    open(s);
    FAIL() << "opened without HAS_CPU_ADDR_MIRROR";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Error::Code::kUnsupported);
    const std::string m = e.what();
    EXPECT_NE(m.find("CPU address mirroring"), std::string::npos) << m;
    EXPECT_NE(m.find("HAS_CPU_ADDR_MIRROR"), std::string::npos) << m;
    EXPECT_NE(m.find("/dev/dri/renderD128"), std::string::npos) << m;
  }
  EXPECT_EQ(s->count(u::kIoctlVmCreate), 0u);
}

TEST(XeOpen, RefusedWithoutFaultMode) {
  auto s = std::make_shared<FakeXeState>();
  s->fault_mode = false;
  try {
    open(s);
    FAIL() << "opened without fault mode";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Error::Code::kUnsupported);
    const std::string m = e.what();
    EXPECT_NE(m.find("fault mode"), std::string::npos) << m;
    EXPECT_NE(m.find("DRM_IOCTL_XE_VM_CREATE"), std::string::npos) << m;
    EXPECT_NE(m.find("EINVAL"), std::string::npos) << m;
  }
  EXPECT_EQ(s->count(u::kIoctlVmBind), 0u);
  EXPECT_EQ(s->count(u::kIoctlVmDestroy), 0u);
}

TEST(XeOpen, RefusedWithImplausibleVaBits) {
  auto s = std::make_shared<FakeXeState>();
  s->va_bits = 0;
  EXPECT_THROW(open(s), Error);
  EXPECT_EQ(s->count(u::kIoctlVmCreate), 0u);
}

TEST(XeOpen, FailedMirrorBindNamesTheIoctlAndDestroysTheVm) {
  auto s = std::make_shared<FakeXeState>();
  s->fail(u::kIoctlVmBind, EINVAL);
  try {
    open(s);
    FAIL() << "opened although the mirror bind failed";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("bind the CPU address mirror"), std::string::npos) << m;
    EXPECT_NE(m.find("DRM_IOCTL_XE_VM_BIND failed: EINVAL"), std::string::npos) << m;
  }
  auto destroys = s->calls_of(u::kIoctlVmDestroy);
  ASSERT_EQ(destroys.size(), 1u);
  u::drm_xe_vm_destroy want;
  std::memset(&want, 0, sizeof want);
  want.vm_id = 7;
  EXPECT_EQ(destroys[0].arg, bytes_of(want));
}

TEST(XeOpen, FailedQueryNamesOperationIoctlAndErrno) {
  auto s = std::make_shared<FakeXeState>();
  s->fail(u::kIoctlDeviceQuery, EFAULT);
  try {
    open(s);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Error::Code::kInvalidArgument);
    EXPECT_EQ(std::string(e.what()),
              "xe: open: query the device config (size): DRM_IOCTL_XE_DEVICE_QUERY failed: EFAULT (Bad address)");
  }
}

TEST(XeOpen, DestructionDestroysTheVm) {
  auto s = std::make_shared<FakeXeState>();
  open(s).reset();
  EXPECT_EQ(s->count(u::kIoctlVmDestroy), 1u);
}

TEST(XeOpen, InfoDescribesTheDevice) {
  auto s = std::make_shared<FakeXeState>();
  auto be = open(s);
  xesvm::BackendInfo bi = be->info();
  EXPECT_EQ(bi.name, "xe");
  EXPECT_NE(bi.description.find("renderD128"), std::string::npos);
  auto get = [&](const std::string& k) {
    for (auto& [key, v] : bi.properties) {
      if (key == k) return v;
    }
    return std::string("<missing>");
  };
  EXPECT_EQ(get("va_bits"), "48");
  EXPECT_EQ(get("vm_flags"), "LR_MODE | FAULT_MODE");
  EXPECT_EQ(get("memory_regions"), "sysmem0 32 GiB, vram2 12 GiB");
  EXPECT_EQ(get("madvise"), "yes");
  EXPECT_EQ(get("mirror"), "[0x0, 0x1000000000000)");
}

// --- prefetch / evict -------------------------------------------------------------------

class XePolicy : public ::testing::Test {
 protected:
  void SetUp() override { reopen(); }
  void reopen() {
    be_.reset();
    be_ = open(s_);
    s_->clear_calls();
  }
  std::shared_ptr<FakeXeState> s_ = std::make_shared<FakeXeState>();
  std::unique_ptr<XeBackend> be_;
};

TEST_F(XePolicy, PrefetchToDeviceTargetsTheFirstVramInstance) {
  EXPECT_EQ(be_->prefetch(0x200000, 0x40000, Location::kDevice), 0x40000u);
  auto binds = s_->calls_of(u::kIoctlVmBind);
  ASSERT_EQ(binds.size(), 1u);
  EXPECT_EQ(binds[0].arg, bytes_of(expected_bind(binds[0], 7, u::kVmBindOpPrefetch, 0, 0x200000, 0x40000, 2, 2)));
  expect_user_fence_sync(binds[0], *be_, 2);
  xesvm::Stats st;
  be_->add_stats(st);
  EXPECT_EQ(st.migrations_to_device, 1u);
  EXPECT_EQ(st.bytes_to_device, 0x40000u);
}

TEST_F(XePolicy, PrefetchToSystemIsRegionZero) {
  EXPECT_EQ(be_->prefetch(0x1000, 0x2000, Location::kSystem), 0x2000u);
  auto binds = s_->calls_of(u::kIoctlVmBind);
  ASSERT_EQ(binds.size(), 1u);
  EXPECT_EQ(binds[0].arg, bytes_of(expected_bind(binds[0], 7, u::kVmBindOpPrefetch, 0, 0x1000, 0x2000, 0, 2)));
}

TEST_F(XePolicy, PrefetchToAdvisedLocationConsultsMadvise) {
  be_->prefetch(0x1000, 0x1000, Location::kNone);
  auto binds = s_->calls_of(u::kIoctlVmBind);
  ASSERT_EQ(binds.size(), 1u);
  EXPECT_EQ(binds[0].as<u::drm_xe_vm_bind>().bind.prefetch_mem_region_instance, 0xffffffffu);
  EXPECT_EQ(binds[0].arg, bytes_of(expected_bind(binds[0], 7, u::kVmBindOpPrefetch, 0, 0x1000, 0x1000,
                                                 u::kConsultMemAdvisePrefLoc, 2)));
}

TEST_F(XePolicy, PrefetchWaitsForItsFence) {
  s_->fence_mode = FenceMode::kOnWait;
  be_->prefetch(0x1000, 0x1000, Location::kDevice);
  auto waits = s_->calls_of(u::kIoctlWaitUserFence);
  ASSERT_EQ(waits.size(), 1u);
  auto w = waits[0].as<u::drm_xe_wait_user_fence>();
  EXPECT_EQ(w.addr, be_->fence_address());
  EXPECT_EQ(w.value, 2u);
  EXPECT_EQ(w.op, u::kUfenceWaitOpGte);
  EXPECT_EQ(w.mask, ~0ull);
  EXPECT_EQ(w.exec_queue_id, 0u);
}

TEST_F(XePolicy, FenceTimeoutIsABusyErrorNamingTheWait) {
  s_->fence_mode = FenceMode::kNever;
  try {
    be_->prefetch(0x1000, 0x1000, Location::kDevice);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Error::Code::kBusy);
    const std::string m = e.what();
    EXPECT_NE(m.find("DRM_IOCTL_XE_WAIT_USER_FENCE failed: ETIME"), std::string::npos) << m;
    EXPECT_NE(m.find("prefetch [0x1000, 0x2000)"), std::string::npos) << m;
  }
  s_->fence_mode = FenceMode::kOnWait;  // let the destructor's wait complete
}

TEST_F(XePolicy, FailedPrefetchNamesOperationIoctlAndErrno) {
  s_->fail(u::kIoctlVmBind, ENOMEM);
  try {
    be_->prefetch(0x10000, 0x10000, Location::kDevice);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Error::Code::kOutOfMemory);
    EXPECT_EQ(std::string(e.what()),
              "xe: prefetch [0x10000, 0x20000) to VRAM instance 2: DRM_IOCTL_XE_VM_BIND failed: ENOMEM (Cannot "
              "allocate memory)");
  }
  // A failed submission consumes no fence value.
  be_->prefetch(0x10000, 0x10000, Location::kDevice);
  EXPECT_EQ(s_->calls_of(u::kIoctlVmBind).back().sync().timeline_value, 2u);
}

TEST_F(XePolicy, BadRangesAreRejectedBeforeAnyIoctl) {
  EXPECT_THROW(be_->prefetch(0x1001, 0x1000, Location::kDevice), Error);
  EXPECT_THROW(be_->prefetch(0x1000, 0x1001, Location::kDevice), Error);
  EXPECT_THROW(be_->prefetch(0x1000, 0, Location::kDevice), Error);
  EXPECT_THROW(be_->prefetch(kVa48 - 0x1000, 0x2000, Location::kDevice), Error);
  EXPECT_THROW(be_->evict(0x1000, 0x800), Error);
  EXPECT_THROW(be_->advise(0x800, 0x1000, Advice{}), Error);
  try {
    be_->prefetch(0x1001, 0x1000, Location::kSystem);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Error::Code::kInvalidArgument);
  }
  EXPECT_TRUE(s_->calls.empty());
}

TEST_F(XePolicy, EvictIsPrefetchToSystemMemory) {
  xesvm::EvictResult r = be_->evict(0x400000, 0x200000);
  EXPECT_EQ(r.pages_evicted, 0x200000u / 4096);
  EXPECT_EQ(r.pages_skipped, 0u);
  EXPECT_EQ(r.retries, 0u);
  auto binds = s_->calls_of(u::kIoctlVmBind);
  ASSERT_EQ(binds.size(), 1u);
  EXPECT_EQ(binds[0].arg, bytes_of(expected_bind(binds[0], 7, u::kVmBindOpPrefetch, 0, 0x400000, 0x200000, 0, 2)));
  xesvm::Stats st;
  be_->add_stats(st);
  EXPECT_EQ(st.evictions, 1u);
  EXPECT_EQ(st.pages_evicted, 512u);
  EXPECT_EQ(st.bytes_to_system, 0x200000u);
}

TEST_F(XePolicy, EvictRetriesBusyThenReportsSkipped) {
  s_->fail(u::kIoctlVmBind, EBUSY);
  xesvm::EvictResult r = be_->evict(0x1000, 0x3000);
  EXPECT_EQ(r.pages_evicted, 3u);
  EXPECT_EQ(r.retries, 1u);
  for (int i = 0; i < 4; ++i) s_->fail(u::kIoctlVmBind, EBUSY);
  r = be_->evict(0x1000, 0x3000);
  EXPECT_EQ(r.pages_evicted, 0u);
  EXPECT_EQ(r.pages_skipped, 3u);
  EXPECT_EQ(r.retries, 3u);
  s_->fail(u::kIoctlVmBind, EIO);
  EXPECT_THROW(be_->evict(0x1000, 0x3000), Error);
}

TEST_F(XePolicy, ConcurrentBindsGetIncreasingFenceValuesInSubmissionOrder) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([this, t] {
      for (int i = 0; i < 50; ++i)
        be_->prefetch(0x100000 * (t + 1), 0x1000, i % 2 ? Location::kDevice : Location::kSystem);
    });
  }
  for (auto& th : threads) th.join();
  auto binds = s_->calls_of(u::kIoctlVmBind);
  ASSERT_EQ(binds.size(), 200u);
  for (std::size_t i = 0; i < binds.size(); ++i) EXPECT_EQ(binds[i].sync().timeline_value, i + 2);
  EXPECT_EQ(be_->last_fence_value(), 201u);
}

// --- integrated (no VRAM) device ------------------------------------------------------

TEST(XeIntegrated, PrefetchMapsInPlaceEvictHasNothingToDoResidencyIsExact) {
  auto s = std::make_shared<FakeXeState>();
  s->make_integrated();
  auto be = open(s);
  s->clear_calls();
  EXPECT_FALSE(be->has_vram());
  EXPECT_EQ(be->prefetch(0x1000, 0x1000, Location::kDevice), 0u);
  auto binds = s->calls_of(u::kIoctlVmBind);
  ASSERT_EQ(binds.size(), 1u);
  EXPECT_EQ(binds[0].as<u::drm_xe_vm_bind>().bind.prefetch_mem_region_instance, 0u);
  s->clear_calls();
  xesvm::EvictResult r = be->evict(0x1000, 0x1000);
  EXPECT_EQ(r.pages_evicted, 0u);
  EXPECT_TRUE(s->calls.empty());
  xesvm::Residency res = be->residency(0x1000, 0x5000);
  EXPECT_EQ(res.device_bytes, 0u);
  EXPECT_EQ(res.system_bytes, 0x5000u);
  xesvm::DeviceMemoryUse use = be->device_memory();
  EXPECT_EQ(use.total, 0u);
}

TEST(XeResidency, UnknownWithVramIsReportedAsNeither) {
  auto s = std::make_shared<FakeXeState>();
  auto be = open(s);
  xesvm::Residency res = be->residency(0x1000, 0x5000);
  EXPECT_EQ(res.device_bytes + res.system_bytes, 0u);
}

// --- advise -----------------------------------------------------------------------------

u::drm_xe_madvise expected_madvise(std::uint64_t start, std::uint64_t len, std::uint32_t type, std::uint32_t value) {
  u::drm_xe_madvise m;
  std::memset(&m, 0, sizeof m);
  m.start = start;
  m.range = len;
  m.vm_id = 7;
  m.type = type;
  if (type == u::kMemRangeAttrPreferredLoc) {
    m.preferred_mem_loc.devmem_fd = value;
    m.preferred_mem_loc.migration_policy = u::kMigrateAllPages;
  } else {
    m.atomic.val = value;
  }
  return m;
}

TEST_F(XePolicy, AdvisePreferredDeviceAndAtomics) {
  Advice a;
  a.preferred = Location::kDevice;
  a.atomic = true;
  EXPECT_TRUE(be_->advise(0x10000, 0x20000, a));
  auto m = s_->calls_of(u::kIoctlMadvise);
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].arg,
            bytes_of(expected_madvise(0x10000, 0x20000, u::kMemRangeAttrPreferredLoc, u::kPreferredLocDefaultDevice)));
  EXPECT_EQ(m[1].arg, bytes_of(expected_madvise(0x10000, 0x20000, u::kMemRangeAttrAtomic, u::kAtomicDevice)));
}

TEST_F(XePolicy, AdvisePreferredSystem) {
  Advice a;
  a.preferred = Location::kSystem;
  EXPECT_TRUE(be_->advise(0x1000, 0x1000, a));
  auto m = s_->calls_of(u::kIoctlMadvise);
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].arg,
            bytes_of(expected_madvise(0x1000, 0x1000, u::kMemRangeAttrPreferredLoc, u::kPreferredLocDefaultSystem)));
  EXPECT_EQ(m[0].as<u::drm_xe_madvise>().preferred_mem_loc.devmem_fd, 0xffffffffu);
  EXPECT_EQ(m[1].arg, bytes_of(expected_madvise(0x1000, 0x1000, u::kMemRangeAttrAtomic, u::kAtomicUndefined)));

  s_->clear_calls();
  a.atomic = true;
  EXPECT_TRUE(be_->advise(0x1000, 0x1000, a));
  EXPECT_EQ(s_->calls_of(u::kIoctlMadvise)[1].as<u::drm_xe_madvise>().atomic.val, u::kAtomicGlobal);
}

TEST_F(XePolicy, AdviseReadMostlyIsNotAppliedAndSaysSo) {
  Advice a;
  a.read_mostly = true;
  EXPECT_FALSE(be_->advise(0x1000, 0x1000, a));
  EXPECT_EQ(s_->count(u::kIoctlMadvise), 0u);
}

TEST_F(XePolicy, AdviseFailureNamesTheIoctl) {
  s_->fail(u::kIoctlMadvise, EINVAL);
  try {
    be_->advise(0x1000, 0x1000, Advice{});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("DRM_IOCTL_XE_MADVISE failed: EINVAL"), std::string::npos) << e.what();
  }
}

TEST_F(XePolicy, AdviseOnEnottyReportsNotApplied) {
  s_->fail(u::kIoctlMadvise, ENOTTY);
  EXPECT_FALSE(be_->advise(0x1000, 0x1000, Advice{}));
  EXPECT_FALSE(be_->has_madvise());
}

TEST(XeNoMadvise, AdviceIsReportedAsNotAppliedAndConsultIsRefused) {
  auto s = std::make_shared<FakeXeState>();
  s->madvise = false;
  auto be = open(s);
  EXPECT_FALSE(be->has_madvise());
  s->clear_calls();
  Advice a;
  a.preferred = Location::kDevice;
  EXPECT_FALSE(be->advise(0x1000, 0x1000, a));
  EXPECT_EQ(s->count(u::kIoctlMadvise), 0u);
  try {
    be->prefetch(0x1000, 0x1000, Location::kNone);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Error::Code::kUnsupported);
  }
  EXPECT_THROW(be->range_attributes(0x1000, 0x1000), Error);
  EXPECT_EQ(s->count(u::kIoctlVmBind), 0u);
  bool found = false;
  for (auto& [k, v] : be->info().properties) {
    if (k == "madvise") {
      found = true;
      EXPECT_NE(v.find("EINVAL"), std::string::npos) << v;
    }
  }
  EXPECT_TRUE(found);
}

// --- QUERY_MEM_RANGE_ATTRS ---------------------------------------------------------------

TEST_F(XePolicy, RangeAttributesTwoCallProtocolRestartsOnEnospc) {
  u::drm_xe_mem_range_attr a;
  std::memset(&a, 0, sizeof a);
  a.start = 0x1000;
  a.end = 0x3000;
  a.preferred_mem_loc.devmem_fd = u::kPreferredLocDefaultSystem;
  a.atomic.val = u::kAtomicGlobal;
  a.pat_index.val = 2;
  u::drm_xe_mem_range_attr b = a;
  b.start = 0x3000;
  b.end = 0x5000;
  b.preferred_mem_loc.devmem_fd = u::kPreferredLocDefaultDevice;
  b.atomic.val = u::kAtomicDevice;
  s_->range_attrs = {a, b};
  s_->range_attr_enospc = 1;

  auto attrs = be_->range_attributes(0x1000, 0x4000);
  ASSERT_EQ(attrs.size(), 2u);
  EXPECT_EQ(attrs[0].start, 0x1000u);
  EXPECT_EQ(attrs[0].end, 0x3000u);
  EXPECT_EQ(attrs[0].preferred_devmem_fd, u::kPreferredLocDefaultSystem);
  EXPECT_EQ(attrs[0].atomic, u::kAtomicGlobal);
  EXPECT_EQ(attrs[0].pat_index, 2u);
  EXPECT_EQ(attrs[1].atomic, u::kAtomicDevice);

  auto calls = s_->calls_of(u::kIoctlVmQueryMemRangeAttrs);
  ASSERT_EQ(calls.size(), 4u);  // count, fill (ENOSPC), count, fill
  auto count = calls[0].as<u::drm_xe_vm_query_mem_range_attr>();
  u::drm_xe_vm_query_mem_range_attr want;
  std::memset(&want, 0, sizeof want);
  want.vm_id = 7;
  want.start = 0x1000;
  want.range = 0x4000;
  EXPECT_EQ(calls[0].arg, bytes_of(want));
  EXPECT_EQ(count.num_mem_ranges, 0u);
  auto fill = calls[3].as<u::drm_xe_vm_query_mem_range_attr>();
  EXPECT_EQ(fill.num_mem_ranges, 2u);
  EXPECT_EQ(fill.sizeof_mem_range_attr, 64u);
  EXPECT_NE(fill.vector_of_mem_attr, 0u);
}

TEST_F(XePolicy, RangeAttributesGiveUpAfterBoundedRestarts) {
  s_->range_attr_enospc = 1000;
  try {
    be_->range_attributes(0x1000, 0x1000);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Error::Code::kBusy);
  }
}

// --- device memory, wait ------------------------------------------------------------------

TEST_F(XePolicy, DeviceMemoryIsTheVramRegions) {
  xesvm::DeviceMemoryUse use = be_->device_memory();
  EXPECT_EQ(use.total, 12ull << 30);
  EXPECT_EQ(use.used, 1ull << 30);
  EXPECT_EQ(use.high_water, 1ull << 30);
  s_->regions[1].used = 512ull << 20;
  use = be_->device_memory();
  EXPECT_EQ(use.used, 512ull << 20);
  EXPECT_EQ(use.high_water, 1ull << 30);
  xesvm::Stats st;
  be_->add_stats(st);
  EXPECT_EQ(st.device_bytes_total, 12ull << 30);
  EXPECT_EQ(st.device_bytes_high_water, 1ull << 30);
  auto q = s_->calls_of(u::kIoctlDeviceQuery);
  ASSERT_EQ(q.size(), 4u);
  EXPECT_EQ(q[0].as<u::drm_xe_device_query>().query, u::kDeviceQueryMemRegions);
}

TEST_F(XePolicy, WaitWithNothingPendingIssuesNoIoctl) {
  be_->wait();
  EXPECT_TRUE(s_->calls.empty());
}

TEST_F(XePolicy, WaitWaitsForTheLastBindThroughTheUserFence) {
  s_->fence_mode = FenceMode::kOnWait;
  be_->prefetch(0x1000, 0x1000, Location::kDevice);
  s_->clear_calls();
  be_->wait();  // the fence already holds the last value: no ioctl
  EXPECT_TRUE(s_->calls.empty());

  // The fence behind the last value (the kernel has not written it yet):
  // wait() must ask the kernel, which writes it during the wait.
  reinterpret_cast<std::atomic<std::uint64_t>*>(be_->fence_address())->store(1);
  be_->wait();
  auto waits = s_->calls_of(u::kIoctlWaitUserFence);
  ASSERT_EQ(waits.size(), 1u);
  EXPECT_EQ(waits[0].as<u::drm_xe_wait_user_fence>().value, be_->last_fence_value());
  EXPECT_EQ(waits[0].as<u::drm_xe_wait_user_fence>().addr, be_->fence_address());
}

// --- mirror / unmirror ----------------------------------------------------------------------

class XeMirror : public XePolicy {
 protected:
  void SetUp() override {
    XePolicy::SetUp();
    mem_ = ::mmap(nullptr, kLen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(mem_, MAP_FAILED);
    addr_ = reinterpret_cast<std::uint64_t>(mem_);
  }
  void TearDown() override {
    if (mem_ == MAP_FAILED) return;
    if (hole_ == 0) {
      ::munmap(mem_, kLen);
      return;
    }
    // The hole may belong to someone else by now (a sanitizer runtime reuses
    // freed address space): unmap only the pages around it.
    ::munmap(mem_, hole_ - addr_);
    ::munmap(reinterpret_cast<void*>(hole_ + 4096), addr_ + kLen - hole_ - 4096);
  }
  static constexpr std::size_t kLen = 16 * 4096;
  void* mem_ = MAP_FAILED;
  std::uint64_t hole_ = 0;
  std::uint64_t addr_ = 0;
};

TEST_F(XeMirror, MirrorValidatesAndIssuesNoIoctl) {
  be_->mirror(addr_, kLen / 2);
  EXPECT_TRUE(s_->calls.empty());
  EXPECT_THROW(be_->mirror(addr_ + 4096, 4096), Error);  // overlaps
  be_->mirror(addr_ + kLen / 2, kLen / 2);               // adjacent is fine
  EXPECT_THROW(be_->mirror(addr_ + 1, 4096), Error);
}

TEST_F(XeMirror, MirrorOfUnmappedMemoryIsRejected) {
  ASSERT_EQ(::munmap(static_cast<char*>(mem_) + 4 * 4096, 4096), 0);
  hole_ = addr_ + 4 * 4096;
  try {
    be_->mirror(addr_, kLen);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Error::Code::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("no mapping"), std::string::npos) << e.what();
  }
}

TEST_F(XeMirror, UnmirrorBringsDataBackAndSplitsTheRecord) {
  be_->mirror(addr_, kLen);
  be_->unmirror(addr_ + 4096, 4096);
  auto binds = s_->calls_of(u::kIoctlVmBind);
  ASSERT_EQ(binds.size(), 1u);
  EXPECT_EQ(binds[0].arg, bytes_of(expected_bind(binds[0], 7, u::kVmBindOpPrefetch, 0, addr_ + 4096, 4096, 0, 2)));
  EXPECT_THROW(be_->unmirror(addr_ + 4096, 4096), Error);  // no longer mirrored
  be_->unmirror(addr_, 4096);
  be_->unmirror(addr_ + 2 * 4096, kLen - 2 * 4096);
  EXPECT_THROW(be_->unmirror(addr_, kLen), Error);
  be_->mirror(addr_, kLen);  // all records gone: may mirror again
}

}  // namespace
