// The admin HTTP listener (cpp-httplib), loopback by default:
//   /healthz  200 "ok" while the workers run, 503 otherwise
//   /readyz   200 "ready" once the configuration is in effect on every worker and, with
//             Kubernetes, the first lists are applied too (what sd_notify READY=1 waits for);
//             503 before, and from the moment it stops
//   /metrics  Prometheus text format (docs/metrics.md): the workers' counters (control/stats.hpp),
//             the ports', the process's (read at each scrape) and the build's
//   /stats    the same counters as JSON
//   /state    the forwarding plan of the watched Kubernetes objects (docs/k8s.md), 404 when
//             nothing is watched; with the provider, its pools and allocations (`provider`)
//
// It runs on its own thread and never touches the data plane: it reads workers' published
// counter copies, and what the control thread publishes into an AdminView under a mutex.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "control/build_info.hpp"
#include "control/port_metrics.hpp"
#include "control/process_metrics.hpp"
#include "control/announcer.hpp"
#include "control/provider_report.hpp"
#include "control/stats.hpp"
#include "dataplane/result.hpp"

namespace httplib {
class Server;
}

namespace magline::control {

// What the control thread shares with the listener.
class AdminView {
 public:
  void update(const dp::SlowPathStats& slow, const ControlCounters& control,
              std::shared_ptr<const dp::ServiceList> services);
  void set_running(bool running) { running_.store(running); }
  bool running() const { return running_.load(); }
  // Whether it serves traffic as configured (the control loop says so at every turn).
  void set_ready(bool ready) { ready_.store(ready); }
  bool ready() const { return running_.load() && ready_.load(); }

  // Text the control thread adds to /metrics and a section it adds to /stats (the watcher's
  // counters), refreshed now and then.
  void update_extra(std::string metrics, nlohmann::ordered_json stats);
  // What is fixed at start: the binary, the ports' steering, and sections for /stats.
  void set_static(BuildInfo build, std::vector<PortReport> ports, nlohmann::ordered_json stats);
  // The ports' latest counters (the control thread reads the devices now and then).
  void update_ports(std::vector<PortCounters> counters);
  // Where the provider's report is read, on the listener's thread at each request (a copy
  // under the provider's mutex: control/k8s_provider.hpp). It keeps what it captures alive.
  void set_provider(std::function<ProviderReport()> report);
  // The same for BGP's announcer (control/announcer.hpp).
  void set_bgp(std::function<AnnouncerReport()> report);

  struct Copy {
    dp::SlowPathStats slow;
    ControlCounters control;
    std::shared_ptr<const dp::ServiceList> services;
    std::string extra_metrics;
    nlohmann::ordered_json extra_stats;
    BuildInfo build;
    std::vector<PortReport> ports;
    std::vector<PortCounters> port_counters;
    nlohmann::ordered_json static_stats;
    std::function<ProviderReport()> provider;  // empty: no provider
    std::function<AnnouncerReport()> bgp;      // empty: no bgp section
  };
  Copy copy() const;

  // /state is built by the control thread, which owns what it shows: the listener asks and
  // waits (bounded); the control thread answers between two turns of its loop.
  void set_state_available(bool yes) { state_available_.store(yes); }
  bool state_available() const { return state_available_.load(); }
  std::optional<std::string> ask_state(std::chrono::milliseconds timeout) const;
  bool state_wanted() const { return state_asked_.load() != state_answered_.load(); }
  void answer_state(std::string text);

 private:
  mutable std::mutex mu_;
  Copy data_;
  std::atomic<bool> running_{false};
  std::atomic<bool> ready_{false};

  mutable std::mutex state_mu_;
  mutable std::condition_variable state_cv_;
  mutable std::atomic<uint64_t> state_asked_{0};
  std::atomic<uint64_t> state_answered_{0};
  std::string state_;
  std::atomic<bool> state_available_{false};
};

// /metrics's text: everything `c` holds, the workers' counters and, when not null, the process's.
std::string metrics_of(const WorkerViews& workers, const AdminView::Copy& c,
                       const ProcessStats* process);

class AdminServer {
 public:
  // Binds address:port and listens; connections wait in the backlog until serve(). Apart from
  // serving so that `run` can take the address before it starts anything else. Errors: the
  // address cannot be bound, with the system's reason ("Address already in use").
  static Result<std::unique_ptr<AdminServer>> bind(const std::string& address, uint16_t port);
  // Starts answering on a thread; once. `workers` and `view` must outlive this object.
  void serve(WorkerViews workers, const AdminView& view);
  ~AdminServer();  // stops and joins

  uint16_t port() const noexcept { return port_; }

 private:
  AdminServer() = default;
  WorkerViews workers_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  uint16_t port_ = 0;
};

}  // namespace magline::control
