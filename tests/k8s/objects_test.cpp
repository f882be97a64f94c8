// Decoding Services and EndpointSlices: nil defaults kept visible, unknown fields and enum
// strings tolerated, wrong JSON types refused with the field's path and never an exception, and
// every upstream round-trip fixture read or refused cleanly.
#include "control/k8s/objects.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "control/k8s/plan.hpp"

namespace magline::k8s {
namespace {

using nlohmann::json;

json read_json(const std::filesystem::path& p) {
  std::ifstream in(p);
  return json::parse(in);
}

const std::filesystem::path kRoundTrip =
    std::filesystem::path(MAGLINE_K8S_TESTDATA) / "api-roundtrip";

json minimal_service() {
  return json::parse(R"({"metadata": {"name": "web", "namespace": "shop"},
                         "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}})");
}

json minimal_slice() {
  return json::parse(R"({"metadata": {"name": "web-1", "namespace": "shop",
                                      "labels": {"kubernetes.io/service-name": "web"}},
                         "addressType": "IPv4",
                         "endpoints": [{"addresses": ["10.0.0.1"]}],
                         "ports": [{"port": 8080}]})");
}

TEST(K8sDecode, NilConditionsStayNil) {
  auto s = decode_endpoint_slice(minimal_slice());
  ASSERT_TRUE(s.ok()) << s.error().message;
  ASSERT_EQ(s->endpoints.size(), 1u);
  const EndpointConditions& c = s->endpoints[0].conditions;
  EXPECT_FALSE(c.ready.has_value());
  EXPECT_FALSE(c.serving.has_value());
  EXPECT_FALSE(c.terminating.has_value());
  // A nil port name is not "": kube-proxy skips the one and matches the other.
  ASSERT_EQ(s->ports.size(), 1u);
  EXPECT_FALSE(s->ports[0].name.has_value());
  EXPECT_EQ(s->ports[0].protocol, "TCP");
  EXPECT_EQ(s->ports[0].port, 8080);
  EXPECT_EQ(s->service_name(), "web");
  EXPECT_EQ(s->service_key(), "shop/web");

  json j = minimal_slice();
  j["endpoints"][0]["conditions"] = {{"ready", nullptr}, {"serving", false}, {"terminating", true}};
  j["ports"][0]["name"] = "";
  auto t = decode_endpoint_slice(j);
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_FALSE(t->endpoints[0].conditions.ready.has_value());  // null is nil
  EXPECT_EQ(t->endpoints[0].conditions.serving, false);
  EXPECT_EQ(t->endpoints[0].conditions.terminating, true);
  EXPECT_EQ(t->ports[0].name, std::optional<std::string>(""));
}

TEST(K8sDecode, NullListsAsAnEmptyTypedObjectHasThem) {
  // What a BOOKMARK's empty EndpointSlice serialises (k8s-api.md §3.2), with a name added.
  auto s = decode_endpoint_slice(json::parse(
      R"({"metadata": {"name": "x", "namespace": "n", "creationTimestamp": null},
          "addressType": "", "endpoints": null, "ports": null})"));
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_TRUE(s->endpoints.empty());
  EXPECT_TRUE(s->ports.empty());
  EXPECT_EQ(s->service_key(), "");  // no service-name label: belongs to no Service
}

TEST(K8sDecode, MissingNameIsAnError) {
  json j = minimal_service();
  j["metadata"].erase("name");
  auto s = decode_service(j);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message, "metadata.name: missing");

  auto none = decode_service(json::parse(R"({"spec": {}})"));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().message, "metadata: missing");

  json k = minimal_slice();
  k["metadata"]["name"] = "";
  auto e = decode_endpoint_slice(k);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().message, "metadata.name: missing");
}

