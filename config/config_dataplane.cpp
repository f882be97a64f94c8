// Reads the `dataplane` section: cores, memory, ports, routes, source ports, encapsulation
// (docs/config.md). Part of config.cpp's reading, in a file of its own.
#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "config/json_reader.hpp"
#include "config/readers.hpp"
#include "dataplane/forwarder.hpp"

namespace magline::cfg {
namespace {

constexpr Choice<DnatReplies> kDnatReplies[] = {
    {"routed", DnatReplies::routed},
    {"last_hop", DnatReplies::last_hop},
};

using namespace detail;

constexpr uint64_t kMaxCore = 1023;                 // RTE_MAX_LCORE in Debian's build is 128
constexpr uint64_t kMinMemoryMb = 64;
constexpr uint64_t kMaxMemoryMb = uint64_t(1) << 20;
constexpr uint64_t kMinDescriptors = 64;
constexpr uint64_t kMaxDescriptors = 32768;
constexpr uint64_t kMaxMbufs = uint64_t(1) << 26;
constexpr uint64_t kMaxIdleSleepUs = 10000;   // a frame may wait this long: 10 ms at most
constexpr uint64_t kMaxIdleAfterUs = 10000000;
constexpr uint64_t kMaxSynProxyThreshold = 100000000;
constexpr uint64_t kMaxExceptionRate = 10000000;  // frames a second per worker
constexpr uint64_t kMinMtu = 576;   // what IPv4 hosts must accept (RFC 791)
constexpr uint64_t kMaxMtu = 9216;
// The smallest path MTU for encapsulation: an IPv6 packet of 1280 bytes (what every IPv6 link
// carries, RFC 8200 5) in GUE over IPv6 (48 bytes more).
constexpr uint64_t kMinEncapMtu = 1328;

// DPDK's virtual network drivers (drivers/net, the vdev bus) and their aliases: a virtual
// device's name is one of these followed by the instance (net_null0, net_af_packet1).
constexpr std::string_view kVirtualDrivers[] = {
    "net_af_packet", "net_af_xdp",      "net_bonding", "net_failsafe",    "net_memif",
    "net_null",      "net_pcap",        "net_ring",    "net_softnic",     "net_tap",
    "net_tun",       "net_vdev_netvsc", "net_vhost",   "net_virtio_user",
};
constexpr std::string_view kVirtualAliases[] = {
    "eth_af_packet", "eth_bond",        "eth_null",  "eth_pcap",    "eth_ring",
    "eth_tap",       "eth_vdev_netvsc", "eth_vhost", "virtio_user",
};

bool all_of_set(std::string_view s, std::string_view set) {
  return !s.empty() && s.find_first_not_of(set) == std::string_view::npos;
}

// A file prefix names a directory and files: nothing a path or a shell could misread.
bool valid_file_prefix(std::string_view s) {
  return s.size() <= 64 &&
         all_of_set(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_");
}

// DOMAIN:BUS:DEVICE.FUNCTION as DPDK names PCI ports (rte_pci_device_name: at least four hex
// digits of domain, lowercase): the name `run` looks the port up by after probing it.
// 0 when it is one, 1 when it is one only in uppercase, -1 otherwise.
int pci_address(std::string_view s) {
  const size_t c1 = s.find(':');
  const size_t c2 = c1 == std::string_view::npos ? c1 : s.find(':', c1 + 1);
  const size_t dot = c2 == std::string_view::npos ? c2 : s.find('.', c2 + 1);
  if (dot == std::string_view::npos) return -1;
  const std::string_view domain = s.substr(0, c1), bus = s.substr(c1 + 1, c2 - c1 - 1),
                         dev = s.substr(c2 + 1, dot - c2 - 1), fn = s.substr(dot + 1);
  constexpr std::string_view lower = "0123456789abcdef", any = "0123456789abcdefABCDEF";
  if (domain.size() < 4 || domain.size() > 8 || bus.size() != 2 || dev.size() != 2 ||
      fn.size() != 1 || !all_of_set(fn, "01234567")) {
    return -1;
  }
  if (all_of_set(domain, lower) && all_of_set(bus, lower) && all_of_set(dev, lower)) return 0;
  return all_of_set(domain, any) && all_of_set(bus, any) && all_of_set(dev, any) ? 1 : -1;
}

// What `run` can open: a PCI address or a virtual device of a driver DPDK has (its arguments
// after the first ',' are the driver's). Checked here, so that `check` refuses "net_bogus0".
void check_device(const Node& node, const std::string& device) {
  const std::string_view name = std::string_view(device).substr(0, device.find(','));
  auto starts = [&](std::string_view driver) { return name.substr(0, driver.size()) == driver; };
  if (std::any_of(std::begin(kVirtualDrivers), std::end(kVirtualDrivers), starts) ||
      std::any_of(std::begin(kVirtualAliases), std::end(kVirtualAliases), starts)) {
    return;
  }
  const int pci = pci_address(name);
  if (pci == 0) return;
  if (pci == 1) {
    std::string lower(name);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](char c) { return char(std::tolower(uint8_t(c))); });
    node.fail("DPDK names PCI ports in lowercase: expected \"" + lower + "\", got " + node.shown());
    return;
  }
  std::string drivers;
  for (std::string_view d : kVirtualDrivers)
    drivers += (drivers.empty() ? "" : ", ") + std::string(d);
  node.fail("expected a PCI address (0000:03:00.0) or a DPDK virtual device (" + drivers +
            ", then the instance: net_null0), got " + node.shown());
}

// What Linux takes as an interface name (dev_valid_name()), less the characters a shell or
// a sysctl path would trip on.
bool valid_interface_name(std::string_view name) {
  if (name.empty() || name.size() > 15 || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(uint8_t(c)) || c == '-' || c == '_' || c == '.';
  });
}

