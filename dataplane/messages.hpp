// The messages that travel on the rings between threads (docs/architecture.md, "Threads"):
//
//   control thread -> worker   Update        services installed or removed, neighbours learnt
//   worker -> worker           PeerMessage   a connection's other entry, affinity, handed frames
//   worker -> control thread   SlowPacket    ARP, NDP, pings, frames waiting for a neighbour
//   control thread -> worker 0 Packet        the slow path's frames (ARP answers, released)
//
// Every message is trivially copyable: rings copy them bytewise into their own slots.
#pragma once

#include <cstdint>
#include <type_traits>

#include "dataplane/addr.hpp"
#include "dataplane/flow_table.hpp"
#include "dataplane/neighbor_map.hpp"
#include "dataplane/node.hpp"
#include "dataplane/packet.hpp"

namespace magline::dp {

class ServiceState;

struct NeighborUpdate {
  IpAddr ip;
  MacAddr mac;
  uint16_t port = 0;
  bool valid = true;  // false: forget it
};

// A tunnelled backend's path MTU (outer headers included), learned from a router's ICMP error
// (encap.hpp, tunnel_path_mtu()); 0: forget it (it expired).
struct PathMtuUpdate {
  IpAddr backend;
  uint16_t mtu = 0;
};

// The DNAT frontend a backend serves, for its replies that reach a node with no entry for their
// connection (Forwarder::stateless_reply()): `frontend` is a FrontendRegistry id, or
// kAmbiguousFrontend when the backend serves several; !valid: it serves none any more.
struct DnatReturnUpdate {
  Endpoint backend;
  uint16_t frontend = 0;
  bool valid = true;
};

// A change from the control thread, applied between bursts. A service update removes the
// frontends of `old_state` (those still pointing to it) and installs those of `new_state`.
// The states are immutable and stay alive until every worker is past using them
// (control/publication.hpp).
struct Update {
  enum class Kind : uint8_t { service, neighbor, path_mtu, dnat_return };
  Kind kind = Kind::service;
  const ServiceState* old_state = nullptr;  // service: replaced or removed (may be null)
  const ServiceState* new_state = nullptr;  // service: added or replacement (may be null)
  NeighborUpdate neighbor;
  PathMtuUpdate path_mtu;
  DnatReturnUpdate dnat_return;
};

// A message from one worker to another. `frame` carries a handed-off frame (the forwarder's
// BurstOut::handoff) in `pkt`: the worker loop passes those to process_handed_off(), never to
// receive(). `follow` says that the other direction of the connection whose entry has `key`
// moved to `state`.
struct PeerMessage {
  enum class Kind : uint8_t { reply_flow, affinity, frame, follow };
  Kind kind = Kind::reply_flow;
  FlowState state = FlowState::free;
  uint16_t last_hop_port = 0;  // reply_flow: where the connection came from
  MacAddr last_hop_mac;
  uint32_t timeout_ms = 0;     // affinity: the service's affinity timeout
  FlowKey key;
  FlowValue value;
  Packet pkt;  // frame
};

// Sends peer messages for the forwarder (the worker loop implements it over its rings).
class PeerLink {
 public:
  virtual ~PeerLink() = default;
  // Queues `m` for `worker`; false when its queue is full (the message is lost).
  virtual bool send(uint16_t worker, const PeerMessage& m) noexcept = 0;
};

// Why a worker handed a packet to the control thread.
enum class SlowReason : uint8_t {
  arp,             // an ARP packet
  ndp,             // ICMPv6 router/neighbour solicitation or advertisement, or redirect
  needs_neighbor,  // ready to go except for its Ethernet destination: `next_hop` is unresolved
  echo,            // an ICMP or ICMPv6 echo request
  path_mtu,        // a router's ICMP error about a tunnelled packet: a backend's path MTU
  split,           // encapsulated, too big for the path, inner IPv4 without DF: to be split
                   // (encap.hpp, plan_inner_split()), then sent to `next_hop`
  kernel,          // for the node itself, no service's: to the port's kernel interface
};

struct SlowPacket {
  Packet pkt;
  SlowReason reason = SlowReason::arp;
  NextHop next_hop;  // needs_neighbor only
};

static_assert(std::is_trivially_copyable_v<Update> && std::is_trivially_copyable_v<PeerMessage> &&
              std::is_trivially_copyable_v<SlowPacket> && std::is_trivially_copyable_v<Packet>);

}  // namespace magline::dp
