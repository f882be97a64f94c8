// A new connection's set-up, out of the hit path's file: the checks a first frame passes (the
// frontend's source ranges, its new-connection limit, the SYN flood guard), the backend choice
// (Maglev, or the client's record under session affinity), the flow entries (forward, and reply
// unless the replies bypass Magline), and the prefetches made for it a pass ahead. run_frames()
// (forwarder.cpp) calls open() out of line; prefetch_reply() and pick_backend() are inlined
// into it at link time like every stage.
#include "dataplane/forwarder.hpp"

#include "dataplane/forwarder_work.hpp"

namespace magline::dp {

namespace {

// Session-affinity records share the flow table with connections under a key no packet can
// have: protocol 255 (reserved, RFC 5237), the client's address, and the service id.
constexpr uint8_t kAffinityProto = 255;

FlowKey affinity_key(const IpAddr& client, uint32_t service_id) noexcept {
  FlowKey k;
  k.src = client.bytes;
  k.family = client.family;
  k.proto = kAffinityProto;
  k.sport = uint16_t(service_id);
  k.dport = uint16_t(service_id >> 16);
  return k;
}

// What a frontend's new-connection limit charges: a bare SYN, or the first datagram of a UDP or
// SCTP flow. A TCP frame mid-stream (a connection after a restart or a failover between nodes,
// or a direct-return handshake's ACK, whose SYN paid) is never limited.
bool charged(const Parsed& p) noexcept {
  return p.key.proto != kProtoTcp || bare_syn(p);
}

bool usable_for_new(const ServiceState& s, size_t i) noexcept {
  const Backend& b = s.backend(i);
  const BackendState wanted = s.serving_terminating() ? BackendState::terminating
                                                      : BackendState::ready;
  return b.weight > 0 && b.state == wanted;
}

}  // namespace

// Sets up a new connection: checks, backend choice, flow entries. Returns the forward entry, or
// nullptr when the frame has been dealt with (dropped, rejected, or sent without state).
FlowEntry* Forwarder::open(Packet& pkt, Work& w, uint64_t now_ms, BurstOut& out) noexcept {
  const ServiceState& s = *w.fe.service;
  const Parsed& p = w.p;
  if (!s.source_allowed(p.key.src_addr())) {
    drop(pkt, DropReason::source_range_denied, out);
    return nullptr;
  }
  // Before the backend check, so that a flood to a service without backends gets its resets
  // at the limit's rate too.
  if (s.spec().new_connections.limited() && charged(p) &&
      !take_token(traffic_.limit(w.fe.slot), s.spec().new_connections, config_.workers, now_ms)) {
    drop(pkt, DropReason::new_connection_limited, out);
    return nullptr;
  }
  if (!s.has_backends()) {
    if (s.spec().no_backends == NoBackends::reject) {
      reject(pkt, w, out);
    } else {
      drop(pkt, DropReason::no_backend, out);
    }
    return nullptr;
  }
  // Full-NAT's SYN proxy may answer the SYN itself, or open the connection from a cookie.
  int mss_index = -1;
  if (s.spec().mode == ForwardMode::full_nat && p.key.proto == kProtoTcp &&
      s.spec().syn_proxy != SynProxy::off &&
      syn_proxy_gate(pkt, w, mss_index, now_ms, out) == Gate::done) {
    return nullptr;
  }
  const bool proxied = mss_index >= 0;
  if (s.spec().mode == ForwardMode::dnat && ack_only(p)) dnat_handshake_completed(w, now_ms);
  const uint16_t idx = pick_backend(w, now_ms);
  const Backend& b = s.backend(idx);
  const std::optional<NextHop>& hop = s.next_hop(idx);
  if (!hop) {
    drop(pkt, DropReason::backend_unreachable, out);
    return nullptr;
  }
  const ForwardMode mode = s.spec().mode;
  if (mode == ForwardMode::dsr_l2 && hop->ip != b.addr) {
    drop(pkt, DropReason::dsr_backend_not_on_link, out);
    return nullptr;
  }

  // The forward entry's fields, made into its value (forward_value()) once all are known.
  uint8_t flags = uint8_t(flags_of(mode) | (proxied ? kFlowSynProxy : 0));
  uint8_t snat_addr = 0;
  uint16_t snat_port = 0;
  if (stateless_syn(s, p) || w.no_state) {
    ++counters_.syns_without_state;
    const FlowValue v = forward_value(flags, 0, b.port, 0, idx, b.addr.bytes);
    emit_forward(pkt, w, v.fwd, idx, out);
    return nullptr;
  }

  // The reply direction: what replies will look like when they reach Magline.
  FlowKey reply_key;
  reply_key.family = p.key.family;
  reply_key.proto = p.key.proto;
  reply_key.src = b.addr.bytes;
  reply_key.sport = b.port;
  if (mode == ForwardMode::full_nat) {
    // The address and port prefetch_reply() foresaw, when free (as they nearly always are),
    // else a search.
    uint8_t index = 0;
    switch (snat_.choose(*hop, reply_key, w.hash, w.reply_port, w.reply_hash, now_ms, index)) {
      case SnatAllocator::Outcome::foreseen: break;
      case SnatAllocator::Outcome::searched: w.reply_hash = 0; break;
      case SnatAllocator::Outcome::no_address:
        drop(pkt, DropReason::no_snat_address, out);
        return nullptr;
      case SnatAllocator::Outcome::exhausted:
        drop(pkt, DropReason::snat_ports_exhausted, out);
        return nullptr;
    }
    snat_addr = index;
    snat_port = reply_key.dport;
  } else {
    reply_key.dst = p.key.src;
    reply_key.dport = p.key.sport;
  }
  // A DNAT connection whose replies can be translated without an entry keeps none (as
  // prefetch_reply() found, when it chose this backend).
  if (mode == ForwardMode::dnat &&
      (w.one_entry >= 0 && w.pick == idx ? w.one_entry == 1 : returns_without_state(w, idx))) {
    flags |= kFlowOneEntry;
  }
  const FlowValue v = forward_value(flags, snat_addr, b.port, snat_port, idx, b.addr.bytes);
  const bool reply_entry = !one_way(flags);
  // The reply key's hash, as prefetch_reply() took it unless the port differs.
  const uint64_t reply_hash =
      !reply_entry ? 0 : w.reply_hash != 0 ? w.reply_hash : flows_.hash(reply_key);

  // A proxied connection is half-open until its backend completes Magline's handshake (30 s
  // at most, evictable like any handshake): a backend that does not answer keeps nothing.
  const FlowState state =
      proxied ? FlowState::tcp_syn
              : next_forward_state(FlowState::free, p.key.proto, p.tcp_flags, !reply_entry);
  FlowEntry* e = flows_.insert_whole(p.key, s.frontend_id(w.fe.index), v, w.hash, state, now_ms,
                                     w.insert_hint);
  if (e == nullptr && mode == ForwardMode::full_nat) {
    drop(pkt, DropReason::flow_table_full, out);  // without an entry the source port is lost
    return nullptr;
  }
  w.opened = v.fwd;  // what the caller sends with: the entry itself went to memory
  if (e != nullptr && !reply_entry && mode == ForwardMode::dnat) {
    ++counters_.one_entry_connections;
  }
  ++counters_.new_connections;

  if (reply_entry) {
    const uint16_t hop_id = last_hops_.intern(pkt.port, MacAddr::from(pkt.data + 6));
    if (hop_id == LastHops::kNone) {
      if (e != nullptr) flows_.erase(e);
      drop(pkt, DropReason::last_hop_table_full, out);
      return nullptr;
    }
    const FlowValue r =
        reply_value(uint8_t(kFlowReply | flags_of(mode) | (proxied ? kFlowSynProxy : 0)),
                    p.key.sport, s.frontend_id(w.fe.index), hop_id, p.key.src);
    // Full-NAT chose its source port so that the replies come to this worker; DNAT's come
    // where the NIC's hash of the client's tuple sends them.
    const uint16_t owner = mode == ForwardMode::full_nat
                               ? config_.worker
                               : steering_.worker_of(reply_key, hop->port);
    if (!sync_.record_reply(reply_key, reply_hash, r, state, owner, pkt.port,
                            MacAddr::from(pkt.data + 6), now_ms, w.reply_hint, e)) {
      if (e != nullptr) flows_.erase(e);
      drop(pkt, DropReason::flow_table_full, out);
      return nullptr;
    }
  }
  if (proxied) {
    proxy_begin(pkt, w, e, reply_key, reply_hash, uint8_t(mss_index), idx, now_ms, out);
    return nullptr;
  }
  if (e == nullptr) {
    ++counters_.stateless;
    emit_forward(pkt, w, v.fwd, idx, out);
  }
  return e;
}

// For a frame that will open a connection: takes its Maglev hash and starts loading the slot
// the choice reads (a 65537-slot table is 128 KiB: in L2 at best), unless affinity decides.
void Forwarder::aim_pick(Work& w) noexcept {
  const ServiceState& s = *w.fe.service;
  if (!s.has_backends() || s.spec().affinity.client_ip) return;
  w.pick_hash = hash_flow(w.p.key, kFlowHashSeed);
  s.prefetch_pick(w.pick_hash);
}

// A pass after aim_pick(): makes the frame's backend choice now and prefetches the bucket of
// the reply entry open() will record (full-NAT: at the source port the steering will most
// likely give it), or, under session affinity, of the client's affinity record. A guess at
// worst: open() decides, and checks, as always.
void Forwarder::prefetch_reply(Work& w) noexcept {
  const ServiceState& s = *w.fe.service;
  if (!s.has_backends()) return;
  if (s.spec().affinity.client_ip) {
    // The client's affinity record decides (pick_backend): start loading its bucket.
    flows_.prefetch(flows_.hash(affinity_key(w.p.key.src_addr(), s.id())));
    return;
  }
  w.pick = s.pick(w.pick_hash);
  if (direct_return(s.spec().mode)) return;  // replies bypass Magline
  if (s.spec().mode == ForwardMode::dnat) {
    w.one_entry = returns_without_state(w, uint16_t(w.pick)) ? 1 : 0;
    if (w.one_entry == 1) return;  // no reply entry to prepare
  }
  const std::optional<NextHop>& hop = s.next_hop(size_t(w.pick));
  if (!hop) return;
  const Backend& b = s.backend(size_t(w.pick));
  FlowKey reply_key;
  reply_key.family = w.p.key.family;
  reply_key.proto = w.p.key.proto;
  reply_key.src = b.addr.bytes;
  reply_key.sport = b.port;
  if (s.spec().mode == ForwardMode::full_nat) {
    if (!snat_.foresee(*hop, reply_key, w.hash)) return;
    w.reply_port = reply_key.dport;
  } else {
    reply_key.dst = w.p.key.src;
    reply_key.dport = w.p.key.sport;
  }
  w.reply_hash = flows_.hash(reply_key);
  flows_.prefetch(w.reply_hash);
}

// The backend for a new connection: the client's recorded one under session affinity (while
// it can take new connections), else Maglev over the 5-tuple, or over the client address alone
// for affinity, so that every worker and every node makes the same first choice.
uint16_t Forwarder::pick_backend(const Work& w, uint64_t now_ms) noexcept {
  const ServiceState& s = *w.fe.service;
  const SessionAffinity& aff = s.spec().affinity;
  if (w.pick >= 0) return uint16_t(w.pick);  // chosen ahead by prefetch_reply()
  if (!aff.client_ip) return s.pick(hash_flow(w.p.key, kFlowHashSeed));

  const IpAddr client = w.p.key.src_addr();
  const FlowKey key = affinity_key(client, s.id());
  const uint64_t h = flows_.hash(key);
  const uint32_t timeout_ms = aff.timeout_s * 1000;
  FlowEntry* e = flows_.find(key, h, now_ms);
  if (e != nullptr) {
    const int idx = s.find_backend(e->value.fwd.backend_addr, e->value.fwd.backend_port);
    if (idx >= 0 && usable_for_new(s, size_t(idx))) {
      // Refresh here; tell the other workers again once half the timeout has gone by, so that
      // their copies do not lapse while this client keeps connecting through this worker.
      const bool stale = flows_.remaining_ms(e, now_ms) < timeout_ms / 2;
      flows_.refresh(e, FlowState::affinity, now_ms, timeout_ms);
      if (stale) sync_.broadcast_affinity(key, e->value, timeout_ms);
      return uint16_t(idx);
    }
    flows_.erase(e);
  }
  const uint16_t idx = s.pick(hash_client(client, kFlowHashSeed));
  FlowValue v{};
  v.fwd.flags = kFlowAffinity;
  v.fwd.backend_addr = s.backend(idx).addr.bytes;
  v.fwd.backend_port = s.backend(idx).port;
  if (FlowEntry* a = flows_.insert(key, h, FlowState::affinity, now_ms, timeout_ms)) a->value = v;
  sync_.broadcast_affinity(key, v, timeout_ms);
  return idx;
}

}  // namespace magline::dp
