// The counters of a running (or stopped) Magline as JSON (`magline run`'s final report, the
// admin listener's /stats) and Prometheus text (/metrics). Any thread: workers' counters are
// read through their published copies.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "control/counter_fields.hpp"
#include "control/k8s_client/watcher.hpp"
#include "control/k8s_source.hpp"
#include "control/worker_link.hpp"
#include "dataplane/service.hpp"
#include "dataplane/slow_path.hpp"

namespace magline::control {

// Update latencies: a histogram in seconds of every sample (/metrics), and the latest samples (a
// ring of the last kKeep) for the quantiles of /stats.
class LatencySamples {
 public:
  static constexpr size_t kKeep = 4096;
  LatencySamples();
  void add(double ms);
  const Histogram& seconds() const noexcept { return seconds_; }
  static const std::vector<double>& bounds_seconds();
  uint64_t count() const noexcept { return count_; }
  double sum() const noexcept { return sum_; }  // of every sample ever added
  // The q-quantile (0..1) of the samples kept; 0 when there are none. O(kKeep).
  double quantile(double q) const;

 private:
  Histogram seconds_;
  std::vector<double> ring_;
  uint64_t count_ = 0;
  double sum_ = 0;
};

nlohmann::ordered_json forwarder_json(const dp::ForwarderCounters& c);
nlohmann::ordered_json slow_path_json(const dp::SlowPathStats& slow);

// Where each worker's counters are read (any thread, while the link's workers exist).
struct WorkerViews {
  std::vector<const dp::WorkerShare*> shares;
  std::vector<const dp::TrafficRows*> traffic;
  static WorkerViews of(WorkerLink& link);
};

nlohmann::ordered_json stats_json(const WorkerViews& workers,
                                  const dp::SlowPathStats& slow, const ControlCounters& control);

// The workers', slow path's and control thread's counters as Prometheus samples. `services` adds
// per-frontend and per-backend traffic (from each state's per-worker counters).
void worker_metrics(Exposition& e, const WorkerViews& workers, const dp::SlowPathStats& slow,
                    const ControlCounters& control, const dp::ServiceList* services);
// The same, alone, as Prometheus text exposition format 0.0.4.
std::string metrics_text(const WorkerViews& workers,
                         const dp::SlowPathStats& slow, const ControlCounters& control,
                         const dp::ServiceList* services);

// The Kubernetes watcher's and source's counters and the update latency, as Prometheus text
// (magline_k8s_*, magline_update_latency_seconds; docs/metrics.md) and as the /stats
// `kubernetes` section. Control thread (reads the source).
struct KubernetesReport {
  std::string metrics;
  nlohmann::ordered_json stats;
};
// `watcher` may be null (a feed without one, in tests).
KubernetesReport kubernetes_report_of(const k8s::Watcher* watcher, const K8sSource& source,
                                      const LatencySamples& latency);

}  // namespace magline::control
