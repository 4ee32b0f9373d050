#include "runtime/backends/sim/cost_model.hpp"

#include <gtest/gtest.h>

#include "xesvm/xesvm.hpp"

namespace xesvm::sim {
namespace {

TEST(CostModel, DefaultsArePcieGen4x8) {
  CostModel m;
  EXPECT_DOUBLE_EQ(m.params().link_gb_per_s, 13.0);
  EXPECT_DOUBLE_EQ(m.params().link_latency_ns, 1500.0);
  EXPECT_DOUBLE_EQ(m.params().local_gb_per_s, 400.0);
  EXPECT_EQ(m.modelled_ns(), 0u);
}

TEST(CostModel, ThirteenGigabytesOverThe13GBpsLinkTakeOneSecond) {
  CostModel m(LinkParams{13.0, 0.0, 400.0});
  m.charge_access(0, 13'000'000'000ull, 0);
  EXPECT_EQ(m.modelled_ns(), 1'000'000'000ull);
  EXPECT_EQ(m.link_bytes(), 13'000'000'000ull);
}

TEST(CostModel, ManySmallChargesDoNotDrift) {
  CostModel m(LinkParams{13.0, 0.0, 400.0});
  for (int i = 0; i < 1'000'000; ++i) m.charge_access(0, 13'000, 0);  // 1 us each
  EXPECT_EQ(m.modelled_ns(), 1'000'000'000ull);
}

TEST(CostModel, EachTransferAddsTheLatency) {
  CostModel m;
  m.charge_access(0, 0, 4);
  EXPECT_EQ(m.modelled_ns(), 6000u);
  m.charge_access(0, 13, 1);  // 1 ns of bandwidth + 1500 ns
  EXPECT_EQ(m.modelled_ns(), 7501u);
  EXPECT_EQ(m.link_transfers(), 5u);
}

TEST(CostModel, LocalTrafficUsesTheLocalBandwidthAndSums) {
  CostModel m;
  m.charge_access(400'000, 0, 0);  // 1 us at 400 GB/s
  EXPECT_EQ(m.modelled_ns(), 1000u);
  m.charge_migration(Migration::kToDevice, 13'000, 1);  // 1 us + 1.5 us
  EXPECT_EQ(m.modelled_ns(), 3500u);
  EXPECT_EQ(m.local_bytes(), 400'000u);
  m.reset();
  EXPECT_EQ(m.modelled_ns(), 0u);
  EXPECT_EQ(m.link_bytes(), 0u);
  EXPECT_EQ(m.local_bytes(), 0u);
}

// A known sequence of charges, worked out by hand from the model's formula:
//   link:  2 MiB to the device in 1 transfer, 8 KiB home in 2 transfers,
//          4 KiB of GPU access to system memory in 1 transfer:
//          2,109,440 B / 13 B/ns = 162,264.6 ns, 4 transfers x 1500 ns = 6000 ns;
//   local: 1 MiB / 400 B/ns = 2621.44 ns;
//   faults: 3 x 20,000 ns = 60,000 ns;
//   total 230,886.05 ns -> 230,886.
TEST(CostModel, ModelledTimeOfAKnownSequenceIsTheModelsArithmetic) {
  CostModel m;
  m.charge_migration(Migration::kToDevice, 2u << 20, 1);
  m.charge_migration(Migration::kToRam, 8192, 2);
  m.charge_migration(Migration::kToRam, 0, 1);  // a move that moved nothing charges nothing
  m.charge_access(1u << 20, 4096, 1);
  m.charge_faults(3);
  EXPECT_EQ(m.link_bytes(), (2u << 20) + 8192 + 4096);
  EXPECT_EQ(m.link_transfers(), 4u);
  EXPECT_EQ(m.local_bytes(), 1u << 20);
  EXPECT_EQ(m.migrated_bytes(Migration::kToDevice), 2u << 20);
  EXPECT_EQ(m.migrated_bytes(Migration::kToRam), 8192u);
  EXPECT_EQ(m.modelled_ns(), 230886u);
}

TEST(CostModel, RejectsNonPositiveBandwidth) {
  EXPECT_THROW(CostModel(LinkParams{0.0, 1.0, 1.0}), Error);
  EXPECT_THROW(CostModel(LinkParams{1.0, -1.0, 1.0}), Error);
  EXPECT_THROW(CostModel(LinkParams{1.0, 1.0, -3.0}), Error);
}

}  // namespace
}  // namespace xesvm::sim
