// The LoadBalancer provider's writes to Services through the API server (k8s-api.md §6): the
// addresses in status.loadBalancer.ingress and Magline's finalizer, each a merge patch
// conditional on the resourceVersion it was decided from (control/k8s/status.hpp has the
// bodies). A write that lost a race (409) is reported, never retried blindly: the caller reads
// the Service again and decides again.
//
// Threads: as its ApiClient (one thread at a time); every call blocks on one request.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "control/k8s/objects.hpp"
#include "control/k8s_client/api_client.hpp"
#include "dataplane/addr.hpp"

namespace magline::k8s {

struct WriteOutcome {
  enum class Kind : uint8_t {
    done,      // written (or read); `service` is the object as the server now has it
    conflict,  // 409: the Service changed since the resourceVersion given
    gone,      // 404: no such Service (any more)
    refused,   // another 4xx: `error` has the server's message (422: the write is invalid)
    failed,    // the transfer failed or a 5xx: `error` says why; try again later
  };
  Kind kind = Kind::failed;
  long status = 0;
  std::string error;
  std::optional<K8sService> service;
};

class ServiceWriter {
 public:
  explicit ServiceWriter(ApiClient& api) : api_(api) {}

  WriteOutcome read(const std::string& ns, const std::string& name);
  // Sets status.loadBalancer.ingress to `addrs` (ipMode VIP); none clears it.
  WriteOutcome set_ingress(const K8sService& from, const std::vector<dp::IpAddr>& addrs);
  // Adds (ours) or removes Magline's finalizer, keeping every other one.
  WriteOutcome set_finalizer(const K8sService& from, bool ours);

 private:
  WriteOutcome outcome_of(const HttpResponse& r);

  ApiClient& api_;
};

}  // namespace magline::k8s
