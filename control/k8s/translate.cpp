// Each rule cites the section of /work/shared/reference/k8s-api.md (quoted in docs/k8s.md) or
// the kube-proxy function it follows.
#include "control/k8s/translate.hpp"

#include <algorithm>
#include <map>
#include <numeric>
#include <tuple>

#include "control/k8s/node_targets.hpp"

namespace magline::k8s {

uint32_t table_size_for(size_t endpoints, const TranslateOptions& opts) noexcept {
  if (opts.min_table_size == 0 || opts.min_table_size >= opts.table_size) return opts.table_size;
  const uint64_t wanted = 100 * uint64_t(endpoints);
  if (opts.min_table_size >= wanted) return opts.min_table_size;
  for (uint32_t m : kTableSizeSteps) {
    if (m >= opts.table_size) break;
    if (m > opts.min_table_size && m >= wanted) return m;
  }
  return opts.table_size;
}

namespace {

// Endpoints that take new connections: the ready ones, or the serving-terminating ones when none
// is ready (the dataplane's fallback), or none.
size_t taking_new(const std::vector<dp::Backend>& backends) noexcept {
  size_t ready = 0, terminating = 0;
  for (const dp::Backend& b : backends) {
    if (b.weight == 0) continue;
    (b.state == dp::BackendState::ready ? ready : terminating) += 1;
  }
  return ready > 0 ? ready : terminating;
}

// A decimal annotation value in 1..kMaxConnectionRate.
std::optional<uint32_t> limit_value(std::string_view text) {
  if (text.empty() || text.size() > 9) return std::nullopt;
  uint32_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + uint32_t(c - '0');
  }
  if (v == 0 || v > dp::kMaxConnectionRate) return std::nullopt;
  return v;
}

// The Service's SYN flood guard from Magline's annotation: "auto" (the default), "on" or "off"
// (full-NAT: the SYN proxy; DNAT, externalTrafficPolicy: Local: SYNs without state). Another
// value is noted and "auto" used.
dp::SynProxy syn_proxy_of(const K8sService& svc, std::vector<std::string>& notes) {
  const auto& ann = svc.meta.annotations;
  const auto it = ann.find(std::string(kSynProxyAnnotation));
  if (it == ann.end()) return dp::SynProxy::automatic;
  for (const dp::SynProxy p : {dp::SynProxy::automatic, dp::SynProxy::on, dp::SynProxy::off}) {
    if (it->second == dp::to_string(p)) return p;
  }
  notes.push_back("annotation " + it->first + ": \"" + it->second +
                  "\" is not auto, on or off: \"auto\" used");
  return dp::SynProxy::automatic;
}

// The Service's new-connection limit from Magline's annotations: none without a rate. A value
// that is not a number in range is noted and the Service programmed without a limit (as a bad
// annotation never stops kube-proxy programming a Service).
dp::ConnectionLimit connection_limit_of(const K8sService& svc, std::vector<std::string>& notes) {
  const auto& ann = svc.meta.annotations;
  const auto rate = ann.find(std::string(kNewConnectionRateAnnotation));
  const auto burst = ann.find(std::string(kNewConnectionBurstAnnotation));
  auto bad = [&](const std::string& key, const std::string& value) {
    notes.push_back("annotation " + key + ": \"" + value + "\" is not a number in 1.." +
                    std::to_string(dp::kMaxConnectionRate) + ": no new-connection limit");
  };
  dp::ConnectionLimit limit;
  if (rate == ann.end()) {
    if (burst != ann.end()) {
      notes.push_back("annotation " + burst->first + " without " +
                      std::string(kNewConnectionRateAnnotation) + ": no new-connection limit");
    }
    return limit;
  }
  const auto r = limit_value(rate->second);
  if (!r) {
    bad(rate->first, rate->second);
    return limit;
  }
  if (burst != ann.end()) {
    const auto b = limit_value(burst->second);
    if (!b) {
      bad(burst->first, burst->second);
      return limit;
    }
    limit.burst = *b;
  }
  limit.rate = *r;
  return limit;
}

}  // namespace

