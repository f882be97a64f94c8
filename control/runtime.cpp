#include "control/runtime.hpp"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <deque>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>
#include <thread>

#include "config/config.hpp"
#include "control/admin.hpp"
#include "control/k8s/plan.hpp"
#include "control/k8s_client/kube_config.hpp"
#include "control/k8s_client/watcher.hpp"
#include "control/k8s_source.hpp"
#include "control/publisher.hpp"
#include "control/stats.hpp"
#include "control/worker.hpp"
#include "dataplane/dpdk/eal.hpp"
#include "dataplane/dpdk/mbuf_io.hpp"
#include "dataplane/dpdk/port.hpp"
#include "dataplane/slow_path.hpp"
#include "dataplane/rss.hpp"

namespace magline::control {

namespace {

std::atomic<bool> g_stop{false};
std::atomic<bool> g_reload{false};

extern "C" void on_signal(int sig) {
  if (sig == SIGHUP) {
    g_reload.store(true);
  } else {
    g_stop.store(true);
  }
}

uint64_t now_ms() { return rte_get_tsc_cycles() / std::max<uint64_t>(1, rte_get_tsc_hz() / 1000); }

bool is_pci(const std::string& device) {
  return device.find(':') != std::string::npos && device.rfind("net_", 0) != 0;
}

std::vector<std::string> eal_args(const cfg::DataplaneConfig& d) {
  std::string cores = std::to_string(d.main_core);
  for (uint32_t c : d.worker_cores) {
    cores += ',';  // appended apart: g++ 12 at -O3 warns (-Wrestrict) on "," + to_string(c)
    cores += std::to_string(c);
  }
  std::vector<std::string> args = {"-l", cores, "--main-lcore", std::to_string(d.main_core),
                                   "-m", std::to_string(d.memory_mb)};
  if (d.hugepages) {
    args.push_back("--in-memory");  // no files left behind in /dev/hugepages or /var/run
  } else {
    args.insert(args.end(), {"--no-huge", "--no-shconf"});
  }
  bool any_pci = false;
  for (const cfg::PortConfig& p : d.ports) {
    if (is_pci(p.device)) {
      any_pci = true;
      args.insert(args.end(), {"-a", p.device});
    }
  }
  if (!any_pci) args.push_back("--no-pci");
  args.push_back("--log-level=*:warning");
  args.push_back("--no-telemetry");
  args.insert(args.end(), d.eal_args.begin(), d.eal_args.end());
  return args;
}

uint32_t pool_size(const cfg::DataplaneConfig& d) {
  if (d.mbufs != 0) return d.mbufs;
  const uint64_t workers = d.worker_cores.size();
  const uint64_t per_port =
      d.rx_descriptors * workers + d.tx_descriptors * (workers + 1) + 2 * dp::kMaxBurst * workers;
  uint64_t n = per_port * d.ports.size() + 8192;  // slow-path queues, rings in flight
  uint64_t pow2 = 1;
  while (pow2 < n + 1) pow2 <<= 1;
  return uint32_t(pow2 - 1);  // mempools are most efficient at 2^k - 1
}

// Slow-path buffers from the packet pool.
class MbufPool final : public dp::PacketPool {
 public:
  explicit MbufPool(rte_mempool* mp) : mp_(mp) {}
  bool alloc(dp::Packet& p, uint16_t len) override {
    rte_mbuf* m = rte_pktmbuf_alloc(mp_);
    if (m == nullptr) return false;
    if (rte_pktmbuf_tailroom(m) < len) {
      rte_pktmbuf_free(m);
      return false;
    }
    p = dpdk::to_packet(m, 0);
    p.len = len;
    return true;
  }
  void free(dp::Packet& p) override { dpdk::free_packet(p); }

 private:
  rte_mempool* mp_;
};

class Runtime {
 public:
  Runtime(cfg::Config config, const RunOptions& opts, std::ostream& out, std::ostream& err)
      : config_(std::move(config)), opts_(opts), out_(out), err_(err) {}

