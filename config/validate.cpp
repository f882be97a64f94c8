#include "config/validate.hpp"

#include <map>
#include <tuple>

namespace magline::cfg {
namespace {

std::string family_name(dp::Family f) {
  return f == dp::Family::v4 ? "IPv4" : "IPv6";
}

// A service's family and the field it comes from, for messages.
struct FamilyOrigin {
  dp::Family family = dp::Family::v4;
  std::string field;  // e.g. "frontends[0].address"; empty when nothing tells
};

// The family rule: the first frontend address tells, else the first backend.
FamilyOrigin family_of(const ServiceConfig& s) {
  for (size_t i = 0; i < s.frontends.size(); ++i) {
    if (s.frontends[i].address) {
      return {s.frontends[i].address->family, index_path("frontends", i) + ".address"};
    }
  }
  if (!s.backends.empty()) return {s.backends[0].addr.family, "backends[0].address"};
  return {};
}

// Checks one service. `path` is "services[I]"; each check records at most one error (the
// first one counts) and the later ones may then run on a service known to be bad, harmlessly.
class ServiceChecker {
 public:
  ServiceChecker(const Config& config, ServiceConfig& service, std::string path, Errors& errors)
      : config_(config), s_(service), path_(std::move(path)), errors_(errors) {}

  void run() {
    origin_ = family_of(s_);
    if (origin_.field.empty()) {
      fail(path_,
           "cannot tell the service's address family: give a frontend an \"address\" or add a "
           "backend");
      return;
    }
    s_.family = origin_.family;
    check_frontends();
    check_backends();
    check_source_ranges();
    if (dp::direct_return(s_.mode)) check_direct_return_ports();
    check_table_size();
  }

 private:
  void fail(const std::string& path, std::string_view message) { errors_.fail(path, message); }
  std::string at(std::string_view field) const { return path_ + "." + std::string(field); }

  void check_family(const dp::IpAddr& a, const std::string& shown, const std::string& path) {
    if (a.family == s_.family) return;
    fail(path, shown + " is " + family_name(a.family) + ", but the service is " +
                   family_name(s_.family) + " (from " + origin_.field +
                   "); use one service per family");
  }

  // What frontend j listens on once node_port is expanded over the node addresses.
  std::vector<dp::Frontend> expand(const FrontendConfig& f) const {
    if (f.address) return {{*f.address, f.port, f.protocol, f.kind}};
    std::vector<dp::Frontend> out;
    for (const dp::IpAddr& a : config_.node_addresses) {
      if (a.family == s_.family) out.push_back({a, f.port, f.protocol, f.kind});
    }
    return out;
  }

  void check_frontends() {
    using Key = std::tuple<dp::IpAddr, uint16_t, dp::Protocol>;
    std::map<Key, size_t> seen;
    for (size_t j = 0; j < s_.frontends.size(); ++j) {
      const FrontendConfig& f = s_.frontends[j];
      const std::string path = index_path(at("frontends"), j);
      if (f.address) check_family(*f.address, dp::to_string(*f.address), path + ".address");
      const std::vector<dp::Frontend> listens = expand(f);
      if (listens.empty()) {
        fail(path, "a node_port frontend needs an " + family_name(s_.family) +
                       " address in node.addresses");
      }
      for (const dp::Frontend& l : listens) {
        const auto [it, fresh] = seen.try_emplace(Key{l.addr, l.port, l.proto}, j);
        if (!fresh) {
          fail(path, "duplicate frontend " + dp::to_string(l) + " (also " +
                         index_path("frontends", it->second) + ")");
        }
      }
    }
  }

  void check_backends() {
    if (s_.backends.size() > dp::kMaxMaglevBackends) {
      fail(at("backends"), "expected at most " + std::to_string(dp::kMaxMaglevBackends) +
                               " backends, got " + std::to_string(s_.backends.size()));
    }
    std::map<std::pair<dp::IpAddr, uint16_t>, size_t> seen;
    for (size_t k = 0; k < s_.backends.size(); ++k) {
      const dp::Backend& b = s_.backends[k];
      const std::string path = index_path(at("backends"), k);
      if (dp::encapsulates(s_.mode)) {
        check_tunnel_family(b.addr, path + ".address");
      } else {
        check_family(b.addr, dp::to_string(b.addr), path + ".address");
      }
      const auto [it, fresh] = seen.try_emplace({b.addr, b.port}, k);
      if (!fresh) {
        fail(path, "duplicate backend " + dp::backend_id(b.addr, b.port) + " (also " +
                       index_path("backends", it->second) + ")");
      }
    }
  }

  void check_source_ranges() {
    for (size_t k = 0; k < s_.source_ranges.size(); ++k) {
      const dp::IpPrefix& p = s_.source_ranges[k];
      check_family(p.addr, dp::to_string(p), index_path(at("source_ranges"), k));
    }
  }

