// The watched Kubernetes objects and what they become. Holds every Service, EndpointSlice and
// Node the watcher delivered, remembers which Services an event touched, and on sync()
// translates just those (control/k8s/translate.hpp) and hands the difference to the Publisher:
// the work of a sync is proportional to the Services that changed, not to the number held.
//
// With pod targets a slice touches its Service and Nodes touch nothing. With node targets
// (control/k8s/node_targets.hpp) slices touch nothing, and a Node touches every Service (a node
// is a backend of each) only when what the targets read of it changed (NodeTargetView): the
// kubelet's status updates that change nothing else cost no translation.
//
// Control thread only.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.hpp"
#include "control/k8s/node_targets.hpp"
#include "control/k8s/objects.hpp"
#include "control/k8s/translate.hpp"
#include "control/publisher.hpp"

namespace magline::control {

enum class K8sKind : uint8_t { service, endpoint_slice, node };

struct K8sSourceStats {
  uint64_t events = 0;          // objects added, changed or deleted
  uint64_t relists = 0;         // complete lists that replaced what was held
  uint64_t decode_errors = 0;   // objects that could not be read (dropped)
  uint64_t translations = 0;    // Services translated
  uint64_t publish_failures = 0;  // Services whose change the publisher refused (see errors())
  uint64_t name_conflicts = 0;  // translated services named like one from the configuration file
};

class K8sSource {
 public:
  explicit K8sSource(k8s::TranslateOptions opts) : opts_(std::move(opts)) {}

  // Watch events. Objects are raw JSON as the API server sent them.
  void upsert(K8sKind kind, const nlohmann::json& object);
  void erase(K8sKind kind, const nlohmann::json& object);
  // A complete list: whatever is held and missing from `items` was deleted meanwhile.
  void replace(K8sKind kind, const std::vector<nlohmann::json>& items);

  // Services touched since the last sync.
  size_t pending() const;

  // With node targets: the prober's verdicts changed (or are now read through `verdict`): every
  // Service it checks is touched. The verdict function is called by sync() only.
  void verdicts_changed();
  void set_node_verdict(k8s::NodeVerdict verdict);

  // Translates the touched Services and publishes the difference. Names in `reserved` (the
  // configuration file's services) are never taken. A Service the publisher refuses (a frontend
  // another service holds, say) keeps what it had; its error shows in errors() and it is tried
  // again with the next sync that has other changes.
  Change sync(Publisher& publisher, const std::set<std::string>& reserved, uint64_t now_ms);

  const K8sSourceStats& stats() const noexcept { return stats_; }
  size_t services_held() const noexcept { return services_.size(); }
  size_t slices_held() const noexcept { return slices_.size(); }
  size_t nodes_held() const noexcept { return nodes_.size(); }
  // The Services' objects, for the plan (/state): O(held).
  std::vector<k8s::K8sService> service_objects() const;
  std::vector<k8s::K8sEndpointSlice> slice_objects() const;
  std::vector<k8s::K8sNode> node_objects() const;
  // What the prober must check now (k8s::probe_targets over what is held), recomputed only
  // after a probed Service or a Node's view changed; `probe_version()` counts the changes.
  const std::vector<k8s::ProbeTarget>& probe_targets();
  uint64_t probe_version();
  // "namespace/name" -> why its latest version is not (wholly) in effect.
  std::map<std::string, std::string> errors() const;
  const k8s::TranslateOptions& options() const noexcept { return opts_; }

 private:
  void put_service(k8s::K8sService svc);
  void drop_service(const std::string& key);
  void put_slice(k8s::K8sEndpointSlice slice);
  void drop_slice(const std::string& key);
  void put_node(k8s::K8sNode node);
  void drop_node(const std::string& name);
  void node_view_changed();
  bool node_targets() const noexcept { return opts_.targets == k8s::Targets::nodes; }
  void decode_failed(K8sKind kind, const nlohmann::json& object, const std::string& why);

  k8s::TranslateOptions opts_;
  std::unordered_map<std::string, k8s::K8sService> services_;        // by namespace/name
  std::unordered_map<std::string, k8s::K8sEndpointSlice> slices_;    // by namespace/name
  std::unordered_map<std::string, std::set<std::string>> slices_of_;  // service key -> slices
  std::unordered_map<std::string, k8s::K8sNode> nodes_;               // by name
  std::set<std::string> probed_;  // Services the prober checks (k8s::probed), by key
  std::unordered_map<std::string, std::vector<std::string>> published_;  // key -> service names
  std::set<std::string> dirty_;
  bool all_dirty_ = false;  // a Node's view changed: every Service is touched
  bool probes_stale_ = true;
  std::vector<k8s::ProbeTarget> probes_;
  uint64_t probe_version_ = 0;
  std::set<std::string> failed_;
  std::map<std::string, std::string> read_errors_;  // set by upsert, cleared by a good read
  std::map<std::string, std::string> sync_errors_;  // set and cleared by sync
  K8sSourceStats stats_;
};

// What the watcher translates with: the node addresses and the kubernetes section (without
// one, the maglev section's table size for every Service). `magline run` and `magline plan`
// share it, so that the plan shows what the daemon would do.
k8s::TranslateOptions translate_options(const cfg::Config& config);

}  // namespace magline::control
