#include "control/k8s/provider_core.hpp"

#include <algorithm>

#include "control/k8s/status.hpp"

namespace magline::k8s {

namespace {

bool has_our_finalizer(const K8sService& svc) {
  return std::find(svc.meta.finalizers.begin(), svc.meta.finalizers.end(), kFinalizer) !=
         svc.meta.finalizers.end();
}

// A Service that holds nothing of Magline's any more, or should not: its status cleared (when
// Magline wrote it), its address released, its finalizer removed once nothing forwards it.
ProviderStep let_go(const K8sService& svc, Ipam& ipam,
                    const std::function<bool(const std::string&)>& forwarded) {
  ipam.release(svc.meta.key());
  if (!has_our_finalizer(svc)) return {};  // never Magline's, or already let go
  // Magline's finalizer says the status is Magline's to clear (a type change away from
  // LoadBalancer makes the API server clear it itself).
  if (!svc.ingress.empty() && svc.type == "LoadBalancer") {
    return {ProviderStep::Kind::clear_status, {}, std::nullopt, std::nullopt};
  }
  if (forwarded(svc.meta.key())) return {ProviderStep::Kind::await_withdrawal, {}, {}, {}};
  return {ProviderStep::Kind::remove_finalizer, {}, std::nullopt, std::nullopt};
}

}  // namespace

bool provider_serves(const K8sService& svc, const TranslateOptions& opts) {
  return svc.type == "LoadBalancer" && !svc.meta.deleting && !other_class(svc, opts);
}

ProviderStep provider_step(const K8sService& svc, Ipam& ipam, const TranslateOptions& opts,
                           const std::function<bool(const std::string& key)>& forwarded) {
  if (!provider_serves(svc, opts)) return let_go(svc, ipam, forwarded);
  const auto request = request_of(svc);
  // What its status already holds is its assignment while still valid (MetalLB keeps a valid
  // status address too), after a restart as at any time.
  if (const auto* r = std::get_if<IpRequest>(&request);
      r != nullptr && ipam.find(r->service) == nullptr && !svc.ingress.empty()) {
    std::vector<dp::IpAddr> held;
    for (const LoadBalancerIngress& in : svc.ingress) {
      if (const auto a = dp::parse_ip(in.ip)) held.push_back(*a);
    }
    ipam.restore(*r, held);
  }
  std::variant<Assignment, Refused> result =
      std::holds_alternative<Refused>(request)
          ? std::variant<Assignment, Refused>(std::get<Refused>(request))
          : ipam.assign(std::get<IpRequest>(request));
  if (const auto* no = std::get_if<Refused>(&result)) {
    ProviderStep step = let_go(svc, ipam, forwarded);
    step.refused = *no;
    return step;
  }
  const Assignment& a = std::get<Assignment>(result);
  ProviderStep step;
  step.assigned = a;
  if (!has_our_finalizer(svc)) {
    step.kind = ProviderStep::Kind::add_finalizer;
  } else if (!ingress_is(svc, a.addrs)) {
    step.kind = ProviderStep::Kind::set_status;
    step.addrs = a.addrs;
  }
  return step;
}

void provider_follow(const K8sService& svc, Ipam& ipam, const TranslateOptions& opts) {
  const auto request = request_of(svc);
  const auto* r = std::get_if<IpRequest>(&request);
  if (r == nullptr || !provider_serves(svc, opts) || svc.ingress.empty()) {
    ipam.release(svc.meta.key());
    return;
  }
  std::vector<dp::IpAddr> held;
  for (const LoadBalancerIngress& in : svc.ingress) {
    if (const auto a = dp::parse_ip(in.ip)) held.push_back(*a);
  }
  ipam.restore(*r, held);  // releases first; takes nothing if the status is no longer valid
}

}  // namespace magline::k8s
