// The forwarding pipeline of one worker: a burst of frames in, a verdict for each out.
//
// For each frame: parse; hand ARP and neighbour discovery to the slow path; look the
// destination up among the frontends; look the flow up (in bulk for the burst); on a hit, rewrite
// as the connection was set up; on a miss, check source ranges and the frontend's new-connection
// limit, choose a backend (session affinity, else Maglev over the 5-tuple), record the
// connection (a direct-return SYN excepted: its ACK opens the entry) and, for full-NAT and DNAT,
// the entry its replies will hit; then rewrite (NAT), encapsulate (IPIP, GUE: encap.hpp, within
// the path MTU) or leave the packet as it is (L2 DSR), and address the frame to the next hop.
// Frames for no frontend are looked up as replies of a connection (full-NAT, DNAT); a DNAT
// backend's reply for which no entry exists is translated from what the backend serves.
//
// Contract: one Forwarder per worker, used by that worker's thread only. process(), apply() and
// receive() are noexcept and never block, allocate or log. Every frame ends in exactly one of
// BurstOut's lists; every drop is counted under one DropReason.
//
// Return traffic: a full-NAT connection picks a source port whose reply the NIC delivers to this
// worker (snat.hpp), so both directions stay here. A DNAT connection's replies may reach another
// worker: the two entries are kept in step by ConnectionSync (conn_sync.hpp), unless the
// connection has no reply entry (below). ICMP errors carry
// no ports in their outer header, and a NIC spreads IP fragments by their addresses alone: one
// about a connection another worker holds is handed to that worker (BurstOut::handoff), which
// takes it through process_handed_off().
//
// Several nodes (ECMP): a DNAT connection may be forwarded by one node and its replies reach
// another, the backends' gateway, which holds no entry for it. A reply with no entry whose
// source is a backend of exactly one DNAT frontend (the control thread keeps each worker's map
// of them: Update::Kind::dnat_return) is translated back to that frontend and routed to the
// client (stateless_reply()); the same serves connections whose entries a restart or an expiry
// lost. A backend serving several DNAT frontends (NodePorts aside) cannot be told apart: its
// replies without an entry are dropped (reply_ambiguous), unless it served one of them first:
// the control thread keeps that one's answer (control/publisher.hpp).
//
// One entry per DNAT connection: where its replies can be translated so (the map names its
// frontend and a route leads to its client: returns_without_state()), a DNAT connection keeps
// its forward entry alone (kFlowOneEntry), as a direct-return one does, and its replies and the
// ICMP errors about them are translated from the map and routed to the client. Half the table
// and half the set-up per connection; the replies leave by the route to the client rather than
// by the hop the client's frames came from, and the connection is tracked one way.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "dataplane/conn_sync.hpp"
#include "dataplane/drop_reason.hpp"
#include "dataplane/flow_table.hpp"
#include "dataplane/fragments.hpp"
#include "dataplane/frontend_registry.hpp"
#include "dataplane/last_hops.hpp"
#include "dataplane/neighbor_map.hpp"
#include "dataplane/node.hpp"
#include "dataplane/packet.hpp"
#include "dataplane/parse.hpp"
#include "dataplane/route_table.hpp"
#include "dataplane/service.hpp"
#include "dataplane/messages.hpp"
#include "dataplane/slow_path.hpp"
#include "dataplane/snat.hpp"
#include "dataplane/steering.hpp"
#include "dataplane/syn_cookie.hpp"
#include "dataplane/traffic.hpp"

