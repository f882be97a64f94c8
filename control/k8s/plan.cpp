#include "control/k8s/plan.hpp"

#include <algorithm>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "control/k8s/node_targets.hpp"

namespace magline::k8s {

namespace {

using Json = nlohmann::json;
using OJson = nlohmann::ordered_json;

// "namespace/name" of a raw item, or empty.
std::string key_of(const Json& item) {
  if (!item.is_object()) return {};
  const auto meta = item.find("metadata");
  if (meta == item.end() || !meta->is_object()) return {};
  const auto name = meta->find("name");
  if (name == meta->end() || !name->is_string()) return {};
  const auto ns = meta->find("namespace");
  const std::string n = ns != meta->end() && ns->is_string() ? ns->get<std::string>() : "";
  return (n.empty() ? "default" : n) + "/" + name->get<std::string>();
}

std::string string_field(const Json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// Names already read, per kind: a second object of one name is ignored.
struct Seen {
  std::set<std::string> services, slices, nodes;
};

void add_item(const Json& item, const std::string& implied_kind, const std::string& where,
              K8sObjects& out, Seen& seen) {
  const std::string key = key_of(item);
  std::string kind = item.is_object() ? string_field(item, "kind") : std::string();
  if (kind.empty()) kind = implied_kind;
  if (kind.empty()) {
    out.errors.push_back({key.empty() ? where : key, where + ": no kind"});
    return;
  }
  if (kind == "Service") {
    auto svc = decode_service(item);
    if (!svc) {
      out.errors.push_back({key.empty() ? where : key, where + ": " + svc.error().message});
    } else if (!seen.services.insert(svc->meta.key()).second) {
      out.errors.push_back({svc->meta.key(), where + ": a second Service with this name: ignored"});
    } else {
      out.services.push_back(std::move(svc).value());
    }
  } else if (kind == "EndpointSlice") {
    auto slice = decode_endpoint_slice(item);
    if (!slice) {
      out.errors.push_back({key.empty() ? where : key, where + ": " + slice.error().message});
    } else if (!seen.slices.insert(slice->meta.key()).second) {
      out.errors.push_back(
          {slice->meta.key(), where + ": a second EndpointSlice with this name: ignored"});
    } else {
      out.slices.push_back(std::move(slice).value());
    }
  } else if (kind == "Node") {
    auto node = decode_node(item);
    if (!node) {
      out.errors.push_back({key.empty() ? where : key, where + ": " + node.error().message});
    } else if (!seen.nodes.insert(node->name()).second) {
      out.errors.push_back({node->name(), where + ": a second Node with this name: ignored"});
    } else {
      out.nodes.push_back(std::move(node).value());
    }
  } else {
    out.ignored.push_back(where + ": " + kind + (key.empty() ? "" : " " + key));
  }
}

OJson frontend_json(const dp::Frontend& f) {
  return {{"address", dp::to_string(f.addr)},
          {"port", f.port},
          {"protocol", dp::to_string(f.proto)},
          {"kind", dp::to_string(f.kind)}};
}

OJson backend_json(const dp::Backend& b) {
  return {{"address", dp::to_string(b.addr)},
          {"port", b.port},
          {"state", dp::to_string(b.state)},
          {"weight", b.weight}};
}

OJson service_json(const PlanService& p) {
  const dp::Service& s = p.service;
  OJson j;
  j["name"] = s.name;
  j["source"] = {{"namespace", p.ns},
                 {"name", p.name},
                 {"port_name", p.origin.port_name},
                 {"port", p.origin.port},
                 {"protocol", p.origin.protocol},
                 {"family", p.origin.family == dp::Family::v4 ? "IPv4" : "IPv6"},
                 {"frontends", to_string(p.origin.group)}};
  j["mode"] = dp::to_string(s.mode);
  OJson fs = OJson::array();
  for (const dp::Frontend& f : s.frontends)
    fs.push_back(frontend_json(f));
  j["frontends"] = std::move(fs);
  OJson bs = OJson::array();
  for (const dp::Backend& b : s.backends)
    bs.push_back(backend_json(b));
  j["backends"] = std::move(bs);
  j["affinity"] = s.affinity.client_ip
                      ? OJson{{"client_ip", true}, {"timeout_s", s.affinity.timeout_s}}
                      : OJson(nullptr);
  OJson ranges = OJson::array();
  for (const dp::IpPrefix& r : s.source_ranges)
    ranges.push_back(dp::to_string(r));
  j["source_ranges"] = std::move(ranges);
  j["no_backends"] = dp::to_string(s.no_backends);
  j["table_size"] = s.table_size;
  if (s.new_connections.limited()) {  // only when annotated: most Services have none
    j["new_connection_limit"] = {{"rate", s.new_connections.rate},
                                 {"burst", s.new_connections.burst != 0 ? s.new_connections.burst
                                                                        : s.new_connections.rate}};
  }
  if (s.syn_proxy != dp::SynProxy::automatic) j["syn_proxy"] = dp::to_string(s.syn_proxy);
  return j;
}

// As translate's skip reasons (docs/k8s.md §8), the Services that are nobody's mistake: an
// edge load balancer never serves them, so a cluster full of them is as it should be.
bool never_served(const K8sService& svc) {
  if (svc.type == "ExternalName") return true;
  if (!svc.cluster_ips.empty() && svc.cluster_ips[0] == "None") return true;
  return svc.type == "ClusterIP" && svc.external_ips.empty();
}

}  // namespace

Result<K8sObjects> parse_list(const nlohmann::json& doc) {
  if (!doc.is_object()) {
    return Error{std::string("expected a Kubernetes object or List, got JSON ") + doc.type_name()};
  }
  K8sObjects out;
  Seen seen;
  const std::string kind = string_field(doc, "kind");
  const auto items = doc.find("items");
  if (items != doc.end() && (kind.empty() || kind == "List" || kind.ends_with("List"))) {
    if (items->is_null()) return out;  // an empty list as Go writes it
    if (!items->is_array()) return Error{"items: expected an array"};
    std::string implied;
    if (kind == "ServiceList") implied = "Service";
    if (kind == "EndpointSliceList") implied = "EndpointSlice";
    if (kind == "NodeList") implied = "Node";
    if (!implied.empty() || kind == "List" || kind.empty()) {
      for (size_t i = 0; i < items->size(); ++i) {
        add_item((*items)[i], implied, "items[" + std::to_string(i) + "]", out, seen);
      }
      return out;
    }
    return Error{"a " + kind + " holds no Services, EndpointSlices or Nodes"};
  }
  if (kind == "Service" || kind == "EndpointSlice" || kind == "Node") {
    add_item(doc, kind, "(top level)", out, seen);
    return out;
  }
  return Error{kind.empty()
                   ? std::string("expected a List (\"items\") or an object with a kind")
                   : "expected a List, a Service, an EndpointSlice or a Node, got kind " + kind};
}

Plan build_plan(const std::vector<K8sService>& services,
                const std::vector<K8sEndpointSlice>& slices, const std::vector<K8sNode>& nodes,
                const TranslateOptions& opts) {
  Plan plan;
  plan.options = opts;
  std::vector<const K8sNode*> node_ptrs;
  if (opts.targets == Targets::nodes) {
    for (const K8sNode& n : nodes)
      node_ptrs.push_back(&n);
    std::sort(node_ptrs.begin(), node_ptrs.end(),
              [](const K8sNode* a, const K8sNode* b) { return a->name() < b->name(); });
    for (const K8sNode* n : node_ptrs) {
      PlanNode pn{n->name(), {}, {}};
      for (dp::Family f : {dp::Family::v4, dp::Family::v6}) {
        if (const auto why = ineligible(*n, f)) {
          pn.excluded.push_back(std::string(f == dp::Family::v4 ? "IPv4" : "IPv6") + ": " + *why);
        } else {
          pn.targets.push_back(*internal_ip(*n, f));
        }
      }
      plan.nodes.push_back(std::move(pn));
    }
    if (nodes.empty()) {
      plan.notes.push_back({"",
                            "node targets, and no Nodes in the input (add `kubectl get nodes "
                            "-o json`): no Service has backends"});
    }
  }

  // What the daemon's watch would never receive (k8s-api.md §8) is not in the plan either.
  std::map<std::string, std::vector<const K8sEndpointSlice*>> by_service;
  for (const K8sEndpointSlice& s : slices) {
    if (!watched(s.meta.labels, opts)) continue;
    const std::string key = s.service_key();
    if (key.empty()) {
      plan.notes.push_back({"", "EndpointSlice " + s.meta.key() +
                                    " has no kubernetes.io/service-name label: ignored"});
      continue;
    }
    by_service[key].push_back(&s);
  }

  std::vector<const K8sService*> order;
  for (const K8sService& s : services) {
    if (watched(s.meta.labels, opts)) order.push_back(&s);
  }
  std::sort(order.begin(), order.end(),
            [](const K8sService* a, const K8sService* b) { return a->meta.key() < b->meta.key(); });
  std::set<std::string> known;
  static const std::vector<const K8sEndpointSlice*> kNone;
  for (const K8sService* svc : order) {
    const std::string key = svc->meta.key();
    known.insert(key);
    const auto it = by_service.find(key);
    Translation tr = translate(*svc, it == by_service.end() ? kNone : it->second, node_ptrs, opts);
    if (tr.skipped) plan.skipped.push_back({key, *tr.skipped, never_served(*svc)});
    for (std::string& n : tr.notes)
      plan.notes.push_back({key, std::move(n)});
    for (size_t i = 0; i < tr.services.size(); ++i) {
      plan.services.push_back(
          {svc->meta.ns, svc->meta.name, std::move(tr.origins[i]), std::move(tr.services[i])});
    }
  }
  for (const auto& [key, list] : by_service) {
    if (known.count(key)) continue;
    for (const K8sEndpointSlice* s : list) {
      plan.notes.push_back({key, "EndpointSlice " + s->meta.name + ": no such Service"});
    }
  }
  if (!opts.pools.empty()) plan_allocations(order, plan);
  std::stable_sort(plan.notes.begin(), plan.notes.end(),
                   [](const PlanNote& a, const PlanNote& b) { return a.service < b.service; });
  std::sort(
      plan.services.begin(), plan.services.end(),
      [](const PlanService& a, const PlanService& b) { return a.service.name < b.service.name; });
  return plan;
}

void plan_allocations(const std::vector<const K8sService*>& services, Plan& plan) {
  const TranslateOptions& opts = plan.options;
  Ipam ipam(opts.pools);
  std::vector<std::pair<const K8sService*, std::variant<IpRequest, Refused>>> ours;
  for (const K8sService* svc : services) {
    if (svc->type != "LoadBalancer" || svc->meta.deleting || other_class(*svc, opts)) continue;
    ours.emplace_back(svc, request_of(*svc));
  }
  for (const auto& [svc, req] : ours) {
    const auto* r = std::get_if<IpRequest>(&req);
    if (r == nullptr) continue;
    std::vector<dp::IpAddr> held;
    for (const LoadBalancerIngress& in : svc->ingress) {
      if (in.ip_mode && *in.ip_mode != "VIP") continue;
      if (const auto a = dp::parse_ip(in.ip)) held.push_back(*a);
    }
    if (!held.empty()) ipam.restore(*r, held);
  }
  for (const auto& [svc, req] : ours) {
    PlanAllocation a;
    a.service = svc->meta.key();
    const auto* r = std::get_if<IpRequest>(&req);
    const auto result = r ? ipam.assign(*r) : std::variant<Assignment, Refused>(std::get<Refused>(req));
    if (const auto* got = std::get_if<Assignment>(&result)) {
      a.addrs = got->addrs;
      a.pool = got->pool;
      a.why = got->why;
    } else {
      const Refused& no = std::get<Refused>(result);
      a.refused = std::string(to_string(no.reason));
      a.why = no.why;
    }
    plan.allocations.push_back(std::move(a));
  }
  plan.pools = ipam.usage();
}

Plan build_plan(const K8sObjects& objects, const TranslateOptions& opts) {
  Plan plan = build_plan(objects.services, objects.slices, objects.nodes, opts);
  plan.errors = objects.errors;
  plan.ignored = objects.ignored;
  return plan;
}

std::vector<std::string> plan_problems(const Plan& plan) {
  std::vector<std::string> out;
  for (const PlanError& e : plan.errors)
    out.push_back(e.object + ": cannot read: " + e.error);
  for (const PlanSkip& s : plan.skipped) {
    if (!s.by_design) out.push_back(s.service + ": skipped: " + s.reason);
  }
  for (const PlanAllocation& a : plan.allocations) {
    if (!a.refused.empty()) out.push_back(a.service + ": no address (" + a.refused + "): " + a.why);
  }
  for (const PlanNote& n : plan.notes) {
    out.push_back((n.service.empty() ? std::string("(no Service)") : n.service) + ": " + n.note);
  }
  return out;
}

nlohmann::ordered_json plan_to_json(const Plan& plan) {
  OJson root;
  OJson nodes = OJson::array();
  for (const dp::IpAddr& a : plan.options.node_addresses)
    nodes.push_back(dp::to_string(a));
  root["options"] = {{"node_addresses", std::move(nodes)},
                     {"proxy_name", plan.options.proxy_name},
                     {"load_balancer_class", plan.options.load_balancer_class},
                     {"node_name", plan.options.node_name},
                     {"zone", plan.options.zone},
                     {"table_size", plan.options.table_size},
                     {"min_table_size", plan.options.min_table_size}};
  // Only when set, so that every plan written before it existed reads the same.
  if (plan.options.default_load_balancer_class) {
    root["options"]["default_load_balancer_class"] = true;
  }
  if (plan.options.targets == Targets::nodes) {
    root["options"]["targets"] = to_string(plan.options.targets);
    OJson nodes = OJson::array();
    for (const PlanNode& n : plan.nodes) {
      OJson targets = OJson::array();
      for (const dp::IpAddr& a : n.targets)
        targets.push_back(dp::to_string(a));
      nodes.push_back(
          {{"name", n.name}, {"targets", std::move(targets)}, {"excluded", n.excluded}});
    }
    root["nodes"] = std::move(nodes);
  }
  OJson services = OJson::array();
  for (const PlanService& s : plan.services)
    services.push_back(service_json(s));
  root["services"] = std::move(services);
  OJson skipped = OJson::array();
  for (const PlanSkip& s : plan.skipped) {
    skipped.push_back({{"service", s.service}, {"reason", s.reason}});
  }
  root["skipped"] = std::move(skipped);
  OJson notes = OJson::array();
  for (const PlanNote& n : plan.notes)
    notes.push_back({{"service", n.service}, {"note", n.note}});
  root["notes"] = std::move(notes);
  OJson errors = OJson::array();
  for (const PlanError& e : plan.errors) {
    errors.push_back({{"object", e.object}, {"error", e.error}});
  }
  root["errors"] = std::move(errors);
  root["ignored"] = plan.ignored;
  if (!plan.options.pools.empty()) {
    OJson allocations = OJson::array();
    for (const PlanAllocation& a : plan.allocations) {
      OJson addrs = OJson::array();
      for (const dp::IpAddr& ip : a.addrs) addrs.push_back(dp::to_string(ip));
      OJson j = {{"service", a.service}, {"addresses", std::move(addrs)}};
      if (a.refused.empty()) {
        j["pool"] = a.pool;
      } else {
        j["refused"] = a.refused;
      }
      j["why"] = a.why;
      allocations.push_back(std::move(j));
    }
    root["allocations"] = std::move(allocations);
    OJson pools = OJson::array();
    for (const Ipam::Usage& u : plan.pools) {
      pools.push_back({{"name", u.pool}, {"size", u.size}, {"used", u.used}});
    }
    root["pools"] = std::move(pools);
  }
  return root;
}

std::string plan_json(const Plan& plan) {
  return plan_to_json(plan).dump(2) + "\n";
}

}  // namespace magline::k8s
