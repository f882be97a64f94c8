#include "control/k8s_provider.hpp"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <map>
#include <set>
#include <utility>

#include "control/k8s/provider_core.hpp"
#include "control/k8s_client/service_writer.hpp"
#include "control/k8s_client/watcher.hpp"
#include "control/k8s_feed.hpp"
#include "control/k8s_source.hpp"
#include "control/log.hpp"
#include "control/provider_events.hpp"
#include "control/lease_driver.hpp"

namespace magline::control {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kBackoffFirst = std::chrono::seconds(1);
constexpr auto kBackoffMax = std::chrono::seconds(30);
constexpr auto kWithdrawalPoll = std::chrono::milliseconds(50);
constexpr int kStepsPerTurn = 8;  // writes for one Service before others get a turn

// Each refusal's Event reason (CamelCase, as Kubernetes' reasons are).
const char* event_reason(k8s::Refusal r) {
  switch (r) {
    case k8s::Refusal::bad_request:
      return "InvalidRequest";
    case k8s::Refusal::unknown_pool:
      return "UnknownPool";
    case k8s::Refusal::not_allowed:
      return "NoPoolAllowed";
    case k8s::Refusal::outside_pools:
      return "AddressOutsidePools";
    case k8s::Refusal::taken:
      return "AddressTaken";
    case k8s::Refusal::exhausted:
      return "PoolExhausted";
  }
  return "AllocationFailed";
}

k8s::EventSpec event_on(const k8s::K8sService& svc, bool warning, const char* reason,
                        const char* action, std::string note) {
  return {{svc.meta.ns, svc.meta.name, svc.meta.uid, svc.meta.resource_version},
          warning,
          reason,
          action,
          std::move(note)};
}

std::string addresses_of(const k8s::Assignment& a) {
  std::string out;
  for (const dp::IpAddr& ip : a.addrs)
    out += (out.empty() ? "" : ", ") + dp::to_string(ip);
  return out + " (pool " + a.pool + ")";
}

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "magline";
  return name;
}

}  // namespace

struct Provider::Loop {
  Loop(const cfg::Config& config, const ForwardedView& forwarded, std::ostream& log,
       k8s::ApiConfig api)
      : opts(translate_options(config)),
        ipam(config.provider.pools),
        forwarded(forwarded),
        log(log),
        api_config(std::move(api)),
        ns(config.kubernetes.namespace_) {}

  void run();
  void apply(const k8s::WatchEvent& e);
  void restore_all();
  // Makes `key`'s writes until there is nothing to do, a wait, or a failure.
  void reconcile(const std::string& key);
  void retry(const std::string& key, Clock::duration after);
  void tell(const k8s::EventSpec& e) {
    if (told && leading()) told->record(e);  // Events are writes: the leader's only
  }
  void refresh_report();
  // Not leading: no write; the Ipam follows what the statuses of the changed Services hold.
  void follow();
  void say_leases() {
    for (const std::string& line : leases->take_log())
      log << line << std::endl;
  }
  bool leading() const { return leases->leading(); }

  k8s::TranslateOptions opts;
  k8s::Ipam ipam;
  const ForwardedView& forwarded;
  std::ostream& log;
  k8s::ApiConfig api_config;
  std::string ns;
  std::atomic<bool> stop{false};
  ProviderCounters counters;

  std::shared_ptr<k8s::EventQueue> events;  // Service events
  std::unique_ptr<k8s::Watcher> watcher;
  std::unique_ptr<k8s::ApiClient> api;
  std::unique_ptr<k8s::ServiceWriter> writer;
  std::unique_ptr<ProviderEvents> told;  // may be null (no Events)
  mutable std::mutex report_mu;
  ProviderReport report;                        // under report_mu
  std::map<std::string, k8s::K8sService> held;  // by namespace/name
  std::set<std::string> dirty;
  std::map<std::string, Clock::time_point> waiting;  // due to be decided again
  std::map<std::string, Clock::duration> backoff;    // after failed writes, until one takes
  std::set<std::string> refusal_said;  // Services whose refusal was logged (once each)
  bool listed = false;
  std::function<bool()> forwarding_ready;  // ProviderOptions::forwarding_ready
  LeaseDriver* leases = nullptr;  // set before the thread starts
  bool led = false;               // leading at the last turn
};

