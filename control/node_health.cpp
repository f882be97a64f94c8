#include "control/node_health.hpp"

#include <vector>

namespace magline::control {

NodeHealth::NodeHealth(K8sFeed& feed, k8s::HealthCheckParams params)
    : feed_(feed), prober_(params, [&feed] { feed.verdicts_changed(); }) {}

Result<std::unique_ptr<NodeHealth>> NodeHealth::start(K8sFeed& feed,
                                                      k8s::HealthCheckParams params) {
  std::unique_ptr<NodeHealth> self(new NodeHealth(feed, params));
  if (auto started = self->prober_.start(); !started) {
    return Error{"health checks of node targets: " + started.error().message};
  }
  NodeProber* prober = &self->prober_;
  feed.set_node_verdict([prober](std::string_view service, std::string_view node) {
    return prober->verdict(service, node);
  });
  return self;
}

NodeHealth::~NodeHealth() { stop(); }

void NodeHealth::stop() { prober_.stop(); }

void NodeHealth::follow() {
  if (feed_.probe_targets_version() == version_) return;
  version_ = feed_.probe_targets_version();
  const auto listed = feed_.probe_targets();
  std::vector<k8s::HealthTarget> targets;
  if (listed) {
    targets.reserve(listed->size());
    for (const k8s::ProbeTarget& t : *listed) targets.push_back({t.service, t.node, t.addr, t.port});
  }
  prober_.set_targets(targets);
}

std::string NodeHealth::state_json(std::string plan) const {
  const size_t open = plan.find('{');
  if (open == std::string::npos) return plan;
  const size_t next = plan.find_first_not_of(" \n", open + 1);
  const bool empty = next != std::string::npos && plan[next] == '}';
  plan.insert(open + 1, "\"health_checks\": " + health_check_state_json(report()).dump() +
                            (empty ? "" : ", "));
  return plan;
}

}  // namespace magline::control