namespace {

constexpr uint32_t kDefaultAffinityTimeout = 10800;  // DefaultClientIPServiceAffinitySeconds

std::string_view family_name(dp::Family f) {
  return f == dp::Family::v4 ? "IPv4" : "IPv6";
}

std::optional<dp::Protocol> protocol_of(const std::string& p) {
  if (p == "TCP") return dp::Protocol::tcp;
  if (p == "UDP") return dp::Protocol::udp;
  if (p == "SCTP") return dp::Protocol::sctp;
  return std::nullopt;
}

std::string trim(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r\n\v\f";
  const size_t b = s.find_first_not_of(kSpace);
  if (b == std::string_view::npos) return {};
  const size_t e = s.find_last_not_of(kSpace);
  return std::string(s.substr(b, e - b + 1));
}

bool contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

bool has_family(const std::vector<dp::Family>& fs, dp::Family f) {
  return std::find(fs.begin(), fs.end(), f) != fs.end();
}

// kube-proxy's note-free part is service_families(); a Service without a cluster IP is worth a
// note, as its families are then guessed.
std::vector<dp::Family> families_of(const K8sService& svc, std::vector<std::string>& notes) {
  std::vector<dp::Family> out = service_families(svc);
  bool has_cluster_ip = false;
  for (const std::string& ip : svc.cluster_ips)
    has_cluster_ip = has_cluster_ip || dp::parse_ip(ip);
  if (!has_cluster_ip) {
    const bool v4 = has_family(out, dp::Family::v4), v6 = has_family(out, dp::Family::v6);
    notes.push_back(std::string("no cluster IP: programmed for ") + (v4 ? "IPv4" : "") +
                    (v4 && v6 ? " and " : "") + (v6 ? "IPv6" : "") +
                    (svc.ip_families.empty() ? " (the default)" : " (spec.ipFamilies)"));
  }
  return out;
}

// The Service-wide inputs of every port: addresses per family, source ranges, mode.
struct Addresses {
  std::vector<dp::IpAddr> lb;        // VIP-mode ingress IPs
  std::vector<dp::IpAddr> external;  // spec.externalIPs
  std::vector<dp::IpAddr> nodes;     // opts.node_addresses
  std::vector<dp::IpPrefix> ranges;  // loadBalancerSourceRanges
};

void add_unique(std::vector<dp::IpAddr>& v, const dp::IpAddr& a) {
  if (std::find(v.begin(), v.end(), a) == v.end()) v.push_back(a);
}

std::map<dp::Family, Addresses> addresses_of(const K8sService& svc,
                                             const std::vector<dp::Family>& families,
                                             const TranslateOptions& opts,
                                             std::vector<std::string>& notes) {
  std::map<dp::Family, Addresses> by;
  for (dp::Family f : families) {
    by.try_emplace(f);
  }
  auto place = [&](const dp::IpAddr& a, std::string_view what) -> Addresses* {
    if (!has_family(families, a.family)) {
      notes.push_back(std::string(what) + " " + dp::to_string(a) + " is " +
                      std::string(family_name(a.family)) + " but the Service has no " +
                      std::string(family_name(a.family)) + " cluster IP: ignored (kube-proxy)");
      return nullptr;
    }
    return &by[a.family];
  };

  // LoadBalancer ingress: only VIP-mode IPs (k8s-api.md §6.2, serviceport.go: ip == "" or
  // !IsVIPMode -> skipped). Ingress is only valid on type LoadBalancer (§6.2 validation). The
  // LoadBalancer IPs of a Service of another class belong to that implementation (§7): its
  // NodePorts and externalIPs are still this proxy's, as kube-proxy never reads the class.
  const std::optional<std::string> other = other_class(svc, opts);
  if (svc.type == "LoadBalancer" && other) {
    if (!svc.ingress.empty()) notes.push_back(*other + ": its LoadBalancer IPs are not programmed");
  } else if (svc.type == "LoadBalancer") {
    for (const LoadBalancerIngress& in : svc.ingress) {
      if (in.ip.empty()) {
        if (!in.hostname.empty()) {
          notes.push_back("ingress hostname " + in.hostname + " has no IP: nothing to program");
        }
        continue;
      }
      if (in.ip_mode && *in.ip_mode != "VIP") {
        notes.push_back("ingress IP " + in.ip + " has ipMode " + *in.ip_mode +
                        ": not programmed (only VIP mode is, as in kube-proxy)");
        continue;
      }
      const auto a = dp::parse_ip(in.ip);
      if (!a) {
        notes.push_back("ingress IP \"" + in.ip + "\" does not parse: ignored");
        continue;
      }
      if (Addresses* to = place(*a, "ingress IP")) add_unique(to->lb, *a);
    }
  } else if (!svc.ingress.empty()) {
    notes.push_back("status.loadBalancer.ingress on a Service of type " + svc.type +
                    ": ignored (the API server only allows it on LoadBalancer)");
  }

  for (const std::string& text : svc.external_ips) {
    const auto a = dp::parse_ip(trim(text));
    if (!a) {
      notes.push_back("externalIP \"" + text + "\" does not parse: ignored");
      continue;
    }
    if (Addresses* to = place(*a, "externalIP")) add_unique(to->external, *a);
  }

  for (const dp::IpAddr& a : opts.node_addresses) {
    if (auto it = by.find(a.family); it != by.end()) add_unique(it->second.nodes, a);
  }

  // Source ranges: trimmed (kube-proxy: "validation mistakenly allows whitespace padding"),
  // host bits cleared as Go's ParseCIDR does, filtered by family (§10). Only type LoadBalancer
  // has LB IPs to check them on.
  if (svc.type == "LoadBalancer") {
    for (const std::string& text : svc.load_balancer_source_ranges) {
      const auto p = dp::parse_prefix(trim(text), dp::HostBits::clear);
      if (!p) {
        notes.push_back("loadBalancerSourceRange \"" + text + "\" does not parse: ignored");
        continue;
      }
      if (auto it = by.find(p->addr.family); it != by.end()) {
        if (std::find(it->second.ranges.begin(), it->second.ranges.end(), *p) ==
            it->second.ranges.end()) {
          it->second.ranges.push_back(*p);
        }
      }
    }
  }
  return by;
}

// One endpoint as kube-proxy sees it (endpointslicecache.go newEndpointSliceInfo).
struct Candidate {
  dp::IpAddr addr;
  uint16_t port = 0;
  bool ready = false;
  bool serving_terminating = false;
  bool local = false;
  const Endpoint* ep = nullptr;

