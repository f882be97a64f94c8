// The node prober's report as the admin listener would show it (control/health_report.hpp): the
// magline_health_check_* families and the health_checks fragment of /state.
#include "control/health_report.hpp"

#include <gtest/gtest.h>

namespace magline::control {
namespace {

HealthReport sample() {
  HealthReport r;
  r.counts = {.passes = 40, .failures = 5, .verdict_changes = 4};
  r.generation = 4;
  r.in_flight = 2;
  k8s::HealthBook::TargetState up;
  up.target = {"demo/web", "node-1", *dp::parse_ip("10.0.0.11"), 31234};
  up.verdict = k8s::Verdict::healthy;
  up.streak = 12;
  up.last = k8s::ProbeResult{true, "200"};
  up.last_probe = std::chrono::system_clock::time_point(std::chrono::seconds(1796272200));
  k8s::HealthBook::TargetState down;
  down.target = {"demo/web", "node-2", *dp::parse_ip("fd00::12"), 31234};
  down.verdict = k8s::Verdict::unhealthy;
  down.streak = 3;
  down.last = k8s::ProbeResult{false, "connection refused"};
  down.last_probe = up.last_probe;
  k8s::HealthBook::TargetState fresh;
  fresh.target = {"demo/web", "node-3", *dp::parse_ip("10.0.0.13"), 31234};
  r.targets = {up, down, fresh};
  return r;
}

TEST(HealthReport, Metrics) {
  const std::string text = health_check_metrics(sample());
  for (const char* line : {
           "magline_health_check_probes_total{outcome=\"pass\"} 40\n",
           "magline_health_check_probes_total{outcome=\"fail\"} 5\n",
           "magline_health_check_targets{verdict=\"healthy\"} 1\n",
           "magline_health_check_targets{verdict=\"unhealthy\"} 1\n",
           "magline_health_check_targets{verdict=\"unknown\"} 1\n",
           "magline_health_check_verdict_changes_total 4\n",
           "magline_health_check_probes_in_flight 2\n",
           "# TYPE magline_health_check_probes_total counter\n",
           "# TYPE magline_health_check_targets gauge\n",
       }) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\nin\n" << text;
  }
  // Every verdict has its series, even at zero: a dashboard's sum needs no absent series.
  const std::string empty = health_check_metrics(HealthReport{});
  EXPECT_NE(empty.find("magline_health_check_targets{verdict=\"unknown\"} 0\n"), std::string::npos);
}

TEST(HealthReport, StateJson) {
  const auto j = health_check_state_json(sample());
  EXPECT_EQ(j["generation"], 4);
  EXPECT_EQ(j["in_flight"], 2);
  ASSERT_EQ(j["targets"].size(), 3u);
  EXPECT_EQ(j["targets"][0].dump(),
            R"({"service":"demo/web","node":"node-1","target":"10.0.0.11:31234",)"
            R"("verdict":"healthy","streak":12,"last_result":"pass","reason":"200",)"
            R"("last_probe":"2026-12-03T04:30:00.000000Z"})");
  EXPECT_EQ(j["targets"][1]["target"], "[fd00::12]:31234");
  EXPECT_EQ(j["targets"][1]["reason"], "connection refused");
  EXPECT_EQ(j["targets"][1]["last_result"], "fail");
  EXPECT_EQ(j["targets"][2]["verdict"], "unknown");
  EXPECT_TRUE(j["targets"][2]["last_result"].is_null());
  EXPECT_TRUE(j["targets"][2]["reason"].is_null());
  EXPECT_TRUE(j["targets"][2]["last_probe"].is_null());
}

}  // namespace
}  // namespace magline::control