TEST(K8sDecode, WrongTypesAreErrorsNamingTheField) {
  struct Case {
    const char* what;
    json patch;  // merged into the minimal Service
    std::string error;
  };
  const Case cases[] = {
      {"string port", json::parse(R"({"spec": {"ports": [{"port": "80"}]}})"),
       "spec.ports[0].port: expected an integer in 0..65535, got \"80\""},
      {"port too large", json::parse(R"({"spec": {"ports": [{"port": 70000}]}})"),
       "spec.ports[0].port: expected an integer in 0..65535, got 70000"},
      {"fractional nodePort",
       json::parse(R"({"spec": {"ports": [{"port": 80, "nodePort": 3.5}]}})"),
       "spec.ports[0].nodePort: expected an integer in 0..65535, got 3.5"},
      {"ports an object", json::parse(R"({"spec": {"ports": {"port": 80}}})"),
       "spec.ports: expected an array, got object"},
      {"spec a string", json::parse(R"({"spec": "x"})"), "spec: expected an object, got string"},
      {"label a number", json::parse(R"({"metadata": {"labels": {"a": 1}}})"),
       "metadata.labels.a: expected a string, got number"},
      {"externalIPs of numbers", json::parse(R"({"spec": {"externalIPs": [1]}})"),
       "spec.externalIPs[0]: expected a string, got number"},
      {"ingress not a list", json::parse(R"({"status": {"loadBalancer": {"ingress": "1.2.3.4"}}})"),
       "status.loadBalancer.ingress: expected an array, got string"},
      {"boolean as string", json::parse(R"({"spec": {"publishNotReadyAddresses": "true"}})"),
       "spec.publishNotReadyAddresses: expected a boolean, got string"},
      {"negative timeout",
       json::parse(R"({"spec": {"sessionAffinityConfig": {"clientIP": {"timeoutSeconds": -1}}}})"),
       "spec.sessionAffinityConfig.clientIP.timeoutSeconds: expected an integer in 0..2147483647, "
       "got -1"},
      {"another kind", json::parse(R"({"kind": "Endpoints"})"),
       "kind: expected Service, got \"Endpoints\""},
  };
  for (const Case& c : cases) {
    json j = minimal_service();
    j.merge_patch(c.patch);
    auto s = decode_service(j);
    ASSERT_FALSE(s.ok()) << c.what;
    EXPECT_EQ(s.error().message, c.error) << c.what;
  }

  const struct {
    const char* what;
    json patch;
    std::string error;
  } slice_cases[] = {
      {"ready as a string",
       json::parse(
           R"({"endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": "yes"}}]})"),
       "endpoints[0].conditions.ready: expected a boolean, got string"},
      {"addresses a string", json::parse(R"({"endpoints": [{"addresses": "10.0.0.1"}]})"),
       "endpoints[0].addresses: expected an array, got string"},
      {"hint without object", json::parse(R"({"endpoints": [{"hints": {"forZones": ["a"]}}]})"),
       "endpoints[0].hints.forZones[0]: expected an object, got string"},
      {"port name a number", json::parse(R"({"ports": [{"name": 1}]})"),
       "ports[0].name: expected a string, got number"},
  };
  for (const auto& c : slice_cases) {
    json j = minimal_slice();
    j.merge_patch(c.patch);
    auto s = decode_endpoint_slice(j);
    ASSERT_FALSE(s.ok()) << c.what;
    EXPECT_EQ(s.error().message, c.error) << c.what;
  }

  // Not even an object: still an Error, not an exception.
  for (const json& j : {json(nullptr), json(3), json::array(), json("Service")}) {
    EXPECT_FALSE(decode_service(j).ok());
    EXPECT_FALSE(decode_endpoint_slice(j).ok());
  }
}

