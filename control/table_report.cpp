#include "control/table_report.hpp"

#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

namespace magline::cli {

namespace {

std::string frontend_text(const dp::Frontend& f) {
  return dp::to_string(f) + " (" + std::string(dp::to_string(f.kind)) + ")";
}

std::string percent(uint32_t part, uint32_t whole) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.2f%%", whole ? 100.0 * part / whole : 0.0);
  return buf;
}

}  // namespace

std::string table_text(const dp::Snapshot& snapshot, bool dump) {
  std::ostringstream o;
  for (const auto& state : snapshot.services()) {
    const dp::Service& s = state->spec();
    const dp::MaglevTable& t = state->table();
    o << "service " << s.name << "  mode " << dp::to_string(s.mode) << "  M " << t.size();
    if (!state->has_backends()) o << "  no usable backend: " << dp::to_string(s.no_backends);
    if (state->serving_terminating()) o << "  (serving terminating backends)";
    if (const dp::ConnectionLimit& l = s.new_connections; l.limited()) {
      o << "  new connections " << l.rate << "/s burst " << (l.burst != 0 ? l.burst : l.rate);
    }
    if (s.mode == dp::ForwardMode::full_nat && s.syn_proxy != dp::SynProxy::automatic) {
      o << "  SYN proxy " << dp::to_string(s.syn_proxy);  // the default goes unsaid
    }
    o << "\n";
    for (const dp::Frontend& f : s.frontends) o << "  frontend " << frontend_text(f) << "\n";
    const std::vector<uint32_t> counts = t.slot_counts();
    for (size_t i = 0; i < s.backends.size(); ++i) {
      const dp::Backend& b = s.backends[i];
      char line[160];
      std::snprintf(line, sizeof line, "  backend %-42s weight %-5u %-11s slots %-7u %s\n",
                    dp::backend_id(b.addr, b.port).c_str(), b.weight,
                    std::string(dp::to_string(b.state)).c_str(), counts[i],
                    percent(counts[i], t.size()).c_str());
      o << line;
    }
    if (dump && !t.empty()) {
      for (size_t slot = 0; slot < t.slots().size(); ++slot) {
        const dp::Backend& b = s.backends[t.slots()[slot]];
        o << "  slot " << slot << " " << dp::backend_id(b.addr, b.port) << "\n";
      }
    }
  }
  return o.str();
}

std::string table_json(const dp::Snapshot& snapshot, bool dump) {
  nlohmann::ordered_json services = nlohmann::ordered_json::array();
  for (const auto& state : snapshot.services()) {
    const dp::Service& s = state->spec();
    const dp::MaglevTable& t = state->table();
    nlohmann::ordered_json svc;
    svc["name"] = s.name;
    svc["mode"] = dp::to_string(s.mode);
    svc["table_size"] = t.size();
    svc["has_backends"] = state->has_backends();
    svc["serving_terminating"] = state->serving_terminating();
    svc["no_backends"] = dp::to_string(s.no_backends);
    if (const dp::ConnectionLimit& l = s.new_connections; l.limited()) {
      svc["new_connection_limit"] = {{"rate", l.rate}, {"burst", l.burst != 0 ? l.burst : l.rate}};
    }
    if (s.mode == dp::ForwardMode::full_nat) svc["syn_proxy"] = dp::to_string(s.syn_proxy);
    nlohmann::ordered_json frontends = nlohmann::ordered_json::array();
    for (const dp::Frontend& f : s.frontends) {
      frontends.push_back({{"address", dp::to_string(f.addr)},
                           {"port", f.port},
                           {"protocol", dp::to_string(f.proto)},
                           {"kind", dp::to_string(f.kind)}});
    }
    svc["frontends"] = std::move(frontends);
    const std::vector<uint32_t> counts = t.slot_counts();
    nlohmann::ordered_json backends = nlohmann::ordered_json::array();
    for (size_t i = 0; i < s.backends.size(); ++i) {
      const dp::Backend& b = s.backends[i];
      backends.push_back({{"address", dp::to_string(b.addr)},
                          {"port", b.port},
                          {"weight", b.weight},
                          {"state", dp::to_string(b.state)},
                          {"slots", counts[i]}});
    }
    svc["backends"] = std::move(backends);
    if (dump) {
      // Backend index per slot (into "backends"); empty when no backend is usable.
      svc["slots"] = std::vector<uint16_t>(t.slots().begin(), t.slots().end());
    }
    services.push_back(std::move(svc));
  }
  return nlohmann::ordered_json{{"services", std::move(services)}}.dump(2) + "\n";
}

}  // namespace magline::cli
