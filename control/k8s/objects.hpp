// Kubernetes Services, EndpointSlices and Nodes as Magline reads them: only the fields that decide
// forwarding (../../docs/k8s.md), decoded tolerantly (unknown fields and unknown enum strings are
// kept or ignored, never fatal), with Kubernetes' nil defaults left visible as std::optional so
// the translation applies them exactly where kube-proxy does.
//
// Pure C++: no network, no DPDK. Decoding is the only place JSON is read.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "dataplane/result.hpp"

namespace magline::k8s {

struct ObjectMeta {
  std::string ns;    // metadata.namespace; "default" when absent (a manifest, as kubectl does)
  std::string name;  // metadata.name
  std::string uid;
  std::string resource_version;  // opaque: compared for equality only
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  bool deleting = false;  // metadata.deletionTimestamp is set
  std::vector<std::string> finalizers;  // metadata.finalizers, in order

  // "namespace/name": the key objects are held and joined by.
  std::string key() const { return ns + "/" + name; }
};

struct ServicePort {
  std::string name;             // may be empty for a Service with one port
  std::string protocol = "TCP";  // TCP, UDP, SCTP (others kept as given, skipped later)
  uint16_t port = 0;
  uint16_t node_port = 0;  // 0: none allocated
};

struct LoadBalancerIngress {
  std::string ip;        // empty: hostname-only ingress
  std::string hostname;
  std::optional<std::string> ip_mode;  // "VIP" or "Proxy"; unset means VIP
};

struct K8sService {
  ObjectMeta meta;
  std::string type = "ClusterIP";  // ClusterIP, NodePort, LoadBalancer, ExternalName
  std::vector<std::string> cluster_ips;  // clusterIPs (or clusterIP); "None" marks headless
  std::vector<ServicePort> ports;
  std::vector<std::string> external_ips;
  std::string external_traffic_policy;  // "Cluster", "Local" or empty (unset)
  std::string internal_traffic_policy;
  std::string session_affinity;  // "None", "ClientIP" or empty
  std::optional<uint32_t> affinity_timeout_s;  // sessionAffinityConfig.clientIP.timeoutSeconds
  std::vector<std::string> load_balancer_source_ranges;  // as given (may carry whitespace)
  std::optional<std::string> load_balancer_class;
  std::string load_balancer_ip;  // spec.loadBalancerIP (deprecated, still used); empty: unset
  std::optional<bool> allocate_load_balancer_node_ports;
  std::vector<std::string> ip_families;  // "IPv4", "IPv6"
  std::optional<std::string> traffic_distribution;
  bool publish_not_ready_addresses = false;
  uint16_t health_check_node_port = 0;
  bool has_selector = false;
  std::vector<LoadBalancerIngress> ingress;  // status.loadBalancer.ingress
};

struct EndpointConditions {
  std::optional<bool> ready;        // nil: true
  std::optional<bool> serving;      // nil: true
  std::optional<bool> terminating;  // nil: false
};

struct Endpoint {
  std::vector<std::string> addresses;  // only addresses[0] has meaning
  EndpointConditions conditions;
  std::string node_name;
  std::string zone;
  std::vector<std::string> hint_zones;  // hints.forZones[].name
  std::vector<std::string> hint_nodes;  // hints.forNodes[].name
};

struct EndpointPort {
  std::optional<std::string> name;  // nil is not the same as "": kube-proxy skips nil
  std::string protocol = "TCP";
  std::optional<int32_t> port;  // nil or 0: skipped
};

struct K8sEndpointSlice {
  ObjectMeta meta;
  std::string address_type;  // IPv4, IPv6, FQDN
  std::vector<Endpoint> endpoints;
  std::vector<EndpointPort> ports;

  // The kubernetes.io/service-name label, or empty: a slice without it belongs to no Service.
  std::string service_name() const;
  // "namespace/service-name", or empty.
  std::string service_key() const;
};

// One of status.addresses[] of a Node.
struct NodeAddress {
  std::string type;     // InternalIP, ExternalIP, Hostname, InternalDNS, ExternalDNS
  std::string address;  // as given; an InternalIP that does not parse is skipped later
};

// A Node, for node targets (docs/k8s.md, "Node targets"): its name, labels, addresses and
// whether the kubelet reports it Ready. Cluster-scoped: meta.ns is empty, meta.key() is "/name"
// and name() is the key Nodes are held by.
struct K8sNode {
  ObjectMeta meta;
  std::vector<NodeAddress> addresses;  // status.addresses, in order
  // status.conditions[type=Ready].status == "True"; false when the condition is absent,
  // "False" or "Unknown" (the node controller sets Unknown when the kubelet stops reporting).
  bool ready = false;

  const std::string& name() const noexcept { return meta.name; }
};

// Decoders. Errors name what is missing or malformed (e.g. "metadata.name: missing"); only
// objects that cannot be identified or whose fields have the wrong JSON type are refused.
Result<K8sService> decode_service(const nlohmann::json& j);
Result<K8sEndpointSlice> decode_endpoint_slice(const nlohmann::json& j);
Result<K8sNode> decode_node(const nlohmann::json& j);

}  // namespace magline::k8s
