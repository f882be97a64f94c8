// The provider's writes (control/k8s_client/service_writer.hpp) against the fake API server's
// status subresource and finalizers (k8s-api.md §6): conditional merge patches that lose a race
// with a 409 and change nothing, a finalizer that holds a deletion until it is removed.
#include "control/k8s_client/service_writer.hpp"

#include <gtest/gtest.h>

#include "control/k8s/status.hpp"
#include "tests/k8s_client/fake_server.hpp"

namespace magline::k8s {
namespace {

using Kind = WriteOutcome::Kind;

dp::IpAddr ip(const char* s) { return *dp::parse_ip(s); }

json lb_service(const std::string& name) {
  return {{"kind", "Service"},
          {"apiVersion", "v1"},
          {"metadata", {{"name", name}, {"namespace", "shop"}}},
          {"spec",
           {{"type", "LoadBalancer"},
            {"ports", {{{"name", "http"}, {"port", 80}, {"protocol", "TCP"}}}}}}};
}

class ServiceWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<FakeServer>(std::vector<std::string>{});
    ASSERT_TRUE(server_->ok());
    ApiConfig c;
    c.server = server_->url();
    auto api = ApiClient::create(c, {}, nullptr);
    ASSERT_TRUE(api.ok()) << api.error().message;
    api_ = std::move(api).value();
    writer_ = std::make_unique<ServiceWriter>(*api_);
  }
  K8sService read(const char* name) {
    const WriteOutcome o = writer_->read("shop", name);
    EXPECT_EQ(o.kind, Kind::done) << o.error;
    return o.service.value_or(K8sService{});
  }

  std::unique_ptr<FakeServer> server_;
  std::unique_ptr<ApiClient> api_;
  std::unique_ptr<ServiceWriter> writer_;
};

TEST_F(ServiceWriterTest, TheStatusIsWrittenOnlyFromTheVersionItWasDecidedFrom) {
  server_->put(lb_service("web"));
  const K8sService before = read("web");
  WriteOutcome w = writer_->set_ingress(before, {ip("198.18.200.1")});
  ASSERT_EQ(w.kind, Kind::done) << w.error;
  ASSERT_TRUE(w.service.has_value());
  EXPECT_TRUE(ingress_is(*w.service, {ip("198.18.200.1")}));
  EXPECT_NE(w.service->meta.resource_version, before.meta.resource_version);
  EXPECT_TRUE(ingress_is(read("web"), {ip("198.18.200.1")}));

  // Decided from the old version: refused, nothing changed.
  const WriteOutcome stale = writer_->set_ingress(before, {ip("198.18.200.2")});
  EXPECT_EQ(stale.kind, Kind::conflict) << stale.status << " " << stale.error;
  EXPECT_TRUE(ingress_is(read("web"), {ip("198.18.200.1")}));

  // Cleared, from the current version.
  const WriteOutcome cleared = writer_->set_ingress(read("web"), {});
  ASSERT_EQ(cleared.kind, Kind::done) << cleared.error;
  EXPECT_TRUE(read("web").ingress.empty());

  // The status subresource validates what it is given: an address on a ClusterIP Service.
  json internal = lb_service("internal");
  internal["spec"]["type"] = "ClusterIP";
  server_->put(internal);
  const WriteOutcome invalid = writer_->set_ingress(read("internal"), {ip("198.18.200.3")});
  EXPECT_EQ(invalid.kind, Kind::refused);
  EXPECT_EQ(invalid.status, 422);
  EXPECT_EQ(writer_->read("shop", "nowhere").kind, Kind::gone);
}

TEST_F(ServiceWriterTest, OurFinalizerHoldsADeletionUntilItIsRemoved) {
  json svc = lb_service("web");
  svc["metadata"]["finalizers"] = {"other.example/keep"};
  server_->put(svc);
  WriteOutcome w = writer_->set_finalizer(read("web"), true);
  ASSERT_EQ(w.kind, Kind::done) << w.error;
  EXPECT_EQ(w.service->meta.finalizers,
            (std::vector<std::string>{"other.example/keep", std::string(kFinalizer)}));

  // Deleted: it stays, marked, while finalizers remain.
  const Reply del = server_->call("DELETE", "/api/v1/namespaces/shop/services/web");
  EXPECT_EQ(del.status, 200) << del.body.dump();
  K8sService deleting = read("web");
  EXPECT_TRUE(deleting.meta.deleting);
  w = writer_->set_finalizer(deleting, false);
  ASSERT_EQ(w.kind, Kind::done) << w.error;
  EXPECT_EQ(w.service->meta.finalizers, std::vector<std::string>{"other.example/keep"});
  // The other implementation's finalizer goes too: then the Service is gone.
  json patch = {{"metadata", {{"finalizers", json::array()}}}};
  const std::string body = patch.dump();
  api_->send("PATCH", "/api/v1/namespaces/shop/services/web", body,
             "application/merge-patch+json");
  EXPECT_EQ(writer_->read("shop", "web").kind, Kind::gone);
}

}  // namespace
}  // namespace magline::k8s
