#include "control/k8s/objects.hpp"

#include <limits>
#include <string_view>

#include <nlohmann/json.hpp>

namespace magline::k8s {

namespace {

using Json = nlohmann::json;

// A field of the wrong JSON type or out of range: thrown inside this file only and turned
// into an Error by the decoders, so that no exception leaves them.
struct Malformed {
  std::string path;
  std::string what;
};

std::string at(std::string_view parent, std::string_view key) {
  return parent.empty() ? std::string(key) : std::string(parent) + "." + std::string(key);
}

std::string at(std::string_view parent, size_t index) {
  return std::string(parent) + "[" + std::to_string(index) + "]";
}

std::string type_of(const Json& j) {
  return j.type_name();
}

// The member `key` of `obj`, or nullptr when absent or null (Kubernetes writes nil as null or
// leaves it out; both mean the same).
const Json* member(const Json& obj, std::string_view key) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

// An object, or throws. A null or absent parent is handled by the caller (member()).
const Json& object(const Json& j, const std::string& path) {
  if (!j.is_object()) throw Malformed{path, "expected an object, got " + type_of(j)};
  return j;
}

const Json& array(const Json& j, const std::string& path) {
  if (!j.is_array()) throw Malformed{path, "expected an array, got " + type_of(j)};
  return j;
}

std::optional<std::string> opt_string(const Json& obj, std::string_view key,
                                      std::string_view parent) {
  const Json* v = member(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_string()) throw Malformed{at(parent, key), "expected a string, got " + type_of(*v)};
  return v->get<std::string>();
}

std::string string_or(const Json& obj, std::string_view key, std::string_view parent,
                      std::string fallback = {}) {
  return opt_string(obj, key, parent).value_or(std::move(fallback));
}

std::optional<bool> opt_bool(const Json& obj, std::string_view key, std::string_view parent) {
  const Json* v = member(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) throw Malformed{at(parent, key), "expected a boolean, got " + type_of(*v)};
  return v->get<bool>();
}

// An integer in [lo, hi]. Go's decoder refuses 80.0 for an int32 field, and so does this.
std::optional<int64_t> opt_int(const Json& obj, std::string_view key, std::string_view parent,
                               int64_t lo, int64_t hi) {
  const Json* v = member(obj, key);
  if (!v) return std::nullopt;
  const std::string path = at(parent, key);
  const std::string range = " in " + std::to_string(lo) + ".." + std::to_string(hi);
  if (!v->is_number_integer()) {
    throw Malformed{path, "expected an integer" + range + ", got " + v->dump()};
  }
  if (v->is_number_unsigned()) {
    const uint64_t u = v->get<uint64_t>();
    if (u > uint64_t(hi))
      throw Malformed{path, "expected an integer" + range + ", got " + v->dump()};
    return int64_t(u);
  }
  const int64_t i = v->get<int64_t>();
  if (i < lo || i > hi) throw Malformed{path, "expected an integer" + range + ", got " + v->dump()};
  return i;
}

std::vector<std::string> strings(const Json& obj, std::string_view key, std::string_view parent) {
  std::vector<std::string> out;
  const Json* v = member(obj, key);
  if (!v) return out;
  const std::string path = at(parent, key);
  const Json& a = array(*v, path);
  out.reserve(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    if (!a[i].is_string()) {
      throw Malformed{at(path, i), "expected a string, got " + type_of(a[i])};
    }
    out.push_back(a[i].get<std::string>());
  }
  return out;
}

std::map<std::string, std::string> string_map(const Json& obj, std::string_view key,
                                              std::string_view parent) {
  std::map<std::string, std::string> out;
  const Json* v = member(obj, key);
  if (!v) return out;
  const std::string path = at(parent, key);
  for (const auto& [k, value] : object(*v, path).items()) {
    if (!value.is_string()) {
      throw Malformed{at(path, k), "expected a string, got " + type_of(value)};
    }
    out.emplace(k, value.get<std::string>());
  }
  return out;
}

// `kind`, when present, must name what is being decoded (list items carry none).
void check_kind(const Json& j, std::string_view want) {
  const auto kind = opt_string(j, "kind", "");
  if (kind && !kind->empty() && *kind != want) {
    throw Malformed{"kind", "expected " + std::string(want) + ", got \"" + *kind + "\""};
  }
}

ObjectMeta decode_meta(const Json& j) {
  const Json* m = member(j, "metadata");
  if (!m) throw Malformed{"metadata", "missing"};
  const Json& meta = object(*m, "metadata");
  ObjectMeta out;
  const auto name = opt_string(meta, "name", "metadata");
  if (!name || name->empty()) throw Malformed{"metadata.name", "missing"};
  out.name = *name;
  // A namespaced object always has one on the server; a manifest without it lands in the
  // context's namespace, "default" unless told otherwise (kubectl).
  out.ns = string_or(meta, "namespace", "metadata");
  if (out.ns.empty()) out.ns = "default";
  out.uid = string_or(meta, "uid", "metadata");
  out.resource_version = string_or(meta, "resourceVersion", "metadata");
  out.labels = string_map(meta, "labels", "metadata");
  out.annotations = string_map(meta, "annotations", "metadata");
  out.deleting = opt_string(meta, "deletionTimestamp", "metadata").has_value();
  return out;
}

ServicePort decode_service_port(const Json& j, const std::string& path) {
  object(j, path);
  ServicePort p;
  p.name = string_or(j, "name", path);
  p.protocol = string_or(j, "protocol", path, "TCP");
  if (p.protocol.empty()) p.protocol = "TCP";
  p.port = uint16_t(opt_int(j, "port", path, 0, 65535).value_or(0));
  p.node_port = uint16_t(opt_int(j, "nodePort", path, 0, 65535).value_or(0));
  return p;
}

LoadBalancerIngress decode_ingress(const Json& j, const std::string& path) {
  object(j, path);
  LoadBalancerIngress in;
  in.ip = string_or(j, "ip", path);
  in.hostname = string_or(j, "hostname", path);
  in.ip_mode = opt_string(j, "ipMode", path);
  return in;
}

K8sService service_of(const Json& j) {
  object(j, "(top level)");
  check_kind(j, "Service");
  K8sService s;
  s.meta = decode_meta(j);

  if (const Json* sp = member(j, "spec")) {
    const Json& spec = object(*sp, "spec");
    s.type = string_or(spec, "type", "spec", "ClusterIP");
    if (s.type.empty()) s.type = "ClusterIP";
    s.cluster_ips = strings(spec, "clusterIPs", "spec");
    if (s.cluster_ips.empty()) {
      // Servers before dual-stack (and hand-written objects) only have the singular field.
      const std::string ip = string_or(spec, "clusterIP", "spec");
      if (!ip.empty()) s.cluster_ips.push_back(ip);
    }
    if (const Json* ports = member(spec, "ports")) {
      const Json& a = array(*ports, "spec.ports");
      for (size_t i = 0; i < a.size(); ++i) {
        s.ports.push_back(decode_service_port(a[i], at("spec.ports", i)));
      }
    }
    s.external_ips = strings(spec, "externalIPs", "spec");
    s.external_traffic_policy = string_or(spec, "externalTrafficPolicy", "spec");
    s.internal_traffic_policy = string_or(spec, "internalTrafficPolicy", "spec");
    s.session_affinity = string_or(spec, "sessionAffinity", "spec");
    if (const Json* cfg = member(spec, "sessionAffinityConfig")) {
      object(*cfg, "spec.sessionAffinityConfig");
      if (const Json* cip = member(*cfg, "clientIP")) {
        const std::string path = "spec.sessionAffinityConfig.clientIP";
        object(*cip, path);
        if (const auto t =
                opt_int(*cip, "timeoutSeconds", path, 0, std::numeric_limits<int32_t>::max())) {
          s.affinity_timeout_s = uint32_t(*t);
        }
      }
    }
    s.load_balancer_source_ranges = strings(spec, "loadBalancerSourceRanges", "spec");
    s.load_balancer_class = opt_string(spec, "loadBalancerClass", "spec");
    s.allocate_load_balancer_node_ports = opt_bool(spec, "allocateLoadBalancerNodePorts", "spec");
    s.ip_families = strings(spec, "ipFamilies", "spec");
    s.traffic_distribution = opt_string(spec, "trafficDistribution", "spec");
    s.publish_not_ready_addresses =
        opt_bool(spec, "publishNotReadyAddresses", "spec").value_or(false);
    s.health_check_node_port =
        uint16_t(opt_int(spec, "healthCheckNodePort", "spec", 0, 65535).value_or(0));
    if (const Json* sel = member(spec, "selector")) {
      s.has_selector = !object(*sel, "spec.selector").empty();
    }
  }

  if (const Json* st = member(j, "status")) {
    const Json& status = object(*st, "status");
    if (const Json* lb = member(status, "loadBalancer")) {
      const Json& lbo = object(*lb, "status.loadBalancer");
      if (const Json* ing = member(lbo, "ingress")) {
        const std::string path = "status.loadBalancer.ingress";
        const Json& a = array(*ing, path);
        for (size_t i = 0; i < a.size(); ++i)
          s.ingress.push_back(decode_ingress(a[i], at(path, i)));
      }
    }
  }
  return s;
}

std::vector<std::string> hint_names(const Json& hints, std::string_view key,
                                    const std::string& parent) {
  std::vector<std::string> out;
  const Json* v = member(hints, key);
  if (!v) return out;
  const std::string path = at(parent, key);
  const Json& a = array(*v, path);
  for (size_t i = 0; i < a.size(); ++i) {
    const std::string p = at(path, i);
    object(a[i], p);
    const std::string name = string_or(a[i], "name", p);
    if (!name.empty()) out.push_back(name);
  }
  return out;
}

Endpoint decode_endpoint(const Json& j, const std::string& path) {
  object(j, path);
  Endpoint e;
  e.addresses = strings(j, "addresses", path);
  if (const Json* c = member(j, "conditions")) {
    const std::string p = at(path, "conditions");
    object(*c, p);
    e.conditions.ready = opt_bool(*c, "ready", p);
    e.conditions.serving = opt_bool(*c, "serving", p);
    e.conditions.terminating = opt_bool(*c, "terminating", p);
  }
  e.node_name = string_or(j, "nodeName", path);
  e.zone = string_or(j, "zone", path);
  if (const Json* h = member(j, "hints")) {
    const std::string p = at(path, "hints");
    object(*h, p);
    e.hint_zones = hint_names(*h, "forZones", p);
    e.hint_nodes = hint_names(*h, "forNodes", p);
  }
  return e;
}

EndpointPort decode_endpoint_port(const Json& j, const std::string& path) {
  object(j, path);
  EndpointPort p;
  p.name = opt_string(j, "name", path);
  p.protocol = string_or(j, "protocol", path, "TCP");
  if (p.protocol.empty()) p.protocol = "TCP";
  if (const auto port = opt_int(j, "port", path, std::numeric_limits<int32_t>::min(),
                                std::numeric_limits<int32_t>::max())) {
    p.port = int32_t(*port);
  }
  return p;
}

K8sEndpointSlice slice_of(const Json& j) {
  object(j, "(top level)");
  check_kind(j, "EndpointSlice");
  K8sEndpointSlice s;
  s.meta = decode_meta(j);
  s.address_type = string_or(j, "addressType", "");
  if (const Json* eps = member(j, "endpoints")) {
    const Json& a = array(*eps, "endpoints");
    s.endpoints.reserve(a.size());
    for (size_t i = 0; i < a.size(); ++i)
      s.endpoints.push_back(decode_endpoint(a[i], at("endpoints", i)));
  }
  if (const Json* ports = member(j, "ports")) {
    const Json& a = array(*ports, "ports");
    for (size_t i = 0; i < a.size(); ++i)
      s.ports.push_back(decode_endpoint_port(a[i], at("ports", i)));
  }
  return s;
}

template <typename F>
auto guarded(F&& decode, const Json& j) -> Result<decltype(decode(j))> {
  try {
    return decode(j);
  } catch (const Malformed& m) {
    return Error{m.path + ": " + m.what};
  } catch (const nlohmann::json::exception& e) {
    // Not expected (every access above checks the type first), but never let one escape.
    return Error{std::string("cannot decode: ") + e.what()};
  }
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
  return guarded(service_of, j);
}

Result<K8sEndpointSlice> decode_endpoint_slice(const nlohmann::json& j) {
  return guarded(slice_of, j);
}

}  // namespace magline::k8s
