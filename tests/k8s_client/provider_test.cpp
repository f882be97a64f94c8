// The LoadBalancer provider of `magline run` (control/k8s_provider.hpp) against the fake API
// server: a Service gets its address and Magline's finalizer; a restart writes nothing; a write
// that loses a race is decided again; a deleted Service is let go only once nothing forwards it.
#include "control/k8s_provider.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include "control/k8s/status.hpp"
#include "tests/k8s_client/fake_server.hpp"

namespace magline::control {
namespace {

using k8s::FakeServer;
using k8s::json;

json lb_service(const std::string& name, json annotations = json::object()) {
  return {{"kind", "Service"},
          {"apiVersion", "v1"},
          {"metadata", {{"name", name}, {"namespace", "shop"}, {"annotations", annotations}}},
          {"spec",
           {{"type", "LoadBalancer"},
            {"ports", {{{"name", "http"}, {"port", 80}, {"protocol", "TCP"}}}}}}};
}

// Polls `done` for up to `seconds`; whether it held.
template <typename F>
bool eventually(F done, double seconds = 5) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

class ProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<FakeServer>(std::vector<std::string>{});
    ASSERT_TRUE(server_->ok());
    dir_ = std::filesystem::temp_directory_path() /
           ("magline-provider-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    const std::string kubeconfig = (dir_ / "kubeconfig").string();
    std::ofstream(kubeconfig) << "apiVersion: v1\nkind: Config\n"
                              << "clusters: [{name: fake, cluster: {server: " << server_->url()
                              << "}}]\nusers: [{name: u, user: {token: t}}]\n"
                              << "contexts: [{name: c, context: {cluster: fake, user: u}}]\n"
                              << "current-context: c\n";
    auto config = cfg::parse_config(R"({
      "kubernetes": {"kubeconfig": ")" + kubeconfig + R"("},
      "provider": {"pools": [{"name": "edge", "addresses": ["198.18.200.0/30"]}]}})",
                                    "t.json");
    ASSERT_TRUE(config) << config.error().message;
    config_ = std::move(config).value();
  }
  void TearDown() override {
    provider_.reset();
    std::filesystem::remove_all(dir_);
  }
  void start(ProviderOptions o = {}) {
    o.instance = "edge-node-1";
    o.events.min_interval = std::chrono::milliseconds(200);  // series writes seen quickly
    auto p = Provider::start(config_, forwarded_, log_, std::move(o));
    ASSERT_TRUE(p) << p.error().message;
    provider_ = std::move(p).value();
  }
  json object(const std::string& name) { return server_->objects("services")["shop/" + name]; }
  static std::vector<std::string> ips(const json& svc) {
    std::vector<std::string> out;
    const json* st = &svc;
    for (const char* k : {"status", "loadBalancer", "ingress"}) {
      if (!st->contains(k)) return out;
      st = &(*st)[k];
    }
    for (const json& i : *st) out.push_back(i.value("ip", ""));
    return out;
  }
  static bool has_finalizer(const json& svc) {
    for (const json& f : svc["metadata"].value("finalizers", json::array())) {
      if (f == std::string(k8s::kFinalizer)) return true;
    }
    return false;
  }
  std::vector<json> events() {
    std::vector<json> out;
    for (const auto& [key, e] : server_->objects("events"))
      out.push_back(e);
    return out;
  }
  size_t event_posts() {
    size_t n = 0;
    for (const json& r : server_->requests()) {
      n += r.value("method", "") == "POST" &&
           r.value("path", "").find("/events") != std::string::npos;
    }
    return n;
  }
  size_t writes() {
    size_t n = 0;
    for (const json& r : server_->requests()) n += r.value("method", "") == "PATCH";
    return n;
  }

  std::unique_ptr<FakeServer> server_;
  std::filesystem::path dir_;
  cfg::Config config_;
  ForwardedView forwarded_;
  std::ostringstream log_;
  std::unique_ptr<Provider> provider_;
};

