#include "control/control_thread.hpp"

#include <algorithm>

#include "control/announce.hpp"
#include "control/log.hpp"

namespace magline::control {

ControlThread::ControlThread(cfg::Config config, std::optional<std::string> config_path,
                             const dp::Node& node, WorkerLink& link, AdminView& admin,
                             std::ostream& log)
    : config_(std::move(config)),
      config_path_(std::move(config_path)),
      node_(node),
      link_(link),
      admin_(admin),
      log_(log),
      publisher_(std::make_unique<Publisher>(node)),
      publication_(std::make_unique<Publication>(link)) {
  slow_ = std::make_unique<dp::SlowPath>(
      node_, [this](const dp::IpAddr& a) { return publisher_->is_vip(a); }, link_.packets());
}

ControlThread::~ControlThread() { stop(); }

void ControlThread::stop() {
  if (health_) health_->stop();  // before the feed its prober wakes
  if (k8s_) k8s_->stop();
  slow_.reset();  // its held frames go back to the pool
  kernel_.clear();  // the kernel interfaces go away
}

Result<void> ControlThread::publish_configuration(uint64_t now_ms) {
  return publish_static(cfg::services_of(config_), now_ms);
}

// The configuration file's services replace the ones it gave before; watched services stay.
Result<void> ControlThread::publish_static(std::vector<dp::Service> services, uint64_t now_ms) {
  std::set<std::string> names;
  for (const dp::Service& s : services) names.insert(s.name);
  std::vector<std::string> removals;
  for (const std::string& n : static_names_) {
    if (!names.count(n)) removals.push_back(n);
  }
  auto change = publisher_->update(std::move(services), removals, now_ms);
  if (!change) return change.error();
  static_names_ = std::move(names);
  send(std::move(change).value());
  return {};
}

void ControlThread::send(Change change) {
  if (change.updates.empty()) return;
  ++services_version_;
  ++counters_.updates_published;
  ForwardedView::add_deltas(change, forwarded_deltas_);
  publication_->send(std::move(change));
}

Result<void> ControlThread::start_kubernetes(std::shared_ptr<k8s::EventQueue> services_copy) {
  if (!config_.kubernetes.enabled) return {};
  auto feed = K8sFeed::start(config_, log_, std::move(services_copy));
  if (!feed) return feed.error();
  k8s_ = std::move(feed).value();
  admin_.set_state_available(true);
  if (config_.kubernetes.targets == cfg::K8sTargets::nodes) {
    auto health = NodeHealth::start(*k8s_, health_check_params(config_.kubernetes.health_checks));
    if (!health) return health.error();
    health_ = std::move(health).value();
  }
  return {};
}

namespace {
std::set<dp::IpAddr> frontend_addresses(const Publisher& publisher) {
  std::set<dp::IpAddr> unique;
  for (const auto& s : publisher.services()) {
    for (const dp::Frontend& f : s->spec().frontends) unique.insert(f.addr);
  }
  return unique;
}
}  // namespace

void ControlThread::announce(uint64_t now_ms) {
  announce_vips(std::vector<dp::IpAddr>(), now_ms, true);
}

// Gratuitous ARP / unsolicited NA for `vips` (every frontend address with `all`), those the L2
// speaker owns only when it runs, and the ports' own addresses.
void ControlThread::announce_vips(std::vector<dp::IpAddr> vips, uint64_t now_ms, bool all) {
  if (all) {
    const std::set<dp::IpAddr> unique = frontend_addresses(*publisher_);
    vips.assign(unique.begin(), unique.end());
  }
  if (l2_) std::erase_if(vips, [this](const dp::IpAddr& a) { return !l2_->answers(a); });
  dp::SlowPathOutput out;
  slow_->announce(vips, now_ms, out);
  transmit(out.tx);
}

void ControlThread::speak_l2(std::string identity, std::function<L2Facts()> facts) {
  l2_ = std::make_unique<L2Speaker>(std::move(identity));
  l2_facts_ = std::move(facts);
  slow_->speak_only_for([this](const dp::IpAddr& a) { return l2_->answers(a); });
}

// /state's `l2_speaker` section beside the plan: this node, the live nodes, whether it holds
// its Lease, and each service address with its owner.
std::string ControlThread::with_l2_state(std::string plan) const {
  auto j = nlohmann::ordered_json::parse(plan, nullptr, false);
  if (!j.is_object()) return plan;
  nlohmann::ordered_json& l2 = j["l2_speaker"];
  l2["identity"] = l2_->identity();
  l2["holds_own_lease"] = l2_->self_live();
  l2["live_nodes"] = l2_->live();
  nlohmann::ordered_json& owners = l2["addresses"] = nlohmann::ordered_json::array();
  for (const dp::IpAddr& a : frontend_addresses(*publisher_)) {
    if (node_.is_local(a)) continue;
    owners.push_back({{"address", dp::to_string(a)}, {"owner", l2_owner(a, l2_->members())},
                      {"answered_here", l2_->answers(a)}});
  }
  return j.dump(2) + "\n";
}

void ControlThread::l2_turn(uint64_t now_ms) {
  if (!l2_ || (now_ms < l2_asked_ms_ + 100 && l2_version_ == services_version_)) return;
  l2_asked_ms_ = now_ms;
  L2Facts facts = l2_facts_();
  if (l2_version_ == services_version_ && facts.live == l2_last_.live &&
      facts.self_live == l2_last_.self_live) {
    return;
  }
  l2_version_ = services_version_;
  // The node's own addresses (NodePorts') are always its own to answer for.
  std::set<dp::IpAddr> addrs = frontend_addresses(*publisher_);
  std::erase_if(addrs, [this](const dp::IpAddr& a) { return node_.is_local(a); });
  const std::vector<dp::IpAddr> gained = l2_->update(addrs, facts.live, facts.self_live);
  if (facts.live != l2_last_.live || facts.self_live != l2_last_.self_live || !gained.empty()) {
    log_ << "magline: l2: answering for " << l2_->owned().size() << " address(es)"
         << (facts.self_live ? "" : " (not holding this node's Lease)") << ", live nodes:";
    for (const std::string& n : facts.live) log_ << ' ' << n;
    if (!gained.empty()) {
      log_ << "; taken over:";
      for (const dp::IpAddr& a : gained) log_ << ' ' << dp::to_string(a);
    }
    log_ << std::endl;
  }
  l2_last_ = std::move(facts);
  counters_.l2_owned = l2_->owned().size();
  counters_.l2_live_nodes = l2_->self_live() ? l2_->members().size() : 0;
  counters_.l2_takeovers = l2_->takeovers();
  if (!gained.empty()) announce_vips(gained, now_ms, false);
}

Result<void> ControlThread::open_kernel_interfaces() {
  const std::vector<cfg::PortConfig>& ports = config_.dataplane.ports;
  for (size_t i = 0; i < ports.size() && i < node_.ports.size(); ++i) {
    if (ports[i].kernel_interface.empty()) continue;
    const dp::NodePort& port = node_.ports[i];
    KernelTapSpec spec;
    spec.name = ports[i].kernel_interface;
    spec.mac = port.mac;
    // Frames from the kernel are read into one buffer each (2048 bytes of data room).
    spec.mtu = std::min<uint16_t>(port.mtu, kKernelMaxMtu);
    spec.addrs = port.addrs;
    auto tap = KernelTap::open(spec);
    if (!tap) return Error{"port " + ports[i].name + ": " + tap.error().message};
    kernel_.resize(node_.ports.size());
    kernel_[i] = std::move(tap).value();
  }
  return {};
}

std::vector<std::string> ControlThread::kernel_interfaces() const {
  std::vector<std::string> names(node_.ports.size());
  for (size_t i = 0; i < kernel_.size(); ++i) {
    if (kernel_[i]) names[i] = kernel_[i]->name();
  }
  return names;
}

Result<void> ControlThread::start_announcing() {
  if (!config_.bgp.enabled) return {};
  auto started = Announcer::start(config_.bgp, log_);
  if (!started) return started.error();
  announcer_ = std::move(started).value();
  admin_.set_bgp([a = announcer_.get()] { return a->report(); });
  return {};
}

void ControlThread::announce_turn(uint64_t now_ms, const std::string& unhealthy) {
  if (!announcer_) return;
  // The services first reach the workers once; after that, an update in flight (a reload, a
  // slice, a neighbour learned) changes nothing until the workers have it: addresses it adds
  // are announced, and those it empties withdrawn, when it is in effect.
  const bool in_effect = publication_->in_effect();
  const std::string why = draining_ ? "stopping"
                          : !ready_ ? "not ready: the services are not in effect yet"
                                    : unhealthy;
  if (why.empty() && !in_effect) return;
  if (why == announced_why_ &&
      (services_version_ == announced_version_ || now_ms < announced_ms_ + 200)) {
    return;
  }
  announced_why_ = why;
  announced_version_ = services_version_;
  announced_ms_ = now_ms;
  if (!why.empty()) {
    announcer_->set({}, why);
    return;
  }
  announcer_->set(announced_addresses(publisher_->services(),
                                      config_.bgp.withdraw_without_backends));
}

void ControlThread::turn(uint64_t now_ms, bool reload_asked) {
  if (reload_asked) reload(now_ms);
  handle_slow(now_ms);
  from_kernel();
  poll_kubernetes(now_ms);
  const uint64_t completed = publication_->completed();
  publication_->poll();
  if (publication_->completed() != completed) {
    forwarded_.apply(forwarded_deltas_);  // everything sent so far is in effect
    counters_.last_update_ms =
        std::chrono::duration<double, std::milli>(publication_->last_latency()).count();
    if (k8s_) k8s_->in_effect(std::chrono::steady_clock::now());
  }
  publisher_->reclaim([this](bool backend, uint32_t slot) {
    for (size_t w = 0; w < link_.workers(); ++w) {
      if (backend) {
        link_.traffic(w).reset_backend(slot);
      } else {
        link_.traffic(w).reset_frontend(slot);
      }
    }
  });
  // Ready once, for good: later updates in flight (a reload, a slice, a neighbour) leave the
  // workers forwarding what they had.
  ready_ = ready_ || ((!k8s_ || k8s_->synced()) && publication_->in_effect());
  l2_turn(now_ms);
  refresh_admin(now_ms);
}

// The control thread's frames leave through worker 0, which drains the ring every turn.
void ControlThread::transmit(std::vector<dp::Packet>& pkts) {
  for (dp::Packet& p : pkts) {
    if (!link_.send_frame(p)) {
      ++counters_.control_tx_full;
      link_.packets().free(p);
    }
  }
  pkts.clear();
}

// The exception path's way in: frames for the node, written to their port's kernel interface.
void ControlThread::to_kernel(std::vector<dp::Packet>& pkts) {
  for (dp::Packet& p : pkts) {
    KernelTap* tap = p.port < kernel_.size() ? kernel_[p.port].get() : nullptr;
    if (tap != nullptr && tap->write({p.data, p.len})) {
      ++counters_.kernel_written;
    } else {
      ++counters_.kernel_refused;
    }
    link_.packets().free(p);
  }
  pkts.clear();
}

// And its way out: what the kernel sent, at most kKernelBurst frames per interface per turn
// (the kernel queues the rest), sent on the interface's port as it is: the kernel addressed it.
void ControlThread::from_kernel() {
  for (size_t port = 0; port < kernel_.size(); ++port) {
    if (!kernel_[port]) continue;
    for (uint32_t i = 0; i < kKernelBurst; ++i) {
      dp::Packet p;
      if (!link_.packets().alloc(p, kKernelMaxFrame)) {
        ++counters_.kernel_no_buffer;
        break;
      }
      const ssize_t n = kernel_[port]->read({p.data, kKernelMaxFrame});
      if (n <= 0) {
        link_.packets().free(p);
        break;
      }
      p.len = uint16_t(n);
      p.port = uint16_t(port);
      ++counters_.kernel_read;
      if (!link_.send_frame(p)) {
        ++counters_.control_tx_full;
        link_.packets().free(p);
      }
    }
  }
}

void ControlThread::handle_slow(uint64_t now_ms) {
  dp::SlowPathOutput out;
  dp::SlowPacket sps[32];
  for (size_t w = 0; w < link_.workers(); ++w) {
    while (const uint32_t n = link_.receive_slow(w, sps, 32)) {
      for (uint32_t i = 0; i < n; ++i) slow_->handle(sps[i], now_ms, out);
    }
  }
  slow_->tick(now_ms, out);
  transmit(out.tx);
  to_kernel(out.kernel);
  publication_->send(out.worker_updates());
}

void ControlThread::reload(uint64_t now_ms) {
  ++counters_.reloads;
  const std::string source = config_path_.value_or(std::string(cfg::kEmbeddedSource));
  auto loaded = cfg::load_or_default(config_path_);
  if (!loaded) {
    ++counters_.reloads_refused;
    log_ << log_warning << "magline: reload refused, keeping the running configuration: "
         << loaded.error().message << std::endl;
    return;
  }
  cfg::Reload next = cfg::reload_of(config_, std::move(*loaded));
  if (auto published = publish_static(cfg::services_of(next.config), now_ms); !published) {
    ++counters_.reloads_refused;
    log_ << log_warning << "magline: reload refused, keeping the running configuration: "
         << source << ": " << published.error().message << std::endl;
    return;
  }
  config_ = std::move(next.config);
  log_ << "magline: reloaded " << source << " (" << static_names_.size()
       << " services from the file, " << publisher_->size() << " in all)";
  if (!next.needs_restart.empty()) {
    log_ << "; changed, and kept as running until a restart:";
    for (const std::string& section : next.needs_restart) log_ << ' ' << section;
  }
  log_ << std::endl;
}

void ControlThread::poll_kubernetes(uint64_t now_ms) {
  if (!k8s_) return;
  if (health_) health_->follow();
  if (std::optional<Change> change = k8s_->poll(now_ms, *publisher_, static_names_)) {
    if (!change->new_vips.empty()) announce_vips(change->new_vips, now_ms, false);
    send(std::move(*change));
  }
  if (admin_.state_wanted()) {
    std::string plan = health_ ? health_->state_json(k8s_->state_json()) : k8s_->state_json();
    if (l2_) plan = with_l2_state(std::move(plan));
    admin_.answer_state(std::move(plan));
  }
  // The counters for the admin listener: every 250 ms, and at once when an update took effect.
  if (now_ms >= k8s_reported_ms_ + 250 || k8s_->latency().count() != k8s_reported_samples_) {
    k8s_reported_ms_ = now_ms;
    k8s_reported_samples_ = k8s_->latency().count();
    KubernetesReport r = k8s_->report();
    if (health_) {
      const HealthReport health = health_->report();
      r.metrics += health_check_metrics(health);
      r.stats["health_checks"] = {{"targets", health.targets.size()},
                                  {"in_flight", health.in_flight},
                                  {"generation", health.generation}};
    }
    admin_.update_extra(std::move(r.metrics), std::move(r.stats));
  }
}

// The admin listener's list of services: rebuilt (O(services)) at most once a second, never on
// the update path.
void ControlThread::refresh_admin(uint64_t now_ms) {
  if (services_version_ != admin_version_ && now_ms >= admin_refreshed_ms_ + 1000) {
    admin_services_ = std::make_shared<const dp::ServiceList>(publisher_->services());
    admin_version_ = services_version_;
    admin_refreshed_ms_ = now_ms;
  }
  admin_.update(slow_->stats(), counters_, admin_services_);
}

nlohmann::ordered_json ControlThread::report(const WorkerViews& workers) {
  nlohmann::ordered_json j = stats_json(workers, slow_->stats(), counters_);
  if (k8s_) j["kubernetes"] = k8s_->report().stats;
  return j;
}

}  // namespace magline::control
