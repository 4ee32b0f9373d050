// Encoding of the copy engine's batch buffers (no device): the dwords of
// MEM_COPY, MEM_SET, MI_STORE_DATA_IMM, MI_FLUSH_DW and MI_BATCH_BUFFER_END
// as the Xe2 encodings of REFERENCE.md Part E.2 and the Xe driver give
// them; and spans the engine refuses before any ioctl. Their behaviour is proven on
// the device (device_test.cpp, in the guest).
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/backends/xe/xe_copy_engine.hpp"
#include "runtime/backends/xe/xe_uapi.hpp"
#include "xesvm/xesvm.hpp"

namespace {

using xesvm::xe::BatchBuilder;
namespace uapi = xesvm::xe::uapi;

// Answers EXEC_QUEUE_CREATE (queue 7) and records every request.
class QueueOnly final : public xesvm::xe::XeIoctl {
 public:
  int ioctl(unsigned long request, void* arg) override {
    requests.push_back(request);
    if (request == uapi::kIoctlExecQueueCreate) {
      static_cast<uapi::drm_xe_exec_queue_create*>(arg)->exec_queue_id = 7;
      return 0;
    }
    return 95;  // EOPNOTSUPP: nothing else is expected
  }
  std::vector<unsigned long> requests;
};

// Spans past the VM's mirrored VA span (1 << va_bits) are refused before
// anything is submitted, naming the span and the limit.
TEST(XeCopyEngine, SpansPastTheMirroredVaSpanAreRefusedBeforeAnyIoctl) {
  QueueOnly io;
  xesvm::xe::XeCopyEngine::Options o;
  o.vm_id = 1;
  o.engines = {{uapi::kEngineClassCopy, 0, 0}};
  o.va_end = 1ull << 39;
  xesvm::xe::XeCopyEngine engine(io, o);
  ASSERT_EQ(io.requests.size(), 1u);  // the queue
  auto code_of = [](auto&& f) {
    try {
      f();
    } catch (const xesvm::Error& e) {
      EXPECT_NE(std::string(e.what()).find("leaves the mirrored GPU VA span"), std::string::npos) << e.what();
      return e.code();
    }
    return xesvm::Error::Code::kBackend;
  };
  const std::uint64_t end = o.va_end;
  EXPECT_EQ(code_of([&] { engine.copy(end - 4096, 0x10000, 8192); }), xesvm::Error::Code::kInvalidArgument);
  EXPECT_EQ(code_of([&] { engine.copy(0x10000, end, 4096); }), xesvm::Error::Code::kInvalidArgument);
  EXPECT_EQ(code_of([&] { engine.fill(end - 8, 0x01020304, 4, 16); }), xesvm::Error::Code::kInvalidArgument);
  EXPECT_EQ(io.requests.size(), 1u) << "a refused span reached the device";
}

// The largest span of one batch (Options::max_batch_bytes) must be a whole
// number of pages no larger than what a slot holds; the engine refuses any
// other before it creates its queue.
TEST(XeCopyEngine, ABatchLimitThatIsNotAWholeNumberOfPagesUpTo256MiBIsRefused) {
  for (std::uint64_t bad : {std::uint64_t{0}, std::uint64_t{4097}, xesvm::xe::XeCopyEngine::kMaxBytes + 4096}) {
    QueueOnly io;
    xesvm::xe::XeCopyEngine::Options o;
    o.vm_id = 1;
    o.engines = {{uapi::kEngineClassCopy, 0, 0}};
    o.max_batch_bytes = bad;
    try {
      xesvm::xe::XeCopyEngine engine(io, o);
      ADD_FAILURE() << "a batch limit of " << bad << " bytes was accepted";
    } catch (const xesvm::Error& e) {
      EXPECT_EQ(e.code(), xesvm::Error::Code::kInvalidArgument) << e.what();
      EXPECT_NE(std::string(e.what()).find("multiple of 4096"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(io.requests.empty()) << "a refused engine created a queue";
  }
  QueueOnly io;
  xesvm::xe::XeCopyEngine::Options o;
  o.vm_id = 1;
  o.engines = {{uapi::kEngineClassCopy, 0, 0}};
  o.max_batch_bytes = 4096;
  xesvm::xe::XeCopyEngine engine(io, o);  // the smallest limit is fine
  EXPECT_EQ(io.requests.size(), 1u);
}

TEST(XeBatch, MemCopyIsOneCommandPer256KiBThenTheRemainder) {
  BatchBuilder b;
  const std::uint64_t src = 0x7f0012340000, dst = 0x7f00abcd1000;
  b.mem_copy(dst, src, 2 * (1u << 18) + 100);
  b.end();
  // width-1, height-1 (always 0), src pitch-1, dst pitch-1, src lo/hi, dst lo/hi, MOCS.
  const std::vector<std::uint32_t> want = {
      0x56800008, 0x3ffff, 0, 0x3ffff, 0x3ffff, 0x12340000, 0x7f00, 0xabcd1000, 0x7f00, 0,  // row 0
      0x56800008, 0x3ffff, 0, 0x3ffff, 0x3ffff, 0x12380000, 0x7f00, 0xabd11000, 0x7f00, 0,  // row 1
      0x56800008, 99,      0, 99,      99,      0x123c0000, 0x7f00, 0xabd51000, 0x7f00, 0,  // the rest
      0x05000000};
  EXPECT_EQ(b.dwords(), want);
}

TEST(XeBatch, MemSetCarriesTheFillByteInBits31To24) {
  BatchBuilder b;
  b.mem_set(0x1000, 0xab, 4096);
  const std::vector<std::uint32_t> want = {0x56C00005, 4095, 0, 4095, 0x1000, 0, 0xab000000};
  EXPECT_EQ(b.dwords(), want);
}

TEST(XeBatch, StoreDataImmIsFourDwordsToAPpgttAddress) {
  BatchBuilder b;
  b.store_dword(0x123456789abc, 0xc0ffee);
  const std::vector<std::uint32_t> want = {0x10000002, 0x56789abc, 0x1234, 0xc0ffee};
  EXPECT_EQ(b.dwords(), want);
}

TEST(XeBatch, FlushDwIsFourDwordsWithoutAPostSyncOperation) {
  BatchBuilder b;
  b.mem_set(0x1000, 0x11, 64);
  b.flush_dw();
  b.end();
  const std::vector<std::uint32_t> want = {0x56C00005, 63, 0, 63, 0x1000, 0, 0x11000000,  // MEM_SET
                                           0x13000002, 0,  0, 0,                          // MI_FLUSH_DW
                                           0x05000000};
  EXPECT_EQ(b.dwords(), want);
}

}  // namespace
