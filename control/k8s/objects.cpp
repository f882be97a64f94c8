#include "control/k8s/objects.hpp"

#include <limits>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "config/json_reader.hpp"

namespace magline::k8s {

namespace {

using cfg::Node;
using cfg::Object;

// `kind`, when present, must name what is being decoded (list items carry none).
void check_kind(const Object& o, std::string_view want) {
  const auto node = o.find("kind");
  const auto kind = node ? node->string() : std::nullopt;
  if (kind && !kind->empty() && *kind != want) {
    node->fail("expected " + std::string(want) + ", got \"" + *kind + "\"");
  }
}

std::string string_or(const Object& o, std::string_view key, std::string fallback = {}) {
  return o.string(key).value_or(std::move(fallback));
}

// A member that is an array, as its elements (none when absent).
std::vector<Node> elements(const Object& o, std::string_view key) {
  const auto n = o.find(key);
  return n ? n->array() : std::vector<Node>{};
}

ObjectMeta decode_meta(const Object& o) {
  ObjectMeta out;
  const auto m = o.find("metadata");
  if (!m) {
    o.fail_key("metadata", "missing");
    return out;
  }
  const Object meta = m->object();
  const auto name = meta.string("name");
  if (!name || name->empty()) meta.fail_key("name", "missing");
  out.name = name.value_or("");
  // A namespaced object always has one on the server; a manifest without it lands in the
  // context's namespace, "default" unless told otherwise (kubectl).
  out.ns = string_or(meta, "namespace");
  if (out.ns.empty()) out.ns = "default";
  out.uid = string_or(meta, "uid");
  out.resource_version = string_or(meta, "resourceVersion");
  out.labels = meta.string_map("labels");
  out.annotations = meta.string_map("annotations");
  out.deleting = meta.string("deletionTimestamp").has_value();
  out.finalizers = meta.strings("finalizers");
  return out;
}

ServicePort decode_service_port(const Node& n) {
  const Object o = n.object();
  ServicePort p;
  p.name = string_or(o, "name");
  p.protocol = string_or(o, "protocol", "TCP");
  if (p.protocol.empty()) p.protocol = "TCP";
  p.port = uint16_t(o.signed_integer("port", 0, 65535).value_or(0));
  p.node_port = uint16_t(o.signed_integer("nodePort", 0, 65535).value_or(0));
  return p;
}

LoadBalancerIngress decode_ingress(const Node& n) {
  const Object o = n.object();
  LoadBalancerIngress in;
  in.ip = string_or(o, "ip");
  in.hostname = string_or(o, "hostname");
  in.ip_mode = o.string("ipMode");
  return in;
}

void decode_spec(const Object& spec, K8sService& s) {
  s.type = string_or(spec, "type", "ClusterIP");
  if (s.type.empty()) s.type = "ClusterIP";
  s.cluster_ips = spec.strings("clusterIPs");
  if (s.cluster_ips.empty()) {
    // Servers before dual-stack (and hand-written objects) only have the singular field.
    const std::string ip = string_or(spec, "clusterIP");
    if (!ip.empty()) s.cluster_ips.push_back(ip);
  }
  for (const Node& p : elements(spec, "ports"))
    s.ports.push_back(decode_service_port(p));
  s.external_ips = spec.strings("externalIPs");
  s.external_traffic_policy = string_or(spec, "externalTrafficPolicy");
  s.internal_traffic_policy = string_or(spec, "internalTrafficPolicy");
  s.session_affinity = string_or(spec, "sessionAffinity");
  if (const auto cfg = spec.find("sessionAffinityConfig")) {
    if (const auto cip = cfg->object().find("clientIP")) {
      if (const auto t = cip->object().signed_integer("timeoutSeconds", 0,
                                                      std::numeric_limits<int32_t>::max())) {
        s.affinity_timeout_s = uint32_t(*t);
      }
    }
  }
  s.load_balancer_source_ranges = spec.strings("loadBalancerSourceRanges");
  s.load_balancer_class = spec.string("loadBalancerClass");
  s.load_balancer_ip = string_or(spec, "loadBalancerIP");
  s.allocate_load_balancer_node_ports = spec.boolean("allocateLoadBalancerNodePorts");
  s.ip_families = spec.strings("ipFamilies");
  s.traffic_distribution = spec.string("trafficDistribution");
  s.publish_not_ready_addresses = spec.boolean("publishNotReadyAddresses").value_or(false);
  s.health_check_node_port =
      uint16_t(spec.signed_integer("healthCheckNodePort", 0, 65535).value_or(0));
  if (const auto sel = spec.find("selector")) s.has_selector = sel->object().size() != 0;
}

K8sService service_of(const Node& n) {
  const Object o = n.object();
  check_kind(o, "Service");
  K8sService s;
  s.meta = decode_meta(o);
  if (const auto spec = o.find("spec")) decode_spec(spec->object(), s);
  if (const auto status = o.find("status")) {
    if (const auto lb = status->object().find("loadBalancer")) {
      for (const Node& i : elements(lb->object(), "ingress"))
        s.ingress.push_back(decode_ingress(i));
    }
  }
  return s;
}

std::vector<std::string> hint_names(const Object& hints, std::string_view key) {
  std::vector<std::string> out;
  for (const Node& h : elements(hints, key)) {
    const std::string name = string_or(h.object(), "name");
    if (!name.empty()) out.push_back(name);
  }
  return out;
}

Endpoint decode_endpoint(const Node& n) {
  const Object o = n.object();
  Endpoint e;
  e.addresses = o.strings("addresses");
  if (const auto c = o.find("conditions")) {
    const Object conditions = c->object();
    e.conditions.ready = conditions.boolean("ready");
    e.conditions.serving = conditions.boolean("serving");
    e.conditions.terminating = conditions.boolean("terminating");
  }
  e.node_name = string_or(o, "nodeName");
  e.zone = string_or(o, "zone");
  if (const auto h = o.find("hints")) {
    const Object hints = h->object();
    e.hint_zones = hint_names(hints, "forZones");
    e.hint_nodes = hint_names(hints, "forNodes");
  }
  return e;
}

EndpointPort decode_endpoint_port(const Node& n) {
  const Object o = n.object();
  EndpointPort p;
  p.name = o.string("name");
  p.protocol = string_or(o, "protocol", "TCP");
  if (p.protocol.empty()) p.protocol = "TCP";
  if (const auto port = o.signed_integer("port", std::numeric_limits<int32_t>::min(),
                                         std::numeric_limits<int32_t>::max())) {
    p.port = int32_t(*port);
  }
  return p;
}

K8sEndpointSlice slice_of(const Node& n) {
  const Object o = n.object();
  check_kind(o, "EndpointSlice");
  K8sEndpointSlice s;
  s.meta = decode_meta(o);
  s.address_type = string_or(o, "addressType");
  for (const Node& e : elements(o, "endpoints"))
    s.endpoints.push_back(decode_endpoint(e));
  for (const Node& p : elements(o, "ports"))
    s.ports.push_back(decode_endpoint_port(p));
  return s;
}

K8sNode node_of(const Node& n) {
  const Object o = n.object();
  check_kind(o, "Node");
  K8sNode node;
  node.meta = decode_meta(o);
  node.meta.ns.clear();  // cluster-scoped: decode_meta's "default" does not apply
  if (const auto status = o.find("status")) {
    const Object st = status->object();
    for (const Node& a : elements(st, "addresses")) {
      const Object addr = a.object();
      node.addresses.push_back({string_or(addr, "type"), string_or(addr, "address")});
    }
    for (const Node& c : elements(st, "conditions")) {
      const Object cond = c.object();
      if (string_or(cond, "type") == "Ready") node.ready = string_or(cond, "status") == "True";
    }
  }
  return node;
}

// Reads `j` through `decode` with Kubernetes' conventions; the first malformed field is the
// error, as `PATH: what`.
template <typename F>
auto decoded(F&& decode, const nlohmann::json& j)
    -> Result<decltype(decode(std::declval<Node>()))> {
  cfg::Errors errors;
  auto value = decode(Node(j, "", errors, cfg::kKubernetesDialect));
  if (errors.failed()) return errors.error();
  return value;
}

}  // namespace

std::string K8sEndpointSlice::service_name() const {
  const auto it = meta.labels.find("kubernetes.io/service-name");
  return it == meta.labels.end() ? std::string() : it->second;
}

std::string K8sEndpointSlice::service_key() const {
  const std::string svc = service_name();
  return svc.empty() ? std::string() : meta.ns + "/" + svc;
}

Result<K8sService> decode_service(const nlohmann::json& j) {
  return decoded(service_of, j);
}

Result<K8sEndpointSlice> decode_endpoint_slice(const nlohmann::json& j) {
  return decoded(slice_of, j);
}

Result<K8sNode> decode_node(const nlohmann::json& j) {
  return decoded(node_of, j);
}

}  // namespace magline::k8s
