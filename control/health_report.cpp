#include "control/health_report.hpp"

#include "control/k8s/micro_time.hpp"

namespace magline::control {

void health_check_metrics(Exposition& e, const HealthReport& r) {
  constexpr const char* kProbes = "Health-check probes of node targets, by outcome.";
  e.sample("magline_health_check_probes_total", MetricType::counter, kProbes, "outcome=\"pass\"",
           r.counts.passes);
  e.sample("magline_health_check_probes_total", MetricType::counter, kProbes, "outcome=\"fail\"",
           r.counts.failures);
  uint64_t by_verdict[3] = {0, 0, 0};
  for (const auto& t : r.targets)
    by_verdict[size_t(t.verdict)]++;
  for (const k8s::Verdict v :
       {k8s::Verdict::healthy, k8s::Verdict::unhealthy, k8s::Verdict::unknown}) {
    e.sample("magline_health_check_targets", MetricType::gauge,
             "Node targets health-checked, by damped verdict.",
             "verdict=\"" + std::string(k8s::verdict_name(v)) + "\"", by_verdict[size_t(v)]);
  }
  e.sample("magline_health_check_verdict_changes_total", MetricType::counter,
           "Damped verdicts of node targets that changed (a first result included).", "",
           r.counts.verdict_changes);
  e.sample("magline_health_check_probes_in_flight", MetricType::gauge,
           "Health-check probes under way.", "", uint64_t(r.in_flight));
}

std::string health_check_metrics(const HealthReport& r) {
  Exposition e;
  health_check_metrics(e, r);
  return e.text();
}

nlohmann::ordered_json health_check_state_json(const HealthReport& r) {
  nlohmann::ordered_json targets = nlohmann::ordered_json::array();
  for (const auto& t : r.targets) {
    const std::string addr = t.target.address.family == dp::Family::v6
                                 ? "[" + dp::to_string(t.target.address) + "]"
                                 : dp::to_string(t.target.address);
    nlohmann::ordered_json j;
    j["service"] = t.target.service;
    j["node"] = t.target.node;
    j["target"] = addr + ":" + std::to_string(t.target.port);
    j["verdict"] = k8s::verdict_name(t.verdict);
    j["streak"] = t.streak;
    j["last_result"] = t.last ? nlohmann::ordered_json(t.last->pass ? "pass" : "fail") : nullptr;
    j["reason"] = t.last ? nlohmann::ordered_json(t.last->reason) : nullptr;
    j["last_probe"] =
        t.last_probe ? nlohmann::ordered_json(k8s::micro_time(*t.last_probe)) : nullptr;
    targets.push_back(std::move(j));
  }
  nlohmann::ordered_json j;
  j["generation"] = r.generation;
  j["in_flight"] = r.in_flight;
  j["targets"] = std::move(targets);
  return j;
}

}  // namespace magline::control
