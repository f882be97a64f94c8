// The control thread: owns everything the workers read, and turns what the world says into
// updates for them. Each turn (about every 200 us):
//
//   SIGHUP asked for?  reload the configuration file's services (or refuse it, keeping them)
//   slow path          the frames workers handed over (ARP, NDP, pings, frames waiting for a
//                      neighbour) and its timers; its frames out through worker 0; neighbour
//                      changes to every worker
//   exception path     frames for the node itself written to the ports' kernel interfaces;
//                      what the kernel sends there read and sent on the port (kernel_tap.hpp)
//   Kubernetes         watch events applied, coalesced, translated, published (k8s_feed.hpp)
//   publication        queued updates into the rings, grace periods, what they free
//                      (publication.hpp); counter slots of freed states reset (publisher.hpp)
//   admin listener     what /metrics, /stats and /state show
//
// It never touches DPDK: the workers are behind a WorkerLink (DPDK lcores in `magline run`,
// threads and rings in the tests).
//
// Control thread only (the AdminView is what it shares with the admin listener).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
#include <string>

#include "config/config.hpp"
#include "control/admin.hpp"
#include "control/announcer.hpp"
#include "control/counter_fields.hpp"
#include "control/forwarded_view.hpp"
#include "control/kernel_tap.hpp"
#include "control/k8s_feed.hpp"
#include "control/l2_speaker.hpp"
#include "control/node_health.hpp"
#include "control/publication.hpp"
#include "control/publisher.hpp"
#include "control/worker_link.hpp"
#include "dataplane/slow_path.hpp"

namespace magline::control {

class ControlThread {
 public:
  // `config_path`: where SIGHUP reloads from (none: the embedded default). `node` and `link`
  // outlive it. Nothing is published yet.
  ControlThread(cfg::Config config, std::optional<std::string> config_path, const dp::Node& node,
                WorkerLink& link, AdminView& admin, std::ostream& log);
  ~ControlThread();

  // Publishes the configuration file's services (the workers apply them before anything else).
  // Errors: they conflict (two claim a frontend), or a Maglev table cannot be built.
  Result<void> publish_configuration(uint64_t now_ms);
  // Starts watching the API server when the configuration says so; with `services_copy`, every
  // Service event is also pushed there (the provider's, which then watches nothing itself).
  Result<void> start_kubernetes(std::shared_ptr<k8s::EventQueue> services_copy = nullptr);
  // Announces every VIP (gratuitous ARP, unsolicited NA): once the workers run.
  void announce(uint64_t now_ms);
  // Creates the kernel interfaces of the ports that have one (the exception path), each with
  // its port's MAC, MTU and addresses. Errors: one could not be created or configured.
  Result<void> open_kernel_interfaces();
  // Their names, by port (empty: none).
  std::vector<std::string> kernel_interfaces() const;

  // BGP (docs/announce.md): starts the announcer when the configuration has a bgp section
  // (BIRD's configuration written with nothing announced). Errors: it cannot be written.
  Result<void> start_announcing();
  Announcer* announcer() noexcept { return announcer_.get(); }
  // What to announce, every turn: the LoadBalancer addresses (control/announce.hpp) as the
  // workers have them, or nothing before the services were first in effect, while the data
  // plane is unhealthy (`unhealthy` says why) and once draining. Recomputed at most every
  // 200 ms, and at once when the reason for withdrawing everything changes.
  void announce_turn(uint64_t now_ms, const std::string& unhealthy);
  // The L2 speaker (provider.l2_speaker): from now on this node answers ARP/ND only for the
  // service addresses it owns among the live nodes `facts` reports (any thread's answer,
  // asked every 100 ms: the provider's Leases), and announces those it takes over.
  struct L2Facts {
    std::vector<std::string> live;  // sorted
    bool self_live = false;         // this node holds its own Lease
  };
  void speak_l2(std::string identity, std::function<L2Facts()> facts);
  const L2Speaker* l2_speaker() const noexcept { return l2_.get(); }

  // SIGTERM with BGP: everything withdrawn from now on (runtime.cpp drains, then stops).
  void drain() noexcept { draining_ = true; }

  // One turn of the loop.
  void turn(uint64_t now_ms, bool reload);

