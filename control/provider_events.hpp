// The provider's Events on a thread of their own (docs/provider.md): the provider's thread
// records what happened (a mutex held for microseconds, never an HTTP request), this thread
// decides what to write (control/k8s/events.hpp) and writes it (control/k8s_client/
// event_writer.hpp) through an API client of its own, so that an Event write, slow or failing,
// never delays a status write. Best effort: a failed write is counted and given up.
//
// Threads: start() and stop() on the thread that owns it; record(), counts() and
// take_complaint() on any.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "control/k8s/events.hpp"
#include "control/k8s_client/api_client.hpp"
#include "control/k8s_client/event_writer.hpp"
#include "dataplane/result.hpp"

namespace magline::control {

class ProviderEvents {
 public:
  // A client of its own for `api`; `instance` is the reportingInstance (the node's identity).
  static Result<std::unique_ptr<ProviderEvents>> start(const k8s::ApiConfig& api,
                                                       std::string instance,
                                                       k8s::EventOptions options);
  ~ProviderEvents();
  void stop();

  void record(const k8s::EventSpec& e);
  k8s::EventBookCounts counts() const;
  // The first failure of a run of failed writes, once (a write that takes ends the run).
  std::optional<std::string> take_complaint();

 private:
  ProviderEvents(std::string instance, k8s::EventOptions options);
  void run();

  mutable std::mutex mu_;
  std::condition_variable cv_;
  k8s::EventBook book_;
  bool poked_ = false;
  bool complained_ = false;
  std::optional<std::string> complaint_;

  std::atomic<bool> stop_{false};
  std::string instance_;
  std::unique_ptr<k8s::ApiClient> api_;
  std::unique_ptr<k8s::EventWriter> writer_;
  std::thread thread_;
};

}  // namespace magline::control
