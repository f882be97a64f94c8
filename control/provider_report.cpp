#include "control/provider_report.hpp"

#include <sstream>

namespace magline::control {

namespace {

// One HELP and TYPE per family, its samples under it (the exposition format's rule).
class Families {
 public:
  void family(const char* name, const char* type, const char* help) {
    o_ << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  }
  template <typename T>
  void sample(const char* name, const std::string& labels, T value) {
    o_ << name;
    if (!labels.empty()) o_ << '{' << labels << '}';
    o_ << ' ' << value << '\n';
  }
  std::string text() const { return o_.str(); }

 private:
  std::ostringstream o_;
};

std::string quoted(const std::string& v) {
  std::string out = "\"";
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

}  // namespace

std::string provider_metrics(const ProviderReport& r) {
  Families m;
  m.family("magline_provider_synced", "gauge",
           "1 once the provider has read every Service and restored their addresses.");
  m.sample("magline_provider_synced", "", r.synced ? 1 : 0);
  m.family("magline_provider_pool_addresses", "gauge", "Addresses in an address pool.");
  for (const k8s::Ipam::Usage& u : r.pools) {
    m.sample("magline_provider_pool_addresses", "pool=" + quoted(u.pool), u.size);
  }
  m.family("magline_provider_pool_addresses_used", "gauge",
           "Addresses of a pool held by at least one Service.");
  for (const k8s::Ipam::Usage& u : r.pools) {
    m.sample("magline_provider_pool_addresses_used", "pool=" + quoted(u.pool), u.used);
  }
  m.family("magline_provider_services", "gauge", "Services holding addresses.");
  m.sample("magline_provider_services", "", r.allocations.size());
  m.family("magline_provider_assignments_total", "counter",
           "Addresses written into a Service's status.");
  m.sample("magline_provider_assignments_total", "", r.assignments);
  m.family("magline_provider_releases_total", "counter",
           "Services that gave up the addresses they held.");
  m.sample("magline_provider_releases_total", "", r.releases);
  m.family("magline_provider_restored_total", "counter",
           "Assignments taken back from Services' statuses at start.");
  m.sample("magline_provider_restored_total", "", r.restored);
  m.family("magline_provider_refusals_total", "counter",
           "Services refused an address, once per refusal, by reason.");
  for (const auto& [reason, n] : r.refusals) {
    m.sample("magline_provider_refusals_total", "reason=" + quoted(reason), n);
  }
  m.family("magline_provider_writes_total", "counter",
           "Status and finalizer writes to Services, by outcome.");
  m.sample("magline_provider_writes_total", "outcome=\"done\"", r.writes);
  m.sample("magline_provider_writes_total", "outcome=\"conflict\"", r.conflicts);
  m.sample("magline_provider_writes_total", "outcome=\"failed\"", r.failures);
  m.family("magline_provider_events_total", "counter",
           "Occurrences recorded as Events on Services, by what became of them.");
  m.sample("magline_provider_events_total", "result=\"new\"",
           r.events.observed - r.events.repeats - r.events.dropped);
  m.sample("magline_provider_events_total", "result=\"repeat\"", r.events.repeats);
  m.sample("magline_provider_events_total", "result=\"dropped\"", r.events.dropped);
  m.family("magline_provider_event_writes_total", "counter",
           "Event creations and series updates sent to the API server, by outcome.");
  m.sample("magline_provider_event_writes_total", "outcome=\"written\"", r.events.written);
  m.sample("magline_provider_event_writes_total", "outcome=\"failed\"", r.events.failed);
  return m.text();
}

nlohmann::ordered_json provider_state_json(const ProviderReport& r) {
  nlohmann::ordered_json j;
  j["synced"] = r.synced;
  nlohmann::ordered_json pools = nlohmann::ordered_json::array();
  for (const k8s::Ipam::Usage& u : r.pools) {
    pools.push_back({{"name", u.pool}, {"size", u.size}, {"used", u.used}});
  }
  j["pools"] = std::move(pools);
  nlohmann::ordered_json allocations = nlohmann::ordered_json::array();
  for (const auto& [service, a] : r.allocations) {
    nlohmann::ordered_json addrs = nlohmann::ordered_json::array();
    for (const dp::IpAddr& ip : a.addrs)
      addrs.push_back(dp::to_string(ip));
    allocations.push_back({{"service", service},
                           {"addresses", std::move(addrs)},
                           {"pool", a.pool},
                           {"sharing_key", a.sharing_key},
                           {"why", a.why}});
  }
  j["allocations"] = std::move(allocations);
  return j;
}

}  // namespace magline::control
