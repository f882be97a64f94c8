// The watched objects -> publisher path: which Services an event touches, relists that delete
// what went missing, coexistence with the configuration file's services, and refusals that
// leave the running state alone.
#include "control/k8s_source.hpp"

#include <gtest/gtest.h>

#include "tests/unit/k8s_json.hpp"

namespace magline::control {
namespace {

using nlohmann::json;

dp::IpAddr ip(const char* s) { return *dp::parse_ip(s); }

json service(const std::string& name, const std::string& vip, int port = 80,
             const std::string& rv = "1") {
  return test::k8s_service(name, vip, port, rv);
}

json slice(const std::string& name, const std::string& svc, std::vector<std::string> ips,
           const std::string& rv = "1") {
  return test::k8s_slice(name, svc, std::move(ips), rv);
}


dp::Node one_port() {
  dp::Node n;
  n.ports.push_back({0, "lan0", {}, {{ip("198.18.0.1"), 16}}, 1500});
  return n;
}

k8s::TranslateOptions options() {
  k8s::TranslateOptions o;
  o.table_size = 251;
  return o;
}

constexpr const char* kWeb = "default/web:http/tcp/v4";

TEST(K8sSource, EventsTouchOnlyTheirServices) {
  const dp::Node node = one_port();
  Publisher pub(node);
  K8sSource src(options());
  src.replace(K8sKind::service, {service("web", "198.18.100.1"), service("db", "198.18.100.2")});
  src.replace(K8sKind::endpoint_slice, {slice("web-a", "web", {"198.18.1.10"}),
                                        slice("db-a", "db", {"198.18.1.20"})});
  EXPECT_EQ(src.pending(), 2u);
  Change first = src.sync(pub, {}, 0);
  EXPECT_EQ(first.built, 2u);
  ASSERT_NE(pub.find_by_name(kWeb), nullptr);
  EXPECT_EQ(pub.find_by_name(kWeb)->spec().backends.size(), 1u);
  const dp::ServiceState* db = pub.find_by_name("default/db:http/tcp/v4");
  ASSERT_NE(db, nullptr);

  // A second slice for web: only web is translated and rebuilt.
  src.upsert(K8sKind::endpoint_slice, slice("web-b", "web", {"198.18.1.11"}));
  EXPECT_EQ(src.pending(), 1u);
  const uint64_t before = src.stats().translations;
  Change second = src.sync(pub, {}, 0);
  EXPECT_EQ(src.stats().translations, before + 1);
  EXPECT_EQ(second.built, 1u);
  EXPECT_EQ(pub.find_by_name(kWeb)->spec().backends.size(), 2u);
  EXPECT_EQ(pub.find_by_name("default/db:http/tcp/v4"), db);

  // Nothing pending: a sync does nothing.
  EXPECT_TRUE(src.sync(pub, {}, 0).updates.empty());
}

TEST(K8sSource, SlicesBeforeTheirServiceAndDeletion) {
  const dp::Node node = one_port();
  Publisher pub(node);
  K8sSource src(options());
  src.upsert(K8sKind::endpoint_slice, slice("web-a", "web", {"198.18.1.10"}));
  src.sync(pub, {}, 0);
  EXPECT_EQ(pub.size(), 0u);  // no Service yet
  src.upsert(K8sKind::service, service("web", "198.18.100.1"));
  src.sync(pub, {}, 0);
  ASSERT_NE(pub.find_by_name(kWeb), nullptr);
  EXPECT_EQ(pub.find_by_name(kWeb)->spec().backends.size(), 1u);
  // The slice goes: the service stays, with no backends (it rejects).
  src.erase(K8sKind::endpoint_slice, slice("web-a", "web", {}));
  src.sync(pub, {}, 0);
  ASSERT_NE(pub.find_by_name(kWeb), nullptr);
  EXPECT_TRUE(pub.find_by_name(kWeb)->spec().backends.empty());
  // The Service goes: so does everything it gave.
  src.erase(K8sKind::service, service("web", "198.18.100.1"));
  Change gone = src.sync(pub, {}, 0);
  EXPECT_EQ(gone.removed, 1u);
  EXPECT_EQ(pub.size(), 0u);
  EXPECT_FALSE(pub.is_vip(ip("198.18.100.1")));
}

TEST(K8sSource, ARelistDeletesWhatWentMissingAndSkipsWhatIsUnchanged) {
  const dp::Node node = one_port();
  Publisher pub(node);
  K8sSource src(options());
  src.replace(K8sKind::service, {service("web", "198.18.100.1"), service("db", "198.18.100.2")});
  src.sync(pub, {}, 0);
  ASSERT_EQ(pub.size(), 2u);
  // db was deleted while the watch was down; web is listed at the same resourceVersion.
  src.replace(K8sKind::service, {service("web", "198.18.100.1")});
  EXPECT_EQ(src.pending(), 1u);
  const uint64_t before = src.stats().translations;
  Change c = src.sync(pub, {}, 0);
  EXPECT_EQ(src.stats().translations, before);  // web was not touched; db is gone, not translated
  EXPECT_EQ(c.removed, 1u);
  EXPECT_EQ(pub.find_by_name("default/db:http/tcp/v4"), nullptr);
  EXPECT_NE(pub.find_by_name(kWeb), nullptr);
  EXPECT_EQ(src.services_held(), 1u);
}

TEST(K8sSource, ASliceThatChangesServiceMovesItsBackends) {
  const dp::Node node = one_port();
  Publisher pub(node);
  K8sSource src(options());
  src.replace(K8sKind::service, {service("web", "198.18.100.1"), service("db", "198.18.100.2")});
  src.upsert(K8sKind::endpoint_slice, slice("s", "web", {"198.18.1.10"}));
  src.sync(pub, {}, 0);
  src.upsert(K8sKind::endpoint_slice, slice("s", "db", {"198.18.1.10"}, "2"));
  EXPECT_EQ(src.pending(), 2u);  // both Services
  src.sync(pub, {}, 0);
  EXPECT_TRUE(pub.find_by_name(kWeb)->spec().backends.empty());
  EXPECT_EQ(pub.find_by_name("default/db:http/tcp/v4")->spec().backends.size(), 1u);
}

TEST(K8sSource, RefusedServicesKeepTheirStateAndReportWhy) {
  const dp::Node node = one_port();
  Publisher pub(node);
  // The configuration file holds 198.18.100.1:80.
  dp::Service fixed;
  fixed.name = "static";
  fixed.frontends = {{ip("198.18.100.1"), 80, dp::Protocol::tcp, dp::FrontendKind::load_balancer}};
  fixed.table_size = 251;
  ASSERT_TRUE(pub.update({fixed}, {}, 0).ok());
  K8sSource src(options());
  src.upsert(K8sKind::service, service("web", "198.18.100.1"));
  src.upsert(K8sKind::service, service("db", "198.18.100.2"));
  src.sync(pub, {"static"}, 0);
  // db went in although web could not.
  EXPECT_NE(pub.find_by_name("default/db:http/tcp/v4"), nullptr);
  EXPECT_EQ(pub.find_by_name(kWeb), nullptr);
  EXPECT_EQ(pub.find_by_name("static")->spec().name, "static");
  ASSERT_EQ(src.errors().count("default/web"), 1u);
  EXPECT_NE(src.errors().at("default/web").find("claimed by services"), std::string::npos);
  EXPECT_EQ(src.stats().publish_failures, 1u);
  // Once the configuration lets go of the address, web goes in with the next change.
  ASSERT_TRUE(pub.update({}, {"static"}, 0).ok());
  src.upsert(K8sKind::service, service("other", "198.18.100.3"));
  src.sync(pub, {}, 0);
  EXPECT_NE(pub.find_by_name(kWeb), nullptr);
  EXPECT_EQ(src.errors().count("default/web"), 0u);
}

TEST(K8sSource, UnreadableObjectsAreCountedAndDropped) {
  const dp::Node node = one_port();
  Publisher pub(node);
  K8sSource src(options());
  src.upsert(K8sKind::service, service("web", "198.18.100.1"));
  src.sync(pub, {}, 0);
  ASSERT_NE(pub.find_by_name(kWeb), nullptr);
  json bad = service("web", "198.18.100.1", 80, "2");
  bad["spec"]["ports"] = "not a list";
  src.upsert(K8sKind::service, bad);
  src.sync(pub, {}, 0);
  EXPECT_EQ(src.stats().decode_errors, 1u);
  EXPECT_EQ(pub.find_by_name(kWeb), nullptr);
  EXPECT_EQ(src.errors().count("default/web"), 1u);
  src.upsert(K8sKind::service, json::object());  // not even a name
  EXPECT_EQ(src.stats().decode_errors, 2u);
  src.upsert(K8sKind::service, service("web", "198.18.100.1", 80, "3"));
  src.sync(pub, {}, 0);
  EXPECT_NE(pub.find_by_name(kWeb), nullptr);
  EXPECT_EQ(src.errors().count("default/web"), 0u);
}

}  // namespace
}  // namespace magline::control
