#include "dataplane/conn_sync.hpp"

#include "dataplane/forwarder.hpp"

namespace magline::dp {

ConnectionSync::ConnectionSync(uint16_t worker, uint16_t workers, const Steering& steering,
                               const SnatAllocator& snat, FlowTable& flows, LastHops& last_hops,
                               PeerLink& peers, ForwarderCounters& counters)
    : worker_(worker),
      workers_(workers),
      steering_(steering),
      snat_(snat),
      flows_(flows),
      last_hops_(last_hops),
      peers_(peers),
      counters_(counters) {}

// Records the reply entry on the worker the NIC delivers the replies to (`owner`): here, or on
// another worker through a peer message. Here, it never takes or moves the connection's forward
// entry (`fwd`, when there is one): both keys may share a bucket.
bool ConnectionSync::record_reply(const FlowKey& reply_key, uint64_t reply_hash,
                             const FlowValue& value, FlowState state, uint16_t owner,
                             uint16_t last_hop_port, const MacAddr& last_hop_mac, uint64_t now_ms,
                             const FlowTable::InsertHint& hint, const FlowEntry* fwd) noexcept {
  if (owner == worker_) {
    return flows_.insert_whole(reply_key, reply_key.tag, value, reply_hash, state, now_ms, hint,
                               fwd) != nullptr;
  }
  PeerMessage m;
  m.kind = PeerMessage::Kind::reply_flow;
  m.state = state;
  m.key = reply_key;
  m.value = value;
  m.last_hop_port = last_hop_port;
  m.last_hop_mac = last_hop_mac;
  if (peers_.send(owner, m)) {
    ++counters_.peer_messages_sent;
  } else {
    ++counters_.peer_messages_lost;  // the connection's replies will not be translated
  }
  return true;
}

// A reply that changes what the connection is, applied to its original-direction entry (here,
// or, for DNAT, on the worker the client's frames reach):
// - the first reply of a flow nobody had answered confirms it, so that it is evicted for new
//   flows only after every unconfirmed one (a TCP connection joined mid-stream: never;
//   re-opened, a DNAT or DSR flow gets the same backend anyway);
// - a FIN or RST from the backend makes it closing (peer-closing, or closed after the client's
//   own FIN), so that a connection the client never closes does not hold a live entry for the
//   established timeout, and one closed both ways is the first to go in a full table.
void ConnectionSync::reply_seen(const FlowKey& seen, const ReplyFlow& r, const FrontendRef& f,
                                FlowState reply_state, uint64_t now_ms) noexcept {
  FlowKey k;
  k.family = seen.family;
  k.proto = seen.proto;
  if (mode_of(r.flags) == ForwardMode::full_nat) {
    k.src = r.client_addr;
    k.sport = r.client_port;
  } else {
    k.src = seen.dst;
    k.sport = seen.dport;
  }
  k.dst = f.addr.bytes;
  k.dport = f.port;
  // Full-NAT chose its source port so that both directions come here; DNAT's client frames
  // come where the NIC hashes them, on the port the connection came in by.
  uint16_t owner = worker_;
  if (mode_of(r.flags) == ForwardMode::dnat && workers_ > 1 &&
      r.last_hop != LastHops::kNone) {
    owner = steering_.worker_of(k, last_hops_.at(r.last_hop).port);
  }
  follow(k, owner, reply_state, now_ms);
}

// The client's frame moved the forward entry to `fwd_state`; the reply entry (here, or for DNAT
// on the worker the backend's frames reach) follows (peer_state):
// - after the client's ACK of the handshake it becomes established. The backend's SYN-ACK left
//   it half-open: a backend answers a flood's SYNs too, so the SYN-ACK alone must not make an
//   entry that is never evicted;
// - after a FIN or RST it becomes peer-closing or closed (its timeout then runs from the last
//   frame either way), so that a backend that never sends its own FIN does not keep a live
//   entry for the established timeout.
void ConnectionSync::forward_seen(const FlowKey& seen, const ForwardFlow& f,
                                  const std::optional<NextHop>& hop, FlowState fwd_state,
                                  uint64_t now_ms) noexcept {
  const ForwardMode mode = mode_of(f.flags);
  if (one_way(f.flags)) return;  // no reply entry
  if (!hop) return;
  FlowKey k;
  k.family = seen.family;
  k.proto = seen.proto;
  k.src = f.backend_addr;
  k.sport = f.backend_port;
  uint16_t owner = worker_;
  if (mode == ForwardMode::full_nat) {
    const IfAddr* snat = snat_.address(hop->port, k.family, f.snat_addr);
    if (snat == nullptr) return;
    k.dst = snat->addr.bytes;
    k.dport = f.snat_port;
  } else {
    k.dst = seen.src;
    k.dport = seen.sport;
    if (workers_ > 1) owner = steering_.worker_of(k, hop->port);  // as open() chose
  }
  follow(k, owner, fwd_state, now_ms);
}

// The other direction of the connection whose entry has key `k` moved to `peer_now`: updates the
// entry here, or tells `owner`, the worker that holds it.
void ConnectionSync::follow(const FlowKey& k, uint16_t owner, FlowState peer_now,
                            uint64_t now_ms) noexcept {
  if (owner == worker_) {
    FlowEntry* e = flows_.find(k, flows_.hash(k), now_ms);
    if (e != nullptr) follow_here(e, peer_now, now_ms);
    return;
  }
  PeerMessage m;
  m.kind = PeerMessage::Kind::follow;
  m.state = peer_now;
  m.key = k;
  if (peers_.send(owner, m)) {
    ++counters_.peer_messages_sent;
  } else {
    ++counters_.peer_messages_lost;  // the entry keeps its state until its own traffic moves it
  }
}

// Moves entry `e` as its connection's other entry moved to `peer_now`: a reply entry follows the
// handshake and the close (follow_reply()); a forward entry follows the close, and is confirmed
// by the first answer otherwise (update_forward()).
void ConnectionSync::follow_here(FlowEntry* e, FlowState peer_now, uint64_t now_ms) noexcept {
  const FlowState s = flows_.state(e);
  FlowState t = s;
  if ((e->value.reply.flags & kFlowReply) || tcp_closing_state(peer_now)) {
    t = peer_state(s, peer_now);
  } else if (unconfirmed(s)) {
    t = confirmed(s);
  }
  if (t != s) flows_.refresh(e, t, now_ms);
}

void ConnectionSync::receive(const PeerMessage& m, uint64_t now_ms) noexcept {
  if (m.kind == PeerMessage::Kind::frame) return;  // the worker loop's: process_handed_off()
  ++counters_.peer_messages_received;
  if (m.kind == PeerMessage::Kind::follow) {
    // An entry gone meanwhile (expired, evicted) stays gone: its next frame opens it afresh.
    FlowEntry* e = flows_.find(m.key, flows_.hash(m.key), now_ms);
    if (e != nullptr) follow_here(e, m.state, now_ms);
    return;
  }
  FlowValue value = m.value;
  uint32_t timeout = flows_.timeout_ms(m.state);
  if (m.kind == PeerMessage::Kind::reply_flow) {
    value.reply.last_hop = last_hops_.intern(m.last_hop_port, m.last_hop_mac);
  } else {
    timeout = m.timeout_ms;
  }
  const uint64_t h = flows_.hash(m.key);
  FlowEntry* e = flows_.find(m.key, h, now_ms);
  if (e == nullptr) e = flows_.insert(m.key, h, m.state, now_ms, timeout);
  else flows_.refresh(e, m.state, now_ms, timeout);
  if (e != nullptr) e->value = value;
}

void ConnectionSync::broadcast_affinity(const FlowKey& key, const FlowValue& value,
                                        uint32_t timeout_ms) noexcept {
  PeerMessage m;
  m.kind = PeerMessage::Kind::affinity;
  m.state = FlowState::affinity;
  m.timeout_ms = timeout_ms;
  m.key = key;
  m.value = value;
  for (uint16_t other = 0; other < workers_; ++other) {
    if (other == worker_) continue;
    if (peers_.send(other, m)) {
      ++counters_.peer_messages_sent;
    } else {
      ++counters_.peer_messages_lost;
    }
  }
}

}  // namespace magline::dp
