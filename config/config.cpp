// Reads the configuration's fields (types, ranges, the shape of each object); validate.cpp then
// checks how they fit together. The `dataplane` section is read in config_dataplane.cpp.
#include "config/config.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <memory>
#include <system_error>

#include "config/json_reader.hpp"
#include "config/readers.hpp"
#include "config/provider.hpp"
#include "config/validate.hpp"
#include "dataplane/addr.hpp"
#include "dataplane/forwarder.hpp"

namespace magline::cfg {

namespace detail {

// Addresses, read from strings by the data plane's parsers.

std::optional<dp::IpAddr> read_ip(const Node& node) {
  if (auto s = node.string_silently()) {
    if (auto a = dp::parse_ip(*s)) return a;
  }
  node.fail("expected an IPv4 or IPv6 address, got " + node.shown());
  return std::nullopt;
}

// "ADDR/LEN" with no bits set past LEN.
std::optional<dp::IpPrefix> read_prefix(const Node& node) {
  const auto s = node.string_silently();
  const auto cleared = s ? dp::parse_prefix(*s, dp::HostBits::clear) : std::nullopt;
  if (!cleared) {
    node.fail("expected a prefix ADDRESS/LENGTH, got " + node.shown());
    return std::nullopt;
  }
  // Bits past the length usually mean a typo in the address or the length: refuse, and show
  // what the prefix would be.
  if (!dp::parse_prefix(*s, dp::HostBits::reject)) {
    node.fail(node.shown() + " has bits set past the prefix length; did you mean \"" +
              dp::to_string(*cleared) + "\"?");
    return std::nullopt;
  }
  return cleared;
}

// "ADDR/LEN" naming an interface address and its subnet: bits past LEN are the host's.
std::optional<dp::IfAddr> read_if_addr(const Node& node) {
  const auto s = node.string_silently();
  const auto slash = s ? s->find('/') : std::string::npos;
  if (slash != std::string::npos) {
    const auto addr = dp::parse_ip(std::string_view(*s).substr(0, slash));
    const auto subnet = dp::parse_prefix(*s, dp::HostBits::clear);
    if (addr && subnet) return dp::IfAddr{*addr, subnet->len};
  }
  node.fail("expected an interface address ADDRESS/LENGTH, got " + node.shown());
  return std::nullopt;
}

std::optional<dp::MacAddr> read_mac(const Node& node) {
  const auto s = node.string_silently();
  if (const auto m = s ? dp::parse_mac(*s) : std::nullopt) return m;
  node.fail("expected a MAC address like \"02:00:00:00:00:01\", got " + node.shown());
  return std::nullopt;
}

void check_name(const Node& node, const std::string& name) {
  const bool printable = std::all_of(
      name.begin(), name.end(), [](char c) { return uint8_t(c) > 0x20 && uint8_t(c) != 0x7f; });
  if (name.empty()) {
    node.fail("expected a non-empty name, got \"\"");
  } else if (!printable) {
    node.fail("expected a name without spaces or control characters, got " + node.shown());
  }
}

}  // namespace detail

namespace {

using namespace detail;

constexpr Choice<dp::ForwardMode> kModes[] = {
    {"full_nat", dp::ForwardMode::full_nat},
    {"dnat", dp::ForwardMode::dnat},
    {"dsr_l2", dp::ForwardMode::dsr_l2},
    {"ipip", dp::ForwardMode::ipip},
    {"gue", dp::ForwardMode::gue},
};
constexpr Choice<K8sTargets> kTargets[] = {
    {"pods", K8sTargets::pods},
    {"nodes", K8sTargets::nodes},
};
constexpr Choice<dp::FrontendKind> kFrontendKinds[] = {
    {"load_balancer", dp::FrontendKind::load_balancer},
    {"node_port", dp::FrontendKind::node_port},
    {"external_ip", dp::FrontendKind::external_ip},
};
constexpr Choice<dp::Protocol> kProtocols[] = {
    {"tcp", dp::Protocol::tcp},
    {"udp", dp::Protocol::udp},
    {"sctp", dp::Protocol::sctp},
};
constexpr Choice<dp::BackendState> kBackendStates[] = {
    {"ready", dp::BackendState::ready},
    {"terminating", dp::BackendState::terminating},
};
constexpr Choice<dp::NoBackends> kNoBackends[] = {
    {"reject", dp::NoBackends::reject},
    {"drop", dp::NoBackends::drop},
};
constexpr Choice<dp::SynProxy> kSynProxy[] = {
    {"auto", dp::SynProxy::automatic},
    {"on", dp::SynProxy::on},
    {"off", dp::SynProxy::off},
};
constexpr Choice<bool> kAffinityTypes[] = {{"none", false}, {"client_ip", true}};

constexpr uint64_t kMaxWeight = dp::kMaxMaglevWeight;
constexpr uint64_t kMaxAffinityTimeoutS = 86400;  // Kubernetes' limit for ClientIP affinity
constexpr uint64_t kMinFlowCapacity = 16;         // two buckets of eight ways
constexpr uint64_t kMaxFlowCapacity = uint64_t(1) << 31;
constexpr size_t kMaxFileBytes = size_t(64) << 20;  // far above any sane config; stops /dev/zero

// A Maglev table size (section 3.4 needs M prime so that every skip is coprime with it).
std::optional<uint32_t> read_table_size(const Node& node) {
  const auto v = node.integer(dp::kMinMaglevSize, dp::kMaxMaglevSize);
  if (!v) return std::nullopt;
  if (dp::is_prime(uint32_t(*v))) return uint32_t(*v);
  uint32_t next = uint32_t(*v);
  // Ends by kMaxMaglevSize, itself prime.
  while (!dp::is_prime(next))
    ++next;
  node.fail("expected a prime, got " + node.shown() + " (the next prime is " +
            std::to_string(next) + ")");
  return std::nullopt;
}

void read_node(const Node& node, Config& config) {
  const Object o = node.object({"addresses"});
  if (const auto addresses = o.find("addresses")) {
    for (const Node& a : addresses->array()) {
      const auto ip = read_ip(a);
      if (ip && dp::is_link_local(*ip)) {
        a.fail(dp::to_string(*ip) + " is link-local (169.254.0.0/16, fe80::/10): a NodePort " +
               "there is reachable from one link only; give the node's routable addresses");
      } else if (ip) {
        config.node_addresses.push_back(*ip);
      }
    }
  }
}

void read_maglev(const Node& node, Config& config) {
  const Object o = node.object({"table_size"});
  if (const auto size = o.find("table_size")) {
    config.table_size = read_table_size(*size).value_or(config.table_size);
  }
}

void read_timeouts(const Node& node, dp::FlowTimeouts& t) {
  const Object o = node.object({"tcp_syn", "tcp_established", "tcp_closing", "udp", "other"});
  auto read = [&](std::string_view key, uint32_t& ms) {
    ms = uint32_t(o.integer(key, 1, dp::kMaxFlowTimeoutMs, ms));
  };
  read("tcp_syn", t.tcp_syn_ms);
  read("tcp_established", t.tcp_established_ms);
  read("tcp_closing", t.tcp_closing_ms);
  read("udp", t.udp_ms);
  read("other", t.other_ms);
}

void read_flow_table(const Node& node, Config& config) {
  const Object o = node.object({"capacity", "timeouts_ms"});
  config.flow_capacity =
      o.integer("capacity", kMinFlowCapacity, kMaxFlowCapacity, config.flow_capacity);
  if (const auto t = o.find("timeouts_ms")) read_timeouts(*t, config.timeouts);
}

FrontendConfig read_frontend(const Node& node) {
  FrontendConfig fe;
  const Object o = node.object({"kind", "address", "port", "protocol"});
  fe.kind = o.choice<dp::FrontendKind>("kind", kFrontendKinds, fe.kind);
  const auto address = o.find("address");
  if (fe.kind == dp::FrontendKind::node_port && address) {
    address->fail(
        "a node_port frontend has no address: it listens on the node addresses of the "
        "service's family");
  } else if (fe.kind != dp::FrontendKind::node_port && !address) {
    o.fail("missing key \"address\" (kind \"" + std::string(dp::to_string(fe.kind)) +
           "\" needs one)");
  }
  if (address) fe.address = read_ip(*address);
  fe.port = uint16_t(o.at("port").integer(1, kMaxPort).value_or(0));
  fe.protocol = o.choice<dp::Protocol>("protocol", kProtocols, fe.protocol);
  return fe;
}

dp::Backend read_backend(const Node& node) {
  dp::Backend be;
  const Object o = node.object({"address", "port", "weight", "state"});
  be.addr = read_ip(o.at("address")).value_or(be.addr);
  be.port = uint16_t(o.at("port").integer(1, kMaxPort).value_or(0));
  be.weight = uint32_t(o.integer("weight", 0, kMaxWeight, be.weight));
  be.state = o.choice<dp::BackendState>("state", kBackendStates, be.state);
  return be;
}

dp::SessionAffinity read_affinity(const Node& node) {
  dp::SessionAffinity affinity;
  const Object o = node.object({"type", "timeout_s"});
  affinity.client_ip = o.choice<bool>("type", kAffinityTypes, false);
  if (const auto timeout = o.find("timeout_s")) {
    // Kubernetes refuses a timeout without ClientIP affinity too: it would be silently unused.
    if (!affinity.client_ip) timeout->fail("only \"type\": \"client_ip\" takes a timeout");
    affinity.timeout_s = uint32_t(timeout->integer(1, kMaxAffinityTimeoutS).value_or(0));
  }
  return affinity;
}

dp::ConnectionLimit read_connection_limit(const Node& node) {
  dp::ConnectionLimit limit;
  const Object o = node.object({"rate", "burst"});
  limit.rate = uint32_t(o.at("rate").integer(1, dp::kMaxConnectionRate).value_or(0));
  if (const auto burst = o.find("burst")) {
    limit.burst = uint32_t(burst->integer(1, dp::kMaxConnectionRate).value_or(0));
  }
  return limit;
}

// Names appear in `magline table`, metrics labels and logs, where a space would split a field.
ServiceConfig read_service(const Node& node) {
  ServiceConfig s;
  const Object o = node.object({"name", "mode", "frontends", "backends", "session_affinity",
                                "source_ranges", "no_backends", "table_size",
                                "new_connection_limit", "syn_proxy"});
  const Node name = o.at("name");
  s.name = name.string().value_or("");
  check_name(name, s.name);
  s.mode = o.choice<dp::ForwardMode>("mode", kModes, s.mode);

  const Node frontends = o.at("frontends");
  for (const Node& f : frontends.array())
    s.frontends.push_back(read_frontend(f));
  if (s.frontends.empty() && frontends.json().is_array()) {
    frontends.fail("expected at least one frontend, got []");
  }
  if (const auto backends = o.find("backends")) {
    for (const Node& b : backends->array())
      s.backends.push_back(read_backend(b));
  }
  if (const auto affinity = o.find("session_affinity")) s.affinity = read_affinity(*affinity);
  if (const auto ranges = o.find("source_ranges")) {
    for (const Node& r : ranges->array()) {
      if (const auto p = read_prefix(r)) s.source_ranges.push_back(*p);
    }
  }
  s.no_backends = o.choice<dp::NoBackends>("no_backends", kNoBackends, s.no_backends);
  if (const auto size = o.find("table_size")) s.table_size = read_table_size(*size);
  if (const auto limit = o.find("new_connection_limit")) {
    s.new_connections = read_connection_limit(*limit);
  }
  s.syn_proxy = o.choice<dp::SynProxy>("syn_proxy", kSynProxy, s.syn_proxy);
  if (s.syn_proxy == dp::SynProxy::on && s.mode != dp::ForwardMode::full_nat &&
      s.mode != dp::ForwardMode::dnat) {
    o.at("syn_proxy").fail("expected \"auto\" or \"off\" for a " +
                           std::string(dp::to_string(s.mode)) +
                           " service: \"on\" serves full_nat and dnat ones, got \"on\"");
  }
  return s;
}

void read_admin(const Node& node, Config& config) {
  AdminConfig& a = config.admin;
  const Object o = node.object({"enabled", "address", "port"});
  if (const auto enabled = o.find("enabled")) a.enabled = enabled->boolean().value_or(true);
  if (const auto address = o.find("address")) {
    if (const auto ip = read_ip(*address)) a.address = dp::to_string(*ip);
  }
  a.port = uint16_t(o.integer("port", 1, kMaxPort, a.port));
}

void read_health_checks(const Node& node, HealthChecksConfig& h) {
  const Object o = node.object({"interval_ms", "timeout_ms", "healthy_threshold",
                                "unhealthy_threshold", "max_in_flight"});
  h.interval_ms = uint32_t(o.integer("interval_ms", 1000, 300000, h.interval_ms));
  h.timeout_ms = uint32_t(o.integer("timeout_ms", 100, 60000, h.timeout_ms));
  h.healthy_threshold = uint32_t(o.integer("healthy_threshold", 1, 10, h.healthy_threshold));
  h.unhealthy_threshold =
      uint32_t(o.integer("unhealthy_threshold", 1, 10, h.unhealthy_threshold));
  h.max_in_flight = uint32_t(o.integer("max_in_flight", 1, 4096, h.max_in_flight));
  // One probe at a time per target: its timeout must end before the next is due.
  if (h.timeout_ms >= h.interval_ms) {
    o.fail_key("timeout_ms", "timeout_ms " + std::to_string(h.timeout_ms) +
                                 " must be below interval_ms " + std::to_string(h.interval_ms));
  }
}

void read_kubernetes(const Node& node, Config& config) {
  KubernetesConfig& k = config.kubernetes;
  const Object o =
      node.object({"enabled", "in_cluster", "kubeconfig", "context", "namespace", "proxy_name",
                   "load_balancer_class", "default_load_balancer_class", "node_name", "zone",
                   "table_size", "min_table_size", "coalesce_ms", "page_limit", "targets",
                   "health_checks"});
  k.enabled = true;
  if (const auto n = o.find("enabled")) k.enabled = n->boolean().value_or(true);
  if (const auto n = o.find("in_cluster")) k.in_cluster = n->boolean().value_or(false);
  auto text = [&](std::string_view key, std::string& out) {
    if (const auto n = o.find(key)) out = n->string().value_or("");
  };
  text("kubeconfig", k.kubeconfig);
  text("context", k.context);
  text("namespace", k.namespace_);
  text("proxy_name", k.proxy_name);
  text("load_balancer_class", k.load_balancer_class);
  if (const auto n = o.find("default_load_balancer_class")) {
    k.default_load_balancer_class = n->boolean().value_or(false);
    // Without a class Magline already takes the classless Services, and only them.
    if (k.default_load_balancer_class && k.load_balancer_class.empty()) {
      n->fail(
          "default_load_balancer_class needs load_balancer_class: without a class, "
          "Magline takes only classless Services already");
    }
  }
  text("node_name", k.node_name);
  text("zone", k.zone);
  if (const auto size = o.find("table_size")) {
    k.table_size = read_table_size(*size).value_or(k.table_size);
  }
  if (const auto size = o.find("min_table_size")) {
    if (size->json().is_number_integer() && size->json().get<int64_t>() == 0) {
      k.min_table_size = 0;  // every table has table_size slots
    } else if (const auto m = read_table_size(*size)) {
      k.min_table_size = *m;
      if (*m > k.table_size) {
        size->fail("min_table_size " + std::to_string(*m) + " is above table_size " +
                   std::to_string(k.table_size));
      }
    }
  } else {
    k.min_table_size = std::min(k.min_table_size, k.table_size);  // a small table_size alone
  }
  k.coalesce_ms = uint32_t(o.integer("coalesce_ms", 0, 1000, k.coalesce_ms));
  k.page_limit = uint32_t(o.integer("page_limit", 1, 100000, k.page_limit));
  // Any value goes with any forwarding: watched Services are forwarded full_nat (Cluster) or
  // dnat (Local), never dsr_l2, which could not reach a nodePort (docs/k8s.md, "Node targets").
  k.targets = o.choice<K8sTargets>("targets", kTargets, k.targets);
  if (const auto n = o.find("health_checks")) read_health_checks(*n, k.health_checks);
  // Neither: kubectl's default kubeconfig, found when it is read (control/k8s_feed.hpp).
  if (k.enabled && k.in_cluster && !k.kubeconfig.empty()) {
    o.fail("in_cluster and kubeconfig exclude each other");
  }
}

void read_config(const Node& root, Config& config) {
  const Object o = root.object(
      {"node", "maglev", "flow_table", "services", "dataplane", "admin", "kubernetes",
       "provider", "bgp"});
  if (const auto n = o.find("node")) read_node(*n, config);
  if (const auto n = o.find("maglev")) read_maglev(*n, config);
  if (const auto n = o.find("flow_table")) read_flow_table(*n, config);
  if (const auto n = o.find("dataplane")) read_dataplane(*n, config);
  if (const auto n = o.find("admin")) read_admin(*n, config);
  if (const auto n = o.find("kubernetes")) read_kubernetes(*n, config);
  if (const auto n = o.find("provider")) read_provider(*n, config);
  if (const auto n = o.find("bgp")) read_bgp(*n, config);
  // NodePorts listen on the node's addresses: by default, every port address that is not
  // link-local (kube-proxy's NodePort addresses are the node's routable ones).
  if (!o.find("node") || !o.find("node")->json().contains("addresses")) {
    config.node_addresses_from_ports = true;
    for (const PortConfig& p : config.dataplane.ports) {
      for (const dp::IfAddr& a : p.addresses) {
        if (!dp::is_link_local(a.addr)) config.node_addresses.push_back(a.addr);
      }
    }
  }
  if (const auto n = o.find("services")) {
    for (const Node& s : n->array())
      config.services.push_back(read_service(s));
  }
}

Result<Config> parse_unguarded(std::string_view text, std::string_view source) {
  auto json = parse_json(text, source);
  if (!json) return json.error();
  Config config;
  config.source = std::string(source);
  Errors errors(source);
  read_config(Node(*json, "", errors), config);
  if (!errors.failed()) validate(config, errors);
  if (errors.failed()) return errors.error();
  return config;
}

Result<std::string> read_file(const std::string& path) {
  auto fail = [&](int err) {
    return Error{path + ": cannot read: " + std::generic_category().message(err)};
  };
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"),
                                                          &std::fclose);
  if (!f) return fail(errno);
  std::string text;
  char buf[65536];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) {
    text.append(buf, n);
    if (text.size() > kMaxFileBytes) {
      return Error{path + ": cannot read: larger than " + std::to_string(kMaxFileBytes) + " bytes"};
    }
  }
  if (std::ferror(f.get())) return fail(errno);  // e.g. EISDIR
  return text;
}

