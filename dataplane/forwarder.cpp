#include "dataplane/forwarder.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <span>

#include "dataplane/forwarder_work.hpp"
#include "dataplane/reject.hpp"
#include "dataplane/rewrite.hpp"

namespace magline::dp {

namespace {

bool is_multicast(const FlowKey& k) noexcept {
  if (k.family == Family::v6) return k.dst[0] == 0xff;  // ff00::/8
  uint32_t dst;
  std::memcpy(&dst, k.dst.data(), 4);
  return (k.dst[0] & 0xf0) == 0xe0 || dst == 0xffffffff;  // 224.0.0.0/4, limited broadcast
}

// The 6 bytes of a MAC address at `p` in one word (the 2 bytes read after them dropped): `p`
// must have 8 readable bytes, as a frame's destination does (its source follows).
uint64_t mac_word(const uint8_t* p) noexcept {
  uint64_t w;
  std::memcpy(&w, p, 8);
  return std::endian::native == std::endian::little ? w & 0xffff'ffff'ffffu : w >> 16;
}

}  // namespace

Forwarder::Forwarder(const ForwarderConfig& config, const Node& node,
                     const FrontendRegistry& frontends, const Steering& steering, PeerLink& peers,
                     TrafficRows& traffic)
    : config_(config),
      node_(node),
      registry_(frontends),
      steering_(steering),
      peers_(peers),
      traffic_(traffic),
      flows_(config.flow_capacity, config.timeouts, config.flow_seed),
      frontends_(config.max_frontends),
      by_id_(new FrontendHit[FrontendRegistry::kCapacity]),
      neighbors_(config.max_neighbors),
      path_mtus_(config.max_neighbors),
      dnat_returns_(config.max_dnat_returns),
      routes_(node),
      last_hops_(config.max_last_hops),
      fragments_(config.max_fragments),
      cookies_(config.cookie_key[0], config.cookie_key[1]),
      snat_(node, steering, config.worker, config.snat_port_lo, config.snat_port_hi, flows_,
            frontends_),
      sync_(config.worker, config.workers, steering, snat_, flows_, last_hops_, peers, counters_),
      work_(new Work[kMaxBurst]),
      kernel_tokens_(uint64_t(config.kernel_rate) * 100),  // a tenth of a second's worth
      kernel_burst_(kernel_tokens_) {
  for (const NodePort& port : node.ports) {
    port_macs_.push_back(port.mac);
    uint8_t padded[8] = {};
    std::memcpy(padded, port.mac.b.data(), 6);
    port_mac_words_.push_back(mac_word(padded));
    std::array<std::optional<IpAddr>, 2>& sources = encap_sources_.emplace_back();
    for (const Family f : {Family::v4, Family::v6}) {
      if (const IfAddr* a = node.source_address(port.id, f)) sources[f == Family::v6] = a->addr;
    }
  }
  n_ports_ = port_macs_.size();
  expire_per_ms_ = std::max(kExpireChunk, (flows_.bucket_count() + kExpirySweepMs - 1) /
                                              kExpirySweepMs);
}

Forwarder::~Forwarder() = default;

// A frame for a group address (multicast, broadcast) or for its port's own MAC.
bool Forwarder::for_us_at_l2(const Packet& pkt) const noexcept {
  if (pkt.data[0] & 1) return true;  // the group bit
  return pkt.port < n_ports_ && mac_word(pkt.data) == port_mac_words_[pkt.port];
}

// A burst: its frames, then the held fragments their first ones released (fragments.hpp).
void Forwarder::run(Packet* pkts, uint16_t n, uint64_t now_ms, BurstOut& out,
                    bool handed_off) noexcept {
  out.n_tx = out.n_drop = out.n_slow = out.n_handoff = 0;
  n = std::min(n, kMaxBurst);
  now_ms_ = now_ms;
  handed_off_ = handed_off;
  if (handed_off) {
    counters_.handoffs_received += n;
  } else {
    counters_.rx_packets += n;
    for (uint16_t i = 0; i < n; ++i) counters_.rx_bytes += pkts[i].len;
  }
  run_frames(pkts, n, now_ms, out);
  if (n_retry_ != 0) run_released(now_ms, out);
  // What was sent, counted once a burst: every frame sent is in out.tx (transmit(), reject(),
  // too_big()).
  counters_.tx_packets += out.n_tx;
  for (uint16_t i = 0; i < out.n_tx; ++i) counters_.tx_bytes += out.tx[i].len;
}

// Fragments released by their first one, each to one list, within the room every list has.
void Forwarder::run_released(uint64_t now_ms, BurstOut& out) noexcept {
  const uint16_t used = std::max({out.n_tx, out.n_drop, out.n_slow, out.n_handoff});
  const uint16_t k = std::min<uint16_t>(n_retry_, uint16_t(kMaxBurstOut - used));
  if (k == 0) return;
  Packet again[FragmentHold::kSlots];
  std::copy_n(retry_.begin(), k, again);
  std::copy(retry_.begin() + k, retry_.begin() + n_retry_, retry_.begin());
  n_retry_ = uint16_t(n_retry_ - k);
  handed_off_ = false;  // they came here from the port
  run_frames(again, k, now_ms, out);
}

// Flattened: everything a burst calls is inlined into it, but for the rare paths declared
// noinline (forwarder.hpp: a new connection's set-up, flattened on its own, ICMP errors,
// fragments, resets, proxied frames). Left to its heuristics, GCC's link-time inliner stopped
// inlining the stages (classify, the bulk lookup, open, the reply prefetch) once the worker
// loop around the forwarder grew: 9% more cycles per new connection in magline-dpbench
// (docs/performance.md, the eighth session).
[[gnu::flatten]] void Forwarder::run_frames(Packet* pkts, uint16_t n, uint64_t now_ms,
                                            BurstOut& out) noexcept {
  const FlowKey* keys[kMaxBurst];
  uint64_t hashes[kMaxBurst];
  FlowEntry* hits[kMaxBurst];
  FlowTable::Slot at[kMaxBurst];  // where each hit's state and deadline are
  uint16_t which[kMaxBurst];
  Work* work[kMaxBurst];  // work_[which[j]], its address taken once
  uint16_t ahead[kMaxBurst];  // frames decided before the flow lookup (cookie, no state)
  uint16_t m = 0;
  uint16_t c = 0;
  for (uint16_t i = 0; i < n; ++i) {
    Work& w = work_[i];
    if (!classify(pkts[i], w, out)) continue;
    // A bare SYN to a frontend whose SYN flood guard is engaged is answered with a cookie
    // (full-NAT) or sent on without state (DNAT) whatever the table holds (a flood's SYNs cost
    // no lookup): its frontend is looked up first.
    w.cookie = w.no_state = false;
    if (bare_syn(w.p) && w.p.has_l4) {
      w.fe = frontends_.find(w.p.key.dst, w.p.key.family, w.p.key.dport, w.p.key.proto);
      if (w.fe.service != nullptr) {
        w.cookie = syn_proxy_answers(w, now_ms);
        w.no_state = !w.cookie && dnat_syn_without_state(w, now_ms);
      }
      if (w.cookie || w.no_state) {
        ahead[c++] = i;
        continue;
      }
    }
    w.hash = flows_.hash_parsed(w.p.key);
    keys[m] = &w.p.key;
    hashes[m] = w.hash;
    work[m] = &w;
    which[m++] = i;
  }
  for (uint16_t j = 0; j < c; ++j) open(pkts[ahead[j]], work_[ahead[j]], now_ms, out);
  if (m == 0) return;
  flows_.find_bulk(keys, hashes, m, hits, at, now_ms);
  flows_.forget_inserted();
  const uint64_t looked_up = flows_.generation();
  // Which service each frame is for: a forward entry names its frontend, anything else looks
  // the destination up. New connections are set up in passes over the whole burst, so that
  // their misses overlap rather than stall one after the other: first the Maglev slots, then the
  // buckets of the forward and (predicted) reply entries, then the entries and evicted
  // neighbours the inserts will write, then the inserts themselves.
  uint16_t fresh = 0;
  for (uint16_t j = 0; j < m; ++j) {
    Work& w = *work[j];
    if (const FlowEntry* e = hits[j]) {
      if (e->value.fwd.flags & kFlowReply) {
        w.fe = FrontendHit{};
      } else {
        w.fe = by_id_[e->key.tag];
        if (w.fe.service == nullptr) {
          w.fe = frontends_.find(w.p.key.dst, w.p.key.family, w.p.key.dport, w.p.key.proto);
        }
      }
      continue;
    }
    w.prepare_nothing();
    if (!(bare_syn(w.p) && w.p.has_l4)) {  // a bare SYN's frontend was looked up above
      w.fe = frontends_.find(w.p.key.dst, w.p.key.family, w.p.key.dport, w.p.key.proto);
    }
    if (w.fe.service != nullptr) {
      aim_pick(w);
      ++fresh;
    }
  }
  if (fresh > 0) {
    for (uint16_t j = 0; j < m; ++j) {
      Work& w = *work[j];
      if (hits[j] == nullptr && w.fe.service != nullptr) prefetch_reply(w);
    }
    for (uint16_t j = 0; j < m; ++j) {
      Work& w = *work[j];
      if (hits[j] != nullptr || w.fe.service == nullptr) continue;
      if (stateless_syn(*w.fe.service, w.p)) continue;  // nothing to insert
      w.insert_hint = flows_.prefetch_insert(w.hash, now_ms);
      if (w.reply_hash != 0) w.reply_hint = flows_.prefetch_insert(w.reply_hash, now_ms);
    }
  }
  for (uint16_t j = 0; j < m; ++j) {
    Work& w = *work[j];
    Packet& pkt = pkts[which[j]];
    FlowEntry* e = hits[j];
    FlowTable::Slot slot = at[j];
    // A connection opened earlier in the burst may have evicted or moved this frame's entry.
    if (e != nullptr && flows_.generation() != looked_up && !flows_.holds(e, w.p.key, now_ms)) {
      e = flows_.find(w.p.key, w.hash, now_ms);
      if (e != nullptr) {
        slot = flows_.slot(e);
      } else {
        w.prepare_nothing();  // a new connection after all
      }
    }
    if (e != nullptr && (e->value.fwd.flags & kFlowReply)) {
      reply(pkt, w, e, slot, now_ms, out);  // a reply, even if its tuple also names a frontend
    } else if (w.fe.service != nullptr) {
      forward(pkt, w, e, slot, now_ms, out);
    } else {
      reply(pkt, w, e, slot, now_ms, out);
    }
  }
}

// Decides what a frame is. Returns true when it needs a flow lookup; otherwise it has gone to
// the slow path or been dropped.
bool Forwarder::classify(Packet& pkt, Work& w, BurstOut& out) noexcept {
  Parsed& p = w.p;
  if (const DropReason r = parse({pkt.data, pkt.len}, p); r != DropReason::none) {
    drop(pkt, r, out);
    return false;
  }
  // Nearly every frame: TCP, UDP or SCTP over IP (parse() leaves the protocol 0 in anything
  // that is not IP). The checks below are classify_other()'s for these protocols, in its order.
  const uint8_t proto = p.key.proto;
  if (proto != kProtoTcp && proto != kProtoUdp && proto != kProtoSctp) {
    return classify_other(pkt, w, out);
  }
  if (!for_us_at_l2(pkt)) {
    drop(pkt, DropReason::l2_not_for_us, out);
    return false;
  }
  if (is_multicast(p.key)) {
    drop(pkt, DropReason::ip_multicast, out);
    return false;
  }
  return !p.is_fragment || fragment(pkt, p, out);
}

// classify() for anything but TCP, UDP and SCTP: ARP, NDP, ICMP, other protocols, not IP.
// Returns false (such a frame never needs a flow lookup).
bool Forwarder::classify_other(Packet& pkt, Work& w, BurstOut& out) noexcept {
  Parsed& p = w.p;
  if (p.l3 == L3::arp) {
    to_slow_path(pkt, SlowReason::arp, {}, out);
    return false;
  }
  if (p.l3 == L3::none) {
    drop(pkt, DropReason::not_ip, out);
    return false;
  }
  if (p.key.proto == kProtoIcmpv6 && p.has_l4 && p.icmp_type >= 133 && p.icmp_type <= 137) {
    to_slow_path(pkt, SlowReason::ndp, {}, out);  // RFC 4861: router and neighbour discovery
    return false;
  }
  if (!for_us_at_l2(pkt)) {
    drop(pkt, DropReason::l2_not_for_us, out);
    return false;
  }
  if (is_multicast(p.key)) {
    drop(pkt, DropReason::ip_multicast, out);  // MLD reports, mDNS, ...: nothing for us
    return false;
  }
  const uint8_t proto = p.key.proto;
  if (p.is_fragment) {
    kernel_or_drop(pkt, p, DropReason::ip_fragment, out);  // fragments of TCP, UDP, SCTP only
    return false;
  }
  if (proto == kProtoIcmp || proto == kProtoIcmpv6) {
    if (p.icmp_error) {
      icmp_error(pkt, w, out);
    } else if (p.icmp_type == (proto == kProtoIcmp ? kIcmpEchoRequest : kIcmpv6EchoRequest)) {
      if (!slow_share(echo_window_, echo_left_, kEchoPerWindow)) {
        drop(pkt, DropReason::echo_rate_limited, out);
      } else {
        to_slow_path(pkt, SlowReason::echo, {}, out);  // answered there for our addresses, VIPs
      }
    } else {
      kernel_or_drop(pkt, p, DropReason::icmp_unsupported, out);  // echo replies, ...
    }
    return false;
  }
  kernel_or_drop(pkt, p, DropReason::no_service, out);
  return false;
}

// A fragment of a TCP, UDP or SCTP datagram follows its datagram's connection: the first one
// shows the ports (remembered here), the later ones get them from it (fragments.hpp). Like an
// ICMP error, a fragment may reach a worker other than the one holding its connection (a NIC
// spreads fragments by their addresses alone): it is handed to that worker, which remembers and
// looks up in its own table. Returns false when the frame has been dealt with.
bool Forwarder::fragment(Packet& pkt, Parsed& p, BurstOut& out) noexcept {
  if (p.first_fragment) {
    fragments_.remember(p, now_ms_);
    if (!held_fragments_.empty()) {
      n_retry_ = uint16_t(n_retry_ + held_fragments_.release(p, now_ms_, retry_.data() + n_retry_,
                                                            retry_.size() - n_retry_));
    }
  } else if (const std::optional<FragmentPorts> ports = fragments_.find(p, now_ms_)) {
    p.key.sport = ports->sport;
    p.key.dport = ports->dport;
  } else if (handed_off_) {
    drop(pkt, DropReason::fragment_unmatched, out);  // its worker had the ports: not any more
    return false;
  } else {
    Packet displaced;
    if (held_fragments_.hold(p, pkt, now_ms_, displaced)) {
      drop(displaced, DropReason::fragment_unmatched, out);
    }
    ++counters_.fragments_held;
    return false;
  }
  const uint16_t owner = steering_.worker_of(p.key, pkt.port);
  if (owner != config_.worker && !handed_off_) {
    ++counters_.handoffs_sent;
    out.handoff[out.n_handoff++] = {pkt, owner};
    return false;
  }
  ++counters_.fragments;
  return true;
}

void Forwarder::forward(Packet& pkt, Work& w, FlowEntry* e, FlowTable::Slot slot,
                        uint64_t now_ms, BurstOut& out) noexcept {
  const ServiceState& s = *w.fe.service;
  const Parsed& p = w.p;
  // A frame earlier in this burst may have opened the connection since the bulk lookup.
  if (e == nullptr && flows_.may_have_inserted(w.hash)) {
    e = flows_.find(p.key, w.hash, now_ms);
    if (e != nullptr) slot = flows_.slot(e);
  }

  int idx = -1;
  if (e != nullptr) {
    const FlowState state = slot.state();
    ForwardFlow& f = e->value.fwd;
    // Nearly every frame: a TCP segment that leaves its connection as it is, to a backend
    // still where it was. No handshake completes, nothing is synchronised; the entry moves on
    // in time only.
    if (p.key.proto == kProtoTcp &&
        steady_forward(state, p.tcp_flags,
                       state == FlowState::tcp_established && one_way(f.flags)) &&
        !(f.flags & kFlowSynProxy) &&
        s.backend_at(f.backend_hint, f.backend_addr, f.backend_port)) {
      flows_.refresh(slot, state, now_ms);
      emit_forward(pkt, w, f, f.backend_hint, out);
      return;
    }
    const FlowState next = next_forward_state(state, p.key.proto, p.tcp_flags, one_way(f.flags));
    if ((tcp_closing_state(state) && next == FlowState::tcp_syn) ||
        (state == FlowState::tcp_syn && returns_cookie(pkt, w, f))) {
      erase_forward(e);  // a new connection on a closed or superseded tuple: choose afresh
      e = nullptr;
      w.prepare_nothing();
    } else {
      idx = s.find_backend(f.backend_addr, f.backend_port, f.backend_hint);
      if (idx < 0) {
        // The backend was removed outright. A TCP peer that is gone cannot take the stream
        // over: reset the client now rather than let it time out. Other protocols move on.
        erase_forward(e);
        e = nullptr;
        w.prepare_nothing();
        if (p.key.proto == kProtoTcp) {
          ++counters_.reset_removed_backend;
          reject(pkt, w, out);
          return;
        }
        ++counters_.rescheduled;
      } else {
        // Stored only when it moved: a hit leaves its entry's line clean (at a million
        // connections every dirty line is one more write back to DRAM).
        if (f.backend_hint != idx) f.backend_hint = uint16_t(idx);
        if (f.flags & kFlowSynProxy) {
          proxy_forward(pkt, w, e, state, next, uint16_t(idx), now_ms, out);
          return;
        }
        flows_.refresh(slot, next, now_ms);
        if (next != state && (tcp_closing_state(next) || next == FlowState::tcp_established)) {
          sync_.forward_seen(p.key, f, s.next_hop(size_t(idx)), next, now_ms);
        }
        // A handshake completed: the client's ACK (with data or a FIN too) to a half-open entry.
        if ((state == FlowState::tcp_syn || state == FlowState::tcp_syn_answered) &&
            (p.tcp_flags & (kTcpAck | kTcpSyn | kTcpRst)) == kTcpAck) {
          syn_guard_count(s, w.fe.slot, -1);
        }
      }
    }
  }
  if (e == nullptr) {
    if (open(pkt, w, now_ms, out) == nullptr) return;  // dropped, rejected, or sent statelessly
    emit_forward(pkt, w, w.opened, w.opened.backend_hint, out);  // not read back from the entry
    return;
  }
  emit_forward(pkt, w, e->value.fwd, uint16_t(idx), out);
}

// Rewrites a frame of an established connection for its backend and sends it on.
void Forwarder::emit_forward(Packet& pkt, const Work& w, const ForwardFlow& f, uint16_t idx,
                             BurstOut& out) noexcept {
  const ServiceState& s = *w.fe.service;
  const std::optional<NextHop>& hop = s.next_hop(idx);
  if (!hop) {
    drop(pkt, DropReason::backend_unreachable, out);
    return;
  }
  const ForwardMode mode = mode_of(f.flags);
  const uint16_t len = pkt.len;  // what the client sent, before any outer header
  if (encapsulates(mode)) {
    const Encapsulated r =
        encapsulate_for(pkt, w.p, s.backend(idx).addr, *hop, mode, entropy(w.hash), out);
    if (r == Encapsulated::split) {  // its pieces leave from there
      count_traffic(w, traffic_.backend(s.backend_slot(idx)), len);
    }
    if (r != Encapsulated::send) return;
  } else if (mode != ForwardMode::dsr_l2) {
    const uint8_t* src = w.p.key.src.data();
    uint16_t sport = w.p.key.sport;
    if (mode == ForwardMode::full_nat) {
      const IfAddr* snat = snat_.address(hop->port, w.p.key.family, f.snat_addr);
      if (snat == nullptr) {
        drop(pkt, DropReason::no_snat_address, out);
        return;
      }
      src = snat->addr.bytes.data();
      sport = f.snat_port;
    }
    // Made whole once, from values in registers: a tuple made first and changed after kept a
    // port in a stack slot, and the compiler read both ports back as one word, which waited
    // for the 16-bit store to reach the cache (a tenth of the forwarder's samples on a Zen 3).
    const Tuple to{src, f.backend_addr.data(), sport, f.backend_port};
    if (const DropReason r = rewrite_tuple({pkt.data, pkt.len}, w.p, to); r != DropReason::none) {
      drop(pkt, r, out);
      return;
    }
  }
  deliver(pkt, w, idx, *hop, len, out);
}

// Sends a frame for backend `idx` of the frame's service to its next hop `hop`, counting `len`
// bytes of the client's (what it sent, before any outer header).
void Forwarder::deliver(Packet& pkt, const Work& w, uint16_t idx, const NextHop& hop,
                        uint16_t len, BurstOut& out) noexcept {
  // The backend's row found once, its hint read before the counters are: the compiler reads
  // again after each counter's (atomic) store whatever led to a row.
  BackendRow& row = traffic_.backend(w.fe.service->backend_slot(idx));
  const NeighborHint hint = row.hint;
  const uint32_t generation = neighbor_generation_;
  count_traffic(w, row, len);
  if (hint.generation == generation) {
    transmit(pkt, hint.port, hint.mac, out);
  } else if (const Neighbor* n = neighbors_.find(hop.ip)) {
    row.hint = {generation, n->port, n->mac};
    transmit(pkt, n->port, n->mac, out);
  } else {
    to_slow_path(pkt, SlowReason::needs_neighbor, hop, out);
  }
}

// Counts `len` bytes of the client's to the frame's frontend and to its backend's `row`.
void Forwarder::count_traffic(const Work& w, BackendRow& row, uint16_t len) noexcept {
  traffic_.frontend(w.fe.slot).add(len);
  row.traffic.add(len);
}

// Erases a connection's forward entry, and its SYN proxy record when it has one. (Its reply
// entry stays until it expires, unreachable: the source port is chosen afresh.)
void Forwarder::erase_forward(FlowEntry* e) noexcept {
  if (e->value.fwd.flags & kFlowSynProxy) {
    const FlowKey k = record_key(e->key);
    if (FlowEntry* r = flows_.find(k, flows_.hash(k), now_ms_)) flows_.erase(r);
  }
  flows_.erase(e);
}

void Forwarder::reply(Packet& pkt, Work& w, FlowEntry* e, FlowTable::Slot slot,
                      uint64_t now_ms, BurstOut& out) noexcept {
  if (e == nullptr || !(e->value.reply.flags & kFlowReply)) {
    stateless_reply(pkt, w, out);
    return;
  }
  const ReplyFlow& r = e->value.reply;
  const Parsed& p = w.p;
  const FrontendRef& f = registry_.at(r.frontend);
  const FlowState state = slot.state();
  const FlowState next = next_reply_state(state, p.key.proto, p.tcp_flags);
  flows_.refresh(slot, next, now_ms);
  if (unconfirmed(state) || (tcp_closing_state(next) && next != state)) {
    sync_.reply_seen(p.key, r, f, next, now_ms);
  }
  if (r.last_hop == LastHops::kNone) {
    drop(pkt, DropReason::last_hop_table_full, out);
    return;
  }
  if ((r.flags & kFlowSynProxy) && !proxy_reply(pkt, w, e, next, now_ms, out)) return;
  Tuple to{f.addr.bytes.data(), p.key.dst.data(), f.port, p.key.dport};
  if (mode_of(r.flags) == ForwardMode::full_nat) {
    to.dst = r.client_addr.data();
    to.dport = r.client_port;
  }
  if (const DropReason d = rewrite_tuple({pkt.data, pkt.len}, p, to); d != DropReason::none) {
    drop(pkt, d, out);
    return;
  }
  ++counters_.replies;
  const Neighbor& hop = last_hops_.at(r.last_hop);
  transmit(pkt, hop.port, hop.mac, out);
}

// Takes one of `per_window` frames a kEchoWindowMs window may hand the slow path for one kind
// of work; false when the window's share is spent.
bool Forwarder::slow_share(uint64_t& window, uint32_t& left, uint32_t per_window) noexcept {
  if (now_ms_ / kEchoWindowMs != window) {
    window = now_ms_ / kEchoWindowMs;
    left = per_window;
  }
  if (left == 0) return false;
  --left;
  return true;
}

// The exception path: a frame for the node itself that no service and no connection claims
// goes to the kernel behind its port (Node::for_kernel(); the control thread writes it to the
// kernel interface), within the worker's share. Anything else is dropped for `r`.
void Forwarder::kernel_or_drop(Packet& pkt, const Parsed& p, DropReason r,
                               BurstOut& out) noexcept {
  if (!node_.for_kernel(pkt.port, p.key.dst_addr())) {
    drop(pkt, r, out);
  } else if (!kernel_share()) {
    drop(pkt, DropReason::kernel_rate_limited, out);
  } else {
    ++counters_.to_kernel;
    to_slow_path(pkt, SlowReason::kernel, {}, out);
  }
}

// Takes a frame's token from the exception path's bucket: kernel_rate a second, kernel_burst_
// at most at once (a TCP window's worth goes through whole; a flood gets the rate).
bool Forwarder::kernel_share() noexcept {
  if (now_ms_ > kernel_refilled_ms_) {
    const uint64_t ms = std::min<uint64_t>(now_ms_ - kernel_refilled_ms_, 1000);
    kernel_tokens_ = std::min(kernel_tokens_ + ms * config_.kernel_rate, kernel_burst_);
  }
  kernel_refilled_ms_ = now_ms_;
  if (kernel_tokens_ < 1000) return false;
  kernel_tokens_ -= 1000;
  return true;
}

void Forwarder::send_to(Packet& pkt, const NextHop& hop, BurstOut& out) noexcept {
  if (const Neighbor* n = neighbors_.find(hop.ip)) {
    transmit(pkt, n->port, n->mac, out);
    return;
  }
  to_slow_path(pkt, SlowReason::needs_neighbor, hop, out);
}

void Forwarder::transmit(Packet& pkt, uint16_t port, const MacAddr& dst, BurstOut& out) noexcept {
  dst.store(pkt.data);
  port_macs_[port].store(pkt.data + 6);
  // Copied, then given its egress port there: a port stored into `pkt` and read back at once
  // by the copy, with its neighbours in one word, waited for the store to reach the cache.
  Packet& sent = out.tx[out.n_tx++];
  sent = pkt;
  sent.port = port;
}

void Forwarder::to_slow_path(Packet& pkt, SlowReason why, const NextHop& hop,
                             BurstOut& out) noexcept {
  ++counters_.to_slow_path;
  out.slow[out.n_slow++] = SlowPacket{pkt, why, hop};
}

void Forwarder::drop(Packet& pkt, DropReason r, BurstOut& out) noexcept {
  ++counters_.drops[size_t(r)];
  out.drop[out.n_drop++] = pkt;
}

// Answers a frame with a TCP RST or an ICMP unreachable, back the way it came.
void Forwarder::reject(Packet& pkt, const Work& w, BurstOut& out) noexcept {
  if (const DropReason r = make_reject(pkt, w.p); r != DropReason::none) {
    drop(pkt, r, out);
    return;
  }
  ++counters_.rejected;
  out.tx[out.n_tx++] = pkt;  // make_reject swapped the Ethernet addresses; same port
}

}  // namespace magline::dp
