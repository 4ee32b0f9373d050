#include "runtime/backends/sim/cost_model.hpp"

#include <cmath>
#include <string>

#include "xesvm/xesvm.hpp"

namespace xesvm::sim {

CostModel::CostModel(LinkParams params) : params_(params) {
  auto positive = [](double v) { return std::isfinite(v) && v > 0; };
  if (!positive(params_.link_gb_per_s) || !positive(params_.local_gb_per_s) ||
      !std::isfinite(params_.link_latency_ns) || params_.link_latency_ns < 0) {
    throw Error(Error::Code::kInvalidArgument,
                "CostModel: link " + std::to_string(params_.link_gb_per_s) + " GB/s, latency " +
                    std::to_string(params_.link_latency_ns) + " ns, local " + std::to_string(params_.local_gb_per_s) +
                    " GB/s is invalid; expected positive bandwidths and a non-negative latency");
  }
}

void CostModel::charge_link(std::uint64_t bytes, std::uint64_t transfers) noexcept {
  link_bytes_.fetch_add(bytes, std::memory_order_relaxed);
  link_transfers_.fetch_add(transfers, std::memory_order_relaxed);
}

void CostModel::charge_migration(Migration dir, std::uint64_t bytes, std::uint64_t transfers) noexcept {
  if (bytes == 0) return;
  charge_link(bytes, transfers);
  (dir == Migration::kToDevice ? to_device_bytes_ : to_ram_bytes_).fetch_add(bytes, std::memory_order_relaxed);
}

void CostModel::charge_access(std::uint64_t device_bytes, std::uint64_t system_bytes,
                              std::uint64_t system_transfers) noexcept {
  if (device_bytes) local_bytes_.fetch_add(device_bytes, std::memory_order_relaxed);
  if (system_bytes || system_transfers) charge_link(system_bytes, system_transfers);
}

std::uint64_t CostModel::migrated_bytes(Migration dir) const noexcept {
  return (dir == Migration::kToDevice ? to_device_bytes_ : to_ram_bytes_).load(std::memory_order_relaxed);
}

std::uint64_t CostModel::modelled_ns() const noexcept {
  const double ns = static_cast<double>(link_bytes()) / params_.link_gb_per_s +
                    static_cast<double>(link_transfers()) * params_.link_latency_ns +
                    static_cast<double>(local_bytes()) / params_.local_gb_per_s +
                    static_cast<double>(faults()) * params_.fault_latency_ns;
  return static_cast<std::uint64_t>(std::llround(ns));
}

std::uint64_t CostModel::link_bytes() const noexcept { return link_bytes_.load(std::memory_order_relaxed); }
std::uint64_t CostModel::link_transfers() const noexcept { return link_transfers_.load(std::memory_order_relaxed); }
std::uint64_t CostModel::local_bytes() const noexcept { return local_bytes_.load(std::memory_order_relaxed); }

void CostModel::reset() noexcept {
  faults_.store(0, std::memory_order_relaxed);
  link_bytes_.store(0, std::memory_order_relaxed);
  link_transfers_.store(0, std::memory_order_relaxed);
  local_bytes_.store(0, std::memory_order_relaxed);
  to_device_bytes_.store(0, std::memory_order_relaxed);
  to_ram_bytes_.store(0, std::memory_order_relaxed);
}

}  // namespace xesvm::sim