PortConfig read_port(const Node& node) {
  PortConfig p;
  const Object o = node.object(
      {"name", "device", "mac", "addresses", "mtu", "promiscuous", "kernel_interface"});
  const Node name = o.at("name");
  p.name = name.string().value_or("");
  check_name(name, p.name);
  const Node device = o.at("device");
  p.device = device.string().value_or("");
  if (p.device.empty() && device.json().is_string()) {
    device.fail("expected a DPDK device name");
  } else if (!p.device.empty()) {
    check_device(device, p.device);
  }
  if (const auto mac = o.find("mac")) p.mac = read_mac(*mac);
  if (const auto addresses = o.find("addresses")) {
    for (const Node& a : addresses->array()) {
      if (const auto ifa = read_if_addr(a)) p.addresses.push_back(*ifa);
    }
  }
  p.mtu = uint16_t(o.integer("mtu", kMinMtu, kMaxMtu, p.mtu));
  if (const auto promiscuous = o.find("promiscuous")) {
    p.promiscuous = promiscuous->boolean().value_or(false);
  }
  if (const auto k = o.find("kernel_interface")) {
    p.kernel_interface = k->string().value_or("");
    if (k->json().is_string() && !valid_interface_name(p.kernel_interface)) {
      k->fail("expected a Linux interface name: 1 to 15 letters, digits, '-', '_' or '.', not "
              "\".\" or \"..\", got " + k->shown());
    }
  }
  return p;
}

RouteConfig read_route(const Node& node) {
  RouteConfig r;
  const Object o = node.object({"to", "via", "port"});
  r.to = read_prefix(o.at("to")).value_or(r.to);
  r.via = read_ip(o.at("via")).value_or(r.via);
  r.port = o.at("port").string().value_or("");
  return r;
}

std::optional<dp::IpPrefix> read_source_prefix(const Node& node, dp::Family family) {
  const auto p = read_prefix(node);
  if (p && p->addr.family != family) {
    node.fail(std::string("expected an ") + (family == dp::Family::v4 ? "IPv4" : "IPv6") +
              " prefix, got " + node.shown());
    return std::nullopt;
  }
  return p;
}

dp::EncapSettings read_encapsulation(const Node& node) {
  dp::EncapSettings e;
  const Object o = node.object({"source_v4", "source_v6", "gue_port", "mtu", "fragment"});
  if (const auto v4 = o.find("source_v4")) e.source_v4 = read_source_prefix(*v4, dp::Family::v4);
  if (const auto v6 = o.find("source_v6")) e.source_v6 = read_source_prefix(*v6, dp::Family::v6);
  e.gue_port = uint16_t(o.integer("gue_port", 1, kMaxPort, e.gue_port));
  e.mtu = uint16_t(o.integer("mtu", kMinEncapMtu, kMaxMtu, e.mtu));
  if (const auto f = o.find("fragment")) e.fragment = f->boolean().value_or(e.fragment);
  return e;
}

}  // namespace

