// The service model: what Magline forwards. A service has frontends (address, port, protocol),
// backends and options; its ServiceState adds the Maglev table and is immutable once built, so
// workers read it without locks while the control thread builds the next one.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/addr.hpp"
#include "dataplane/bytes.hpp"
#include "dataplane/connection_limit.hpp"
#include "dataplane/maglev.hpp"
#include "dataplane/node.hpp"
#include "dataplane/result.hpp"

namespace magline::dp {

enum class Protocol : uint8_t { tcp = 6, udp = 17, sctp = 132 };
enum class FrontendKind : uint8_t { load_balancer, node_port, external_ip };
enum class ForwardMode : uint8_t {
  full_nat,  // source and destination rewritten; replies come back through Magline
  dnat,      // destination rewritten; backends route replies back through Magline
  dsr_l2,    // only the destination MAC rewritten; backends hold the VIP and reply directly
  ipip,      // encapsulated in IP to a backend anywhere routable, which replies directly
  gue,       // encapsulated in UDP (GUE variant 1) likewise (dataplane/encap.hpp)
};
// Modes whose replies go from the backend to the client directly, bypassing Magline: one flow
// entry per connection, no reply entry.
constexpr bool direct_return(ForwardMode m) noexcept {
  return m == ForwardMode::dsr_l2 || m == ForwardMode::ipip || m == ForwardMode::gue;
}
constexpr bool encapsulates(ForwardMode m) noexcept {
  return m == ForwardMode::ipip || m == ForwardMode::gue;
}
enum class BackendState : uint8_t { ready, terminating };
enum class NoBackends : uint8_t { reject, drop };  // what a new connection gets when none is usable
// When full-NAT's SYN proxy answers a TCP frontend's SYNs (syn_proxy.hpp): when the frontend's
// half-open handshakes pass the node's threshold (a flood), always, or never.
enum class SynProxy : uint8_t { automatic, on, off };

std::string_view to_string(Protocol p) noexcept;
std::string_view to_string(FrontendKind k) noexcept;
std::string_view to_string(ForwardMode m) noexcept;
std::string_view to_string(BackendState s) noexcept;
std::string_view to_string(NoBackends n) noexcept;
std::string_view to_string(SynProxy p) noexcept;

struct Frontend {
  IpAddr addr;
  uint16_t port = 0;
  Protocol proto = Protocol::tcp;
  FrontendKind kind = FrontendKind::load_balancer;
  friend bool operator==(const Frontend&, const Frontend&) = default;
};

struct Backend {
  IpAddr addr;
  uint16_t port = 0;
  uint32_t weight = 1;  // 0: takes no new connections
  BackendState state = BackendState::ready;
  friend bool operator==(const Backend&, const Backend&) = default;
};

// "ADDR:PORT" or "[ADDR]:PORT": a backend's stable identity (Maglev orders and hashes it).
std::string backend_id(const IpAddr& addr, uint16_t port);
std::string to_string(const Frontend& f);

struct SessionAffinity {
  bool client_ip = false;
  uint32_t timeout_s = 10800;  // Kubernetes' default for ClientIP affinity
  friend bool operator==(const SessionAffinity&, const SessionAffinity&) = default;
};

struct Service {
  std::string name;  // unique, e.g. "default/web:http"
  std::vector<Frontend> frontends;
  std::vector<Backend> backends;
  ForwardMode mode = ForwardMode::full_nat;
  SessionAffinity affinity;
  std::vector<IpPrefix> source_ranges;  // empty: every source is allowed
  NoBackends no_backends = NoBackends::reject;
  uint32_t table_size = kDefaultMaglevSize;
  ConnectionLimit new_connections;  // per frontend; none by default
  SynProxy syn_proxy = SynProxy::automatic;  // full-NAT TCP frontends only
  friend bool operator==(const Service&, const Service&) = default;
};

struct ServiceBuild {
  const Node* node = nullptr;          // resolves each backend's next hop; none: unresolved
  std::vector<uint16_t> frontend_ids;  // FrontendRegistry ids, one per frontend; empty: 0, 1, ...
  // Counter slots (dataplane/traffic.hpp), one per frontend and one per backend, in spec order;
  // empty: 0, 1, ... (a lone service in a test).
  std::vector<uint32_t> frontend_slots;
  std::vector<uint32_t> backend_slots;
};

// A service ready for the data plane: immutable after build(). What the workers count about it
// lives in their own rows (TrafficRows), at the slots it names.
//
// New connections go to ready backends by weight. Terminating backends keep the connections they
// have and get no new ones, except when no backend is ready: then new connections go to the
// terminating ones, as Kubernetes does (KEP-1669). With neither, the table is empty() and new
// connections get the service's NoBackends action.
class ServiceState {
 public:
  static Result<std::shared_ptr<const ServiceState>> build(Service spec,
                                                           const ServiceBuild& opts = {});

