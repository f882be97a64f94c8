// The control thread's view of what the workers forward, and the diff that moves them from one
// set of services to the next.
//
// publish() takes the complete desired set, rebuilds only the services that changed (a new
// Maglev table per changed service, never for all), checks the whole set (names, frontends
// claimed twice) and, only if it is valid, returns the updates every worker applies and the
// states they stop using. Nothing changes on error: the running set stays.
//
// Control thread only. The returned states in `retired` must stay alive until every worker has
// applied the updates and passed a quiescent state (QSBR); the caller arranges that.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/forwarder.hpp"
#include "dataplane/frontend_registry.hpp"
#include "dataplane/node.hpp"
#include "dataplane/result.hpp"
#include "dataplane/service.hpp"

namespace magline::control {

struct Change {
  std::vector<dp::Update> updates;  // for every worker, in this order
  std::vector<std::shared_ptr<const dp::ServiceState>> retired;
  size_t built = 0;      // services whose state (and Maglev table) was built
  size_t unchanged = 0;  // services shared with the previous set
  size_t removed = 0;
};

class Publisher {
 public:
  Publisher(const dp::Node& node, size_t workers);

  Result<Change> publish(std::vector<dp::Service> services, uint64_t now_ms);

  // The set published last (empty before the first publish).
  const std::shared_ptr<const dp::Snapshot>& current() const noexcept { return current_; }
  const dp::FrontendRegistry& registry() const noexcept { return registry_; }

 private:
  std::vector<uint16_t> acquire_ids(const dp::Service& s, uint64_t now_ms);
  void release_ids(const dp::ServiceState& s, uint64_t now_ms);

  const dp::Node& node_;
  size_t workers_;
  dp::FrontendRegistry registry_;
  std::shared_ptr<const dp::Snapshot> current_;
};

}  // namespace magline::control