namespace detail {

void read_dataplane(const Node& node, Config& config) {
  DataplaneConfig& d = config.dataplane;
  const Object o = node.object({"main_core", "worker_cores", "memory_mb", "hugepages", "eal_args",
                                "file_prefix", "telemetry", "capture", "burst",
                                "idle_sleep_max_us", "idle_after_us", "rx_descriptors",
                                "tx_descriptors", "mbufs", "ports", "routes", "snat_ports",
                                "encapsulation", "syn_proxy_threshold", "exception_rate",
                                "dnat_replies"});
  d.main_core = uint32_t(o.integer("main_core", 0, kMaxCore, d.main_core));
  if (const auto cores = o.find("worker_cores")) {
    d.worker_cores.clear();
    for (const Node& c : cores->array()) {
      if (const auto id = c.integer(0, kMaxCore)) d.worker_cores.push_back(uint32_t(*id));
    }
  }
  d.memory_mb = uint32_t(o.integer("memory_mb", kMinMemoryMb, kMaxMemoryMb, d.memory_mb));
  if (const auto huge = o.find("hugepages")) d.hugepages = huge->boolean().value_or(true);
  if (const auto args = o.find("eal_args")) {
    for (const Node& a : args->array()) {
      if (const auto text = a.string()) d.eal_args.push_back(*text);
    }
  }
  if (const auto prefix = o.find("file_prefix")) {
    d.file_prefix = prefix->string().value_or(d.file_prefix);
    if (!valid_file_prefix(d.file_prefix)) {
      prefix->fail(
          "file_prefix must be 1 to 64 letters, digits, '-' or '_' (it names "
          "/var/run/dpdk/PREFIX and hugepage files)");
    }
  }
  if (const auto t = o.find("telemetry")) d.telemetry = t->boolean().value_or(true);
  if (const auto c = o.find("capture")) {
    d.capture = c->boolean().value_or(false);
    // dpdk-dumpcap maps the primary's memory from its hugepage files; --no-huge has none.
    if (d.capture && !d.hugepages) {
      c->fail("capture needs hugepages: DPDK's capture tools map this process's hugepage memory");
    }
  }
  d.burst = uint16_t(o.integer("burst", 1, dp::kMaxBurst, d.burst));
  d.idle_sleep_max_us =
      uint32_t(o.integer("idle_sleep_max_us", 0, kMaxIdleSleepUs, d.idle_sleep_max_us));
  d.idle_after_us = uint32_t(o.integer("idle_after_us", 0, kMaxIdleAfterUs, d.idle_after_us));
  d.rx_descriptors =
      uint16_t(o.integer("rx_descriptors", kMinDescriptors, kMaxDescriptors, d.rx_descriptors));
  d.tx_descriptors =
      uint16_t(o.integer("tx_descriptors", kMinDescriptors, kMaxDescriptors, d.tx_descriptors));
  d.mbufs = uint32_t(o.integer("mbufs", 0, kMaxMbufs, d.mbufs));
  if (const auto ports = o.find("ports")) {
    for (const Node& p : ports->array()) d.ports.push_back(read_port(p));
  }
  if (const auto routes = o.find("routes")) {
    for (const Node& r : routes->array()) d.routes.push_back(read_route(r));
  }
  if (const auto snat = o.find("snat_ports")) {
    const Object so = snat->object({"low", "high"});
    d.snat_port_low = uint16_t(so.integer("low", 1, kMaxPort, d.snat_port_low));
    d.snat_port_high = uint16_t(so.integer("high", 1, kMaxPort, d.snat_port_high));
  }
  if (const auto encap = o.find("encapsulation")) d.encapsulation = read_encapsulation(*encap);
  d.syn_proxy_threshold = uint32_t(
      o.integer("syn_proxy_threshold", 1, kMaxSynProxyThreshold, d.syn_proxy_threshold));
  d.exception_rate =
      uint32_t(o.integer("exception_rate", 0, kMaxExceptionRate, d.exception_rate));
  d.dnat_replies = o.choice<DnatReplies>("dnat_replies", kDnatReplies, d.dnat_replies);
}

}  // namespace detail
}  // namespace magline::cfg
