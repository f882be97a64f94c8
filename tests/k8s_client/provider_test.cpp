// The LoadBalancer provider of `magline run` (control/k8s_provider.hpp) against the fake API
// server: a Service gets its address and Magline's finalizer; a restart writes nothing; a write
// that loses a race is decided again; a deleted Service is let go only once nothing forwards it.
#include "control/k8s_provider.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
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
  void start() {
    auto p = Provider::start(config_, forwarded_, log_);
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

}  // namespace
}  // namespace magline::control
