// The provider's writes as request bodies (control/k8s/status.hpp): conditional on the
// resourceVersion they were decided from, the ingress list replaced whole, the finalizer list
// with Magline's added or removed and the others kept.
#include "control/k8s/status.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace magline::k8s {
namespace {

dp::IpAddr ip(const char* s) { return *dp::parse_ip(s); }

TEST(StatusPatches, IngressIsReplacedWholeAndConditionalOnTheVersion) {
  const auto j = nlohmann::json::parse(ingress_patch("42", {ip("198.18.200.1"), ip("2001:db8::1")}));
  EXPECT_EQ(j.at("metadata").at("resourceVersion"), "42");
  const auto& ingress = j.at("status").at("loadBalancer").at("ingress");
  ASSERT_EQ(ingress.size(), 2u);
  EXPECT_EQ(ingress[0], (nlohmann::json{{"ip", "198.18.200.1"}, {"ipMode", "VIP"}}));
  EXPECT_EQ(ingress[1].at("ip"), "2001:db8::1");
  // No address: the list cleared (§6.1: "ingress": null deletes it under a merge patch).
  const auto clear = nlohmann::json::parse(ingress_patch("43", {}));
  EXPECT_TRUE(clear.at("status").at("loadBalancer").at("ingress").is_null());
}

TEST(StatusPatches, TheStatusSaysItWhenEveryAddressIsThereAsVip) {
  K8sService s;
  s.ingress = {{"198.18.200.1", "", std::nullopt}};  // ipMode unset: VIP
  EXPECT_TRUE(ingress_is(s, {ip("198.18.200.1")}));
  EXPECT_FALSE(ingress_is(s, {ip("198.18.200.2")}));
  EXPECT_FALSE(ingress_is(s, {}));
  s.ingress[0].ip_mode = "Proxy";
  EXPECT_FALSE(ingress_is(s, {ip("198.18.200.1")}));
  s.ingress = ingress_of({ip("198.18.200.1"), ip("2001:db8::1")});
  EXPECT_TRUE(ingress_is(s, {ip("198.18.200.1"), ip("2001:db8::1")}));
  EXPECT_FALSE(ingress_is(s, {ip("2001:db8::1"), ip("198.18.200.1")}));  // order matters
}

TEST(StatusPatches, OurFinalizerComesAndGoesAndTheOthersStay) {
  const std::vector<std::string> others = {"a.example/one", "b.example/two"};
  const auto with = finalizers_with(others, true);
  EXPECT_EQ(with, (std::vector<std::string>{"a.example/one", "b.example/two",
                                            std::string(kFinalizer)}));
  EXPECT_EQ(finalizers_with(with, true), with);  // not twice
  EXPECT_EQ(finalizers_with(with, false), others);
  const auto j = nlohmann::json::parse(finalizers_patch("7", with));
  EXPECT_EQ(j.at("metadata").at("resourceVersion"), "7");
  EXPECT_EQ(j.at("metadata").at("finalizers").size(), 3u);
}

}  // namespace
}  // namespace magline::k8s
