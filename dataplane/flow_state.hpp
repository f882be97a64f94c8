// The connection state machine that the flow table's entries carry: the state a connection's
// packets move it to, in each direction, and how long it may stay idle in each state.
//
// A connection has up to two entries, one per direction (forward: client -> frontend; reply:
// backend -> Magline), and each sees only its own direction's frames; peer_state() carries a
// move of one over to the other.
//
// Entries nobody has answered are kept apart: a TCP entry opened by a frame that is not a bare
// SYN (after a restart, a failover between nodes, or an ACK flood) is `tcp_midstream`, and a UDP
// entry is `udp_unreplied` until a reply. A reply confirms the reply entry and, where the worker
// holds it, the original-direction entry (`tcp_established`, `udp`). What the table evicts when
// it is full, ranked by these states, is table policy: flow_table.hpp.
//
// Pure functions, noexcept, no allocation; safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>

#include "dataplane/wire.hpp"

namespace magline::dp {

enum class FlowState : uint8_t {
  free = 0,
  tcp_syn,          // half-open: SYN seen, no ACK yet
  tcp_established,  // an ACK seen after the SYN
  tcp_closing,      // half-closed: a FIN seen this way, none the other way yet
  udp,
  other,            // SCTP and the rest, answered
  tcp_midstream,    // opened by a frame other than a bare SYN; not confirmed by a reply
  udp_unreplied,    // UDP, no reply seen yet
  tcp_peer_closing, // half-closed: a FIN seen the other way (its entry said so), none this way
  tcp_closed,       // FINs both ways, or an RST: only last ACKs and retransmissions remain
  affinity,         // a session-affinity record (a client's backend), not a connection
  other_unreplied,  // SCTP and the rest, no reply seen yet
  tcp_syn_answered, // half-open, answered: the backend's SYN-ACK seen, not yet the client's ACK
                    // (a backend answers a flood's SYNs too, so this confirms nothing)
  tcp_one_way,      // established as far as the client's side shows: the backend's bypasses
                    // Magline (L2 DSR), so a made-up client's SYN and ACK look the same
};
inline constexpr size_t kFlowStates = size_t(FlowState::tcp_one_way) + 1;  // the last, above

// A TCP connection shutting down (half-closed: data may still flow the other way, and the last
// FIN needs the entry) or shut.
inline bool tcp_closing_state(FlowState s) noexcept {
  return s == FlowState::tcp_closing || s == FlowState::tcp_peer_closing ||
         s == FlowState::tcp_closed;
}

// Entries nothing has confirmed yet: the client's frames alone opened them, and they may be a
// flood's. They can be evicted; a reply confirms them.
inline bool unconfirmed(FlowState s) noexcept {
  return s == FlowState::tcp_midstream || s == FlowState::udp_unreplied ||
         s == FlowState::other_unreplied;
}
// What an unconfirmed state becomes once the other side has answered.
inline FlowState confirmed(FlowState s) noexcept {
  switch (s) {
    case FlowState::tcp_midstream: return FlowState::tcp_established;
    case FlowState::udp_unreplied: return FlowState::udp;
    case FlowState::other_unreplied: return FlowState::other;
    default: return s;
  }
}

const char* flow_state_name(FlowState s) noexcept;

// Idle timeouts in milliseconds, each at most kMaxFlowTimeoutMs.
struct FlowTimeouts {
  uint32_t tcp_syn_ms = 30'000;
  uint32_t tcp_established_ms = 7'440'000;  // beyond Linux's 2 h keepalive time plus a probe
  uint32_t tcp_closing_ms = 60'000;
  uint32_t udp_ms = 120'000;
  uint32_t other_ms = 120'000;

  friend bool operator==(const FlowTimeouts&, const FlowTimeouts&) = default;
};
inline constexpr uint32_t kMaxFlowTimeoutMs = 24u * 3600 * 1000;  // far below 2^31

// The idle timeout of an entry in state `s` (0 for FlowState::free). Unconfirmed states time
// out like the confirmed ones they may become; an affinity record has other_ms unless its
// inserter gives it its own.
uint32_t idle_timeout_ms(const FlowTimeouts& t, FlowState s) noexcept;

// The state a connection moves to when a packet with `tcp_flags` arrives (0 for non-TCP).
// `from` is FlowState::free for the first packet of a flow.
FlowState next_flow_state(FlowState from, uint8_t proto, uint8_t tcp_flags) noexcept;

// The same for the reply direction, where an answer confirms the flow: a TCP connection joined
// mid-stream (unless the answer is a FIN or RST), a UDP flow. A SYN-ACK to a half-open entry
// makes it tcp_syn_answered, still half-open: the client's ACK (forward direction) or the
// backend's next frame establishes it.
FlowState next_reply_state(FlowState from, uint8_t proto, uint8_t tcp_flags) noexcept;

// The state of a connection's original-direction entry after a frame. Under direct return (L2
// DSR, IPIP, GUE) the replies bypass Magline, and a DNAT connection of one entry has its
// replies translated without one (one_way()), so its one entry never sees the backend's side:
// an established connection is one-way (a made-up client's SYN and ACK look the same, and the
// backend's RST to them is never seen), evicted when the table is full, idle ones first, and
// the client's FIN counts as the close. Such a connection that loses its entry gets Maglev's
// choice again, the same backend while the set is unchanged; a full-NAT one would lose its
// source port.
FlowState next_forward_state(FlowState from, uint8_t proto, uint8_t tcp_flags,
                             bool one_way) noexcept;

// Whether a TCP segment with `tcp_flags` leaves a forward entry in `from` as it is, by the cheap
// test a hit takes first: no SYN, FIN or RST, to a connection in one of the states they spend
// their lives in (established, mid-stream, one-way). When true, next_forward_state(from,
// kProtoTcp, tcp_flags, one_way) is `from`; when false it may still be.
inline bool steady_forward(FlowState from, uint8_t tcp_flags, bool one_way) noexcept {
  if (tcp_flags & (kTcpSyn | kTcpFin | kTcpRst)) return false;
  return from == FlowState::tcp_midstream || from == FlowState::tcp_one_way ||
         (from == FlowState::tcp_established && !one_way);  // else it becomes one-way
}

// A connection's two entries (forward and reply) each see one direction. When one moves to
// `now`, the other (in state `other`) becomes: after a FIN (`now` closing), closed when `other`
// had seen its own FIN already, else peer-closing; after an RST or the second FIN (`now`
// closed), closed; after the handshake (`now` established), established if it was half-open
// (tcp_syn, tcp_syn_answered). Otherwise it stays as it is.
FlowState peer_state(FlowState other, FlowState now) noexcept;

}  // namespace magline::dp
