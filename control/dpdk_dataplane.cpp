#include "control/dpdk_dataplane.hpp"

#include <rte_ethdev.h>
#include <rte_pdump.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>

#include "dataplane/dpdk/eal.hpp"
#include "dataplane/dpdk/flow_steer.hpp"
#include "dataplane/dpdk/port.hpp"

namespace magline::control {

struct DpdkDataplane::Devices {
  std::optional<dpdk::EalSession> eal;
  std::optional<dpdk::PktPool> pool;
  std::vector<dpdk::Port> ports;
  std::vector<std::optional<dpdk::FlowSteering>> rules;  // per port
  bool pdump = false;            // rte_pdump_init succeeded
  std::string telemetry_socket;  // this process's, to remove at the end
  std::string shared_prefix;     // capture: the file prefix of the memory shared through files

  // Everything in EAL memory goes before the EAL; the EAL leaves its (empty) runtime directory
  // behind even with --in-memory or --no-shconf, so that goes too.
  ~Devices() {
    const std::string dir = eal ? eal->runtime_dir() : "";
    if (pdump) rte_pdump_uninit();  // before the ports its callbacks are on
    rules.clear();
    ports.clear();
    pool.reset();
    eal.reset();
    std::error_code ignored;
    // The telemetry socket, when this process holds it (DPDK removes it only at exit).
    if (!telemetry_socket.empty()) std::filesystem::remove(telemetry_socket, ignored);
    if (!shared_prefix.empty()) remove_shared_files(dir, shared_prefix);
    if (!dir.empty()) std::filesystem::remove(dir, ignored);  // only if empty
  }

  // A primary that shares its memory leaves its hugepage files (holding the pages: a stopped
  // Magline would keep memory_mb of hugepages from everyone) and its runtime files behind,
  // for secondaries still attached. Unlinking them is safe for those: what is mapped stays
  // mapped until they let it go.
  static void remove_shared_files(const std::string& dir, const std::string& prefix) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!dir.empty()) {
      for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) fs::remove(e, ec);
    }
    // Hugepage files are PREFIXmap_N in each hugetlbfs mount (eal_get_hugefile_path).
    std::ifstream mounts("/proc/mounts");
    std::string device, mount_point, type, rest;
    while (mounts >> device >> mount_point >> type && std::getline(mounts, rest)) {
      if (type != "hugetlbfs") continue;
      for (const fs::directory_entry& e : fs::directory_iterator(mount_point, ec)) {
        const std::string name = e.path().filename().string();
        const std::string head = prefix + "map_";
        if (name.size() > head.size() && name.starts_with(head) &&
            name.find_first_not_of("0123456789", head.size()) == std::string::npos) {
          fs::remove(e, ec);  // only this prefix's: "amap_bmap_0" is prefix "amap_b"'s
        }
      }
    }
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
                                   "-m", std::to_string(d.memory_mb),
                                   "--file-prefix", d.file_prefix};
  if (d.capture) {
    // Secondary processes find the memory through the runtime directory's config and the
    // hugepage files: both stay while this process runs (the next start with the same prefix
    // removes files a crash left).
  } else if (d.hugepages) {
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
  // Warnings and worse; but telemetry's warning that it opened no legacy (v1) socket is noise.
  // (DPDK 22.11 lets a later glob "TYPE:LEVEL" lose to "*:LEVEL"; the regex form holds.)
  args.push_back("--log-level=warning");
  args.push_back("--log-level=lib.telemetry,error");
  if (!d.telemetry) args.push_back("--no-telemetry");
  args.insert(args.end(), d.eal_args.begin(), d.eal_args.end());
  return args;
}

// The process that answers on DPDK's telemetry socket in `runtime_dir`, from the greeting every
// client gets ({"version": ..., "pid": N, ...}); 0 when none answers. DPDK 22.11 leaves a socket
// another live process holds to it and starts without telemetry, saying nothing.
pid_t telemetry_owner(const std::string& path) {
  const int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  pid_t pid = 0;
  if (path.size() < sizeof sun.sun_path) {
    std::memcpy(sun.sun_path, path.data(), path.size());
    const timeval limit{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    char greeting[1024];
    if (connect(fd, reinterpret_cast<const sockaddr*>(&sun), sizeof sun) == 0) {
      const ssize_t n = recv(fd, greeting, sizeof greeting, 0);
      if (n > 0) {
        const auto j = nlohmann::json::parse(std::string_view(greeting, size_t(n)), nullptr, false);
        if (j.is_object() && j.contains("pid") && j["pid"].is_number_integer()) {
          pid = j["pid"].get<pid_t>();
        }
      }
    }
  }
  close(fd);
  return pid;
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
  self->dpdk_.file_prefix = d.file_prefix;
  self->dpdk_.runtime_dir = dev.eal->runtime_dir();
  if (d.telemetry) {
    self->dpdk_.telemetry_socket = dev.eal->runtime_dir() + "/dpdk_telemetry.v2";
    const pid_t owner = telemetry_owner(self->dpdk_.telemetry_socket);
    if (owner != 0 && owner != getpid()) {
      self->dpdk_.telemetry_owner = owner;
    } else {
      dev.telemetry_socket = self->dpdk_.telemetry_socket;
    }
  }
  if (d.capture) {
    if (rte_pdump_init() != 0) return Error{"cannot start packet capture: " + dpdk::last_error()};
    dev.pdump = true;
    dev.shared_prefix = d.file_prefix;
    self->dpdk_.capture = true;
  }
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
  setup.forwarder.syn_proxy_threshold = d.syn_proxy_threshold;
  setup.forwarder.kernel_rate = d.exception_rate;
  setup.forwarder.dnat_one_entry = d.dnat_replies == cfg::DnatReplies::routed;
  // The SYN cookies' key: one for every worker (a SYN and its ACK may meet different ones),
  // new with every start.
  std::random_device random;
  for (uint64_t& k : setup.forwarder.cookie_key) k = uint64_t(random()) << 32 | random();
  setup.node = &self->node_;
  setup.steering = self->steering_.get();
  for (const dpdk::Port& p : dev.ports) setup.port_ids.push_back(p.id());
  setup.lcores.assign(d.worker_cores.begin(), d.worker_cores.end());
  setup.burst = d.burst;
  setup.idle = {d.idle_sleep_max_us, d.idle_after_us};
  auto built = DpdkWorkers::create(std::move(setup), dev.pool->get());
  if (!built) return built.error();
  self->workers_ = std::move(built).value();
  return self;
}

nlohmann::ordered_json DpdkDataplane::dpdk_json() const {
  nlohmann::ordered_json j = {{"file_prefix", dpdk_.file_prefix},
                              {"runtime_dir", dpdk_.runtime_dir}};
  if (dpdk_.telemetry_socket.empty()) {
    j["telemetry"] = nullptr;
  } else if (dpdk_.telemetry_owner != 0) {
    j["telemetry"] = nullptr;
    j["telemetry_socket_held_by_pid"] = dpdk_.telemetry_owner;
  } else {
    j["telemetry"] = dpdk_.telemetry_socket;
  }
  j["capture"] = dpdk_.capture;
  return j;
}

std::optional<std::string> DpdkDataplane::warning() const {
  if (dpdk_.telemetry_socket.empty() || dpdk_.telemetry_owner == 0) return std::nullopt;
  return "DPDK telemetry is off: " + dpdk_.telemetry_socket + " belongs to process " +
         std::to_string(dpdk_.telemetry_owner) +
         " (give each Magline process its own dataplane.file_prefix)";
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
