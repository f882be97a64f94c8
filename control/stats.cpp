#include "control/stats.hpp"

#include <algorithm>
#include <deque>
#include <map>
#include <sstream>
#include <unordered_map>

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

namespace {

template <typename T, size_t N>
void put_fields(nlohmann::ordered_json& j, const Field<T> (&fields)[N], const T& c) {
  for (const Field<T>& f : fields) j[f.json] = c.*(f.member);
}

void add(dp::ForwarderCounters& a, const dp::ForwarderCounters& b) {
  for (const auto& f : kForwarderFields) a.*(f.member) += b.*(f.member);
  for (size_t r = 0; r < a.drops.size(); ++r) a.drops[r] += b.drops[r];
}

// Prometheus text exposition format 0.0.4: samples grouped by family, one HELP and TYPE each,
// families in the order they first appear.
class Exposition {
 public:
  void sample(std::string_view family, MetricType type, std::string_view help,
              const std::string& labels, uint64_t value) {
    put(family, type, help, labels, std::to_string(value));
  }
  void sample(std::string_view family, MetricType type, std::string_view help,
              const std::string& labels, double value) {
    std::ostringstream v;
    v << value;
    put(family, type, help, labels, v.str());
  }
  template <typename T, size_t N>
  void fields(const Field<T> (&table)[N], const T& c, const std::string& labels) {
    for (const Field<T>& f : table) {
      std::string l = labels;
      if (*f.label) l += (l.empty() ? "" : ",") + std::string(f.label);
      sample(f.metric, f.type, help_of(table, f.metric), l, c.*(f.member));
    }
  }
  std::string text() const {
    std::ostringstream o;
    for (const Family& f : families_) {
      o << "# HELP " << f.name << ' ' << f.help << "\n# TYPE " << f.name << ' '
        << (f.type == MetricType::counter ? "counter" : "gauge") << '\n'
        << f.samples.str();
    }
    return o.str();
  }

 private:
  struct Family {
    std::string name;
    MetricType type;
    std::string help;
    std::ostringstream samples;
  };
  template <typename T, size_t N>
  static const char* help_of(const Field<T> (&table)[N], const char* metric) {
    for (const Field<T>& f : table) {
      if (std::string_view(f.metric) == metric && *f.help) return f.help;
    }
    return "";
  }
  void put(std::string_view name, MetricType type, std::string_view help,
           const std::string& labels, const std::string& value) {
    auto [it, fresh] = index_.try_emplace(std::string(name), families_.size());
    if (fresh) families_.push_back(Family{std::string(name), type, std::string(help), {}});
    Family* f = &families_[it->second];
    f->samples << name;
    if (!labels.empty()) f->samples << '{' << labels << '}';
    f->samples << ' ' << value << '\n';
  }
  std::deque<Family> families_;
  std::unordered_map<std::string, size_t> index_;
};

std::string escaped(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
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

std::string metrics_text(const WorkerViews& workers,
                         const dp::SlowPathStats& slow, const ControlCounters& control,
                         const dp::ServiceList* services) {
  const Totals t = read_all(workers);
  Exposition e;
  for (size_t w = 0; w < t.fwd.size(); ++w) {
    const std::string worker = "worker=\"" + std::to_string(w) + "\"";
    e.fields(kForwarderFields, t.fwd[w], worker);
    e.fields(kWorkerIoFields, t.io[w], worker);
    for (size_t r = 1; r < dp::kDropReasonCount; ++r) {
      e.sample("magline_drops_total", MetricType::counter, "Frames dropped, by worker and reason.",
               worker + ",reason=\"" + std::string(dp::drop_reason_name(dp::DropReason(r))) + "\"",
               t.fwd[w].drops[r]);
    }
    e.fields(kFlowTableFields, t.flows[w], worker);
  }
  e.fields(kSlowPathFields, slow, "");
  e.fields(kControlFields, control, "");
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
      const std::string service = "service=\"" + escaped(spec.name) + "\"";
      for (size_t i = 0; i < spec.frontends.size(); ++i) {
        const dp::TrafficCounter c = total(false, s->frontend_slot(i));
        const std::string labels =
            service + ",frontend=\"" + escaped(dp::to_string(spec.frontends[i])) + "\"";
        e.sample("magline_frontend_packets_total", MetricType::counter,
                 "Frames to a frontend, new or not.", labels, c.packets);
        e.sample("magline_frontend_bytes_total", MetricType::counter, "Bytes to a frontend.",
                 labels, c.bytes);
      }
      for (size_t i = 0; i < spec.backends.size(); ++i) {
        const dp::TrafficCounter c = total(true, s->backend_slot(i));
        const std::string labels =
            service + ",backend=\"" +
            escaped(dp::backend_id(spec.backends[i].addr, spec.backends[i].port)) + "\"";
        e.sample("magline_backend_packets_total", MetricType::counter, "Frames sent to a backend.",
                 labels, c.packets);
        e.sample("magline_backend_bytes_total", MetricType::counter, "Bytes sent to a backend.",
                 labels, c.bytes);
      }
    }
  }
  return e.text();
}

KubernetesReport kubernetes_report_of(const k8s::Watcher* watcher, const K8sSource& source,
                                      const LatencySamples& latency) {
  std::ostringstream m;
  nlohmann::ordered_json j;
  auto family = [&](const std::string& name, const char* type, const char* help) {
    m << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
  };
  std::map<std::string, std::vector<std::pair<std::string, uint64_t>>> watch;
  if (watcher != nullptr) {
    watcher->for_each_counter([&](k8s::Resource res, std::string_view name, uint64_t v) {
      const std::string label(k8s::resource_name(res));
      watch[std::string(name)].emplace_back(label, v);
      j["watch"][label][std::string(name)] = v;
    });
  }
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
  j["source"]["synced"] = watcher != nullptr && watcher->synced();
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
