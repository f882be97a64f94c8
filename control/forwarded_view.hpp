// Which Kubernetes Services the workers forward LoadBalancer frontends for, as of the last
// publish every worker has applied: what the provider waits on before it removes a deleted
// Service's finalizer ("the address stops answering before the finalizer goes").
//
// Threads: the control thread applies deltas when a publish has come into effect; any thread
// asks (the provider's). A mutex: neither side is on a packet path.
#pragma once

#include <map>
#include <mutex>
#include <string>

#include "control/publisher.hpp"

namespace magline::control {

class ForwardedView {
 public:
  // Any thread: whether some worker forwards a LoadBalancer frontend of Service `key`
  // ("namespace/name").
  bool forwards(const std::string& key) const {
    std::lock_guard lock(mu_);
    const auto it = count_.find(key);
    return it != count_.end() && it->second > 0;
  }

  // Control thread: the LoadBalancer frontends a change adds and removes, by Service, kept
  // until the change is in effect (then apply()).
  static void add_deltas(const Change& change, std::map<std::string, int>& deltas);
  void apply(std::map<std::string, int>& deltas);

 private:
  mutable std::mutex mu_;
  std::map<std::string, int> count_;
};

}  // namespace magline::control
