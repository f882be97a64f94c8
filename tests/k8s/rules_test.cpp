// The translation rules one by one, on small objects built in the test (the golden cases cover
// the real objects): hints, Local policy, deduplication, frontends, options.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "control/k8s/plan.hpp"
#include "control/k8s/provider_core.hpp"
#include "control/k8s/translate.hpp"

namespace magline::k8s {
namespace {

dp::IpAddr ip(const char* s) {
  return *dp::parse_ip(s);
}

K8sService lb_service() {
  K8sService s;
  s.meta.ns = "ns";
  s.meta.name = "web";
  s.type = "LoadBalancer";
  s.cluster_ips = {"10.96.0.1"};
  s.ports = {{"http", "TCP", 80, 30080}};
  s.ingress = {{"203.0.113.1", "", std::nullopt}};
  return s;
}

Endpoint endpoint(const char* addr, const char* node = "", std::optional<bool> ready = true,
                  std::optional<bool> serving = true, std::optional<bool> terminating = false) {
  Endpoint e;
  e.addresses = {addr};
  e.node_name = node;
  e.conditions = {ready, serving, terminating};
  return e;
}

K8sEndpointSlice slice(const char* name, std::vector<Endpoint> eps, int32_t port = 8080,
                       const char* address_type = "IPv4") {
  K8sEndpointSlice s;
  s.meta.ns = "ns";
  s.meta.name = name;
  s.meta.labels["kubernetes.io/service-name"] = "web";
  s.address_type = address_type;
  s.endpoints = std::move(eps);
  s.ports = {{std::string("http"), "TCP", port}};
  return s;
}

// "ADDR:PORT state" of the only service.
std::vector<std::string> backends_of(const Translation& t, size_t i = 0) {
  std::vector<std::string> out;
  if (i >= t.services.size()) return {"<no service>"};
  for (const dp::Backend& b : t.services[i].backends) {
    out.push_back(dp::backend_id(b.addr, b.port) + " " + std::string(dp::to_string(b.state)));
  }
  return out;
}

Translation run(const K8sService& svc, const std::vector<K8sEndpointSlice>& slices,
                const TranslateOptions& opts = {}) {
  std::vector<const K8sEndpointSlice*> ptrs;
  for (const auto& s : slices)
    ptrs.push_back(&s);
  return translate(svc, ptrs, {}, opts);
}

using V = std::vector<std::string>;

TEST(K8sRules, NodeHintsBeforeZoneHints) {
  Endpoint a = endpoint("10.0.0.1", "n1"), b = endpoint("10.0.0.2", "n2");
  a.hint_nodes = {"n1"};
  b.hint_nodes = {"n2"};
  a.hint_zones = {"z1"};
  b.hint_zones = {"z1"};
  const auto slices = std::vector{slice("s", {a, b})};
  TranslateOptions o;
  o.node_name = "n2";
  o.zone = "z1";
  EXPECT_EQ(backends_of(run(lb_service(), slices, o)), V{"10.0.0.2:8080 ready"});
  // No endpoint hinted for this node: zone hints (both in z1).
  o.node_name = "n3";
  EXPECT_EQ(backends_of(run(lb_service(), slices, o)),
            (V{"10.0.0.1:8080 ready", "10.0.0.2:8080 ready"}));
  // Without node name and zone, hints are ignored.
  EXPECT_EQ(backends_of(run(lb_service(), slices)).size(), 2u);
}

TEST(K8sRules, ZoneHintsNeedEveryReadyEndpointHinted) {
  Endpoint a = endpoint("10.0.0.1"), b = endpoint("10.0.0.2"), c = endpoint("10.0.0.3");
  a.hint_zones = {"z1"};
  b.hint_zones = {"z2"};
  // c has no hint: hints are ignored.
  TranslateOptions o;
  o.zone = "z1";
  EXPECT_EQ(backends_of(run(lb_service(), {slice("s", {a, b, c})}, o)).size(), 3u);
  // c not ready: it does not count, and the hints apply. A terminating endpoint without a hint
  // stays (it gets no new connections while a ready one is left, and keeps its established).
  c.conditions = {false, true, true};
  EXPECT_EQ(backends_of(run(lb_service(), {slice("s", {a, b, c})}, o)),
            (V{"10.0.0.1:8080 ready", "10.0.0.3:8080 terminating"}));
  // Local policy overrides hints.
  K8sService local = lb_service();
  local.external_traffic_policy = "Local";
  EXPECT_EQ(backends_of(run(local, {slice("s", {a, b, c})}, o)).size(), 3u);
}

TEST(K8sRules, LocalPolicy) {
  K8sService svc = lb_service();
  svc.external_traffic_policy = "Local";
  TranslateOptions o;
  o.node_name = "n1";
  // The local endpoint is only serving-terminating: it is used (as terminating), the remote
  // ready one is not.
  auto t = run(
      svc,
      {slice("s", {endpoint("10.0.0.1", "n1", false, true, true), endpoint("10.0.0.2", "n2")})}, o);
  ASSERT_EQ(t.services.size(), 1u);
  EXPECT_EQ(backends_of(t), V{"10.0.0.1:8080 terminating"});
  EXPECT_EQ(t.services[0].mode, dp::ForwardMode::dnat);
  EXPECT_EQ(t.services[0].no_backends, dp::NoBackends::reject);

  // Endpoints that are neither ready nor serving-terminating are no endpoints: reject, not drop.
  auto none = run(svc, {slice("s", {endpoint("10.0.0.2", "n2", false, false, true)})}, o);
  EXPECT_TRUE(none.services[0].backends.empty());
  EXPECT_EQ(none.services[0].no_backends, dp::NoBackends::reject);

  // Ready elsewhere, nothing here: drop.
  auto drop = run(svc, {slice("s", {endpoint("10.0.0.2", "n2")})}, o);
  EXPECT_EQ(drop.services[0].no_backends, dp::NoBackends::drop);

  // Cluster policy is full-NAT and ignores the node.
  svc.external_traffic_policy = "Cluster";
  EXPECT_EQ(run(svc, {slice("s", {endpoint("10.0.0.2", "n2")})}, o).services[0].mode,
            dp::ForwardMode::full_nat);
}

TEST(K8sRules, DuplicatesCollapsePreferringLocalThenReady) {
  TranslateOptions o;
  o.node_name = "n1";
  // The same ip:port in two slices: the ready copy wins over the terminating one, whatever
  // order the slices come in.
  std::vector<K8sEndpointSlice> slices = {
      slice("a", {endpoint("10.0.0.1", "n1", false, true, true)}),
      slice("b", {endpoint("10.0.0.1", "n1")}),
  };
  EXPECT_EQ(backends_of(run(lb_service(), slices, o)), V{"10.0.0.1:8080 ready"});
  std::reverse(slices.begin(), slices.end());
  EXPECT_EQ(backends_of(run(lb_service(), slices, o)), V{"10.0.0.1:8080 ready"});

  // Under Local, the copy that says it is on this node wins (kube-proxy's addEndpoints).
  K8sService local = lb_service();
  local.external_traffic_policy = "Local";
  std::vector<K8sEndpointSlice> moved = {
      slice("a", {endpoint("10.0.0.1", "n2")}),
      slice("b", {endpoint("10.0.0.1", "n1", false, true, true)}),
  };
  EXPECT_EQ(backends_of(run(local, moved, o)), V{"10.0.0.1:8080 terminating"});
}

TEST(K8sRules, OrderOfSlicesDoesNotMatter) {
  std::vector<K8sEndpointSlice> slices;
  for (int i = 0; i < 8; ++i) {
    const std::string a = "10.0." + std::to_string(i) + ".1";
    const std::string name = "s" + std::to_string(i);
    slices.push_back(slice(
        name.c_str(), {endpoint(a.c_str()), endpoint("10.9.9.9", "", i % 2 == 0, true, i % 2 == 1)},
        8000 + i % 3));
  }
  const Translation first = run(lb_service(), slices);
  std::mt19937 rng(7);
  for (int k = 0; k < 20; ++k) {
    std::shuffle(slices.begin(), slices.end(), rng);
    const Translation again = run(lb_service(), slices);
    ASSERT_EQ(again.services, first.services);
    ASSERT_EQ(again.notes, first.notes);
  }
}

// publishNotReadyAddresses is the EndpointSlice controller's: it writes ready=true for such
// endpoints. kube-proxy reads the slice's conditions as they are, so an endpoint the slice says
// is neither ready nor serving takes no new connection (until the eighth session Magline made it
// ready).
TEST(K8sRules, PublishNotReadyAddressesIsTheSliceControllersNotTheProxys) {
  K8sService svc = lb_service();
  svc.publish_not_ready_addresses = true;
  auto t = run(svc, {slice("s", {endpoint("10.0.0.1", "", false, false, false)})});
  EXPECT_TRUE(backends_of(t).empty());
  auto ready = run(svc, {slice("s", {endpoint("10.0.0.1", "", true, true, false)})});
  EXPECT_EQ(backends_of(ready), V{"10.0.0.1:8080 ready"});
}

TEST(K8sRules, SlicePortsJoinByNameAndProtocol) {
  K8sEndpointSlice s = slice("s", {endpoint("10.0.0.1")});
  s.ports = {{std::nullopt, "TCP", 1111},         // nil name: skipped
             {std::string("http"), "UDP", 2222},  // other protocol
             {std::string("http"), "TCP", 0},     // 0: skipped
             {std::string("http"), "TCP", 3333}};
  EXPECT_EQ(backends_of(run(lb_service(), {s})), V{"10.0.0.1:3333 ready"});

  // An unnamed Service port matches the slice port named "" (not a nil one).
  K8sService unnamed = lb_service();
  unnamed.ports = {{"", "TCP", 80, 0}};
  s.ports = {{std::nullopt, "TCP", 1111}, {std::string(""), "TCP", 4444}};
  auto t = run(unnamed, {s});
  ASSERT_EQ(t.services.size(), 1u);
  EXPECT_EQ(t.services[0].name, "ns/web:80/tcp/v4");
  EXPECT_EQ(backends_of(t), V{"10.0.0.1:4444 ready"});

  // Slices of other Services and FQDN slices are ignored; IPv6 addresses in an IPv4 slice too.
  K8sEndpointSlice other = slice("o", {endpoint("10.0.0.9")});
  other.meta.labels["kubernetes.io/service-name"] = "db";
  K8sEndpointSlice fqdn = slice("f", {endpoint("web.example.com")}, 8080, "FQDN");
  K8sEndpointSlice mixed = slice("m", {endpoint("fd00::1"), endpoint("10.0.0.2")});
  EXPECT_EQ(backends_of(run(lb_service(), {other, fqdn, mixed})), V{"10.0.0.2:8080 ready"});
}

TEST(K8sRules, Frontends) {
  K8sService svc = lb_service();
  svc.ingress = {{"203.0.113.1", "", std::string("VIP")},
                 {"203.0.113.2", "", std::string("Proxy")},
                 {"203.0.113.3", "", std::string("Future")},  // unknown: not VIP
                 {"", "lb.example.com", std::nullopt},
                 {"2001:db8::5", "", std::nullopt}};   // no IPv6 cluster IP
  svc.external_ips = {"203.0.113.1", "198.51.100.7"};  // the first repeats an LB IP
  TranslateOptions o;
  o.node_addresses = {ip("192.0.2.1"), ip("192.0.2.2"), ip("2001:db8::1")};
  auto t = run(svc, {}, o);
  ASSERT_EQ(t.services.size(), 1u);
  std::vector<std::string> fs;
  for (const dp::Frontend& f : t.services[0].frontends) {
    fs.push_back(dp::to_string(f) + " " + std::string(dp::to_string(f.kind)));
  }
  EXPECT_EQ(fs, (V{"203.0.113.1:80/tcp load_balancer", "192.0.2.1:30080/tcp node_port",
                   "192.0.2.2:30080/tcp node_port", "198.51.100.7:80/tcp external_ip"}));
  EXPECT_EQ(t.services[0].no_backends, dp::NoBackends::reject);
  auto noted = [&](const std::string& part) {
    return std::any_of(t.notes.begin(), t.notes.end(),
                       [&](const std::string& n) { return n.find(part) != std::string::npos; });
  };
  EXPECT_TRUE(noted("ipMode Proxy"));
  EXPECT_TRUE(noted("ipMode Future"));
  EXPECT_TRUE(noted("lb.example.com"));
  EXPECT_TRUE(noted("2001:db8::5 is IPv6"));
  EXPECT_TRUE(noted("203.0.113.1:80 as external_ip is already a load_balancer frontend"));
  EXPECT_TRUE(noted("no EndpointSlices"));

  // allocateLoadBalancerNodePorts=false: no nodePort, no NodePort frontend; one set explicitly
  // is used.
  K8sService no_np = lb_service();
  no_np.allocate_load_balancer_node_ports = false;
  no_np.ports[0].node_port = 0;
  EXPECT_EQ(run(no_np, {}, o).services[0].frontends.size(), 1u);
  no_np.ports[0].node_port = 31000;
  EXPECT_EQ(run(no_np, {}, o).services[0].frontends.size(), 3u);
}

// Per-Service table sizes: at least 100 slots per endpoint taking new connections, from
// min_table_size up through the steps, at most table_size; deterministic in the count alone.
TEST(K8sRules, TableSizeGrowsWithTheEndpointsTakingNewConnections) {
  TranslateOptions o;
  o.table_size = 16381;
  o.min_table_size = 4093;
  EXPECT_EQ(table_size_for(0, o), 4093u);
  EXPECT_EQ(table_size_for(10, o), 4093u);
  EXPECT_EQ(table_size_for(40, o), 4093u);
  EXPECT_EQ(table_size_for(41, o), 8191u);
  EXPECT_EQ(table_size_for(81, o), 8191u);
  EXPECT_EQ(table_size_for(82, o), 16381u);
  EXPECT_EQ(table_size_for(5000, o), 16381u);  // capped: balance then within 100 / (M / N) %
  o.min_table_size = 0;
  EXPECT_EQ(table_size_for(1, o), 16381u);  // off: every table the same
  o.min_table_size = 1021;
  o.table_size = 65537;  // a prime that is not a step
  EXPECT_EQ(table_size_for(10, o), 1021u);
  EXPECT_EQ(table_size_for(11, o), 2039u);
  EXPECT_EQ(table_size_for(600, o), 65521u);
  EXPECT_EQ(table_size_for(700, o), 65537u);

  // Counted: the ready endpoints, or the serving-terminating ones when none is ready.
  o.table_size = 16381;
  o.min_table_size = 4093;
  std::vector<Endpoint> eps;
  for (int i = 0; i < 45; ++i) {
    eps.push_back(endpoint(("10.0.1." + std::to_string(i + 1)).c_str(), "", false, true, true));
  }
  EXPECT_EQ(run(lb_service(), {slice("a", eps)}, o).services[0].table_size, 8191u);
  for (int i = 0; i < 10; ++i) eps.push_back(endpoint(("10.0.2." + std::to_string(i + 1)).c_str()));
  EXPECT_EQ(run(lb_service(), {slice("a", eps)}, o).services[0].table_size, 4093u);
}

TEST(K8sRules, AffinityAndTableSize) {
  K8sService svc = lb_service();
  svc.session_affinity = "ClientIP";
  TranslateOptions o;
  o.table_size = 251;
  auto t = run(svc, {}, o);
  EXPECT_TRUE(t.services[0].affinity.client_ip);
  EXPECT_EQ(t.services[0].affinity.timeout_s, 10800u);  // no sessionAffinityConfig
  EXPECT_EQ(t.services[0].table_size, 251u);
  svc.affinity_timeout_s = 30;
  EXPECT_EQ(run(svc, {}).services[0].affinity.timeout_s, 30u);
  svc.session_affinity = "None";
  EXPECT_FALSE(run(svc, {}).services[0].affinity.client_ip);
}

// magline.io/syn-proxy sets full-NAT's SYN proxy; "on" for a DNAT Service (Local policy) or a
// value that is not auto, on or off is noted and "auto" used.
TEST(K8sRules, SynProxyFromAnnotation) {
  K8sService svc = lb_service();
  const std::vector<K8sEndpointSlice> eps = {slice("web-1", {endpoint("10.1.0.1")})};
  EXPECT_EQ(run(svc, eps).services[0].syn_proxy, dp::SynProxy::automatic);
  for (const auto& [value, want] : {std::pair{"on", dp::SynProxy::on},
                                    std::pair{"off", dp::SynProxy::off},
                                    std::pair{"auto", dp::SynProxy::automatic}}) {
    svc.meta.annotations["magline.io/syn-proxy"] = value;
    const auto t = run(svc, eps);
    EXPECT_EQ(t.services[0].syn_proxy, want) << value;
    EXPECT_TRUE(t.notes.empty()) << value;
  }
  svc.meta.annotations["magline.io/syn-proxy"] = "yes";
  auto t = run(svc, eps);
  EXPECT_EQ(t.services[0].syn_proxy, dp::SynProxy::automatic);
  EXPECT_EQ(t.notes, V{"annotation magline.io/syn-proxy: \"yes\" is not auto, on or off: "
                       "\"auto\" used"});
  svc.meta.annotations["magline.io/syn-proxy"] = "on";
  svc.external_traffic_policy = "Local";
  t = run(svc, eps);
  EXPECT_EQ(t.services[0].mode, dp::ForwardMode::dnat);
  EXPECT_EQ(t.services[0].syn_proxy, dp::SynProxy::on);  // DNAT: SYNs without state
  EXPECT_TRUE(t.notes.empty());
}

// Magline's annotations set a new-connection limit on every frontend of every port (both
// halves of a source-range split too); a malformed one is noted and no limit is set.
TEST(K8sRules, NewConnectionLimitFromAnnotations) {
  K8sService svc = lb_service();
  const std::vector<K8sEndpointSlice> eps = {slice("web-1", {endpoint("10.1.0.1")})};
  EXPECT_FALSE(run(svc, eps).services[0].new_connections.limited());
  svc.meta.annotations["magline.io/new-connection-rate"] = "5000";
  auto t = run(svc, eps);
  EXPECT_EQ(t.services[0].new_connections, (dp::ConnectionLimit{.rate = 5000, .burst = 0}));
  EXPECT_TRUE(t.notes.empty());
  svc.meta.annotations["magline.io/new-connection-burst"] = "200";
  svc.load_balancer_source_ranges = {"10.0.0.0/8"};
  TranslateOptions o;
  o.node_addresses = {ip("192.0.2.1")};
  t = run(svc, eps, o);
  ASSERT_EQ(t.services.size(), 2u);
  for (const dp::Service& s : t.services) {
    EXPECT_EQ(s.new_connections, (dp::ConnectionLimit{.rate = 5000, .burst = 200})) << s.name;
  }

  const std::string none = ": no new-connection limit";
  const std::string bad = "\" is not a number in 1..100000000" + none;
  for (const char* rate : {"0", "-1", "1k", "100000001", "9999999999", "", " 10", "0x10"}) {
    svc.meta.annotations["magline.io/new-connection-rate"] = rate;
    t = run(svc, eps, o);
    EXPECT_FALSE(t.services[0].new_connections.limited()) << rate;
    EXPECT_EQ(t.notes, V{"annotation magline.io/new-connection-rate: \"" + std::string(rate) + bad})
        << rate;
  }
  svc.meta.annotations["magline.io/new-connection-rate"] = "10";
  svc.meta.annotations["magline.io/new-connection-burst"] = "ten";
  t = run(svc, eps, o);
  EXPECT_FALSE(t.services[0].new_connections.limited());
  EXPECT_EQ(t.notes, V{"annotation magline.io/new-connection-burst: \"ten" + bad});
  svc.meta.annotations.erase("magline.io/new-connection-rate");
  t = run(svc, eps, o);
  EXPECT_EQ(t.notes, V{"annotation magline.io/new-connection-burst without "
                       "magline.io/new-connection-rate" + none});
}

TEST(K8sRules, SourceRangesOnlyOnLoadBalancers) {
  K8sService svc = lb_service();
  svc.load_balancer_source_ranges = {"fd00::/8"};  // IPv6 only: the IPv4 service is open
  auto t = run(svc, {});
  ASSERT_EQ(t.services.size(), 1u);
  EXPECT_TRUE(t.services[0].source_ranges.empty());
  EXPECT_EQ(t.services[0].frontends.size(), 1u);  // no node addresses: the LB IP only

  svc.load_balancer_source_ranges = {"10.0.0.0/8"};
  TranslateOptions o;
  o.node_addresses = {ip("192.0.2.1")};
  auto split = run(svc, {}, o);
  ASSERT_EQ(split.services.size(), 2u);
  EXPECT_EQ(split.services[0].name, "ns/web:http/tcp/v4");
  EXPECT_EQ(split.services[0].source_ranges.size(), 1u);
  EXPECT_EQ(split.services[1].name, "ns/web:http/tcp/v4/open");
  EXPECT_TRUE(split.services[1].source_ranges.empty());
  EXPECT_EQ(split.origins[1].group, FrontendGroup::open);

  K8sService np = lb_service();
  np.type = "NodePort";
  np.ingress.clear();
  np.load_balancer_source_ranges = {"10.0.0.0/8"};
  auto n = run(np, {}, o);
  ASSERT_EQ(n.services.size(), 1u);
  EXPECT_TRUE(n.services[0].source_ranges.empty());
}

// `magline plan` sees what the daemon's watch receives (kube-proxy's label selector, §8): no
// Service or EndpointSlice labelled headless, none labelled for another proxy.
TEST(K8sRules, ThePlanSeesWhatTheWatchReceives) {
  TranslateOptions opts;
  EXPECT_TRUE(watched({}, opts));
  EXPECT_FALSE(watched({{std::string(kHeadlessLabel), ""}}, opts));
  EXPECT_FALSE(watched({{std::string(kProxyNameLabel), "other"}}, opts));
  EXPECT_EQ(watch_selector(opts),
            "!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless");
  opts.proxy_name = "magline";
  EXPECT_FALSE(watched({}, opts));
  EXPECT_TRUE(watched({{std::string(kProxyNameLabel), "magline"}}, opts));
  EXPECT_FALSE(watched({{std::string(kProxyNameLabel), "magline"}, {std::string(kHeadlessLabel), ""}},
                       opts));
  EXPECT_EQ(watch_selector(opts),
            "service.kubernetes.io/service-proxy-name=magline,!service.kubernetes.io/headless");

  // A slice labelled headless, or another proxy's, feeds no backend into the plan; a Service so
  // labelled is not in it at all.
  K8sService svc = lb_service();
  K8sEndpointSlice mine = slice("mine", {endpoint("10.0.0.1")});
  K8sEndpointSlice headless = slice("headless", {endpoint("10.0.0.2")});
  headless.meta.labels[std::string(kHeadlessLabel)] = "";
  K8sEndpointSlice theirs = slice("theirs", {endpoint("10.0.0.3")});
  theirs.meta.labels[std::string(kProxyNameLabel)] = "other";
  TranslateOptions none;
  none.node_addresses = {*dp::parse_ip("192.0.2.1")};
  const Plan plan = build_plan({svc}, {mine, headless, theirs}, {}, none);
  ASSERT_EQ(plan.services.size(), 1u);
  ASSERT_EQ(plan.services[0].service.backends.size(), 1u);
  EXPECT_EQ(dp::to_string(plan.services[0].service.backends[0].addr), "10.0.0.1");
  K8sService labelled = svc;
  labelled.meta.labels[std::string(kHeadlessLabel)] = "";
  const Plan none_at_all = build_plan({labelled}, {mine}, {}, none);
  EXPECT_TRUE(none_at_all.services.empty());
  EXPECT_TRUE(none_at_all.skipped.empty());
}

TEST(K8sRules, ClassesAndLabels) {
  K8sService svc = lb_service();
  TranslateOptions mine;
  mine.load_balancer_class = "example.com/magline";
  // A class decides whose the LoadBalancer IPs are, never whether the Service is proxied: its
  // NodePorts and externalIPs are the proxy's whatever the class (kube-proxy never reads it).
  EXPECT_FALSE(skip_reason(svc, mine).has_value());  // classless, a class configured
  auto other = run(svc, {}, mine);
  ASSERT_FALSE(other.services.empty());
  for (const auto& s : other.services) {
    for (const auto& f : s.frontends) EXPECT_NE(f.kind, dp::FrontendKind::load_balancer);
  }
  svc.load_balancer_class = "example.com/magline";
  EXPECT_FALSE(skip_reason(svc, mine).has_value());
  bool lb = false;
  for (const auto& s : run(svc, {}, mine).services) {
    for (const auto& f : s.frontends) lb |= f.kind == dp::FrontendKind::load_balancer;
  }
  EXPECT_TRUE(lb);
  EXPECT_FALSE(skip_reason(svc, {}).has_value());
  // NodePort Services have no class to compare.
  K8sService np = lb_service();
  np.type = "NodePort";
  EXPECT_FALSE(skip_reason(np, mine).has_value());

  svc.meta.labels[std::string(kProxyNameLabel)] = "magline";
  EXPECT_TRUE(skip_reason(svc, mine).has_value());
  mine.proxy_name = "magline";
  EXPECT_FALSE(skip_reason(svc, mine).has_value());
  // A skipped Service translates to nothing.
  const Translation t = run(svc, {}, {});
  EXPECT_TRUE(t.services.empty());
  EXPECT_TRUE(t.skipped.has_value());
}

// default_load_balancer_class (k8s-api.md §7): with a class configured, classless Services are
// Magline's too; another class never is. The forwarding side (whose LoadBalancer IPs are
// programmed) and the provider (who gets an address) agree on every combination.
TEST(K8sRules, TheDefaultClassClaimsClasslessServicesOnBothSides) {
  struct Case {
    const char* configured;
    bool by_default;
    std::optional<std::string> service_class;
    bool ours;
  };
  const Case cases[] = {
      {"", false, std::nullopt, true},
      {"", false, "example.com/magline", false},
      {"example.com/magline", false, std::nullopt, false},
      {"example.com/magline", false, "example.com/magline", true},
      {"example.com/magline", false, "example.com/other", false},
      {"example.com/magline", true, std::nullopt, true},
      {"example.com/magline", true, "example.com/magline", true},
      {"example.com/magline", true, "example.com/other", false},
  };
  for (const Case& c : cases) {
    TranslateOptions opts;
    opts.load_balancer_class = c.configured;
    opts.default_load_balancer_class = c.by_default;
    K8sService svc = lb_service();
    svc.load_balancer_class = c.service_class;
    const std::string what = std::string(c.configured) + (c.by_default ? " (default)" : "") +
                             " / " + c.service_class.value_or("classless");
    bool programmed = false;
    for (const auto& s : run(svc, {}, opts).services) {
      for (const auto& f : s.frontends)
        programmed |= f.kind == dp::FrontendKind::load_balancer;
    }
    EXPECT_EQ(programmed, c.ours) << what;
    EXPECT_EQ(provider_serves(svc, opts), c.ours) << what;
  }
}

TEST(K8sRules, UnknownProtocolAndMissingPortAreSkippedPorts) {
  K8sService svc = lb_service();
  svc.ports = {{"a", "ICMP", 1, 0}, {"b", "TCP", 0, 0}, {"c", "SCTP", 9, 0}};
  auto t = run(svc, {});
  ASSERT_EQ(t.services.size(), 1u);
  EXPECT_EQ(t.services[0].name, "ns/web:c/sctp/v4");
  EXPECT_EQ(t.notes.size(), 3u);  // ICMP, no port number, no EndpointSlices
}

}  // namespace
}  // namespace magline::k8s
