// Node targets (docs/k8s.md, "Node targets"): a Service's backends are the cluster's nodes at
// its nodePort, for clusters whose pod addresses the edge cannot route. Which nodes are
// eligible, what each Service's node backends are under externalTrafficPolicy Cluster and
// Local (with the prober's verdicts, failing open), and which (Service, node) pairs the prober
// must check.
//
// Pure C++: no network, no DPDK. Pure functions of their arguments: any thread.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/k8s/objects.hpp"
#include "control/k8s/translate.hpp"
#include "dataplane/addr.hpp"
#include "dataplane/service.hpp"

namespace magline::k8s {

// The well-known label that takes a node out of every external load balancer's targets
// (k8s.io/api core/v1 well_known_labels.go); its value does not matter, only its presence.
inline constexpr std::string_view kExcludeFromLoadBalancersLabel =
    "node.kubernetes.io/exclude-from-external-load-balancers";

// The node's first InternalIP of `family` that parses, or nothing.
std::optional<dp::IpAddr> internal_ip(const K8sNode& node, dp::Family family);

// Why `node` takes no traffic of `family` (not Ready, excluded by the label, no InternalIP of
// the family), or nothing when it is eligible.
std::optional<std::string> ineligible(const K8sNode& node, dp::Family family);

// What of a Node its eligibility and its backends depend on: two versions with equal views
// give equal translations, so the kubelet's status updates that change nothing else (images,
// resources, heartbeats of other conditions) re-translate nothing.
struct NodeTargetView {
  std::optional<dp::IpAddr> v4;  // the backend address per family, when eligible for it
  std::optional<dp::IpAddr> v6;
  friend bool operator==(const NodeTargetView&, const NodeTargetView&) = default;
};
NodeTargetView target_view(const K8sNode& node);

// Whether the prober checks this Service: node targets, externalTrafficPolicy Local, a
// healthCheckNodePort, and not skipped (skip_reason).
bool probed(const K8sService& svc, const TranslateOptions& opts);

// The Service's node backends of `family`: each eligible node's InternalIP of the family,
// sorted by address, with port 0 (the same nodes serve every Service port: the caller sets
// each port's nodePort). Under externalTrafficPolicy Cluster all
// are ready. Under Local (probed()), a node whose verdict is healthy is ready and the others
// are terminating: they keep their established connections, take no new ones, and take them
// all again when no node is healthy (the data plane's fallback; failing open, as cloud load
// balancers do). A note says when no node is eligible, or when the family fails open.
std::vector<dp::Backend> node_backends(const K8sService& svc, dp::Family family,
                                       const std::vector<const K8sNode*>& nodes,
                                       const TranslateOptions& opts,
                                       std::vector<std::string>& notes);

// One health check the prober makes: GET http://addr:port/ (any path; kube-proxy answers 200
// when the node has a local ready endpoint of the Service, 503 otherwise; k8s-api.md §9.5).
struct ProbeTarget {
  std::string service;  // "namespace/name"
  std::string node;     // the Node's name
  dp::IpAddr addr;      // its first InternalIP of the Service's primary family (else the other)
  uint16_t port = 0;    // spec.healthCheckNodePort
  friend bool operator==(const ProbeTarget&, const ProbeTarget&) = default;
  friend auto operator<=>(const ProbeTarget&, const ProbeTarget&) = default;
};

// One target per (probed Service, node eligible for one of the Service's families), sorted by
// service, then node. `services` and `nodes` in any order.
std::vector<ProbeTarget> probe_targets(const std::vector<const K8sService*>& services,
                                       const std::vector<const K8sNode*>& nodes,
                                       const TranslateOptions& opts);

}  // namespace magline::k8s