namespace magline::dp {

// Pings to Magline's addresses and VIPs are answered by the slow path, at most this many per
// window per worker (1000 a second); the rest are dropped as echo_rate_limited.
inline constexpr uint64_t kEchoWindowMs = 10;
inline constexpr uint32_t kEchoPerWindow = 10;
inline constexpr uint32_t kSplitPerWindow = 100;  // 10,000 packets a second per worker

struct ForwarderConfig {
  uint16_t worker = 0;
  uint16_t workers = 1;
  size_t flow_capacity = 1 << 20;
  FlowTimeouts timeouts;
  uint64_t flow_seed = 0;
  uint16_t snat_port_lo = 1024;
  uint16_t snat_port_hi = 65535;
  size_t max_frontends = FrontendRegistry::kCapacity;
  size_t max_neighbors = 4096;
  size_t max_last_hops = 4096;
  size_t max_fragments = 4096;  // datagrams whose later fragments can be matched (fragments.hpp)
  size_t max_dnat_returns = 65536;  // DNAT backends known for replies without an entry
  // Full-NAT's SYN proxy (syn_proxy.hpp): the SYN cookies' key, the same on every worker, and
  // the handshakes a frontend may have begun and not completed in a second on this worker
  // before it engages for `syn_proxy: auto` services.
  std::array<uint64_t, 2> cookie_key{};
  uint32_t syn_proxy_threshold = 1000;
  // The exception path (Node::for_kernel()): frames a second this worker may hand the kernel
  // interfaces, in bursts of up to a tenth of a second's worth; the rest are dropped as
  // kernel_rate_limited, so that a flood to the node's addresses cannot crowd the slow-path ring
  // or the kernel.
  uint32_t kernel_rate = 10'000;
  // DNAT: a connection whose replies the backends' map and a route can take back keeps its
  // forward entry alone (returns_without_state()); false: every one records its reply entry,
  // and its replies go back through the hop its client's frames came from.
  bool dnat_one_entry = true;
};

struct ForwarderCounters {
  uint64_t rx_packets = 0;
  uint64_t rx_bytes = 0;
  uint64_t tx_packets = 0;
  uint64_t tx_bytes = 0;
  uint64_t to_slow_path = 0;
  uint64_t to_kernel = 0;          // of those, frames for the node itself (the exception path)
  uint64_t new_connections = 0;
  uint64_t stateless = 0;          // forwarded without a flow entry (table full)
  uint64_t syns_without_state = 0;  // SYNs sent by Maglev alone (the ACK opens): direct
                                    // return, and DNAT under a flood (dnat_syn_guard())
  uint64_t too_big = 0;            // encapsulation: ICMP "fragmentation needed"/"too big" sent
  uint64_t fragments = 0;          // IP fragments of TCP, UDP, SCTP taken through their flow
  uint64_t fragments_held = 0;     // later fragments held until their first one came
  uint64_t syn_cookies_sent = 0;   // SYN-ACKs the SYN proxy answered SYNs with
  uint64_t syn_cookies_valid = 0;  // ACKs returning a cookie: connections the proxy opened
  uint64_t syn_proxy_completed = 0;  // of those, handshakes the backend completed
  uint64_t syn_proxy_held = 0;     // client segments held until the backend answered
  uint64_t rejected = 0;           // answered with a TCP RST or ICMP unreachable
  uint64_t reset_removed_backend = 0;
  uint64_t rescheduled = 0;        // UDP/SCTP flows moved off a removed backend
  uint64_t replies = 0;
  uint64_t stateless_replies = 0;  // DNAT replies translated without an entry (stateless_reply())
  uint64_t one_entry_connections = 0;  // DNAT connections opened without a reply entry
  uint64_t icmp_errors = 0;        // ICMP errors passed on to the host whose packet they quote
  uint64_t peer_messages_sent = 0;
  uint64_t peer_messages_lost = 0;
  uint64_t peer_messages_received = 0;
  uint64_t handoffs_sent = 0;      // frames handed to the worker holding their connection
  uint64_t handoffs_received = 0;  // frames another worker handed here (not in rx_*)
  uint64_t updates_applied = 0;
  uint64_t dnat_returns_refused = 0;  // DNAT backends not recorded: max_dnat_returns reached
  std::array<uint64_t, kDropReasonCount> drops{};
};

// A frame for another worker's process_handed_off(); Packet::port is still its ingress port.
struct Handoff {
  Packet pkt;
  uint16_t worker = 0;
};

// Where each frame of a burst ended up. Packet::port is the egress port of `tx`.
// A burst's frames give at most one verdict each, except a SYN-ACK completing a proxied
// handshake, which also releases the client's segment held for it, and a first fragment, which
// releases the later fragments of its datagram that came before it: room for two each.
inline constexpr uint16_t kMaxBurstOut = 2 * kMaxBurst;
struct BurstOut {
  std::array<Packet, kMaxBurstOut> tx;
  uint16_t n_tx = 0;
  std::array<Packet, kMaxBurstOut> drop;
  uint16_t n_drop = 0;
  std::array<SlowPacket, kMaxBurstOut> slow;
  uint16_t n_slow = 0;
  std::array<Handoff, kMaxBurstOut> handoff;
  uint16_t n_handoff = 0;
};

class Forwarder {
 public:
  // `traffic`: this worker's counter rows (frontends, backends), which outlive every service
  // state; written by this forwarder only.
  Forwarder(const ForwarderConfig& config, const Node& node, const FrontendRegistry& frontends,
            const Steering& steering, PeerLink& peers, TrafficRows& traffic);
  ~Forwarder();