void Provider::Loop::apply(const k8s::WatchEvent& e) {
  auto put = [&](const nlohmann::json& object) {
    auto svc = k8s::decode_service(object);
    if (!svc) return;
    const std::string key = svc->meta.key();
    held[key] = std::move(svc).value();
    dirty.insert(key);
  };
  switch (e.type) {
    case k8s::WatchEvent::Type::added:
    case k8s::WatchEvent::Type::modified:
      put(e.object);
      break;
    case k8s::WatchEvent::Type::deleted:
      if (auto svc = k8s::decode_service(e.object)) {
        const std::string key = svc->meta.key();
        held.erase(key);
        ipam.release(key);
        waiting.erase(key);
        backoff.erase(key);
      }
      break;
    case k8s::WatchEvent::Type::relisted: {
      std::map<std::string, k8s::K8sService> before = std::move(held);
      held.clear();
      for (const auto& item : e.listed()) put(item);
      for (const auto& [key, svc] : before) {
        if (!held.count(key)) ipam.release(key);
      }
      listed = true;
      break;
    }
  }
}

// What the statuses already say is taken back before anything new is assigned, in name order.
void Provider::Loop::restore_all() {
  for (const auto& [key, svc] : held) {
    if (!k8s::provider_serves(svc, opts) || svc.ingress.empty()) continue;
    const auto request = k8s::request_of(svc);
    if (!std::holds_alternative<k8s::IpRequest>(request)) continue;
    std::vector<dp::IpAddr> addrs;
    for (const k8s::LoadBalancerIngress& in : svc.ingress) {
      if (const auto a = dp::parse_ip(in.ip)) addrs.push_back(*a);
    }
    if (ipam.restore(std::get<k8s::IpRequest>(request), addrs)) ++counters.restored;
  }
  counters.synced = true;
}

void Provider::Loop::retry(const std::string& key, Clock::duration after) {
  waiting[key] = Clock::now() + after;
}

void Provider::Loop::follow() {
  for (const std::string& key : dirty) {
    if (const auto it = held.find(key); it != held.end()) {
      k8s::provider_follow(it->second, ipam, opts);
    }
  }
  dirty.clear();
  waiting.clear();
  backoff.clear();
}

void Provider::Loop::reconcile(const std::string& key) {
  waiting.erase(key);
  bool refusal_told = false;  // once per turn, not once per write the refusal leads to
  for (int n = 0; n < kStepsPerTurn; ++n) {
    const auto it = held.find(key);
    if (it == held.end()) {
      ipam.release(key);
      return;
    }
    const k8s::K8sService& svc = it->second;
    std::optional<k8s::Assignment> before;
    if (const k8s::Assignment* a = ipam.find(key)) before = *a;
    const k8s::ProviderStep step = k8s::provider_step(
        svc, ipam, opts, [&](const std::string& k) { return forwarded.forwards(k); });
    if (step.refused && refusal_said.insert(key).second) {
      ++counters.refused;
      ++counters.refusals[size_t(step.refused->reason)];
      log << log_warning << "magline: provider: " << key
          << " gets no address: " << step.refused->why << std::endl;
    }
    if (!step.refused) refusal_said.erase(key);
    // Every turn that refuses is an occurrence: repeats grow one Event's series.
    if (step.refused && !std::exchange(refusal_told, true)) {
      tell(event_on(svc, true, event_reason(step.refused->reason), "Allocate", step.refused->why));
    }
    if (before && ipam.find(key) == nullptr) {
      ++counters.releases;
      tell(event_on(svc, false, "IPReleased", "Release", "released " + addresses_of(*before)));
    }
    // Leadership is asked for before every write: one that ran out stops here, and the next
    // turn puts the Ipam back as the statuses say (the step may have assigned).
    if (step.kind != k8s::ProviderStep::Kind::none && !leading()) {
      dirty.insert(key);
      return;
    }
    k8s::WriteOutcome w;
    switch (step.kind) {
      case k8s::ProviderStep::Kind::none:
        return;
      case k8s::ProviderStep::Kind::await_withdrawal:
        retry(key, kWithdrawalPoll);
        return;
      case k8s::ProviderStep::Kind::add_finalizer:
        w = writer->set_finalizer(svc, true);
        break;
      case k8s::ProviderStep::Kind::remove_finalizer:
        w = writer->set_finalizer(svc, false);
        break;
      case k8s::ProviderStep::Kind::set_status:
        w = writer->set_ingress(svc, step.addrs);
        break;
      case k8s::ProviderStep::Kind::clear_status:
        w = writer->set_ingress(svc, {});
        break;
    }
    switch (w.kind) {
      case k8s::WriteOutcome::Kind::done:
        ++counters.writes;
        backoff.erase(key);
        if (step.kind == k8s::ProviderStep::Kind::set_status && step.assigned) {
          ++counters.assignments;
          tell(event_on(*w.service, false, "IPAllocated", "Allocate",
                        "assigned " + addresses_of(*step.assigned) + ": " + step.assigned->why));
        }
        held[key] = std::move(*w.service);
        continue;
      case k8s::WriteOutcome::Kind::conflict: {
        ++counters.conflicts;
        k8s::WriteOutcome r = writer->read(svc.meta.ns, svc.meta.name);
        if (r.kind == k8s::WriteOutcome::Kind::done) {
          held[key] = std::move(*r.service);
          continue;
        }
        if (r.kind != k8s::WriteOutcome::Kind::gone) {
          retry(key, kBackoffFirst);
          return;
        }
        [[fallthrough]];
      }
      case k8s::WriteOutcome::Kind::gone:
        held.erase(key);
        ipam.release(key);
        return;
      case k8s::WriteOutcome::Kind::refused:
      case k8s::WriteOutcome::Kind::failed: {
        ++counters.failures;
        Clock::duration& next = backoff[key];
        next = next == Clock::duration{} ? Clock::duration(kBackoffFirst)
                                         : std::min<Clock::duration>(next * 2, kBackoffMax);
        log << log_warning << "magline: provider: " << key << ": write failed (" << w.error
            << "); trying again in " << std::chrono::duration_cast<std::chrono::seconds>(next).count()
            << " s" << std::endl;
        retry(key, next);
        return;
      }
    }
  }
  dirty.insert(key);  // more to do: after the others' turn
}