  const Service& spec() const noexcept { return spec_; }
  const MaglevTable& table() const noexcept { return table_; }
  bool has_backends() const noexcept { return !table_.empty(); }
  bool serving_terminating() const noexcept { return serving_terminating_; }
  // A stable 32-bit id derived from the name: the same on every node and after restarts.
  uint32_t id() const noexcept { return id_; }

  // The index of the backend a new connection with `flow_hash` goes to. Precondition:
  // has_backends().
  uint16_t pick(uint64_t flow_hash) const noexcept { return table_.lookup(flow_hash); }
  void prefetch_pick(uint64_t flow_hash) const noexcept { table_.prefetch(flow_hash); }
  const Backend& backend(size_t i) const noexcept { return spec_.backends[i]; }
  // Where backend i is reached, when a route or an on-link subnet covers it.
  const std::optional<NextHop>& next_hop(size_t i) const noexcept {
    return per_backend_[i].next_hop;
  }
  // The index of the backend with this address and port, or -1: O(log N).
  int find_backend(const std::array<uint8_t, 16>& addr, uint16_t port) const noexcept;
  // The same, tried first at `hint` (where the connection's backend was last time): O(1) while
  // the backend set has not changed under the connection.
  int find_backend(const std::array<uint8_t, 16>& addr, uint16_t port,
                   uint16_t hint) const noexcept {
    return backend_at(hint, addr, port) ? hint : find_backend(addr, port);
  }
  // Whether backend `i` is (addr, port).
  bool backend_at(uint16_t i, const std::array<uint8_t, 16>& addr, uint16_t port) const noexcept {
    return i < n_backends_ && per_backend_[i].port == port &&
           IpAddr::same_bytes(per_backend_[i].addr, addr);
  }

  uint16_t frontend_id(size_t i) const noexcept { return frontend_ids_[i]; }

  bool source_allowed(const IpAddr& src) const noexcept;

  // The counter slots of frontend i and backend i.
  uint32_t frontend_slot(size_t i) const noexcept { return frontend_slots_[i]; }
  uint32_t backend_slot(size_t i) const noexcept { return per_backend_[i].slot; }

 private:
  Service spec_;
  MaglevTable table_;
  bool serving_terminating_ = false;
  uint32_t id_ = 0;
  // What the hit path reads of a backend, side by side: its address and port (to check a
  // connection's hint), next hop and counter slot.
  struct PerBackend {
    std::array<uint8_t, 16> addr{};
    uint16_t port = 0;
    std::optional<NextHop> next_hop;
    uint32_t slot = 0;
  };
  std::vector<PerBackend> per_backend_;
  size_t n_backends_ = 0;  // per_backend_.size(), kept: a division by 44 otherwise
  std::vector<uint16_t> by_identity_;  // backend indices sorted by (address, port)
  std::vector<uint16_t> frontend_ids_;
  std::vector<uint32_t> frontend_slots_;
};

using ServiceList = std::vector<std::shared_ptr<const ServiceState>>;

// Frontend (address, port, protocol) -> service, by open addressing with linear probing: one or
// two cache lines per lookup, O(1). Single writer; readers of an instance must not run
// concurrently with its writer (each worker owns its own copy, see docs/architecture.md).
struct FrontendHit {
  const ServiceState* service = nullptr;  // nullptr: no such frontend
  uint16_t index = 0;                     // the frontend's index in the service
  uint32_t slot = 0;                      // its counter slot (service->frontend_slot(index))
};

class FrontendMap {
 public:
  // Room for `expected` frontends without growing.
  explicit FrontendMap(size_t expected = 16);