  // Everything that lives in EAL memory goes before the EAL; the EAL leaves its (empty)
  // runtime directory behind even with --in-memory or --no-shconf, so remove that too.
  ~Runtime() {
    const std::string dir = eal_ ? eal_->runtime_dir() : "";
    workers_.clear();
    slow_.reset();
    retirer_.reset();
    ports_.clear();
    pool_.reset();
    eal_.reset();
    std::error_code ignored;
    if (!dir.empty()) std::filesystem::remove(dir, ignored);  // only if empty
  }

  int run();

 private:
  Result<void> start_dataplane();
  Result<void> publish_static(std::vector<dp::Service> services);
  void send_change(Change change);
  void refresh_admin_view(uint64_t now);
  void launch();
  void control_loop();
  void reload();
  void send_updates(const std::vector<dp::Update>& ups);
  void flush_pending();
  void handle_slow(uint64_t now);
  void transmit(std::vector<dp::Packet>& pkts);
  void retire(std::shared_ptr<const dp::ServiceState> s);
  void stop_workers();
  void track_update_latency();
  void report();
  Result<void> start_kubernetes();
  void poll_kubernetes(uint64_t now);
  void kubernetes_report();

  cfg::Config config_;
  const RunOptions& opts_;
  std::ostream& out_;
  std::ostream& err_;

