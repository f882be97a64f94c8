// control/k8s_client/k8s_document: YAML to JSON as Kubernetes types read it, and `plan`'s input
// told apart by content. The same objects as JSON and as YAML must be the same document.
#include "control/k8s_client/k8s_document.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "control/k8s/plan.hpp"

namespace magline::control {
namespace {

using Json = nlohmann::json;

const std::string kDir = std::string(MAGLINE_K8S_CLIENT_TESTDATA) + "/documents";

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Json yaml(const std::string& text) {
  auto j = yaml_to_json(text);
  EXPECT_TRUE(j) << (j ? "" : j.error().message);
  return j ? *j : Json();
}

// Upstream's fixtures decode to identical objects from either form (every field, placeholder
// values such as name "2" in v1.29.0 included).
TEST(K8sDocument, YamlIsTheSameObjectAsJsonForUpstreamFixtures) {
  for (const char* v : {"HEAD", "v1.29.0"}) {
    for (const char* kind : {"core.v1.Service", "discovery.k8s.io.v1.EndpointSlice"}) {
      const std::string base = kDir + "/api-roundtrip/" + v + "." + kind;
      EXPECT_EQ(yaml(slurp(base + ".yaml")), Json::parse(slurp(base + ".json"))) << base;
    }
  }
}

// Where Kubernetes types say string, a plain scalar is the text written; elsewhere YAML 1.2's
// core schema: `80` a number, `true` a boolean, `yes` and `on` strings, `~` null.
TEST(K8sDocument, ScalarsResolveAsKubernetesTypesSay) {
  const Json j = yaml(R"(
kind: Service
metadata:
  name: 8080
  labels: {port: 80, enabled: true, on: on, tilde: nothing}
  annotations:
    a: yes
    b: 1.5
    c: |
      80
spec:
  type: NodePort
  selector: {app: 0x10}
  ports:
  - {name: 443, port: 80, nodePort: 0x7531, targetPort: http, protocol: TCP}
  - {name: "8080", port: +81, targetPort: 8080}
  publishNotReadyAddresses: true
  allocateLoadBalancerNodePorts: false
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 10800}}
  clusterIPs: [10.96.0.1]
  loadBalancerIP: ~
  other: [yes, on, 1e3, null, '', 1.0]
)");
  EXPECT_EQ(j["metadata"]["name"], "8080");
  EXPECT_EQ(j["metadata"]["labels"],
            Json({{"port", "80"}, {"enabled", "true"}, {"on", "on"}, {"tilde", "nothing"}}));
  EXPECT_EQ(j["metadata"]["annotations"], Json({{"a", "yes"}, {"b", "1.5"}, {"c", "80\n"}}));
  EXPECT_EQ(j["spec"]["selector"]["app"], "0x10");
  const Json& p = j["spec"]["ports"];
  EXPECT_EQ(p[0], Json({{"name", "443"},
                        {"port", 80},
                        {"nodePort", 30001},
                        {"targetPort", "http"},
                        {"protocol", "TCP"}}));
  EXPECT_EQ(p[1]["name"], "8080");
  EXPECT_EQ(p[1]["port"], 81);
  EXPECT_EQ(p[1]["targetPort"], 8080);  // int-or-string: a number when it is one
  EXPECT_TRUE(p[1]["port"].is_number_integer());
  EXPECT_EQ(j["spec"]["publishNotReadyAddresses"], true);
  EXPECT_EQ(j["spec"]["allocateLoadBalancerNodePorts"], false);
  EXPECT_EQ(j["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"], 10800);
  EXPECT_EQ(j["spec"]["clusterIPs"], Json::array({"10.96.0.1"}));
  EXPECT_TRUE(j["spec"]["loadBalancerIP"].is_null());  // null is null, as in JSON
  EXPECT_EQ(j["spec"]["other"], Json::parse(R"(["yes", "on", 1000.0, null, "", 1.0])"));
}

TEST(K8sDocument, ContentNotNameDecidesTheFormat) {
  const auto json = parse_k8s_document(" \n{\"kind\": \"List\", \"items\": []}", "a.yaml");
  ASSERT_TRUE(json);
  EXPECT_EQ((*json)["kind"], "List");
  const auto y = parse_k8s_document("# kubectl get -o yaml\nkind: List\nitems: []\n", "a.json");
  ASSERT_TRUE(y) << y.error().message;
  EXPECT_EQ(*y, Json({{"kind", "List"}, {"items", Json::array()}}));
  const auto bad = parse_k8s_document("{\"kind\": ", "k.json");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message.rfind("k.json: invalid JSON: ", 0), 0u) << bad.error().message;
}