  // Handles up to kMaxBurst frames received together; `out` is cleared first.
  void process(Packet* pkts, uint16_t n, uint64_t now_ms, BurstOut& out) noexcept {
    run(pkts, n, now_ms, out, false);
  }
  // The same for frames another worker handed over (its BurstOut::handoff): counted as
  // handoffs_received, not received, and never handed on again (no frame goes round in circles
  // when a worker's idea of the owner is wrong).
  void process_handed_off(Packet* pkts, uint16_t n, uint64_t now_ms, BurstOut& out) noexcept {
    run(pkts, n, now_ms, out, true);
  }

  // Control-thread changes and messages from other workers, between bursts.
  void apply(const Update& u) noexcept;
  // The node's routes or addresses changed (the node is otherwise fixed while workers run; the
  // packet tests add routes to theirs): compiles the packet path's route table again. Between
  // bursts; allocates.
  void routes_changed() { routes_ = RouteTable(node_); }
  void receive(const PeerMessage& m, uint64_t now_ms) noexcept { sync_.receive(m, now_ms); }

  // The frames the forwarder holds (SYN proxy, fragments before their first), at most `max`, for
  // the I/O layer to free when the worker stops; returns how many (0: none left).
  size_t take_held(Packet* out, size_t max) noexcept;

  // Reclaims expired flow entries (idle polls): at most kExpireChunk buckets a call, and within
  // a budget per millisecond that sweeps the whole table every kExpirySweepMs. Each bucket is a
  // cache miss: a worker between frames of a light load polls idle thousands of times a
  // millisecond, and a sweep on each poll took a sixth of its CPU (docs/performance.md, the
  // twenty-seventh session).
  static constexpr size_t kExpireChunk = 64;
  static constexpr uint64_t kExpirySweepMs = 2000;
  void expire(uint64_t now_ms) noexcept {
    if (now_ms != expire_ms_) {
      expire_ms_ = now_ms;
      expire_left_ = expire_per_ms_;
    }
    if (expire_left_ == 0) return;
    const size_t n = std::min(expire_left_, kExpireChunk);
    flows_.expire(now_ms, n);
    expire_left_ -= n;
  }

  const ForwarderCounters& counters() const noexcept { return counters_; }
  const FlowTable& flows() const noexcept { return flows_; }