TEST(K8sDecode, DefaultsAndFallbacks) {
  json j = minimal_service();
  j["metadata"].erase("namespace");
  j["spec"]["clusterIP"] = "10.96.0.1";  // no clusterIPs: the singular field is the fallback
  auto s = decode_service(j);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->meta.ns, "default");
  EXPECT_EQ(s->meta.key(), "default/web");
  EXPECT_EQ(s->cluster_ips, std::vector<std::string>{"10.96.0.1"});
  EXPECT_EQ(s->ports[0].protocol, "TCP");
  EXPECT_EQ(s->ports[0].node_port, 0);
  EXPECT_FALSE(s->load_balancer_class.has_value());
  EXPECT_FALSE(s->allocate_load_balancer_node_ports.has_value());
  EXPECT_FALSE(s->affinity_timeout_s.has_value());
  EXPECT_FALSE(s->meta.deleting);
  EXPECT_FALSE(s->has_selector);

  j["spec"]["clusterIPs"] = {"10.96.0.2", "fd00::2"};
  auto both = decode_service(j);
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(both->cluster_ips, (std::vector<std::string>{"10.96.0.2", "fd00::2"}));

  json bare = json::parse(R"({"metadata": {"name": "x", "namespace": "n"}})");
  auto b = decode_service(bare);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->type, "ClusterIP");
  EXPECT_TRUE(b->ports.empty());
}

// HEAD's Service has every field of the current schema, with placeholder values.
TEST(K8sDecode, RoundTripServiceHead) {
  auto s = decode_service(read_json(kRoundTrip / "HEAD" / "core.v1.Service.json"));
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->meta.key(), "namespaceValue/nameValue");
  EXPECT_EQ(s->meta.resource_version, "resourceVersionValue");
  EXPECT_TRUE(s->meta.deleting);
  EXPECT_EQ(s->meta.labels.at("labelsKey"), "labelsValue");
  EXPECT_EQ(s->type, "typeValue");  // unknown enum strings are kept
  EXPECT_EQ(s->cluster_ips, std::vector<std::string>{"clusterIPsValue"});
  ASSERT_EQ(s->ports.size(), 1u);
  EXPECT_EQ(s->ports[0].name, "nameValue");
  EXPECT_EQ(s->ports[0].protocol, "protocolValue");
  EXPECT_EQ(s->ports[0].port, 3);
  EXPECT_EQ(s->ports[0].node_port, 5);
  EXPECT_EQ(s->external_ips, std::vector<std::string>{"externalIPsValue"});
  EXPECT_EQ(s->session_affinity, "sessionAffinityValue");
  EXPECT_EQ(s->affinity_timeout_s, 1u);
  EXPECT_EQ(s->load_balancer_source_ranges,
            std::vector<std::string>{"loadBalancerSourceRangesValue"});
  EXPECT_EQ(s->external_traffic_policy, "externalTrafficPolicyValue");
  EXPECT_EQ(s->internal_traffic_policy, "internalTrafficPolicyValue");
  EXPECT_EQ(s->health_check_node_port, 12);
  EXPECT_TRUE(s->publish_not_ready_addresses);
  EXPECT_EQ(s->ip_families, std::vector<std::string>{"ipFamiliesValue"});
  EXPECT_EQ(s->allocate_load_balancer_node_ports, true);
  EXPECT_EQ(s->load_balancer_class, std::optional<std::string>("loadBalancerClassValue"));
  EXPECT_EQ(s->traffic_distribution, std::optional<std::string>("trafficDistributionValue"));
  EXPECT_TRUE(s->has_selector);
  ASSERT_EQ(s->ingress.size(), 1u);
  EXPECT_EQ(s->ingress[0].ip, "ipValue");
  EXPECT_EQ(s->ingress[0].hostname, "hostnameValue");
  EXPECT_EQ(s->ingress[0].ip_mode, std::optional<std::string>("ipModeValue"));
}

