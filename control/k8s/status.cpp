#include "control/k8s/status.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace magline::k8s {

std::vector<LoadBalancerIngress> ingress_of(const std::vector<dp::IpAddr>& addrs) {
  std::vector<LoadBalancerIngress> out;
  for (const dp::IpAddr& a : addrs) out.push_back({dp::to_string(a), "", std::string("VIP")});
  return out;
}

bool ingress_is(const K8sService& svc, const std::vector<dp::IpAddr>& addrs) {
  if (svc.ingress.size() != addrs.size()) return false;
  for (size_t i = 0; i < addrs.size(); ++i) {
    const LoadBalancerIngress& in = svc.ingress[i];
    const auto ip = dp::parse_ip(in.ip);
    if (!ip || *ip != addrs[i] || !in.hostname.empty()) return false;
    if (in.ip_mode && *in.ip_mode != "VIP") return false;
  }
  return true;
}

std::string ingress_patch(std::string_view resource_version,
                          const std::vector<dp::IpAddr>& addrs) {
  nlohmann::ordered_json ingress = nullptr;
  if (!addrs.empty()) {
    ingress = nlohmann::ordered_json::array();
    for (const dp::IpAddr& a : addrs) ingress.push_back({{"ip", dp::to_string(a)}, {"ipMode", "VIP"}});
  }
  nlohmann::ordered_json patch = {
      {"metadata", {{"resourceVersion", std::string(resource_version)}}},
      {"status", {{"loadBalancer", {{"ingress", std::move(ingress)}}}}}};
  return patch.dump();
}

std::vector<std::string> finalizers_with(const std::vector<std::string>& finalizers, bool ours) {
  std::vector<std::string> out;
  for (const std::string& f : finalizers) {
    if (f != kFinalizer) out.push_back(f);
  }
  if (ours) out.emplace_back(kFinalizer);
  return out;
}

std::string finalizers_patch(std::string_view resource_version,
                             const std::vector<std::string>& finalizers) {
  nlohmann::ordered_json patch = {{"metadata",
                                   {{"resourceVersion", std::string(resource_version)},
                                    {"finalizers", finalizers}}}};
  return patch.dump();
}

}  // namespace magline::k8s