TEST_F(ProviderTest, AServiceGetsItsAddressAndARestartWritesNothing) {
  server_->put(lb_service("web"));
  start();
  ASSERT_TRUE(eventually([&] { return ips(object("web")) == std::vector<std::string>{"198.18.200.0"}; }))
      << object("web").dump(2) << log_.str();
  EXPECT_TRUE(has_finalizer(object("web")));
  EXPECT_EQ(object("web")["status"]["loadBalancer"]["ingress"][0]["ipMode"], "VIP");
  server_->put(lb_service("api"));
  ASSERT_TRUE(eventually([&] { return ips(object("api")) == std::vector<std::string>{"198.18.200.1"}; }));

  // A restart: every address taken back, nothing written.
  provider_.reset();
  const size_t before = writes();
  start();
  ASSERT_TRUE(eventually([&] { return provider_->counters().synced.load(); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(writes(), before);
  EXPECT_EQ(provider_->counters().restored.load(), 2u);
  // A new Service after the restart gets what is left, not a restored address.
  server_->put(lb_service("db"));
  ASSERT_TRUE(eventually([&] { return ips(object("db")) == std::vector<std::string>{"198.18.200.2"}; }));
}

// `magline run`: the provider reads the Services from the forwarding side's watch (no watch of
// its own) and, at a start, only once forwarding is in effect.
TEST_F(ProviderTest, FromTheForwardingSidesWatchOnceForwardingIsInEffect) {
  server_->put(lb_service("web"));
  auto copy = std::make_shared<k8s::EventQueue>();
  k8s::WatcherOptions wo;
  wo.resources = {k8s::Resource::services, k8s::Resource::endpoint_slices};
  wo.label_selector = "!service.kubernetes.io/service-proxy-name";
  wo.services_copy = copy;
  k8s::EventQueue feed;
  k8s::ApiConfig api;
  api.server = server_->url();
  k8s::Watcher watcher(api, wo, feed);
  ASSERT_TRUE(watcher.start().ok());
  std::atomic<bool> forwarding{false};
  ProviderOptions o;
  o.services = copy;
  o.forwarding_ready = [&] { return forwarding.load(); };
  start(std::move(o));
  ASSERT_TRUE(eventually([&] { return watcher.synced(); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(writes(), 0u) << "wrote before forwarding was in effect";
  EXPECT_FALSE(provider_->report().synced);
  forwarding = true;
  ASSERT_TRUE(eventually(
      [&] { return ips(object("web")) == std::vector<std::string>{"198.18.200.0"}; }))
      << log_.str();
  size_t service_reads = 0;
  for (const json& r : server_->requests()) {
    service_reads += r.value("method", "") == "GET" &&
                     r.value("path", "").find("/services") != std::string::npos &&
                     r.value("path", "").find("/services/") == std::string::npos;
  }
  EXPECT_EQ(service_reads, 2u) << "one LIST and one WATCH, the forwarding side's";
  provider_.reset();
  watcher.stop();
}

TEST_F(ProviderTest, AWriteThatLosesARaceIsDecidedAgain) {
  server_->inject({{"resource", "services/status"}, {"method", "PATCH"}, {"status", 409}});
  server_->put(lb_service("web"));
  start();
  ASSERT_TRUE(eventually([&] { return ips(object("web")).size() == 1; })) << log_.str();
  EXPECT_GE(provider_->counters().conflicts.load(), 1u);
}

TEST_F(ProviderTest, ADeletedServiceIsLetGoOnlyOnceNothingForwardsIt) {
  server_->put(lb_service("web"));
  start();
  ASSERT_TRUE(eventually([&] { return ips(object("web")).size() == 1; }));
  // The workers forward it (as the control thread would record once the status is in effect).
  std::map<std::string, int> forwarded = {{"shop/web", 1}};
  forwarded_.apply(forwarded);
  EXPECT_EQ(server_->call("DELETE", "/api/v1/namespaces/shop/services/web").status, 200);
  // Its status is cleared at once, but it stays (held by the finalizer) while forwarded.
  ASSERT_TRUE(eventually([&] { return ips(object("web")).empty(); })) << log_.str();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(object("web").is_null());
  EXPECT_TRUE(has_finalizer(object("web")));
  // Withdrawn: the finalizer goes, and with it the Service.
  std::map<std::string, int> gone = {{"shop/web", -1}};
  forwarded_.apply(gone);
  ASSERT_TRUE(eventually([&] { return object("web").is_null(); })) << object("web").dump(2);
  // Its address is free again.
  server_->put(lb_service("next"));
  ASSERT_TRUE(eventually([&] { return ips(object("next")) == std::vector<std::string>{"198.18.200.0"}; }));
}

TEST_F(ProviderTest, WhatCannotBeGivenIsSaidOnceAndNothingIsWritten) {
  server_->put(lb_service("far", {{"magline.io/load-balancer-ips", "198.18.230.1"}}));
  json other = lb_service("theirs");
  other["spec"]["loadBalancerClass"] = "example.com/other";
  server_->put(other);
  start();
  ASSERT_TRUE(eventually([&] { return provider_->counters().refused.load() == 1; })) << log_.str();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(writes(), 0u);
  EXPECT_NE(log_.str().find("shop/far gets no address"), std::string::npos) << log_.str();
}

TEST_F(ProviderTest, ARefusedServiceGetsOneWarningEventWhoseSeriesGrowsOnRepeats) {
  json far = lb_service("far", {{"magline.io/load-balancer-ips", "198.18.230.1"}});
  server_->put(far);
  start();
  ASSERT_TRUE(eventually([&] { return events().size() == 1; })) << log_.str();
  json e = events()[0];
  EXPECT_EQ(e["type"], "Warning");
  EXPECT_EQ(e["reason"], "AddressOutsidePools");
  EXPECT_EQ(e["action"], "Allocate");
  EXPECT_EQ(e["reportingController"], "magline.io/provider");
  EXPECT_EQ(e["reportingInstance"], "edge-node-1");
  EXPECT_EQ(e["regarding"]["kind"], "Service");
  EXPECT_EQ(e["regarding"]["name"], "far");
  EXPECT_EQ(e["regarding"]["uid"], object("far")["metadata"]["uid"]);
  EXPECT_NE(e["note"].get<std::string>().find("198.18.230.1"), std::string::npos);
  EXPECT_FALSE(e.contains("series"));

  // Two changes to the Service, each decided again and refused again: the same Event's series.
  for (const char* v : {"1", "2"}) {
    far["metadata"]["labels"] = {{"rev", v}};
    server_->put(far);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(eventually([&] {
    const auto es = events();
    return es.size() == 1 && es[0].contains("series") && es[0]["series"]["count"] == 3;
  })) << events()[0].dump(2);
  EXPECT_EQ(event_posts(), 1u);
  const ProviderReport r = provider_->report();
  EXPECT_EQ(r.refusals.at("outside_pools"), 1u);  // once per refusal, not per decision
  EXPECT_EQ(r.events.repeats, 2u);
}

TEST_F(ProviderTest, AnAssignedServiceGetsOneNormalEventAndItsReleaseAnother) {
  server_->put(lb_service("web"));
  start();
  ASSERT_TRUE(eventually([&] { return events().size() == 1; })) << log_.str();
  json e = events()[0];
  EXPECT_EQ(e["type"], "Normal");
  EXPECT_EQ(e["reason"], "IPAllocated");
  EXPECT_EQ(e["note"], "assigned 198.18.200.0 (pool edge): first free address of pool edge");
  EXPECT_EQ(e["regarding"]["uid"], object("web")["metadata"]["uid"]);
  // The allocation table and the pools, as /state and /metrics show them.
  ASSERT_TRUE(eventually([&] { return provider_->report().assignments == 1; }));
  const ProviderReport r = provider_->report();
  EXPECT_TRUE(r.synced);
  ASSERT_EQ(r.allocations.count("shop/web"), 1u);
  EXPECT_EQ(r.allocations.at("shop/web").pool, "edge");
  ASSERT_EQ(r.pools.size(), 1u);
  EXPECT_EQ(r.pools[0].size, 4);
  EXPECT_EQ(r.pools[0].used, 1u);
  EXPECT_NE(provider_metrics(r).find("magline_provider_pool_addresses_used{pool=\"edge\"} 1\n"),
            std::string::npos);

  EXPECT_EQ(server_->call("DELETE", "/api/v1/namespaces/shop/services/web").status, 200);
  ASSERT_TRUE(eventually([&] { return object("web").is_null(); }));
  ASSERT_TRUE(eventually([&] { return events().size() == 2; }));
  bool released = false;
  for (const json& ev : events()) {
    if (ev["reason"] == "IPReleased") {
      released = true;
      EXPECT_EQ(ev["note"], "released 198.18.200.0 (pool edge)");
    }
  }
  EXPECT_TRUE(released);
  ASSERT_TRUE(eventually([&] { return provider_->report().allocations.empty(); }));
  EXPECT_EQ(provider_->report().releases, 1u);
}

TEST_F(ProviderTest, EventWritesThatHangOrFailDelayNoStatusAndAreSaidOnce) {
  // Every Event write held 3 s and then refused: statuses go on being written meanwhile.
  server_->inject({{"resource", "events"}, {"count", -1}, {"delay", 3}, {"status", 500}});
  server_->put(lb_service("web"));
  server_->put(lb_service("api"));
  const auto t = std::chrono::steady_clock::now();
  start();
  ASSERT_TRUE(
      eventually([&] { return ips(object("web")).size() == 1 && ips(object("api")).size() == 1; }));
  EXPECT_LT(std::chrono::steady_clock::now() - t, std::chrono::seconds(2));
  ASSERT_TRUE(eventually([&] { return provider_->report().events.failed == 2; }, 10)) << log_.str();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const std::string log = log_.str();
  const size_t first = log.find("not written");
  ASSERT_NE(first, std::string::npos) << log;
  EXPECT_EQ(log.find("not written", first + 1), std::string::npos) << log;
  EXPECT_EQ(event_posts(), 2u);  // given up, not retried
}

}  // namespace
}  // namespace magline::control