 private:
  struct Work;  // per-frame scratch of a burst
  void run(Packet* pkts, uint16_t n, uint64_t now_ms, BurstOut& out, bool handed_off) noexcept;
  void run_frames(Packet* pkts, uint16_t n, uint64_t now_ms, BurstOut& out) noexcept;
  void run_released(uint64_t now_ms, BurstOut& out) noexcept;
  bool classify(Packet& pkt, Work& w, BurstOut& out) noexcept;
  // The paths a frame of an established connection never takes are out of line (noinline;
  // open() with its own stages flattened into it): inlined into the flattened burst, their
  // values crowd the hit path's registers, which then spill (docs/performance.md, the
  // twentieth session: 885 -> 781 instructions per hit).
  [[gnu::noinline]] bool classify_other(Packet& pkt, Work& w, BurstOut& out) noexcept;
  [[gnu::noinline]] bool fragment(Packet& pkt, Parsed& p, BurstOut& out) noexcept;
  void forward(Packet& pkt, Work& w, FlowEntry* e, FlowTable::Slot slot, uint64_t now_ms,
               BurstOut& out) noexcept;
  void emit_forward(Packet& pkt, const Work& w, const ForwardFlow& f, uint16_t idx,
                    BurstOut& out) noexcept;
  [[gnu::noinline, gnu::flatten]] FlowEntry* open(Packet& pkt, Work& w, uint64_t now_ms,
                                                   BurstOut& out) noexcept;
  uint16_t pick_backend(const Work& w, uint64_t now_ms) noexcept;
  void aim_pick(Work& w) noexcept;
  void prefetch_reply(Work& w) noexcept;
  void reply(Packet& pkt, Work& w, FlowEntry* e, FlowTable::Slot slot, uint64_t now_ms,
             BurstOut& out) noexcept;
  void stateless_reply(Packet& pkt, const Work& w, BurstOut& out) noexcept;
  [[gnu::noinline]] void icmp_error(Packet& pkt, Work& w, BurstOut& out) noexcept;
  void icmp_error_to_backend(Packet& pkt, const Work& w, uint16_t frontend_id,
                             const ForwardFlow& f, BurstOut& out) noexcept;
  void icmp_error_to_client(Packet& pkt, const Work& w, const ReplyFlow& r,
                            const std::optional<NextHop>& route, BurstOut& out) noexcept;
  void icmp_error_to_client_routed(Packet& pkt, const Work& w, const FlowKey& k,
                                   BurstOut& out) noexcept;
  const uint16_t* dnat_frontend_of_reply(const FlowKey& reply) const noexcept;
  struct ClientRoute {
    DropReason drop;  // none, or why the reply cannot go
    NextHop hop;
  };
  ClientRoute route_to_client(uint16_t frontend, const FlowKey& reply) const noexcept;
  void send_to(Packet& pkt, const NextHop& hop, BurstOut& out) noexcept;
  bool slow_share(uint64_t& window, uint32_t& left, uint32_t per_window) noexcept;
  void kernel_or_drop(Packet& pkt, const Parsed& p, DropReason r, BurstOut& out) noexcept;
  bool kernel_share() noexcept;
  void transmit(Packet& pkt, uint16_t port, const MacAddr& dst, BurstOut& out) noexcept;
  void to_slow_path(Packet& pkt, SlowReason why, const NextHop& hop, BurstOut& out) noexcept;
  void drop(Packet& pkt, DropReason r, BurstOut& out) noexcept;
  [[gnu::noinline]] void reject(Packet& pkt, const Work& w, BurstOut& out) noexcept;
  void deliver(Packet& pkt, const Work& w, uint16_t idx, const NextHop& hop, uint16_t len,
               BurstOut& out) noexcept;
  void count_traffic(const Work& w, BackendRow& row, uint16_t len) noexcept;
  void erase_forward(FlowEntry* e) noexcept;
  // The SYN proxy (forwarder_proxy.cpp).
  enum class Gate : uint8_t { open, proxy_open, done };
  Gate syn_proxy_gate(Packet& pkt, Work& w, int& mss_index, uint64_t now_ms,
                      BurstOut& out) noexcept;
  bool syn_proxy_engaged(const ServiceState& s, uint32_t slot, uint64_t now_ms) noexcept;
  bool syn_proxy_answers(Work& w, uint64_t now_ms) noexcept;
  bool dnat_syn_without_state(Work& w, uint64_t now_ms) noexcept;
  void dnat_handshake_completed(const Work& w, uint64_t now_ms) noexcept;
  bool returns_without_state(const Work& w, uint16_t idx) noexcept;
  bool returns_alone(const ServiceState& s, uint16_t idx, uint16_t frontend,
                     uint8_t proto) noexcept;
  bool hop_known(const IpAddr& ip) noexcept;
  void returns_changed() noexcept;
  bool returns_cookie(const Packet& pkt, const Work& w, const ForwardFlow& f) noexcept;
  void syn_guard_count(const ServiceState& s, uint32_t slot, int32_t delta) noexcept;
  bool proxy_begin(Packet& pkt, Work& w, FlowEntry* e, const FlowKey& reply_key,
                   uint64_t reply_hash, uint8_t mss_index, uint16_t idx, uint64_t now_ms,
                   BurstOut& out) noexcept;
  [[gnu::noinline]] void proxy_forward(Packet& pkt, Work& w, FlowEntry* e, FlowState state,
                                       FlowState next, uint16_t idx, uint64_t now_ms,
                                       BurstOut& out) noexcept;
  void proxy_pending(Packet& pkt, Work& w, const ForwardFlow& f, FlowEntry* rec, uint16_t idx,
                     BurstOut& out) noexcept;
  bool proxy_reply(Packet& pkt, Work& w, FlowEntry* e, FlowState next, uint64_t now_ms,
                   BurstOut& out) noexcept;
  void release_held(const ProxyFlow& f, uint16_t slot, uint64_t record_hash, const FlowKey& fk,
                    uint16_t frontend, uint64_t now_ms, BurstOut& out) noexcept;
  bool backend_syn_to(const Work& w, const ForwardFlow& f, uint16_t idx,
                      FlowKey& to) const noexcept;
  // What encapsulate_for() did: the frame is ready to send; it went to the slow path to be
  // split; or it was dealt with otherwise (answered, dropped).
  enum class Encapsulated : uint8_t { send, split, done };
  Encapsulated encapsulate_for(Packet& pkt, const Parsed& p, const IpAddr& backend,
                               const NextHop& hop, ForwardMode mode, uint32_t flow_bits,
                               BurstOut& out) noexcept;
  void too_big(Packet& pkt, const Parsed& p, uint16_t mtu, BurstOut& out) noexcept;
  // Flow bits for an outer header's entropy fields (encap.hpp), from a flow table hash.
  static uint32_t entropy(uint64_t hash) noexcept { return uint32_t(hash ^ hash >> 32); }
  bool for_us_at_l2(const Packet& pkt) const noexcept;

