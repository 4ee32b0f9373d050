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
  m.charge_link(13'000'000'000ull, 0);
  EXPECT_EQ(m.modelled_ns(), 1'000'000'000ull);
  EXPECT_EQ(m.link_bytes(), 13'000'000'000ull);
}

TEST(CostModel, ManySmallChargesDoNotDrift) {
  CostModel m(LinkParams{13.0, 0.0, 400.0});
  for (int i = 0; i < 1'000'000; ++i) m.charge_link(13'000, 0);  // 1 us each
  EXPECT_EQ(m.modelled_ns(), 1'000'000'000ull);
}

TEST(CostModel, EachTransferAddsTheLatency) {
  CostModel m;
  m.charge_link(0, 4);
  EXPECT_EQ(m.modelled_ns(), 6000u);
  m.charge_link(13, 1);  // 1 ns of bandwidth + 1500 ns
  EXPECT_EQ(m.modelled_ns(), 7501u);
  EXPECT_EQ(m.link_transfers(), 5u);
}

TEST(CostModel, LocalTrafficUsesTheLocalBandwidthAndSums) {
  CostModel m;
  m.charge_local(400'000);  // 1 us at 400 GB/s
  EXPECT_EQ(m.modelled_ns(), 1000u);
  m.charge_link(13'000, 1);  // 1 us + 1.5 us
  EXPECT_EQ(m.modelled_ns(), 3500u);
  EXPECT_EQ(m.local_bytes(), 400'000u);
  m.reset();
  EXPECT_EQ(m.modelled_ns(), 0u);
  EXPECT_EQ(m.link_bytes(), 0u);
  EXPECT_EQ(m.local_bytes(), 0u);
}

TEST(CostModel, RejectsNonPositiveBandwidth) {
  EXPECT_THROW(CostModel(LinkParams{0.0, 1.0, 1.0}), Error);
  EXPECT_THROW(CostModel(LinkParams{1.0, -1.0, 1.0}), Error);
  EXPECT_THROW(CostModel(LinkParams{1.0, 1.0, -3.0}), Error);
}

}  // namespace
}  // namespace xesvm::sim
