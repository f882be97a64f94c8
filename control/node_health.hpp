// Node targets' health checks wired to the Kubernetes feed (docs/k8s.md "Health checks of node
// targets"): a NodeProber probes what the feed's latest translation lists
// (K8sFeed::probe_targets), the feed's translation reads the prober's verdicts
// (K8sFeed::set_node_verdict), and a verdict that flips wakes the feed (verdicts_changed), which
// re-translates the probed Services at its next poll.
//
// Control thread, but for the prober's own thread (control/node_prober.hpp).
#pragma once

#include <memory>
#include <string>

#include "control/health_report.hpp"
#include "control/k8s/health_checks.hpp"
#include "control/k8s_feed.hpp"
#include "control/node_prober.hpp"
#include "dataplane/result.hpp"

namespace magline::control {

class NodeHealth {
 public:
  // Starts the prober and hands `feed` its verdicts; `feed` outlives this. Errors: the prober's.
  static Result<std::unique_ptr<NodeHealth>> start(K8sFeed& feed, k8s::HealthCheckParams params);
  ~NodeHealth();  // stop()s
  NodeHealth(const NodeHealth&) = delete;
  NodeHealth& operator=(const NodeHealth&) = delete;

  // Gives the prober the feed's list when it changed since the last call (targets that stay
  // keep their verdicts). Every control turn, before the feed's poll.
  void follow();
  // Stops the prober (before the feed goes). Idempotent.
  void stop();

  HealthReport report() const { return prober_.report(); }
  // /state: the plan's JSON text (an object) with `"health_checks": {...}` first.
  std::string state_json(std::string plan) const;

 private:
  NodeHealth(K8sFeed& feed, k8s::HealthCheckParams params);

  K8sFeed& feed_;
  NodeProber prober_;
  uint64_t version_ = 0;  // the feed's list the prober has
};

}  // namespace magline::control
