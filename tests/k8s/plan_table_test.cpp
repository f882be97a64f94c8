// `magline plan --output table`: golden text for a small input, every section present.
#include "control/k8s/plan_table.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "control/k8s/plan.hpp"

namespace magline::k8s {
namespace {

Plan small_plan() {
  const auto doc = nlohmann::json::parse(R"({"kind": "List", "items": [
    {"kind": "Service", "metadata": {"name": "web", "namespace": "shop",
                                     "annotations": {"magline.io/new-connection-rate": "1000"}},
     "spec": {"type": "LoadBalancer", "loadBalancerClass": "example.com/lb",
              "sessionAffinity": "ClientIP",
              "ports": [{"name": "http", "protocol": "TCP", "port": 80, "nodePort": 30080}]},
     "status": {"loadBalancer": {"ingress": [{"ip": "198.18.100.9"}]}}},
    {"kind": "Service", "metadata": {"name": "dns", "namespace": "kube-system"},
     "spec": {"type": "NodePort", "ipFamilies": ["IPv6"],
              "ports": [{"name": "dns", "protocol": "UDP", "port": 53, "nodePort": 30053}]}},
    {"kind": "Service", "metadata": {"name": "internal", "namespace": "shop"},
     "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.11", "ports": [{"port": 80}]}},
    {"kind": "Service", "metadata": {"name": "api", "namespace": "shop"},
     "spec": {"type": "LoadBalancer", "loadBalancerClass": "example.com/lb",
              "loadBalancerIP": "203.0.113.1", "ports": [{"port": 443}]}},
    {"kind": "Service", "metadata": {"name": "broken", "namespace": "shop"},
     "spec": {"ports": "80"}},
    {"kind": "EndpointSlice",
     "metadata": {"name": "web-x", "namespace": "shop",
                  "labels": {"kubernetes.io/service-name": "web"}},
     "addressType": "IPv4",
     "endpoints": [{"addresses": ["198.18.1.10"]},
                   {"addresses": ["198.18.1.11"], "conditions": {"ready": false,
                    "serving": true, "terminating": true}}],
     "ports": [{"name": "http", "protocol": "TCP", "port": 8080}]},
    {"kind": "EndpointSlice",
     "metadata": {"name": "gone-x", "namespace": "shop",
                  "labels": {"kubernetes.io/service-name": "gone"}},
     "addressType": "IPv4", "endpoints": [], "ports": []}
  ]})");
  auto objects = parse_list(doc);
  EXPECT_TRUE(objects);
  TranslateOptions opts;
  opts.node_addresses = {*dp::parse_ip("198.18.0.1"), *dp::parse_ip("2001:db8::1")};
  opts.load_balancer_class = "example.com/lb";
  dp::AddressPool edge;
  edge.name = "edge";
  edge.ranges = {*dp::parse_range("198.18.100.0/29")};
  opts.pools = {edge};
  return build_plan(*objects, opts);
}

TEST(PlanTable, GoldenText) {
  const std::string got = plan_table(small_plan());
  const std::string want = R"(FRONTENDS (3 services, 4 rows)
SERVICE                     KIND          FRONTEND                 BACKENDS  MODE      NOTES
kube-system/dns:dns/udp/v6  NodePort      [2001:db8::1]:30053/udp  0/0       full_nat  no ready backend: reject, notes: 2
shop/api:443/tcp/v4         -             -                        0/0       full_nat  no ready backend: reject, notes: 2
shop/web:http/tcp/v4        LoadBalancer  198.18.100.9:80/tcp      1/2       full_nat  affinity 10800s, new connections 1000/s, notes: 1
shop/web:http/tcp/v4        NodePort      198.18.0.1:30080/tcp     1/2       full_nat  affinity 10800s, new connections 1000/s, notes: 1

SKIPPED
SERVICE        REASON
shop/internal  type ClusterIP without externalIPs: reached only inside the cluster

NOTES
SERVICE          NOTE
kube-system/dns  no cluster IP: programmed for IPv6 (spec.ipFamilies)
kube-system/dns  no EndpointSlices: new connections are rejected
shop/api         no cluster IP: programmed for IPv4 (the default)
shop/api         no EndpointSlices: new connections are rejected
shop/gone        EndpointSlice gone-x: no such Service
shop/web         no cluster IP: programmed for IPv4 (the default)

NOT READ
OBJECT       ERROR
shop/broken  items[4]: spec.ports: expected an array, got string

PROVIDER ASSIGNMENTS
SERVICE   ADDRESSES     POOL                    WHY
shop/api  -             refused: outside_pools  203.0.113.1 is in no address pool this Service may use
shop/web  198.18.100.0  edge                    first free address of pool edge

POOLS
POOL  SIZE  USED
edge  8     1
)";
  EXPECT_EQ(got, want) << got;
}

// The JSON view names a service's new-connection limit when it has one, and only then.
TEST(PlanTable, JsonNamesTheNewConnectionLimit) {
  const auto j = nlohmann::json::parse(plan_json(small_plan()));
  int limited = 0;
  for (const auto& s : j.at("services")) {
    if (s.at("name").get<std::string>().starts_with("shop/web:")) {
      EXPECT_EQ(s.at("new_connection_limit"), nlohmann::json({{"rate", 1000}, {"burst", 1000}}));
      ++limited;
    } else {
      EXPECT_FALSE(s.contains("new_connection_limit")) << s;
    }
  }
  EXPECT_EQ(limited, 1);
}

// Without pools there is no provider section; an empty plan is the header alone.
TEST(PlanTable, NoPoolsNoProviderSection) {
  EXPECT_EQ(plan_table(Plan{}),
            "FRONTENDS (0 services, 0 rows)\nSERVICE  KIND  FRONTEND  BACKENDS  MODE  NOTES\n");
}

}  // namespace
}  // namespace magline::k8s