TEST(K8sDecode, RoundTripSliceHeadHasNodeHints) {
  auto s = decode_endpoint_slice(
      read_json(kRoundTrip / "HEAD" / "discovery.k8s.io.v1.EndpointSlice.json"));
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->address_type, "addressTypeValue");
  ASSERT_EQ(s->endpoints.size(), 1u);
  const Endpoint& e = s->endpoints[0];
  EXPECT_EQ(e.addresses, std::vector<std::string>{"addressesValue"});
  EXPECT_EQ(e.conditions.ready, true);
  EXPECT_EQ(e.conditions.terminating, true);
  EXPECT_EQ(e.node_name, "nodeNameValue");
  EXPECT_EQ(e.zone, "zoneValue");
  EXPECT_EQ(e.hint_zones, std::vector<std::string>{"nameValue"});
  EXPECT_EQ(e.hint_nodes, std::vector<std::string>{"nameValue"});
  ASSERT_EQ(s->ports.size(), 1u);
  EXPECT_EQ(s->ports[0].name, std::optional<std::string>("nameValue"));
  EXPECT_EQ(s->ports[0].port, 3);
}

TEST(K8sDecode, OlderFilesLackNewerFields) {
  auto s = decode_service(read_json(kRoundTrip / "v1.29.0" / "core.v1.Service.json"));
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_FALSE(s->traffic_distribution.has_value());  // added in v1.30
  // v1beta1 slices carry the removed `topology` map instead of `zone`: ignored, not fatal.
  auto b = decode_endpoint_slice(
      read_json(kRoundTrip / "v1.29.0" / "discovery.k8s.io.v1beta1.EndpointSlice.json"));
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(b->endpoints.at(0).zone, "");
  EXPECT_TRUE(b->endpoints.at(0).hint_nodes.empty());
  EXPECT_EQ(b->endpoints.at(0).hint_zones, std::vector<std::string>{"nameValue"});
}

// Every fixture of every version: Services and EndpointSlices decode, and the other kinds are
// refused by both decoders with an Error, never an exception.
TEST(K8sDecode, EveryRoundTripFixture) {
  size_t files = 0, services = 0, slices = 0;
  for (const auto& dir : std::filesystem::directory_iterator(kRoundTrip)) {
    for (const auto& f : std::filesystem::directory_iterator(dir.path())) {
      if (f.path().extension() != ".json") continue;
      ++files;
      const std::string name = f.path().filename().string();
      const json j = read_json(f.path());
      Result<K8sService> svc = Error{"not run"};
      Result<K8sEndpointSlice> slice = Error{"not run"};
      EXPECT_NO_THROW(svc = decode_service(j)) << f.path();
      EXPECT_NO_THROW(slice = decode_endpoint_slice(j)) << f.path();
      if (name == "core.v1.Service.json") {
        EXPECT_TRUE(svc.ok()) << f.path() << ": " << svc.error().message;
        EXPECT_FALSE(slice.ok()) << f.path();
        ++services;
      } else if (name.find("EndpointSlice") != std::string::npos) {
        EXPECT_TRUE(slice.ok()) << f.path() << ": " << slice.error().message;
        EXPECT_FALSE(svc.ok()) << f.path();
        ++slices;
      } else {
        EXPECT_FALSE(svc.ok()) << f.path();
        EXPECT_FALSE(slice.ok()) << f.path();
        if (!svc.ok()) {
          EXPECT_FALSE(svc.error().message.empty());
        }
      }
      // parse_list takes any of them without throwing either.
      EXPECT_NO_THROW((void)parse_list(j)) << f.path();
    }
  }
  EXPECT_EQ(files, 27u);
  EXPECT_EQ(services, 4u);
  EXPECT_EQ(slices, 8u);
}

