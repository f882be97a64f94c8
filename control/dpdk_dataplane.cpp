#include "control/dpdk_dataplane.hpp"

#include <rte_ethdev.h>

#include <algorithm>
#include <filesystem>
#include <optional>

#include "dataplane/dpdk/eal.hpp"
#include "dataplane/dpdk/flow_steer.hpp"
#include "dataplane/dpdk/port.hpp"

namespace magline::control {

struct DpdkDataplane::Devices {
  std::optional<dpdk::EalSession> eal;
  std::optional<dpdk::PktPool> pool;
  std::vector<dpdk::Port> ports;
  std::vector<std::optional<dpdk::FlowSteering>> rules;  // per port

  // Everything in EAL memory goes before the EAL; the EAL leaves its (empty) runtime directory
  // behind even with --in-memory or --no-shconf, so that goes too.
  ~Devices() {
    const std::string dir = eal ? eal->runtime_dir() : "";
    rules.clear();
    ports.clear();
    pool.reset();
    eal.reset();
    std::error_code ignored;
    if (!dir.empty()) std::filesystem::remove(dir, ignored);  // only if empty
  }
};

namespace {

bool is_pci(const std::string& device) {
  return device.find(':') != std::string::npos && device.rfind("net_", 0) != 0;
}

std::vector<std::string> eal_args(const cfg::DataplaneConfig& d) {
  std::string cores = std::to_string(d.main_core);
  for (uint32_t c : d.worker_cores) {
    cores += ',';  // appended apart: g++ 12 at -O3 warns (-Wrestrict) on "," + to_string(c)
    cores += std::to_string(c);
  }
  std::vector<std::string> args = {"-l", cores, "--main-lcore", std::to_string(d.main_core),
                                   "-m", std::to_string(d.memory_mb)};
  if (d.hugepages) {
    args.push_back("--in-memory");  // no files left behind in /dev/hugepages or /var/run
  } else {
    args.insert(args.end(), {"--no-huge", "--no-shconf"});
  }
  bool any_pci = false;
  for (const cfg::PortConfig& p : d.ports) {
    if (is_pci(p.device)) {
      any_pci = true;
      args.insert(args.end(), {"-a", p.device});
    }
  }
  if (!any_pci) args.push_back("--no-pci");
  args.push_back("--log-level=*:warning");
  args.push_back("--no-telemetry");
  args.insert(args.end(), d.eal_args.begin(), d.eal_args.end());
  return args;
}

uint32_t pool_size(const cfg::DataplaneConfig& d) {
  if (d.mbufs != 0) return d.mbufs;
  const uint64_t workers = d.worker_cores.size();
  const uint64_t per_port =
      d.rx_descriptors * workers + d.tx_descriptors * (workers + 1) + 2 * dp::kMaxBurst * workers;
  uint64_t n = per_port * d.ports.size() + 8192;  // slow-path queues, rings in flight
  uint64_t pow2 = 1;
  while (pow2 < n + 1) pow2 <<= 1;
  return uint32_t(pow2 - 1);  // mempools are most efficient at 2^k - 1
}

}  // namespace

DpdkDataplane::DpdkDataplane() : devices_(std::make_unique<Devices>()) {}

DpdkDataplane::~DpdkDataplane() {
  workers_.reset();  // stopped, their held frames freed, before the ports and the pool go
  if (!devices_) return;
  for (dpdk::Port& p : devices_->ports) p.stop();
}

Result<std::unique_ptr<DpdkDataplane>> DpdkDataplane::start(const cfg::Config& config) {
  const cfg::DataplaneConfig& d = config.dataplane;
  std::unique_ptr<DpdkDataplane> self(new DpdkDataplane);
  Devices& dev = *self->devices_;
  auto eal = dpdk::EalSession::create(eal_args(d));
  if (!eal) return Error{"cannot start DPDK: " + eal.error().message};
  dev.eal.emplace(std::move(eal).value());
  auto pool = dpdk::PktPool::create("magline_pkts", pool_size(d));
  if (!pool) return pool.error();
  dev.pool.emplace(std::move(pool).value());

  const uint16_t workers = uint16_t(d.worker_cores.size());
  self->node_ = cfg::node_of(config);
  std::vector<dp::PortSteering> steering;
  for (size_t i = 0; i < d.ports.size(); ++i) {
    const cfg::PortConfig& pc = d.ports[i];
    dpdk::PortConfig c;
    c.device = pc.device.substr(0, pc.device.find(','));
    c.devargs = pc.device;
    c.rx_queues = workers;
    c.tx_queues = workers;  // the control thread transmits through worker 0 (DpdkWorkers)
    c.rx_descriptors = d.rx_descriptors;
    c.tx_descriptors = d.tx_descriptors;
    c.mtu = pc.mtu;
    c.promiscuous = pc.promiscuous;
    c.rss = workers > 1 ? dpdk::RssMode::automatic : dpdk::RssMode::off;
    c.rss_sctp = true;
    auto port = dpdk::Port::open(c, dev.pool->get());
    if (!port) return Error{"port " + pc.name + ": " + port.error().message};
    if (pc.mac) {
      rte_ether_addr mac;
      std::copy(pc.mac->b.begin(), pc.mac->b.end(), mac.addr_bytes);
      if (const int rc = rte_eth_dev_default_mac_addr_set(port->id(), &mac); rc != 0) {
        return Error{"port " + pc.name + ": cannot set MAC address: " + dpdk::error_text(rc)};
      }
    }
    if (auto started = port->start(); !started) {
      return Error{"port " + pc.name + ": " + started.error().message};
    }
    self->node_.ports[i].mac = port->mac();
    dev.ports.push_back(std::move(port).value());
    dev.rules.emplace_back();
    if (workers == 1) {
      const auto in_effect = dpdk::steering_in_effect(dev.ports.back(), nullptr);
      self->reports_.push_back({pc.name, dpdk::to_string(in_effect.kind), in_effect.detail});
      continue;
    }
    // Several workers: DNAT and ICMP errors need to know where RSS delivers a tuple, so the
    // port's RSS must be known; full-NAT's replies go by rte_flow rules where the device takes
    // them (every SNAT address of the port, TCP and UDP), by predicted RSS everywhere else.
    auto rss = dev.ports.back().steering();
    if (!rss) {
      return Error{"port " + pc.name + ": " + std::to_string(workers) +
                   " workers need to know where the NIC delivers replies, but " +
                   rss.error().message + "; use one worker on this device"};
    }
    dp::PortSteering ps{std::move(rss).value(), {}, workers};
    dpdk::SnatSteerConfig sc;
    for (const dp::IfAddr& a : self->node_.ports[i].addrs) sc.addresses.push_back(a.addr);
    sc.workers = workers;
    if (!sc.addresses.empty()) {
      auto rules = dpdk::FlowSteering::install(dev.ports.back(), sc);
      if (rules && rules->active()) ps.partitioned = sc.addresses;
      if (rules) dev.rules.back().emplace(std::move(rules).value());
    }
    const dpdk::FlowSteering* installed = dev.rules.back() ? &*dev.rules.back() : nullptr;
    const auto in_effect = dpdk::steering_in_effect(dev.ports.back(), installed);
    std::string detail = in_effect.detail;
    if (in_effect.kind == dpdk::SteeringKind::rss_predicted && installed != nullptr) {
      detail += "; rte_flow refused: " + installed->reason();
    }
    self->reports_.push_back({pc.name, dpdk::to_string(in_effect.kind), detail});
    steering.push_back(std::move(ps));
  }
  if (workers == 1) {
    self->steering_ = std::make_unique<dp::SingleWorker>();
  } else {
    self->steering_ = std::make_unique<dp::RssWorkers>(std::move(steering));
  }

  WorkerSetup setup;
  setup.forwarder.flow_capacity = config.flow_capacity;
  setup.forwarder.timeouts = config.timeouts;
  setup.forwarder.snat_port_lo = d.snat_port_low;
  setup.forwarder.snat_port_hi = d.snat_port_high;
  setup.node = &self->node_;
  setup.steering = self->steering_.get();
  for (const dpdk::Port& p : dev.ports) setup.port_ids.push_back(p.id());
  setup.lcores.assign(d.worker_cores.begin(), d.worker_cores.end());
  setup.burst = d.burst;
  auto built = DpdkWorkers::create(std::move(setup), dev.pool->get());
  if (!built) return built.error();
  self->workers_ = std::move(built).value();
  return self;
}

nlohmann::ordered_json DpdkDataplane::ports_json() const {
  nlohmann::ordered_json j = nlohmann::ordered_json::array();
  for (const PortReport& p : reports_) {
    j.push_back({{"name", p.name}, {"steering", p.steering}, {"steering_detail", p.detail}});
  }
  return j;
}

std::vector<PortCounters> DpdkDataplane::port_counters() const {
  std::vector<PortCounters> out;
  for (size_t i = 0; i < devices_->ports.size(); ++i) {
    const dpdk::Port& port = devices_->ports[i];
    PortCounters c;
    c.name = reports_[i].name;
    if (auto s = port.stats()) {
      c.read = true;
      c.rx_packets = s->rx_packets;
      c.tx_packets = s->tx_packets;
      c.rx_bytes = s->rx_bytes;
      c.tx_bytes = s->tx_bytes;
      c.rx_missed = s->rx_missed;
      c.rx_errors = s->rx_errors;
      c.tx_errors = s->tx_errors;
      c.rx_no_mbuf = s->rx_no_mbuf;
    }
    const dpdk::LinkStatus link = port.link();
    c.link_up = link.up;
    if (link.up && link.speed_mbps != RTE_ETH_SPEED_NUM_UNKNOWN) {
      c.speed_bytes_per_second = uint64_t(link.speed_mbps) * 1000000 / 8;
    }
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace magline::control
