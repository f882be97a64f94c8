// The provider's report as the admin listener shows it (control/provider_report.hpp): one HELP
// and TYPE per family, characteristics as labels; the allocation table and pools in /state
// beside the plan (control/admin.hpp).
#include "control/provider_report.hpp"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <thread>

#include "control/admin.hpp"

namespace magline::control {
namespace {

ProviderReport sample() {
  ProviderReport r;
  r.synced = true;
  r.assignments = 3;
  r.releases = 1;
  r.writes = 7;
  r.conflicts = 2;
  r.failures = 1;
  for (const k8s::Refusal reason : k8s::kRefusals)
    r.refusals[std::string(to_string(reason))] = 0;
  r.refusals["exhausted"] = 4;
  r.events.observed = 10;
  r.events.repeats = 6;
  r.events.dropped = 1;
  r.events.written = 4;
  r.events.failed = 1;
  r.pools = {{"edge", 4, 2}, {"v6", 65536, 0}};
  k8s::Assignment a;
  a.addrs = {*dp::parse_ip("198.18.200.0"), *dp::parse_ip("2001:db8::1")};
  a.pool = "edge";
  a.why = "shared under key \"k\" in pool edge";
  a.sharing_key = "k";
  r.allocations["shop/web"] = a;
  r.election.identity = "edge-1";
  r.election.lease = "magline-system/magline-provider";
  r.election.leading = true;
  r.election.leader = "edge-1";
  r.election.live_nodes = {"edge-1", "edge-2"};
  return r;
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
    ++n;
  return n;
}

TEST(ProviderReport, MetricsHaveOneHelpAndTypePerFamilyAndLabelsForCharacteristics) {
  const std::string m = provider_metrics(sample());
  EXPECT_EQ(count(m, "# TYPE magline_provider_refusals_total counter\n"), 1u);
  EXPECT_EQ(count(m, "# HELP magline_provider_refusals_total "), 1u);
  EXPECT_EQ(count(m, "magline_provider_refusals_total{reason="), 6u);  // every reason, 0 too
  EXPECT_EQ(count(m, "magline_provider_refusals_total{reason=\"exhausted\"} 4\n"), 1u);
  EXPECT_EQ(count(m, "magline_provider_pool_addresses{pool=\"edge\"} 4\n"), 1u);
  EXPECT_EQ(count(m, "magline_provider_pool_addresses{pool=\"v6\"} 65536\n"), 1u);
  EXPECT_EQ(count(m, "magline_provider_pool_addresses_used{pool=\"edge\"} 2\n"), 1u);
  EXPECT_EQ(count(m, "magline_provider_synced 1\n"), 1u);
  EXPECT_EQ(count(m, "magline_provider_leading 1\n"), 1u);
  EXPECT_EQ(count(m, "magline_provider_live_nodes 2\n"), 1u);
  EXPECT_EQ(count(m, "magline_provider_services 1\n"), 1u);
  EXPECT_EQ(count(m, "magline_provider_assignments_total 3\n"), 1u);
  EXPECT_EQ(count(m, "magline_provider_writes_total{outcome=\"conflict\"} 2\n"), 1u);
  EXPECT_EQ(count(m, "magline_provider_events_total{result=\"new\"} 3\n"), 1u);
  EXPECT_EQ(count(m, "magline_provider_events_total{result=\"dropped\"} 1\n"), 1u);
  EXPECT_EQ(count(m, "magline_provider_event_writes_total{outcome=\"failed\"} 1\n"), 1u);
  // Every sample line belongs to a family announced once, above it.
  std::set<std::string> typed;
  size_t start = 0;
  while (start < m.size()) {
    const size_t end = m.find('\n', start);
    const std::string line = m.substr(start, end - start);
    start = end + 1;
    if (line.rfind("# TYPE ", 0) == 0) {
      const std::string name = line.substr(7, line.find(' ', 7) - 7);
      EXPECT_TRUE(typed.insert(name).second) << name;
    } else if (line[0] != '#') {
      const std::string name = line.substr(0, line.find_first_of("{ "));
      EXPECT_TRUE(typed.count(name)) << line;
    }
  }
}

TEST(ProviderReport, StateHasTheAllocationTableAndThePools) {
  const nlohmann::ordered_json j = provider_state_json(sample());
  EXPECT_EQ(j.dump(), R"({"synced":true,"pools":[{"name":"edge","size":4.0,"used":2},)"
                      R"({"name":"v6","size":65536.0,"used":0}],"allocations":[{"service":)"
                      R"("shop/web","addresses":["198.18.200.0","2001:db8::1"],"pool":"edge",)"
                      R"("sharing_key":"k","why":"shared under key \"k\" in pool edge"}],)"
                      R"("election":{"identity":"edge-1","lease":"magline-system/magline-provider",)"
                      R"("leading":true,"leader":"edge-1","live_nodes":["edge-1","edge-2"]}})");
}

TEST(ProviderReport, TheAdminListenerAddsItToMetricsAndState) {
  std::unique_ptr<AdminServer> server;
  uint16_t port = 0;
  for (uint16_t p = uint16_t(20000 + ::getpid() % 20000); p < 65000 && !server; p += 7) {
    if (auto bound = AdminServer::bind("127.0.0.1", p)) {
      server = std::move(bound).value();
      port = p;
    }
  }
  ASSERT_TRUE(server);
  AdminView view;
  view.set_state_available(true);
  view.set_provider([] { return sample(); });
  server->serve(WorkerViews{}, view);
  // The control thread's part of /state: answered from here.
  std::atomic<bool> done{false};
  std::thread control([&] {
    while (!done.load()) {
      if (view.state_wanted()) view.answer_state("{\n  \"services\": []\n}\n");
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  httplib::Client client("127.0.0.1", port);
  auto state = client.Get("/state");
  auto metrics = client.Get("/metrics");
  done = true;
  control.join();
  ASSERT_TRUE(state);
  const auto j = nlohmann::ordered_json::parse(state->body);
  EXPECT_EQ(j["services"], nlohmann::ordered_json::array());
  EXPECT_EQ(j["provider"]["allocations"][0]["service"], "shop/web");
  EXPECT_EQ(j["provider"]["pools"][0]["used"], 2);
  ASSERT_TRUE(metrics);
  EXPECT_EQ(count(metrics->body, "magline_provider_pool_addresses_used{pool=\"edge\"} 2\n"), 1u);
}

}  // namespace
}  // namespace magline::control
