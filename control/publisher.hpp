// The control thread's view of what the workers forward, and the changes that move them from
// one set of services to the next.
//
// update() takes the services that are new or changed (by name) and the names that go. Work is
// proportional to what it is given, never to the number of services held: unchanged services are
// recognised and left alone, a Maglev table is built only for a service whose spec changed, and
// conflicts (a frontend claimed by two services) are checked against an index of the frontends
// in use. All or nothing: on error nothing changes and the running set stays.
//
// Control thread only. The returned states in `retired` must stay alive until every worker has
// applied the updates and passed a quiescent state (QSBR); the caller arranges that
// (control/publication.hpp).
//
// Counters: each frontend and backend of a state names a slot of the workers' counter rows
// (control/counter_slots.hpp), the same for as long as some state has that (service, frontend)
// or (service, backend), so that no update restarts a counter. A slot goes back to the free
// list when the last state naming it has been freed (on any thread), by reclaim().
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "control/counter_slots.hpp"
#include "dataplane/addr.hpp"
#include "dataplane/forwarder.hpp"
#include "dataplane/frontend_registry.hpp"
#include "dataplane/node.hpp"
#include "dataplane/result.hpp"
#include "dataplane/service.hpp"
#include "dataplane/traffic.hpp"

namespace magline::control {

struct Change {
  std::vector<dp::Update> updates;  // for every worker, in this order
  std::vector<std::shared_ptr<const dp::ServiceState>> retired;
  size_t built = 0;      // services whose state (and Maglev table) was built
  size_t unchanged = 0;  // services given that equal the running ones
  size_t removed = 0;
  std::vector<dp::IpAddr> new_vips;  // addresses no frontend used before (to announce)
};

class Publisher {
 public:
  explicit Publisher(const dp::Node& node)
      : Publisher(node, dp::TrafficRows::kFrontendSlots, dp::TrafficRows::kBackendSlots) {}
  // With `frontend_slots` and `backend_slots` counter slots of each kind (TrafficRows' sizes).
  Publisher(const dp::Node& node, uint32_t frontend_slots, uint32_t backend_slots);

  // Adds or replaces `upserts` and removes `removals` (names not held are ignored). A name may
  // not appear twice, nor in both lists.
  Result<Change> update(std::vector<dp::Service> upserts, const std::vector<std::string>& removals,
                        uint64_t now_ms);
  // The complete desired set: everything held and not in `services` is removed. O(held).
  Result<Change> publish(std::vector<dp::Service> services, uint64_t now_ms);

  const dp::ServiceState* find_by_name(std::string_view name) const noexcept;
  // The service a frontend belongs to, or nullptr.
  const dp::ServiceState* owner(const dp::Frontend& f) const noexcept {
    return frontends_.find(f.addr, f.port, uint8_t(f.proto)).service;
  }
  // An address some frontend uses (the slow path answers ARP and NDP for it).
  bool is_vip(const dp::IpAddr& a) const noexcept { return vips_.count(a) > 0; }
  size_t size() const noexcept { return services_.size(); }
  // Every service, sorted by name: O(held), for reports, not for the update path.
  dp::ServiceList services() const;

  const dp::FrontendRegistry& registry() const noexcept { return registry_; }

  // Frees the counter slots of every state freed since the last call: `reset(backend, slot)`
  // is called for each (it zeroes the slot's rows in every worker) before the slot can name
  // anything else. Returns how many were freed. Call it from the control loop.
  using ResetSlot = std::function<void(bool backend, uint32_t slot)>;
  size_t reclaim(const ResetSlot& reset);
  size_t frontend_slots_in_use() const noexcept { return frontend_slots_.in_use(); }
  size_t backend_slots_in_use() const noexcept { return backend_slots_.in_use(); }

  // Threads that build service states (Maglev tables) when a change has many; 1: the calling
  // thread only; at most 8. Default: the machine's hardware threads (`run`: its control CPUs).
  void set_builder_threads(size_t n) noexcept {
    builder_threads_ = std::clamp<size_t>(n, 1, kMaxBuilderThreads);
  }

 private:
  static constexpr size_t kPerThread = 64;  // fewer builds than this per thread: not worth it
  static constexpr size_t kMaxBuilderThreads = 8;
  void build_states(size_t n, const std::function<void(size_t)>& build) const;
  // Frontend ids and counter slots for a service about to be built; false (holding none) when
  // some kind has run out.
  struct Ids {
    std::vector<uint16_t> frontend_ids;
    std::vector<uint32_t> frontend_slots;
    std::vector<uint32_t> backend_slots;
  };
  std::optional<Ids> acquire_ids(const dp::Service& s, uint64_t now_ms);
  void release_ids(const Ids& ids, uint64_t now_ms);
  // A built state, handed out so that its counter slots come back when it is freed.
  std::shared_ptr<const dp::ServiceState> returning(std::shared_ptr<const dp::ServiceState> s);
  void index(const dp::ServiceState& s);
  void unindex(const dp::ServiceState& s);
  // The DNAT backends' frontends (for replies without an entry: Forwarder::stateless_reply()):
  // adds (+1) or removes (-1) those of `s`, noting the backends touched; then the workers'
  // updates for those whose answer changed.
  void index_dnat(const dp::ServiceState& s, int delta, std::set<dp::Endpoint>& touched);
  void dnat_updates(const std::set<dp::Endpoint>& touched, std::vector<dp::Update>& out);

  const dp::Node& node_;
  dp::FrontendRegistry registry_;
  CounterSlots frontend_slots_;
  CounterSlots backend_slots_;
  std::shared_ptr<SlotReturns> returns_ = std::make_shared<SlotReturns>();
  std::map<std::string, std::shared_ptr<const dp::ServiceState>, std::less<>> services_;
  dp::FrontendMap frontends_;
  std::map<dp::IpAddr, uint32_t> vips_;  // address -> frontends using it
  // A DNAT backend (address, port, protocol) -> the frontend ids it serves, with the states
  // that list the pair; and the answer the workers have (FrontendRegistry id,
  // dp::kAmbiguousFrontend, or none): the one frontend it serves, or, serving several, the one
  // it served first while it still does (that one's connections may hold no reply entry:
  // dp::kFlowOneEntry), else ambiguous. NodePort frontends are left out: a node's own address
  // is not one that another node forwards for.
  struct DnatBackend {
    std::map<uint16_t, uint32_t> frontends;
    std::optional<uint16_t> told;
  };
  std::map<dp::Endpoint, DnatBackend> dnat_backends_;
  size_t builder_threads_ =
      std::clamp<size_t>(std::thread::hardware_concurrency(), 1, kMaxBuilderThreads);
};

}  // namespace magline::control
