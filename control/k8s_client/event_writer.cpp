#include "control/k8s_client/event_writer.hpp"

#include <nlohmann/json.hpp>

namespace magline::k8s {

namespace {

constexpr size_t kMaxNote = 1024;     // the API server's limit on note
constexpr size_t kMaxInstance = 128;  // and on reportingInstance

std::string events_path(const std::string& ns) {
  return "/apis/events.k8s.io/v1/namespaces/" + ns + "/events";
}

// Cut to at most `n` bytes, never inside a UTF-8 sequence.
std::string cut(std::string s, size_t n) {
  if (s.size() <= n) return s;
  size_t end = n;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80)
    --end;
  s.resize(end);
  return s;
}

}  // namespace

EventWriter::EventWriter(ApiClient& api, std::string instance)
    : api_(api), instance_(cut(std::move(instance), kMaxInstance)) {}

std::string EventWriter::create_body(const EventWrite& w) const {
  const EventSpec& e = w.spec;
  nlohmann::ordered_json j = {{"apiVersion", "events.k8s.io/v1"},
                              {"kind", "Event"},
                              {"metadata", {{"name", w.name}, {"namespace", e.regarding.ns}}},
                              {"eventTime", micro_time(w.first)},
                              {"reportingController", kEventController},
                              {"reportingInstance", instance_},
                              {"action", e.action},
                              {"reason", e.reason},
                              {"type", e.warning ? "Warning" : "Normal"},
                              {"note", cut(e.note, kMaxNote)},
                              {"regarding",
                               {{"kind", "Service"},
                                {"namespace", e.regarding.ns},
                                {"name", e.regarding.name},
                                {"uid", e.regarding.uid},
                                {"apiVersion", "v1"},
                                {"resourceVersion", e.regarding.resource_version}}}};
  if (w.count > 1) {
    j["series"] = {{"count", w.count}, {"lastObservedTime", micro_time(w.last)}};
  }
  return j.dump();
}

std::string EventWriter::series_body(const EventWrite& w) {
  const nlohmann::json j = {
      {"series", {{"count", w.count}, {"lastObservedTime", micro_time(w.last)}}}};
  return j.dump();
}

EventOutcome EventWriter::write(const EventWrite& w) {
  const HttpResponse r =
      w.kind == EventWrite::Kind::create
          ? api_.send("POST", events_path(w.spec.regarding.ns), create_body(w), "application/json")
          : api_.send("PATCH", events_path(w.spec.regarding.ns) + "/" + w.name, series_body(w),
                      "application/merge-patch+json");
  EventOutcome o;
  o.status = r.status;
  if (!r.complete()) {
    o.error = r.error.empty() ? "the request did not complete" : r.error;
    return o;
  }
  if (r.status >= 200 && r.status < 300) {
    o.ok = true;
    return o;
  }
  const auto j = nlohmann::json::parse(r.body, nullptr, false);
  o.error = !j.is_discarded() && j.is_object() && j.contains("message") && j["message"].is_string()
                ? j["message"].get<std::string>()
                : "HTTP " + std::to_string(r.status);
  return o;
}

}  // namespace magline::k8s
