#include "control/k8s_client/service_writer.hpp"

#include <nlohmann/json.hpp>

#include "control/k8s/status.hpp"

namespace magline::k8s {

namespace {

constexpr const char* kMergePatch = "application/merge-patch+json";

std::string service_path(const std::string& ns, const std::string& name) {
  return "/api/v1/namespaces/" + ns + "/services/" + name;
}

}  // namespace

WriteOutcome ServiceWriter::outcome_of(const HttpResponse& r) {
  WriteOutcome o;
  o.status = r.status;
  if (!r.complete()) {
    o.kind = WriteOutcome::Kind::failed;
    o.error = r.error.empty() ? "the request did not complete" : r.error;
    return o;
  }
  if (r.status >= 200 && r.status < 300) {
    const auto j = nlohmann::json::parse(r.body, nullptr, false);
    auto svc = j.is_discarded() ? Result<K8sService>(Error{"not JSON"}) : decode_service(j);
    if (!svc) {
      o.kind = WriteOutcome::Kind::failed;
      o.error = "the server's answer does not read as a Service: " + svc.error().message;
      return o;
    }
    o.kind = WriteOutcome::Kind::done;
    o.service = std::move(svc).value();
    return o;
  }
  const auto j = nlohmann::json::parse(r.body, nullptr, false);
  o.error = !j.is_discarded() && j.is_object() && j.contains("message") && j["message"].is_string()
                ? j["message"].get<std::string>()
                : "HTTP " + std::to_string(r.status);
  if (r.status == 409) {
    o.kind = WriteOutcome::Kind::conflict;
  } else if (r.status == 404) {
    o.kind = WriteOutcome::Kind::gone;
  } else if (r.status >= 400 && r.status < 500) {
    o.kind = WriteOutcome::Kind::refused;
  } else {
    o.kind = WriteOutcome::Kind::failed;
  }
  return o;
}

WriteOutcome ServiceWriter::read(const std::string& ns, const std::string& name) {
  return outcome_of(api_.get(service_path(ns, name)));
}

WriteOutcome ServiceWriter::set_ingress(const K8sService& from,
                                        const std::vector<dp::IpAddr>& addrs) {
  return outcome_of(api_.send("PATCH", service_path(from.meta.ns, from.meta.name) + "/status",
                              ingress_patch(from.meta.resource_version, addrs), kMergePatch));
}

WriteOutcome ServiceWriter::set_finalizer(const K8sService& from, bool ours) {
  return outcome_of(api_.send(
      "PATCH", service_path(from.meta.ns, from.meta.name),
      finalizers_patch(from.meta.resource_version, finalizers_with(from.meta.finalizers, ours)),
      kMergePatch));
}

}  // namespace magline::k8s