// Standard input, whole (std::cin, so that tests can hand it a buffer).
Result<std::string> read_stdin() {
  std::string text;
  char buf[65536];
  while (std::cin.read(buf, sizeof buf) || std::cin.gcount() > 0) {
    text.append(buf, size_t(std::cin.gcount()));
    if (text.size() > kMaxFileBytes) {
      return Error{std::string(kStdinSource) + ": cannot read: larger than " +
                   std::to_string(kMaxFileBytes) + " bytes"};
    }
  }
  if (std::cin.bad()) return Error{std::string(kStdinSource) + ": cannot read"};
  std::cin.clear();  // the end of input is not an error for whoever reads next
  return text;
}

}  // namespace

Result<Config> parse_config(std::string_view text, std::string_view source) {
  // The reader checks types before every access, so nothing should throw; this keeps a bug
  // there (or bad_alloc) from escaping as an exception through an API that promises values.
  try {
    return parse_unguarded(text, source);
  } catch (const std::exception& e) {
    return Error{std::string(source) + ": cannot load: " + e.what()};
  }
}

Result<Config> load_config(const std::string& path) {
  const bool from_stdin = path == "-";
  auto text = from_stdin ? read_stdin() : read_file(path);
  if (!text) return text.error();
  auto config = parse_config(*text, from_stdin ? kStdinSource : std::string_view(path));
  if (!config) return config;
  // A relative kubeconfig is the configuration file's neighbour, wherever magline runs from
  // (as a kubeconfig's own relative paths are the kubeconfig's: control/k8s_client).
  std::string& kubeconfig = config->kubernetes.kubeconfig;
  if (!kubeconfig.empty() && std::filesystem::path(kubeconfig).is_relative()) {
    std::error_code ec;
    // From standard input ("-"): the working directory.
    const std::filesystem::path dir = std::filesystem::absolute(path, ec).parent_path();
    if (!ec) kubeconfig = (dir / kubeconfig).lexically_normal().string();
  }
  return config;
}

