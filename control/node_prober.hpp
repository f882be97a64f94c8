// The health-check prober of node targets (docs/k8s.md "Health checks of node targets"): one
// thread of its own probes every target of a k8s::HealthBook over HTTP, with non-blocking
// sockets on one epoll instance (no thread per probe), IPv4 and IPv6, at most
// `max_in_flight` probes at a time.
//
// A probe: connect, send `GET /healthz HTTP/1.1` with Host and `Connection: close`, read the
// status line (at most k8s::kProbeResponseMax bytes), close. All of it within `timeout`. It
// passes on status 200 only (k8s::judge_response). The socket is closed with a reset (SO_LINGER
// 0), as HAProxy closes its checks: a thousand probes a second would otherwise leave tens of
// thousands of sockets in TIME_WAIT.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "control/health_report.hpp"
#include "control/k8s/health_checks.hpp"
#include "dataplane/result.hpp"

namespace magline::control {

// The configuration's kubernetes.health_checks as the prober takes it.
k8s::HealthCheckParams health_check_params(const cfg::HealthChecksConfig& c);

class NodeProber {
 public:
  // `on_change`: called on the prober's thread, without the prober's lock held, after a
  // verdict flipped (generation() has moved): it should only wake the control thread.
  NodeProber(k8s::HealthCheckParams params, std::function<void()> on_change,
             uint64_t seed = 0x6d61676c696e65ull);
  ~NodeProber();  // stop()s
  NodeProber(const NodeProber&) = delete;
  NodeProber& operator=(const NodeProber&) = delete;

  // Starts the thread, once (a stopped prober is not restarted). Errors: no epoll or eventfd
  // (the message says which). start() and stop() belong to the owner's thread, and no
  // set_targets() may run concurrently with them.
  Result<void> start();
  // Ends every probe (unrecorded) and joins the thread: promptly, whatever the probes are
  // waiting for. Idempotent.
  void stop();

  // Replaces the targets (k8s::HealthBook::set_targets); new ones are probed at once. Any
  // thread, between start() and stop() (before start(), they wait for it).
  void set_targets(const std::vector<k8s::HealthTarget>& targets);

  // Any thread. nullopt: unknown (no such target, or no result yet).
  std::optional<bool> verdict(std::string_view service, std::string_view node) const;
  uint64_t generation() const;
  HealthReport report() const;  // a copy, for /state and /metrics

 private:
  struct Probe;
  void run();
  void start_probe(size_t slot, const k8s::HealthBook::Probe& p);
  void on_event(size_t slot, uint32_t events);
  void finish(size_t slot, k8s::ProbeResult result);
  void wake();

  k8s::HealthCheckParams params_;
  std::function<void()> on_change_;
  mutable std::mutex mutex_;  // guards book_ and in_flight_count_
  k8s::HealthBook book_;
  size_t in_flight_count_ = 0;

  // The prober thread's own (set before start(), read after join()).
  int epoll_fd_ = -1;
  int wake_fd_ = -1;           // an eventfd: set_targets() and stop() write it
  std::vector<Probe> probes_;  // max_in_flight slots
  std::vector<size_t> free_slots_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace magline::control
