#include "control/stats.hpp"

#include <algorithm>

#include "dataplane/drop_reason.hpp"

namespace magline::control {

namespace {

struct Totals {
  std::vector<dp::ForwarderCounters> fwd;
  std::vector<dp::FlowTableStats> flows;
  std::vector<dp::WorkerIoCounters> io;
};

Totals read_all(const WorkerViews& workers) {
  Totals t;
  for (const dp::WorkerShare* share : workers.shares) {
    const dp::WorkerCounters c = share->read();
    t.fwd.push_back(c.forwarder);
    t.flows.push_back(c.flows);
    t.io.push_back(c.io);
  }
  return t;
}

}  // namespace

const std::vector<double>& LatencySamples::bounds_seconds() {
  // From half a millisecond (an update on an idle node takes about 2 ms, docs/performance.md)
  // to 10 s (a control thread stuck behind a huge relist).
  static const std::vector<double> kBounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                              0.1,    0.25,  0.5,    1,     2.5,  5,     10};
  return kBounds;
}

LatencySamples::LatencySamples() : seconds_(bounds_seconds()) {}

void LatencySamples::add(double ms) {
  seconds_.observe(ms / 1000.0);
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

namespace {

template <typename T, size_t N>
void put_fields(nlohmann::ordered_json& j, const Field<T> (&fields)[N], const T& c) {
  for (const Field<T>& f : fields) j[f.json] = c.*(f.member);
}

// A table's fields as samples; a family's help comes from its first row.
template <typename T, size_t N>
void metric_fields(Exposition& e, const Field<T> (&table)[N], const T& c,
                   const std::string& labels) {
  for (const Field<T>& f : table) {
    std::string l = labels;
    if (*f.label) l += (l.empty() ? "" : ",") + std::string(f.label);
    if (f.scale != 0) {
      e.sample(f.metric, f.type, f.help, l, double(c.*(f.member)) * f.scale);
    } else {
      e.sample(f.metric, f.type, f.help, l, c.*(f.member));
    }
  }
}

void add(dp::ForwarderCounters& a, const dp::ForwarderCounters& b) {
  for (const auto& f : kForwarderFields) a.*(f.member) += b.*(f.member);
  for (size_t r = 0; r < a.drops.size(); ++r) a.drops[r] += b.drops[r];
}

}  // namespace

nlohmann::ordered_json forwarder_json(const dp::ForwarderCounters& c) {
  nlohmann::ordered_json j;
  put_fields(j, kForwarderFields, c);
  nlohmann::ordered_json drops = nlohmann::ordered_json::object();
  for (size_t r = 1; r < dp::kDropReasonCount; ++r) {
    if (c.drops[r] != 0) drops[std::string(dp::drop_reason_name(dp::DropReason(r)))] = c.drops[r];
  }
  j["drops"] = drops;
  return j;
}

nlohmann::ordered_json slow_path_json(const dp::SlowPathStats& slow) {
  nlohmann::ordered_json j;
  put_fields(j, kSlowPathFields, slow);
  return j;
}

WorkerViews WorkerViews::of(WorkerLink& link) {
  WorkerViews v;
  for (size_t w = 0; w < link.workers(); ++w) {
    v.shares.push_back(&link.share(w));
    v.traffic.push_back(&link.traffic(w));
  }
  return v;
}

nlohmann::ordered_json stats_json(const WorkerViews& workers,
                                  const dp::SlowPathStats& slow, const ControlCounters& control) {
  const Totals t = read_all(workers);
  nlohmann::ordered_json j;
  dp::ForwarderCounters total;
  nlohmann::ordered_json per_worker = nlohmann::ordered_json::array();
  for (size_t w = 0; w < t.fwd.size(); ++w) {
    add(total, t.fwd[w]);
    nlohmann::ordered_json wj = forwarder_json(t.fwd[w]);
    nlohmann::ordered_json flows;
    put_fields(flows, kFlowTableFields, t.flows[w]);
    wj["flows"] = std::move(flows);
    put_fields(wj, kWorkerIoFields, t.io[w]);
    per_worker.push_back(std::move(wj));
  }
  j["total"] = forwarder_json(total);
  j["workers"] = std::move(per_worker);
  j["slow_path"] = slow_path_json(slow);
  nlohmann::ordered_json cj;
  put_fields(cj, kControlFields, control);
  cj["last_update_ms"] = control.last_update_ms;
  j["control"] = std::move(cj);
  return j;
}

void worker_metrics(Exposition& e, const WorkerViews& workers, const dp::SlowPathStats& slow,
                    const ControlCounters& control, const dp::ServiceList* services) {
  const Totals t = read_all(workers);
  for (size_t w = 0; w < t.fwd.size(); ++w) {
    const std::string worker = "worker=\"" + std::to_string(w) + "\"";
    metric_fields(e, kForwarderFields, t.fwd[w], worker);
    metric_fields(e, kWorkerIoFields, t.io[w], worker);
    for (size_t r = 1; r < dp::kDropReasonCount; ++r) {
      e.sample("magline_drops_total", MetricType::counter, "Frames dropped, by worker and reason.",
               worker + ",reason=\"" + std::string(dp::drop_reason_name(dp::DropReason(r))) + "\"",
               t.fwd[w].drops[r]);
    }
    metric_fields(e, kFlowTableFields, t.flows[w], worker);
  }
  metric_fields(e, kSlowPathFields, slow, "");
  metric_fields(e, kControlFields, control, "");
  e.sample("magline_last_update_seconds", MetricType::gauge,
           "From a publish to every worker having applied it, for the latest publish.", "",
           control.last_update_ms / 1000.0);

  if (services != nullptr) {
    // Each frontend's and backend's traffic: the sum of its slot over every worker's rows.
    auto total = [&](bool backend, uint32_t slot) {
      dp::TrafficCounter sum;
      for (const dp::TrafficRows* rows : workers.traffic) {
        const dp::TrafficCounter c =
            backend ? rows->backend_total(slot) : rows->frontend_total(slot);
        sum.packets += c.packets;
        sum.bytes += c.bytes;
      }
      return sum;
    };
    for (const auto& s : *services) {
      const auto& spec = s->spec();
      const std::string service = "service=\"" + label_escaped(spec.name) + "\"";
      for (size_t i = 0; i < spec.frontends.size(); ++i) {
        const dp::TrafficCounter c = total(false, s->frontend_slot(i));
        const std::string labels =
            service + ",frontend=\"" + label_escaped(dp::to_string(spec.frontends[i])) + "\"";
        e.sample("magline_frontend_packets_total", MetricType::counter,
                 "Frames to a frontend, new or not.", labels, c.packets);
        e.sample("magline_frontend_bytes_total", MetricType::counter, "Bytes to a frontend.",
                 labels, c.bytes);
        if (spec.new_connections.limited()) {
          uint64_t refused = 0;
          for (const dp::TrafficRows* rows : workers.traffic) {
            refused += rows->refused_total(s->frontend_slot(i));
          }
          e.sample("magline_frontend_connections_limited_total", MetricType::counter,
                   "New connections a frontend's rate limit refused (services with a limit).",
                   labels, refused);
        }
      }
      for (size_t i = 0; i < spec.backends.size(); ++i) {
        const dp::TrafficCounter c = total(true, s->backend_slot(i));
        const std::string labels =
            service + ",backend=\"" +
            label_escaped(dp::backend_id(spec.backends[i].addr, spec.backends[i].port)) + "\"";
        e.sample("magline_backend_packets_total", MetricType::counter, "Frames sent to a backend.",
                 labels, c.packets);
        e.sample("magline_backend_bytes_total", MetricType::counter, "Bytes sent to a backend.",
                 labels, c.bytes);
      }
    }
  }
}

std::string metrics_text(const WorkerViews& workers, const dp::SlowPathStats& slow,
                         const ControlCounters& control, const dp::ServiceList* services) {
  Exposition e;
  worker_metrics(e, workers, slow, control, services);
  return e.text();
}

KubernetesReport kubernetes_report_of(const k8s::Watcher* watcher, const K8sSource& source,
                                      const LatencySamples& latency) {
  Exposition e;
  nlohmann::ordered_json j;
  if (watcher != nullptr) {
    watcher->for_each_counter([&](k8s::Resource res, const k8s::WatchCounterRow& row) {
      const std::string resource(k8s::resource_name(res));
      std::string labels = "resource=\"" + resource + "\"";
      if (!row.label.empty()) labels += "," + std::string(row.label);
      const bool counter = row.metric.ends_with("_total");
      e.sample("magline_k8s_" + std::string(row.metric),
               counter ? MetricType::counter : MetricType::gauge, row.help, labels, row.value);
      j["watch"][resource][std::string(row.json)] = row.value;
    });
  }
  const K8sSourceStats& s = source.stats();
  // Separate families: an event, a relist and a translation are not the same kind of thing, so
  // they have no meaningful sum.
  const struct {
    const char* json;
    const char* metric;
    const char* help;
    uint64_t value;
  } source_rows[] = {
      {"events", "magline_k8s_source_events_total", "Watch events applied to the held objects.",
       s.events},
      {"relists", "magline_k8s_source_relists_total", "Relists that replaced the held objects.",
       s.relists},
      {"decode_errors", "magline_k8s_source_decode_errors_total",
       "Watched objects that could not be read (kept out).", s.decode_errors},
      {"translations", "magline_k8s_source_translations_total",
       "Translations of the held objects into services.", s.translations},
      {"publish_failures", "magline_k8s_source_publish_failures_total",
       "Translated changes the publisher refused.", s.publish_failures},
      {"name_conflicts", "magline_k8s_source_name_conflicts_total",
       "Watched Services whose name a configured service already holds.", s.name_conflicts},
  };
  for (const auto& r : source_rows) {
    e.sample(r.metric, MetricType::counter, r.help, "", r.value);
    j["source"][r.json] = r.value;
  }
  e.sample("magline_k8s_objects", MetricType::gauge, "Watched objects held, by resource.",
           "resource=\"services\"", uint64_t(source.services_held()));
  e.sample("magline_k8s_objects", MetricType::gauge, "", "resource=\"endpointslices\"",
           uint64_t(source.slices_held()));
  e.sample("magline_k8s_objects", MetricType::gauge, "", "resource=\"nodes\"",
           uint64_t(source.nodes_held()));
  j["source"]["services_held"] = source.services_held();
  j["source"]["slices_held"] = source.slices_held();
  j["source"]["nodes_held"] = source.nodes_held();
  j["source"]["synced"] = watcher != nullptr && watcher->synced();
  e.histogram("magline_update_latency_seconds",
              "From a watch event read off the wire to every worker using the change it made.", "",
              latency.seconds());
  j["update_latency_ms"] = {{"count", latency.count()},
                            {"sum", latency.sum()},
                            {"p50", latency.quantile(0.5)},
                            {"p99", latency.quantile(0.99)}};
  return {e.text(), std::move(j)};
}

}  // namespace magline::control
