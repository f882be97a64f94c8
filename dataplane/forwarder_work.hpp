// The forwarder's per-frame scratch and flag helpers, shared by its translation units
// (forwarder.cpp: the packet path; forwarder_open.cpp: a new connection's set-up;
// forwarder_icmp.cpp: ICMP errors; forwarder_encap.cpp: IPIP
// and GUE; forwarder_proxy.cpp: the SYN proxy and DNAT's SYN flood guard; forwarder_return.cpp:
// DNAT replies without an entry). Not for other users.
#pragma once

#include <cstdint>

#include "dataplane/forwarder.hpp"

namespace magline::dp {

// A TCP SYN that opens: no ACK, no RST.
inline bool bare_syn(const Parsed& p) noexcept {
  return p.key.proto == kProtoTcp && (p.tcp_flags & (kTcpSyn | kTcpAck | kTcpRst)) == kTcpSyn;
}

// A direct-return SYN (L2 DSR, IPIP, GUE) opens no flow entry (a SYN flood writes nothing):
// Maglev gives the handshake's ACK the same backend, and the ACK opens the entry. Only a bare
// SYN (no ACK, no RST), and not under session affinity, whose record the backend choice itself
// writes.
inline bool stateless_syn(const ServiceState& s, const Parsed& p) noexcept {
  return direct_return(s.spec().mode) && bare_syn(p) && !s.spec().affinity.client_ip;
}

// A TCP segment with ACK, without SYN or RST: a handshake's last, or any later one.
inline bool ack_only(const Parsed& p) noexcept {
  return (p.tcp_flags & (kTcpSyn | kTcpAck | kTcpRst)) == kTcpAck;
}

// The key of a proxied connection's ProxyFlow: its forward key under kProxyProto.
inline FlowKey record_key(const FlowKey& forward) noexcept {
  FlowKey k = forward;
  k.tag = 0;
  k.proto = kProxyProto;
  return k;
}

struct Forwarder::Work {
  Parsed p;
  FrontendHit fe;
  uint64_t hash = 0;
  uint64_t pick_hash = 0;  // a new connection's Maglev hash, when taken ahead (aim_pick)
  int32_t pick = -1;  // its Maglev choice, when made ahead (prefetch_reply)
  uint64_t reply_hash = 0;  // ...and the hash of its likely reply key (0: none predicted)
  uint16_t reply_port = 0;  // full-NAT: the source port in that key
  int8_t one_entry = -1;  // DNAT: 1 when that choice's replies need no entry, 0 when they do,
                          // -1: not decided ahead
  FlowTable::InsertHint insert_hint;  // where its entries will go (FlowTable::prefetch_insert)
  FlowTable::InsertHint reply_hint;
  ForwardFlow opened;  // what open() wrote into the forward entry (it went to memory)
  bool cookie = false;  // a SYN the SYN proxy will answer: nothing to prepare, no lookup
  bool no_state = false;  // a DNAT SYN sent on without state (dnat_syn_without_state())

  // Nothing prepared for a new connection: open() chooses and looks up everything itself. Set
  // for every lookup miss before the burst prepares its new connections; a hit whose entry is
  // then gone (a new connection on a closed tuple, a backend removed, an entry an earlier insert
  // of the burst evicted) sets it before open(): the scratch holds an earlier burst's plans.
  void prepare_nothing() noexcept {
    pick = -1;
    one_entry = -1;
    reply_hash = 0;
    insert_hint.rank = reply_hint.rank = 0xff;
  }
};

}  // namespace magline::dp