  // Which of two copies of one ip:port to keep (§9.1: kube-proxy prefers the local copy; then
  // the ready one, then the serving-terminating one). Equal: the first seen.
  std::tuple<bool, bool, bool> rank() const { return {local, ready, serving_terminating}; }
};

// Endpoints of `slices` (already the Service's, sorted by name) for one Service port and family,
// deduplicated by ip:port.
std::vector<Candidate> candidates_of(const ServicePort& sp, dp::Family family,
                                     const std::vector<const K8sEndpointSlice*>& slices,
                                     const TranslateOptions& opts, bool& port_matched,
                                     std::vector<std::string>& notes) {
  std::vector<Candidate> out;
  std::map<std::pair<dp::IpAddr, uint16_t>, size_t> index;
  for (const K8sEndpointSlice* slice : slices) {
    const dp::Family sf = slice->address_type == "IPv6" ? dp::Family::v6 : dp::Family::v4;
    const bool ip_slice = slice->address_type == "IPv4" || slice->address_type == "IPv6";
    // The port is matched by name and protocol (§9.1); a nil name or a nil/0 port is skipped.
    std::optional<int32_t> number;
    for (const EndpointPort& p : slice->ports) {
      if (!p.name || *p.name != sp.name || p.protocol != sp.protocol) continue;
      if (!p.port || *p.port == 0) continue;
      number = *p.port;
      break;
    }
    if (!number) continue;
    port_matched = true;
    if (!ip_slice || sf != family) continue;
    if (*number < 1 || *number > 65535) {
      notes.push_back("EndpointSlice " + slice->meta.name + ": port " + std::to_string(*number) +
                      " is out of range: ignored");
      continue;
    }
    for (const Endpoint& ep : slice->endpoints) {
      if (ep.addresses.empty()) continue;  // only addresses[0] has meaning (§9.1)
      const auto a = dp::parse_ip(ep.addresses[0]);
      if (!a) {
        notes.push_back("EndpointSlice " + slice->meta.name + ": address \"" + ep.addresses[0] +
                        "\" does not parse: ignored");
        continue;
      }
      // kube-proxy drops endpoints of the wrong family (addEndpoints).
      if (a->family != family) continue;
      Candidate c;
      c.addr = *a;
      c.port = uint16_t(*number);
      const bool serving = ep.conditions.serving.value_or(true);
      const bool terminating = ep.conditions.terminating.value_or(false);
      // publishNotReadyAddresses is the EndpointSlice controller's (it writes ready=true for
      // such endpoints); kube-proxy reads the conditions as they are.
      c.ready = ep.conditions.ready.value_or(true);
      c.serving_terminating = serving && terminating;
      c.local = opts.node_name.empty() || ep.node_name == opts.node_name;
      c.ep = &ep;
      const auto key = std::make_pair(c.addr, c.port);
      if (auto it = index.find(key); it != index.end()) {
        if (c.rank() > out[it->second].rank()) out[it->second] = c;
        continue;
      }
      index.emplace(key, out.size());
      out.push_back(c);
    }
  }
  return out;
}

enum class TopologyMode : uint8_t { none, node, zone };

// kube-proxy's topologyModeFromHints (§9.6), over ready endpoints only.
TopologyMode topology_mode(const std::vector<Candidate>& cs, const TranslateOptions& opts) {
  bool all_node = true, for_node = false, all_zone = true, for_zone = false;
  for (const Candidate& c : cs) {
    if (!c.ready) continue;
    if (c.ep->hint_nodes.empty()) {
      all_node = false;
    } else if (!opts.node_name.empty() && contains(c.ep->hint_nodes, opts.node_name)) {
      for_node = true;
    }
    if (c.ep->hint_zones.empty()) {
      all_zone = false;
    } else if (!opts.zone.empty() && contains(c.ep->hint_zones, opts.zone)) {
      for_zone = true;
    }
  }
  if (all_node && for_node) return TopologyMode::node;
  if (all_zone && for_zone) return TopologyMode::zone;
  return TopologyMode::none;
}

struct BackendSet {
  std::vector<dp::Backend> backends;
  dp::NoBackends no_backends = dp::NoBackends::reject;
};

// Which endpoints carry traffic (§9.3 CategorizeEndpoints, §9.4). Ready endpoints are "ready";
// serving-and-terminating ones are "terminating", always: the data plane gives them new
// connections only when no backend is ready (KEP-1669) and keeps their established ones.
BackendSet choose(const std::vector<Candidate>& cs, bool local_policy,
                  const TranslateOptions& opts) {
  BackendSet out;
  const bool has_any = std::any_of(
      cs.begin(), cs.end(), [](const Candidate& c) { return c.ready || c.serving_terminating; });
  TopologyMode mode = local_policy ? TopologyMode::none : topology_mode(cs, opts);
  for (const Candidate& c : cs) {
    if (!c.ready && !c.serving_terminating) continue;
    if (local_policy && !c.local) continue;
    if (c.ready && mode == TopologyMode::node && !contains(c.ep->hint_nodes, opts.node_name)) {
      continue;
    }
    if (c.ready && mode == TopologyMode::zone && !contains(c.ep->hint_zones, opts.zone)) continue;
    dp::Backend b;
    b.addr = c.addr;
    b.port = c.port;
    b.weight = 1;
    b.state = c.ready ? dp::BackendState::ready : dp::BackendState::terminating;
    out.backends.push_back(b);
  }
  // No endpoint at all: reject. Endpoints, but none local under Local: drop (§9.4).
  if (local_policy && has_any && out.backends.empty()) out.no_backends = dp::NoBackends::drop;
  std::sort(out.backends.begin(), out.backends.end(),
            [](const dp::Backend& a, const dp::Backend& b) {
              return std::tie(a.addr, a.port) < std::tie(b.addr, b.port);
            });
  return out;
}

std::string service_name(const K8sService& svc, const ServicePort& sp, dp::Protocol proto,
                         dp::Family family) {
  return svc.meta.key() + ":" + (sp.name.empty() ? std::to_string(sp.port) : sp.name) + "/" +
         std::string(dp::to_string(proto)) + "/" + (family == dp::Family::v4 ? "v4" : "v6");
}

}  // namespace

