// The provider's decision for one Service (control/k8s/provider_core.hpp): the finalizer
// before the status, nothing written twice, a refusal that holds nothing, and the way out
// (status cleared, address released, finalizer removed only once nothing forwards the Service).
#include "control/k8s/provider_core.hpp"

#include <gtest/gtest.h>

#include "control/k8s/status.hpp"

namespace magline::k8s {
namespace {

using Kind = ProviderStep::Kind;

dp::IpAddr ip(const char* s) { return *dp::parse_ip(s); }

K8sService lb(const char* name) {
  K8sService s;
  s.meta.ns = "shop";
  s.meta.name = name;
  s.type = "LoadBalancer";
  s.ip_families = {"IPv4"};
  s.ports = {{"http", "TCP", 80, 0}};
  return s;
}

class ProviderCore : public ::testing::Test {
 protected:
  ProviderCore() : ipam_({pool()}) {}
  static AddressPool pool() {
    AddressPool p;
    p.name = "edge";
    p.ranges = {std::move(parse_range("198.18.200.0/30")).value()};
    return p;
  }
  ProviderStep step(const K8sService& s) {
    return provider_step(s, ipam_, opts_, [&](const std::string& key) {
      return forwarded_.count(key) > 0;
    });
  }
  Ipam ipam_;
  TranslateOptions opts_;
  std::set<std::string> forwarded_;
};

TEST_F(ProviderCore, TheFinalizerComesFirstThenTheStatusThenNothing) {
  K8sService s = lb("web");
  EXPECT_EQ(step(s).kind, Kind::add_finalizer);
  s.meta.finalizers = {"other.example/x", std::string(kFinalizer)};
  const ProviderStep st = step(s);
  ASSERT_EQ(st.kind, Kind::set_status);
  EXPECT_EQ(st.addrs, std::vector<dp::IpAddr>{ip("198.18.200.0")});
  s.ingress = ingress_of(st.addrs);
  EXPECT_EQ(step(s).kind, Kind::none);
  EXPECT_EQ(step(s).kind, Kind::none);  // decided again: the same address, nothing to write
}

// A valid address its status already holds is kept, restart or not (a pool's first free
// address is not forced on it).
TEST_F(ProviderCore, AValidStatusAddressIsKept) {
  K8sService s = lb("web");
  s.meta.finalizers = {std::string(kFinalizer)};
  s.ingress = ingress_of({ip("198.18.200.2")});
  EXPECT_EQ(step(s).kind, Kind::none);
  EXPECT_EQ(ipam_.find("shop/web")->addrs, std::vector<dp::IpAddr>{ip("198.18.200.2")});
  // One outside every pool is not: the Service moves into the pool.
  K8sService t = lb("api");
  t.meta.finalizers = {std::string(kFinalizer)};
  t.ingress = ingress_of({ip("198.18.230.9")});
  const ProviderStep st = step(t);
  EXPECT_EQ(st.kind, Kind::set_status);
  EXPECT_EQ(st.addrs, std::vector<dp::IpAddr>{ip("198.18.200.0")});
}

// A follower holds what the leader wrote, and nothing else: after a takeover the same
// addresses are decided and nothing is written for them.
TEST_F(ProviderCore, AFollowerHoldsWhatTheStatusesHold) {
  K8sService web = lb("web");
  web.meta.finalizers = {std::string(kFinalizer)};
  web.ingress = ingress_of({ip("198.18.200.2")});
  provider_follow(web, ipam_, opts_);
  EXPECT_EQ(ipam_.find("shop/web")->addrs, std::vector<dp::IpAddr>{ip("198.18.200.2")});
  K8sService fresh = lb("fresh");  // the leader has not written it yet: nothing held
  provider_follow(fresh, ipam_, opts_);
  EXPECT_EQ(ipam_.find("shop/fresh"), nullptr);
  // The leader moved web: the follower moves with it.
  web.ingress = ingress_of({ip("198.18.200.3")});
  provider_follow(web, ipam_, opts_);
  EXPECT_EQ(ipam_.find("shop/web")->addrs, std::vector<dp::IpAddr>{ip("198.18.200.3")});
  // The takeover: web is as it should be; fresh gets the lowest address web does not hold.
  EXPECT_EQ(step(web).kind, Kind::none);
  fresh.meta.finalizers = {std::string(kFinalizer)};
  EXPECT_EQ(step(fresh).addrs, std::vector<dp::IpAddr>{ip("198.18.200.0")});
  // A Service no longer served (or whose status the leader cleared) holds nothing.
  web.type = "ClusterIP";
  provider_follow(web, ipam_, opts_);
  EXPECT_EQ(ipam_.find("shop/web"), nullptr);
}

TEST_F(ProviderCore, ARefusedServiceHoldsNothing) {
  K8sService s = lb("web");
  s.load_balancer_ip = "198.18.230.1";  // in no pool
  const ProviderStep st = step(s);
  EXPECT_EQ(st.kind, Kind::none);
  ASSERT_TRUE(st.refused.has_value());
  EXPECT_EQ(st.refused->reason, Refusal::outside_pools);
  // Assigned before, refused now (it asks for another address): status cleared, finalizer off.
  K8sService t = lb("api");
  t.meta.finalizers = {std::string(kFinalizer)};
  t.ingress = ingress_of({ip("198.18.200.0")});
  EXPECT_TRUE(ipam_.restore(std::get<IpRequest>(request_of(t)), {ip("198.18.200.0")}));
  t.load_balancer_ip = "198.18.230.1";
  EXPECT_EQ(step(t).kind, Kind::clear_status);
  EXPECT_EQ(ipam_.find("shop/api"), nullptr);  // released
  t.ingress.clear();
  EXPECT_EQ(step(t).kind, Kind::remove_finalizer);
}

TEST_F(ProviderCore, ADeletedServiceIsClearedAndWaitsForTheWithdrawal) {
  K8sService s = lb("web");
  s.meta.finalizers = {std::string(kFinalizer)};
  const ProviderStep st = step(s);
  s.ingress = ingress_of(st.addrs);
  forwarded_.insert("shop/web");
  s.meta.deleting = true;
  EXPECT_EQ(step(s).kind, Kind::clear_status);
  EXPECT_EQ(ipam_.find("shop/web"), nullptr);
  s.ingress.clear();
  EXPECT_EQ(step(s).kind, Kind::await_withdrawal);  // a worker still forwards it
  forwarded_.clear();
  EXPECT_EQ(step(s).kind, Kind::remove_finalizer);
  // Its address is free for the next Service at once.
  K8sService next = lb("next");
  next.meta.finalizers = {std::string(kFinalizer)};
  EXPECT_EQ(step(next).addrs, std::vector<dp::IpAddr>{ip("198.18.200.0")});
}

TEST_F(ProviderCore, AnotherTypeOrClassIsLetGoAndOthersAreNeverTouched) {
  K8sService s = lb("web");
  s.meta.finalizers = {std::string(kFinalizer)};
  s.ingress = ingress_of(step(s).addrs);
  // Type changed: the API server cleared the status itself; only the finalizer is left.
  K8sService np = s;
  np.type = "NodePort";
  np.ingress.clear();
  EXPECT_EQ(step(np).kind, Kind::remove_finalizer);
  // Another implementation's Service, with a status of its own: never touched.
  K8sService theirs = lb("theirs");
  theirs.load_balancer_class = "example.com/other";
  theirs.ingress = ingress_of({ip("198.18.250.1")});
  EXPECT_EQ(step(theirs).kind, Kind::none);
  EXPECT_FALSE(provider_serves(theirs, opts_));
}

// Magline as the default implementation: classless Services get addresses beside those of its
// class; without the flag a classless one is let go like any other Service not Magline's.
TEST_F(ProviderCore, TheDefaultClassAlsoServesClasslessServices) {
  opts_.load_balancer_class = "magline.io/lb";
  K8sService classless = lb("web");
  EXPECT_EQ(step(classless).kind, Kind::none);
  EXPECT_EQ(ipam_.find("shop/web"), nullptr);
  opts_.default_load_balancer_class = true;
  EXPECT_EQ(step(classless).kind, Kind::add_finalizer);
  EXPECT_NE(ipam_.find("shop/web"), nullptr);
  K8sService theirs = lb("theirs");
  theirs.load_balancer_class = "example.com/other";
  EXPECT_EQ(step(theirs).kind, Kind::none);
  EXPECT_EQ(ipam_.find("shop/theirs"), nullptr);
}

}  // namespace
}  // namespace magline::k8s
