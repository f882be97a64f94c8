// The watched Kubernetes objects on their way to the workers: the watcher's threads (one per
// resource: LIST, then WATCH; docs/k8s-client.md) fill an event queue; the control thread drains
// it every turn into the K8sSource (control/k8s_source.hpp), and when the oldest event not yet
// published is `coalesce_ms` old, translates the Services the events touched and hands the
// difference over to be published, in one piece. Nothing is published before every watched
// resource's first list is in (as kube-proxy waits for its informers): Services whose slices
// (or, with node targets, Nodes) have not arrived yet would reject their traffic. With node
// targets the feed watches Services and Nodes, not EndpointSlices (they are not the backends).
//
// It also measures, from a watch event read off the wire to every worker applying the change it
// made (in_effect()), the latency /metrics reports.
//
// Control thread only, but for the watcher's own threads.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "control/k8s_client/watcher.hpp"
#include "control/k8s_source.hpp"
#include "control/publisher.hpp"
#include "control/reaper.hpp"
#include "control/stats.hpp"

namespace magline::control {

// The kubeconfig file the feed reads (not in_cluster): the section's, else kubectl's default
// (k8s::default_kubeconfig_path: $KUBECONFIG's first file, else $HOME/.kube/config). `from`
// says where a default came from ("$KUBECONFIG", "$HOME/.kube/config"); empty when the section
// names the file. `path` is empty when there is none.
struct KubeconfigFile {
  std::string path;
  std::string from;
};
KubeconfigFile kubeconfig_file(const cfg::KubernetesConfig& k);

// The API server and the credentials the feed uses: the pod's service account (in_cluster), or
// the kubeconfig file and context. Only reads files. Errors are the loader's (docs/k8s-client.md).
Result<k8s::ApiConfig> api_config(const cfg::KubernetesConfig& k);

class K8sFeed {
 public:
  using Clock = std::chrono::steady_clock;

  // Reads the credentials (in-cluster or kubeconfig) and starts watching. With `services_copy`,
  // every Service event is also pushed there, for the provider: one watch of Services serves
  // both (k8s::WatcherOptions::services_copy). Errors: credentials that cannot be read, a
  // watcher that cannot start.
  static Result<std::unique_ptr<K8sFeed>> start(
      const cfg::Config& config, std::ostream& log,
      std::shared_ptr<k8s::EventQueue> services_copy = nullptr);
  // A feed whose events come from `events` (tests: no watcher, no API server).
  K8sFeed(const cfg::Config& config, std::unique_ptr<k8s::EventQueue> events);
  ~K8sFeed();

  // Applies the events received so far; when a burst is due, translates what it touched and
  // returns the change for the Publisher (already applied to it), else nothing.
  std::optional<Change> poll(uint64_t now_ms, Publisher& publisher,
                             const std::set<std::string>& reserved);
  // Everything published so far is now in effect on every worker.
  void in_effect(Clock::time_point now);

  // Node targets: the prober's verdicts changed. Any thread; the next poll() re-translates the
  // Services the prober checks (externalTrafficPolicy Local), within a turn of the control
  // thread.
  void verdicts_changed() noexcept { verdicts_changed_.store(true, std::memory_order_release); }
  // Node targets: where translation reads the verdicts from (TranslateOptions::node_verdict);
  // it is called on the control thread, during poll(). Control thread; before or after start.
  void set_node_verdict(k8s::NodeVerdict verdict);
  // Node targets: what the prober must check, as of the last poll() (empty until the first
  // sync), and how many times it has changed. Any thread.
  std::shared_ptr<const std::vector<k8s::ProbeTarget>> probe_targets() const;
  uint64_t probe_targets_version() const;

  // Whether the first complete lists of every watched resource have been translated and handed
  // over
  // (readiness: sd_notify's READY=1 waits for it, and for the publication to take effect).
  bool synced() const noexcept { return synced_; }

  // The plan of the watched objects (/state).
  std::string state_json() const;
  // The watcher's and the translation's counters, and the latency.
  KubernetesReport report() const;
  const LatencySamples& latency() const noexcept { return latency_; }
  void stop();

 private:
  K8sFeed(const cfg::Config& config, std::unique_ptr<k8s::EventQueue> events,
          std::unique_ptr<k8s::Watcher> watcher);

  uint32_t coalesce_ms_;
  K8sSource source_;
  std::unique_ptr<k8s::EventQueue> events_;
  std::unique_ptr<k8s::Watcher> watcher_;
  std::vector<k8s::WatchEvent> batch_;
  Reaper<std::vector<k8s::WatchEvent>> reaper_{"k8s-reaper"};  // frees large batches
  std::optional<uint64_t> pending_since_;       // ms: the oldest event not yet published
  std::optional<Clock::time_point> oldest_;     // ...as read off the wire
  std::optional<Clock::time_point> in_flight_;  // published, not yet in effect
  LatencySamples latency_;
  void publish_probe_targets();
  // Frees the last batch's JSON: a large one (a relist) on the reaper's thread, so that the
  // next sync is not behind it.
  void release_batch();
  static constexpr size_t kReapFrom = 256;  // objects

  std::vector<k8s::Resource> resources_;   // the watched ones
  bool listed_[k8s::kResourceCount] = {};  // by Resource: first list applied
  std::atomic<bool> verdicts_changed_{false};
  mutable std::mutex probes_mu_;  // guards the two below
  std::shared_ptr<const std::vector<k8s::ProbeTarget>> probes_;
  uint64_t probes_version_ = 0;
  bool synced_ = false;
};

}  // namespace magline::control