  std::optional<dpdk::EalSession> eal_;
  std::optional<dpdk::PktPool> pool_;
  std::vector<dpdk::Port> ports_;
  dp::Node node_;
  std::unique_ptr<dp::Steering> steering_;
  std::unique_ptr<Publisher> publisher_;
  std::set<std::string> static_names_;  // services from the configuration file
  uint64_t services_version_ = 0;        // publishes that changed something
  uint64_t admin_version_ = ~0ull;
  uint64_t admin_refreshed_ms_ = 0;
  std::shared_ptr<const dp::ServiceList> admin_services_;
  std::optional<dpdk::Qsbr> qsbr_;
  std::unique_ptr<dpdk::Retirer> retirer_;
  std::vector<std::unique_ptr<UpdateRing>> update_rings_;
  std::vector<std::unique_ptr<PeerRing>> peer_rings_;  // [from * W + to]
  std::vector<std::unique_ptr<SlowRing>> slow_rings_;
  std::unique_ptr<TxRing> control_tx_;
  std::vector<std::unique_ptr<WorkerContext>> workers_;
  std::vector<std::deque<dp::Update>> pending_;  // updates that did not fit a worker's ring
  std::vector<std::shared_ptr<const dp::ServiceState>> awaiting_send_;
  std::unique_ptr<MbufPool> mbufs_;
  std::unique_ptr<dp::SlowPath> slow_;
  std::atomic<bool> stop_workers_{false};
  AdminView admin_view_;
  std::unique_ptr<AdminServer> admin_;
  // Update latency: when the last publish was sent, and how many updates each worker must
  // have applied for it to be in effect everywhere.
  uint64_t publish_sent_tsc_ = 0;
  std::vector<uint64_t> updates_sent_;
  bool publish_in_flight_ = false;
  // Kubernetes: the watcher's threads fill k8s_events_; the control thread applies them to
  // k8s_ and publishes, at most coalesce_ms after the first event of a burst.
  std::unique_ptr<K8sSource> k8s_;
  std::unique_ptr<k8s::EventQueue> k8s_events_;
  std::unique_ptr<k8s::Watcher> watcher_;
  std::vector<k8s::WatchEvent> k8s_batch_;
  std::optional<uint64_t> k8s_pending_since_;  // ms: the oldest event not yet published
  std::optional<std::chrono::steady_clock::time_point> k8s_oldest_;  // ...as read off the wire
  std::optional<std::chrono::steady_clock::time_point> k8s_in_flight_;  // published, not in effect
  LatencySamples k8s_latency_;
  uint64_t k8s_reported_ms_ = 0;
  uint64_t k8s_reported_samples_ = 0;
  bool k8s_listed_[2] = {false, false};  // Services, EndpointSlices: first list applied
  bool launched_ = false;
  bool shutting_down_ = false;
  ControlCounters control_;
};

Result<void> Runtime::start_dataplane() {
  const cfg::DataplaneConfig& d = config_.dataplane;
  auto eal = dpdk::EalSession::create(eal_args(d));
  if (!eal) return Error{"cannot start DPDK: " + eal.error().message};
  eal_.emplace(std::move(eal).value());

  auto pool = dpdk::PktPool::create("magline_pkts", pool_size(d));
  if (!pool) return pool.error();
  pool_.emplace(std::move(pool).value());

  const uint16_t workers = uint16_t(d.worker_cores.size());
  std::vector<dp::PortSteering> steering;
  node_ = cfg::node_of(config_);
  for (size_t i = 0; i < d.ports.size(); ++i) {
    const cfg::PortConfig& pc = d.ports[i];
    dpdk::PortConfig c;
    c.device = pc.device.substr(0, pc.device.find(','));
    c.devargs = pc.device;
    c.rx_queues = workers;
    c.tx_queues = workers;  // the control thread transmits through worker 0 (WorkerContext)
    c.rx_descriptors = d.rx_descriptors;
    c.tx_descriptors = d.tx_descriptors;
    c.mtu = pc.mtu;
    c.promiscuous = pc.promiscuous;
    c.rss = workers > 1 ? dpdk::RssMode::automatic : dpdk::RssMode::off;
    c.rss_sctp = true;
    auto port = dpdk::Port::open(c, pool_->get());
    if (!port) return Error{"port " + pc.name + ": " + port.error().message};
    if (pc.mac) {
      rte_ether_addr mac;
      std::copy(pc.mac->b.begin(), pc.mac->b.end(), mac.addr_bytes);
      if (const int rc = rte_eth_dev_default_mac_addr_set(port->id(), &mac); rc != 0) {
        return Error{"port " + pc.name + ": cannot set MAC address: " + dpdk::error_text(rc)};
      }
    }
    if (auto started = port->start(); !started) {
      return Error{"port " + pc.name + ": " + started.error().message};
    }
    node_.ports[i].mac = port->mac();
    if (workers > 1) {
      auto s = port->steering();
      if (!s) {
        return Error{"port " + pc.name + ": " + std::to_string(workers) +
                     " workers need to know where the NIC delivers replies, but " +
                     s.error().message + "; use one worker on this device"};
      }
      steering.push_back({std::move(s).value(), {}, workers});
    }
    ports_.push_back(std::move(port).value());
  }
  if (workers == 1) {
    steering_ = std::make_unique<dp::SingleWorker>();
  } else {
    steering_ = std::make_unique<dp::RssWorkers>(std::move(steering));
  }

  auto qsbr = dpdk::Qsbr::create(workers);
  if (!qsbr) return qsbr.error();
  qsbr_.emplace(std::move(qsbr).value());
  retirer_ = std::make_unique<dpdk::Retirer>(*qsbr_);
  mbufs_ = std::make_unique<MbufPool>(pool_->get());
  slow_ = std::make_unique<dp::SlowPath>(
      node_, [this](const dp::IpAddr& a) { return publisher_->is_vip(a); }, *mbufs_);

  // Rings and worker contexts.
  pending_.resize(workers);
  updates_sent_.assign(workers, 0);
  for (uint16_t w = 0; w < workers; ++w) {
    auto up = UpdateRing::create(65536);
    auto slow = SlowRing::create(4096);
    if (!up || !slow) return Error{"cannot allocate rings"};
    update_rings_.push_back(std::make_unique<UpdateRing>(std::move(up).value()));
    slow_rings_.push_back(std::make_unique<SlowRing>(std::move(slow).value()));
  }
  auto control_tx = TxRing::create(4096);
  if (!control_tx) return Error{"cannot allocate rings"};
  control_tx_ = std::make_unique<TxRing>(std::move(control_tx).value());
  peer_rings_.resize(size_t(workers) * workers);
  for (uint16_t from = 0; from < workers; ++from) {
    for (uint16_t to = 0; to < workers; ++to) {
      if (from == to) continue;
      auto r = PeerRing::create(8192);
      if (!r) return Error{"cannot allocate rings"};
      peer_rings_[size_t(from) * workers + to] = std::make_unique<PeerRing>(std::move(r).value());
    }
  }
  for (uint16_t w = 0; w < workers; ++w) {
    auto ctx = std::make_unique<WorkerContext>();
    ctx->index = w;
    ctx->traffic = std::make_unique<dp::TrafficRows>();
    ctx->config.worker = w;
    ctx->config.workers = workers;
    ctx->config.flow_capacity = config_.flow_capacity;
    ctx->config.timeouts = config_.timeouts;
    ctx->config.flow_seed = rte_rdtsc() * 0x9e3779b97f4a7c15ull + w;
    ctx->config.snat_port_lo = d.snat_port_low;
    ctx->config.snat_port_hi = d.snat_port_high;
    ctx->node = &node_;
    ctx->steering = steering_.get();
    for (const dpdk::Port& p : ports_) ctx->ports.push_back(p.id());
    ctx->burst = d.burst;
    ctx->updates = update_rings_[w].get();
    ctx->slow = slow_rings_[w].get();
    if (w == 0) ctx->control_tx = control_tx_.get();
    ctx->qsbr = &*qsbr_;
    ctx->stop = &stop_workers_;
    for (uint16_t o = 0; o < workers; ++o) {
      ctx->peers_in.push_back(peer_rings_[size_t(o) * workers + w].get());
      ctx->peers_out.push_back(peer_rings_[size_t(w) * workers + o].get());
    }
    workers_.push_back(std::move(ctx));
  }
  return {};
}

// The configuration file's services replace the ones it gave before; watched services stay.
Result<void> Runtime::publish_static(std::vector<dp::Service> services) {
  std::set<std::string> names;
  for (const dp::Service& s : services) names.insert(s.name);
  std::vector<std::string> removals;
  for (const std::string& n : static_names_) {
    if (!names.count(n)) removals.push_back(n);
  }
  auto change = publisher_->update(std::move(services), removals, now_ms());
  if (!change) return change.error();
  static_names_ = std::move(names);
  send_change(std::move(change).value());
  return {};
}

void Runtime::send_change(Change change) {
  if (change.updates.empty()) return;
  ++services_version_;
  ++control_.updates_published;
  publish_sent_tsc_ = rte_get_tsc_cycles();
  publish_in_flight_ = true;
  send_updates(change.updates);
  for (auto& old : change.retired) awaiting_send_.push_back(std::move(old));
  flush_pending();
}

// The admin listener's list of services: rebuilt (O(services)) at most once a second, never on
// the update path.
void Runtime::refresh_admin_view(uint64_t now) {
  if (services_version_ != admin_version_ && now >= admin_refreshed_ms_ + 1000) {
    admin_services_ = std::make_shared<const dp::ServiceList>(publisher_->services());
    admin_version_ = services_version_;
    admin_refreshed_ms_ = now;
  }
  admin_view_.update(slow_->stats(), control_, admin_services_);
}

// Every worker gets the updates of one publish in one piece: it drains its ring between
// bursts, so it sees all of them or none.
void Runtime::send_updates(const std::vector<dp::Update>& ups) {
  for (size_t w = 0; w < workers_.size(); ++w) {
    pending_[w].insert(pending_[w].end(), ups.begin(), ups.end());
  }
  flush_pending();
}

void Runtime::flush_pending() {
  for (size_t w = 0; w < workers_.size(); ++w) {
    auto& q = pending_[w];
    while (!q.empty()) {
      const std::vector<dp::Update> batch(q.begin(), q.end());
      const uint32_t sent = update_rings_[w]->enqueue_burst(batch.data(), uint32_t(batch.size()));
      updates_sent_[w] += sent;
      q.erase(q.begin(), q.begin() + sent);
      if (sent < batch.size()) break;  // full: the rest goes out on a later pass
    }
  }
  // Grace periods count from when the workers could see the updates: retire only what was
  // replaced by updates that are all in the rings.
  if (std::all_of(pending_.begin(), pending_.end(), [](const auto& q) { return q.empty(); })) {
    for (auto& s : awaiting_send_) retire(std::move(s));
    awaiting_send_.clear();
  }
}

// A replaced state may be freed once every worker has applied the update (one grace period
// after it was sent) and then finished the burst it was in (a second one).
void Runtime::retire(std::shared_ptr<const dp::ServiceState> s) {
  struct Retiring {
    Runtime* rt;
    std::shared_ptr<const dp::ServiceState> state;
    bool second = false;
  };
  auto stage = [](void* p) {
    auto* r = static_cast<Retiring*>(p);
    if (r->second || r->rt->shutting_down_) {
      delete r;
      return;
    }
    r->second = true;
    r->rt->retirer_->retire(p, +[](void* q) { delete static_cast<Retiring*>(q); });
  };
  retirer_->retire(new Retiring{this, std::move(s)}, stage);
}

void Runtime::launch() {
  const cfg::DataplaneConfig& d = config_.dataplane;
  for (size_t w = 0; w < workers_.size(); ++w) {
    workers_[w]->registry = &publisher_->registry();
    rte_eal_remote_launch(worker_main, workers_[w].get(), d.worker_cores[w]);
  }
  launched_ = true;
}

// The control thread's frames leave through worker 0, which drains the ring every loop.
void Runtime::transmit(std::vector<dp::Packet>& pkts) {
  for (const dp::Packet& p : pkts) {
    if (!control_tx_->enqueue(p)) {
      ++control_.control_tx_full;
      dpdk::free_packet(p);
    }
  }
  pkts.clear();
}

void Runtime::handle_slow(uint64_t now) {
  dp::SlowPathOutput out;
  dp::SlowPacket sps[32];
  for (auto& ring : slow_rings_) {
    while (const uint32_t n = ring->dequeue_burst(sps, 32)) {
      for (uint32_t i = 0; i < n; ++i) slow_->handle(sps[i], now, out);
    }
  }
  slow_->tick(now, out);
  transmit(out.tx);
  std::vector<dp::Update> ups;
  for (const dp::NeighborUpdate& n : out.updates) {
    dp::Update u;
    u.kind = dp::Update::Kind::neighbor;
    u.neighbor = n;
    ups.push_back(u);
  }
  if (!ups.empty()) send_updates(ups);
}

void Runtime::reload() {
  ++control_.reloads;
  const std::string source = opts_.config_path.value_or(std::string(cfg::kEmbeddedSource));
  auto loaded = opts_.config_path ? cfg::load_config(*opts_.config_path)
                                  : cfg::parse_config(cfg::embedded_default_config(),
                                                      cfg::kEmbeddedSource);
  if (!loaded) {
    ++control_.reloads_refused;
    err_ << "magline: reload refused, keeping the running configuration: "
         << loaded.error().message << std::endl;
    return;
  }
  cfg::Reload next = cfg::reload_of(config_, std::move(*loaded));
  if (auto published = publish_static(cfg::services_of(next.config)); !published) {
    ++control_.reloads_refused;
    err_ << "magline: reload refused, keeping the running configuration: " << source << ": "
         << published.error().message << std::endl;
    return;
  }
  config_ = std::move(next.config);
  err_ << "magline: reloaded " << source << " (" << static_names_.size()
       << " services from the file, " << publisher_->size() << " in all)";
  if (!next.needs_restart.empty()) {
    err_ << "; changed, and kept as running until a restart:";
    for (const std::string& section : next.needs_restart) err_ << ' ' << section;
  }
  err_ << std::endl;
}

void Runtime::control_loop() {
  const uint64_t start = now_ms();
  const uint64_t deadline = opts_.duration_s > 0 ? start + uint64_t(opts_.duration_s * 1000) : 0;
  {
    dp::SlowPathOutput out;
    std::set<dp::IpAddr> unique;
    for (const auto& s : publisher_->services()) {
      for (const dp::Frontend& f : s->spec().frontends) unique.insert(f.addr);
    }
    const std::vector<dp::IpAddr> vips(unique.begin(), unique.end());
    slow_->announce(vips, start, out);
    transmit(out.tx);
  }
  while (!g_stop.load()) {
    const uint64_t now = now_ms();
    if (deadline && now >= deadline) break;
    if (g_reload.exchange(false)) reload();
    handle_slow(now);
    poll_kubernetes(now);
    flush_pending();
    retirer_->poll();
    publisher_->reclaim([this](bool backend, uint32_t slot) {
      for (auto& w : workers_) {
        if (backend) {
          w->traffic->reset_backend(slot);
        } else {
          w->traffic->reset_frontend(slot);
        }
      }
    });
    track_update_latency();
    refresh_admin_view(now);
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

// The latest publish is in effect once every worker has applied every update sent so far.
void Runtime::track_update_latency() {
  if (!publish_in_flight_) return;
  for (size_t w = 0; w < workers_.size(); ++w) {
    if (workers_[w]->applied.load(std::memory_order_acquire) < updates_sent_[w]) return;
    if (!pending_[w].empty()) return;
  }
  publish_in_flight_ = false;
  control_.last_update_ms =
      double(rte_get_tsc_cycles() - publish_sent_tsc_) * 1000.0 / double(rte_get_tsc_hz());
  if (k8s_in_flight_) {
    const auto took = std::chrono::steady_clock::now() - *k8s_in_flight_;
    k8s_latency_.add(std::chrono::duration<double, std::milli>(took).count());
    k8s_in_flight_.reset();
  }
}

// The label selector kube-proxy uses, turned around when Magline claims Services by name
// (docs/k8s.md): Services carry the proxy-name label, and their slices inherit it.
std::string k8s_selector(const std::string& proxy_name) {
  std::string s = proxy_name.empty() ? "!service.kubernetes.io/service-proxy-name"
                                     : "service.kubernetes.io/service-proxy-name=" + proxy_name;
  return s + ",!service.kubernetes.io/headless";
}

Result<void> Runtime::start_kubernetes() {
  const cfg::KubernetesConfig& k = config_.kubernetes;
  if (!k.enabled) return {};
  auto api = k.in_cluster ? k8s::in_cluster_config([](const char* n) { return std::getenv(n); })
                          : k8s::load_kubeconfig(k.kubeconfig, k.context);
  if (!api) return Error{"kubernetes: " + api.error().message};
  k8s_ = std::make_unique<K8sSource>(translate_options(config_));
  k8s_events_ = std::make_unique<k8s::EventQueue>();
  k8s::WatcherOptions wo;
  wo.label_selector = k8s_selector(k.proxy_name);
  wo.ns = k.namespace_;
  wo.page_limit = k.page_limit;
  err_ << "magline: watching Services and EndpointSlices at " << api->server << std::endl;
  watcher_ = std::make_unique<k8s::Watcher>(std::move(api).value(), wo, *k8s_events_);
  if (auto started = watcher_->start(); !started) {
    return Error{"kubernetes: " + started.error().message};
  }
  admin_view_.set_state_available(true);
  return {};
}

void Runtime::poll_kubernetes(uint64_t now) {
  if (!k8s_) return;
  k8s_batch_.clear();
  k8s_events_->drain(k8s_batch_);
  for (const k8s::WatchEvent& e : k8s_batch_) {
    const K8sKind kind =
        e.resource == k8s::Resource::services ? K8sKind::service : K8sKind::endpoint_slice;
    switch (e.type) {
      case k8s::WatchEvent::Type::added:
      case k8s::WatchEvent::Type::modified:
        k8s_->upsert(kind, e.object);
        break;
      case k8s::WatchEvent::Type::deleted:
        k8s_->erase(kind, e.object);
        break;
      case k8s::WatchEvent::Type::relisted:
        k8s_->replace(kind, e.items);
        k8s_listed_[kind == K8sKind::service ? 0 : 1] = true;
        break;
    }
    if (!k8s_pending_since_) k8s_pending_since_ = now;
    if (!k8s_oldest_ || e.received < *k8s_oldest_) k8s_oldest_ = e.received;
  }
  // Nothing is published before both resources' first lists are applied (as kube-proxy waits
  // for its informers): Services whose slices have not arrived yet would reject their traffic.
  if (k8s_pending_since_ && now >= *k8s_pending_since_ + config_.kubernetes.coalesce_ms &&
      k8s_listed_[0] && k8s_listed_[1]) {
    Change change = k8s_->sync(*publisher_, static_names_, now);
    if (!change.updates.empty()) {
      // The latency of the oldest event still on its way to the workers.
      if (!k8s_in_flight_) k8s_in_flight_ = k8s_oldest_;
      if (!change.new_vips.empty()) {
        dp::SlowPathOutput out;
        slow_->announce(change.new_vips, now, out);
        transmit(out.tx);
      }
      send_change(std::move(change));
    }
    k8s_pending_since_.reset();
    k8s_oldest_.reset();
  }
  if (admin_view_.state_wanted()) {
    k8s::Plan plan =
        k8s::build_plan(k8s_->service_objects(), k8s_->slice_objects(), k8s_->options());
    for (const auto& [key, why] : k8s_->errors()) plan.errors.push_back({key, why});
    admin_view_.answer_state(k8s::plan_json(plan));
  }
  // The counters for the admin listener: every 250 ms, and at once when an update took effect.
  if (now >= k8s_reported_ms_ + 250 || k8s_latency_.count() != k8s_reported_samples_) {
    k8s_reported_ms_ = now;
    k8s_reported_samples_ = k8s_latency_.count();
    kubernetes_report();
  }
}

// The watcher's and the translation's counters for /metrics and /stats.
void Runtime::kubernetes_report() {
  KubernetesReport r = kubernetes_report_of(*watcher_, *k8s_, k8s_latency_);
  admin_view_.update_extra(std::move(r.metrics), std::move(r.stats));
}

void Runtime::stop_workers() {
  stop_workers_.store(true);
  if (launched_) rte_eal_mp_wait_lcore();
  launched_ = false;
}

void Runtime::report() {
  nlohmann::ordered_json j = stats_json(workers_, slow_->stats(), control_);
  if (k8s_) {
    kubernetes_report();
    j["kubernetes"] = admin_view_.copy().extra_stats;
  }
  const std::string text = j.dump(2);
  out_ << text << std::endl;
  if (!opts_.stats_path.empty()) std::ofstream(opts_.stats_path) << text << "\n";
}

int Runtime::run() {
  if (config_.dataplane.ports.empty()) {
    err_ << config_.source << ": dataplane.ports is empty: magline run needs at least one port"
         << std::endl;
    return 1;
  }
  if (auto started = start_dataplane(); !started) {
    err_ << "magline: " << started.error().message << std::endl;
    return 1;
  }
  publisher_ = std::make_unique<Publisher>(node_);
  // Service states are built on the control thread's cores only: the EAL pinned this thread to
  // the main core, and the workers' cores are not to be shared.
  {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (pthread_getaffinity_np(pthread_self(), sizeof set, &set) == 0) {
      publisher_->set_builder_threads(size_t(CPU_COUNT(&set)));
    }
  }
  if (auto published = publish_static(cfg::services_of(config_)); !published) {
    err_ << config_.source << ": " << published.error().message << std::endl;
    return 1;
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGHUP, on_signal);
  err_ << "magline: forwarding " << publisher_->size() << " services on "
       << ports_.size() << " port(s) with " << workers_.size() << " worker(s)" << std::endl;
  launch();
  admin_view_.set_running(true);
  refresh_admin_view(now_ms());
  if (config_.admin.enabled) {
    auto admin = AdminServer::start(config_.admin.address, config_.admin.port, workers_,
                                    admin_view_);
    if (!admin) {
      err_ << "magline: " << admin.error().message << std::endl;
      g_stop.store(true);
    } else {
      admin_ = std::move(admin).value();
      err_ << "magline: admin listener on " << config_.admin.address << ":" << admin_->port()
           << std::endl;
    }
  }
  if (auto k8s = start_kubernetes(); !k8s) {
    err_ << "magline: " << k8s.error().message << std::endl;
    g_stop.store(true);
  }
  control_loop();
  if (watcher_) watcher_->stop();
  admin_view_.set_running(false);
  stop_workers();
  admin_.reset();
  report();
  shutting_down_ = true;
  dp::Packet left;
  while (control_tx_->dequeue(left)) dpdk::free_packet(left);
  retirer_.reset();  // no worker is online any more: everything retired is freed now
  slow_.reset();     // its held packets go back to the pool before the pool goes
  for (dpdk::Port& p : ports_) p.stop();
  return 0;
}

}  // namespace

int run(const RunOptions& options, std::ostream& out, std::ostream& err) {
  auto loaded = options.config_path
                    ? cfg::load_config(*options.config_path)
                    : cfg::parse_config(cfg::embedded_default_config(), cfg::kEmbeddedSource);
  if (!loaded) {
    err << loaded.error().message << std::endl;
    return 1;
  }
  Runtime rt(std::move(loaded).value(), options, out, err);
  return rt.run();
}

}  // namespace magline::control
