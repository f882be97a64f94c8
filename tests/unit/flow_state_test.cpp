// The connection state machine: transitions by the client's flags, confirmation by a reply,
// and how a connection's other entry follows.
#include "dataplane/flow_state.hpp"

#include <gtest/gtest.h>

#include "dataplane/wire.hpp"

namespace magline::dp {
namespace {

TEST(FlowState, TransitionsFollowTheClientsFlags) {
  struct Case {
    FlowState from;
    uint8_t proto;
    uint8_t flags;
    FlowState to;
  };
  const Case cases[] = {
      {FlowState::free, kProtoTcp, kTcpSyn, FlowState::tcp_syn},
      {FlowState::free, kProtoTcp, kTcpAck, FlowState::tcp_midstream},  // joined mid-stream
      {FlowState::free, kProtoTcp, kTcpSyn | kTcpAck, FlowState::tcp_midstream},
      {FlowState::tcp_midstream, kProtoTcp, kTcpAck, FlowState::tcp_midstream},  // unconfirmed
      {FlowState::tcp_midstream, kProtoTcp, kTcpAck | kTcpPsh, FlowState::tcp_midstream},
      {FlowState::tcp_midstream, kProtoTcp, kTcpFin | kTcpAck, FlowState::tcp_closing},
      {FlowState::tcp_midstream, kProtoTcp, kTcpSyn, FlowState::tcp_syn},
      {FlowState::free, kProtoTcp, kTcpRst, FlowState::tcp_closed},
      {FlowState::tcp_syn, kProtoTcp, kTcpSyn, FlowState::tcp_syn},  // retransmitted SYN
      {FlowState::tcp_syn, kProtoTcp, kTcpAck, FlowState::tcp_established},
      {FlowState::tcp_syn, kProtoTcp, kTcpFin | kTcpAck, FlowState::tcp_closing},
      {FlowState::tcp_established, kProtoTcp, kTcpAck | kTcpPsh, FlowState::tcp_established},
      {FlowState::tcp_established, kProtoTcp, kTcpSyn, FlowState::tcp_established},
      {FlowState::tcp_established, kProtoTcp, kTcpFin | kTcpAck, FlowState::tcp_closing},
      {FlowState::tcp_established, kProtoTcp, kTcpRst, FlowState::tcp_closed},
      {FlowState::tcp_closing, kProtoTcp, kTcpAck, FlowState::tcp_closing},
      {FlowState::tcp_closing, kProtoTcp, kTcpFin | kTcpAck, FlowState::tcp_closing},  // again
      {FlowState::tcp_closing, kProtoTcp, kTcpRst, FlowState::tcp_closed},
      {FlowState::tcp_closing, kProtoTcp, kTcpSyn, FlowState::tcp_syn},  // tuple reused
      {FlowState::tcp_peer_closing, kProtoTcp, kTcpAck | kTcpPsh, FlowState::tcp_peer_closing},
      {FlowState::tcp_peer_closing, kProtoTcp, kTcpFin | kTcpAck, FlowState::tcp_closed},
      {FlowState::tcp_peer_closing, kProtoTcp, kTcpSyn, FlowState::tcp_syn},
      {FlowState::tcp_closed, kProtoTcp, kTcpAck, FlowState::tcp_closed},  // the last ACK
      {FlowState::tcp_closed, kProtoTcp, kTcpFin | kTcpAck, FlowState::tcp_closed},
      {FlowState::tcp_closed, kProtoTcp, kTcpSyn, FlowState::tcp_syn},
      {FlowState::tcp_one_way, kProtoTcp, kTcpAck | kTcpPsh, FlowState::tcp_one_way},
      {FlowState::tcp_one_way, kProtoTcp, kTcpSyn, FlowState::tcp_one_way},
      {FlowState::tcp_one_way, kProtoTcp, kTcpFin | kTcpAck, FlowState::tcp_closing},
      {FlowState::free, kProtoUdp, 0, FlowState::udp_unreplied},
      {FlowState::udp_unreplied, kProtoUdp, 0, FlowState::udp_unreplied},  // the client's own
      {FlowState::udp, kProtoUdp, 0, FlowState::udp},
      {FlowState::free, kProtoSctp, 0, FlowState::other_unreplied},
      {FlowState::other_unreplied, kProtoSctp, 0, FlowState::other_unreplied},  // the client's
      {FlowState::other, kProtoSctp, 0, FlowState::other},
      {FlowState::free, kProtoIcmp, 0, FlowState::other_unreplied},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(next_flow_state(c.from, c.proto, c.flags), c.to)
        << flow_state_name(c.from) << " flags " << int(c.flags);
  }
}

// The TCP rule of next_flow_state() as one switch over the state, before the states a
// connection lives in were decided ahead of it (for speed): every state, protocol and flag
// byte must still give what this gives.
FlowState one_switch(FlowState from, uint8_t proto, uint8_t flags) {
  if (proto == kProtoUdp) return from == FlowState::udp ? FlowState::udp : FlowState::udp_unreplied;
  if (proto != kProtoTcp) {
    return from == FlowState::other ? FlowState::other : FlowState::other_unreplied;
  }
  if (flags & kTcpRst) return FlowState::tcp_closed;
  if (flags & kTcpFin) {
    return from == FlowState::tcp_peer_closing || from == FlowState::tcp_closed
               ? FlowState::tcp_closed
               : FlowState::tcp_closing;
  }
  const bool bare_syn = (flags & (kTcpSyn | kTcpAck)) == kTcpSyn;
  switch (from) {
    case FlowState::free: return bare_syn ? FlowState::tcp_syn : FlowState::tcp_midstream;
    case FlowState::tcp_syn: return (flags & kTcpAck) ? FlowState::tcp_established : from;
    case FlowState::tcp_syn_answered:
      return (flags & (kTcpSyn | kTcpAck)) == kTcpAck ? FlowState::tcp_established : from;
    case FlowState::tcp_one_way: return from;
    case FlowState::tcp_closing:
    case FlowState::tcp_peer_closing:
    case FlowState::tcp_closed:
    case FlowState::tcp_midstream: return bare_syn ? FlowState::tcp_syn : from;
    default: return FlowState::tcp_established;
  }
}

TEST(FlowState, EveryStateProtocolAndFlagsAsOneSwitch) {
  for (size_t from = 0; from < kFlowStates; ++from) {
    for (const uint8_t proto : {kProtoTcp, kProtoUdp, kProtoSctp, kProtoIcmp}) {
      for (unsigned flags = 0; flags < 256; ++flags) {
        ASSERT_EQ(next_flow_state(FlowState(from), proto, uint8_t(flags)),
                  one_switch(FlowState(from), proto, uint8_t(flags)))
            << flow_state_name(FlowState(from)) << " proto " << int(proto) << " flags " << flags;
      }
    }
  }
}

// The reply direction confirms a connection joined mid-stream, unless it resets or closes it.
// A connection whose replies bypass Magline (direct return, DNAT of one entry) never sees the
// backend's side: established is one-way, and the client's FIN is the close.
TEST(FlowState, AOneWayConnectionsEntryIsEstablishedOneWayAndClosedByTheClientsFin) {
  EXPECT_EQ(next_forward_state(FlowState::tcp_syn, kProtoTcp, kTcpAck, true),
            FlowState::tcp_one_way);
  EXPECT_EQ(next_forward_state(FlowState::tcp_syn, kProtoTcp, kTcpAck, false),
            FlowState::tcp_established);
  EXPECT_EQ(next_forward_state(FlowState::tcp_one_way, kProtoTcp, kTcpSyn, true),
            FlowState::tcp_one_way);  // a made-up client's SYN looks like a retransmission
  EXPECT_EQ(next_forward_state(FlowState::tcp_one_way, kProtoTcp, kTcpFin | kTcpAck, true),
            FlowState::tcp_closed);
  EXPECT_EQ(next_forward_state(FlowState::tcp_established, kProtoTcp, kTcpFin | kTcpAck, false),
            FlowState::tcp_closing);
  // Elsewhere both follow next_flow_state().
  for (size_t from = 0; from < kFlowStates; ++from) {
    for (const uint8_t proto : {kProtoTcp, kProtoUdp, kProtoSctp}) {
      for (unsigned flags = 0; flags < 256; ++flags) {
        const FlowState next = next_flow_state(FlowState(from), proto, uint8_t(flags));
        EXPECT_EQ(next_forward_state(FlowState(from), proto, uint8_t(flags), false), next);
        if (next != FlowState::tcp_established && next != FlowState::tcp_closing) {
          EXPECT_EQ(next_forward_state(FlowState(from), proto, uint8_t(flags), true), next);
        }
      }
    }
  }
}

// The hit's first test: whatever it calls steady, the state machine leaves as it is; and it
// calls steady the frames of the states connections live in (an ACK with data, any flags but
// SYN, FIN and RST).
TEST(FlowState, ASteadyFrameLeavesItsConnectionAsItIs) {
  size_t steady = 0;
  for (size_t from = 0; from < kFlowStates; ++from) {
    for (unsigned flags = 0; flags < 256; ++flags) {
      for (const bool one_way : {false, true}) {
        const auto s = FlowState(from);
        if (!steady_forward(s, uint8_t(flags), one_way)) continue;
        ++steady;
        EXPECT_EQ(next_forward_state(s, kProtoTcp, uint8_t(flags), one_way), s)
            << from << " " << flags << " " << one_way;
      }
    }
  }
  EXPECT_EQ(steady, 32u * 5);  // 32 flag sets; midstream and one-way either way, established not
                               // one-way
  EXPECT_TRUE(steady_forward(FlowState::tcp_established, kTcpAck | kTcpPsh, false));
  EXPECT_FALSE(steady_forward(FlowState::tcp_established, kTcpAck, true));  // becomes one-way
  EXPECT_FALSE(steady_forward(FlowState::tcp_syn, kTcpAck, false));  // the handshake completes
  EXPECT_FALSE(steady_forward(FlowState::tcp_midstream, kTcpSyn, false));
}

TEST(FlowState, ARepliedFrameConfirmsAMidStreamConnection) {
  EXPECT_EQ(next_reply_state(FlowState::tcp_midstream, kProtoTcp, kTcpAck),
            FlowState::tcp_established);
  EXPECT_EQ(next_reply_state(FlowState::tcp_midstream, kProtoTcp, kTcpAck | kTcpPsh),
            FlowState::tcp_established);
  EXPECT_EQ(next_reply_state(FlowState::tcp_midstream, kProtoTcp, kTcpRst),
            FlowState::tcp_closed);
  EXPECT_EQ(next_reply_state(FlowState::tcp_midstream, kProtoTcp, kTcpFin | kTcpAck),
            FlowState::tcp_closing);
  // The SYN-ACK: still half-open (a backend answers a flood's SYNs too); its next frame, or
  // the client's ACK (peer_state), establishes it.
  EXPECT_EQ(next_reply_state(FlowState::tcp_syn, kProtoTcp, kTcpSyn | kTcpAck),
            FlowState::tcp_syn_answered);
  EXPECT_EQ(next_reply_state(FlowState::tcp_syn_answered, kProtoTcp, kTcpSyn | kTcpAck),
            FlowState::tcp_syn_answered);  // retransmitted
  EXPECT_EQ(next_reply_state(FlowState::tcp_syn_answered, kProtoTcp, kTcpAck | kTcpPsh),
            FlowState::tcp_established);
  EXPECT_EQ(next_reply_state(FlowState::tcp_syn_answered, kProtoTcp, kTcpRst),
            FlowState::tcp_closed);
  EXPECT_EQ(next_reply_state(FlowState::free, kProtoTcp, kTcpAck), FlowState::tcp_established);
  EXPECT_EQ(next_reply_state(FlowState::udp, kProtoUdp, 0), FlowState::udp);
  EXPECT_EQ(next_reply_state(FlowState::udp_unreplied, kProtoUdp, 0), FlowState::udp);
  EXPECT_EQ(next_reply_state(FlowState::other_unreplied, kProtoSctp, 0), FlowState::other);
  EXPECT_EQ(next_reply_state(FlowState::free, kProtoSctp, 0), FlowState::other);
}

// A connection's other entry, when one moves: established after the handshake if half-open;
// peer-closing after the first FIN, closed after the second or an RST.
TEST(FlowState, TheOtherDirectionsEntryFollowsTheHandshakeAndTheClose) {
  struct Case {
    FlowState other, now, to;
  };
  const Case cases[] = {
      {FlowState::tcp_established, FlowState::tcp_closing, FlowState::tcp_peer_closing},
      {FlowState::tcp_syn, FlowState::tcp_closing, FlowState::tcp_peer_closing},
      {FlowState::tcp_midstream, FlowState::tcp_closing, FlowState::tcp_peer_closing},
      {FlowState::tcp_peer_closing, FlowState::tcp_closing, FlowState::tcp_peer_closing},
      {FlowState::tcp_closing, FlowState::tcp_closing, FlowState::tcp_closed},  // both FINs
      {FlowState::tcp_closed, FlowState::tcp_closing, FlowState::tcp_closed},
      {FlowState::tcp_established, FlowState::tcp_closed, FlowState::tcp_closed},  // an RST
      {FlowState::tcp_closing, FlowState::tcp_closed, FlowState::tcp_closed},
      {FlowState::tcp_established, FlowState::tcp_peer_closing, FlowState::tcp_established},
      {FlowState::tcp_syn, FlowState::tcp_established, FlowState::tcp_established},
      {FlowState::tcp_syn_answered, FlowState::tcp_established, FlowState::tcp_established},
      {FlowState::tcp_peer_closing, FlowState::tcp_established, FlowState::tcp_peer_closing},
      {FlowState::tcp_midstream, FlowState::tcp_established, FlowState::tcp_midstream},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(peer_state(c.other, c.now), c.to)
        << flow_state_name(c.other) << " after " << flow_state_name(c.now);
  }
}

}  // namespace
}  // namespace magline::dp
