#include "runtime/backends/sim/sim_device.hpp"

#include <algorithm>
#include <charconv>
#include <sstream>
#include <thread>

namespace xesvm::sim {
namespace {

[[noreturn]] void bad_option(std::string_view what, std::string_view expected) {
  throw Error(Error::Code::kInvalidArgument,
              "sim backend: " + std::string(what) + "; expected " + std::string(expected));
}

std::uint64_t parse_size(std::string_view key, std::string_view v) {
  std::uint64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || p == v.data()) {
    bad_option("bad value '" + std::string(v) + "' for " + std::string(key), "a size like 256M");
  }
  std::string_view suffix(p, static_cast<std::size_t>(v.data() + v.size() - p));
  std::uint64_t mul = 1;
  if (suffix == "K" || suffix == "k") {
    mul = 1ull << 10;
  } else if (suffix == "M" || suffix == "m") {
    mul = 1ull << 20;
  } else if (suffix == "G" || suffix == "g") {
    mul = 1ull << 30;
  } else if (!suffix.empty()) {
    bad_option("bad size suffix '" + std::string(suffix) + "' for " + std::string(key), "K, M or G");
  }
  if (n > (1ull << 40) / mul) {
    bad_option(std::string(key) + " is too large", "at most 1T");
  }
  return n * mul;
}

double parse_double(std::string_view key, std::string_view v) {
  double d = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), d);
  if (ec != std::errc() || p != v.data() + v.size() || !(d > 0)) {
    bad_option("bad value '" + std::string(v) + "' for " + std::string(key), "a positive number");
  }
  return d;
}

}  // namespace

SimConfig parse_sim_options(std::string_view options) {
  SimConfig c;
  std::vector<std::string_view> seen;
  while (!options.empty()) {
    std::size_t comma = options.find(',');
    std::string_view kv = options.substr(0, comma);
    options = comma == std::string_view::npos ? std::string_view{} : options.substr(comma + 1);
    if (kv.empty()) {
      continue;
    }
    std::size_t eq = kv.find('=');
    if (eq == std::string_view::npos) {
      bad_option("option '" + std::string(kv) + "' has no value", "key=value");
    }
    std::string_view k = kv.substr(0, eq), v = kv.substr(eq + 1);
    if (std::find(seen.begin(), seen.end(), k) != seen.end()) {
      bad_option("option '" + std::string(k) + "' is given twice", "each option at most once");
    }
    seen.push_back(k);
    if (k == "vram") {
      std::uint64_t b = parse_size(k, v);
      if (b == 0 || b % (2u << 20)) {
        bad_option("vram=" + std::string(v) + " is not a non-zero multiple of 2M", "e.g. vram=256M");
      }
      c.vram_bytes = b;
    } else if (k == "workers") {
      std::uint64_t w = parse_size(k, v);
      if (w == 0 || w > 256) {
        bad_option("workers=" + std::string(v) + " is out of range", "1..256");
      }
      c.workers = static_cast<unsigned>(w);
    } else if (k == "link_gbps") {
      c.link.link_gb_per_s = parse_double(k, v);
    } else if (k == "link_latency_ns") {
      c.link.link_latency_ns = parse_double(k, v);
    } else if (k == "fault_latency_ns") {
      c.link.fault_latency_ns = parse_double(k, v);
    } else if (k == "local_gbps") {
      c.link.local_gb_per_s = parse_double(k, v);
    } else if (k == "kernel_faults") {
      if (v != "0" && v != "1") {
        bad_option("kernel_faults=" + std::string(v), "0 or 1");
      }
      c.kernel_faults = v == "1";
    } else {
      bad_option("unknown option '" + std::string(k) + "'",
                 "vram, workers, link_gbps, link_latency_ns, local_gbps, fault_latency_ns or kernel_faults");
    }
  }
  return c;
}

SimDevice::SimDevice(const SimConfig& config) : config_(config) {
  if (config_.workers == 0) {
    config_.workers = std::max(1u, std::thread::hardware_concurrency());
  }
  frames_ = std::make_unique<FramePool>(config_.vram_bytes);
  gpu_ = std::make_unique<GpuPageTable>();
  cost_ = std::make_unique<CostModel>(config_.link);
  cpu_ = std::make_unique<CpuMirror>(*frames_, *gpu_, *cost_, config_.kernel_faults);
  engine_ = std::make_unique<SimEngine>(*gpu_, *frames_, *cost_, config_.workers);
}

SimDevice::~SimDevice() {
  engine_.reset();  // no kernel runs from here on
  cpu_.reset();     // stops the fault and event threads
}

BackendInfo SimDevice::info() const {
  BackendInfo i;
  i.name = "sim";
  i.description = "user-space SVM device on userfaultfd";
  auto mib = [](std::uint64_t b) { return std::to_string(b >> 20) + " MiB"; };
  i.properties = {
      {"device memory", mib(config_.vram_bytes)},
      {"chunk sizes", "2M 64K 4K"},
      {"engine workers", std::to_string(config_.workers)},
      {"link", std::to_string(config_.link.link_gb_per_s) + " GB/s, " + std::to_string(config_.link.link_latency_ns) +
                   " ns latency"},
      {"local bandwidth", std::to_string(config_.link.local_gb_per_s) + " GB/s"},
      {"fault latency", std::to_string(config_.link.fault_latency_ns) + " ns"},
      {"userfaultfd", cpu_->features().describe()},
      {"migration", cpu_->migration_path()},
  };
  return i;
}