  // An encapsulating service's backends are tunnel endpoints: of either family whatever the
  // service's (IPv4 in IPv6 and the reverse are tunnels too), but one family for all of them,
  // whose outer source the node has (dataplane.encapsulation or a port's address).
  void check_tunnel_family(const dp::IpAddr& a, const std::string& path) {
    const dp::Family first = s_.backends[0].addr.family;
    if (a.family != first) {
      fail(path, dp::to_string(a) + " is " + family_name(a.family) + ", but backends[0] is " +
                     family_name(first) + "; an encapsulating service's backends share a family");
      return;
    }
    const dp::EncapSettings& e = config_.dataplane.encapsulation;
    const bool prefix = e.sources(a.family).has_value();
    if (prefix || config_.dataplane.ports.empty()) return;
    for (const PortConfig& p : config_.dataplane.ports) {
      for (const dp::IfAddr& ifa : p.addresses) {
        if (ifa.addr.family == a.family) return;
      }
    }
    fail(path, "no " + family_name(a.family) + " outer source for the tunnel: give a port an " +
                   family_name(a.family) + " address or set dataplane.encapsulation.source_" +
                   (a.family == dp::Family::v4 ? "v4" : "v6"));
  }

  // Direct return (L2 DSR, IPIP, GUE) leaves the client's packet unchanged: the backend must
  // serve on the very port the client connected to.
  void check_direct_return_ports() {
    for (size_t k = 0; k < s_.backends.size(); ++k) {
      for (size_t j = 0; j < s_.frontends.size(); ++j) {
        const uint16_t want = s_.frontends[j].port;
        if (s_.backends[k].port == want) continue;
        fail(index_path(at("backends"), k) + ".port",
             std::string(dp::to_string(s_.mode)) + " cannot translate ports: expected " +
                 std::to_string(want) + " (the port of " +
                 index_path("frontends", j) + "), got " + std::to_string(s_.backends[k].port));
        return;
      }
    }
  }

  // MaglevTable::build refuses more backends than slots; say so in the file's terms.
  void check_table_size() {
    const size_t n = s_.backends.size();
    if (s_.table_size && *s_.table_size < n) {
      fail(at("table_size"), "expected a prime of at least " + std::to_string(n) +
                                 " (the number of backends), got " +
                                 std::to_string(*s_.table_size));
    } else if (!s_.table_size && config_.table_size < n) {
      fail(at("backends"), std::to_string(n) + " backends need a Maglev table of at least " +
                               std::to_string(n) + " slots, but maglev.table_size is " +
                               std::to_string(config_.table_size));
    }
  }

