// Leases through the API server (k8s-api.md §12.1): GET, create (POST), update (PUT, always
// conditional on the resourceVersion read: the only mutual exclusion leader election has) and
// LIST by label, for control/lease_driver.hpp. What to write is control/k8s/lease.hpp's.
//
// Threads: as its ApiClient (one thread at a time); every call blocks on one request.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "control/k8s/lease.hpp"
#include "control/k8s_client/api_client.hpp"

namespace magline::k8s {

struct LeaseOutcome {
  enum class Kind : uint8_t {
    done,      // read or written: `lease` is the object as the server now has it
    absent,    // 404 on a GET
    conflict,  // 409: changed since the resourceVersion given, or created meanwhile
    failed,    // anything else (transfer, 4xx, 5xx, an answer that is no Lease): `error`
  };
  Kind kind = Kind::failed;
  long status = 0;
  std::string error;
  std::optional<Lease> lease;
};

class LeaseClient {
 public:
  explicit LeaseClient(ApiClient& api) : api_(api) {}

  LeaseOutcome get(const std::string& ns, const std::string& name);
  // POST `lease` (its resource_version must be empty).
  LeaseOutcome create(const Lease& lease);
  // PUT `lease`, conditional on its resource_version.
  LeaseOutcome update(const Lease& lease);
  // Every Lease in `ns` matching `label_selector` (one unpaged LIST; items that do not read as
  // Leases are skipped). nullopt and `error` set when the LIST failed.
  std::optional<std::vector<Lease>> list(const std::string& ns, const std::string& label_selector,
                                         std::string& error);

 private:
  LeaseOutcome outcome_of(const HttpResponse& r);

  ApiClient& api_;
};

}  // namespace magline::k8s
