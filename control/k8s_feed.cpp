#include "control/k8s_feed.hpp"

#include <algorithm>
#include <cstdlib>

#include "control/k8s/plan.hpp"
#include "control/k8s_client/kube_config.hpp"

namespace magline::control {

namespace {

// What the feed watches: Services, and their slices or, with node targets, the Nodes.
std::vector<k8s::Resource> resources_of(const cfg::KubernetesConfig& k) {
  return {k8s::Resource::services, k.targets == cfg::K8sTargets::nodes
                                       ? k8s::Resource::nodes
                                       : k8s::Resource::endpoint_slices};
}

K8sKind kind_of(k8s::Resource r) {
  switch (r) {
    case k8s::Resource::services:
      return K8sKind::service;
    case k8s::Resource::endpoint_slices:
      return K8sKind::endpoint_slice;
    case k8s::Resource::nodes:
      return K8sKind::node;
  }
  return K8sKind::service;
}

}  // namespace

KubeconfigFile kubeconfig_file(const cfg::KubernetesConfig& k) {
  if (!k.kubeconfig.empty()) return {k.kubeconfig, ""};
  const auto env = [](const char* n) { return std::getenv(n); };
  std::string path = k8s::default_kubeconfig_path(env);
  const char* list = std::getenv("KUBECONFIG");
  return {std::move(path), list != nullptr && *list != '\0' ? "$KUBECONFIG" : "$HOME/.kube/config"};
}

Result<k8s::ApiConfig> api_config(const cfg::KubernetesConfig& k) {
  if (k.in_cluster) return k8s::in_cluster_config([](const char* n) { return std::getenv(n); });
  const KubeconfigFile file = kubeconfig_file(k);
  if (file.path.empty()) {
    return Error{
        "no kubeconfig: the section names none (\"kubeconfig\" or \"in_cluster\"), "
        "and neither $KUBECONFIG nor $HOME is set"};
  }
  return k8s::load_kubeconfig(file.path, k.context);
}

Result<std::unique_ptr<K8sFeed>> K8sFeed::start(const cfg::Config& config, std::ostream& log,
                                                std::shared_ptr<k8s::EventQueue> services_copy) {
  const cfg::KubernetesConfig& k = config.kubernetes;
  auto api = api_config(k);
  if (!api) return Error{"kubernetes: " + api.error().message};
  auto events = std::make_unique<k8s::EventQueue>();
  k8s::WatcherOptions wo;
  // kube-proxy's selector, turned around when Magline claims Services by name (docs/k8s.md):
  // Services carry the proxy-name label, and their slices inherit it.
  wo.label_selector = k8s::watch_selector(translate_options(config));
  wo.ns = k.namespace_;
  wo.page_limit = k.page_limit;
  wo.resources = resources_of(k);
  wo.services_copy = std::move(services_copy);
  log << "magline: watching Services and "
      << (k.targets == cfg::K8sTargets::nodes ? "Nodes (node targets)" : "EndpointSlices") << " at "
      << api->server << std::endl;
  auto watcher = std::make_unique<k8s::Watcher>(std::move(api).value(), wo, *events);
  if (auto started = watcher->start(); !started) {
    return Error{"kubernetes: " + started.error().message};
  }
  return std::unique_ptr<K8sFeed>(new K8sFeed(config, std::move(events), std::move(watcher)));
}

K8sFeed::K8sFeed(const cfg::Config& config, std::unique_ptr<k8s::EventQueue> events)
    : K8sFeed(config, std::move(events), nullptr) {}

K8sFeed::K8sFeed(const cfg::Config& config, std::unique_ptr<k8s::EventQueue> events,
                 std::unique_ptr<k8s::Watcher> watcher)
    : coalesce_ms_(config.kubernetes.coalesce_ms),
      source_(translate_options(config)),
      events_(std::move(events)),
      watcher_(std::move(watcher)),
      resources_(resources_of(config.kubernetes)),
      probes_(std::make_shared<const std::vector<k8s::ProbeTarget>>()) {}

K8sFeed::~K8sFeed() { stop(); }

void K8sFeed::stop() {
  if (watcher_) watcher_->stop();
}

std::optional<Change> K8sFeed::poll(uint64_t now_ms, Publisher& publisher,
                                    const std::set<std::string>& reserved) {
  release_batch();
  events_->drain(batch_);
  if (verdicts_changed_.exchange(false, std::memory_order_acq_rel)) {
    source_.verdicts_changed();
    if (source_.pending() > 0 && !pending_since_) pending_since_ = now_ms;
  }
  for (const k8s::WatchEvent& e : batch_) {
    const K8sKind kind = kind_of(e.resource);
    switch (e.type) {
      case k8s::WatchEvent::Type::added:
      case k8s::WatchEvent::Type::modified:
        source_.upsert(kind, e.object);
        break;
      case k8s::WatchEvent::Type::deleted:
        source_.erase(kind, e.object);
        break;
      case k8s::WatchEvent::Type::relisted:
        source_.replace(kind, e.listed());
        listed_[static_cast<size_t>(e.resource)] = true;
        break;
    }
    if (!pending_since_) pending_since_ = now_ms;
    if (!oldest_ || e.received < *oldest_) oldest_ = e.received;
  }
  const bool listed = std::all_of(resources_.begin(), resources_.end(),
                                  [this](k8s::Resource r) { return listed_[size_t(r)]; });
  if (!pending_since_ || now_ms < *pending_since_ + coalesce_ms_ || !listed) {
    return std::nullopt;
  }
  Change change = source_.sync(publisher, reserved, now_ms);
  synced_ = true;
  publish_probe_targets();
  // The latency of the oldest event still on its way to the workers.
  if (!change.updates.empty() && !in_flight_) in_flight_ = oldest_;
  pending_since_.reset();
  oldest_.reset();
  return change;
}

void K8sFeed::release_batch() {
  size_t objects = 0;
  for (const k8s::WatchEvent& e : batch_)
    objects += 1 + e.listed().size();
  if (objects >= kReapFrom) reaper_.give(std::move(batch_));
  batch_.clear();
}

void K8sFeed::set_node_verdict(k8s::NodeVerdict verdict) {
  source_.set_node_verdict(std::move(verdict));
  if (source_.pending() > 0 && !pending_since_) pending_since_ = 0;  // due at the next poll
}

void K8sFeed::publish_probe_targets() {
  const uint64_t version = source_.probe_version();
  std::lock_guard<std::mutex> lock(probes_mu_);
  if (version == probes_version_) return;
  probes_ = std::make_shared<const std::vector<k8s::ProbeTarget>>(source_.probe_targets());
  probes_version_ = version;
}

std::shared_ptr<const std::vector<k8s::ProbeTarget>> K8sFeed::probe_targets() const {
  std::lock_guard<std::mutex> lock(probes_mu_);
  return probes_;
}

uint64_t K8sFeed::probe_targets_version() const {
  std::lock_guard<std::mutex> lock(probes_mu_);
  return probes_version_;
}

void K8sFeed::in_effect(Clock::time_point now) {
  if (!in_flight_) return;
  latency_.add(std::chrono::duration<double, std::milli>(now - *in_flight_).count());
  in_flight_.reset();
}

std::string K8sFeed::state_json() const {
  k8s::Plan plan = k8s::build_plan(source_.service_objects(), source_.slice_objects(),
                                   source_.node_objects(), source_.options());
  for (const auto& [key, why] : source_.errors()) plan.errors.push_back({key, why});
  return k8s::plan_json(plan);
}

KubernetesReport K8sFeed::report() const {
  return kubernetes_report_of(watcher_.get(), source_, latency_);
}

}  // namespace magline::control