  const Config& config_;
  ServiceConfig& s_;
  std::string path_;
  Errors& errors_;
  FamilyOrigin origin_;
};

void check_node_addresses(const Config& config, Errors& errors) {
  std::map<dp::IpAddr, size_t> seen;
  for (size_t i = 0; i < config.node_addresses.size(); ++i) {
    const auto [it, fresh] = seen.try_emplace(config.node_addresses[i], i);
    if (!fresh) {
      errors.fail(index_path("node.addresses", i),
                  "duplicate address " + dp::to_string(config.node_addresses[i]) + " (also " +
                      index_path("node.addresses", it->second) + ")");
    }
  }
}

template <typename T, typename Key>
void check_unique(const std::vector<T>& items, Key key, const std::string& list,
                  std::string_view field, std::string_view what, Errors& errors) {
  std::map<decltype(key(items[0])), size_t> seen;
  for (size_t i = 0; i < items.size(); ++i) {
    const auto [it, fresh] = seen.try_emplace(key(items[i]), i);
    if (!fresh) {
      errors.fail(index_path(list, i) + "." + std::string(field),
                  "duplicate " + std::string(what) + " (also " + index_path(list, it->second) +
                      ")");
    }
  }
}

void check_dataplane(const Config& config, Errors& errors) {
  const DataplaneConfig& d = config.dataplane;
  if (d.worker_cores.empty()) errors.fail("dataplane.worker_cores", "expected at least one core");
  std::map<uint32_t, size_t> cores;
  for (size_t i = 0; i < d.worker_cores.size(); ++i) {
    const std::string path = index_path("dataplane.worker_cores", i);
    if (d.worker_cores[i] == d.main_core) {
      errors.fail(path, "core " + std::to_string(d.main_core) +
                            " is the main core (the control thread); workers need their own");
    }
    if (!cores.try_emplace(d.worker_cores[i], i).second) {
      errors.fail(path, "duplicate core " + std::to_string(d.worker_cores[i]));
    }
  }
  check_unique(d.ports, [](const PortConfig& p) { return p.name; }, "dataplane.ports", "name",
               "port name", errors);
  check_unique(d.ports, [](const PortConfig& p) { return p.device; }, "dataplane.ports",
               "device", "device", errors);
  for (size_t i = 0; i < d.ports.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      const std::string& k = d.ports[i].kernel_interface;
      if (!k.empty() && k == d.ports[j].kernel_interface) {
        errors.fail(index_path("dataplane.ports", i) + ".kernel_interface",
                    "duplicate kernel interface " + Json(k).dump() + " (also " +
                        index_path("dataplane.ports", j) + ")");
      }
    }
  }
  std::map<dp::IpAddr, std::string> owners;
  for (size_t i = 0; i < d.ports.size(); ++i) {
    for (size_t k = 0; k < d.ports[i].addresses.size(); ++k) {
      const dp::IpAddr& a = d.ports[i].addresses[k].addr;
      const std::string path = index_path(index_path("dataplane.ports", i) + ".addresses", k);
      const auto [it, fresh] = owners.try_emplace(a, path);
      if (!fresh) errors.fail(path, "duplicate address " + dp::to_string(a) + " (also " + it->second + ")");
    }
  }
  for (size_t i = 0; i < d.routes.size(); ++i) {
    const RouteConfig& r = d.routes[i];
    const std::string path = index_path("dataplane.routes", i);
    const auto port = std::find_if(d.ports.begin(), d.ports.end(),
                                   [&](const PortConfig& p) { return p.name == r.port; });
    if (port == d.ports.end()) {
      errors.fail(path + ".port", "no port is named " + Json(r.port).dump());
      continue;
    }
    if (r.via.family != r.to.addr.family) {
      errors.fail(path + ".via", dp::to_string(r.via) + " is " + family_name(r.via.family) +
                                     ", but the route is to " + dp::to_string(r.to));
      continue;
    }
    const bool on_link = std::any_of(port->addresses.begin(), port->addresses.end(),
                                     [&](const dp::IfAddr& a) { return a.subnet().contains(r.via); });
    if (!on_link) {
      errors.fail(path + ".via", dp::to_string(r.via) + " is not in a subnet of port " +
                                     Json(r.port).dump() + "; a gateway must be on-link");
    }
  }
  if (d.snat_port_low > d.snat_port_high) {
    errors.fail("dataplane.snat_ports", "low (" + std::to_string(d.snat_port_low) +
                                            ") is above high (" +
                                            std::to_string(d.snat_port_high) + ")");
  }
}

// The BGP section against the ports: the router id (by default their first IPv4 address), and
// directly connected peers on one of their subnets.
void check_bgp(Config& config, Errors& errors) {
  BgpConfig& b = config.bgp;
  if (!b.enabled) return;
  const std::vector<PortConfig>& ports = config.dataplane.ports;
  if (!b.router_id) {
    for (const PortConfig& p : ports) {
      for (const dp::IfAddr& a : p.addresses) {
        if (!b.router_id && a.addr.family == dp::Family::v4) b.router_id = a.addr;
      }
    }
    if (!b.router_id) {
      errors.fail("bgp.router_id", "no IPv4 port address to take the router id from: give one");
    }
  }
  check_unique(b.peers, [](const BgpPeerConfig& p) { return p.address; }, "bgp.peers",
               "address", "peer", errors);
  for (size_t i = 0; i < b.peers.size(); ++i) {
    const BgpPeerConfig& peer = b.peers[i];
    if (peer.multihop) continue;
    const bool on_link = std::any_of(ports.begin(), ports.end(), [&](const PortConfig& p) {
      return std::any_of(p.addresses.begin(), p.addresses.end(),
                         [&](const dp::IfAddr& a) { return a.subnet().contains(peer.address); });
    });
    if (!on_link) {
      errors.fail(index_path("bgp.peers", i) + ".address",
                  dp::to_string(peer.address) +
                      " is not in a subnet of a port; set \"multihop\": true for a peer "
                      "beyond them");
    }
  }
}

}  // namespace

void validate(Config& config, Errors& errors) {
  check_dataplane(config, errors);  // first: node addresses may come from port addresses
  check_bgp(config, errors);
  if (config.provider.l2_speaker &&
      (!config.kubernetes.enabled || config.provider.pools.empty())) {
    errors.fail("provider.l2_speaker",
                "needs the provider's node Leases: a kubernetes section and provider.pools");
  }
  check_node_addresses(config, errors);
  std::map<std::string, size_t> names;
  for (size_t i = 0; i < config.services.size(); ++i) {
    ServiceConfig& s = config.services[i];
    const std::string path = index_path("services", i);
    const auto [it, fresh] = names.try_emplace(s.name, i);
    if (!fresh) {
      errors.fail(path + ".name", "duplicate service name " + Json(s.name).dump() + " (also " +
                                      index_path("services", it->second) + ")");
    }
    ServiceChecker(config, s, path, errors).run();
  }
}

}  // namespace magline::cfg
