// Which nodes are targets follows the cloud-provider service controller's rules for a load
// balancer's node set (docs/k8s.md, "Node targets", says what is followed and what is not).
#include "control/k8s/node_targets.hpp"

#include <algorithm>
#include <map>

namespace magline::k8s {

namespace {

std::string_view family_name(dp::Family f) {
  return f == dp::Family::v4 ? "IPv4" : "IPv6";
}

// Nodes sorted by name, without null pointers: the output never depends on the input order.
std::vector<const K8sNode*> by_name(const std::vector<const K8sNode*>& nodes) {
  std::vector<const K8sNode*> out;
  out.reserve(nodes.size());
  for (const K8sNode* n : nodes) {
    if (n) out.push_back(n);
  }
  std::sort(out.begin(), out.end(),
            [](const K8sNode* a, const K8sNode* b) { return a->name() < b->name(); });
  return out;
}

}  // namespace

std::optional<dp::IpAddr> internal_ip(const K8sNode& node, dp::Family family) {
  for (const NodeAddress& a : node.addresses) {
    if (a.type != "InternalIP") continue;
    const auto ip = dp::parse_ip(a.address);
    if (ip && ip->family == family) return ip;
  }
  return std::nullopt;
}

std::optional<std::string> ineligible(const K8sNode& node, dp::Family family) {
  if (node.meta.labels.count(std::string(kExcludeFromLoadBalancersLabel))) {
    return "labelled " + std::string(kExcludeFromLoadBalancersLabel);
  }
  if (!node.ready) return std::string("not Ready");
  if (!internal_ip(node, family)) {
    return "no " + std::string(family_name(family)) + " InternalIP";
  }
  return std::nullopt;
}

NodeTargetView target_view(const K8sNode& node) {
  NodeTargetView v;
  if (!ineligible(node, dp::Family::v4)) v.v4 = internal_ip(node, dp::Family::v4);
  if (!ineligible(node, dp::Family::v6)) v.v6 = internal_ip(node, dp::Family::v6);
  return v;
}

bool probed(const K8sService& svc, const TranslateOptions& opts) {
  return opts.targets == Targets::nodes && svc.external_traffic_policy == "Local" &&
         svc.health_check_node_port != 0 && !skip_reason(svc, opts);
}

std::vector<dp::Backend> node_backends(const K8sService& svc, dp::Family family,
                                       const std::vector<const K8sNode*>& nodes,
                                       const TranslateOptions& opts,
                                       std::vector<std::string>& notes) {
  const bool local = svc.external_traffic_policy == "Local";
  const bool checked = probed(svc, opts);
  const std::string key = svc.meta.key();
  std::map<dp::IpAddr, dp::Backend> by_addr;  // one backend per address, sorted
  size_t not_probed = 0, failing = 0, healthy = 0;
  for (const K8sNode* n : by_name(nodes)) {
    if (ineligible(*n, family)) continue;
    dp::Backend b;
    b.addr = *internal_ip(*n, family);
    b.weight = 1;
    b.state = dp::BackendState::ready;
    if (checked) {
      const std::optional<bool> verdict =
          opts.node_verdict ? opts.node_verdict(key, n->name()) : std::nullopt;
      if (!verdict) ++not_probed;
      if (verdict && !*verdict) ++failing;
      if (verdict && *verdict) ++healthy;
      // Not healthy: established connections stay, new ones go to the healthy nodes.
      if (!verdict || !*verdict) b.state = dp::BackendState::terminating;
    }
    if (!by_addr.emplace(b.addr, b).second) {
      notes.push_back("Node " + n->name() + " shares its " + std::string(family_name(family)) +
                      " InternalIP " + dp::to_string(b.addr) + " with another node: once");
    }
  }
  std::vector<dp::Backend> out;
  out.reserve(by_addr.size());
  for (auto& [addr, b] : by_addr)
    out.push_back(b);
  const std::string fam(family_name(family));
  if (out.empty()) {
    notes.push_back("node targets: no eligible " + fam +
                    " node (Ready, with an InternalIP of the family, not excluded): no backends");
  } else if (local && !checked) {
    notes.push_back(
        "externalTrafficPolicy Local without a healthCheckNodePort: nothing to "
        "probe, every eligible node takes new connections");
  } else if (checked && healthy == 0) {
    notes.push_back("node targets, " + fam + ": no node passes its health check (" +
                    std::to_string(not_probed) + " not probed yet, " + std::to_string(failing) +
                    " failing): every eligible node takes new connections (fail open)");
  }
  return out;
}

std::vector<ProbeTarget> probe_targets(const std::vector<const K8sService*>& services,
                                       const std::vector<const K8sNode*>& nodes,
                                       const TranslateOptions& opts) {
  std::vector<ProbeTarget> out;
  const std::vector<const K8sNode*> sorted = by_name(nodes);
  for (const K8sService* svc : services) {
    if (!svc || !probed(*svc, opts)) continue;
    const std::vector<dp::Family> families = service_families(*svc);  // primary first
    for (const K8sNode* n : sorted) {
      for (dp::Family f : families) {
        if (ineligible(*n, f)) continue;
        out.push_back(
            {svc->meta.key(), n->name(), *internal_ip(*n, f), svc->health_check_node_port});
        break;
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace magline::k8s