  // Whether what should be forwarded is in effect on every worker: the configuration's services
  // and, when watching, the first complete sync from the API server (readiness, runtime.cpp).
  bool ready() const noexcept { return ready_; }

  Publisher& publisher() noexcept { return *publisher_; }
  // The Kubernetes feed, once start_kubernetes() started one (else null): for the prober's
  // wiring (K8sFeed::probe_targets, verdicts_changed, set_node_verdict).
  K8sFeed* kubernetes() noexcept { return k8s_.get(); }
  // Which Services' LoadBalancer frontends the workers forward (for the provider's thread).
  const ForwardedView& forwarded() const noexcept { return forwarded_; }
  const Publication& publication() const noexcept { return *publication_; }
  const ControlCounters& counters() const noexcept { return counters_; }
  const dp::SlowPathStats& slow_path() const noexcept { return slow_->stats(); }
  size_t services_from_file() const noexcept { return static_names_.size(); }
  // The final report: every counter as JSON (after the workers have stopped).
  nlohmann::ordered_json report(const WorkerViews& workers);
  // Stops the watcher and frees the slow path's held frames (before the workers' pool goes).
  void stop();

 private:
  // The exception path: frames read from a kernel interface per turn, and the largest frame
  // (one buffer's data room; the interface's MTU leaves room for an Ethernet header and a tag).
  static constexpr uint32_t kKernelBurst = 64;
  static constexpr uint16_t kKernelMaxFrame = 2048;
  static constexpr uint16_t kKernelMaxMtu = kKernelMaxFrame - 18;

  Result<void> publish_static(std::vector<dp::Service> services, uint64_t now_ms);
  void reload(uint64_t now_ms);
  void handle_slow(uint64_t now_ms);
  void poll_kubernetes(uint64_t now_ms);
  void transmit(std::vector<dp::Packet>& pkts);
  void to_kernel(std::vector<dp::Packet>& pkts);
  void from_kernel();
  void send(Change change);
  void refresh_admin(uint64_t now_ms);

  cfg::Config config_;
  std::optional<std::string> config_path_;
  const dp::Node& node_;
  WorkerLink& link_;
  AdminView& admin_;
  std::ostream& log_;
  std::unique_ptr<Publisher> publisher_;
  std::unique_ptr<Publication> publication_;
  std::unique_ptr<dp::SlowPath> slow_;
  std::vector<std::unique_ptr<KernelTap>> kernel_;  // by port; null: no kernel interface
  std::unique_ptr<Announcer> announcer_;
  bool draining_ = false;
  // Part of turn(): the L2 speaker follows the live set and the services' addresses (every
  // 100 ms, and at once when the services changed).
  void l2_turn(uint64_t now_ms);
  void announce_vips(std::vector<dp::IpAddr> vips, uint64_t now_ms, bool all);
  std::string with_l2_state(std::string plan) const;

  bool ready_ = false;
  std::unique_ptr<L2Speaker> l2_;
  std::function<L2Facts()> l2_facts_;
  uint64_t l2_asked_ms_ = 0;
  uint64_t l2_version_ = ~0ull;  // services_version_ at the last update
  L2Facts l2_last_;  // the services have been in effect (and Kubernetes synced) once
  uint64_t announced_version_ = ~0ull;  // services_version_ when last computed
  uint64_t announced_ms_ = 0;
  std::string announced_why_ = "-";     // why everything was withdrawn then ("" : it was not)
  std::unique_ptr<K8sFeed> k8s_;
  // Node targets: the Local Services' healthCheckNodePorts probed (control/node_health.hpp).
  std::unique_ptr<NodeHealth> health_;
  std::set<std::string> static_names_;  // services from the configuration file
  ControlCounters counters_;
  uint64_t services_version_ = 0;  // publishes that changed something
  uint64_t admin_version_ = ~0ull;
  uint64_t admin_refreshed_ms_ = 0;
  uint64_t k8s_reported_ms_ = 0;
  uint64_t k8s_reported_samples_ = 0;
  std::shared_ptr<const dp::ServiceList> admin_services_;
  ForwardedView forwarded_;
  std::map<std::string, int> forwarded_deltas_;  // sent, not yet in effect everywhere
};

}  // namespace magline::control
