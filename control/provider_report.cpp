#include "control/provider_report.hpp"


namespace magline::control {

namespace {

constexpr MetricType kCounter = MetricType::counter;
constexpr MetricType kGauge = MetricType::gauge;

std::string pool_label(const std::string& pool) {
  return "pool=\"" + label_escaped(pool) + "\"";
}

}  // namespace

void provider_metrics(Exposition& e, const ProviderReport& r) {
  e.sample("magline_provider_synced", kGauge,
           "1 once the provider has read every Service and restored their addresses.", "",
           uint64_t(r.synced ? 1 : 0));
  for (const k8s::Ipam::Usage& u : r.pools) {
    e.sample("magline_provider_pool_addresses", kGauge, "Addresses in an address pool.",
             pool_label(u.pool), u.size);
    e.sample("magline_provider_pool_addresses_used", kGauge,
             "Addresses of a pool held by at least one Service.", pool_label(u.pool),
             uint64_t(u.used));
  }
  e.sample("magline_provider_leading", kGauge,
           "1 while this node leads the provider's election Lease (only the leader writes).", "",
           uint64_t(r.election.leading ? 1 : 0));
  e.sample("magline_provider_live_nodes", kGauge,
           "Magline nodes whose node Lease is live, as this node sees them.", "",
           uint64_t(r.election.live_nodes.size()));
  e.sample("magline_provider_services", kGauge, "Services holding addresses.", "",
           uint64_t(r.allocations.size()));
  e.sample("magline_provider_assignments_total", kCounter,
           "Addresses written into a Service's status.", "", r.assignments);
  e.sample("magline_provider_releases_total", kCounter,
           "Services that gave up the addresses they held.", "", r.releases);
  e.sample("magline_provider_restored_total", kCounter,
           "Assignments taken back from Services' statuses at start.", "", r.restored);
  for (const auto& [reason, n] : r.refusals) {
    e.sample("magline_provider_refusals_total", kCounter,
             "Services refused an address, once per refusal, by reason.",
             "reason=\"" + label_escaped(reason) + "\"", n);
  }
  constexpr const char* kWrites = "Status and finalizer writes to Services, by outcome.";
  e.sample("magline_provider_writes_total", kCounter, kWrites, "outcome=\"done\"", r.writes);
  e.sample("magline_provider_writes_total", kCounter, kWrites, "outcome=\"conflict\"",
           r.conflicts);
  e.sample("magline_provider_writes_total", kCounter, kWrites, "outcome=\"failed\"", r.failures);
  constexpr const char* kEvents =
      "Occurrences recorded as Events on Services, by what became of them.";
  e.sample("magline_provider_events_total", kCounter, kEvents, "result=\"new\"",
           r.events.observed - r.events.repeats - r.events.dropped);
  e.sample("magline_provider_events_total", kCounter, kEvents, "result=\"repeat\"",
           r.events.repeats);
  e.sample("magline_provider_events_total", kCounter, kEvents, "result=\"dropped\"",
           r.events.dropped);
  constexpr const char* kEventWrites =
      "Event creations and series updates sent to the API server, by outcome.";
  e.sample("magline_provider_event_writes_total", kCounter, kEventWrites, "outcome=\"written\"",
           r.events.written);
  e.sample("magline_provider_event_writes_total", kCounter, kEventWrites, "outcome=\"failed\"",
           r.events.failed);
}

std::string provider_metrics(const ProviderReport& r) {
  Exposition e;
  provider_metrics(e, r);
  return e.text();
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
  j["election"] = {{"identity", r.election.identity},
                   {"lease", r.election.lease},
                   {"leading", r.election.leading},
                   {"leader", r.election.leader},
                   {"live_nodes", r.election.live_nodes}};
  return j;
}

}  // namespace magline::control
