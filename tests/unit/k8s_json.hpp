// Watched objects as the API server sends them (raw JSON), for the tests of what consumes watch
// events: a LoadBalancer Service with one port and one ingress IP, and an EndpointSlice of ready
// endpoints on port 8080, both in namespace "default".
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace magline::test {

inline nlohmann::json k8s_service(const std::string& name, const std::string& vip, int port = 80,
                                  const std::string& rv = "1") {
  using nlohmann::json;
  return {{"metadata", {{"namespace", "default"}, {"name", name}, {"resourceVersion", rv}}},
          {"spec",
           {{"type", "LoadBalancer"},
            {"clusterIP", "10.96.0.10"},
            {"ports", json::array({{{"name", "http"}, {"protocol", "TCP"}, {"port", port}}})}}},
          {"status", {{"loadBalancer", {{"ingress", json::array({{{"ip", vip}}})}}}}}};
}

inline nlohmann::json k8s_slice(const std::string& name, const std::string& svc,
                                std::vector<std::string> ips, const std::string& rv = "1") {
  using nlohmann::json;
  json eps = json::array();
  for (const std::string& a : ips) {
    eps.push_back({{"addresses", json::array({a})}, {"conditions", {{"ready", true}}}});
  }
  return {{"metadata",
           {{"namespace", "default"},
            {"name", name},
            {"resourceVersion", rv},
            {"labels", {{"kubernetes.io/service-name", svc}}}}},
          {"addressType", "IPv4"},
          {"endpoints", eps},
          {"ports", json::array({{{"name", "http"}, {"protocol", "TCP"}, {"port", 8080}}})}};
}

}  // namespace magline::test
