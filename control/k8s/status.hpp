// What the LoadBalancer provider writes into a Service (k8s-api.md §6), as request bodies: the
// addresses in status.loadBalancer.ingress (ipMode VIP), and Magline's finalizer. Pure: the
// HTTP side is control/k8s_client/service_writer.hpp.
//
// Every body carries the resourceVersion the decision was made from, so the API server refuses
// it (409) if the Service changed meanwhile (§6.1: a merge patch with metadata.resourceVersion
// is conditional): a provider that lost a race re-reads and decides again, never overwrites.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "control/k8s/objects.hpp"
#include "dataplane/addr.hpp"

namespace magline::k8s {

// Magline's finalizer (§6.3: "one of your own"): added when an address is assigned, removed
// only after the address has been withdrawn and released, so that deleting a Service waits.
inline constexpr std::string_view kFinalizer = "magline.io/load-balancer";

// The status the API server would hold for these addresses: one ingress entry per address, in
// order, each with ipMode VIP (what the API server defaults it to, §6.2).
std::vector<LoadBalancerIngress> ingress_of(const std::vector<dp::IpAddr>& addrs);
// Whether the Service's status already says exactly that (ipMode unset counts as VIP).
bool ingress_is(const K8sService& svc, const std::vector<dp::IpAddr>& addrs);

// application/merge-patch+json for PATCH .../services/NAME/status: the ingress list replaced
// whole (it is atomic under every patch type); no addresses clears it (`"ingress": null`).
std::string ingress_patch(std::string_view resource_version,
                          const std::vector<dp::IpAddr>& addrs);

// application/merge-patch+json for PATCH .../services/NAME: the finalizer list with Magline's
// added or removed, the Service's others kept in order (a merge patch replaces a list whole).
std::vector<std::string> finalizers_with(const std::vector<std::string>& finalizers, bool ours);
std::string finalizers_patch(std::string_view resource_version,
                             const std::vector<std::string>& finalizers);

}  // namespace magline::k8s