std::vector<dp::Family> service_families(const K8sService& svc) {
  std::vector<dp::Family> out;
  auto add = [&out](dp::Family f) {
    if (std::find(out.begin(), out.end(), f) == out.end()) out.push_back(f);
  };
  for (const std::string& ip : svc.cluster_ips) {
    if (const auto a = dp::parse_ip(ip)) add(a->family);
  }
  if (out.empty()) {
    for (const std::string& f : svc.ip_families) {
      if (f == "IPv4") add(dp::Family::v4);
      if (f == "IPv6") add(dp::Family::v6);
    }
  }
  if (out.empty()) add(dp::Family::v4);
  return out;
}

std::string_view to_string(Targets t) noexcept {
  return t == Targets::nodes ? "nodes" : "pods";
}

std::string_view to_string(FrontendGroup g) noexcept {
  switch (g) {
    case FrontendGroup::all:
      return "all";
    case FrontendGroup::load_balancer:
      return "load_balancer";
    case FrontendGroup::open:
      return "open";
  }
  return "?";
}

std::optional<std::string> other_class(const K8sService& svc, const TranslateOptions& opts) {
  const std::string cls = svc.load_balancer_class.value_or("");
  if (cls == opts.load_balancer_class) return std::nullopt;
  if (cls.empty() && opts.default_load_balancer_class) return std::nullopt;
  if (cls.empty()) return "no loadBalancerClass (want " + opts.load_balancer_class + ")";
  return "loadBalancerClass " + cls + " belongs to another implementation" +
         (opts.load_balancer_class.empty() ? std::string()
                                           : " (want " + opts.load_balancer_class + ")");
}

