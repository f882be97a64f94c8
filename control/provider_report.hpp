// The provider's counters and allocations as the admin listener shows them (docs/provider.md):
// Prometheus text (magline_provider_*, appended to /metrics) and the `provider` section of
// /state. Rendered from a copy the provider's thread refreshes (Provider::report()), so the
// listener never waits on the provider.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "control/exposition.hpp"
#include "control/k8s/events.hpp"
#include "control/k8s/ipam.hpp"

namespace magline::control {

struct ProviderReport {
  bool synced = false;                       // the first list is in and every address restored
  uint64_t assignments = 0;                  // addresses written into a Service's status
  uint64_t releases = 0;                     // Services that gave up what they held
  uint64_t restored = 0;                     // assignments taken back from statuses at start
  uint64_t writes = 0;                       // status and finalizer writes that took
  uint64_t conflicts = 0;                    // refused with 409 (the Service changed)
  uint64_t failures = 0;                     // failed, or refused otherwise
  std::map<std::string, uint64_t> refusals;  // Services refused, by reason (every reason)
  k8s::EventBookCounts events;
  std::vector<k8s::Ipam::Usage> pools;
  std::map<std::string, k8s::Assignment> allocations;  // by "namespace/name"
  // Leader election (control/lease_driver.hpp): who writes, and which Magline nodes are live.
  struct Election {
    std::string identity;  // this node's
    std::string lease;     // the election Lease, "namespace/name"
    bool leading = false;  // whether this node writes now
    std::string leader;    // the Lease's holder as last seen; "" for none
    std::vector<std::string> live_nodes;  // holders of live node Leases, sorted
  } election;
};

void provider_metrics(Exposition& e, const ProviderReport& r);
std::string provider_metrics(const ProviderReport& r);  // the same families alone
nlohmann::ordered_json provider_state_json(const ProviderReport& r);

}  // namespace magline::control
