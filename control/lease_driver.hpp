// The provider's Leases (docs/provider.md): leader election on one Lease with client-go's
// algorithm, and this node's own Lease for liveness with the list of live nodes, on a thread of
// its own with its own API connection, so that a slow Service write never delays a renewal.
// The decisions are control/k8s/lease.hpp's; the requests control/k8s_client/lease_client.hpp's.
//
// Every retry period: try to acquire or renew the election Lease, renew this node's Lease
// (magline-node-IDENTITY, labelled magline.io/node-lease=true) and list the node Leases.
// leading() turns false by itself at the renew deadline after the last renewal, whatever this
// thread is doing (blocked on a dead API server, say): the provider asks it before every write.
//
// Threads: start() and stop() on the main thread; leading(), leader() and live_nodes() from
// any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "control/k8s/lease.hpp"
#include "control/k8s_client/kube_config.hpp"
#include "dataplane/result.hpp"

namespace magline::control {

// The label that marks node Leases, and the prefix of their names.
inline constexpr const char* kNodeLeaseLabel = "magline.io/node-lease";
inline constexpr const char* kNodeLeasePrefix = "magline-node-";

struct LeaseDriverOptions {
  std::string ns;          // the election Lease's namespace, and the node Leases'
  std::string lease_name;  // the election Lease
  std::string identity;    // this node: holderIdentity, and its Lease's name after the prefix
  k8s::LeaseTiming timing;
};

class LeaseDriver {
 public:
  // Connects (its own ApiClient; each request bounded by the renew deadline) and starts the
  // thread, whose first try is at once.
  static Result<std::unique_ptr<LeaseDriver>> start(const k8s::ApiConfig& api,
                                                    LeaseDriverOptions options);
  ~LeaseDriver();
  // Ends the thread (a request in flight is abandoned within about a second). With `release`,
  // hands the Leases over as client-go's ReleaseOnCancel does (no holder, 1 s): another node
  // takes over at its next try and this node leaves the live set at once. Without it, the
  // Leases run out as after a crash.
  void stop(bool release = true);

  // Whether this node leads now (an acquire-load of the renew deadline, then a clock read).
  bool leading() const noexcept;
  // Whether this node's own Lease is held now: renewed within the renew deadline (the L2
  // speaker answers for nothing otherwise: the other nodes will see this one gone).
  bool holds_own_lease() const noexcept;
  // The holder of the election Lease as last seen ("" before the first read, or released).
  std::string leader() const;
  // The holders of live node Leases, sorted (this node's included once its Lease is seen).
  std::vector<std::string> live_nodes() const;
  // What happened since the last call, as log lines (a change of leader or of the live set, a
  // failure once until it mends): the caller writes them, so that its log has one writer.
  std::vector<std::string> take_log();

 private:
  struct State;
  explicit LeaseDriver(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
  std::thread thread_;
};

}  // namespace magline::control