// Errors: one line, the file, line and column.
TEST(K8sDocument, ErrorsNameFileLineAndColumn) {
  const auto bad = parse_k8s_document("kind: List\nitems:\n  - [unclosed\n", "k.yaml");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message.rfind("k.yaml:", 0), 0u) << bad.error().message;
  EXPECT_NE(bad.error().message.find(": invalid YAML: "), std::string::npos);
  EXPECT_EQ(bad.error().message.find('\n'), std::string::npos);
  const auto huge =
      parse_k8s_document("kind: Service\nspec:\n  ports: [{port: 1e999}]\n", "h.yaml");
  ASSERT_FALSE(huge);
  EXPECT_EQ(huge.error().message, "h.yaml:3:18: number overflow parsing '1e999'");
  const auto nan = parse_k8s_document("a: 1\nb: .nan\n", "n.yaml");
  ASSERT_FALSE(nan);
  EXPECT_EQ(nan.error().message, "n.yaml:2:4: '.nan' is not a number JSON can hold");
  const auto key = parse_k8s_document("? [a, b]\n: c\n", "k.yaml");
  ASSERT_FALSE(key);
  EXPECT_EQ(key.error().message, "k.yaml:1:3: a key must be a plain value");
}

// Manifests separated by `---`: one List; a List among them adds its items (a ServiceList's
// carry their kind); empty documents are nothing.
TEST(K8sDocument, SeveralDocumentsMakeOneList) {
  const auto j = parse_k8s_document(R"(---
kind: Service
metadata: {name: a}
---
# nothing but a comment
---
kind: ServiceList
items:
- metadata: {name: b}
---
kind: List
items:
- {kind: EndpointSlice, metadata: {name: c}}
---
)",
                                    "m.yaml");
  ASSERT_TRUE(j) << j.error().message;
  const Json& items = (*j)["items"];
  EXPECT_EQ((*j)["kind"], "List");
  ASSERT_EQ(items.size(), 3u) << j->dump();
  EXPECT_EQ(items[0]["metadata"]["name"], "a");
  EXPECT_EQ(items[1], Json({{"kind", "Service"}, {"metadata", {{"name", "b"}}}}));
  EXPECT_EQ(items[2]["kind"], "EndpointSlice");
}

// The captured objects, as YAML manifests and as one JSON List (kind-captured.json: the files'
// objects in name order), are the same document and plan identically, scenario by scenario
// (the files named alike: one Service and its slices; some hold one object at two moments).
TEST(K8sDocument, CapturedObjectsPlanTheSameFromYamlAndJson) {
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(kDir + "/kind-captured")) {
    files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  ASSERT_EQ(files.size(), 17u);
  const Json all = Json::parse(slurp(kDir + "/kind-captured.json"))["items"];
  ASSERT_EQ(all.size(), files.size());

  std::map<std::string, std::pair<std::string, Json>> scenarios;  // YAML manifests, JSON List
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string name = std::filesystem::path(files[i]).filename().string();
    auto& [manifests, list] = scenarios[name.substr(0, name.find('.'))];
    manifests += "---\n" + slurp(files[i]);
    if (list.is_null())
      list = Json{{"apiVersion", "v1"}, {"kind", "List"}, {"items", Json::array()}};
    list["items"].push_back(all[i]);
  }
  EXPECT_EQ(scenarios.size(), 6u);
  k8s::TranslateOptions opts;
  opts.node_addresses = {*dp::parse_ip("198.18.0.1"), *dp::parse_ip("2001:db8::1")};
  opts.load_balancer_class = "test";
  opts.default_load_balancer_class = true;
  size_t services = 0;
  for (const auto& [scenario, input] : scenarios) {
    const auto from_yaml = parse_k8s_document(input.first, scenario + ".yaml");
    ASSERT_TRUE(from_yaml) << from_yaml.error().message;
    EXPECT_EQ(*from_yaml, input.second) << scenario;
    const auto objects_yaml = k8s::parse_list(*from_yaml);
    const auto objects_json = k8s::parse_list(input.second);
    ASSERT_TRUE(objects_yaml && objects_json) << scenario;
    for (const k8s::PlanError& e : objects_yaml->errors) {
      EXPECT_NE(e.error.find(": a second "), std::string::npos) << scenario << ": " << e.error;
    }
    const std::string plan = k8s::plan_json(k8s::build_plan(*objects_yaml, opts));
    EXPECT_EQ(plan, k8s::plan_json(k8s::build_plan(*objects_json, opts))) << scenario;
    services += Json::parse(plan)["services"].size();
  }
  EXPECT_GE(services, 6u);
}

}  // namespace
}  // namespace magline::control
