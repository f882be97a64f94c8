// Service + its EndpointSlices -> what Magline forwards, with Kubernetes' semantics (kube-proxy's
// view: ../../docs/k8s.md has every rule and where it comes from). Pure and deterministic: the
// same objects always give the same services, in the same order.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/k8s/ipam.hpp"
#include "control/k8s/objects.hpp"
#include "dataplane/addr.hpp"
#include "dataplane/service.hpp"

namespace magline::k8s {

// A new-connection rate limit for each frontend of a Service (dataplane/connection_limit.hpp):
// connections a second, and the burst (default: the rate). Decimal, 1..100000000.
inline constexpr std::string_view kNewConnectionRateAnnotation = "magline.io/new-connection-rate";
inline constexpr std::string_view kNewConnectionBurstAnnotation =
    "magline.io/new-connection-burst";
// Full-NAT's SYN proxy for the Service's TCP ports (docs/config.md#syn_proxy): auto (the
// default), on or off.
inline constexpr std::string_view kSynProxyAnnotation = "magline.io/syn-proxy";

// What a Service's backends are (docs/k8s.md, "Node targets").
enum class Targets : uint8_t {
  pods,   // its endpoints (EndpointSlices): the edge routes to pod addresses
  nodes,  // the eligible nodes' InternalIPs at the port's nodePort (any CNI)
};
std::string_view to_string(Targets t) noexcept;

// A node's health verdict for a Service (its healthCheckNodePort probed on that node): true
// healthy, false failing, nullopt not probed yet. `service` is "namespace/name", `node` the
// Node's name. Called on the thread that translates; it must not block.
using NodeVerdict =
    std::function<std::optional<bool>(std::string_view service, std::string_view node)>;

struct TranslateOptions {
  // NodePort frontends go on these addresses (per family). Empty: no NodePort frontends.
  std::vector<dp::IpAddr> node_addresses;
  // Only Services with label service.kubernetes.io/service-proxy-name=<proxy_name> when set;
  // when empty, only Services without the label.
  std::string proxy_name;
  // Only Services with spec.loadBalancerClass == this when set; when empty, only classless ones.
  std::string load_balancer_class;
  // With load_balancer_class set, classless Services too: Magline as the cluster's default
  // implementation (k8s-api.md §7, the cloud provider's rule for classless Services).
  bool default_load_balancer_class = false;
  // The node Magline runs as, for externalTrafficPolicy Local and topology hints: with
  // node_name empty every endpoint counts as local (an edge node in front of the cluster).
  std::string node_name;
  std::string zone;  // topology.kubernetes.io/zone of that node; empty: hints ignored
  // Maglev table size M. With min_table_size 0 every Service's table has table_size slots.
  // Otherwise each Service gets the smallest size, from min_table_size up through the primes
  // below (then table_size), that gives at least 100 slots per endpoint taking new
  // connections (the Maglev paper's M > 100 N, for a balance within 1%), table_size at most.
  uint32_t table_size = dp::kDefaultMaglevSize;
  uint32_t min_table_size = 0;
  // The provider's address pools (control/k8s/ipam.hpp): with some, `magline plan` also shows
  // the address each LoadBalancer Service would get.
  std::vector<AddressPool> pools;
  // Pods (EndpointSlices) or nodes (Nodes and nodePorts) as backends.
  Targets targets = Targets::pods;
  // With node targets, for Services with externalTrafficPolicy Local: the prober's verdicts.
  // Empty: every node is "not probed yet".
  NodeVerdict node_verdict;
};

// The primes table sizes are taken from between min_table_size and table_size: each about
// twice the one before, so that a Service crosses from one to the next rarely.
inline constexpr uint32_t kTableSizeSteps[] = {1021,   2039,   4093,    8191,    16381,
                                               32749,  65521,  131071,  262139,  524287,
                                               1048573, 2097143, 4194301, 8388593, 16777213};

// The table size for a Service with `endpoints` endpoints taking new connections (above).
uint32_t table_size_for(size_t endpoints, const TranslateOptions& opts) noexcept;

// The label that hands a Service to an alternative proxy (k8s-api.md §8).
inline constexpr std::string_view kProxyNameLabel = "service.kubernetes.io/service-proxy-name";
// The label the EndpointSlice controller puts on the slices of headless Services.
inline constexpr std::string_view kHeadlessLabel = "service.kubernetes.io/headless";

// Whether an object (Service or EndpointSlice) with these labels is one the proxy watches at
// all: kube-proxy's selector `!service-proxy-name,!headless` (§8), turned around when Magline
// claims Services by name (`service-proxy-name=NAME,!headless`). What it does not match the
// watcher never receives; `magline plan` drops it the same way.
bool watched(const std::map<std::string, std::string>& labels, const TranslateOptions& opts);
// The same as a label selector for the API server.
std::string watch_selector(const TranslateOptions& opts);
// Appended to a service's name for the frontends that loadBalancerSourceRanges do not cover
// (NodePorts and externalIPs) when the ranges split a Service port in two (docs/k8s.md).
inline constexpr std::string_view kOpenSuffix = "/open";

// The families a Service is programmed for, its primary one first. kube-proxy skips a family
// the Service has no cluster IP of (serviceToServiceMap: GetClusterIPByFamily); a manifest that
// never went through the API server has none, so then spec.ipFamilies, and IPv4 when that is
// empty too.
std::vector<dp::Family> service_families(const K8sService& svc);

// Why a Service yields nothing; empty when it is handled.
std::optional<std::string> skip_reason(const K8sService& svc, const TranslateOptions& opts);
// Why a Service's LoadBalancer IPs belong to another implementation (§7: with a class configured
// only that class is Magline's; without, only classless Services, as MetalLB's
// filterByLoadBalancerClass), or nothing when they are Magline's: those it programs and, as the
// provider, assigns.
std::optional<std::string> other_class(const K8sService& svc, const TranslateOptions& opts);

// Which of a Service port's frontends a dp::Service holds.
enum class FrontendGroup : uint8_t {
  all,            // every frontend (no source ranges for this family)
  load_balancer,  // only the LoadBalancer IPs, with the source ranges
  open,           // the NodePorts and externalIPs of a port whose LB IPs are range-checked
};
std::string_view to_string(FrontendGroup g) noexcept;

// Where a translated dp::Service comes from: for the plan and for messages.
struct ServiceOrigin {
  std::string port_name;  // spec.ports[].name; may be empty
  uint16_t port = 0;      // spec.ports[].port
  std::string protocol;   // "TCP", "UDP" or "SCTP"
  dp::Family family = dp::Family::v4;
  FrontendGroup group = FrontendGroup::all;
};

struct Translation {
  // One dp::Service per (service port, family, frontend group); names are
  // "<ns>/<name>:<port name or number>/<protocol>/<v4|v6>" (plus a suffix when split, see
  // docs/k8s.md). Sorted by name.
  std::vector<dp::Service> services;
  std::vector<ServiceOrigin> origins;  // origins[i] is where services[i] comes from
  // Things the user should know (a source range that does not parse, a port without a slice
  // port, an ingress skipped for ipMode Proxy...). Never an error: the rest still forwards.
  std::vector<std::string> notes;
  std::optional<std::string> skipped;  // skip_reason(), when the whole Service is skipped
};

// `slices` are the Service's EndpointSlices (any order; those of other Services are ignored);
// with pod targets they are the backends, with node targets `nodes` (every Node, any order) are.
Translation translate(const K8sService& svc, const std::vector<const K8sEndpointSlice*>& slices,
                      const std::vector<const K8sNode*>& nodes, const TranslateOptions& opts);

}  // namespace magline::k8s
