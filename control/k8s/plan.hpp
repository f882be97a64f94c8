// The forwarding plan: what a set of Services and EndpointSlices (and Nodes, with node targets)
// becomes, with why each skipped
// Service is skipped and what the user should know. `magline plan` prints it from a
// `kubectl get services,endpointslices -A -o json` document; the daemon's /state prints it from
// the objects it holds. The JSON schema is in docs/k8s.md ("The plan").
//
// Pure functions of their arguments: any thread, no I/O.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "control/k8s/objects.hpp"
#include "control/k8s/translate.hpp"
#include "dataplane/result.hpp"
#include "dataplane/service.hpp"

namespace magline::k8s {

// An object that could not be read. `object` is "namespace/name" when known, otherwise where
// it was found ("items[3]").
struct PlanError {
  std::string object;
  std::string error;
};

// The objects of a List document, decoded.
struct K8sObjects {
  std::vector<K8sService> services;
  std::vector<K8sEndpointSlice> slices;
  std::vector<K8sNode> nodes;
  std::vector<PlanError> errors;     // items that did not decode (the rest still count)
  std::vector<std::string> ignored;  // items of other kinds ("items[0]: Deployment default/x")
};

// Reads a `{"kind":"List","items":[...]}` document (items carry their kind), a ServiceList,
// EndpointSliceList or NodeList (items may omit it), or a single Service, EndpointSlice or Node.
// Bad items are reported in errors and skipped; an Error only when the document is none of these.
Result<K8sObjects> parse_list(const nlohmann::json& doc);

struct PlanService {
  std::string ns;  // the Kubernetes Service it comes from
  std::string name;
  ServiceOrigin origin;
  dp::Service service;
};

struct PlanSkip {
  std::string service;  // "namespace/name"
  std::string reason;
  // A Service no edge load balancer serves, whatever its configuration (ExternalName,
  // headless, ClusterIP without externalIPs): not a problem for `plan --strict`.
  bool by_design = false;
};

struct PlanNote {
  std::string service;  // "namespace/name"; empty for an EndpointSlice that names no Service
  std::string note;
};

// The address the provider would give a LoadBalancer Service of Magline's class, or why none.
struct PlanAllocation {
  std::string service;            // "namespace/name"
  std::vector<dp::IpAddr> addrs;  // empty when refused
  std::string pool;
  std::string why;                // how it was chosen ("kept", "requested", ...), or the refusal
  std::string refused;            // empty, or the refusal's name (ipam.hpp, Refusal)
};

// A Node as node targets see it (only with node targets).
struct PlanNode {
  std::string name;
  std::vector<dp::IpAddr> targets;    // its backend address per family it is eligible for
  std::vector<std::string> excluded;  // why not, per family it is not ("IPv6: not Ready")
};

struct Plan {
  TranslateOptions options;
  std::vector<PlanNode> nodes;  // with node targets: every Node, sorted by name
  // With address pools configured: what the provider would write, and each pool's use.
  std::vector<PlanAllocation> allocations;  // sorted by service
  std::vector<Ipam::Usage> pools;
  std::vector<PlanService> services;  // sorted by service.name
  std::vector<PlanSkip> skipped;      // sorted by service
  std::vector<PlanNote> notes;        // sorted by service, then in the order translate() gave
  std::vector<PlanError> errors;      // as given by the caller (parse_list, or the watcher)
  std::vector<std::string> ignored;
};

// Translates every Service with its slices (joined by the kubernetes.io/service-name label), or
// with node targets the Nodes. Input order does not matter. O(services + slices) translations,
// each as translate().
Plan build_plan(const std::vector<K8sService>& services,
                const std::vector<K8sEndpointSlice>& slices, const std::vector<K8sNode>& nodes,
                const TranslateOptions& opts);

// The provider's decisions over these Services (those of Magline's class, of type
// LoadBalancer, not being deleted; given in name order): first every address their status
// already holds is taken back (a restart changes nothing), then each gets its assignment.
void plan_allocations(const std::vector<const K8sService*>& services, Plan& plan);

// build_plan over parse_list's result, carrying its errors and ignored items along.
Plan build_plan(const K8sObjects& objects, const TranslateOptions& opts);

// What would not be served as asked, one line each ("shop/web: skipped: ..."): Services
// skipped for a reason other than by_design, LoadBalancer Services the provider refuses an
// address, notes, and items that did not decode. Empty when everything is served; what
// `magline plan --strict` fails on. In the plan's order.
std::vector<std::string> plan_problems(const Plan& plan);

nlohmann::ordered_json plan_to_json(const Plan& plan);
// plan_to_json, indented by 2, with a final newline.
std::string plan_json(const Plan& plan);

}  // namespace magline::k8s