  ForwarderConfig config_;
  const Node& node_;
  const FrontendRegistry& registry_;
  const Steering& steering_;
  PeerLink& peers_;
  TrafficRows& traffic_;
  FlowTable flows_;
  FrontendMap frontends_;
  // Frontend id -> service: what a forward entry's tag (flow_key.hpp) names. Kept in step with
  // frontends_ by apply().
  std::unique_ptr<FrontendHit[]> by_id_;
  NeighborMap neighbors_;
  PathMtuMap path_mtus_;  // tunnelled backends' path MTUs, learned by the control thread
  DnatReturnMap dnat_returns_;  // each DNAT backend's frontend (stateless_reply())
  RouteTable routes_;  // node_'s routes and addresses: DNAT's set-up, replies without an entry
  LastHops last_hops_;
  FragmentTable fragments_;  // the ports of datagrams whose first fragment came here
  FragmentHold held_fragments_;  // later fragments that came before their first one
  // Held fragments whose first one has come: forwarded at the end of the burst (or of the next
  // one, when this one's verdict lists have no room).
  std::array<Packet, FragmentHold::kSlots> retry_{};
  uint16_t n_retry_ = 0;
  // Each port's source address for outer IPv4 and IPv6 headers (IPIP, GUE) without a source
  // prefix: Node::source_address(), looked up once.
  std::vector<std::array<std::optional<IpAddr>, 2>> encap_sources_;
  // The ports' MAC addresses, and how many: read on every frame (a NodePort's index is a
  // multiply, and a vector's size of them a division).
  std::vector<MacAddr> port_macs_;
  std::vector<uint64_t> port_mac_words_;  // each port's MAC as mac_word() reads a frame's
  size_t n_ports_ = 0;
  ForwarderCounters counters_;
  SynCookies cookies_;
  // Client segments held until the backend answers a proxied handshake: a ring, the oldest
  // displaced (dropped) when it is full. Each slot remembers the hash of its ProxyFlow's key.
  static constexpr uint16_t kHeldSlots = 256;
  std::array<Packet, kHeldSlots> held_{};
  std::array<uint64_t, kHeldSlots> held_owner_{};
  uint16_t held_next_ = 0;
  SnatAllocator snat_;    // full-NAT's source addresses and ports
  ConnectionSync sync_;   // a connection's two entries kept in step, here or on another worker
  std::unique_ptr<Work[]> work_;  // kMaxBurst frames' scratch
  uint64_t now_ms_ = 0;           // the current burst's clock
  bool handed_off_ = false;       // the current burst came from another worker
  uint32_t neighbor_generation_ = 1;  // bumped by every neighbour change (NeighborHint)
  // returns_without_state()'s two lookups, remembered (a DNAT connection's set-up asks both):
  // per backend slot (direct-mapped), whether the backends' map names the frontend for it,
  // valid while returns_generation_ stands (bumped by every DNAT-return and service update);
  // and the last next hop towards a client found among the neighbours (neighbor_generation_).
  struct ReturnMemo {
    uint32_t slot = 0;
    uint32_t generation = 0;  // 0: empty
    uint16_t frontend = 0;
    uint8_t proto = 0;
    bool alone = false;
  };
  static constexpr size_t kReturnMemo = 1024;
  std::array<ReturnMemo, kReturnMemo> return_memo_{};
  uint32_t returns_generation_ = 1;
  IpAddr known_hop_;
  uint32_t known_hop_generation_ = 0;  // 0: none
  // Echo requests handed to the slow path: at most kEchoPerWindow per kEchoWindowMs, so that a
  // ping flood cannot crowd ARP and neighbour discovery out of the slow-path ring.
  uint64_t echo_window_ = 0;
  uint32_t echo_left_ = 0;
  // The same for packets to split (encapsulation.fragment): kSplitPerWindow per kEchoWindowMs;
  // and for routers' ICMP errors about tunnels (path MTUs): kEchoPerWindow.
  uint64_t split_window_ = 0;
  uint32_t split_left_ = 0;
  uint64_t pmtu_window_ = 0;
  uint32_t pmtu_left_ = 0;
  // Frames to the kernel interfaces: a token bucket (kernel_share()), in thousandths of a
  // frame, full at the start.
  uint64_t kernel_tokens_ = 0;
  uint64_t kernel_burst_ = 0;
  uint64_t kernel_refilled_ms_ = 0;
  // expire()'s budget: buckets a millisecond, and what is left of this millisecond's.
  size_t expire_per_ms_ = 0;
  uint64_t expire_ms_ = ~uint64_t(0);
  size_t expire_left_ = 0;
};

}  // namespace magline::dp
