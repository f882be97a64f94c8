// Node targets (control/k8s/node_targets.hpp, docs/k8s.md "Node targets"): Nodes decoded (good
// and bad), which are eligible, what a Service becomes with nodes as backends (Cluster; Local
// with healthy, failing and unknown verdicts, failing open; dual-stack; no nodePort), the list
// the prober checks, and `magline plan`'s view.
#include "control/k8s/node_targets.hpp"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "control/k8s/plan.hpp"
#include "control/k8s/translate.hpp"

namespace magline::k8s {
namespace {

using nlohmann::json;

// A Node as the API server serves it (trimmed: what a kind node carries around the fields read).
json node_json(const std::string& name, std::vector<std::pair<std::string, std::string>> addrs,
               const std::string& ready = "True", json labels = json::object()) {
  json addresses = json::array();
  for (const auto& [type, addr] : addrs)
    addresses.push_back({{"type", type}, {"address", addr}});
  labels["kubernetes.io/hostname"] = name;
  return {{"apiVersion", "v1"},
          {"kind", "Node"},
          {"metadata",
           {{"name", name}, {"uid", "u-" + name}, {"resourceVersion", "7"}, {"labels", labels}}},
          {"spec", {{"podCIDR", "10.244.1.0/24"}}},
          {"status",
           {{"addresses", addresses},
            {"conditions",
             {{{"type", "MemoryPressure"}, {"status", "False"}},
              {{"type", "Ready"}, {"status", ready}, {"reason", "KubeletReady"}}}},
            {"nodeInfo", {{"kubeletVersion", "v1.31.0"}}}}}};
}

K8sNode node(const std::string& name, std::vector<std::pair<std::string, std::string>> addrs,
             const std::string& ready = "True", json labels = json::object()) {
  auto n = decode_node(node_json(name, std::move(addrs), ready, std::move(labels)));
  EXPECT_TRUE(n.ok()) << n.error().message;
  return std::move(n).value();
}

K8sService lb_service(const std::string& etp = "Cluster") {
  K8sService s;
  s.meta.ns = "shop";
  s.meta.name = "web";
  s.type = "LoadBalancer";
  s.cluster_ips = {"10.96.0.10"};
  s.ports = {{"http", "TCP", 80, 30080}, {"https", "TCP", 443, 30443}};
  s.ingress = {{"203.0.113.10", "", std::nullopt}};
  s.external_traffic_policy = etp;
  if (etp == "Local") s.health_check_node_port = 32000;
  return s;
}

TranslateOptions node_opts() {
  TranslateOptions o;
  o.targets = Targets::nodes;
  o.table_size = 251;
  return o;
}

std::vector<const K8sNode*> ptrs(const std::vector<K8sNode>& nodes) {
  std::vector<const K8sNode*> out;
  for (const K8sNode& n : nodes)
    out.push_back(&n);
  return out;
}

// "ADDR:PORT state" of the service named `name`.
std::vector<std::string> backends(const Translation& t, const std::string& name) {
  for (const dp::Service& s : t.services) {
    if (s.name != name) continue;
    std::vector<std::string> out;
    for (const dp::Backend& b : s.backends) {
      out.push_back(dp::backend_id(b.addr, b.port) + " " + std::string(dp::to_string(b.state)));
    }
    return out;
  }
  return {"<no " + name + ">"};
}

bool has_note(const Translation& t, const std::string& part) {
  for (const std::string& n : t.notes) {
    if (n.find(part) != std::string::npos) return true;
  }
  return false;
}

std::vector<K8sNode> three_nodes() {
  return {node("worker-b", {{"InternalIP", "192.168.1.12"}, {"Hostname", "worker-b"}}),
          node("worker-a", {{"ExternalIP", "198.51.100.1"}, {"InternalIP", "192.168.1.11"}}),
          node("control-plane", {{"InternalIP", "192.168.1.10"}}, "True",
               {{std::string(kExcludeFromLoadBalancersLabel), ""}})};
}

// --- Decoding ----------------------------------------------------------------------------------

TEST(NodeDecode, ReadsNameLabelsAddressesAndReady) {
  const K8sNode n =
      node("w1", {{"InternalIP", "192.168.1.11"}, {"InternalIP", "fd00::11"}, {"Hostname", "w1"}});
  EXPECT_EQ(n.name(), "w1");
  EXPECT_EQ(n.meta.ns, "");  // cluster-scoped
  EXPECT_EQ(n.meta.resource_version, "7");
  EXPECT_EQ(n.meta.labels.at("kubernetes.io/hostname"), "w1");
  ASSERT_EQ(n.addresses.size(), 3u);
  EXPECT_EQ(n.addresses[1].type, "InternalIP");
  EXPECT_EQ(n.addresses[1].address, "fd00::11");
  EXPECT_TRUE(n.ready);
  EXPECT_FALSE(node("w2", {}, "Unknown").ready);
  EXPECT_FALSE(node("w3", {}, "False").ready);
}

TEST(NodeDecode, NoStatusIsNotReadyAndHasNoAddresses) {
  const auto n = decode_node(json::parse(R"({"metadata": {"name": "fresh"}})"));
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_FALSE(n->ready);
  EXPECT_TRUE(n->addresses.empty());
}

TEST(NodeDecode, BadNodesAreErrorsNamingTheField) {
  struct Case {
    const char* what;
    json object;
    std::string error;
  };
  const Case cases[] = {
      {"no name", json::parse(R"({"kind": "Node", "metadata": {}})"), "metadata.name: missing"},
      {"no metadata", json::parse(R"({"kind": "Node"})"), "metadata: missing"},
      {"another kind", json::parse(R"({"kind": "Service", "metadata": {"name": "x"}})"),
       "kind: expected Node, got \"Service\""},
      {"addresses an object",
       json::parse(
           R"({"metadata": {"name": "x"}, "status": {"addresses": {"type": "InternalIP"}}})"),
       "status.addresses: expected an array, got object"},
      {"address a number",
       json::parse(
           R"({"metadata": {"name": "x"}, "status": {"addresses": [{"type": "InternalIP", "address": 1}]}})"),
       "status.addresses[0].address: expected a string, got number"},
      {"condition status a boolean",
       json::parse(
           R"({"metadata": {"name": "x"}, "status": {"conditions": [{"type": "Ready", "status": true}]}})"),
       "status.conditions[0].status: expected a string, got boolean"},
  };
  for (const Case& c : cases) {
    const auto n = decode_node(c.object);
    ASSERT_FALSE(n.ok()) << c.what;
    EXPECT_EQ(n.error().message, c.error) << c.what;
  }
}

// --- Eligibility -------------------------------------------------------------------------------

TEST(NodeEligibility, ReadyWithAnInternalIpOfTheFamilyAndNotExcluded) {
  const K8sNode dual = node("d", {{"InternalIP", "192.168.1.1"}, {"InternalIP", "fd00::1"}});
  EXPECT_FALSE(ineligible(dual, dp::Family::v4));
  EXPECT_FALSE(ineligible(dual, dp::Family::v6));
  EXPECT_EQ(dp::to_string(*internal_ip(dual, dp::Family::v6)), "fd00::1");

  const K8sNode v6only = node("six", {{"InternalIP", "fd00::2"}, {"ExternalIP", "192.0.2.9"}});
  EXPECT_EQ(ineligible(v6only, dp::Family::v4).value_or(""), "no IPv4 InternalIP");
  EXPECT_FALSE(ineligible(v6only, dp::Family::v6));

  EXPECT_EQ(
      ineligible(node("nr", {{"InternalIP", "192.168.1.3"}}, "False"), dp::Family::v4).value_or(""),
      "not Ready");
  // The label's presence counts, whatever its value (kubeadm sets it empty).
  const K8sNode excluded = node("cp", {{"InternalIP", "192.168.1.4"}}, "True",
                                {{std::string(kExcludeFromLoadBalancersLabel), "false"}});
  EXPECT_EQ(ineligible(excluded, dp::Family::v4).value_or(""),
            "labelled node.kubernetes.io/exclude-from-external-load-balancers");
  // An InternalIP that does not parse is no address; the next one is taken.
  const K8sNode garbled = node("g", {{"InternalIP", "not-an-ip"}, {"InternalIP", "192.168.1.5"}});
  EXPECT_EQ(dp::to_string(*internal_ip(garbled, dp::Family::v4)), "192.168.1.5");
}

TEST(NodeEligibility, TheViewIgnoresWhatTargetsDoNotRead) {
  json a = node_json("w", {{"InternalIP", "192.168.1.1"}});
  json b = a;
  b["status"]["nodeInfo"]["kubeletVersion"] = "v1.32.0";
  b["status"]["conditions"][0]["status"] = "True";  // MemoryPressure
  b["metadata"]["resourceVersion"] = "8";
  EXPECT_EQ(target_view(*decode_node(a)), target_view(*decode_node(b)));
  b["status"]["conditions"][1]["status"] = "False";  // Ready
  EXPECT_FALSE(target_view(*decode_node(a)) == target_view(*decode_node(b)));
}

// --- Translation -------------------------------------------------------------------------------

TEST(NodeTranslate, ClusterPolicyTakesEveryEligibleNodeAtTheNodePort) {
  const auto nodes = three_nodes();
  const Translation t = translate(lb_service(), {}, ptrs(nodes), node_opts());
  ASSERT_FALSE(t.skipped);
  ASSERT_EQ(t.services.size(), 2u);
  EXPECT_EQ(backends(t, "shop/web:http/tcp/v4"),
            (std::vector<std::string>{"192.168.1.11:30080 ready", "192.168.1.12:30080 ready"}));
  EXPECT_EQ(backends(t, "shop/web:https/tcp/v4"),
            (std::vector<std::string>{"192.168.1.11:30443 ready", "192.168.1.12:30443 ready"}));
  EXPECT_EQ(t.services[0].mode, dp::ForwardMode::full_nat);
  // The frontends are the Service's, as with pod targets.
  ASSERT_EQ(t.services[0].frontends.size(), 1u);
  EXPECT_EQ(dp::to_string(t.services[0].frontends[0].addr), "203.0.113.10");
  EXPECT_EQ(t.services[0].frontends[0].port, 80);
  EXPECT_TRUE(t.notes.empty()) << t.notes[0];
}

TEST(NodeTranslate, SlicesAreNotTheBackends) {
  K8sEndpointSlice slice;
  slice.meta.ns = "shop";
  slice.meta.name = "web-abc";
  slice.meta.labels["kubernetes.io/service-name"] = "web";
  slice.address_type = "IPv4";
  slice.endpoints.push_back({{"10.244.1.5"}, {}, "worker-a", "", {}, {}});
  slice.ports = {{std::string("http"), "TCP", 8080}};
  const auto nodes = three_nodes();
  const Translation t = translate(lb_service(), {&slice}, ptrs(nodes), node_opts());
  EXPECT_EQ(backends(t, "shop/web:http/tcp/v4"),
            (std::vector<std::string>{"192.168.1.11:30080 ready", "192.168.1.12:30080 ready"}));
  // And no Nodes with pod targets: the slice is.
  const Translation pods = translate(lb_service(), {&slice}, ptrs(nodes), TranslateOptions{});
  EXPECT_EQ(backends(pods, "shop/web:http/tcp/v4"),
            (std::vector<std::string>{"10.244.1.5:8080 ready"}));
}

TEST(NodeTranslate, LocalPolicyGivesNewConnectionsToHealthyNodesOnly) {
  const auto nodes = three_nodes();
  TranslateOptions o = node_opts();
  std::vector<std::pair<std::string, std::string>> asked;
  o.node_verdict = [&](std::string_view svc, std::string_view n) -> std::optional<bool> {
    asked.emplace_back(svc, n);
    if (n == "worker-a") return true;
    return false;
  };
  const Translation t = translate(lb_service("Local"), {}, ptrs(nodes), o);
  // Failing: terminating, so its established connections stay and it takes no new ones.
  EXPECT_EQ(
      backends(t, "shop/web:http/tcp/v4"),
      (std::vector<std::string>{"192.168.1.11:30080 ready", "192.168.1.12:30080 terminating"}));
  EXPECT_EQ(t.services[0].mode, dp::ForwardMode::dnat);  // the client's address kept
  EXPECT_FALSE(has_note(t, "fail open"));
  // Asked once per node and family, not per port; never for an ineligible node.
  EXPECT_EQ(asked, (std::vector<std::pair<std::string, std::string>>{{"shop/web", "worker-a"},
                                                                     {"shop/web", "worker-b"}}));
}

TEST(NodeTranslate, LocalPolicyFailsOpenWhenNoNodeIsHealthy) {
  const auto nodes = three_nodes();
  TranslateOptions o = node_opts();
  // Nothing probed yet (no verdict function at all, as in `magline plan`).
  Translation t = translate(lb_service("Local"), {}, ptrs(nodes), o);
  EXPECT_EQ(backends(t, "shop/web:http/tcp/v4"),
            (std::vector<std::string>{"192.168.1.11:30080 terminating",
                                      "192.168.1.12:30080 terminating"}));
  EXPECT_TRUE(has_note(t, "(2 not probed yet, 0 failing)")) << t.notes.at(0);
  EXPECT_TRUE(has_note(t, "every eligible node takes new connections (fail open)"));
  // The Maglev table is sized for the nodes that take new connections: all of them.
  TranslateOptions sized = o;
  sized.table_size = 65521;
  sized.min_table_size = 1021;
  t = translate(lb_service("Local"), {}, ptrs(nodes), sized);
  EXPECT_EQ(t.services[0].table_size, 1021u);

  // Every verdict failing, or one unknown and one failing: the same.
  o.node_verdict = [](std::string_view, std::string_view n) -> std::optional<bool> {
    if (n == "worker-a") return std::nullopt;
    return false;
  };
  t = translate(lb_service("Local"), {}, ptrs(nodes), o);
  EXPECT_TRUE(has_note(t, "(1 not probed yet, 1 failing)"));
  // All healthy: ready, no note.
  o.node_verdict = [](std::string_view, std::string_view) { return std::optional<bool>(true); };
  t = translate(lb_service("Local"), {}, ptrs(nodes), o);
  EXPECT_EQ(backends(t, "shop/web:http/tcp/v4"),
            (std::vector<std::string>{"192.168.1.11:30080 ready", "192.168.1.12:30080 ready"}));
  EXPECT_TRUE(t.notes.empty());
}

TEST(NodeTranslate, LocalPolicyWithoutAHealthCheckPortCannotBeProbed) {
  const auto nodes = three_nodes();
  K8sService s = lb_service("Local");
  s.health_check_node_port = 0;
  TranslateOptions o = node_opts();
  o.node_verdict = [](std::string_view, std::string_view) { return std::optional<bool>(false); };
  const Translation t = translate(s, {}, ptrs(nodes), o);
  EXPECT_EQ(backends(t, "shop/web:http/tcp/v4"),
            (std::vector<std::string>{"192.168.1.11:30080 ready", "192.168.1.12:30080 ready"}));
  EXPECT_TRUE(has_note(t, "without a healthCheckNodePort"));
  EXPECT_FALSE(probed(s, o));
}

TEST(NodeTranslate, DualStackTakesEachNodesAddressOfTheFamily) {
  const std::vector<K8sNode> nodes = {
      node("dual", {{"InternalIP", "192.168.1.1"}, {"InternalIP", "fd00::1"}}),
      node("six", {{"InternalIP", "fd00::2"}}), node("four", {{"InternalIP", "192.168.1.3"}})};
  K8sService s = lb_service();
  s.cluster_ips = {"10.96.0.10", "fd00:96::10"};
  s.ports = {{"http", "TCP", 80, 30080}};
  s.ingress = {{"203.0.113.10", "", std::nullopt}, {"2001:db8::10", "", std::nullopt}};
  const Translation t = translate(s, {}, ptrs(nodes), node_opts());
  EXPECT_EQ(backends(t, "shop/web:http/tcp/v4"),
            (std::vector<std::string>{"192.168.1.1:30080 ready", "192.168.1.3:30080 ready"}));
  EXPECT_EQ(backends(t, "shop/web:http/tcp/v6"),
            (std::vector<std::string>{"[fd00::1]:30080 ready", "[fd00::2]:30080 ready"}));
}

TEST(NodeTranslate, AnIpv4ServiceWithOnlyIpv6NodesHasNoBackends) {
  const std::vector<K8sNode> nodes = {node("six", {{"InternalIP", "fd00::2"}})};
  const Translation t = translate(lb_service(), {}, ptrs(nodes), node_opts());
  ASSERT_EQ(t.services.size(), 2u);
  EXPECT_TRUE(t.services[0].backends.empty());
  EXPECT_EQ(t.services[0].no_backends, dp::NoBackends::reject);
  EXPECT_TRUE(has_note(t, "no eligible IPv4 node")) << t.notes.at(0);
}

TEST(NodeTranslate, NotReadyAndExcludedNodesAreNoTargets) {
  const std::vector<K8sNode> nodes = {node("down", {{"InternalIP", "192.168.1.1"}}, "Unknown"),
                                      node("cp", {{"InternalIP", "192.168.1.2"}}, "True",
                                           {{std::string(kExcludeFromLoadBalancersLabel), "true"}}),
                                      node("up", {{"InternalIP", "192.168.1.3"}})};
  const Translation t = translate(lb_service(), {}, ptrs(nodes), node_opts());
  EXPECT_EQ(backends(t, "shop/web:http/tcp/v4"),
            (std::vector<std::string>{"192.168.1.3:30080 ready"}));
}

TEST(NodeTranslate, APortWithoutANodePortYieldsNothing) {
  const auto nodes = three_nodes();
  K8sService s = lb_service();
  s.allocate_load_balancer_node_ports = false;
  s.ports[1].node_port = 0;  // https was never given one
  const Translation t = translate(s, {}, ptrs(nodes), node_opts());
  ASSERT_EQ(t.services.size(), 1u);
  EXPECT_EQ(t.services[0].name, "shop/web:http/tcp/v4");
  EXPECT_TRUE(has_note(t, "port https: no nodePort, which node targets need: skipped"));

  // An edge-reached ClusterIP Service (externalIPs) has no nodePort at all.
  K8sService c = lb_service();
  c.type = "ClusterIP";
  c.ingress.clear();
  c.external_ips = {"198.51.100.7"};
  for (ServicePort& p : c.ports)
    p.node_port = 0;
  const Translation ct = translate(c, {}, ptrs(nodes), node_opts());
  EXPECT_TRUE(ct.services.empty());
  EXPECT_EQ(ct.notes.size(), 2u);
}

TEST(NodeTranslate, DeterministicWhateverTheNodeOrder) {
  auto nodes = three_nodes();
  const Translation a = translate(lb_service(), {}, ptrs(nodes), node_opts());
  std::reverse(nodes.begin(), nodes.end());
  const Translation b = translate(lb_service(), {}, ptrs(nodes), node_opts());
  EXPECT_EQ(a.services, b.services);
  EXPECT_EQ(a.notes, b.notes);
}

// --- Probe targets -----------------------------------------------------------------------------

TEST(ProbeTargets, EachEligibleNodeOfEachProbedService) {
  const std::vector<K8sNode> nodes = {
      node("w2", {{"InternalIP", "192.168.1.12"}, {"InternalIP", "fd00::12"}}),
      node("w1", {{"InternalIP", "192.168.1.11"}}), node("six", {{"InternalIP", "fd00::13"}}),
      node("down", {{"InternalIP", "192.168.1.14"}}, "False"),
      node("cp", {{"InternalIP", "192.168.1.10"}}, "True",
           {{std::string(kExcludeFromLoadBalancersLabel), ""}})};
  K8sService local = lb_service("Local");  // IPv4 only
  K8sService v6first = lb_service("Local");
  v6first.meta.name = "api";
  v6first.cluster_ips = {"fd00:96::20", "10.96.0.20"};
  v6first.health_check_node_port = 32001;
  K8sService cluster = lb_service();
  cluster.meta.name = "cluster";
  K8sService no_port = lb_service("Local");
  no_port.meta.name = "noport";
  no_port.health_check_node_port = 0;

  const std::vector<ProbeTarget> got =
      probe_targets({&local, &cluster, &v6first, &no_port}, ptrs(nodes), node_opts());
  std::vector<std::string> text;
  for (const ProbeTarget& p : got) {
    text.push_back(p.service + " " + p.node + " " + dp::backend_id(p.addr, p.port));
  }
  EXPECT_EQ(text, (std::vector<std::string>{
                      "shop/api six [fd00::13]:32001",
                      "shop/api w1 192.168.1.11:32001",  // no IPv6: its IPv4 address
                      "shop/api w2 [fd00::12]:32001",    // the primary family first
                      "shop/web w1 192.168.1.11:32000",
                      "shop/web w2 192.168.1.12:32000",
                  }));
  // Pod targets: nothing to probe.
  EXPECT_TRUE(probe_targets({&local}, ptrs(nodes), TranslateOptions{}).empty());
}

// --- The plan ----------------------------------------------------------------------------------

TEST(NodePlan, AListWithNodesShowsNodeBackendsAndTheNodes) {
  json svc = {{"kind", "Service"},
              {"apiVersion", "v1"},
              {"metadata", {{"name", "web"}, {"namespace", "shop"}}},
              {"spec",
               {{"type", "NodePort"},
                {"clusterIPs", {"10.96.0.10"}},
                {"ports", {{{"name", "http"}, {"port", 80}, {"nodePort", 30080}}}}}}};
  json list = {{"kind", "List"},
               {"items",
                {svc, node_json("w1", {{"InternalIP", "192.168.1.11"}}),
                 node_json("w2", {{"InternalIP", "192.168.1.12"}}, "False")}}};
  auto objects = parse_list(list);
  ASSERT_TRUE(objects.ok()) << objects.error().message;
  ASSERT_EQ(objects->nodes.size(), 2u);
  TranslateOptions o = node_opts();
  o.node_addresses = {*dp::parse_ip("192.0.2.1")};
  const json plan = plan_to_json(build_plan(*objects, o));
  EXPECT_EQ(plan["options"]["targets"], "nodes");
  EXPECT_EQ(plan["services"][0]["backends"][0]["address"], "192.168.1.11");
  EXPECT_EQ(plan["services"][0]["backends"][0]["port"], 30080);
  EXPECT_EQ(plan["nodes"], json::parse(R"([
    {"name": "w1", "targets": ["192.168.1.11"], "excluded": ["IPv6: no IPv6 InternalIP"]},
    {"name": "w2", "targets": [], "excluded": ["IPv4: not Ready", "IPv6: not Ready"]}])"));

  // A NodeList reads too; and pod targets keep the plan as it was (no "nodes", no option).
  json node_list = {{"kind", "NodeList"},
                    {"items", {node_json("w1", {{"InternalIP", "192.168.1.11"}})}}};
  node_list["items"][0].erase("kind");
  auto nl = parse_list(node_list);
  ASSERT_TRUE(nl.ok()) << nl.error().message;
  EXPECT_EQ(nl->nodes.size(), 1u);
  const json pods = plan_to_json(build_plan(*objects, TranslateOptions{}));
  EXPECT_FALSE(pods.contains("nodes"));
  EXPECT_FALSE(pods["options"].contains("targets"));
}

TEST(NodePlan, NodeTargetsWithoutNodesSaySo) {
  K8sService s = lb_service();
  const Plan plan = build_plan({s}, {}, {}, node_opts());
  const std::vector<std::string> problems = plan_problems(plan);
  ASSERT_FALSE(problems.empty());
  EXPECT_NE(problems[0].find("node targets, and no Nodes in the input"), std::string::npos)
      << problems[0];
}

}  // namespace
}  // namespace magline::k8s