// The copy report() gives, after a turn that decided something, never on a write's path:
// O(pools + Services whose assignment changed), not O(Services) (at 10,000 Services a whole
// copy after every turn was most of the provider's work for a new Service).
void Provider::Loop::refresh_report() {
  const std::set<std::string> changed = ipam.take_changed();
  std::lock_guard<std::mutex> lock(report_mu);
  ProviderReport& r = report;
  r.synced = counters.synced.load();
  r.assignments = counters.assignments.load();
  r.releases = counters.releases.load();
  r.restored = counters.restored.load();
  r.writes = counters.writes.load();
  r.conflicts = counters.conflicts.load();
  r.failures = counters.failures.load();
  for (const k8s::Refusal reason : k8s::kRefusals) {
    r.refusals[std::string(k8s::to_string(reason))] = counters.refusals[size_t(reason)].load();
  }
  r.pools = ipam.usage();
  for (const std::string& key : changed) {
    if (const k8s::Assignment* a = ipam.find(key)) {
      r.allocations[key] = *a;
    } else {
      r.allocations.erase(key);
    }
  }
}

void Provider::Loop::run() {
  std::vector<k8s::WatchEvent> batch;
  refresh_report();
  if (forwarding_ready) {
    const auto until = Clock::now() + kForwardingFirstMax;
    while (!stop.load() && !forwarding_ready() && Clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  while (!stop.load()) {
    events->wait_for(std::chrono::milliseconds(50));
    if (told) {
      if (auto complaint = told->take_complaint()) {
        log << log_warning << "magline: provider: " << *complaint << std::endl;
      }
    }
    batch.clear();
    events->drain(batch);
    for (const k8s::WatchEvent& e : batch) apply(e);
    say_leases();
    if (!listed) continue;
    const bool first = !counters.synced;
    if (first) restore_all();
    // At a change of leadership every Service is looked at again: a follower puts its Ipam
    // back as the statuses say (writes that failed or never happened left assignments of its
    // own); a new leader decides each, writing nothing where nothing changed.
    const bool lead = leading();
    if (lead != led) {
      led = lead;
      for (const auto& [key, svc] : held)
        dirty.insert(key);
    }
    if (!lead) {
      follow();
      if (first || !batch.empty()) refresh_report();
      continue;
    }
    const auto now = Clock::now();
    for (const auto& [key, due] : waiting) {
      if (due <= now) dirty.insert(key);
    }
    std::set<std::string> turn;
    turn.swap(dirty);
    for (const std::string& key : turn) {
      if (stop.load()) return;
      reconcile(key);
    }
    if (first || !batch.empty() || !turn.empty()) refresh_report();
  }
}

namespace {

// The node's identity: the configured one, else the node name, else the host name (lowercase,
// as a Lease name must be).
std::string identity_of(const cfg::Config& config) {
  if (!config.provider.election.identity.empty()) return config.provider.election.identity;
  if (!config.kubernetes.node_name.empty()) return config.kubernetes.node_name;
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) return "";
  std::string h = host;
  std::transform(h.begin(), h.end(), h.begin(), [](unsigned char c) { return std::tolower(c); });
  return h;
}

}  // namespace

bool Provider::wanted(const cfg::Config& config) {
  return config.kubernetes.enabled && !config.provider.pools.empty();
}

Result<std::unique_ptr<Provider>> Provider::start(const cfg::Config& config,
                                                  const ForwardedView& forwarded, std::ostream& log,
                                                  ProviderOptions options) {
  const cfg::KubernetesConfig& k = config.kubernetes;
  auto api = api_config(k);  // the feed's choice of credentials, kubectl's fallbacks included
  if (!api) return Error{"provider: " + api.error().message};
  auto loop = std::make_unique<Loop>(config, forwarded, log, *api);
  auto client = k8s::ApiClient::create(*api, {}, &loop->stop);
  if (!client) return Error{"provider: " + client.error().message};
  loop->api = std::move(client).value();
  loop->writer = std::make_unique<k8s::ServiceWriter>(*loop->api);
  std::string instance = !options.instance.empty() ? options.instance
                         : !k.node_name.empty()    ? k.node_name
                                                   : host_name();
  auto told = ProviderEvents::start(*api, std::move(instance), options.events);
  if (!told) return Error{"provider: " + told.error().message};
  loop->told = std::move(told).value();
  const cfg::ElectionConfig& e = config.provider.election;
  LeaseDriverOptions lo;
  lo.ns = e.lease_namespace;
  lo.lease_name = e.lease_name;
  lo.identity = identity_of(config);
  const std::string identity = lo.identity;
  lo.timing = {std::chrono::milliseconds(e.lease_duration_ms),
               std::chrono::milliseconds(e.renew_deadline_ms),
               std::chrono::milliseconds(e.retry_period_ms)};
  auto leases = LeaseDriver::start(*api, std::move(lo));
  if (!leases) return Error{leases.error().message};
  loop->leases = leases->get();
  loop->forwarding_ready = std::move(options.forwarding_ready);
  if (options.services) {
    loop->events = std::move(options.services);
  } else {
    loop->events = std::make_shared<k8s::EventQueue>();
    k8s::WatcherOptions wo;
    wo.resources = {k8s::Resource::services};  // every Service: no label selector
    wo.ns = k.namespace_;
    wo.page_limit = k.page_limit;
    loop->watcher = std::make_unique<k8s::Watcher>(*api, wo, *loop->events);
    if (auto started = loop->watcher->start(); !started) {
      return Error{"provider: " + started.error().message};
    }
  }
  log << "magline: provider: assigning LoadBalancer addresses from " << config.provider.pools.size()
      << " pool(s) when leading (identity " << identity << ", Lease " << e.lease_namespace << "/"
      << e.lease_name << ")" << std::endl;
  std::unique_ptr<Provider> p(new Provider(std::move(loop)));
  p->leases_ = std::move(leases).value();
  p->election_.identity = identity;
  p->election_.lease = e.lease_namespace + "/" + e.lease_name;
  p->thread_ = std::thread([l = p->loop_.get()] { l->run(); });
  pthread_setname_np(p->thread_.native_handle(), "provider");
  return p;
}

Provider::Provider(std::unique_ptr<Loop> loop) : loop_(std::move(loop)) {}

Provider::~Provider() { stop(); }

void Provider::stop(bool release) {
  if (!loop_ || stopped_) return;
  stopped_ = true;
  loop_->stop.store(true);
  if (thread_.joinable()) thread_.join();
  // Released once nothing more is written (the successor may start at once), and before the
  // watch is stopped, which may take a second.
  if (leases_) {
    leases_->stop(release);
    loop_->say_leases();  // its thread is joined: this thread is the log's one writer now
  }
  if (loop_->watcher) loop_->watcher->stop();
  if (loop_->told) loop_->told->stop();
}

const ProviderCounters& Provider::counters() const noexcept { return loop_->counters; }

ProviderReport Provider::report() const {
  ProviderReport r;
  {
    std::lock_guard<std::mutex> lock(loop_->report_mu);
    r = loop_->report;
  }
  if (loop_->told) r.events = loop_->told->counts();
  r.election = election_;
  if (leases_) {
    r.election.leading = leases_->leading();
    r.election.leader = leases_->leader();
    r.election.live_nodes = leases_->live_nodes();
  }
  return r;
}

bool Provider::leading() const noexcept {
  return leases_ && leases_->leading();
}

std::string Provider::leader() const {
  return leases_ ? leases_->leader() : std::string();
}

bool Provider::holds_own_lease() const noexcept {
  return leases_ && leases_->holds_own_lease();
}

std::string Provider::identity() const {
  return election_.identity;
}

std::vector<std::string> Provider::live_nodes() const {
  return leases_ ? leases_->live_nodes() : std::vector<std::string>{};
}

}  // namespace magline::control
