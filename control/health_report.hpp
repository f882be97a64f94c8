// The node targets' health checks as the admin listener shows them (docs/k8s.md, docs/metrics.md):
// Prometheus families (magline_health_check_*) and a `health_checks` fragment for /state,
// rendered from a copy the prober makes under its lock (NodeProber::report()), so the listener
// never waits on a probe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "control/exposition.hpp"
#include "control/k8s/health_checks.hpp"

namespace magline::control {

struct HealthReport {
  std::vector<k8s::HealthBook::TargetState> targets;  // by service, then node
  k8s::HealthBook::Counts counts;
  uint64_t generation = 0;
  size_t in_flight = 0;
};

// No per-target series: Services x nodes can reach tens of thousands; /state has each target.
void health_check_metrics(Exposition& e, const HealthReport& r);
std::string health_check_metrics(const HealthReport& r);  // the same families alone
// {"generation", "in_flight", "targets": [{service, node, target ("ADDR:PORT", "[ADDR]:PORT"),
// verdict, streak, last_result ("pass"|"fail"|null), reason, last_probe (RFC 3339 or null)}]}.
nlohmann::ordered_json health_check_state_json(const HealthReport& r);

}  // namespace magline::control
