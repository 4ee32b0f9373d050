// Encoding of the copy engine's batch buffers (no device): the dwords of
// MEM_COPY, MEM_SET, MI_STORE_DATA_IMM and MI_BATCH_BUFFER_END as the Xe2
// encodings of REFERENCE.md Part E.2 give them. Their behaviour is proven on
// the device (device_test.cpp, in the guest).
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "runtime/backends/xe/xe_copy_engine.hpp"

namespace {

using xesvm::xe::BatchBuilder;

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
