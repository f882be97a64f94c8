#include "control/k8s/plan_table.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

namespace magline::k8s {

namespace {

using Row = std::vector<std::string>;

// Columns padded to their widest cell, two spaces apart; the last one is not padded, so that
// no line ends in spaces.
void table(std::ostringstream& out, const Row& header, const std::vector<Row>& rows) {
  std::vector<size_t> width(header.size(), 0);
  for (size_t i = 0; i < header.size(); ++i)
    width[i] = header[i].size();
  for (const Row& r : rows) {
    for (size_t i = 0; i < r.size(); ++i)
      width[i] = std::max(width[i], r[i].size());
  }
  auto line = [&](const Row& r) {
    std::string s;
    for (size_t i = 0; i < r.size(); ++i) {
      s += r[i];
      if (i + 1 < r.size()) s += std::string(width[i] - r[i].size() + 2, ' ');
    }
    while (!s.empty() && s.back() == ' ')
      s.pop_back();
    out << s << "\n";
  };
  line(header);
  for (const Row& r : rows)
    line(r);
}

std::string_view kind_name(dp::FrontendKind k) {
  switch (k) {
    case dp::FrontendKind::load_balancer:
      return "LoadBalancer";
    case dp::FrontendKind::node_port:
      return "NodePort";
    case dp::FrontendKind::external_ip:
      return "externalIP";
  }
  return "?";
}

// What a row's reader should know of its service beyond the columns.
std::string service_notes(const PlanService& p, size_t notes) {
  std::vector<std::string> parts;
  const dp::Service& s = p.service;
  if (s.affinity.client_ip)
    parts.push_back("affinity " + std::to_string(s.affinity.timeout_s) + "s");
  if (!s.source_ranges.empty()) {
    parts.push_back(std::to_string(s.source_ranges.size()) + " source ranges");
  }
  if (s.new_connections.limited()) {
    parts.push_back("new connections " + std::to_string(s.new_connections.rate) + "/s");
  }
  if (s.syn_proxy != dp::SynProxy::automatic) {
    parts.push_back("SYN proxy " + std::string(dp::to_string(s.syn_proxy)));
  }
  const bool ready = std::any_of(s.backends.begin(), s.backends.end(), [](const dp::Backend& b) {
    return b.state == dp::BackendState::ready;
  });
  if (!ready) parts.push_back("no ready backend: " + std::string(dp::to_string(s.no_backends)));
  if (notes > 0) parts.push_back("notes: " + std::to_string(notes));
  std::string out;
  for (const std::string& part : parts)
    out += (out.empty() ? "" : ", ") + part;
  return out.empty() ? "-" : out;
}

std::string size_text(double size) {
  // A pool of IPv6 can outgrow an integer: 2^64 is printed as the double it is.
  if (size < 1e15) return std::to_string(static_cast<uint64_t>(size));
  std::ostringstream s;
  s << size;
  return s.str();
}

}  // namespace

std::string plan_table(const Plan& plan) {
  std::ostringstream out;
  std::map<std::string, size_t> notes_of;
  for (const PlanNote& n : plan.notes)
    ++notes_of[n.service];

  std::vector<Row> rows;
  for (const PlanService& p : plan.services) {
    const dp::Service& s = p.service;
    const size_t ready = std::count_if(s.backends.begin(), s.backends.end(), [](const auto& b) {
      return b.state == dp::BackendState::ready;
    });
    const std::string backends = std::to_string(ready) + "/" + std::to_string(s.backends.size());
    const std::string notes = service_notes(p, notes_of[p.ns + "/" + p.name]);
    if (s.frontends.empty()) {  // claimed, yet nothing to listen on: shown, not hidden
      rows.push_back({s.name, "-", "-", backends, std::string(dp::to_string(s.mode)), notes});
    }
    for (const dp::Frontend& f : s.frontends) {
      rows.push_back({s.name, std::string(kind_name(f.kind)), dp::to_string(f), backends,
                      std::string(dp::to_string(s.mode)), notes});
    }
  }
  out << "FRONTENDS (" << plan.services.size() << " services, " << rows.size() << " rows)\n";
  table(out, {"SERVICE", "KIND", "FRONTEND", "BACKENDS", "MODE", "NOTES"}, rows);

  if (!plan.skipped.empty()) {
    std::vector<Row> skipped;
    for (const PlanSkip& s : plan.skipped)
      skipped.push_back({s.service, s.reason});
    out << "\nSKIPPED\n";
    table(out, {"SERVICE", "REASON"}, skipped);
  }
  if (!plan.notes.empty()) {
    std::vector<Row> notes;
    for (const PlanNote& n : plan.notes) {
      notes.push_back({n.service.empty() ? "-" : n.service, n.note});
    }
    out << "\nNOTES\n";
    table(out, {"SERVICE", "NOTE"}, notes);
  }
  if (!plan.errors.empty()) {
    std::vector<Row> errors;
    for (const PlanError& e : plan.errors)
      errors.push_back({e.object, e.error});
    out << "\nNOT READ\n";
    table(out, {"OBJECT", "ERROR"}, errors);
  }
  if (!plan.options.pools.empty()) {
    std::vector<Row> allocations;
    for (const PlanAllocation& a : plan.allocations) {
      std::string addrs;
      for (const dp::IpAddr& ip : a.addrs)
        addrs += (addrs.empty() ? "" : ",") + dp::to_string(ip);
      allocations.push_back({a.service, addrs.empty() ? "-" : addrs,
                             a.refused.empty() ? a.pool : "refused: " + a.refused, a.why});
    }
    out << "\nPROVIDER ASSIGNMENTS\n";
    table(out, {"SERVICE", "ADDRESSES", "POOL", "WHY"}, allocations);
    std::vector<Row> pools;
    for (const Ipam::Usage& u : plan.pools) {
      pools.push_back({u.pool, size_text(u.size), std::to_string(u.used)});
    }
    out << "\nPOOLS\n";
    table(out, {"POOL", "SIZE", "USED"}, pools);
  }
  return out.str();
}

}  // namespace magline::k8s
