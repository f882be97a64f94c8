// Several Magline nodes running the provider against one fake API server (docs/provider.md,
// control/lease_driver.hpp): exactly one writes; a clean stop hands over well before the lease
// duration and the new leader writes nothing when nothing changed; a leader that vanishes
// without releasing is taken over only after the lease duration; a leader that cannot renew
// stops writing by its renew deadline. Short periods: lease 3 s, renew deadline 2 s, retry
// 0.2 s.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "control/k8s/status.hpp"
#include "control/k8s_provider.hpp"
#include "control/lease_driver.hpp"
#include "tests/k8s_client/fake_server.hpp"

namespace magline::control {
namespace {

using k8s::FakeServer;
using k8s::json;
using Clock = std::chrono::steady_clock;

json lb_service(const std::string& name) {
  return {{"kind", "Service"},
          {"apiVersion", "v1"},
          {"metadata", {{"name", name}, {"namespace", "shop"}}},
          {"spec",
           {{"type", "LoadBalancer"},
            {"ports", {{{"name", "http"}, {"port", 80}, {"protocol", "TCP"}}}}}}};
}

template <typename F>
bool eventually(F done, double seconds = 5) {
  const auto until = Clock::now() + std::chrono::duration<double>(seconds);
  while (!done()) {
    if (Clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

// b - a for two MicroTimes of the same day ("2026-12-02T17:00:00.123456Z").
double seconds_between(const json& a, const json& b) {
  auto of_day = [](const std::string& t) {
    return std::stoi(t.substr(11, 2)) * 3600.0 + std::stoi(t.substr(14, 2)) * 60.0 +
           std::stod(t.substr(17, 9));
  };
  const double d = of_day(b.get<std::string>()) - of_day(a.get<std::string>());
  return d < -43200 ? d + 86400 : d;  // across midnight
}

double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

class ProviderElectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<FakeServer>(std::vector<std::string>{});
    ASSERT_TRUE(server_->ok());
    dir_ =
        std::filesystem::temp_directory_path() / ("magline-election-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    kubeconfig_ = (dir_ / "kubeconfig").string();
    std::ofstream(kubeconfig_) << "apiVersion: v1\nkind: Config\n"
                               << "clusters: [{name: fake, cluster: {server: " << server_->url()
                               << "}}]\nusers: [{name: u, user: {token: t}}]\n"
                               << "contexts: [{name: c, context: {cluster: fake, user: u}}]\n"
                               << "current-context: c\n";
  }
  void TearDown() override {
    for (auto& p : nodes_)
      p.reset();
    std::filesystem::remove_all(dir_);
  }
  // Starts node `i` ("node-a", "node-b") as the provider of `magline run` would be.
  void start(int i) {
    auto config = cfg::parse_config(R"({
      "kubernetes": {"kubeconfig": ")" + kubeconfig_ +
                                        R"("},
      "provider": {"pools": [{"name": "edge", "addresses": ["198.18.200.0/30"]}],
                   "election": {"identity": ")" +
                                        name(i) + R"(", "lease_duration_ms": 3000,
                                "renew_deadline_ms": 2000, "retry_period_ms": 200}}})",
                                    "t.json");
    ASSERT_TRUE(config) << config.error().message;
    configs_[i] = std::move(config).value();
    auto p = Provider::start(configs_[i], forwarded_[i], logs_[i]);
    ASSERT_TRUE(p) << p.error().message;
    nodes_[i] = std::move(p).value();
  }
  static std::string name(int i) { return i == 0 ? "node-a" : "node-b"; }
  Provider& node(int i) { return *nodes_[i]; }
  int leader() {
    int n = -1;
    for (int i = 0; i < 2; ++i) {
      if (nodes_[i] && nodes_[i]->leading()) n = n == -1 ? i : 2;  // 2: both (never)
    }
    return n;
  }
  json object(const std::string& name) { return server_->objects("services")["shop/" + name]; }
  std::string ip(const std::string& svc) {
    const json o = object(svc);
    if (!o.contains("status") || !o["status"].contains("loadBalancer")) return "";
    const json& in = o["status"]["loadBalancer"].value("ingress", json::array());
    return in.empty() ? "" : in[0].value("ip", "");
  }
  size_t service_writes() {
    size_t n = 0;
    for (const json& r : server_->requests()) {
      n += r.value("method", "") == "PATCH" &&
           r.value("path", "").find("/services/") != std::string::npos;
    }
    return n;
  }
  json election_lease() { return server_->objects("leases")["kube-system/magline-provider"]; }
  std::string logs() { return "--- node-a\n" + logs_[0].str() + "--- node-b\n" + logs_[1].str(); }

  std::unique_ptr<FakeServer> server_;
  std::filesystem::path dir_;
  std::string kubeconfig_;
  cfg::Config configs_[2];
  ForwardedView forwarded_[2];
  std::ostringstream logs_[2];
  std::unique_ptr<Provider> nodes_[2];
};

TEST_F(ProviderElectionTest, OneWritesAndACleanStopHandsOverAtOnceWritingNothing) {
  server_->put(lb_service("web"));
  start(0);
  ASSERT_TRUE(eventually([&] { return node(0).leading(); })) << logs();
  start(1);
  ASSERT_TRUE(eventually([&] { return ip("web") == "198.18.200.0"; })) << logs();
  ASSERT_TRUE(eventually([&] {
    return node(0).live_nodes() == std::vector<std::string>{"node-a", "node-b"} &&
           node(1).live_nodes() == std::vector<std::string>{"node-a", "node-b"};
  })) << logs();
  EXPECT_EQ(node(1).leader(), "node-a");
  // What /state and /metrics show of it (Provider::report()).
  const ProviderReport::Election lead = node(0).report().election;
  const ProviderReport::Election follow = node(1).report().election;
  EXPECT_TRUE(lead.leading);
  EXPECT_FALSE(follow.leading);
  EXPECT_EQ(follow.identity, "node-b");
  EXPECT_EQ(follow.leader, "node-a");
  EXPECT_EQ(follow.live_nodes, (std::vector<std::string>{"node-a", "node-b"}));
  EXPECT_NE(follow.lease.find("/"), std::string::npos);
  // For a while: exactly one leads, and only it tries to write. The writes fail meanwhile, so
  // that the leader cannot have done everything before the other looked.
  server_->inject({{"resource", "services*"}, {"method", "PATCH"}, {"status", 500}, {"count", -1}});
  server_->put(lb_service("api"));
  for (int n = 0; n < 50; ++n) {
    ASSERT_EQ(leader(), 0) << logs();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_GE(node(0).counters().failures.load(), 1u);
  const ProviderCounters& b = node(1).counters();
  EXPECT_EQ(b.writes.load() + b.conflicts.load() + b.failures.load(), 0u) << logs();
  EXPECT_EQ(server_->call("DELETE", "/fake/inject").status, 200);
  ASSERT_TRUE(eventually([&] { return ip("api") == "198.18.200.1"; })) << logs();
  // Two finalizers, two statuses (counted once each write's answer is in).
  EXPECT_TRUE(eventually([&] { return node(0).counters().writes.load() >= 4u; }));
  EXPECT_EQ(node(1).counters().writes.load(), 0u);
  EXPECT_TRUE(node(1).counters().synced.load());

  // A clean stop releases the Lease: node-b leads at its next try, not a lease duration later.
  const auto stopped = Clock::now();
  std::thread stopping([&] { nodes_[0]->stop(); });  // its watch may take a second to end
  const bool took = eventually([&] { return node(1).leading(); });
  const double takeover = since(stopped);
  stopping.join();
  // Counted once node-a has stopped: a write of its still in flight when the stop began (a
  // retry) lands before. What node-b writes shows in its own counter below as well.
  const size_t writes_before = service_writes();
  ASSERT_TRUE(took) << logs();
  std::printf("takeover after a clean stop: %.3f s\n", takeover);
  EXPECT_LT(takeover, 1.0) << "the lease duration is 3 s";
  EXPECT_EQ(election_lease()["spec"]["holderIdentity"], "node-b");
  EXPECT_EQ(election_lease()["spec"]["leaseTransitions"], 1);
  // node-a's own Lease was released too: it leaves the live set at once.
  ASSERT_TRUE(
      eventually([&] { return node(1).live_nodes() == std::vector<std::string>{"node-b"}; }, 1.0))
      << logs();
  // Nothing changed, so nothing is written; node-b's Ipam followed the statuses: a new Service
  // gets the next free address, not one the others hold.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(service_writes(), writes_before) << logs();
  EXPECT_EQ(node(1).counters().writes.load(), 0u);
  server_->put(lb_service("db"));
  ASSERT_TRUE(eventually([&] { return ip("db") == "198.18.200.2"; })) << logs();
  EXPECT_EQ(ip("web"), "198.18.200.0");
  EXPECT_EQ(ip("api"), "198.18.200.1");
  // node-b said each change once: the leader, the live set, its takeover.
  nodes_[1].reset();
  const std::string said = logs_[1].str();
  for (const char* line :
       {"not leading (Lease kube-system/magline-provider, identity node-b, leader node-a)\n",
        "live nodes: node-a, node-b\n",
        "leading (Lease kube-system/magline-provider, identity "
        "node-b)\n",
        "live nodes: node-b\n"}) {
    EXPECT_NE(said.find(line), std::string::npos) << line << " in\n" << said;
  }
}

TEST_F(ProviderElectionTest, ALeaderThatVanishesIsTakenOverAfterTheLeaseDuration) {
  start(0);
  ASSERT_TRUE(eventually([&] { return node(0).leading(); })) << logs();
  start(1);
  ASSERT_TRUE(eventually([&] { return node(1).leader() == "node-a"; })) << logs();
  // A crash: node-a stops renewing and releases nothing. Its last renewal is the Lease's
  // renewTime (one machine: one wall clock for both nodes' MicroTimes).
  nodes_[0]->stop(false);
  const json last = election_lease();
  ASSERT_EQ(last["spec"]["holderIdentity"], "node-a");
  ASSERT_TRUE(eventually([&] { return node(1).leading(); }, 8)) << logs();
  const json taken = election_lease();
  EXPECT_EQ(taken["spec"]["holderIdentity"], "node-b");
  EXPECT_EQ(taken["spec"]["leaseTransitions"], 1);
  const double takeover = seconds_between(last["spec"]["renewTime"], taken["spec"]["acquireTime"]);
  std::printf("takeover %.3f s after the last renewal (lease duration 3 s)\n", takeover);
  // node-b observed that renewal after it was made, and takes over at its first try (every
  // 0.2 s) once the lease duration has passed since.
  EXPECT_GE(takeover, 3.0) << logs();
  EXPECT_LT(takeover, 4.0) << logs();
  // node-a's Lease ran out as well.
  ASSERT_TRUE(
      eventually([&] { return node(1).live_nodes() == std::vector<std::string>{"node-b"}; }, 2.0))
      << logs();
  server_->put(lb_service("web"));
  ASSERT_TRUE(eventually([&] { return ip("web") == "198.18.200.0"; })) << logs();
}

TEST_F(ProviderElectionTest, ALeaderThatCannotRenewStopsWritingByItsRenewDeadline) {
  start(0);
  ASSERT_TRUE(eventually([&] { return node(0).leading(); })) << logs();
  // Every update of the election Lease fails from now on.
  server_->inject({{"resource", "leases"},
                   {"name", "magline-provider"},
                   {"method", "PUT"},
                   {"status", 500},
                   {"count", -1}});
  const auto cut = Clock::now();
  ASSERT_TRUE(eventually([&] { return !node(0).leading(); })) << logs();
  const double stopped = since(cut);
  std::printf("leadership given up %.3f s after the renewals began to fail\n", stopped);
  EXPECT_LT(stopped, 2.5) << "the renew deadline is 2 s";
  server_->put(lb_service("web"));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(ip("web"), "") << "written by a node that no longer leads";
  EXPECT_EQ(service_writes(), 0u);
  // The API server mends: it leads again and writes.
  EXPECT_EQ(server_->call("DELETE", "/fake/inject").status, 200);
  ASSERT_TRUE(eventually([&] { return ip("web") == "198.18.200.0"; })) << logs();
}

// What a leader decided but could not write is forgotten when it stops leading: its Ipam then
// holds what the statuses hold, so the address it had meant for one Service does not block
// another leader's choice, and when it leads again nothing written is moved.
TEST_F(ProviderElectionTest, ALeaderThatStopsLeadingForgetsWhatItCouldNotWrite) {
  start(0);
  ASSERT_TRUE(eventually([&] { return node(0).leading(); })) << logs();
  server_->inject({{"resource", "services*"}, {"method", "PATCH"}, {"status", 500},
                   {"count", -1}});
  server_->put(lb_service("web"));  // decided 198.18.200.0; the write fails
  ASSERT_TRUE(eventually([&] { return node(0).counters().failures.load() >= 1; })) << logs();
  server_->inject({{"resource", "leases"}, {"name", "magline-provider"}, {"method", "PUT"},
                   {"status", 500}, {"count", -1}});
  ASSERT_TRUE(eventually([&] { return !node(0).leading(); })) << logs();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  // Meanwhile another leader gave 198.18.200.0 to a new Service, api.
  json api = lb_service("api");
  api["metadata"]["finalizers"] = {std::string(k8s::kFinalizer)};
  api["status"] = {{"loadBalancer", {{"ingress", {{{"ip", "198.18.200.0"}, {"ipMode", "VIP"}}}}}}};
  server_->put(api);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(server_->call("DELETE", "/fake/inject").status, 200);
  ASSERT_TRUE(eventually([&] { return node(0).leading(); })) << logs();
  ASSERT_TRUE(eventually([&] { return ip("web") == "198.18.200.1"; })) << logs();
  EXPECT_EQ(ip("api"), "198.18.200.0") << logs();
}

// The default identity is the host name, which may not make a Lease name: refused, saying how
// to mend it.
TEST_F(ProviderElectionTest, AnIdentityThatMakesNoLeaseNameIsRefused) {
  k8s::ApiConfig api;
  api.server = server_->url();
  LeaseDriverOptions o;
  o.ns = "kube-system";
  o.lease_name = "magline-provider";
  o.identity = "Edge_1";
  const auto d = LeaseDriver::start(api, o);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().message,
            "provider: \"Edge_1\" cannot identify this node (magline-node-IDENTITY must be a "
            "DNS subdomain): set provider.election.identity");
}

// A stop does not wait out a request to an API server that does not answer: the try in flight
// is abandoned. The Lease is still released, though the renew deadline has passed meanwhile:
// the last record seen is ours (client-go's IsLeader), and the release is conditional on it.
TEST_F(ProviderElectionTest, AStopDoesNotWaitForAHungApiServer) {
  k8s::ApiConfig api;
  api.server = server_->url();
  LeaseDriverOptions o{"kube-system", "magline-provider", "node-a",
                       {std::chrono::milliseconds(3000), std::chrono::milliseconds(2000),
                        std::chrono::milliseconds(200)}};
  auto d = LeaseDriver::start(api, o);
  ASSERT_TRUE(d) << d.error().message;
  ASSERT_TRUE(eventually([&] { return (*d)->leading(); }));
  // Every read of a Lease now hangs (each would run to the renew deadline, 2 s).
  server_->inject({{"resource", "leases"}, {"method", "GET"}, {"delay", 30}, {"count", -1}});
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  EXPECT_FALSE((*d)->leading());
  const auto stopping = Clock::now();
  (*d)->stop();
  EXPECT_LT(since(stopping), 1.9);  // the flag is polled about once a second; without it: 5.7 s
  EXPECT_EQ(election_lease()["spec"]["holderIdentity"], "");
}

}  // namespace
}  // namespace magline::control
