// A connection's two entries kept in step, on one worker or two: the reply entry recorded where
// the NIC will deliver the replies (here, or on another worker by a peer message), each
// direction's changes of state carried to the other direction's entry (here, or by a `follow`
// message), session-affinity records shared with every worker, and the messages other workers
// send.
//
// A DNAT connection's replies come from the backend to the client, a tuple the NIC may deliver
// to another worker than the client's frames: that worker gets the reply entry through a peer
// message sent before the first packet leaves, and drains its peer messages before each receive
// (dataplane/worker.hpp), so the entry is in place before any reply can arrive. Whichever worker
// then sees a direction change the connection's state (the client's ACK or FIN, the backend's
// first answer, FIN or RST) tells the one holding the other entry, as one worker holding both
// would update both. A message about an entry that is gone is ignored: its next frame opens it
// afresh.
//
// Contract: per worker, its thread only; noexcept, no allocation.
#pragma once

#include <cstdint>
#include <optional>

#include "dataplane/flow_table.hpp"
#include "dataplane/frontend_registry.hpp"
#include "dataplane/last_hops.hpp"
#include "dataplane/messages.hpp"
#include "dataplane/service.hpp"
#include "dataplane/snat.hpp"
#include "dataplane/steering.hpp"

namespace magline::dp {

struct ForwarderCounters;

// A flow entry's flags hold its service's ForwardMode shifted by one (kFlowModeMask).
inline ForwardMode mode_of(uint8_t flags) noexcept {
  return ForwardMode((flags & kFlowModeMask) >> 1);
}
inline uint8_t flags_of(ForwardMode m) noexcept { return uint8_t(uint8_t(m) << 1); }
// Whether a forward entry's connection has a reply entry: not when the replies bypass Magline
// (direct return), nor when they are translated without one (kFlowOneEntry). Such a connection
// is seen one way only, as its client's frames show it.
inline bool one_way(uint8_t flags) noexcept {
  return direct_return(mode_of(flags)) || (flags & kFlowOneEntry) != 0;
}

class ConnectionSync {
 public:
  // Everything given outlives it; `counters` gets the peer message counts.
  ConnectionSync(uint16_t worker, uint16_t workers, const Steering& steering,
                 const SnatAllocator& snat, FlowTable& flows, LastHops& last_hops,
                 PeerLink& peers, ForwarderCounters& counters);

  // Records a new connection's reply entry on the worker the NIC delivers the replies to
  // (`owner`): here, or on another worker through a peer message. Here, it never takes or moves
  // the connection's forward entry (`fwd`, when there is one): both keys may share a bucket.
  // False when the table here has no room for it.
  bool record_reply(const FlowKey& reply_key, uint64_t reply_hash, const FlowValue& value,
                    FlowState state, uint16_t owner, uint16_t last_hop_port,
                    const MacAddr& last_hop_mac, uint64_t now_ms,
                    const FlowTable::InsertHint& hint, const FlowEntry* fwd) noexcept;

  // A reply (key `seen`, backend -> Magline) moved its reply entry to `reply_state`; the
  // forward entry follows: confirmed by the first answer, closing after the backend's FIN or
  // RST.
  void reply_seen(const FlowKey& seen, const ReplyFlow& r, const FrontendRef& f,
                  FlowState reply_state, uint64_t now_ms) noexcept;
  // The client's frame (key `seen`) moved its forward entry to `fwd_state`, through `hop`; the
  // reply entry follows: established after the handshake's ACK, closing after a FIN or RST.
  void forward_seen(const FlowKey& seen, const ForwardFlow& f, const std::optional<NextHop>& hop,
                    FlowState fwd_state, uint64_t now_ms) noexcept;

  // A session-affinity record, to every other worker.
  void broadcast_affinity(const FlowKey& key, const FlowValue& value,
                          uint32_t timeout_ms) noexcept;
  // A message from another worker (not a handed-off frame: those are the worker loop's).
  void receive(const PeerMessage& m, uint64_t now_ms) noexcept;

 private:
  void follow(const FlowKey& k, uint16_t owner, FlowState peer_now, uint64_t now_ms) noexcept;
  void follow_here(FlowEntry* e, FlowState peer_now, uint64_t now_ms) noexcept;

  uint16_t worker_;
  uint16_t workers_;
  const Steering& steering_;
  const SnatAllocator& snat_;
  FlowTable& flows_;
  LastHops& last_hops_;
  PeerLink& peers_;
  ForwarderCounters& counters_;
};

}  // namespace magline::dp
