// The watched objects -> publisher path: which Services an event touches, relists that delete
// what went missing, coexistence with the configuration file's services, and refusals that
// leave the running state alone.
#include "control/k8s_source.hpp"

#include <gtest/gtest.h>

#include <map>

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

// A watch shared with the provider reads every Service: the source applies kube-proxy's
// selector itself, and a Service that leaves it goes as if deleted.
TEST(K8sSource, ServicesOutsideTheSelectorAreNotForwarded) {
  const dp::Node node = one_port();
  Publisher pub(node);
  K8sSource src(options());
  json other = service("other", "198.18.100.2");
  other["metadata"]["labels"] = {{"service.kubernetes.io/service-proxy-name", "someone-else"}};
  json headless = service("hl", "198.18.100.3");
  headless["metadata"]["labels"] = {{"service.kubernetes.io/headless", ""}};
  src.replace(K8sKind::service, {service("web", "198.18.100.1"), other, headless});
  src.sync(pub, {}, 0);
  EXPECT_EQ(src.services_held(), 1u);
  EXPECT_NE(pub.find_by_name(kWeb), nullptr);
  EXPECT_FALSE(pub.is_vip(ip("198.18.100.2")));
  EXPECT_FALSE(pub.is_vip(ip("198.18.100.3")));

  json web = service("web", "198.18.100.1", 80, "2");
  web["metadata"]["labels"] = {{"service.kubernetes.io/service-proxy-name", "someone-else"}};
  src.upsert(K8sKind::service, web);
  Change gone = src.sync(pub, {}, 0);
  EXPECT_EQ(gone.removed, 1u);
  EXPECT_EQ(src.services_held(), 0u);
  EXPECT_FALSE(pub.is_vip(ip("198.18.100.1")));

  // Claimed by name: only Services labelled with Magline's name are.
  k8s::TranslateOptions named = options();
  named.proxy_name = "magline";
  K8sSource by_name(named);
  json ours = service("ours", "198.18.100.4");
  ours["metadata"]["labels"] = {{"service.kubernetes.io/service-proxy-name", "magline"}};
  by_name.replace(K8sKind::service, {service("web", "198.18.100.1"), ours});
  EXPECT_EQ(by_name.services_held(), 1u);
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

// --- Node targets ------------------------------------------------------------------------------

json node_service(const std::string& name, const std::string& vip, const std::string& etp,
                  const std::string& rv = "1") {
  json s = service(name, vip, 80, rv);
  s["spec"]["ports"][0]["nodePort"] = 30080;
  s["spec"]["externalTrafficPolicy"] = etp;
  if (etp == "Local") s["spec"]["healthCheckNodePort"] = 32000;
  return s;
}

json node(const std::string& name, const std::string& addr, const std::string& ready = "True",
          const std::string& rv = "1", const std::string& kubelet = "v1.31.0") {
  return {{"metadata", {{"name", name}, {"resourceVersion", rv}}},
          {"status",
           {{"addresses", {{{"type", "InternalIP"}, {"address", addr}}}},
            {"conditions", {{{"type", "Ready"}, {"status", ready}}}},
            {"nodeInfo", {{"kubeletVersion", kubelet}}}}}};
}

k8s::TranslateOptions node_options() {
  k8s::TranslateOptions o = options();
  o.targets = k8s::Targets::nodes;
  return o;
}

std::vector<std::string> backend_text(const Publisher& pub, const std::string& name) {
  const dp::ServiceState* s = pub.find_by_name(name);
  if (s == nullptr) return {"<none>"};
  std::vector<std::string> out;
  for (const dp::Backend& b : s->spec().backends) {
    out.push_back(dp::backend_id(b.addr, b.port) + " " + std::string(dp::to_string(b.state)));
  }
  return out;
}

TEST(K8sSourceNodes, ANodeChangeTouchesEveryServiceOnlyWhenItsTargetViewChanges) {
  const dp::Node n = one_port();
  Publisher pub(n);
  K8sSource src(node_options());
  src.replace(K8sKind::service, {node_service("web", "198.18.100.1", "Cluster"),
                                 node_service("db", "198.18.100.2", "Cluster")});
  src.replace(K8sKind::node, {node("w1", "198.18.1.11"), node("w2", "198.18.1.12")});
  EXPECT_EQ(src.nodes_held(), 2u);
  src.sync(pub, {}, 0);
  EXPECT_EQ(backend_text(pub, kWeb),
            (std::vector<std::string>{"198.18.1.11:30080 ready", "198.18.1.12:30080 ready"}));

  // A status update that changes nothing targets read (a new kubelet version): no work.
  src.upsert(K8sKind::node, node("w1", "198.18.1.11", "True", "2", "v1.32.0"));
  EXPECT_EQ(src.pending(), 0u);
  // Slices are not the backends: no work either.
  src.upsert(K8sKind::endpoint_slice, slice("web-a", "web", {"198.18.9.9"}));
  EXPECT_EQ(src.pending(), 0u);

  // w2 goes NotReady: both Services, and only once each.
  src.upsert(K8sKind::node, node("w2", "198.18.1.12", "False", "3"));
  EXPECT_EQ(src.pending(), 2u);
  const uint64_t before = src.stats().translations;
  src.sync(pub, {}, 1);
  EXPECT_EQ(src.stats().translations, before + 2);
  EXPECT_EQ(backend_text(pub, kWeb), (std::vector<std::string>{"198.18.1.11:30080 ready"}));

  // Deleting a node that is no target takes nothing away; deleting w1 does.
  src.erase(K8sKind::node, node("w2", ""));
  EXPECT_EQ(src.pending(), 0u);
  src.erase(K8sKind::node, node("w1", ""));
  EXPECT_EQ(src.pending(), 2u);
  src.sync(pub, {}, 2);
  EXPECT_TRUE(backend_text(pub, kWeb).empty());
}

TEST(K8sSourceNodes, PodTargetsIgnoreNodes) {
  const dp::Node n = one_port();
  Publisher pub(n);
  K8sSource src(options());
  src.replace(K8sKind::service, {service("web", "198.18.100.1")});
  src.sync(pub, {}, 0);
  src.replace(K8sKind::node, {node("w1", "198.18.1.11")});
  EXPECT_EQ(src.pending(), 0u);
}

TEST(K8sSourceNodes, VerdictsReTranslateOnlyProbedServices) {
  const dp::Node n = one_port();
  Publisher pub(n);
  K8sSource src(node_options());
  src.replace(K8sKind::service, {node_service("web", "198.18.100.1", "Local"),
                                 node_service("db", "198.18.100.2", "Cluster")});
  src.replace(K8sKind::node, {node("w1", "198.18.1.11"), node("w2", "198.18.1.12")});
  std::map<std::string, bool> healthy;  // node -> verdict; absent: not probed yet
  src.set_node_verdict([&](std::string_view svc, std::string_view nd) -> std::optional<bool> {
    EXPECT_EQ(svc, "default/web");
    const auto it = healthy.find(std::string(nd));
    return it == healthy.end() ? std::nullopt : std::optional<bool>(it->second);
  });
  src.sync(pub, {}, 0);
  // Nothing probed yet: failing open, every node terminating (new connections to all).
  EXPECT_EQ(backend_text(pub, kWeb), (std::vector<std::string>{"198.18.1.11:30080 terminating",
                                                               "198.18.1.12:30080 terminating"}));
  EXPECT_EQ(pub.find_by_name(kWeb)->spec().mode, dp::ForwardMode::dnat);

  healthy = {{"w1", true}, {"w2", false}};
  src.verdicts_changed();
  EXPECT_EQ(src.pending(), 1u);  // web only: db is not probed
  src.sync(pub, {}, 1);
  EXPECT_EQ(backend_text(pub, kWeb),
            (std::vector<std::string>{"198.18.1.11:30080 ready", "198.18.1.12:30080 terminating"}));
}

TEST(K8sSourceNodes, ProbeTargetsFollowProbedServicesAndNodes) {
  K8sSource src(node_options());
  src.replace(K8sKind::service, {node_service("web", "198.18.100.1", "Local"),
                                 node_service("db", "198.18.100.2", "Cluster")});
  src.replace(K8sKind::node, {node("w1", "198.18.1.11")});
  ASSERT_EQ(src.probe_targets().size(), 1u);
  EXPECT_EQ(src.probe_targets()[0].service, "default/web");
  EXPECT_EQ(src.probe_targets()[0].node, "w1");
  EXPECT_EQ(src.probe_targets()[0].port, 32000);
  const uint64_t v = src.probe_version();
  EXPECT_EQ(src.probe_version(), v);  // nothing changed, nothing recomputed

  src.upsert(K8sKind::node, node("w2", "198.18.1.12"));
  EXPECT_EQ(src.probe_targets().size(), 2u);
  EXPECT_EQ(src.probe_version(), v + 1);
  src.upsert(K8sKind::service, node_service("db", "198.18.100.2", "Local", "2"));
  EXPECT_EQ(src.probe_targets().size(), 4u);
  src.erase(K8sKind::service, node_service("web", "", "Local"));
  EXPECT_EQ(src.probe_targets().size(), 2u);
  EXPECT_EQ(src.probe_version(), v + 3);
}

}  // namespace
}  // namespace magline::control
