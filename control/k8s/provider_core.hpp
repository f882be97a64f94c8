// The LoadBalancer provider's decision for one Service (docs/provider.md): given the Service as
// the API server has it and the addresses held (Ipam), the next write to make, one at a time.
// Each write changes the Service; its new version comes back (from the write's answer or the
// watch) and the decision is made again, until there is nothing to do. Pure: the loop that
// reads and writes is control/k8s_provider.hpp.
//
// The order of a Service's life:
//   assigned    what its status already holds, while valid; else from the pools. Magline's
//               finalizer first (so a deletion waits for the withdrawal), then the addresses
//               into status.loadBalancer.ingress (ipMode VIP)
//   refused     nothing held: no status of Magline's, no finalizer
//   not ours    (deleted, or no longer type LoadBalancer of Magline's class) status cleared,
//               address released, then the finalizer removed once no worker forwards the
//               Service's LoadBalancer addresses any more
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "control/k8s/ipam.hpp"
#include "control/k8s/objects.hpp"
#include "control/k8s/translate.hpp"

namespace magline::k8s {

struct ProviderStep {
  enum class Kind : uint8_t {
    none,              // nothing to write
    add_finalizer,
    set_status,        // `addrs` into status.loadBalancer.ingress
    clear_status,
    await_withdrawal,  // the dataplane still forwards the Service's LoadBalancer addresses
    remove_finalizer,
  };
  Kind kind = Kind::none;
  std::vector<dp::IpAddr> addrs;      // set_status
  std::optional<Refused> refused;     // why the Service holds nothing (once, for an Event)
  std::optional<Assignment> assigned; // what it holds, when it holds something
};

// Whether `svc` is a Service Magline assigns addresses to: type LoadBalancer, Magline's class,
// not being deleted.
bool provider_serves(const K8sService& svc, const TranslateOptions& opts);

// The next step for `svc`. `forwarded(key)`: whether some worker still forwards LoadBalancer
// frontends of that Service ("namespace/name"). Assigns and releases in `ipam` as it decides.
ProviderStep provider_step(const K8sService& svc, Ipam& ipam, const TranslateOptions& opts,
                           const std::function<bool(const std::string& key)>& forwarded);

// A follower's bookkeeping (a node that does not lead, docs/provider.md): the leader's writes
// are the truth, so `ipam` holds exactly what `svc`'s status holds (released when it holds
// nothing, or is not a Service Magline serves). A takeover then decides the same addresses and
// writes nothing when nothing changed. Never writes, never assigns anew.
void provider_follow(const K8sService& svc, Ipam& ipam, const TranslateOptions& opts);

}  // namespace magline::k8s
