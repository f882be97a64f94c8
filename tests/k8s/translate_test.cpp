// Golden tests of the translation: each golden/<case>/ holds Kubernetes objects (JSON; see its
// README.md for where each came from and what must be true), options.json (TranslateOptions)
// and expected.json (plan_json's output). The key facts of each README are also asserted
// directly below, so a wrong golden cannot pass review by being regenerated.
//
// MAGLINE_UPDATE_GOLDEN=1 rewrites expected.json; review the diff by hand.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "control/k8s/plan.hpp"
#include "dataplane/service.hpp"

namespace magline::k8s {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kGolden = MAGLINE_K8S_GOLDEN_DIR;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TranslateOptions options_of(const json& j) {
  TranslateOptions o;
  for (const auto& a : j.value("node_addresses", json::array())) {
    o.node_addresses.push_back(*dp::parse_ip(a.get<std::string>()));
  }
  o.proxy_name = j.value("proxy_name", "");
  o.load_balancer_class = j.value("load_balancer_class", "");
  o.node_name = j.value("node_name", "");
  o.zone = j.value("zone", "");
  o.table_size = j.value("table_size", o.table_size);
  return o;
}

struct Case {
  Plan plan;
  std::string text;  // plan_json
};

// Every *.json of the case but options.json and expected.json, in name order, as one input.
Case run_case(const std::string& name) {
  const fs::path dir = kGolden / name;
  std::vector<fs::path> inputs;
  for (const auto& f : fs::directory_iterator(dir)) {
    const std::string file = f.path().filename().string();
    if (f.path().extension() == ".json" && file != "options.json" && file != "expected.json") {
      inputs.push_back(f.path());
    }
  }
  std::sort(inputs.begin(), inputs.end());
  K8sObjects all;
  for (const fs::path& p : inputs) {
    auto objects = parse_list(json::parse(slurp(p)));
    EXPECT_TRUE(objects.ok()) << p << ": " << (objects ? "" : objects.error().message);
    if (!objects) continue;
    auto append = [](auto& to, auto& from) { to.insert(to.end(), from.begin(), from.end()); };
    append(all.services, objects->services);
    append(all.slices, objects->slices);
    append(all.errors, objects->errors);
    append(all.ignored, objects->ignored);
  }
  Case c;
  c.plan = build_plan(all, options_of(json::parse(slurp(dir / "options.json"))));
  c.text = plan_json(c.plan);
  return c;
}

std::vector<std::string> case_names() {
  std::vector<std::string> names;
  for (const auto& d : fs::directory_iterator(kGolden)) {
    if (d.is_directory()) names.push_back(d.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

class Golden : public testing::TestWithParam<std::string> {};

TEST_P(Golden, MatchesExpected) {
  const Case c = run_case(GetParam());
  const fs::path expected = kGolden / GetParam() / "expected.json";
  const char* update = std::getenv("MAGLINE_UPDATE_GOLDEN");
  if (update && std::string(update) == "1") {
    std::ofstream(expected, std::ios::binary) << c.text;
    GTEST_SKIP() << "rewrote " << expected;
  }
  ASSERT_TRUE(fs::exists(expected)) << expected << " is missing (MAGLINE_UPDATE_GOLDEN=1)";
  EXPECT_EQ(c.text, slurp(expected)) << "plan differs from " << expected;
}

// What the plan holds is what the watcher would publish: it must build.
TEST_P(Golden, BuildsAsASnapshot) {
  const Case c = run_case(GetParam());
  std::vector<dp::Service> services;
  for (const PlanService& s : c.plan.services)
    services.push_back(s.service);
  auto snap = dp::Snapshot::build(services);
  EXPECT_TRUE(snap.ok()) << snap.error().message;
}

// The same inputs give the same plan, whatever order the objects come in.
TEST_P(Golden, IndependentOfInputOrder) {
  const Case c = run_case(GetParam());
  std::vector<K8sService> services;
  std::vector<K8sEndpointSlice> slices;
  for (const auto& f : fs::directory_iterator(kGolden / GetParam())) {
    const std::string file = f.path().filename().string();
    if (f.path().extension() != ".json" || file == "options.json" || file == "expected.json") {
      continue;
    }
    auto o = parse_list(json::parse(slurp(f.path())));
    ASSERT_TRUE(o.ok());
    services.insert(services.end(), o->services.begin(), o->services.end());
    slices.insert(slices.end(), o->slices.begin(), o->slices.end());
  }
  std::reverse(services.begin(), services.end());
  std::reverse(slices.begin(), slices.end());
  Plan reversed = build_plan(services, slices, {}, c.plan.options);
  reversed.errors = c.plan.errors;
  reversed.ignored = c.plan.ignored;
  EXPECT_EQ(plan_json(reversed), c.text);
}

INSTANTIATE_TEST_SUITE_P(K8s, Golden, testing::ValuesIn(case_names()),
                         [](const testing::TestParamInfo<std::string>& i) {
                           std::string n = i.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

TEST(GoldenCases, AllPresent) {
  const std::vector<std::string> names = case_names();
  const std::set<std::string> have(names.begin(), names.end());
  for (const char* want : {"graceful-termination-active",
                           "graceful-termination-terminating1",
                           "graceful-termination-terminating2",
                           "clusterip-skipped",
                           "trafficpolicy-local-testnode",
                           "trafficpolicy-local-edge",
                           "trafficpolicy-local-no-local",
                           "trafficpolicy-mixed-testnode",
                           "trafficpolicy-mixed-edge",
                           "loadbalancer-class-test",
                           "loadbalancer-class-unset",
                           "loadbalancer-ipmode-proxy",
                           "source-ranges",
                           "source-ranges-split",
                           "topology-zone-foo",
                           "topology-zone-bar",
                           "topology-zone-baz",
                           "topology-zone-none",
                           "dualstack",
                           "dualstack-lists",
                           "multislice-named-ports",
                           "server-view-clientip-affinity",
                           "server-view-etp-local",
                           "metallb-manifest",
                           "metallb-ipv6",
                           "cloud-provider-kind-udp-tcp",
                           "proxy-name-magline",
                           "proxy-name-unset",
                           "skips-and-types"}) {
    EXPECT_TRUE(have.count(want)) << want;
  }
}

// ---- the key facts of each case's README, asserted directly ----

const PlanService* find(const Plan& p, const std::string& name) {
  for (const PlanService& s : p.services) {
    if (s.service.name == name) return &s;
  }
  return nullptr;
}

std::vector<std::string> names(const Plan& p) {
  std::vector<std::string> out;
  for (const PlanService& s : p.services)
    out.push_back(s.service.name);
  return out;
}

// "ADDR:PORT state" per backend, in plan order.
std::vector<std::string> backends(const PlanService& s) {
  std::vector<std::string> out;
  for (const dp::Backend& b : s.service.backends) {
    out.push_back(dp::backend_id(b.addr, b.port) + " " + std::string(dp::to_string(b.state)));
  }
  return out;
}

// "ADDR:PORT/proto kind" per frontend.
std::vector<std::string> frontends(const PlanService& s) {
  std::vector<std::string> out;
  for (const dp::Frontend& f : s.service.frontends) {
    out.push_back(dp::to_string(f) + " " + std::string(dp::to_string(f.kind)));
  }
  return out;
}

std::map<std::string, std::string> skipped(const Plan& p) {
  std::map<std::string, std::string> out;
  for (const PlanSkip& s : p.skipped)
    out[s.service] = s.reason;
  return out;
}

bool has_note(const Plan& p, const std::string& service, const std::string& part) {
  return std::any_of(p.notes.begin(), p.notes.end(), [&](const PlanNote& n) {
    return n.service == service && n.note.find(part) != std::string::npos;
  });
}

using V = std::vector<std::string>;

// The backends new connections go to: the Maglev table's distinct entries.
std::set<std::string> table_backends(const PlanService& s) {
  auto state = dp::ServiceState::build(s.service);
  EXPECT_TRUE(state.ok());
  std::set<std::string> out;
  if (!state.ok() || !(*state)->has_backends()) return out;
  for (uint16_t slot : (*state)->table().slots()) {
    const dp::Backend& b = (*state)->backend(slot);
    out.insert(dp::backend_id(b.addr, b.port));
  }
  return out;
}

constexpr const char* kGraceful = "test/graceful-term-svc:8081/tcp/v4";

TEST(GoldenFacts, GracefulTermination) {
  const Plan active = run_case("graceful-termination-active").plan;
  ASSERT_EQ(names(active), V{kGraceful});
  const PlanService& a = *find(active, kGraceful);
  EXPECT_EQ(frontends(a), V{"192.0.2.50:8081/tcp external_ip"});
  EXPECT_EQ(a.service.mode, dp::ForwardMode::full_nat);
  EXPECT_EQ(backends(a), (V{"10.244.0.112:8081 ready", "10.244.0.113:8081 ready"}));

  // terminating1: new connections go to 10.244.0.113 only; .112 keeps what it has.
  const Plan t1 = run_case("graceful-termination-terminating1").plan;
  const PlanService& s1 = *find(t1, kGraceful);
  EXPECT_EQ(backends(s1), (V{"10.244.0.112:8081 terminating", "10.244.0.113:8081 ready"}));
  EXPECT_EQ(table_backends(s1), std::set<std::string>{"10.244.0.113:8081"});

  // terminating2: nothing ready, both serving and terminating: the fallback uses both.
  const Plan t2 = run_case("graceful-termination-terminating2").plan;
  const PlanService& s2 = *find(t2, kGraceful);
  EXPECT_EQ(backends(s2), (V{"10.244.0.112:8081 terminating", "10.244.0.113:8081 terminating"}));
  auto st = dp::ServiceState::build(s2.service);
  ASSERT_TRUE(st.ok());
  EXPECT_TRUE((*st)->serving_terminating());
  EXPECT_EQ(table_backends(s2), (std::set<std::string>{"10.244.0.112:8081", "10.244.0.113:8081"}));

  const Plan skip = run_case("clusterip-skipped").plan;
  EXPECT_TRUE(skip.services.empty());
  EXPECT_EQ(skipped(skip).count("test/graceful-term-svc"), 1u);
}

TEST(GoldenFacts, TrafficPolicy) {
  constexpr const char* kEcho = "test/echo:http/tcp/v4";
  const Plan local = run_case("trafficpolicy-local-testnode").plan;
  ASSERT_EQ(names(local), V{kEcho});
  EXPECT_EQ(frontends(*find(local, kEcho)), V{"1.1.1.1:80/tcp load_balancer"});
  EXPECT_EQ(find(local, kEcho)->service.mode, dp::ForwardMode::dnat);
  EXPECT_EQ(backends(*find(local, kEcho)), V{"10.244.1.1:80 ready"});

  const Plan edge = run_case("trafficpolicy-local-edge").plan;
  EXPECT_EQ(find(edge, kEcho)->service.mode, dp::ForwardMode::dnat);
  EXPECT_EQ(backends(*find(edge, kEcho)), (V{"10.244.1.1:80 ready", "10.244.2.1:80 ready"}));

  const Plan none = run_case("trafficpolicy-local-no-local").plan;
  EXPECT_TRUE(find(none, kEcho)->service.backends.empty());
  EXPECT_EQ(find(none, kEcho)->service.no_backends, dp::NoBackends::drop);

  for (const char* c : {"trafficpolicy-mixed-testnode", "trafficpolicy-mixed-edge"}) {
    const Plan mixed = run_case(c).plan;
    EXPECT_EQ(find(mixed, kEcho)->service.mode, dp::ForwardMode::full_nat) << c;
    EXPECT_EQ(backends(*find(mixed, kEcho)), (V{"10.244.1.1:80 ready", "10.244.2.1:80 ready"}))
        << c;
  }
}

TEST(GoldenFacts, LoadBalancerClassAndIpMode) {
  constexpr const char* kEcho = "test/echo:http/tcp/v4";
  const Plan test = run_case("loadbalancer-class-test").plan;
  ASSERT_EQ(names(test), V{kEcho});
  EXPECT_EQ(frontends(*find(test, kEcho)),
            (V{"172.16.1.1:80/tcp load_balancer", "192.0.2.1:30781/tcp node_port"}));
  EXPECT_EQ(backends(*find(test, kEcho)), (V{"10.244.1.1:80 ready", "10.244.1.2:80 ready"}));

  // Another class's LoadBalancer IPs are that implementation's; its NodePorts are the proxy's.
  const Plan unset = run_case("loadbalancer-class-unset").plan;
  ASSERT_EQ(names(unset), V{kEcho});
  EXPECT_EQ(frontends(*find(unset, kEcho)), V{"192.0.2.1:30781/tcp node_port"});
  EXPECT_TRUE(skipped(unset).empty());
  EXPECT_TRUE(has_note(unset, "test/echo", "loadBalancerClass test"));

  const Plan proxy = run_case("loadbalancer-ipmode-proxy").plan;
  EXPECT_EQ(frontends(*find(proxy, kEcho)), V{"192.0.2.1:30781/tcp node_port"});
  EXPECT_TRUE(has_note(proxy, "test/echo", "ipMode Proxy"));
}

TEST(GoldenFacts, SourceRanges) {
  const Plan plain = run_case("source-ranges").plan;
  ASSERT_EQ(names(plain), V{"test/echo:http/tcp/v4"});
  const dp::Service& s = plain.services[0].service;
  ASSERT_EQ(s.source_ranges.size(), 1u);
  EXPECT_EQ(dp::to_string(s.source_ranges[0]), "10.0.0.0/8");
  EXPECT_EQ(frontends(plain.services[0]), V{"10.0.0.2:80/tcp load_balancer"});

  const Plan split = run_case("source-ranges-split").plan;
  ASSERT_EQ(names(split),
            (V{"test/echo:http/tcp/v4", "test/echo:http/tcp/v4/open", "test/echo:http/tcp/v6"}));
  const PlanService& lb = *find(split, "test/echo:http/tcp/v4");
  EXPECT_EQ(frontends(lb), V{"10.0.0.2:80/tcp load_balancer"});
  V ranges;
  for (const auto& r : lb.service.source_ranges)
    ranges.push_back(dp::to_string(r));
  EXPECT_EQ(ranges, (V{"10.0.0.0/8", "192.168.0.0/16", "172.16.0.0/12"}));
  const PlanService& open = *find(split, "test/echo:http/tcp/v4/open");
  EXPECT_EQ(frontends(open), (V{"192.0.2.1:31234/tcp node_port", "192.0.2.70:80/tcp external_ip"}));
  EXPECT_TRUE(open.service.source_ranges.empty());
  EXPECT_EQ(open.origin.group, FrontendGroup::open);
  const PlanService& v6 = *find(split, "test/echo:http/tcp/v6");
  EXPECT_EQ(frontends(v6),
            (V{"[2001:db8:100::2]:80/tcp load_balancer", "[2001:db8::1]:31234/tcp node_port"}));
  EXPECT_TRUE(v6.service.source_ranges.empty());
  EXPECT_TRUE(has_note(split, "test/echo", "\"not-a-cidr\" does not parse"));
}

TEST(GoldenFacts, TopologyHints) {
  constexpr const char* kEcho = "test/echo:http/tcp/v4";
  for (const char* c : {"topology-zone-foo", "topology-zone-bar"}) {
    EXPECT_EQ(backends(*find(run_case(c).plan, kEcho)), V{"10.244.1.1:80 ready"}) << c;
  }
  for (const char* c : {"topology-zone-baz", "topology-zone-none"}) {
    EXPECT_EQ(backends(*find(run_case(c).plan, kEcho)),
              (V{"10.244.1.1:80 ready", "10.244.2.1:80 ready"}))
        << c;
  }
}

TEST(GoldenFacts, DualStack) {
  const Plan p = run_case("dualstack").plan;
  ASSERT_EQ(names(p),
            (V{"default/echo-dualstack:http/tcp/v4", "default/echo-dualstack:http/tcp/v6",
               "default/echo-dualstack:tftp/udp/v4", "default/echo-dualstack:tftp/udp/v6"}));
  EXPECT_EQ(frontends(p.services[0]), V{"192.0.2.1:30181/tcp node_port"});
  EXPECT_EQ(backends(p.services[0]), (V{"10.244.1.54:80 ready", "10.244.2.9:80 ready"}));
  EXPECT_EQ(frontends(p.services[1]), V{"[2001:db8::1]:30181/tcp node_port"});
  EXPECT_EQ(backends(p.services[1]),
            (V{"[fd00:10:244:1::247e]:80 ready", "[fd00:10:244:2::a314]:80 ready"}));
  EXPECT_EQ(frontends(p.services[2]), V{"192.0.2.1:32757/udp node_port"});
  EXPECT_EQ(backends(p.services[2]), (V{"10.244.1.54:69 ready", "10.244.2.9:69 ready"}));
  EXPECT_EQ(backends(p.services[3]),
            (V{"[fd00:10:244:1::247e]:69 ready", "[fd00:10:244:2::a314]:69 ready"}));

  // The same objects as list responses give the same services.
  const Plan lists = run_case("dualstack-lists").plan;
  ASSERT_EQ(lists.services.size(), p.services.size());
  for (size_t i = 0; i < p.services.size(); ++i) {
    EXPECT_EQ(lists.services[i].service, p.services[i].service) << i;
  }
}

TEST(GoldenFacts, SeveralSlicesNamedPorts) {
  const Plan p = run_case("multislice-named-ports").plan;
  ASSERT_EQ(names(p), (V{"shop/web:dns/udp/v4", "shop/web:http/tcp/v4"}));
  const PlanService& http = *find(p, "shop/web:http/tcp/v4");
  EXPECT_EQ(frontends(http), V{"198.51.100.10:80/tcp load_balancer"});
  EXPECT_EQ(backends(http), (V{"10.244.1.10:8080 ready", "10.244.1.11:8080 ready",
                               "10.244.1.11:8081 terminating", "10.244.2.20:8081 ready",
                               "10.244.2.22:8081 ready", "10.244.2.23:8081 terminating"}));
  const PlanService& dns = *find(p, "shop/web:dns/udp/v4");
  EXPECT_TRUE(dns.service.backends.empty());
  EXPECT_EQ(dns.service.no_backends, dp::NoBackends::reject);
  EXPECT_TRUE(has_note(p, "shop/web", "port dns/UDP: no EndpointSlice port"));
  EXPECT_TRUE(has_note(p, "shop/web", "lb.example.com has no IP"));
  EXPECT_TRUE(has_note(p, "shop/web", "a port without a name"));
  EXPECT_TRUE(has_note(p, "shop/web", "addressType FQDN"));
  EXPECT_TRUE(has_note(p, "shop/other", "no such Service"));
}

TEST(GoldenFacts, ServerViewsAndManifests) {
  const Plan aff = run_case("server-view-clientip-affinity").plan;
  const PlanService& a = *find(aff, "default/affinity:httpd/tcp/v4");
  EXPECT_TRUE(a.service.affinity.client_ip);
  EXPECT_EQ(a.service.affinity.timeout_s, 10800u);
  EXPECT_EQ(frontends(a), (V{"192.0.2.10:80/tcp load_balancer", "192.0.2.1:31080/tcp node_port"}));

  const Plan etp = run_case("server-view-etp-local").plan;
  const PlanService& e = *find(etp, "default/lb-service-local:80/tcp/v4");
  EXPECT_EQ(e.service.mode, dp::ForwardMode::dnat);
  EXPECT_EQ(backends(e), V{"10.244.1.7:8080 ready"});

  const Plan mlb = run_case("metallb-manifest").plan;
  ASSERT_EQ(names(mlb), V{"default/nginx:http/tcp/v4"});
  EXPECT_TRUE(mlb.services[0].service.frontends.empty());
  EXPECT_EQ(mlb.ignored.size(), 1u);

  const Plan v6 = run_case("metallb-ipv6").plan;
  ASSERT_EQ(names(v6), V{"default/nginx:http/tcp/v6"});
  EXPECT_EQ(frontends(v6.services[0]),
            (V{"[2001:db8:100::10]:80/tcp load_balancer", "[2001:db8::1]:30900/tcp node_port"}));
  EXPECT_EQ(backends(v6.services[0]), V{"[fd00:10:244:1::5]:80 ready"});

  const Plan ut = run_case("cloud-provider-kind-udp-tcp").plan;
  ASSERT_EQ(names(ut), (V{"default/multiprotocol:tcp/tcp/v4", "default/multiprotocol:udp/udp/v4"}));
  EXPECT_EQ(frontends(ut.services[1]),
            (V{"192.0.2.40:80/udp load_balancer", "192.0.2.1:30054/udp node_port"}));
  for (const PlanService& s : ut.services) {
    EXPECT_EQ(backends(s), V{"10.244.1.30:80 ready"});
    EXPECT_EQ(s.service.mode, dp::ForwardMode::dnat);
  }
}

TEST(GoldenFacts, ProxyNameAndSkips) {
  // What the daemon's watch never receives is not in the plan at all, not even as skipped.
  const Plan ours = run_case("proxy-name-magline").plan;
  EXPECT_EQ(names(ours), V{"misc/ours:http/tcp/v4"});
  EXPECT_TRUE(skipped(ours).empty());
  const Plan unset = run_case("proxy-name-unset").plan;
  EXPECT_EQ(names(unset), V{"misc/unlabelled:http/tcp/v4"});
  EXPECT_TRUE(skipped(unset).empty());

  const Plan p = run_case("skips-and-types").plan;
  EXPECT_EQ(names(p), (V{"misc/deleting:http/tcp/v4", "misc/np:http/tcp/v4",
                         "misc/with-external-ip:http/tcp/v4"}));
  const auto skips = skipped(p);
  EXPECT_EQ(skips.size(), 4u);
  for (const char* s :
       {"misc/external-name", "misc/headless", "misc/internal", "misc/weird-type"}) {
    EXPECT_EQ(skips.count(s), 1u) << s;
  }
  EXPECT_EQ(frontends(*find(p, "misc/with-external-ip:http/tcp/v4")),
            V{"192.0.2.92:80/tcp external_ip"});
  const PlanService& np = *find(p, "misc/np:http/tcp/v4");
  EXPECT_EQ(frontends(np), V{"192.0.2.1:30001/tcp node_port"});
  EXPECT_EQ(np.service.affinity.timeout_s, 60u);
  EXPECT_TRUE(has_note(p, "misc/np", "protocol ICMP"));
  ASSERT_EQ(p.errors.size(), 2u);
  EXPECT_NE(p.errors[0].error.find("metadata.name: missing"), std::string::npos);
  EXPECT_EQ(p.errors[1].object, "misc/bad-port");
  EXPECT_NE(p.errors[1].error.find("spec.ports[0].port"), std::string::npos);
}

}  // namespace
}  // namespace magline::k8s