Result<Config> load_or_default(const std::optional<std::string>& path) {
  return path ? load_config(*path) : parse_config(embedded_default_config(), kEmbeddedSource);
}

dp::Node node_of(const Config& config) {
  dp::Node node;
  for (size_t i = 0; i < config.dataplane.ports.size(); ++i) {
    const PortConfig& p = config.dataplane.ports[i];
    dp::NodePort& out = node.ports.emplace_back();
    out.id = uint16_t(i);
    out.name = p.name;
    out.mac = p.mac.value_or(dp::MacAddr{});
    out.addrs = p.addresses;
    out.mtu = p.mtu;
    out.kernel = !p.kernel_interface.empty();
  }
  for (const RouteConfig& r : config.dataplane.routes) {
    for (const dp::NodePort& p : node.ports) {
      if (p.name == r.port) node.routes.push_back({r.to, r.via, p.id});
    }
  }
  node.encap = config.dataplane.encapsulation;
  return node;
}

Reload reload_of(const Config& running, Config loaded) {
  Reload r;
  const bool both_from_ports = loaded.node_addresses_from_ports && running.node_addresses_from_ports;
  if (!both_from_ports && loaded.node_addresses != running.node_addresses) {
    r.needs_restart.push_back("node");
  }
  if (loaded.flow_capacity != running.flow_capacity || !(loaded.timeouts == running.timeouts)) {
    r.needs_restart.push_back("flow_table");
  }
  if (!(loaded.dataplane == running.dataplane)) r.needs_restart.push_back("dataplane");
  if (!(loaded.admin == running.admin)) r.needs_restart.push_back("admin");
  if (!(loaded.kubernetes == running.kubernetes)) r.needs_restart.push_back("kubernetes");
  if (!(loaded.provider == running.provider)) r.needs_restart.push_back("provider");
  if (!(loaded.bgp == running.bgp)) r.needs_restart.push_back("bgp");
  loaded.node_addresses = running.node_addresses;
  loaded.node_addresses_from_ports = running.node_addresses_from_ports;
  loaded.flow_capacity = running.flow_capacity;
  loaded.timeouts = running.timeouts;
  loaded.dataplane = running.dataplane;
  loaded.admin = running.admin;
  loaded.kubernetes = running.kubernetes;
  loaded.provider = running.provider;
  loaded.bgp = running.bgp;
  r.config = std::move(loaded);
  return r;
}

std::vector<dp::Service> services_of(const Config& config) {
  std::vector<dp::Service> services;
  services.reserve(config.services.size());
  for (const ServiceConfig& s : config.services) {
    dp::Service& out = services.emplace_back();
    out.name = s.name;
    for (const FrontendConfig& f : s.frontends) {
      if (f.address) {
        out.frontends.push_back({*f.address, f.port, f.protocol, f.kind});
        continue;
      }
      for (const dp::IpAddr& a : config.node_addresses) {
        if (a.family == s.family) out.frontends.push_back({a, f.port, f.protocol, f.kind});
      }
    }
    out.backends = s.backends;
    out.mode = s.mode;
    out.affinity = s.affinity;
    out.source_ranges = s.source_ranges;
    out.no_backends = s.no_backends;
    out.table_size = s.table_size.value_or(config.table_size);
    out.new_connections = s.new_connections;
    out.syn_proxy = s.syn_proxy;
  }
  return services;
}

}  // namespace magline::cfg
