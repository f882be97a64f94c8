#include "control/k8s_client/lease_client.hpp"

#include <nlohmann/json.hpp>

namespace magline::k8s {

namespace {

constexpr const char* kJson = "application/json";

std::string collection(const std::string& ns) {
  return "/apis/coordination.k8s.io/v1/namespaces/" + ns + "/leases";
}

std::string message_of(const HttpResponse& r) {
  if (!r.complete()) return r.error.empty() ? "the request did not complete" : r.error;
  const auto j = nlohmann::json::parse(r.body, nullptr, false);
  return !j.is_discarded() && j.is_object() && j.contains("message") && j["message"].is_string()
             ? j["message"].get<std::string>()
             : "HTTP " + std::to_string(r.status);
}

}  // namespace

LeaseOutcome LeaseClient::outcome_of(const HttpResponse& r) {
  LeaseOutcome o;
  o.status = r.status;
  if (r.complete() && r.status >= 200 && r.status < 300) {
    const auto j = nlohmann::json::parse(r.body, nullptr, false);
    auto lease = j.is_discarded() ? Result<Lease>(Error{"not JSON"}) : decode_lease(j);
    if (!lease) {
      o.error = "the server's answer does not read as a Lease: " + lease.error().message;
      return o;
    }
    o.kind = LeaseOutcome::Kind::done;
    o.lease = std::move(lease).value();
    return o;
  }
  o.error = message_of(r);
  if (r.complete() && r.status == 404) o.kind = LeaseOutcome::Kind::absent;
  if (r.complete() && r.status == 409) o.kind = LeaseOutcome::Kind::conflict;
  return o;
}

LeaseOutcome LeaseClient::get(const std::string& ns, const std::string& name) {
  return outcome_of(api_.get(collection(ns) + "/" + name));
}

LeaseOutcome LeaseClient::create(const Lease& lease) {
  return outcome_of(api_.send("POST", collection(lease.ns), lease_body(lease).dump(), kJson));
}

LeaseOutcome LeaseClient::update(const Lease& lease) {
  return outcome_of(
      api_.send("PUT", collection(lease.ns) + "/" + lease.name, lease_body(lease).dump(), kJson));
}

std::optional<std::vector<Lease>> LeaseClient::list(const std::string& ns,
                                                    const std::string& label_selector,
                                                    std::string& error) {
  const HttpResponse r = api_.get(collection(ns) + "?labelSelector=" + url_encode(label_selector));
  if (!r.complete() || r.status != 200) {
    error = message_of(r);
    return std::nullopt;
  }
  const auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("items") || !j["items"].is_array()) {
    error = "the server's answer is not a list";
    return std::nullopt;
  }
  std::vector<Lease> out;
  for (const auto& item : j["items"]) {
    if (auto l = decode_lease(item)) out.push_back(std::move(l).value());
  }
  return out;
}

}  // namespace magline::k8s