  FrontendHit find(const IpAddr& addr, uint16_t port, uint8_t proto) const noexcept {
    return find(addr.bytes, addr.family, port, proto);
  }
  // The same, for an address inside a flow key: read as the two 8-byte words parse() stores it
  // in (a 16-byte copy of a key just parsed, an IpAddr made of it, cannot be forwarded from
  // those two stores and waited for both to reach the cache: a twentieth of the new path).
  FrontendHit find(const std::array<uint8_t, 16>& addr, Family family, uint16_t port,
                   uint8_t proto) const noexcept;
  // Adds or replaces. Grows (allocating) past `expected`.
  void insert(const Frontend& f, const ServiceState* s, uint16_t index);
  bool erase(const Frontend& f) noexcept;
  size_t size() const noexcept { return size_; }

 private:
  struct Key {
    std::array<uint8_t, 16> addr;
    uint16_t port;
    uint8_t proto;
    Family family;
    // `lo` and `hi`: the address's two 8-byte words, as load_le64() reads them.
    bool matches(uint64_t lo, uint64_t hi, uint16_t p, uint8_t pr, Family f) const noexcept {
      return port == p && proto == pr && family == f && load_le64(addr.data()) == lo &&
             load_le64(addr.data() + 8) == hi;
    }
    friend bool operator==(const Key& a, const Key& b) noexcept {
      return a.matches(load_le64(b.addr.data()), load_le64(b.addr.data() + 8), b.port, b.proto,
                       b.family);
    }
  };
  struct Slot {
    Key key;
    const ServiceState* value;  // nullptr: empty
    uint16_t index;
    uint32_t counter_slot;
  };
  static Key key_of(const IpAddr& addr, uint16_t port, uint8_t proto) noexcept;
  size_t home(const Key& k) const noexcept;
  size_t home(uint64_t lo, uint64_t hi, uint16_t port, uint8_t proto,
              Family family) const noexcept;
  static size_t addr_bucket(const IpAddr& addr) noexcept;
  static size_t addr_bucket(uint64_t lo, uint64_t hi, Family family) noexcept;
  void grow();

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
  // Frontends per bucket of their address (a hash of it alone): a destination whose bucket
  // holds none is no frontend's, answered without probing the slots. The slots are sized for
  // every frontend a node may have (megabytes), so a probe at a destination packets chose (a
  // DNAT reply's client, a flood's) is a cache miss; this is 16 KiB.
  static constexpr size_t kAddrBuckets = 4096;
  std::vector<uint32_t> addr_count_ = std::vector<uint32_t>(kAddrBuckets, 0);
};

// A consistent set of services with their frontend index: what `magline table` prints and what
// the control thread diffs against. Services sorted by name.
class Snapshot {
 public:
  // Builds every service; refuses duplicate names and a frontend claimed by two services.
  // Services equal to one in `previous` are shared with it, not rebuilt. `opts` applies to every
  // service (frontend ids are left to the caller: see Publisher).
  static Result<std::shared_ptr<const Snapshot>> build(std::vector<Service> services,
                                                       const Snapshot* previous = nullptr,
                                                       const ServiceBuild& opts = {});
  // A snapshot of services already built; the same checks as build().
  static Result<std::shared_ptr<const Snapshot>> assemble(
      std::vector<std::shared_ptr<const ServiceState>> states);

  const std::vector<std::shared_ptr<const ServiceState>>& services() const noexcept {
    return services_;
  }
  const ServiceState* find(const IpAddr& addr, uint16_t port, uint8_t proto) const noexcept {
    return frontends_.find(addr, port, proto).service;
  }
  const ServiceState* find_by_name(std::string_view name) const noexcept;

 private:
  std::vector<std::shared_ptr<const ServiceState>> services_;
  FrontendMap frontends_;
};

}  // namespace magline::dp
