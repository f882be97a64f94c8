#include "dataplane/flow_state.hpp"

#include "dataplane/wire.hpp"

namespace magline::dp {

const char* flow_state_name(FlowState s) noexcept {
  switch (s) {
    case FlowState::free: return "free";
    case FlowState::tcp_syn: return "tcp_syn";
    case FlowState::tcp_established: return "tcp_established";
    case FlowState::tcp_closing: return "tcp_closing";
    case FlowState::tcp_peer_closing: return "tcp_peer_closing";
    case FlowState::tcp_closed: return "tcp_closed";
    case FlowState::tcp_midstream: return "tcp_midstream";
    case FlowState::udp_unreplied: return "udp_unreplied";
    case FlowState::udp: return "udp";
    case FlowState::other: return "other";
    case FlowState::affinity: return "affinity";
    case FlowState::other_unreplied: return "other_unreplied";
    case FlowState::tcp_syn_answered: return "tcp_syn_answered";
    case FlowState::tcp_one_way: return "tcp_one_way";
  }
  return "unknown";
}

// A simplified TCP tracker in the spirit of Katran and the Maglev paper: the load balancer may
// see only the client's half of the conversation (DSR, DNAT replies bypassing it), so it keys on
// the client's flags alone and never waits for a SYN-ACK.
FlowState next_flow_state(FlowState from, uint8_t proto, uint8_t tcp_flags) noexcept {
  if (proto == kProtoUdp) return from == FlowState::udp ? FlowState::udp : FlowState::udp_unreplied;
  if (proto != kProtoTcp) {
    return from == FlowState::other ? FlowState::other : FlowState::other_unreplied;
  }
  if (tcp_flags & kTcpRst) return FlowState::tcp_closed;
  if (tcp_flags & kTcpFin) {
    return from == FlowState::tcp_peer_closing || from == FlowState::tcp_closed
               ? FlowState::tcp_closed
               : FlowState::tcp_closing;
  }
  // The states a connection's frames spend its life in are decided before the switch, whose
  // table jump waited on the state's load: established stays so, whatever else its frame
  // carries; one picked up mid-stream (Magline restarted, or ECMP moved it from another node)
  // stays so but for a new connection's SYN.
  if (from == FlowState::tcp_established) return from;
  const bool bare_syn = (tcp_flags & (kTcpSyn | kTcpAck)) == kTcpSyn;
  if (from == FlowState::tcp_midstream && !bare_syn) return from;
  switch (from) {
    case FlowState::free:
      return bare_syn ? FlowState::tcp_syn : FlowState::tcp_midstream;
    case FlowState::tcp_syn:
      return (tcp_flags & kTcpAck) ? FlowState::tcp_established : FlowState::tcp_syn;
    case FlowState::tcp_syn_answered:  // a reply entry: the backend's frame after its SYN-ACK
      return (tcp_flags & (kTcpSyn | kTcpAck)) == kTcpAck ? FlowState::tcp_established : from;
    case FlowState::tcp_one_way:  // as established: a SYN on it is a retransmission
      return from;
    case FlowState::tcp_closing:
    case FlowState::tcp_peer_closing:
    case FlowState::tcp_closed:
    case FlowState::tcp_midstream:
      // A bare SYN on a closed tuple opens a new connection (TIME_WAIT reuse).
      return bare_syn ? FlowState::tcp_syn : from;
    default:
      return FlowState::tcp_established;
  }
}

FlowState next_reply_state(FlowState from, uint8_t proto, uint8_t tcp_flags) noexcept {
  const bool half_open = from == FlowState::tcp_syn || from == FlowState::tcp_syn_answered;
  if (proto == kProtoTcp && half_open && (tcp_flags & (kTcpSyn | kTcpFin | kTcpRst)) == kTcpSyn) {
    return FlowState::tcp_syn_answered;  // the SYN-ACK (or a retransmission of it)
  }
  return confirmed(next_flow_state(from, proto, tcp_flags));
}

FlowState next_forward_state(FlowState from, uint8_t proto, uint8_t tcp_flags,
                             bool one_way) noexcept {
  const FlowState next = next_flow_state(from, proto, tcp_flags);
  if (!one_way) return next;
  if (next == FlowState::tcp_established) return FlowState::tcp_one_way;
  return next == FlowState::tcp_closing ? FlowState::tcp_closed : next;
}

FlowState peer_state(FlowState other, FlowState now) noexcept {
  switch (now) {
    case FlowState::tcp_closed:
      return FlowState::tcp_closed;
    case FlowState::tcp_closing:
      return other == FlowState::tcp_closing || other == FlowState::tcp_closed
                 ? FlowState::tcp_closed
                 : FlowState::tcp_peer_closing;
    case FlowState::tcp_established:
      return other == FlowState::tcp_syn || other == FlowState::tcp_syn_answered
                 ? FlowState::tcp_established
                 : other;
    default:
      return other;
  }
}

uint32_t idle_timeout_ms(const FlowTimeouts& t, FlowState s) noexcept {
  switch (s) {
    case FlowState::tcp_syn:
    case FlowState::tcp_syn_answered: return t.tcp_syn_ms;
    case FlowState::tcp_established:
    case FlowState::tcp_midstream:
    case FlowState::tcp_one_way: return t.tcp_established_ms;
    case FlowState::tcp_closing:
    case FlowState::tcp_peer_closing:
    case FlowState::tcp_closed: return t.tcp_closing_ms;
    case FlowState::udp:
    case FlowState::udp_unreplied: return t.udp_ms;
    case FlowState::other:
    case FlowState::other_unreplied:
    case FlowState::affinity: return t.other_ms;  // records carry their own timeout
    case FlowState::free: break;
  }
  return 0;
}

}  // namespace magline::dp