// Values of the wrong type at every position of a real fixture: an Error or a value, never an
// exception.
TEST(K8sDecode, NoExceptionForAnyMistypedField) {
  const json base = read_json(kRoundTrip / "HEAD" / "core.v1.Service.json");
  const json slice = read_json(kRoundTrip / "HEAD" / "discovery.k8s.io.v1.EndpointSlice.json");
  const json wrongs[] = {
      json(nullptr),           json(true), json(-1), json(1.5), json("s"), json::array({1}),
      json::object({{"k", 1}})};
  size_t mutated = 0;
  for (const json* doc : {&base, &slice}) {
    // Every leaf and every object or array above one.
    std::set<std::string> pointers;
    const json flat = doc->flatten();
    for (const auto& [leaf, value] : flat.items()) {
      for (json::json_pointer p(leaf); !p.empty(); p = p.parent_pointer()) {
        pointers.insert(p.to_string());
      }
    }
    for (const std::string& pointer : pointers) {
      for (const json& w : wrongs) {
        json j = *doc;
        j[json::json_pointer(pointer)] = w;
        EXPECT_NO_THROW((void)decode_service(j)) << pointer;
        EXPECT_NO_THROW((void)decode_endpoint_slice(j)) << pointer;
        EXPECT_NO_THROW((void)parse_list(j)) << pointer;
        ++mutated;
      }
    }
  }
  EXPECT_GT(mutated, 300u);
}

TEST(K8sParseList, KindsAndShapes) {
  // A List with kinds, a ServiceList without.
  json list = {{"kind", "List"}, {"items", json::array({minimal_service(), minimal_slice()})}};
  list["items"][0]["kind"] = "Service";
  list["items"][1]["kind"] = "EndpointSlice";
  auto l = parse_list(list);
  ASSERT_TRUE(l.ok()) << l.error().message;
  EXPECT_EQ(l->services.size(), 1u);
  EXPECT_EQ(l->slices.size(), 1u);
  EXPECT_TRUE(l->errors.empty());

  auto sl = parse_list({{"kind", "ServiceList"}, {"items", json::array({minimal_service()})}});
  ASSERT_TRUE(sl.ok());
  EXPECT_EQ(sl->services.size(), 1u);

  auto esl = parse_list({{"kind", "EndpointSliceList"}, {"items", nullptr}});
  ASSERT_TRUE(esl.ok());
  EXPECT_TRUE(esl->slices.empty());

  // In a plain List an item must say what it is; other kinds are listed as ignored.
  json mixed = {
      {"kind", "List"},
      {"items",
       json::array({minimal_service(),
                    {{"kind", "Deployment"}, {"metadata", {{"name", "d"}, {"namespace", "n"}}}}})}};
  auto m = parse_list(mixed);
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->services.empty());
  ASSERT_EQ(m->errors.size(), 1u);
  EXPECT_EQ(m->errors[0].object, "shop/web");
  EXPECT_EQ(m->errors[0].error, "items[0]: no kind");
  EXPECT_EQ(m->ignored, std::vector<std::string>{"items[1]: Deployment n/d"});

  // A single object.
  json one = minimal_slice();
  one["kind"] = "EndpointSlice";
  auto o = parse_list(one);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->slices.size(), 1u);

  // A bad item does not spoil the others; a duplicate is reported.
  json bad = {{"kind", "ServiceList"},
              {"items", json::array({minimal_service(), minimal_service(),
                                     json::parse(R"({"metadata": {"name": "x"}, "spec": 1})")})}};
  auto b = parse_list(bad);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->services.size(), 1u);
  ASSERT_EQ(b->errors.size(), 2u);
  EXPECT_EQ(b->errors[0].error, "items[1]: a second Service with this name: ignored");
  EXPECT_EQ(b->errors[1].object, "default/x");
  EXPECT_EQ(b->errors[1].error, "items[2]: spec: expected an object, got number");

  // Documents that are none of these.
  EXPECT_FALSE(parse_list(json::array()).ok());
  EXPECT_FALSE(parse_list(json::parse(R"({"kind": "Pod", "metadata": {"name": "p"}})")).ok());
  EXPECT_FALSE(parse_list(json::parse(R"({"kind": "PodList", "items": []})")).ok());
  EXPECT_FALSE(parse_list(json::parse(R"({"kind": "List", "items": {}})")).ok());
  EXPECT_FALSE(parse_list(json::object()).ok());
}

}  // namespace
}  // namespace magline::k8s