void SimDevice::add_stats(Stats& s) const {
  s.modelled_device_ns += cost_->modelled_ns();
  s.link_bytes += cost_->link_bytes();
  auto c = cpu_->stats();
  s.cpu_faults += c.cpu_faults_device;
  // A CPU fault on a device page is a migration to system memory of that
  // page, as an eviction is: both count.
  s.migrations_to_system += c.cpu_faults_device;
  s.bytes_to_system += c.pages_to_ram * kPageSize;
}

std::optional<std::vector<FrameId>> SimDevice::alloc_frames(std::size_t bytes, std::size_t chunk, OwnerId owner) {
  return frames_->alloc(bytes, chunk, owner);
}
void SimDevice::free_frames(std::span<const FrameId> frames) { frames_->free(frames); }
OwnerId SimDevice::frame_owner(FrameId frame) const { return frames_->owner(frame); }
std::vector<FrameId> SimDevice::frames_of(OwnerId owner) const { return frames_->frames_of(owner); }
DeviceMemoryUse SimDevice::device_memory() const { return frames_->use(); }
void SimDevice::mirror(std::uint64_t start, std::size_t len, MirrorClient& client) { cpu_->mirror(start, len, client); }
void SimDevice::unmirror(std::uint64_t start, std::size_t len) { cpu_->unmirror(start, len); }
void SimDevice::snapshot(std::uint64_t start, std::span<PageSnapshot> out) { cpu_->snapshot(start, out); }
void SimDevice::snapshot_device(std::uint64_t start, std::span<PageSnapshot> out) { cpu_->snapshot_device(start, out); }
std::vector<CpuProtection> SimDevice::cpu_protection(std::uint64_t start, std::uint64_t end) const {
  return read_cpu_protection(start, end);
}
std::size_t SimDevice::migrate_to_device(std::span<const std::uint64_t> addrs, std::span<FrameId> frames) {
  return cpu_->migrate_to_device(addrs, frames);
}
bool SimDevice::frame_trylock(FrameId frame) { return frames_->trylock(frame); }
void SimDevice::frame_unlock(FrameId frame) { frames_->unlock(frame); }
std::uint64_t SimDevice::frame_address(FrameId frame) const { return cpu_->frame_address(frame); }
void SimDevice::unmap(std::span<const FrameId> frames) { cpu_->unmap(frames); }
CopyStatus SimDevice::place(std::uint64_t addr, const std::byte* src, std::size_t len) {
  const CopyStatus st = cpu_->place(addr, src, len);
  cost_->charge_migration(Migration::kToRam, st.bytes, 1);
  return st;
}
void SimDevice::finalize(std::span<const FrameId> frames, std::span<const std::uint8_t> committed) {
  cpu_->finalize(frames, committed);
}
std::span<const std::byte> SimDevice::frame_bytes(FrameId frame) const { return {frames_->data(frame), kPageSize}; }
bool SimDevice::bind(std::uint64_t start, std::span<const PageSnapshot> pages) {
  if (!cpu_->features().kernel_faults) {
    std::vector<std::uint64_t> absent;
    for (std::size_t i = 0; i < pages.size(); ++i) {
      if (pages[i].place == PagePlace::kAbsent) {
        absent.push_back(start + i * kPageSize);
      }
    }
    if (!absent.empty()) {
      cpu_->populate_absent(absent);
    }
  }
  // The event reader zaps a mapping change's span before the runtime hears
  // of it (cpu_mirror.hpp): a bind after that zap, from a snapshot taken
  // before it, is refused under the table's lock, which the zap takes too.
  return gpu_->bind_unless(
      start, pages, [](const void* self) { return static_cast<const SimDevice*>(self)->cpu_events_pending(); }, this);
}
void SimDevice::unbind(std::uint64_t start, std::uint64_t end) { gpu_->unbind(start, end); }

std::string SimDevice::check_books() const {
  std::ostringstream bad;
  bad << cpu_->entries().check();
  for (FrameId f = 0; f < frames_->frame_count(); ++f) {
    const std::optional<std::uint64_t> at = gpu_->address_of(f);
    if (!at) {
      continue;
    }
    const std::optional<DeviceEntries::Entry> e = cpu_->entries().lookup(*at);
    bad << std::hex;
    if (frames_->owner(f) == kNoOwner) {
      bad << "GPU PTE at 0x" << *at << " maps frame " << std::dec << f << ", which is free\n";
    } else if (!e || e->frame != f) {
      bad << "GPU PTE at 0x" << *at << " maps frame " << std::dec << f << ", but the entry there "
          << (e ? "names frame " + std::to_string(e->frame) : std::string("does not exist")) << "\n";
    } else if (e->state == DeviceEntries::State::kEvicting) {
      bad << "GPU PTE at 0x" << *at << " maps frame " << std::dec << f << ", which is being evicted\n";
    }
    bad << std::dec;
  }
  return bad.str();
}

}  // namespace xesvm::sim