std::optional<std::string> skip_reason(const K8sService& svc, const TranslateOptions& opts) {
  // §8: the proxy-name label hands a Service to another proxy; Magline claims only its own.
  const auto label = svc.meta.labels.find(std::string(kProxyNameLabel));
  if (opts.proxy_name.empty() && label != svc.meta.labels.end()) {
    return "label " + std::string(kProxyNameLabel) + "=" + label->second +
           ": another service proxy implements it";
  }
  if (!opts.proxy_name.empty() &&
      (label == svc.meta.labels.end() || label->second != opts.proxy_name)) {
    return label == svc.meta.labels.end()
               ? "no label " + std::string(kProxyNameLabel) + "=" + opts.proxy_name
               : "label " + std::string(kProxyNameLabel) + "=" + label->second + ", not " +
                     opts.proxy_name;
  }
  // §8, ShouldSkipService: ExternalName is DNS only; headless has nothing to proxy.
  if (svc.type == "ExternalName") return std::string("type ExternalName: DNS only, never proxied");
  if (!svc.cluster_ips.empty() && svc.cluster_ips[0] == "None") {
    return std::string("headless (clusterIP None): nothing to proxy");
  }
  if (svc.type == "ClusterIP") {
    // An edge load balancer: cluster IPs are kube-proxy's; externalIPs are reached from outside.
    if (svc.external_ips.empty()) {
      return std::string("type ClusterIP without externalIPs: reached only inside the cluster");
    }
    return std::nullopt;
  }
  if (svc.type != "NodePort" && svc.type != "LoadBalancer") {
    return "unknown type \"" + svc.type + "\"";
  }
  return std::nullopt;
}

