// The LoadBalancer provider in `magline run` (docs/provider.md): a thread of its own that
// reads every Service (no label selector: a LoadBalancer Service gets its address whatever
// proxy implements its other frontends; from the forwarding side's watch, which copies its
// Service events for it), decides for each what to write (control/k8s/
// provider_core.hpp, addresses from control/k8s/ipam.hpp) and writes it (control/k8s_client/
// service_writer.hpp), one conditional write at a time.
//
// - Before anything is assigned, the first complete list is read and every address the
//   Services' statuses hold is taken back: a restart changes no address and writes nothing
//   when nothing changed.
// - A write that lost a race (409) re-reads the Service and decides again; one that failed is
//   tried again after a backoff (1 s, doubling to 30 s).
// - A deleted Service's finalizer is removed only once no worker forwards its LoadBalancer
//   addresses any more (the control thread's ForwardedView).
//
// - What it decides is told on the Service as Events (events.k8s.io/v1: assigned, released,
//   refused; the leader's only), deduplicated and rate limited, written by a thread of their own
//   (control/provider_events.hpp) so that they never delay a status write.
// - report() is a copy of its counters, pools and allocations for /metrics and /state,
//   refreshed after every turn that changed something.
// - Only the leader of the election Lease writes (control/lease_driver.hpp, client-go's
//   algorithm); it asks before every write, so a leader that could not renew in time stops
//   between two writes. A follower watches too and keeps its Ipam as the statuses say, so a
//   takeover writes nothing when nothing changed. Every node renews a Lease of its own; the
//   live set is live_nodes().
//
// Not yet (docs/provider.md): node targets; the live set has no consumer yet (issue 16).
//
// Threads: start() and stop() on the main thread; the provider's own thread does the rest; the
// watcher (the feed's, or its own) has its own.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "control/forwarded_view.hpp"
#include "control/k8s/events.hpp"
#include "control/k8s/ipam.hpp"
#include "control/k8s_client/watcher.hpp"
#include "control/provider_report.hpp"
#include "dataplane/result.hpp"

namespace magline::control {

class LeaseDriver;

struct ProviderCounters {
  std::atomic<uint64_t> writes{0};      // status and finalizer writes that took
  std::atomic<uint64_t> conflicts{0};   // writes refused with 409 (the Service changed)
  std::atomic<uint64_t> failures{0};    // writes that failed or were refused otherwise
  std::atomic<uint64_t> refused{0};     // Services that asked for what they cannot have
  std::array<std::atomic<uint64_t>, std::size(k8s::kRefusals)> refusals{};  // by reason
  std::atomic<uint64_t> assignments{0};  // addresses written into a status
  std::atomic<uint64_t> releases{0};     // Services that gave up what they held
  std::atomic<uint64_t> restored{0};    // addresses taken back from statuses at start
  std::atomic<bool> synced{false};      // the first list is in and every address restored
};

struct ProviderOptions {
  k8s::EventOptions events;
  // The Events' reportingInstance; empty: kubernetes.node_name, or else the host's name.
  std::string instance;
  // Where the forwarding side's watch copies every Service event (`magline run`: one LIST and
  // one WATCH of Services serve both); null: the provider watches Services itself.
  std::shared_ptr<k8s::EventQueue> services;
  // At a start the provider reads nothing until this holds (the forwarding side's first sync is
  // in effect), for at most kForwardingFirstMax: both need the CPU then, and forwarding what
  // the statuses already say comes first. Null: no wait.
  std::function<bool()> forwarding_ready;
};

inline constexpr std::chrono::seconds kForwardingFirstMax{10};

class Provider {
 public:
  // Whether the configuration asks for the provider: address pools and a kubernetes section.
  static bool wanted(const cfg::Config& config);
  // Reads the credentials, starts the watch (unless options.services) and the provider's thread.
  // `forwarded` outlives it.
  static Result<std::unique_ptr<Provider>> start(const cfg::Config& config,
                                                 const ForwardedView& forwarded, std::ostream& log,
                                                 ProviderOptions options = {});
  ~Provider();
  // Stops writing, then (with `release`) hands the Leases over so that another node takes over
  // at once; without it they run out as after a crash (for tests of that case). Once: a second
  // call does nothing.
  void stop(bool release = true);

  const ProviderCounters& counters() const noexcept;
  // Any thread: the counters, the pools' usage and the allocations as of the provider's last
  // turn (a copy taken under a mutex).
  ProviderReport report() const;
  // Any thread: whether this node leads now; the election Lease's holder as last seen; the
  // live Magline nodes (their identities, sorted).
  bool leading() const noexcept;
  std::string leader() const;
  std::vector<std::string> live_nodes() const;
  // Any thread: whether this node holds its own node Lease now; its identity.
  bool holds_own_lease() const noexcept;
  std::string identity() const;

 private:
  struct Loop;
  explicit Provider(std::unique_ptr<Loop> loop);
  std::unique_ptr<Loop> loop_;
  std::thread thread_;
  std::unique_ptr<LeaseDriver> leases_;
  bool stopped_ = false;
  ProviderReport::Election election_;  // what is fixed at start: identity, Lease
};

}  // namespace magline::control
