#include "control/stats.hpp"

#include <algorithm>
#include <map>
#include <sstream>

#include "dataplane/drop_reason.hpp"

namespace magline::control {

namespace {

struct Totals {
  std::vector<dp::ForwarderCounters> fwd;
  std::vector<dp::FlowTableStats> flows;
  std::vector<WorkerIoCounters> io;
};

Totals read_all(const std::vector<std::unique_ptr<WorkerContext>>& workers) {
  Totals t;
  for (const auto& w : workers) {
    dp::ForwarderCounters c;
    dp::FlowTableStats f;
    WorkerIoCounters io;
    read_worker_counters(*w, c, f, io);
    t.fwd.push_back(c);
    t.flows.push_back(f);
    t.io.push_back(io);
  }
  return t;
}

}  // namespace

void LatencySamples::add(double ms) {
  if (ring_.size() < kKeep) {
    ring_.push_back(ms);
  } else {
    ring_[count_ % kKeep] = ms;
  }
  ++count_;
  sum_ += ms;
}

double LatencySamples::quantile(double q) const {
  if (ring_.empty()) return 0;
  std::vector<double> v = ring_;
  const size_t k = std::min(v.size() - 1, size_t(q * double(v.size())));
  std::nth_element(v.begin(), v.begin() + ptrdiff_t(k), v.end());
  return v[k];
}

nlohmann::ordered_json forwarder_json(const dp::ForwarderCounters& c) {
  nlohmann::ordered_json j;
  j["rx_packets"] = c.rx_packets;
  j["rx_bytes"] = c.rx_bytes;
  j["tx_packets"] = c.tx_packets;
  j["tx_bytes"] = c.tx_bytes;
  j["new_connections"] = c.new_connections;
  j["replies"] = c.replies;
  j["icmp_errors"] = c.icmp_errors;
  j["stateless"] = c.stateless;
  j["rejected"] = c.rejected;
  j["reset_removed_backend"] = c.reset_removed_backend;
  j["rescheduled"] = c.rescheduled;
  j["to_slow_path"] = c.to_slow_path;
  j["peer_messages_sent"] = c.peer_messages_sent;
  j["peer_messages_lost"] = c.peer_messages_lost;
  j["peer_messages_received"] = c.peer_messages_received;
  j["handoffs_sent"] = c.handoffs_sent;
  j["handoffs_received"] = c.handoffs_received;
  j["updates_applied"] = c.updates_applied;
  nlohmann::ordered_json drops = nlohmann::ordered_json::object();
  for (size_t r = 1; r < dp::kDropReasonCount; ++r) {
    if (c.drops[r] != 0) drops[std::string(dp::drop_reason_name(dp::DropReason(r)))] = c.drops[r];
  }
  j["drops"] = drops;
  return j;
}

nlohmann::ordered_json slow_path_json(const dp::SlowPathStats& slow) {
  return {{"arp_requests_answered", slow.arp_requests_answered},
          {"arp_replies_learned", slow.arp_replies_learned},
          {"nd_solicitations_answered", slow.nd_solicitations_answered},
          {"nd_advertisements_learned", slow.nd_advertisements_learned},
          {"echo_requests_answered", slow.echo_requests_answered},
          {"requests_sent", slow.requests_sent},
          {"queued", slow.queued},
          {"released", slow.released},
          {"dropped_unresolved", slow.dropped_unresolved},
          {"dropped_queue_full", slow.dropped_queue_full},
          {"ignored", slow.ignored}};
}

namespace {

nlohmann::ordered_json flows_json(const dp::FlowTableStats& f) {
  return {{"capacity", f.capacity},          {"occupied", f.occupied},
          {"inserts", f.inserts},            {"insert_failures", f.insert_failures},
          {"reclaimed_expired", f.reclaimed_expired},
          {"evicted_half_open", f.evicted_half_open},
          {"evicted_closed", f.evicted_closed},
          {"evicted_affinity", f.evicted_affinity},
          {"evicted_half_closed", f.evicted_half_closed},
          {"evicted_answered", f.evicted_answered},
          {"evicted_unconfirmed", f.evicted_unconfirmed}, {"displaced", f.displaced}};
}

void add(dp::ForwarderCounters& a, const dp::ForwarderCounters& b) {
  auto* x = reinterpret_cast<uint64_t*>(&a);
  const auto* y = reinterpret_cast<const uint64_t*>(&b);
  for (size_t i = 0; i < sizeof(a) / sizeof(uint64_t); ++i) x[i] += y[i];
}

}  // namespace

nlohmann::ordered_json stats_json(const std::vector<std::unique_ptr<WorkerContext>>& workers,
                                  const dp::SlowPathStats& slow, const ControlCounters& control) {
  const Totals t = read_all(workers);
  nlohmann::ordered_json j;
  dp::ForwarderCounters total;
  nlohmann::ordered_json per_worker = nlohmann::ordered_json::array();
  for (size_t w = 0; w < workers.size(); ++w) {
    add(total, t.fwd[w]);
    nlohmann::ordered_json wj = forwarder_json(t.fwd[w]);
    wj["flows"] = flows_json(t.flows[w]);
    wj["tx_full"] = t.io[w].tx_full;
    wj["slow_ring_full"] = t.io[w].slow_full;
    wj["handoff_ring_full"] = t.io[w].handoff_full;
    wj["polls"] = t.io[w].polls;
    wj["idle_polls"] = t.io[w].idle_polls;
    per_worker.push_back(std::move(wj));
  }
  j["total"] = forwarder_json(total);
  j["workers"] = std::move(per_worker);
  j["slow_path"] = slow_path_json(slow);
  j["control"] = {{"reloads", control.reloads},
                  {"reloads_refused", control.reloads_refused},
                  {"updates_published", control.updates_published},
                  {"last_update_ms", control.last_update_ms},
                  {"control_tx_full", control.control_tx_full}};
  return j;
}

std::string metrics_text(const std::vector<std::unique_ptr<WorkerContext>>& workers,
                         const dp::SlowPathStats& slow, const ControlCounters& control,
                         const dp::ServiceList* services) {
  const Totals t = read_all(workers);
  std::ostringstream o;
  auto family = [&](const char* name, const char* type, const char* help) {
    o << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
  };
  auto per_worker = [&](const char* name, const char* help, auto field) {
    family(name, "counter", help);
    for (size_t w = 0; w < t.fwd.size(); ++w) {
      o << name << "{worker=\"" << w << "\"} " << field(w) << "\n";
    }
  };
  per_worker("magline_rx_packets_total", "Frames received by the worker.",
             [&](size_t w) { return t.fwd[w].rx_packets; });
  per_worker("magline_rx_bytes_total", "Bytes received by the worker.",
             [&](size_t w) { return t.fwd[w].rx_bytes; });
  per_worker("magline_tx_packets_total", "Frames the worker sent.",
             [&](size_t w) { return t.fwd[w].tx_packets; });
  per_worker("magline_tx_bytes_total", "Bytes the worker sent.",
             [&](size_t w) { return t.fwd[w].tx_bytes; });
  per_worker("magline_new_connections_total", "Connections given a backend.",
             [&](size_t w) { return t.fwd[w].new_connections; });
  per_worker("magline_replies_total", "Reply frames translated back to clients.",
             [&](size_t w) { return t.fwd[w].replies; });
  per_worker("magline_icmp_errors_total",
             "ICMP errors passed on to the host whose packet they quote (path MTU discovery).",
             [&](size_t w) { return t.fwd[w].icmp_errors; });
  per_worker("magline_handoffs_sent_total",
             "Frames handed to the worker holding their connection (ICMP errors RSS sent here).",
             [&](size_t w) { return t.fwd[w].handoffs_sent; });
  per_worker("magline_handoffs_received_total", "Frames other workers handed to this one.",
             [&](size_t w) { return t.fwd[w].handoffs_received; });
  per_worker("magline_handoff_ring_full_total",
             "Handed-off frames freed because the other worker's peer ring was full.",
             [&](size_t w) { return t.io[w].handoff_full; });
  per_worker("magline_stateless_total", "Frames forwarded without a flow entry (table full).",
             [&](size_t w) { return t.fwd[w].stateless; });
  per_worker("magline_rejected_total", "Connections answered with TCP RST or ICMP unreachable.",
             [&](size_t w) { return t.fwd[w].rejected; });
  per_worker("magline_tx_full_total", "Frames the device did not take (freed).",
             [&](size_t w) { return t.io[w].tx_full; });

  family("magline_drops_total", "counter", "Frames dropped, by worker and reason.");
  for (size_t w = 0; w < t.fwd.size(); ++w) {
    for (size_t r = 1; r < dp::kDropReasonCount; ++r) {
      o << "magline_drops_total{worker=\"" << w << "\",reason=\""
        << dp::drop_reason_name(dp::DropReason(r)) << "\"} " << t.fwd[w].drops[r] << "\n";
    }
  }
  family("magline_flow_table_entries", "gauge", "Flow-table entries in use.");
  for (size_t w = 0; w < t.flows.size(); ++w) {
    o << "magline_flow_table_entries{worker=\"" << w << "\"} " << t.flows[w].occupied << "\n";
  }
  family("magline_flow_table_capacity", "gauge", "Flow-table entry slots.");
  for (size_t w = 0; w < t.flows.size(); ++w) {
    o << "magline_flow_table_capacity{worker=\"" << w << "\"} " << t.flows[w].capacity << "\n";
  }
  per_worker("magline_flow_table_inserts_total", "Flow entries created.",
             [&](size_t w) { return t.flows[w].inserts; });
  per_worker("magline_flow_table_insert_failures_total", "Flow entries that found no room.",
             [&](size_t w) { return t.flows[w].insert_failures; });
  per_worker("magline_flow_table_evictions_total", "Live closed, session-affinity, unconfirmed (mid-stream TCP, unreplied UDP), half-open, half-closed or answered UDP/SCTP entries evicted.",
             [&](size_t w) { return t.flows[w].evicted_half_open + t.flows[w].evicted_closed +
                                    t.flows[w].evicted_affinity +
                                    t.flows[w].evicted_half_closed +
                                    t.flows[w].evicted_answered +
                                    t.flows[w].evicted_unconfirmed; });

  family("magline_slow_path_total", "counter", "Slow-path events, by kind.");
  const std::pair<const char*, uint64_t> slow_rows[] = {
      {"arp_requests_answered", slow.arp_requests_answered},
      {"arp_replies_learned", slow.arp_replies_learned},
      {"nd_solicitations_answered", slow.nd_solicitations_answered},
      {"nd_advertisements_learned", slow.nd_advertisements_learned},
      {"echo_requests_answered", slow.echo_requests_answered},
      {"requests_sent", slow.requests_sent},
      {"released", slow.released},
      {"dropped_unresolved", slow.dropped_unresolved},
      {"dropped_queue_full", slow.dropped_queue_full},
  };
  for (const auto& [kind, value] : slow_rows) {
    o << "magline_slow_path_total{kind=\"" << kind << "\"} " << value << "\n";
  }
  family("magline_updates_total", "counter", "Configuration publishes sent to the workers.");
  o << "magline_updates_total " << control.updates_published << "\n";
  family("magline_reloads_total", "counter", "SIGHUP reloads, by outcome.");
  o << "magline_reloads_total{outcome=\"applied\"} " << control.reloads - control.reloads_refused
    << "\n";
  o << "magline_reloads_total{outcome=\"refused\"} " << control.reloads_refused << "\n";
  family("magline_last_update_seconds", "gauge",
         "From a publish to every worker having applied it, for the latest publish.");
  o << "magline_last_update_seconds " << control.last_update_ms / 1000.0 << "\n";

  if (services != nullptr) {
    family("magline_frontend_packets_total", "counter", "Frames to a frontend, new or not.");
    std::ostringstream bytes_f, pkts_b, bytes_b;
    for (const auto& s : *services) {
      const auto& spec = s->spec();
      for (size_t i = 0; i < spec.frontends.size(); ++i) {
        dp::TrafficCounter sum;
        for (size_t w = 0; w < s->workers(); ++w) {
          const dp::TrafficCounter c = s->frontend_counter(w, i).load();
          sum.packets += c.packets;
          sum.bytes += c.bytes;
        }
        const std::string labels = "{service=\"" + spec.name + "\",frontend=\"" +
                                   dp::to_string(spec.frontends[i]) + "\"} ";
        o << "magline_frontend_packets_total" << labels << sum.packets << "\n";
        bytes_f << "magline_frontend_bytes_total" << labels << sum.bytes << "\n";
      }
      for (size_t i = 0; i < spec.backends.size(); ++i) {
        dp::TrafficCounter sum;
        for (size_t w = 0; w < s->workers(); ++w) {
          const dp::TrafficCounter c = s->backend_counter(w, i).load();
          sum.packets += c.packets;
          sum.bytes += c.bytes;
        }
        const std::string labels = "{service=\"" + spec.name + "\",backend=\"" +
                                   dp::backend_id(spec.backends[i].addr, spec.backends[i].port) +
                                   "\"} ";
        pkts_b << "magline_backend_packets_total" << labels << sum.packets << "\n";
        bytes_b << "magline_backend_bytes_total" << labels << sum.bytes << "\n";
      }
    }
    family("magline_frontend_bytes_total", "counter", "Bytes to a frontend.");
    o << bytes_f.str();
    family("magline_backend_packets_total", "counter", "Frames sent to a backend.");
    o << pkts_b.str();
    family("magline_backend_bytes_total", "counter", "Bytes sent to a backend.");
    o << bytes_b.str();
  }
  return o.str();
}

KubernetesReport kubernetes_report_of(const k8s::Watcher& watcher, const K8sSource& source,
                                      const LatencySamples& latency) {
  std::ostringstream m;
  nlohmann::ordered_json j;
  auto family = [&](const std::string& name, const char* type, const char* help) {
    m << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
  };
  std::map<std::string, std::vector<std::pair<std::string, uint64_t>>> watch;
  watcher.for_each_counter([&](k8s::Resource res, std::string_view name, uint64_t v) {
    const std::string label(k8s::resource_name(res));
    watch[std::string(name)].emplace_back(label, v);
    j["watch"][label][std::string(name)] = v;
  });
  for (const auto& [name, rows] : watch) {
    const std::string metric = "magline_k8s_" + name;
    family(metric, metric.ends_with("_total") ? "counter" : "gauge",
           "Kubernetes watch (docs/k8s-client.md), by resource.");
    for (const auto& [label, v] : rows) m << metric << "{resource=\"" << label << "\"} " << v << "\n";
  }
  const K8sSourceStats& s = source.stats();
  const std::pair<const char*, uint64_t> source_rows[] = {
      {"events", s.events},
      {"relists", s.relists},
      {"decode_errors", s.decode_errors},
      {"translations", s.translations},
      {"publish_failures", s.publish_failures},
      {"name_conflicts", s.name_conflicts}};
  family("magline_k8s_source_total", "counter", "Watched objects applied and translated, by kind.");
  for (const auto& [name, v] : source_rows) {
    m << "magline_k8s_source_total{kind=\"" << name << "\"} " << v << "\n";
    j["source"][name] = v;
  }
  family("magline_k8s_objects", "gauge", "Watched objects held.");
  m << "magline_k8s_objects{kind=\"services\"} " << source.services_held() << "\n";
  m << "magline_k8s_objects{kind=\"endpointslices\"} " << source.slices_held() << "\n";
  j["source"]["services_held"] = source.services_held();
  j["source"]["slices_held"] = source.slices_held();
  j["source"]["synced"] = watcher.synced();
  family("magline_k8s_update_latency_seconds", "summary",
         "From a watch event read off the wire to every worker using the change it made.");
  for (double q : {0.5, 0.9, 0.99}) {
    m << "magline_k8s_update_latency_seconds{quantile=\"" << q << "\"} "
      << latency.quantile(q) / 1000.0 << "\n";
  }
  m << "magline_k8s_update_latency_seconds_sum " << latency.sum() / 1000.0 << "\n";
  m << "magline_k8s_update_latency_seconds_count " << latency.count() << "\n";
  j["update_latency_ms"] = {{"count", latency.count()},
                            {"sum", latency.sum()},
                            {"p50", latency.quantile(0.5)},
                            {"p99", latency.quantile(0.99)}};
  return {m.str(), std::move(j)};
}

}  // namespace magline::control