bool watched(const std::map<std::string, std::string>& labels, const TranslateOptions& opts) {
  if (labels.count(std::string(kHeadlessLabel))) return false;
  const auto name = labels.find(std::string(kProxyNameLabel));
  return opts.proxy_name.empty() ? name == labels.end()
                                 : name != labels.end() && name->second == opts.proxy_name;
}

std::string watch_selector(const TranslateOptions& opts) {
  std::string s = opts.proxy_name.empty() ? "!" + std::string(kProxyNameLabel)
                                          : std::string(kProxyNameLabel) + "=" + opts.proxy_name;
  return s + ",!" + std::string(kHeadlessLabel);
}

Translation translate(const K8sService& svc, const std::vector<const K8sEndpointSlice*>& slices,
                      const std::vector<const K8sNode*>& nodes, const TranslateOptions& opts) {
  Translation tr;
  tr.skipped = skip_reason(svc, opts);
  if (tr.skipped) return tr;

  const std::vector<dp::Family> families = families_of(svc, tr.notes);
  std::map<dp::Family, Addresses> addrs = addresses_of(svc, families, opts, tr.notes);

  // This Service's slices, in name order (the result must not depend on the caller's order).
  // With node targets the slices are not the backends: none is read.
  const bool node_targets = opts.targets == Targets::nodes;
  std::vector<const K8sEndpointSlice*> own;
  const std::string key = svc.meta.key();
  for (const K8sEndpointSlice* s : slices) {
    if (s && !node_targets && s->service_key() == key) own.push_back(s);
  }
  std::sort(own.begin(), own.end(), [](const K8sEndpointSlice* a, const K8sEndpointSlice* b) {
    return a->meta.name < b->meta.name;
  });
  for (const K8sEndpointSlice* s : own) {
    if (s->address_type != "IPv4" && s->address_type != "IPv6") {
      tr.notes.push_back("EndpointSlice " + s->meta.name + " has addressType " +
                         (s->address_type.empty() ? "\"\"" : s->address_type) + ": ignored");
    }
    for (const EndpointPort& p : s->ports) {
      if (!p.name) {
        tr.notes.push_back("EndpointSlice " + s->meta.name +
                           ": a port without a name is ignored (kube-proxy)");
      }
    }
  }
  if (own.empty() && !node_targets) {
    tr.notes.push_back("no EndpointSlices: new connections are rejected");
  }

  const bool local_policy = svc.external_traffic_policy == "Local";
  const dp::ForwardMode mode = local_policy ? dp::ForwardMode::dnat : dp::ForwardMode::full_nat;
  dp::SessionAffinity affinity;
  if (svc.session_affinity == "ClientIP") {
    affinity.client_ip = true;
    affinity.timeout_s = svc.affinity_timeout_s.value_or(kDefaultAffinityTimeout);
    if (affinity.timeout_s == 0) {
      tr.notes.push_back("sessionAffinityConfig.clientIP.timeoutSeconds 0 is invalid: 10800 used");
      affinity.timeout_s = kDefaultAffinityTimeout;
    }
  }

  const dp::ConnectionLimit limit = connection_limit_of(svc, tr.notes);
  const dp::SynProxy syn_proxy = syn_proxy_of(svc, tr.notes);

  std::vector<dp::Service> out;
  std::vector<ServiceOrigin> origins;
  std::map<dp::Family, std::vector<dp::Backend>> node_sets;  // node targets: by family
  for (const ServicePort& sp : svc.ports) {
    const std::string port_label = sp.name.empty() ? std::to_string(sp.port) : sp.name;
    const auto proto = protocol_of(sp.protocol);
    if (!proto) {
      tr.notes.push_back("port " + port_label + ": protocol " + sp.protocol +
                         " is not TCP, UDP or SCTP: skipped");
      continue;
    }
    if (sp.port == 0) {
      tr.notes.push_back("port " + port_label + ": no port number: skipped");
      continue;
    }
    if (node_targets && sp.node_port == 0) {
      // The nodes are reached only through a nodePort (allocateLoadBalancerNodePorts false,
      // or type ClusterIP with externalIPs, has none).
      tr.notes.push_back("port " + port_label + ": no nodePort, which node targets need: skipped");
      continue;
    }
    bool port_matched = false;
    for (dp::Family family : families) {
      const Addresses& a = addrs[family];
      std::vector<dp::Frontend> lb, open;
      // One (address, port) once: the first kind wins, LB IPs before NodePorts and externalIPs.
      auto add = [&](std::vector<dp::Frontend>& to, const dp::IpAddr& ip, uint16_t port,
                     dp::FrontendKind kind) {
        for (const auto* v : {&lb, &open}) {
          for (const dp::Frontend& f : *v) {
            if (f.addr == ip && f.port == port) {
              tr.notes.push_back("port " + port_label + ": " + dp::backend_id(ip, port) + " as " +
                                 std::string(dp::to_string(kind)) + " is already a " +
                                 std::string(dp::to_string(f.kind)) + " frontend");
              return;
            }
          }
        }
        to.push_back({ip, port, *proto, kind});
      };
      for (const dp::IpAddr& ip : a.lb)
        add(lb, ip, sp.port, dp::FrontendKind::load_balancer);
      if (sp.node_port != 0) {
        for (const dp::IpAddr& ip : a.nodes)
          add(open, ip, sp.node_port, dp::FrontendKind::node_port);
      }
      for (const dp::IpAddr& ip : a.external)
        add(open, ip, sp.port, dp::FrontendKind::external_ip);

      BackendSet set;
      if (node_targets) {
        // Per family, not per port: the notes once (the first port), the nodes the same.
        auto memo = node_sets.find(family);
        if (memo == node_sets.end()) {
          memo = node_sets.emplace(family, node_backends(svc, family, nodes, opts, tr.notes)).first;
        }
        set.backends = memo->second;
        for (dp::Backend& b : set.backends)
          b.port = sp.node_port;
      } else {
        set = choose(candidates_of(sp, family, own, opts, port_matched, tr.notes), local_policy,
                     opts);
      }
      dp::Service s;
      s.name = service_name(svc, sp, *proto, family);
      s.backends = std::move(set.backends);
      s.mode = mode;
      s.affinity = affinity;
      s.no_backends = set.no_backends;
      s.table_size = table_size_for(taking_new(s.backends), opts);
      s.new_connections = limit;
      s.syn_proxy = syn_proxy;
      ServiceOrigin origin{sp.name, sp.port, sp.protocol, family, FrontendGroup::all};
      // Source ranges guard LB IPs only (§10); a dp::Service applies its ranges to all its
      // frontends, so the others go to a second service. No range of this family: no check
      // (kube-proxy filters the list by family and checks only when it is not empty).
      if (!a.ranges.empty()) {
        if (!open.empty()) {
          dp::Service o = s;
          o.name += kOpenSuffix;
          o.frontends = std::move(open);
          ServiceOrigin oo = origin;
          oo.group = FrontendGroup::open;
          out.push_back(std::move(o));
          origins.push_back(std::move(oo));
        }
        s.frontends = std::move(lb);
        s.source_ranges = a.ranges;
        origin.group = FrontendGroup::load_balancer;
      } else {
        s.frontends = std::move(lb);
        s.frontends.insert(s.frontends.end(), open.begin(), open.end());
      }
      out.push_back(std::move(s));
      origins.push_back(std::move(origin));
    }
    if (!own.empty() && !port_matched) {
      tr.notes.push_back("port " + port_label + "/" + sp.protocol +
                         ": no EndpointSlice port has this name and protocol: no backends");
    }
  }

  std::vector<size_t> order(out.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(),
            [&](size_t x, size_t y) { return out[x].name < out[y].name; });
  for (size_t i : order) {
    tr.services.push_back(std::move(out[i]));
    tr.origins.push_back(std::move(origins[i]));
  }
  return tr;
}

}  // namespace magline::k8s
