// The provider's Events through the API server (events.k8s.io/v1, k8s-api.md §12.4): a POST
// that creates one, a merge patch of its series for repeats. What to write and when is
// control/k8s/events.hpp's; this only writes, once: Events are best effort, never retried here.
//
// Threads: as its ApiClient (one thread at a time); every call blocks on one request.
#pragma once

#include <string>

#include "control/k8s/events.hpp"
#include "control/k8s_client/api_client.hpp"

namespace magline::k8s {

// The reportingController of Magline's provider.
inline constexpr const char* kEventController = "magline.io/provider";

struct EventOutcome {
  bool ok = false;
  long status = 0;    // 0: no answer
  std::string error;  // when not ok: the server's message or the transfer's failure
};

class EventWriter {
 public:
  // `instance`: the reportingInstance (the node's identity), at most 128 bytes (cut beyond).
  EventWriter(ApiClient& api, std::string instance);

  EventOutcome write(const EventWrite& w);

  // The bodies, for tests.
  std::string create_body(const EventWrite& w) const;
  static std::string series_body(const EventWrite& w);

 private:
  ApiClient& api_;
  std::string instance_;
};

}  // namespace magline::k8s
